#!/bin/sh
# wf-plan: bad plans (exit 3, the place named), plans already written
# before a bad one, usage errors (exit 2) and write errors (exit 4).

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t2000

# expect_input_error 'message' input: wf-plan on stdin exits 3, writes
# nothing, and says "wf-plan: error: <stdin>:message".
expect_input_error() {
	printf '%s' "$2" >in &&
	test_expect_code 3 wf-plan <in >out 2>err &&
	test ! -s out &&
	printf 'wf-plan: error: <stdin>:%s\n' "$1" >expect &&
	test_cmp expect err
}

test_expect_success 'a value that is not an object' '
	expect_input_error "1:1: expected an object, got an array" "[1]" &&
	expect_input_error "1:1: expected an object, got an integer" "7"
'

test_expect_success 'missing or ill-typed fields' '
	expect_input_error "1:1: missing field \"candidates\"" \
		"{\"item\": {}}" &&
	expect_input_error "1:1: missing field \"item\"" \
		"{\"candidates\": []}" &&
	expect_input_error "2:16: .candidates: expected an array of candidate objects" \
		"{\"item\": {},
 \"candidates\": {}}" &&
	expect_input_error "1:21: .item.number: expected an integer, got a string" \
		"{\"item\": {\"number\": \"7\"}, \"candidates\": []}" &&
	expect_input_error "1:29: .candidates[0]: expected an object, got a string" \
		"{\"item\": {}, \"candidates\": [\"a\"]}" &&
	expect_input_error "1:38: .candidates[0].name: invalid workflow name '"'"'a b'"'"' (1-100 of A-Z a-z 0-9 . _ -, not starting with . or -)" \
		"{\"item\": {}, \"candidates\": [{\"name\": \"a b\"}]}" &&
	expect_input_error "1:41: .extra: unknown field" \
		"{\"item\": {}, \"candidates\": [], \"extra\": true}"
'

test_expect_success 'two candidates of one name' '
	expect_input_error "3:11: .candidates[2].name: duplicate candidate name '"'"'a'"'"' (also .candidates[0])" \
		"{\"item\": {}, \"candidates\": [{\"name\": \"a\"},
 {\"name\": \"b\"},
 {\"name\": \"a\"}]}"
'

test_expect_success 'a dependency that is not a candidate' '
	expect_input_error "2:36: .candidates[1].depends_on[1]: dependency '"'"'x'"'"' of '"'"'b'"'"' is not among the candidates" \
		"{\"item\": {}, \"candidates\": [{\"name\": \"a\"},
 {\"name\": \"b\", \"depends_on\": [\"a\", \"x\"]}]}"
'

test_expect_success 'a dependency cycle is spelled out from its smallest name' '
	expect_input_error "3:34: .candidates[1].depends_on[0]: dependency cycle: build -> test -> package -> build" \
		"{\"item\": {}, \"candidates\": [
{\"name\": \"package\", \"depends_on\": [\"build\"]},
{\"name\": \"build\", \"depends_on\": [\"test\"]},
{\"name\": \"test\", \"depends_on\": [\"package\"]},
{\"name\": \"docs\", \"depends_on\": [\"package\"]}]}"
'

test_expect_success 'a cycle is found the same whatever the order of candidates' '
	expect_input_error "2:34: .candidates[1].depends_on[0]: dependency cycle: build -> test -> package -> build" \
		"{\"item\": {}, \"candidates\": [{\"name\": \"docs\", \"depends_on\": [\"package\"]},
{\"name\": \"build\", \"depends_on\": [\"test\"]},
{\"name\": \"test\", \"depends_on\": [\"package\"]},
{\"name\": \"package\", \"depends_on\": [\"build\"]}]}"
'

test_expect_success 'plans before a bad one stay written, nothing after it' '
	{
		cat "$T/plan-482.json" &&
		echo "{\"item\": {}, \"candidates\": [{\"name\": \"a\", \"depends_on\": [\"a2\"]}]}" &&
		cat "$T/plan-482.json"
	} >in &&
	test_expect_code 3 wf-plan in >actual 2>err &&
	test_cmp "$T/expect-482.jsonl" actual &&
	echo "wf-plan: error: in:88:58: .candidates[0].depends_on[0]: dependency '"'"'a2'"'"' of '"'"'a'"'"' is not among the candidates" >expect &&
	test_cmp expect err
'

test_expect_success 'malformed JSON midway: earlier plans stay, exit 3' '
	{
		cat "$T/plan-none.json" &&
		printf "{\"item\": {},}\n"
	} >in &&
	test_expect_code 3 wf-plan <in >actual 2>err &&
	test $(wc -l <actual) -eq 1 &&
	test_grep "^wf-plan: error: <stdin>:3:" err
'

test_expect_success 'a bad number for --max-parallel is a usage error' '
	for n in x -1 4x "" 99999999999999999999999; do
		test_expect_code 2 wf-plan --max-parallel "$n" \
			"$T/plan-482.json" >out 2>err &&
		test ! -s out &&
		test_grep "^wf-plan: error: invalid number .$n. for --max-parallel$" err ||
		exit 1
	done
'

test_expect_success 'an unknown format is a usage error' '
	test_expect_code 2 wf-plan --format yaml "$T/plan-482.json" \
		>out 2>err &&
	test ! -s out &&
	cat >expect <<-\EOF &&
	wf-plan: error: unknown format '"'"'yaml'"'"' (use json, text or dot)
	Try '"'"'wf-plan --help'"'"' for more information.
	EOF
	test_cmp expect err
'

test_expect_success 'options missing their value, or given one they take none' '
	test_expect_code 2 wf-plan --max-parallel </dev/null >out 2>err &&
	test ! -s out &&
	test_grep "^wf-plan: error: option .--max-parallel. needs a value$" err &&
	test_expect_code 2 wf-plan --explain=yes </dev/null 2>err &&
	test_grep "^wf-plan: error: option .--explain. takes no value$" err &&
	test_expect_code 2 wf-plan -x </dev/null 2>err &&
	test_grep "^wf-plan: error: unknown option .-x.$" err
'

test_expect_success 'a missing file is exit 4, after the plans before it' '
	test_expect_code 4 wf-plan "$T/plan-482.json" missing.json \
		>actual 2>err &&
	test_cmp "$T/expect-482.jsonl" actual &&
	echo "wf-plan: error: cannot open '"'"'missing.json'"'"': No such file or directory" >expect &&
	test_cmp expect err
'

test_expect_success 'a full disk is an error, exit 4' '
	if ! test -w /dev/full; then
		echo "# skipped: no /dev/full" &&
		exit 0
	fi
	test_expect_code 4 wf-plan "$T/plan-482.json" >/dev/full 2>err &&
	test_grep "^wf-plan: error: cannot write to stdout" err
'

test_done
