#!/bin/sh
# wf-match: the telemetry contract example, streams of items, bad input,
# --exit-status, determinism and the command line.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t1000

test_expect_success 'issue 482 matches three workflows by label' '
	wf-match --catalog "$T/catalog" "$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success 'stdin and "-" read the same as a file' '
	wf-match --catalog "$T/catalog" <"$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	wf-match --catalog "$T/catalog" - <"$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success '--pretty indents the same plan' '
	wf-match --pretty --catalog "$T/catalog" "$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482-pretty.json" actual
'

test_expect_success 'one plan per item, unknown fields kept, vetoes' '
	wf-match --catalog "$T/catalog" "$T/items.jsonl" >actual &&
	test_cmp "$T/expect-items.jsonl" actual
'

test_expect_success 'operands are read in order, "-" among them' '
	head -n 1 "$T/expect-items.jsonl" >expect &&
	cat "$T/expect-items.jsonl" >>expect &&
	cat "$T/expect-482.jsonl" >>expect &&
	wf-match --catalog "$T/catalog" "$T/issue-482.json" - \
		"$T/issue-482.json" <"$T/items.jsonl" >actual &&
	test_cmp expect actual
'

test_expect_success 'each plan is written as soon as its item is read' '
	mkfifo pipe || exit 1
	wf-match --catalog "$T/catalog" <pipe >out 2>err &
	pid=$!
	exec 3>pipe &&
	cat "$T/issue-482.json" >&3 &&
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
	wf-match --catalog "$T/catalog" </dev/null >actual 2>err &&
	test ! -s actual &&
	test ! -s err &&
	printf " \n\t\n" | wf-match --catalog "$T/catalog" >actual &&
	test ! -s actual
'

test_expect_success 'an item that is not an object is refused with exit 3' '
	printf "{\"labels\": []}\n[1]\n" >in &&
	test_expect_code 3 wf-match --catalog "$T/catalog" <in >actual 2>err &&
	test $(wc -l <actual) -eq 1 &&
	echo "wf-match: error: <stdin>:2:1: expected an object, got an array" >expect &&
	test_cmp expect err
'

test_expect_success 'malformed JSON midway: earlier plans stay, exit 3' '
	{
		head -n 1 "$T/items.jsonl" &&
		printf "{\"number\": 2,}\n" &&
		head -n 1 "$T/items.jsonl"
	} >in &&
	test_expect_code 3 wf-match --catalog "$T/catalog" <in >actual 2>err &&
	test_cmp "$T/expect-482.jsonl" actual &&
	echo "wf-match: error: <stdin>:2:14: string or '"'"'}'"'"' expected near '"'"'}'"'"'" >expect &&
	test_cmp expect err
'

test_expect_success 'truncated JSON is refused with its place' '
	printf "{\"labels\": [\"policy\"" |
	test_expect_code 3 wf-match --catalog "$T/catalog" >actual 2>err &&
	test ! -s actual &&
	echo "wf-match: error: <stdin>:1:21: '"'"']'"'"' expected near end of file" >expect &&
	test_cmp expect err
'

test_expect_success 'a bad field is named by its path' '
	printf "{\"number\": 1,\n \"labels\": [\"policy\", 5]}\n" >in &&
	test_expect_code 3 wf-match --catalog "$T/catalog" <in >actual 2>err &&
	test ! -s actual &&
	echo "wf-match: error: <stdin>:2:23: .labels[1]: expected a string, got an integer" >expect &&
	test_cmp expect err &&
	echo "{\"number\": \"482\"}" >bad.json &&
	test_expect_code 3 wf-match --catalog "$T/catalog" bad.json 2>err &&
	echo "wf-match: error: bad.json:1:12: .number: expected an integer, got a string" >expect &&
	test_cmp expect err &&
	echo "{\"title\": [\"x\"]}" >bad.json &&
	test_expect_code 3 wf-match --catalog "$T/catalog" bad.json 2>err &&
	echo "wf-match: error: bad.json:1:11: .title: expected a string, got an array" >expect &&
	test_cmp expect err
'

test_expect_success 'no match is a normal answer without --exit-status' '
	echo "{\"labels\": [\"other\"]}" >none.json &&
	wf-match --catalog "$T/catalog" none.json >actual &&
	echo "{\"item\":{\"labels\":[\"other\"]},\"candidates\":[],\"selection_reason\":\"no_match\",\"selection_message\":\"No workflow matched\"}" >expect &&
	test_cmp expect actual
'

test_expect_success '--exit-status: 1 when no item matched, plans still written' '
	test_expect_code 1 wf-match --exit-status --catalog "$T/catalog" \
		none.json >actual &&
	test_cmp expect actual &&
	test_expect_code 1 wf-match --exit-status --catalog "$T/catalog" \
		</dev/null >actual &&
	test ! -s actual
'

test_expect_success '--exit-status: 0 when some item matched' '
	wf-match --exit-status --catalog "$T/catalog" none.json \
		"$T/issue-482.json" none.json >actual &&
	test $(wc -l <actual) -eq 3
'

test_expect_success 'catalog file names and order do not change the output' '
	mkdir renamed &&
	cp "$T/catalog/policy-overview.json" renamed/0-first.json &&
	cp "$T/catalog/enforcement-snapshot.json" renamed/5.json &&
	cp "$T/catalog/compliance-advisory.json" renamed/z-last.json &&
	wf-match --catalog renamed "$T/items.jsonl" >actual &&
	test_cmp "$T/expect-items.jsonl" actual &&
	wf-match --catalog renamed/ "$T/items.jsonl" >actual &&
	test_cmp "$T/expect-items.jsonl" actual
'

test_expect_success 'a missing operand is reported before the catalog is read' '
	test_expect_code 4 wf-match --catalog no-such-catalog \
		"$T/issue-482.json" missing.json >actual 2>err &&
	test ! -s actual &&
	echo "wf-match: error: cannot open '"'"'missing.json'"'"': No such file or directory" >expect &&
	test_cmp expect err
'

test_expect_success '--help goes to stdout with exit 0' '
	wf-match --help >out 2>err &&
	test_grep "^usage: wf-match " out &&
	test_grep "changed-from REV" out &&
	test ! -s err
'

test_expect_success 'an unknown option is a usage error, exit 2' '
	test_expect_code 2 wf-match --catalog "$T/catalog" --frobnicate \
		</dev/null >out 2>err &&
	test ! -s out &&
	cat >expect <<-\EOF &&
	wf-match: error: unknown option '"'"'--frobnicate'"'"'
	Try '"'"'wf-match --help'"'"' for more information.
	EOF
	test_cmp expect err &&
	test_expect_code 2 wf-match -q </dev/null 2>err &&
	test_grep "^wf-match: error: unknown option .-q.$" err
'

test_expect_success 'an option missing its value, or given one it takes none: exit 2' '
	test_expect_code 2 wf-match --catalog </dev/null >out 2>err &&
	test ! -s out &&
	test_grep "^wf-match: error: option .--catalog. needs a value$" err &&
	test_expect_code 2 wf-match -C </dev/null 2>err &&
	test_grep "^wf-match: error: option .-C. needs a value$" err &&
	test_expect_code 2 wf-match --exit-status=yes </dev/null 2>err &&
	test_grep "^wf-match: error: option .--exit-status. takes no value$" err
'

test_expect_success '--version names the tool' '
	wf-match --version >out &&
	test_grep "^wf-match \(wf\) [0-9]" out
'

test_expect_success 'piped into wf-plan, issue 482 gives the contract payload' '
	cat >expect <<-\EOF &&
	"issue_number":482,"stage_count":2,"workflow_count":3,"allow_partial_success":true,"preview_only":false,"selection_reason":"multi_label_match","selection_message":"Labels matched compliance-advisory, enforcement-snapshot and policy-overview workflows","stages":[{"index":0,"run_mode":"parallel","workflows":["compliance-advisory","policy-overview"],"blocking_conflicts":["deliverable:weekly-report"]},{"index":1,"run_mode":"sequential","workflows":["enforcement-snapshot"],"blocking_conflicts":[]}],
	EOF
	wf-match --catalog "$T/catalog" "$T/issue-482.json" |
		wf-plan --allow-partial-success >plan &&
	test $(wc -l <plan) -eq 1 &&
	grep -F -f expect plan &&
	test_grep "^\{\"plan_id\":\"multiwf-[0-9a-f]{32}\",\"issue_number\":482," plan
'

test_expect_success 'the pipeline gives the same bytes whatever the catalog file order' '
	mkdir shuffled &&
	i=9 &&
	for f in "$T"/catalog/*.json; do
		cp "$f" shuffled/$i-$(basename "$f") && i=$((i - 1)) || exit 1
	done &&
	wf-match --catalog "$T/catalog" "$T/issue-482.json" | wf-plan >a &&
	wf-match --catalog shuffled "$T/issue-482.json" | wf-plan >b &&
	test_cmp a b
'

test_expect_success 'the examples of the man page run as written' '
	mkdir top &&
	cp -R "$WF_SRC/contrib" top/ &&
	mkdir -p top/.wf &&
	cp -R top/contrib/demo/catalog top/.wf/workflows &&
	git -C top init -q &&
	git -C top add . &&
	git -C top commit -q -m "demo" &&
	echo "int lex(void);" >top/contrib/demo/lexer.c &&
	git -C top add . &&
	git -C top commit -q -m "lexer" &&
	awk -f "$TEST_DIRECTORY/examples.awk" "$WF_SRC/man/wf-match.1" &&
	test $(ls example*.sh | wc -l) -eq 5 &&
	for f in example*.sh; do
		(cd top && sh ../$f) >out 2>err
		rc=$?
		if test $rc -gt 1 || test ! -s out || test -s err; then
			echo "$f exited $rc:" && cat $f out err
			exit 1
		fi
	done
'

test_done
