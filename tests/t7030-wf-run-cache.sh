#!/bin/sh
# wf-run: the step cache (a hit on the second run, a miss after an input
# changes, --no-cache, --explain-cache) and resuming a plan after kill -9.

. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/t7000/helpers.sh"

TMPDIR=$TRASH/tmp
export TMPDIR

test_expect_success 'setup' '
	setup_repo &&
	mkdir -p "$TMPDIR" counts &&
	echo one >repo/data.txt &&
	git -C repo add data.txt &&
	git -C repo commit -q -m data &&
	cat >cat/gen.json <<-\EOF &&
	{"name": "gen", "match": {"labels": ["gen"]},
	 "deliverables": [{"name": "out", "path": "out"}],
	 "steps": [
	   {"id": "slow", "type": "shell", "inputs": ["data.txt"],
	    "run": "sleep 1; mkdir -p out && cp data.txt out/data.txt; echo copied"},
	   {"id": "tree", "type": "shell",
	    "run": "ls >out/files; cat README"},
	   {"id": "note", "type": "template", "dest": "out/note.txt",
	    "template": "{step.slow} {step.tree}\n"}]}
	EOF
	(cd repo && plan_of gen) >plan.json
'

test_expect_success 'the first run runs every step and fills the cache' '
	(cd repo && wf-run ../plan.json) >sum1.json &&
	test "$(wf_status sum1.json gen)" = executed &&
	test_grep "\"id\":\"slow\",\"type\":\"shell\",\"status\":\"succeeded\"" sum1.json &&
	test_grep "\"cache\":\{\"key\":\"[0-9a-f]{40}\",\"hit\":false\}" sum1.json &&
	test -f repo/.git/wf/run.db
'

test_expect_success 'the second run is served by the cache, with the same result' '
	t0=$(now_ms) &&
	(cd repo && wf-run ../plan.json) >sum2.json &&
	t1=$(now_ms) &&
	echo "took $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 900 &&
	test_grep "\"id\":\"slow\",\"type\":\"shell\",\"status\":\"cached\",\"attempts\":0,\"exit_code\":0" sum2.json &&
	test_grep "\"id\":\"tree\",\"type\":\"shell\",\"status\":\"cached\"" sum2.json &&
	test_grep "\"hit\":true" sum2.json &&
	grep -o "\"changes\":.*" sum1.json >c1 &&
	grep -o "\"changes\":.*" sum2.json >c2 &&
	test_cmp c1 c2 &&
	test_grep "\"created_files\":\[\"out/data.txt\",\"out/files\",\"out/note.txt\"\]" sum2.json
'

test_expect_success 'a change outside the declared inputs misses only the others' '
	echo "read me again" >repo/README &&
	git -C repo commit -q -a -m readme &&
	(cd repo && wf-run ../plan.json) >sum3.json &&
	test_grep "\"id\":\"slow\",\"type\":\"shell\",\"status\":\"cached\"" sum3.json &&
	test_grep "\"id\":\"tree\",\"type\":\"shell\",\"status\":\"succeeded\"" sum3.json &&
	content=$(printf "copied read me again\n" | base64) &&
	test_grep "\"content\":\"$content\"" sum3.json
'

test_expect_success 'a changed input misses' '
	echo two >repo/data.txt &&
	git -C repo commit -q -a -m two &&
	(cd repo && wf-run ../plan.json) >sum4.json &&
	test_grep "\"id\":\"slow\",\"type\":\"shell\",\"status\":\"succeeded\"" sum4.json &&
	content=$(printf "two\n" | base64) &&
	test_grep "\"path\":\"out/data.txt\",\"mode\":\"100644\",\"blob\":\"[0-9a-f]*\",\"content\":\"$content\"" sum4.json
'

test_expect_success '--no-cache runs every step and says nothing of a cache' '
	(cd repo && wf-run --no-cache ../plan.json) >sum5.json &&
	test_grep "\"id\":\"slow\",\"type\":\"shell\",\"status\":\"succeeded\"" sum5.json &&
	! grep "\"cache\"" sum5.json
'

test_expect_success '--explain-cache says what went into each key' '
	(cd repo && wf-run --explain-cache ../plan.json) >sum6.json 2>err &&
	test_grep "^wf-run: cache: gen/slow: hit [0-9a-f]{40}$" err &&
	test_grep "^  input 100644 [0-9a-f]{40} data\.txt$" err &&
	test_grep "^wf-run: cache: gen/tree: hit [0-9a-f]{40}$" err &&
	test_grep "^  input [0-9a-f]{40}$" err &&
	test_grep "^  env WF_WORKFLOW [0-9a-f]{40}$" err &&
	test_grep "\"step\":\"[0-9a-f]{40}\"" sum6.json &&
	test_expect_code 2 wf-run --explain-cache --no-cache plan.json
'

test_expect_success 'setup: a plan to kill halfway' '
	cat >cat/quick.json <<-\EOF &&
	{"name": "quick", "match": {"labels": ["kill"]},
	 "deliverables": [{"name": "q", "path": "q.txt"}],
	 "steps": [{"id": "q", "type": "shell",
	            "run": "echo run >>\"$COUNTS/quick\"; echo q >q.txt"}]}
	EOF
	cat >cat/slow.json <<-\EOF &&
	{"name": "slow", "match": {"labels": ["kill"]}, "depends_on": ["quick"],
	 "deliverables": [{"name": "s", "path": "s.txt"}],
	 "steps": [{"id": "s", "type": "shell",
	            "run": "echo run >>\"$COUNTS/slow\"; echo $$ >\"$COUNTS/slow.pid\"; sleep 2; echo s >s.txt"}]}
	EOF
	(cd repo && plan_of kill) >kill.json &&
	test_grep "\"stage_count\":2" kill.json
'

# Run the kill plan in the background; kill -9 it (and the step it left)
# once the slow workflow has started.
kill_halfway() {
	rm -f counts/slow.pid
	(cd repo && COUNTS=$TRASH/counts exec wf-run --no-cache --env COUNTS \
		"$@" ../kill.json >../killed.json) &
	pid=$!
	i=0
	while [ ! -s counts/slow.pid ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 $pid
	wait $pid
	test -s counts/slow.pid &&
	kill -9 -"$(cat counts/slow.pid)"
}

test_expect_success 'kill -9 mid-plan, then the rerun runs only what was unfinished' '
	kill_halfway &&
	test ! -s killed.json &&
	test $(wc -l <counts/quick) -eq 1 &&
	test $(wc -l <counts/slow) -eq 1 &&
	(cd repo && COUNTS=$TRASH/counts wf-run --no-cache --env COUNTS \
		../kill.json) >resumed.json &&
	test $(wc -l <counts/quick) -eq 1 &&
	test $(wc -l <counts/slow) -eq 2 &&
	test "$(wf_status resumed.json quick)" = executed &&
	test "$(wf_status resumed.json slow)" = executed &&
	id=$(plan_id kill.json) &&
	grep -o "\"id\":\"$id/[a-z]*\"" resumed.json >ids &&
	printf "\"id\":\"%s/quick\"\n\"id\":\"%s/slow\"\n" "$id" "$id" >expect &&
	test_cmp expect ids &&
	test_grep "\"depends_on\":\[\"$id/quick\"\]" resumed.json
'

test_expect_success 'a plan that ran to its end runs afresh' '
	(cd repo && COUNTS=$TRASH/counts wf-run --no-cache --env COUNTS \
		../kill.json) >again.json &&
	test $(wc -l <counts/quick) -eq 2 &&
	test $(wc -l <counts/slow) -eq 3
'

test_expect_success '--no-resume runs everything again' '
	kill_halfway &&
	test $(wc -l <counts/quick) -eq 3 &&
	(cd repo && COUNTS=$TRASH/counts wf-run --no-cache --no-resume \
		--env COUNTS ../kill.json) >fresh.json &&
	test $(wc -l <counts/quick) -eq 4 &&
	test "$(wf_status fresh.json slow)" = executed
'

test_done
