#!/bin/sh
# wf-emit: malformed and incomplete input exits 3 naming the field, and
# writes nothing to the sink; the command line.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t6000

jt() {
	python3 "$T/jsontool.py" "$@"
}

# refused WHAT CMD...: CMD exits 3, says WHAT, and no sink or outbox was
# made.
refused() {
	pattern=${1#^}
	shift
	rm -f events.jsonl ob.db
	test_expect_code 3 "$@" --output events.jsonl --outbox ob.db \
		>out 2>err &&
	test_grep "^wf-emit: error: .*$pattern" err &&
	test $(wc -l <err) -eq 1 &&
	test ! -s out &&
	test ! -e events.jsonl &&
	test ! -e ob.db
}

test_expect_success 'a plan without each required field: exit 3 and its path' '
	for f in plan_id stage_count workflow_count allow_partial_success \
		preview_only stages stages.0.index stages.0.run_mode \
		stages.0.workflows stages.0.blocking_conflicts; do
		jt delpath $f <"$T/expect-plan_created.jsonl" >in.json &&
		path=$(echo ".$f" | sed -e "s/\.\([0-9]\)/[\1]/g") &&
		refused "^in.json:1:[0-9]+: [^ ]*: missing required field$" \
			wf-emit plan_created in.json &&
		grep -F "in.json:1:" err | grep -F -q ": $path: missing" ||
			exit 1
	done
'

test_expect_success 'a summary without each required field: exit 3 and its path' '
	for f in issue_number plan_id stage_count workflow_count \
		preview_only allow_partial_success stage_runs status \
		stage_runs.0.index stage_runs.0.run_mode \
		stage_runs.0.blocking_conflicts stage_runs.0.workflows \
		stage_runs.0.workflows.1.workflow_name \
		stage_runs.0.workflows.1.status; do
		jt delpath $f <"$T/summary-failed.json" >in.json &&
		path=$(echo ".$f" | sed -e "s/\.\([0-9]\)/[\1]/g") &&
		refused "^in.json:1:[0-9]+: [^ ]*: missing required field$" \
			wf-emit execution_summary in.json &&
		grep -F "in.json:1:" err | grep -F -q ": $path: missing" ||
			exit 1
	done &&
	for f in workflow_name error; do
		jt delpath errors.0.$f <"$T/summary-failed.json" >in.json &&
		refused "in.json:1:[0-9]+: \.errors\[0\]\.$f: missing required field$" \
			wf-emit execution_summary in.json || exit 1
	done
'

test_expect_success 'a change line without each required field: exit 3 and its path' '
	for f in id queue_id state commit; do
		sed -n 4p "$T/changes.jsonl" | jt del $f >in.json &&
		refused "in.json:1:1: \.$f: missing required field$" \
			wf-emit change in.json || exit 1
	done &&
	sed -n 6p "$T/changes.jsonl" | jt del error >in.json &&
	refused "in.json:1:1: \.error: missing required field$" \
		wf-emit change in.json &&
	sed -n 1p "$T/changes.jsonl" | jt set position "\"1\"" >in.json &&
	refused "\.position: expected an integer, got a string$" \
		wf-emit change in.json
'

test_expect_success 'the error points at the object that lacks the field' '
	printf "{\"a\": 1}\n\n  {\"plan_id\": \"p\", \"stage_count\": 0,\n   \"workflow_count\": 0}\n" |
	sed -n 3,4p >in.json &&
	refused "^in.json:1:3: \.allow_partial_success: missing required field$" \
		wf-emit plan_created in.json &&
	sed -e "s/\"workflow_name\": \"docs\", \"status\": \"skipped\", //" \
		"$T/summary-failed.json" >in.json &&
	line=$(grep -n "Skipped: an earlier" in.json | cut -d: -f1) &&
	refused "^in.json:$line:9: \.stage_runs\[1\]\.workflows\[0\]\.workflow_name: missing required field$" \
		wf-emit execution_summary in.json
'

test_expect_success 'wrong types and values outside the vocabulary' '
	sed -e "s/\"stage_count\":2/\"stage_count\":\"2\"/" \
		"$T/expect-plan_created.jsonl" >in.json &&
	refused "\.stage_count: expected an integer, got a string$" \
		wf-emit plan_created in.json &&
	sed -e "s/\"run_mode\":\"parallel\"/\"run_mode\":\"together\"/" \
		"$T/expect-plan_created.jsonl" >in.json &&
	refused "\.stages\[0\]\.run_mode: unknown value .together. \(expected .sequential. or .parallel.\)$" \
		wf-emit plan_created in.json &&
	sed -e "s/\"status\": \"failed\"/\"status\": \"retrying\"/" \
		"$T/summary-failed.json" >in.json &&
	refused "\.stage_runs\[0\]\.workflows\[1\]\.status: unknown value .retrying." \
		wf-emit execution_summary in.json &&
	jt doc <"$T/summary-failed.json" | jt set status "\"failed\"" >in.json &&
	refused "\.status: unknown value .failed. \(expected .executed. or .skipped.\)$" \
		wf-emit execution_summary in.json &&
	jt doc <"$T/summary-failed.json" | jt set issue_number null >in.json &&
	refused "\.issue_number: expected an integer, got null$" \
		wf-emit execution_summary in.json &&
	jt doc <"$T/summary-failed.json" |
		jt set overall_timeout_seconds -1 >in.json &&
	refused "\.overall_timeout_seconds: expected at least 0$" \
		wf-emit execution_summary in.json &&
	sed -n 4p "$T/changes.jsonl" | jt set commit "\"HEAD\"" >in.json &&
	refused "\.commit: expected a commit id" wf-emit change in.json &&
	sed -n 4p "$T/changes.jsonl" | jt set state "\"leased\"" >in.json &&
	refused "\.state: expected .landed., .failed., .dead. or .queued." \
		wf-emit change in.json
'

test_expect_success 'counts that do not match the stages' '
	sed -e "s/\"stage_count\":2/\"stage_count\":3/" \
		"$T/expect-plan_created.jsonl" >in.json &&
	refused "\.stage_count: does not match the number of stages$" \
		wf-emit plan_created in.json &&
	sed -e "s/\"workflow_count\":3/\"workflow_count\":4/" \
		"$T/expect-plan_created.jsonl" >in.json &&
	refused "\.workflow_count: does not match the number of workflows" \
		wf-emit plan_created in.json
'

test_expect_success '--skipped refuses a plan that is not preview-only' '
	refused "\.preview_only: only a preview-only plan is skipped$" \
		wf-emit execution_summary --skipped \
		"$T/expect-plan_created.jsonl"
'

test_expect_success 'malformed and truncated JSON' '
	printf "{\"plan_id\": \"p\",\n  \"stage_count\" 2}\n" >in.json &&
	refused "^in.json:2:17: " wf-emit plan_created in.json &&
	head -c 100 "$T/expect-plan_created.jsonl" >in.json &&
	refused "^in.json:1:" wf-emit plan_created in.json &&
	echo "[1, 2]" >in.json &&
	refused "^in.json:1:1: expected an object$" wf-emit plan_created in.json &&
	echo "{\"x\": 1}" >in.json &&
	refused "^in.json:1:1: not an execution summary, plan or change event$" \
		wf-emit metrics in.json
'

test_expect_success 'the events before a bad value stay written, none after' '
	cat "$T/expect-plan_created.jsonl" >in.json &&
	echo "{}" >>in.json &&
	cat "$T/expect-plan_created.jsonl" >>in.json &&
	test_expect_code 3 wf-emit plan_created --output events.jsonl \
		in.json 2>err &&
	test_grep "^wf-emit: error: in.json:2:1: \.plan_id: missing required field$" err &&
	test $(wc -l <events.jsonl) -eq 1
'

test_expect_success 'metrics of a stream with a bad value emits nothing' '
	cat "$T/changes.jsonl" >in.json &&
	echo "{\"id\": \"x\"}" >>in.json &&
	refused "in.json:8:1: not an execution summary, plan or change event$" \
		wf-emit metrics in.json
'

test_expect_success '--strict: a sink that fails is an error, exit 4' '
	test_expect_code 4 wf-emit plan_created --strict --output /dev/full \
		--outbox ob.db "$T/expect-plan_created.jsonl" >out 2>err &&
	test_grep "^wf-emit: error: cannot write to ./dev/full.: No space left on device$" err &&
	test ! -e ob.db
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-emit </dev/null 2>err &&
	test_grep "no command given" err &&
	test_expect_code 2 wf-emit plan_created --tee </dev/null 2>err &&
	test_grep "^wf-emit: error: --tee needs --output or --socket" err &&
	test_expect_code 2 wf-emit plan_created --skipped </dev/null 2>err &&
	test_grep "^wf-emit: error: --skipped is for execution_summary$" err &&
	test_expect_code 2 wf-emit change --redact-paths blur </dev/null 2>err &&
	test_grep "^wf-emit: error: unknown mode .blur. for --redact-paths" err &&
	test_expect_code 2 wf-emit change --time yesterday </dev/null 2>err &&
	test_grep "^wf-emit: error: invalid number .yesterday. for --time$" err &&
	test_expect_code 2 wf-emit flush x.json </dev/null 2>err &&
	test_grep "^wf-emit: error: flush reads no input$" err &&
	test_expect_code 2 wf-emit change --output </dev/null 2>err &&
	test_grep "^wf-emit: error: option .--output. needs a value$" err &&
	test_expect_code 2 wf-emit change --fsync=1 </dev/null 2>err &&
	test_grep "^wf-emit: error: option .--fsync. takes no value$" err
'

test_done
