#!/bin/sh
# wf-run: plans run stage by stage in sandboxes, parallel stages really
# concurrently; deliverables become change requests that wf-enqueue
# stores; previews run nothing; bad plans are refused.

. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/t7000/helpers.sh"

test_expect_success 'setup: a repository and a catalog' '
	setup_repo &&
	for w in par-a par-b; do
		cat >cat/$w.json <<-EOF || return 1
		{"name": "$w", "match": {"labels": ["par"]},
		 "steps": [{"id": "nap", "type": "shell", "run": "sleep 1"}]}
		EOF
	done &&
	cat >cat/first.json <<-\EOF &&
	{"name": "first", "match": {"labels": ["seq"]},
	 "steps": [{"id": "at1", "type": "shell",
	            "run": "sleep 0.3; date +%s%N"}]}
	EOF
	cat >cat/second.json <<-\EOF &&
	{"name": "second", "match": {"labels": ["seq"]},
	 "depends_on": ["first"],
	 "steps": [{"id": "at2", "type": "shell", "run": "date +%s%N"}]}
	EOF
	cat >cat/report.json <<-\EOF &&
	{"name": "report", "match": {"labels": ["report"]},
	 "deliverables": [{"name": "report", "path": "out/{number}/{workflow}.md"},
	                  {"name": "data", "path": "data/{workflow}"}],
	 "steps": [
	   {"id": "write", "type": "template",
	    "dest": "out/{number}/{workflow}.md",
	    "template": "# Report for #{number}: {title}\n"},
	   {"id": "data", "type": "shell",
	    "run": "mkdir -p data/report/deep && echo d >data/report/deep/x && echo scratch >scratch.txt && chmod +x data/report/deep/x"}]}
	EOF
	cat >cat/env.json <<-\EOF
	{"name": "env", "match": {"labels": ["env"]},
	 "steps": [{"id": "show", "type": "shell",
	            "run": "echo \"$WF_PLAN_ID|$WF_WORKFLOW|$WF_ISSUE_NUMBER|$(pwd)|${WF_TEST_SECRET-none}|${WF_TEST_PASSED-none}\"; test \"$(pwd)\" = \"$WF_SANDBOX\""}]}
	EOF
'

test_expect_success 'a parallel stage runs its workflows concurrently' '
	(cd repo && plan_of par) >plan.json &&
	test_grep "\"stages\":\[\{\"index\":0,\"run_mode\":\"parallel\",\"workflows\":\[\"par-a\",\"par-b\"\]" plan.json &&
	t0=$(now_ms) &&
	(cd repo && wf-run -j 2 ../plan.json) >sum.json &&
	t1=$(now_ms) &&
	test "$(wf_status sum.json par-a)" = executed &&
	test "$(wf_status sum.json par-b)" = executed &&
	echo "took $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 1000 &&
	test $((t1 - t0)) -lt 1800
'

test_expect_success '-j 1 runs them one at a time' '
	t0=$(now_ms) &&
	(cd repo && wf-run --no-cache -j 1 ../plan.json) >sum.json &&
	t1=$(now_ms) &&
	echo "took $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 2000
'

test_expect_success 'stages run in order: a dependency first' '
	(cd repo && plan_of seq) >plan.json &&
	test_grep "\"stage_count\":2" plan.json &&
	(cd repo && wf-run -j 4 ../plan.json) >sum.json &&
	first=$(step_output sum.json at1) &&
	second=$(step_output sum.json at2) &&
	echo "first $first second $second" &&
	test "${second%??}" -gt "${first%??}"
'

test_expect_success 'the summary has the shape of the contract' '
	id=$(plan_id plan.json) &&
	test_grep "^\{\"issue_number\":7,\"plan_id\":\"$id\",\"stage_count\":2,\"workflow_count\":2,\"stages\":\[" sum.json &&
	test_grep ",\"preview_only\":false,\"selection_reason\":\"[a-z_]*\",\"selection_message\":\"[^\"]*\",\"allow_partial_success\":false,\"overall_timeout_seconds\":null,\"stage_runs\":\[\{\"index\":0,\"run_mode\":\"sequential\",\"blocking_conflicts\":\[\],\"workflows\":\[\{\"workflow_name\":\"first\",\"status\":\"executed\",\"created_files\":\[\],\"message\":\"Workflow executed successfully.\",\"steps\":\[" sum.json &&
	test_grep "\],\"status\":\"executed\",\"errors\":\[\],\"changes\":\[\]\}$" sum.json &&
	test $(wc -l <sum.json) -eq 1
'

test_expect_success 'steps see the plan, the workflow and a cleaned environment' '
	(cd repo && plan_of env) >plan.json &&
	id=$(plan_id plan.json) &&
	(cd repo && WF_TEST_SECRET=s WF_TEST_PASSED=p \
		wf-run --env WF_TEST_PASSED ../plan.json) >sum.json &&
	test "$(wf_status sum.json env)" = executed &&
	out=$(step_output sum.json show) &&
	echo "$out" &&
	case "$out" in
	"$id|env|7|"*"/work|none|p\\n") ;;
	*) false ;;
	esac
'

test_expect_success 'deliverables become one change request per workflow' '
	(cd repo && plan_of report) >plan.json &&
	id=$(plan_id plan.json) &&
	(cd repo && wf-run --target main ../plan.json) >sum.json &&
	test "$(wf_status sum.json report)" = executed &&
	test_grep "\"created_files\":\[\"data/report/deep/x\",\"out/7/report.md\"\]" sum.json &&
	test_grep "\"changes\":\[\{\"id\":\"$id/report\",\"target\":\"main\",\"kind\":\"files\"," sum.json &&
	test_grep "\"meta\":\{\"issue_number\":7,\"plan_id\":\"$id\",\"workflow\":\"report\"\}" sum.json &&
	test_grep "\"path\":\"data/report/deep/x\",\"mode\":\"100755\"" sum.json &&
	! grep scratch sum.json &&
	base=$(git -C repo rev-parse HEAD) &&
	test_grep "\"base\":\"$base\"" sum.json
'

test_expect_success 'wf-enqueue stores the changes of a summary' '
	id=$(plan_id plan.json) &&
	(cd repo && wf-enqueue <../sum.json) >enq.out &&
	test_grep "^\{\"id\":\"$id/report\",\"queue_id\":1,\"state\":\"queued\",\"position\":1\}$" enq.out &&
	(cd repo && wf-queue show "$id/report" --payload) >show.out &&
	content=$(printf "# Report for #7: Seven\n" | base64) &&
	test_grep "$content" show.out
'

test_expect_success 'the working tree, index and HEAD are untouched' '
	base=$(git -C repo rev-parse HEAD^{commit}) &&
	test_grep "\"base\":\"$base\"" sum.json &&
	(cd repo && git status --porcelain) >status &&
	test ! -s status &&
	test ! -e repo/out &&
	test "$(git -C repo log --format=%s)" = base
'

test_expect_success 'renamed deliverables land under their final path' '
	for w in rep-a rep-b; do
		cat >cat/$w.json <<-EOF || return 1
		{"name": "$w", "match": {"labels": ["rep"]},
		 "deliverables": [{"name": "r", "path": "reports/{number}.md"}],
		 "steps": [{"id": "w", "type": "shell",
		            "run": "mkdir -p reports && echo $w >reports/7.md"}]}
		EOF
	done &&
	(cd repo && plan_of rep) >plan.json &&
	test_grep "\"renamed_from\":\"reports/7.md\"" plan.json &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	test_grep "\"workflow_name\":\"rep-a\",\"status\":\"executed\",\"created_files\":\[\"reports/7.md\"\]" sum.json &&
	test_grep "\"workflow_name\":\"rep-b\",\"status\":\"executed\",\"created_files\":\[\"reports/7.rep-b.md\"\]" sum.json
'

test_expect_success '--collect all takes every change, deletions too' '
	cat >cat/all.json <<-\EOF &&
	{"name": "all", "match": {"labels": ["all"]},
	 "steps": [{"id": "w", "type": "shell",
	            "run": "echo new >new.txt && rm README"}]}
	EOF
	(cd repo && plan_of all) >plan.json &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	test_grep "\"created_files\":\[\],\"message\"" sum.json &&
	test_grep "\"changes\":\[\]" sum.json &&
	(cd repo && wf-run --collect all ../plan.json) >sum.json &&
	test_grep "\"created_files\":\[\"new.txt\"\]" sum.json &&
	test_grep "\"files\":\[\{\"path\":\"README\",\"delete\":true\},\{\"path\":\"new.txt\"," sum.json
'

test_expect_success 'a preview-only plan runs nothing' '
	(cd repo && PLAN_OPTS=--preview-only plan_of seq) >plan.json &&
	id=$(plan_id plan.json) &&
	rm -rf repo/.git/wf/logs &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	skip="\"status\":\"skipped\",\"message\":\"Multi-workflow execution skipped due to preview-only mode.\"" &&
	stages=$(grep -o "\"stages\":\[[^]]*\][^]]*\][^]]*\][^]]*\]\}\]" plan.json) &&
	sel=$(grep -o "\"selection_reason\":\"[^\"]*\",\"selection_message\":\"[^\"]*\"" plan.json) &&
	printf "%s\n" "{\"issue_number\":7,\"plan_id\":\"$id\",\"stage_count\":2,\"workflow_count\":2,$stages,\"preview_only\":true,$sel,\"allow_partial_success\":false,\"stage_runs\":[{\"index\":0,\"run_mode\":\"sequential\",\"blocking_conflicts\":[],\"workflows\":[{\"workflow_name\":\"first\",$skip}]},{\"index\":1,\"run_mode\":\"sequential\",\"blocking_conflicts\":[],\"workflows\":[{\"workflow_name\":\"second\",$skip}]}],\"status\":\"skipped\",\"skip_reason\":\"preview_only_guard\",\"changes\":[]}" >expect &&
	test_cmp expect sum.json &&
	test ! -e repo/.git/wf/logs
'

test_expect_success '--dry-run skips a plan that is not a preview' '
	(cd repo && plan_of seq) >plan.json &&
	(cd repo && wf-run --dry-run ../plan.json) >sum.json &&
	test_grep "\"status\":\"skipped\",\"skip_reason\":\"preview_only_guard\",\"changes\":\[\]\}$" sum.json &&
	test "$(wf_status sum.json first)" = skipped &&
	test ! -e repo/.git/wf/logs &&
	wf-run --dry-run plan.json >sum2.json &&
	test_cmp sum.json sum2.json
'

test_expect_success 'a stream of plans gives a stream of summaries' '
	(cd repo && plan_of env && plan_of seq) >plans.jsonl &&
	(cd repo && wf-run ../plans.jsonl) >sums.jsonl &&
	test $(wc -l <sums.jsonl) -eq 2
'

test_expect_success 'malformed plans are refused with their place (exit 3)' '
	echo "{\"plan_id\": 5}" >bad.json &&
	(cd repo && test_expect_code 3 wf-run ../bad.json) 2>err &&
	test_grep "^wf-run: error: \.\./bad\.json:1:13: \.plan_id: expected the plan.s id$" err &&
	sed -e "s/\"workflows\":\[\"first\"\]/\"workflows\":[\"ghost\"]/" \
		plan.json >bad.json &&
	(cd repo && test_expect_code 3 wf-run ../bad.json) 2>err &&
	test_grep "\.stages\[0\]\.workflows\[0\]: no workflow .ghost. in the plan" err &&
	echo "[1]" | (cd repo && test_expect_code 3 wf-run) 2>err &&
	test_grep "expected an ExecutionPlan object" err &&
	(cd repo && test_expect_code 3 wf-run --base nope ../plan.json) 2>err &&
	test_grep "^wf-run: error: --base: .nope. does not name a commit" err
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-run -j 0 plan.json 2>err &&
	test_grep "jobs must be between" err &&
	test_expect_code 2 wf-run --timeout soon plan.json 2>err &&
	test_expect_code 2 wf-run --collect some plan.json 2>err &&
	test_expect_code 2 wf-run --env "A-B" plan.json 2>err &&
	test_expect_code 2 wf-run --bogus 2>err &&
	wf-run --help >out &&
	test_grep "^usage: wf-run" out
'

# Last: landing moves main, which the repository has checked out.
if test -x "$WF_BIN/wf-apply"; then
test_expect_success 'wf-apply lands the queued deliverables on the branch' '
	(cd repo && plan_of report) >plan.json &&
	id=$(plan_id plan.json) &&
	(cd repo && wf-run --target main ../plan.json | wf-enqueue) >enq.out &&
	(cd repo && wf-apply --once --target main) >landed.out &&
	test_grep "\"id\":\"$id/report\",.*\"state\":\"landed\"" landed.out &&
	printf "# Report for #7: Seven\n" >expect &&
	git -C repo show main:out/7/report.md >actual &&
	test_cmp expect actual &&
	git -C repo show main:data/report/deep/x >actual &&
	echo d >expect &&
	test_cmp expect actual &&
	test "$(git -C repo ls-tree main data/report/deep/x | cut -c1-6)" = 100755
'
fi

test_done
