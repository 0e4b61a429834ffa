#!/bin/sh
# wf-run: retries, non-retryable exit codes, timeouts that kill the whole
# process group, assert and template steps, output tails and logs, and
# workflows that write outside their sandbox.

. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/t7000/helpers.sh"

test_expect_success 'setup' '
	setup_repo
'

test_expect_success 'a step that fails twice then passes is retried' '
	cat >cat/flaky.json <<-\EOF &&
	{"name": "flaky", "match": {"labels": ["flaky"]},
	 "steps": [{"id": "try", "type": "shell",
	            "retry": {"attempts": 3, "delay": "100ms", "factor": 2},
	            "run": "n=$(cat n 2>/dev/null || echo 0); n=$((n + 1)); echo $n >n; echo try $n; test $n -ge 3"}]}
	EOF
	(cd repo && plan_of flaky) >plan.json &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	test "$(wf_status sum.json flaky)" = executed &&
	test_grep "\"id\":\"try\",\"type\":\"shell\",\"status\":\"succeeded\",\"attempts\":3,\"exit_code\":0" sum.json &&
	test "$(step_output sum.json try)" = "try 3\\n" &&
	id=$(plan_id plan.json) &&
	log=repo/.git/wf/logs/$id/flaky/try.log &&
	printf "try 1\n--- attempt 2 ---\ntry 2\n--- attempt 3 ---\ntry 3\n" >expect &&
	test_cmp expect "$log" &&
	test_grep "\"log\":\"[^\"]*/\.git/wf/logs/$id/flaky/try\.log\"" sum.json
'

test_expect_success 'a non-retryable exit code is not retried (exit 1)' '
	cat >cat/fatal.json <<-\EOF &&
	{"name": "fatal", "match": {"labels": ["fatal"]},
	 "steps": [{"id": "die", "type": "shell", "run": "echo once >>runs; exit 2",
	            "retry": {"attempts": 5, "delay": "10ms",
	                      "non_retryable_exit_codes": [2]}}]}
	EOF
	(cd repo && plan_of fatal) >plan.json &&
	(cd repo && test_expect_code 1 wf-run ../plan.json) >sum.json &&
	test "$(wf_status sum.json fatal)" = failed &&
	test_grep "\"status\":\"failed\",\"attempts\":1,\"exit_code\":2" sum.json &&
	test "$(wf_message sum.json fatal)" = "step '"'"'die'"'"' failed with exit code 2 (not retryable)" &&
	test_grep "\"errors\":\[\{\"workflow_name\":\"fatal\",\"error\":\"step .die. failed with exit code 2 \(not retryable\)\"\}\],\"changes\":\[\]" sum.json
'

test_expect_success 'a timeout kills the whole process group' '
	cat >cat/slow.json <<-\EOF &&
	{"name": "slow", "match": {"labels": ["slow"]},
	 "steps": [{"id": "hang", "type": "shell", "timeout": "300ms",
	            "run": "sleep 30 & echo bg $!; sh -c \"trap \\\"\\\" TERM; echo deaf \\$\\$; exec sleep 30\" & sleep 30"}]}
	EOF
	(cd repo && plan_of slow) >plan.json &&
	t0=$(now_ms) &&
	(cd repo && test_expect_code 1 wf-run ../plan.json) >sum.json &&
	t1=$(now_ms) &&
	echo "took $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 10000 &&
	test "$(wf_message sum.json slow)" = "step '"'"'hang'"'"' timed out after 300ms" &&
	test_grep "\"timed_out\":true" sum.json &&
	out=$(step_output sum.json hang) &&
	bg=$(echo "$out" | sed -e "s/.*bg \([0-9]*\).*/\1/") &&
	deaf=$(echo "$out" | sed -e "s/.*deaf \([0-9]*\).*/\1/") &&
	echo "bg $bg deaf $deaf" &&
	test -n "$bg" && test -n "$deaf" &&
	! kill -0 "$bg" 2>/dev/null &&
	! kill -0 "$deaf" 2>/dev/null
'

test_expect_success 'assert and template steps' '
	cat >cat/doc.json <<-\EOF &&
	{"name": "doc", "match": {"labels": ["doc"]},
	 "deliverables": [{"name": "page", "path": "doc/{number}.md"}],
	 "steps": [
	   {"id": "count", "type": "shell", "run": "wc -l <README | tr -d \" \""},
	   {"id": "page", "type": "template", "dest": "doc/{number}.md",
	    "template": "# {title}\n\n{workflow} of {plan_id}: README has {step.count} line\n"},
	   {"id": "greet", "type": "template", "source": "greet.tpl",
	    "dest": "doc/greet.txt"},
	   {"id": "exists", "type": "assert", "file_exists": "doc/7.md"},
	   {"id": "says", "type": "assert",
	    "file_contains": {"path": "doc/7.md", "pattern": "^doc of multiwf-[0-9a-f]+: README has 1 line$"}},
	   {"id": "greeted", "type": "assert",
	    "file_contains": {"path": "doc/greet.txt", "pattern": "^Hello Seven, from doc of #7$"}},
	   {"id": "counted", "type": "assert",
	    "exit_code": {"step": "count", "equals": 0}}]}
	EOF
	(cd repo && plan_of doc) >plan.json &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	test "$(wf_status sum.json doc)" = executed &&
	test_grep "\"created_files\":\[\"doc/7.md\"\]" sum.json &&
	id=$(plan_id plan.json) &&
	content=$(printf "# Seven\n\ndoc of %s: README has 1 line\n" "$id" | base64 -w0) &&
	test_grep "\"content\":\"$content\"" sum.json
'

test_expect_success 'a failing assert fails the workflow, naming it' '
	cat >cat/check.json <<-\EOF &&
	{"name": "check", "match": {"labels": ["check"]},
	 "steps": [
	   {"id": "mk", "type": "shell", "run": "echo draft >notes.txt"},
	   {"id": "final", "type": "assert",
	    "file_contains": {"path": "notes.txt", "pattern": "^final$"}},
	   {"id": "after", "type": "shell", "run": "echo not reached"},
	   {"id": "cleanup", "type": "shell", "if": "failure",
	    "run": "echo cleaning up"}]}
	EOF
	(cd repo && plan_of check) >plan.json &&
	(cd repo && test_expect_code 1 wf-run ../plan.json) >sum.json &&
	test "$(wf_message sum.json check)" = "step '"'"'final'"'"' failed: '"'"'notes.txt'"'"' does not match '"'"'^final\$'"'"'" &&
	test_grep "\"id\":\"after\",\"type\":\"shell\",\"status\":\"skipped\"" sum.json &&
	test_grep "\"id\":\"cleanup\",\"type\":\"shell\",\"status\":\"succeeded\"" sum.json
'

test_expect_success 'the summary keeps the tail of the output, the log all of it' '
	cat >cat/loud.json <<-\EOF &&
	{"name": "loud", "match": {"labels": ["loud"]},
	 "steps": [{"id": "talk", "type": "shell",
	            "run": "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i + 1)); done"}]}
	EOF
	(cd repo && plan_of loud) >plan.json &&
	(cd repo && wf-run ../plan.json) >sum.json &&
	out=$(step_output sum.json talk) &&
	test ${#out} -le 5000 &&
	case "$out" in *"line 4999\\n") ;; *) false ;; esac &&
	id=$(plan_id plan.json) &&
	test $(wc -l <repo/.git/wf/logs/$id/loud/talk.log) -eq 5000
'

test_expect_success 'a workflow that writes outside its sandbox fails' '
	cat >cat/escape.json <<-\EOF &&
	{"name": "escape", "match": {"labels": ["escape"]},
	 "deliverables": [{"name": "x", "path": "x.txt"}],
	 "steps": [{"id": "out", "type": "shell",
	            "run": "echo x >x.txt; echo out >../escaped"}]}
	EOF
	cat >cat/link.json <<-\EOF &&
	{"name": "link", "match": {"labels": ["link"]},
	 "steps": [{"id": "ln", "type": "shell", "run": "ln -s /etc etc"}]}
	EOF
	cat >cat/dotgit.json <<-\EOF &&
	{"name": "dotgit", "match": {"labels": ["dotgit"]},
	 "steps": [{"id": "init", "type": "shell",
	            "run": "mkdir -p sub/.git && echo x >sub/.git/config"}]}
	EOF
	PLAN_OPTS=--allow-partial-success &&
	export PLAN_OPTS &&
	(cd repo && plan_of escape link dotgit) >plan.json &&
	(cd repo && test_expect_code 1 wf-run ../plan.json) >sum.json &&
	test "$(wf_status sum.json escape)" = failed &&
	test "$(wf_message sum.json escape)" = "'"'"'../escaped'"'"': written outside the sandbox" &&
	test "$(wf_message sum.json link)" = "symbolic link '"'"'etc'"'"' -> '"'"'/etc'"'"': absolute link target" &&
	test "$(wf_message sum.json dotgit)" = "'"'"'sub/.git'"'"': written in '"'"'.git'"'"'" &&
	test_grep "\"changes\":\[\]" sum.json
'

test_done
