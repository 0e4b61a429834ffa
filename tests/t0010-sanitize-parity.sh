#!/bin/sh
# Under the sanitizers every refusal is the plain build's.  A corpus of
# bad input (bad JSON, bad requests, patches, targets, catalogs, plans,
# events, archives) goes through the suite's tools and through a build
# of the same sources without the sanitizers, made here; each pair must
# agree byte for byte on exit status, standard output and standard
# error, and each must be a refusal: a named error and an exit status
# of the shared table, never success or a signal.
#
# make SANITIZE=... check runs it (WF_SANITIZE, set by the Makefile or
# taken from the build's flags by lib.sh, names the sanitizers).  A
# plain make check has no second build to compare with, and skips it,
# unless WF_TEST_PARITY names the sanitizers to build the other copy
# with:
#   make check WF_TEST_PARITY=address,undefined

. "$(dirname "$0")/lib.sh"

if [ -n "$WF_SANITIZE" ]; then
	other_san=
elif [ -n "$WF_TEST_PARITY" ]; then
	other_san=$WF_TEST_PARITY
else
	say "# skip: the suite's tools are the plain build (no WF_SANITIZE)"
	test_done
fi
OTHER=$TRASH/other

test_expect_success 'the same sources build into a second copy' '
	mkdir other &&
	(cd "$WF_SRC" && tar --exclude="*.o" --exclude="*.d" --exclude="*.a" \
	    -cf - Makefile lib cmd) | tar -C other -xf - &&
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make -C other -j2 CFLAGS=-O2 SANITIZE="$other_san" all \
	    >build.log 2>&1 &&
	test -x other/bin/wf-enqueue
'

# refuse NAME STDIN TOOL ARGS...: both builds refuse alike, run in
# repo/ with STDIN (a file in the scratch directory) as their input.
refuse() {
	case_name=$1
	case_in=$2
	case_tool=$3
	shift 3
	case_args=
	for a in "$@"; do
		q=$(printf '%s' "$a" | sed -e "s/'/'\\\\''/g")
		case_args="$case_args '$q'"
	done
	test_expect_success "$case_tool refuses alike: $case_name" \
	    'compare_case'
}

compare_case() {
	eval "set -- $case_args"
	(cd repo && "$WF_BIN/$case_tool" "$@" <"../$case_in" >../out.suite \
	    2>../err.suite; echo $? >../rc.suite) &&
	(cd repo && "$OTHER/bin/$case_tool" "$@" <"../$case_in" >../out.other \
	    2>../err.other; echo $? >../rc.other) &&
	test_cmp rc.other rc.suite &&
	test_cmp err.other err.suite &&
	test_cmp out.other out.suite &&
	case $(cat rc.suite) in
	1|2|3|4|75) ;;
	*) echo "exit status $(cat rc.suite) is no refusal" >&2; return 1 ;;
	esac &&
	test_grep "^$case_tool: " err.suite
}

test_expect_success 'a repository, a catalog and inputs' '
	git init -q repo &&
	(cd repo && printf "a\nb\nc\n" >x && mkdir dir && echo y >dir/y &&
	    git add . && git commit -q -m base) &&
	printf "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n" >good.diff &&
	: >empty
'

req() {
	printf "{\"id\": \"t/1\", \"target\": \"%s\", \"kind\": \"patch\", \"patch\": \"%s\"}\n" "$1" "$2"
}
ok_patch='diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n'

printf '{"id": "t/1", "target": "main",' >bad-json.json
printf '[1, 2]\n' >not-object.json
printf '{"id": "t/1", "target": "main", "kind": "patch", "patch": "x", "colour": 1}\n' >unknown-field.json
req HEAD "$ok_patch" >target-head.json
req -x "$ok_patch" >target-dash.json
req refs/heads/main "$ok_patch" >target-ref.json
req nope "$ok_patch" >target-missing.json
req main 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n' >corrupt-patch.json
req main 'diff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+x\n' >add-existing.json
req main 'diff --git a/../evil b/../evil\nnew file mode 100644\n--- /dev/null\n+++ b/../evil\n@@ -0,0 +1 @@\n+x\n' >path-escape.json
req main 'diff --git a/.git/config b/.git/config\nnew file mode 100644\n--- /dev/null\n+++ b/.git/config\n@@ -0,0 +1 @@\n+x\n' >dot-git.json
req main '--- a/x\n+++ b/x\n@@ -1,' >unterminated-count.json
req main 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -2,5 +2,5 @@\n p\n q\n r\n-5\n+five\n s\n' >no-place.json
printf '{"id": "t/1", "target": "main", "kind": "files", "files": [{"path": "l", "mode": "120000", "content": "%s"}]}\n' \
	"$(printf ../../etc | base64)" >link-escape.json
printf '{"id": "t/1", "target": "main", "kind": "files", "files": [{"path": "f", "mode": "100644", "content": "!!!"}]}\n' >bad-base64.json
printf '{"id": "t/1", "target": "main", "kind": "commits", "base": "%s", "head": "zzz"}\n' \
	0000000000000000000000000000000000000000 >bad-commits.json
{ req main "$ok_patch"; req main 'diff --git a/dir/y b/dir/y\n--- a/dir/y\n+++ b/dir/y\n@@ -1 +1 @@\n-y\n+Y\n'; } >duplicate-id.json
printf '{"stage_runs": [], "changes": [{"id": "t/1", "target": "main", "kind": "nope"}]}\n' >summary-bad-change.json
printf 'not a mail\n' >not-mail.txt

refuse bad-json bad-json.json wf-enqueue --dry-run
refuse not-object not-object.json wf-enqueue --dry-run
refuse unknown-field unknown-field.json wf-enqueue --dry-run
refuse target-head target-head.json wf-enqueue --dry-run
refuse target-dash target-dash.json wf-enqueue --dry-run
refuse target-ref target-ref.json wf-enqueue --dry-run
refuse target-missing target-missing.json wf-enqueue
refuse corrupt-patch corrupt-patch.json wf-enqueue
refuse add-existing add-existing.json wf-enqueue
refuse path-escape path-escape.json wf-enqueue
refuse dot-git dot-git.json wf-enqueue
refuse unterminated-count unterminated-count.json wf-enqueue
refuse link-escape link-escape.json wf-enqueue
refuse bad-base64 bad-base64.json wf-enqueue
refuse bad-commits bad-commits.json wf-enqueue
refuse duplicate-id duplicate-id.json wf-enqueue
refuse summary-bad-change summary-bad-change.json wf-enqueue
refuse mbox-not-a-mail not-mail.txt wf-enqueue --mbox - --target main
refuse patch-without-id empty wf-enqueue --patch ../good.diff
refuse patch-not-a-diff not-mail.txt wf-enqueue --id t/1 --target main --patch -

test_expect_success 'a tar with a hard link, a catalog of each fault' '
	mkdir t && echo a >t/a && ln t/a t/b && tar -cf hardlink.tar t &&
	printf "garbage\n" >not-archive.tar.gz &&
	mkdir jl && printf "not json\n" >jl/entries-0001.jsonl &&
	tar -czf bad-lines.tar.gz -C jl entries-0001.jsonl &&
	mkdir -p cat-json cat-cycle cat-unknown cat-dup cat-regex &&
	printf "{\"name\": \"a\",\n" >cat-json/a.json &&
	printf "{\"name\": \"a\", \"depends_on\": [\"b\"]}\n" >cat-cycle/a.json &&
	printf "{\"name\": \"b\", \"depends_on\": [\"a\"]}\n" >cat-cycle/b.json &&
	printf "{\"name\": \"a\", \"depends_on\": [\"zz\"]}\n" >cat-unknown/a.json &&
	printf "{\"name\": \"a\"}\n" >cat-dup/a.json &&
	printf "{\"name\": \"a\"}\n" >cat-dup/b.json &&
	printf "{\"name\": \"a\", \"match\": {\"title\": \"(\"}}\n" >cat-regex/a.json&&
	mkdir cat-ok && printf "{\"name\": \"a\"}\n" >cat-ok/a.json
'
printf '{"number": "x"}\n' >bad-issue.json
printf '{"number": 1, "labels": ["a"]}\n' >issue.json
printf '{"candidates": 5}\n' >bad-plan.json
printf '{"issue": {"number": 1}, "candidates": [{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]}\n' >cycle-plan.json
printf '{}\n' >empty-object.json
printf '{"plan_id": "p", "issue_number": 1, "stage_count": 0, "workflow_count": 0, "stages": [], "stage_runs": [], "status": "sideways"}\n' >bad-summary.json
printf '{"id": "t/1", "queue_id": 1, "state": "melted"}\n' >bad-change-line.json

refuse tar-hard-link empty wf-enqueue --id t/1 --target main --tar ../hardlink.tar
refuse catalog-missing issue.json wf-match --catalog ../no-such-dir
refuse catalog-bad-json issue.json wf-match --catalog ../cat-json
refuse catalog-cycle issue.json wf-match --catalog ../cat-cycle
refuse catalog-unknown-dep issue.json wf-match --catalog ../cat-unknown
refuse catalog-duplicate issue.json wf-match --catalog ../cat-dup
refuse catalog-bad-regex issue.json wf-match --catalog ../cat-regex
refuse bad-issue bad-issue.json wf-match --catalog ../cat-ok
refuse issue-bad-json bad-json.json wf-match --catalog ../cat-cycle
refuse plan-bad-json bad-json.json wf-plan
refuse plan-bad-shape bad-plan.json wf-plan
refuse plan-cycle cycle-plan.json wf-plan
refuse plan-bad-count empty wf-plan --max-parallel abc
refuse emit-bad-json bad-json.json wf-emit plan_created
refuse emit-no-plan-id empty-object.json wf-emit plan_created
refuse emit-bad-status bad-summary.json wf-emit execution_summary
refuse emit-bad-state bad-change-line.json wf-emit change
refuse emit-not-an-event not-object.json wf-emit metrics
refuse emit-bad-redact empty wf-emit change --redact-paths sideways
refuse run-bad-plan bad-json.json wf-run
refuse queue-no-such-entry empty wf-queue show no-such/1
refuse queue-restore-garbage empty wf-queue restore ../not-archive.tar.gz
refuse queue-restore-bad-lines empty wf-queue restore ../bad-lines.tar.gz
refuse queue-bad-duration empty wf-queue archive --older-than soon --to ../x.tar.gz
refuse apply-bad-fuzz empty wf-apply --fuzz abc
refuse apply-no-repository empty wf-apply -C ../no-such-dir

test_done
