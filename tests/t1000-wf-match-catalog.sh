#!/bin/sh
# wf-match: finding and validating the catalog.  A broken catalog stops
# wf-match with its place named before any item is read.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t1000

# catalog_error DIR CODE: wf-match refuses catalog DIR with exit CODE,
# writes nothing to stdout, and says what `expect` says on stderr.
catalog_error() {
	test_expect_code "$2" wf-match --catalog "$1" "$T/issue-482.json" \
		>actual 2>err &&
	test ! -s actual &&
	test_cmp expect err
}

test_expect_success 'setup: a good catalog to break' '
	mkdir good &&
	cp "$T"/catalog/*.json good/
'

test_expect_success 'malformed JSON in a definition: exit 3, file:line:col' '
	cp -R good json &&
	printf "{\"name\": \"x\",\n \"priority\": 1,}\n" >json/x.json &&
	echo "wf-match: error: json/x.json:2:16: string or '"'"'}'"'"' expected near '"'"'}'"'"'" >expect &&
	catalog_error json 3
'

test_expect_success 'an empty definition file: exit 3' '
	mkdir empty-file &&
	: >empty-file/a.json &&
	echo "wf-match: error: empty-file/a.json:1:1: empty file, expected a JSON value" >expect &&
	catalog_error empty-file 3
'

test_expect_success 'an unknown field: exit 3 naming the field' '
	cp -R good unknown &&
	printf "{\"name\": \"x\",\n \"match\": {\"label\": [\"a\"]}}\n" \
		>unknown/x.json &&
	echo "wf-match: error: unknown/x.json:2:21: .match.label: unknown field" >expect &&
	catalog_error unknown 3
'

test_expect_success 'a title that is not an ERE: exit 3' '
	mkdir regex &&
	printf "{\"name\": \"x\", \"match\": {\"title\": \"fix(\"}}\n" \
		>regex/x.json &&
	wf-match --catalog regex </dev/null 2>err;
	test_grep "^wf-match: error: regex/x\.json:1:34: \.match\.title: invalid regular expression .fix\(.: " err &&
	test $(wc -l <err) -eq 1 &&
	test_expect_code 3 wf-match --catalog regex </dev/null
'

test_expect_success 'a negative pathspec: exit 3' '
	mkdir negative &&
	printf "{\"name\": \"x\", \"match\": {\"paths\": [\"!src\"]}}\n" \
		>negative/x.json &&
	echo "wf-match: error: negative/x.json:1:35: .match.paths[0]: unsupported pathspec '"'"'!src'"'"': no '"'"'!'"'"' negation or '"'"':'"'"' magic" >expect &&
	catalog_error negative 3
'

test_expect_success 'a name defined in two files: exit 3 naming both' '
	cp -R good dup &&
	sed -e "s/enforcement-snapshot/policy-overview/" \
		good/enforcement-snapshot.json >dup/zz-copy.json &&
	echo "wf-match: error: dup/zz-copy.json:2:11: .name: duplicate workflow '"'"'policy-overview'"'"', also defined in '"'"'dup/policy-overview.json'"'"'" >expect &&
	catalog_error dup 3
'

test_expect_success 'a dependency on an unknown workflow: exit 3' '
	cp -R good unknown-dep &&
	printf "{\"name\": \"x\",\n \"depends_on\": [\"policy-overview\", \"nope\"]}\n" \
		>unknown-dep/x.json &&
	echo "wf-match: error: unknown-dep/x.json:2:36: .depends_on[1]: unknown workflow '"'"'nope'"'"'" >expect &&
	catalog_error unknown-dep 3
'

test_expect_success 'a dependency cycle: exit 3, spelled out' '
	mkdir cycle &&
	echo "{\"name\": \"a\", \"depends_on\": [\"b\"]}" >cycle/1.json &&
	echo "{\"name\": \"b\", \"depends_on\": [\"c\"]}" >cycle/2.json &&
	echo "{\"name\": \"c\", \"depends_on\": [\"a\"]}" >cycle/3.json &&
	echo "{\"name\": \"d\", \"depends_on\": [\"d2\"]}" >cycle/4.json &&
	echo "{\"name\": \"d2\"}" >cycle/5.json &&
	echo "wf-match: error: cycle/1.json:1:30: .depends_on[0]: dependency cycle: a -> b -> c -> a" >expect &&
	catalog_error cycle 3 &&
	echo "{\"name\": \"a\", \"depends_on\": [\"a2\"]}" >cycle/1.json &&
	echo "{\"name\": \"a2\"}" >cycle/0.json &&
	echo "{\"name\": \"b\", \"depends_on\": [\"d\", \"c\"]}" >cycle/2.json &&
	echo "{\"name\": \"c\", \"depends_on\": [\"b\"]}" >cycle/3.json &&
	echo "wf-match: error: cycle/2.json:1:35: .depends_on[1]: dependency cycle: b -> c -> b" >expect &&
	catalog_error cycle 3
'

test_expect_success 'an invalid definition anywhere stops all matching' '
	cp -R good late &&
	echo "{\"name\": \"zzz\", \"priority\": \"high\"}" >late/zzz.json &&
	echo "wf-match: error: late/zzz.json:1:29: .priority: expected an integer, got a string" >expect &&
	catalog_error late 3 &&
	# Nothing was read: the item stays in the pipe for the next reader.
	{
		test_expect_code 3 wf-match --catalog late 2>/dev/null &&
		cat
	} <"$T/issue-482.json" >rest &&
	test_cmp "$T/issue-482.json" rest
'

test_expect_success 'a missing catalog directory: exit 4' '
	echo "wf-match: error: cannot open catalog '"'"'no-such-dir'"'"': No such file or directory" >expect &&
	catalog_error no-such-dir 4
'

test_expect_success 'a catalog that is a file: exit 4' '
	: >plain &&
	echo "wf-match: error: cannot open catalog '"'"'plain'"'"': Not a directory" >expect &&
	catalog_error plain 4
'

test_expect_success 'a dangling link in the catalog: exit 4' '
	cp -R good dangling &&
	ln -s nowhere.json dangling/x.json &&
	echo "wf-match: error: cannot open '"'"'dangling/x.json'"'"': No such file or directory" >expect &&
	catalog_error dangling 4
'

test_expect_success 'other files, hidden files and directories are ignored' '
	cp -R good mixed &&
	echo "not json" >mixed/README &&
	echo "{" >mixed/policy.json.orig &&
	echo "{" >mixed/.draft.json &&
	mkdir mixed/old.json mixed/sub &&
	echo "{" >mixed/sub/x.json &&
	ln -s ../good/policy-overview.json mixed/zz-link.json &&
	ln -s ../good/policy-overview.json mixed/link &&
	rm mixed/policy-overview.json &&
	wf-match --catalog mixed "$T/items.jsonl" >actual &&
	test_cmp "$T/expect-items.jsonl" actual
'

test_expect_success 'an empty catalog is valid and matches nothing' '
	mkdir empty &&
	wf-match --catalog empty "$T/issue-482.json" >actual &&
	test_grep "\"candidates\":\[\],\"selection_reason\":\"no_match\"" actual &&
	test_expect_code 1 wf-match --catalog empty --exit-status \
		"$T/issue-482.json" >actual
'

test_expect_success 'WF_CATALOG names the catalog; --catalog wins over it' '
	WF_CATALOG="$T/catalog" wf-match "$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	WF_CATALOG=no-such-dir wf-match --catalog "$T/catalog" \
		"$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success 'setup: a repository with .wf/workflows' '
	git init -q repo &&
	mkdir -p repo/.wf/workflows repo/src/deep &&
	cp "$T"/catalog/*.json repo/.wf/workflows/ &&
	git -C repo add . &&
	git -C repo commit -q -m "catalog"
'

test_expect_success 'the default catalog is .wf/workflows at the repository root' '
	(
		cd repo/src/deep &&
		wf-match "$T/issue-482.json"
	) >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	(
		cd repo/src/deep &&
		WF_CATALOG= wf-match "$T/issue-482.json"
	) >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success '-C and --repo pick the repository' '
	wf-match -C repo/src "$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual &&
	wf-match --repo=repo "$T/issue-482.json" >actual &&
	test_cmp "$T/expect-482.jsonl" actual
'

test_expect_success 'a repository without .wf/workflows: exit 4 naming the path' '
	git init -q bare-catalog &&
	top=$(cd bare-catalog && pwd) &&
	echo "wf-match: error: cannot open catalog '"'"'$top/.wf/workflows'"'"': No such file or directory" >expect &&
	test_expect_code 4 wf-match -C bare-catalog </dev/null >actual 2>err &&
	test_cmp expect err
'

test_expect_success 'no repository and no catalog: exit 3' '
	outside=$(mktemp -d "$TEST_OUTSIDE/wf-test.XXXXXX") &&
	test_expect_code 3 wf-match -C "$outside" </dev/null >actual 2>err;
	rc=$?;
	rmdir "$outside" &&
	test $rc -eq 0 &&
	test_grep "^wf-match: error: not a git repository" err
'

test_expect_success 'a bare repository has no default catalog: exit 3' '
	git init -q --bare bare.git &&
	test_expect_code 3 wf-match -C bare.git </dev/null >actual 2>err &&
	test_grep "^wf-match: error: repository .*bare.git/. has no work tree for the default catalog; use --catalog$" err
'

test_done
