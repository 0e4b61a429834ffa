#!/bin/sh
# wf-emit change and metrics: wf.change.* events from what wf-enqueue
# (a real queue in a real repository) and wf-apply print, and batch
# metrics over summaries and change events, each counted once.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t6000

test_expect_success 'setup: a repository and two patches' '
	git init -q repo &&
	(
		cd repo &&
		printf "a\nb\nc\n" >x &&
		git add . && git commit -q -m one &&
		printf "a\nB\nc\n" >x && git diff >../one.diff &&
		printf "A\nb\nc\n" >x && git diff >../two.diff &&
		git checkout -q x
	)
'

test_expect_success 'wf-enqueue | wf-emit change: enqueued events' '
	(
		cd repo &&
		wf-enqueue --patch ../one.diff --id t/1 --target main |
			wf-emit change --output ../events.jsonl --tee &&
		wf-enqueue --patch ../two.diff --id t/2 --target main \
			--depends-on t/1 |
			wf-emit change --output ../events.jsonl --tee &&
		wf-enqueue --patch ../one.diff --id t/1 --target main |
			wf-emit change --output ../events.jsonl --tee
	) >passed &&
	cat >expect-passed <<-\EOF &&
	{"id":"t/1","queue_id":1,"state":"queued","position":1}
	{"id":"t/2","queue_id":2,"state":"queued","position":2}
	{"id":"t/1","queue_id":1,"state":"queued","position":1,"existing":true}
	EOF
	test_cmp expect-passed passed &&
	cat >expect <<-\EOF &&
	{"change_id":"t/1","queue_id":1,"state":"queued","position":1,"existing":false}
	{"change_id":"t/2","queue_id":2,"state":"queued","position":2,"existing":false}
	{"change_id":"t/1","queue_id":1,"state":"queued","position":1,"existing":true}
	EOF
	test_cmp expect events.jsonl
'

test_expect_success 'wf-apply lines: landed, failed and dead events' '
	wf-emit change "$T/changes.jsonl" >actual &&
	test_cmp "$T/expect-changes.jsonl" actual &&
	# "reason" is taken for "error": the dead change says why.
	test_grep "^\{\"change_id\":\"task-16/1\",\"queue_id\":3,\"state\":\"dead\",\"error\":\"patch does not apply: README\",\"attempts\":5\}$" actual
'

test_expect_success 'change events in CloudEvents: typed by state, subject the change' '
	wf-emit change --cloudevents --time 1700000000 "$T/changes.jsonl" >ce &&
	sed -e "s/.*\"type\":\"\([^\"]*\)\",\"subject\":\"\([^\"]*\)\".*/\1 \2/" \
		ce >types &&
	cat >expect <<-\EOF &&
	wf.change.enqueued task-17/1
	wf.change.enqueued task-17/2
	wf.change.enqueued task-9/1
	wf.change.landed task-17/1
	wf.change.landed task-18/1
	wf.change.failed task-17/2
	wf.change.dead task-16/1
	EOF
	test_cmp expect types
'

test_expect_success 'metrics over summaries and change events' '
	cat "$T/summary-executed.json" "$T/summary-failed.json" \
		"$T/changes.jsonl" >batch.jsonl &&
	wf-emit execution_summary --skipped "$T/plan-preview.json" \
		>>batch.jsonl &&
	wf-emit plan_created "$T/expect-plan_created.jsonl" >>batch.jsonl &&
	wf-emit metrics batch.jsonl >actual &&
	test_cmp "$T/expect-metrics.jsonl" actual
'

test_expect_success 'the same events as wf-emit wrote them, bare or enveloped, count the same' '
	{
		wf-emit execution_summary "$T/summary-executed.json" \
			"$T/summary-failed.json" &&
		wf-emit change "$T/changes.jsonl" &&
		wf-emit execution_summary --skipped "$T/plan-preview.json" &&
		wf-emit plan_created "$T/expect-plan_created.jsonl"
	} >events &&
	# The emitted summary has no duration_ms and no steps (the
	# contract has neither).
	python3 "$T/jsontool.py" del execution_duration_ms step_duration_ms \
		<"$T/expect-metrics.jsonl" >expect &&
	wf-emit metrics events | python3 "$T/jsontool.py" del \
		execution_duration_ms step_duration_ms >actual &&
	test_cmp expect actual &&
	wf-emit change --cloudevents "$T/changes.jsonl" >in-ce &&
	wf-emit execution_summary --cloudevents "$T/summary-executed.json" \
		"$T/summary-failed.json" >>in-ce &&
	wf-emit execution_summary --cloudevents --skipped \
		"$T/plan-preview.json" >>in-ce &&
	wf-emit plan_created --cloudevents "$T/expect-plan_created.jsonl" \
		>>in-ce &&
	wf-emit metrics in-ce | python3 "$T/jsontool.py" del \
		execution_duration_ms step_duration_ms >actual &&
	test_cmp expect actual
'

test_expect_success 'an event delivered twice is counted once' '
	cat batch.jsonl batch.jsonl | wf-emit metrics >actual &&
	test_grep "^\{\"event_count\":11,\"duplicate_count\":11,\"plan_count\":1,\"summary_count\":3," actual &&
	sed -e "s/\"event_count\":11,\"duplicate_count\":11,/\"event_count\":11,\"duplicate_count\":0,/" \
		actual >same &&
	test_cmp "$T/expect-metrics.jsonl" same
'

test_expect_success 'metrics of nothing: zeros and null durations' '
	wf-emit metrics </dev/null >actual &&
	echo "{\"event_count\":0,\"duplicate_count\":0,\"plan_count\":0,\"summary_count\":0,\"executed_count\":0,\"skipped_count\":0,\"multi_workflow_count\":0,\"partial_success_count\":0,\"conflict_count\":0,\"workflow_executed_count\":0,\"workflow_skipped_count\":0,\"workflow_failed_count\":0,\"enqueued_count\":0,\"landed_count\":0,\"failed_count\":0,\"dead_count\":0,\"execution_duration_ms\":{\"count\":0,\"total_ms\":0,\"min_ms\":null,\"max_ms\":null,\"mean_ms\":null},\"step_duration_ms\":{\"count\":0,\"total_ms\":0,\"min_ms\":null,\"max_ms\":null,\"mean_ms\":null},\"landing_duration_ms\":{\"count\":0,\"total_ms\":0,\"min_ms\":null,\"max_ms\":null,\"mean_ms\":null}}" >expect &&
	test_cmp expect actual
'

test_expect_success 'metrics --tee passes the batch through and sends the one event' '
	wf-emit metrics --output metrics.jsonl --tee batch.jsonl >passed &&
	test_cmp batch.jsonl passed &&
	test_cmp "$T/expect-metrics.jsonl" metrics.jsonl
'

test_done
