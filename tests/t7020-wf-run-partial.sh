#!/bin/sh
# wf-run: allow_partial_success both ways, dependencies on a failed
# workflow, and the overall --timeout.

. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/t7000/helpers.sh"

test_expect_success 'setup: good and bad in stage 0, later ones in stage 1' '
	setup_repo &&
	cat >cat/good.json <<-\EOF &&
	{"name": "good", "match": {"labels": ["mix"]}, "conflicts": ["k"],
	 "deliverables": [{"name": "good", "path": "good.txt"}],
	 "steps": [{"id": "w", "type": "shell", "run": "echo good >good.txt"}]}
	EOF
	cat >cat/bad.json <<-\EOF &&
	{"name": "bad", "match": {"labels": ["mix"]},
	 "deliverables": [{"name": "bad", "path": "bad.txt"}],
	 "steps": [{"id": "w", "type": "shell", "run": "echo bad >bad.txt; exit 5"}]}
	EOF
	cat >cat/later.json <<-\EOF &&
	{"name": "later", "match": {"labels": ["mix"]}, "conflicts": ["k"],
	 "deliverables": [{"name": "later", "path": "later.txt"}],
	 "steps": [{"id": "w", "type": "shell", "run": "echo later >later.txt"}]}
	EOF
	cat >cat/needy.json <<-\EOF &&
	{"name": "needy", "match": {"labels": ["mix"]}, "depends_on": ["bad"],
	 "steps": [{"id": "w", "type": "shell", "run": "true"}]}
	EOF
	(cd repo && plan_of mix) >strict.json &&
	test_grep "\"stages\":\[\{\"index\":0,\"run_mode\":\"parallel\",\"workflows\":\[\"bad\",\"good\"\],\"blocking_conflicts\":\[\"k\"\]\},\{\"index\":1,\"run_mode\":\"parallel\",\"workflows\":\[\"later\",\"needy\"\]" strict.json &&
	(cd repo && PLAN_OPTS=--allow-partial-success plan_of mix) >partial.json
'

test_expect_success 'without partial success a failure stops the plan' '
	(cd repo && test_expect_code 1 wf-run -j 2 ../strict.json) >sum.json &&
	test "$(wf_status sum.json good)" = executed &&
	test "$(wf_status sum.json bad)" = failed &&
	test "$(wf_status sum.json later)" = skipped &&
	test "$(wf_message sum.json later)" = "Skipped: an earlier stage failed and partial success is not allowed." &&
	test_grep "\"status\":\"executed\",\"errors\":\[\{\"workflow_name\":\"bad\",\"error\":\"step .w. failed with exit code 5\"\}\],\"changes\":\[\]\}$" sum.json
'

test_expect_success 'with partial success the rest runs and yields its changes' '
	(cd repo && test_expect_code 1 wf-run -j 2 ../partial.json) >sum.json &&
	id=$(plan_id partial.json) &&
	test "$(wf_status sum.json good)" = executed &&
	test "$(wf_status sum.json bad)" = failed &&
	test "$(wf_status sum.json later)" = executed &&
	test "$(wf_status sum.json needy)" = skipped &&
	test "$(wf_message sum.json needy)" = "Skipped: it depends on '"'"'bad'"'"', which did not execute." &&
	test_grep "\"errors\":\[\{\"workflow_name\":\"bad\",\"error\":\"step .w. failed with exit code 5\"\}\]" sum.json &&
	grep -o "\"id\":\"$id/[a-z]*\"" sum.json >ids &&
	printf "\"id\":\"%s/good\"\n\"id\":\"%s/later\"\n" "$id" "$id" >expect &&
	test_cmp expect ids
'

test_expect_success 'the partial changes go through wf-enqueue' '
	id=$(plan_id partial.json) &&
	(cd repo && wf-enqueue <../sum.json) >enq.out &&
	test $(wc -l <enq.out) -eq 2 &&
	test_grep "\"id\":\"$id/later\",\"queue_id\":2,\"state\":\"queued\"" enq.out
'

test_expect_success '--timeout bounds the whole plan' '
	cat >cat/sleepy.json <<-\EOF &&
	{"name": "sleepy", "match": {"labels": ["sleepy"]},
	 "steps": [{"id": "nap", "type": "shell", "run": "exec sleep 30"}]}
	EOF
	cat >cat/after.json <<-\EOF &&
	{"name": "after", "match": {"labels": ["sleepy"]},
	 "depends_on": ["sleepy"],
	 "steps": [{"id": "w", "type": "shell", "run": "true"}]}
	EOF
	(cd repo && PLAN_OPTS=--allow-partial-success plan_of sleepy) >plan.json &&
	t0=$(now_ms) &&
	(cd repo && test_expect_code 1 wf-run --timeout 500ms ../plan.json) >sum.json &&
	t1=$(now_ms) &&
	echo "took $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 5000 &&
	test_grep "\"overall_timeout_seconds\":1," sum.json &&
	test "$(wf_message sum.json sleepy)" = "the overall timeout passed" &&
	test "$(wf_status sum.json after)" = skipped
'

test_expect_success 'SIGTERM stops the steps and still writes the summary' '
	id=$(plan_id plan.json) &&
	rm -rf repo/.git/wf/logs &&
	wf-run -C repo --no-cache plan.json >sum.json 2>err &
	pid=$! &&
	i=0 &&
	while test ! -e repo/.git/wf/logs/$id/sleepy/nap.log && test $i -lt 100
	do
		sleep 0.1
		i=$((i + 1))
	done &&
	kill -TERM $pid &&
	wait $pid
	test $? -eq 1 &&
	test_grep "^wf-run: error: interrupted$" err &&
	test "$(wf_message sum.json sleepy)" = interrupted &&
	test_grep "\"error\":\"step .nap. was stopped: interrupted\"" sum.json
'

test_done
