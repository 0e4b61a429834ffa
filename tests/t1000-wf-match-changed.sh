#!/bin/sh
# wf-match --changed-from: items without "paths" take the paths changed
# between a revision and HEAD, in a real repository.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t1000

test_expect_success 'setup: a repository with a catalog and two commits' '
	git init -q repo &&
	mkdir -p repo/.wf/workflows repo/src repo/docs/guide &&
	cp "$T"/changed/catalog/*.json repo/.wf/workflows/ &&
	echo "int main(void) { return 0; }" >repo/src/main.c &&
	echo "old" >repo/docs/guide/old.md &&
	echo "readme" >repo/README &&
	git -C repo add . &&
	git -C repo commit -q -m "first" &&
	git -C repo tag first &&
	echo "int main(void) { return 1; }" >repo/src/main.c &&
	git -C repo mv docs/guide/old.md docs/guide/new.md &&
	echo "notes" >repo/NOTES &&
	git -C repo add . &&
	git -C repo commit -q -m "second"
'

test_expect_success 'an item without paths gets the changed paths' '
	(
		cd repo/src &&
		wf-match --changed-from first "$T/changed/item-nopaths.json"
	) >actual &&
	test_cmp "$T/changed/expect-nopaths.jsonl" actual
'

test_expect_success 'an item with paths keeps its own, even none' '
	(
		cd repo &&
		wf-match --changed-from first "$T/changed/item-paths.jsonl"
	) >actual &&
	test_cmp "$T/changed/expect-paths.jsonl" actual
'

test_expect_success '--changed-from with --catalog and -C' '
	wf-match -C repo --catalog "$T/changed/catalog" --changed-from HEAD~1 \
		"$T/changed/item-nopaths.json" >actual &&
	test_cmp "$T/changed/expect-nopaths.jsonl" actual
'

test_expect_success 'no change since REV: no paths, no path match' '
	(
		cd repo &&
		wf-match --changed-from HEAD --exit-status \
			"$T/changed/item-nopaths.json"
	) >actual;
	test $? -eq 1 &&
	test_grep "\"paths\":\[\]" actual &&
	test_grep "\"selection_reason\":\"no_match\"" actual
'

test_expect_success 'an unknown revision: exit 3 before any item is read' '
	(
		cd repo &&
		test_expect_code 3 wf-match --changed-from no-such-rev \
			"$T/changed/item-nopaths.json"
	) >actual 2>err &&
	test ! -s actual &&
	test_grep "^wf-match: error: unknown revision .no-such-rev.: " err &&
	test $(wc -l <err) -eq 1
'

test_expect_success 'a blob is not a revision to diff from: exit 3' '
	(
		cd repo &&
		test_expect_code 3 wf-match --changed-from HEAD:README \
			"$T/changed/item-nopaths.json"
	) >actual 2>err &&
	test ! -s actual &&
	test_grep "^wf-match: error: revision .HEAD:README. does not name a commit or tree" err
'

test_expect_success '--changed-from needs a repository even with --catalog' '
	outside=$(mktemp -d "$TEST_OUTSIDE/wf-test.XXXXXX") &&
	(
		cd "$outside" &&
		test_expect_code 3 wf-match --catalog "$T/changed/catalog" \
			--changed-from HEAD </dev/null
	) >actual 2>err;
	rc=$?;
	rmdir "$outside" &&
	test $rc -eq 0 &&
	test ! -s actual &&
	test_grep "^wf-match: error: not a git repository" err
'

test_done
