#!/bin/sh
# wf-plan: the telemetry contract example, stages from dependencies,
# conflicts and the parallelism bound, the deliverable manifest, the
# output formats, determinism and streams of plans.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t2000

test_expect_success 'issue 482 gives the stages of the telemetry contract' '
	wf-plan "$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	cat >stages <<-\EOF &&
	"stages":[{"index":0,"run_mode":"parallel","workflows":["compliance-advisory","policy-overview"],"blocking_conflicts":["deliverable:weekly-report"]},{"index":1,"run_mode":"sequential","workflows":["enforcement-snapshot"],"blocking_conflicts":[]}]
	EOF
	grep -F -f stages actual &&
	test_grep "^\{\"plan_id\":\"multiwf-[0-9a-f]{32}\",\"issue_number\":482,\"stage_count\":2,\"workflow_count\":3,\"allow_partial_success\":false,\"preview_only\":false,\"selection_reason\":\"multi_label_match\"," actual
'

test_expect_success 'stdin and "-" read the same as a file' '
	wf-plan <"$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	wf-plan - <"$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success 'the options are carried into the plan, and change its id' '
	wf-plan --allow-partial-success --preview-only "$T/plan-482.json" \
		>actual &&
	test_grep "\"allow_partial_success\":true,\"preview_only\":true," actual &&
	id1=$(sed -e "s/^{\"plan_id\":\"\([^\"]*\)\".*/\1/" actual) &&
	id2=$(sed -e "s/^{\"plan_id\":\"\([^\"]*\)\".*/\1/" \
		"$T/expect-482.jsonl") &&
	test "$id1" != "$id2"
'

test_expect_success 'plan_id is the git blob id of the plan as written, without it' '
	wf-plan "$T/plan-482.json" >actual &&
	id=$(sed -e "s/^{\"plan_id\":\"multiwf-\([0-9a-f]*\)\".*/\1/" actual) &&
	sed -e "s/^{\"plan_id\":\"[^\"]*\",/{/" actual | tr -d "\n" >rest &&
	full=$(git hash-object rest) &&
	test ${#id} -eq 32 &&
	test "$id" = "$(printf %.32s "$full")"
'

test_expect_success '--pretty indents the same plan' '
	wf-plan --pretty "$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482-pretty.json" actual
'

test_expect_success '--format text for people, with --explain' '
	wf-plan --format text --explain --allow-partial-success \
		"$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482.txt" actual
'

test_expect_success '--format dot: a cluster per stage' '
	wf-plan --format dot "$T/plan-482.json" >actual &&
	test_cmp "$T/expect-482.dot" actual
'

test_expect_success 'Graphviz reads the dot output, odd conflict keys too' '
	if ! command -v dot >/dev/null 2>&1; then
		echo "# skipped: no dot" &&
		exit 0
	fi
	dot -Tsvg "$T/expect-482.dot" >out.svg &&
	test_grep "<svg" out.svg &&
	printf "%s" "{\"item\": {}, \"candidates\": [{\"name\": \"a\",
		\"conflicts\": [\"k\\\"x\\\\\\\\y\\nz\"]}, {\"name\": \"c\",
		\"conflicts\": [\"k\\\"x\\\\\\\\y\\nz\"]}]}" >odd.json &&
	wf-plan --format dot odd.json >odd.dot &&
	test_grep "blocking: k" odd.dot &&
	dot -Tsvg odd.dot >odd.svg 2>err &&
	test ! -s err
'

test_expect_success 'dependencies, conflicts, a bound of 2 and renamed deliverables' '
	wf-plan --max-parallel 2 --explain "$T/plan-release.json" >actual &&
	test_cmp "$T/expect-release.jsonl" actual &&
	wf-plan --max-parallel 2 --explain --format text \
		"$T/plan-release.json" >actual &&
	test_cmp "$T/expect-release.txt" actual &&
	wf-plan --max-parallel 2 --format dot "$T/plan-release.json" >actual &&
	test_cmp "$T/expect-release.dot" actual
'

test_expect_success 'the order of the candidates does not change a byte' '
	for f in plan-release-reversed.json plan-release-shuffled.json; do
		wf-plan --max-parallel 2 --explain "$T/$f" >actual &&
		test_cmp "$T/expect-release.jsonl" actual || exit 1
	done
'

test_expect_success '--max-parallel 1 runs one workflow per stage, 0 has no bound' '
	wf-plan --max-parallel 1 "$T/plan-482.json" >actual &&
	test_grep "\"stage_count\":3," actual &&
	test_grep "\"max_parallel\":1," actual &&
	echo "{\"item\": {}, \"candidates\": [{\"name\": \"a\"}, {\"name\": \"b\"},
		{\"name\": \"c\"}, {\"name\": \"d\"}, {\"name\": \"e\"}]}" >five.json &&
	wf-plan five.json >actual &&
	test_grep "\"stage_count\":2,.*\"workflows\":\[\"a\",\"b\",\"c\",\"d\"\]" actual &&
	wf-plan --max-parallel 0 five.json >actual &&
	test_grep "\"stage_count\":1,.*\"workflows\":\[\"a\",\"b\",\"c\",\"d\",\"e\"\]" actual &&
	test_grep "\"max_parallel\":0," actual
'

test_expect_success 'no candidates: a valid plan of no stages' '
	wf-plan "$T/plan-none.json" >actual &&
	sed -e "s/\"plan_id\":\"[^\"]*\"/\"plan_id\":\"X\"/" actual >got &&
	cat >expect <<-\EOF &&
	{"plan_id":"X","issue_number":17,"stage_count":0,"workflow_count":0,"allow_partial_success":false,"preview_only":false,"selection_reason":"no_match","selection_message":"No workflow matched","stages":[],"max_parallel":4,"item":{"number":17,"title":"Nothing to do"},"workflows":[],"deliverable_manifest":{"entries":[]}}
	EOF
	test_cmp expect got
'

test_expect_success 'one plan per input, in the order of the operands' '
	cat "$T/plan-482.json" "$T/plan-none.json" >two.json &&
	wf-plan two.json >actual &&
	test $(wc -l <actual) -eq 2 &&
	head -n 1 actual >first &&
	test_cmp "$T/expect-482.jsonl" first &&
	wf-plan "$T/plan-none.json" - "$T/plan-482.json" \
		<"$T/plan-482.json" >actual &&
	test $(wc -l <actual) -eq 3 &&
	sed -n 2p actual >second &&
	test_cmp "$T/expect-482.jsonl" second
'

test_expect_success 'text plans are separated by a blank line' '
	wf-plan --format text "$T/plan-482.json" "$T/plan-none.json" >actual &&
	test $(grep -c "^plan: multiwf-" actual) -eq 2 &&
	test $(grep -c "^$" actual) -eq 5
'

test_expect_success 'each plan is written as soon as its input is read' '
	mkfifo pipe || exit 1
	wf-plan <pipe >out 2>err &
	pid=$!
	exec 3>pipe &&
	cat "$T/plan-482.json" >&3 &&
	i=0 &&
	while test ! -s out && test $i -lt 100; do
		sleep 0.1
		i=$((i + 1))
	done
	# The input is still open: the plan came out on its own.
	test_cmp "$T/expect-482.jsonl" out
	rc=$?
	exec 3>&-
	wait $pid &&
	test $rc -eq 0 &&
	test ! -s err
'

test_expect_success 'empty input writes nothing and succeeds' '
	wf-plan </dev/null >actual 2>err &&
	test ! -s actual &&
	test ! -s err
'

test_expect_success 'a long chain and a hot conflict key plan quickly' '
	awk "BEGIN {
		printf \"{\\\"item\\\": {\\\"number\\\": 9}, \\\"candidates\\\": [\"
		for (i = 0; i < 3000; i++) {
			printf \"%s{\\\"name\\\": \\\"c%d\\\"\", i ? \",\" : \"\", i
			if (i > 0)
				printf \", \\\"depends_on\\\": [\\\"c%d\\\"]\", i - 1
			printf \"}\"
			printf \",{\\\"name\\\": \\\"h%d\\\", \\\"conflicts\\\": [\\\"hot\\\"]}\", i
		}
		print \"]}\"
	}" >big.json &&
	wf-plan --max-parallel 0 big.json >actual &&
	test_grep "\"stage_count\":3000,\"workflow_count\":6000," actual
'

test_expect_success 'the examples of the man page run as written' '
	mkdir top &&
	cp -R "$WF_SRC/contrib" top/ &&
	awk -f "$TEST_DIRECTORY/examples.awk" "$WF_SRC/man/wf-plan.1" &&
	test $(ls example*.sh | wc -l) -ge 4 &&
	for f in example*.sh; do
		(cd top && sh ../$f) >out 2>err
		rc=$?
		if test $rc -ne 0 || test ! -s out || test -s err; then
			echo "$f exited $rc:" && cat $f out err
			exit 1
		fi
	done
'

test_done
