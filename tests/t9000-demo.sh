#!/bin/sh
# The demo that `make demo` runs works, and shows what it says it shows.

. "$(dirname "$0")/lib.sh"

test_expect_success 'the demo runs to the end' '
	sh "$WF_SRC/contrib/demo/run.sh" >out 2>err &&
	test ! -s err
'

test_expect_success 'it plans issue 482 as the telemetry contract does' '
	test_grep "^stage 0, parallel: compliance-advisory, policy-overview$" out &&
	test_grep "^  blocking conflicts: deliverable:weekly-report$" out &&
	test_grep "^stage 1, sequential: enforcement-snapshot$" out
'

test_expect_success 'it queues two changes in a throwaway repository' '
	test_grep "^\{\"id\":\"issue-501/1\",\"queue_id\":1,\"state\":\"queued\"" out &&
	test_grep "^ +2 +queued .* issue-502/1$" out
'

test_expect_success 'it records the events of its run with wf-emit and shows them' '
	test_grep "^[0-9]+ events in .*/events.jsonl$" out &&
	test_grep "^\{\"plan_id\":\"multiwf-[0-9a-f]{32}\",\"issue_number\":482," out &&
	test_grep "^\{\"issue_number\":482,.*\"skip_reason\":\"preview_only_guard\"\}$" out &&
	test_grep "^\{\"change_id\":\"issue-501/1\",\"queue_id\":1,\"state\":\"queued\",\"position\":1,\"existing\":false\}$" out &&
	test_grep "^  \"enqueued_count\": 6,$" out &&
	test_grep "^  \"landed_count\": 6,$" out
'

test_expect_success 'the whole chain lands every change and the deliverables' '
	test $(grep -c "^{\"id\":\"[^\"]*\",\"queue_id\":[0-9]*,\"state\":\"landed\"" out) -eq 6 &&
	test_grep "^  study/482/compliance-advisory/report.md$" out &&
	test_grep "^  study/482/enforcement-snapshot/digest.md$" out &&
	test_grep "^  study/482/policy-overview/summary.md$" out &&
	test_grep "^  site/502/index.html$" out &&
	test_grep "^# Compliance advisory for #482$" out &&
	test_grep "^  \"multi_workflow_count\": 3,$" out
'

test_expect_success 'it runs a server with hooks: four clones push to refs/for/main at once, all land, main is protected' '
	test $(grep -Ec "^remote: wf-hooks: queued .main@[0-9a-f]{12}. for main at position [1-4] " out) -eq 4 &&
	test $(grep -Ec "^ \* \[new reference\] +HEAD -> refs/wf/changes/[0-9]+$" out) -eq 5 &&
	! grep -q "cannot lock ref" out &&
	test_grep "^remote: wf-hooks: error: refs/heads/main: .main. is protected" out &&
	test_grep "^remote: wf-hooks: .main:typo@[0-9a-f]{12}. landed: main is now at [0-9a-f]{12}" out &&
	test_grep "^[0-9a-f]+ alice: Punctuate alice.txt$" out &&
	test_grep "^        main:typo@[0-9a-f]{12}$" out &&
	test $(grep -Ec "^ +[0-9]+ +landed .* main(:typo)?@" out) -eq 5
'

test_done
