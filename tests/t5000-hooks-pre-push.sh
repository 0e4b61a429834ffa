#!/bin/sh
# The client's pre-push hook: the pre-push steps of the workflows the
# outgoing paths select run on the commit pushed, and block the push
# when one fails; WF_SKIP=1 lets it through.

. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a server, a clone with a catalog, the client hook' '
	git init -q --bare srv.git &&
	git clone -q srv.git c 2>/dev/null &&
	mkdir -p c/.wf/workflows c/src c/docs &&
	cat >c/.wf/workflows/code.json <<-EOF &&
	{"name": "code", "match": {"paths": ["src"]},
	 "steps": [
	  {"id": "build", "type": "shell",
	   "run": "echo build >>$TRASH/ran; exit 1"},
	  {"id": "pre-push", "type": "shell",
	   "run": "echo code >>$TRASH/ran; if grep -rn FIXME src; then echo src has a FIXME; exit 1; fi"},
	  {"id": "pre-push-names", "type": "assert", "file_exists": "src"}
	 ]}
	EOF
	cat >c/.wf/workflows/docs.json <<-EOF &&
	{"name": "docs", "match": {"paths": ["docs"]},
	 "steps": [{"id": "pre-push", "type": "shell",
	  "run": "echo docs >>$TRASH/ran"}]}
	EOF
	cat >c/.wf/workflows/none.json <<-EOF &&
	{"name": "none", "match": {"paths": ["*.txt"]},
	 "steps": [{"id": "lint", "type": "shell",
	  "run": "echo none >>$TRASH/ran; exit 1"}]}
	EOF
	echo "int main;" >c/src/main.c && echo "# Docs" >c/docs/index.md &&
	(
		cd c && git add . && git commit -q -m first &&
		git push -q origin HEAD:main
	) &&
	wf-hooks install -C c >out &&
	test_grep "\"hook\":\"pre-push\",.*\"state\":\"installed\"" out &&
	rm -f ran
'

test_expect_success 'a docs change runs the pre-push steps of docs only' '
	(
		cd c && echo more >>docs/index.md && git commit -q -am docs &&
		git push origin HEAD:main
	) 2>err &&
	echo docs >expect &&
	test_cmp expect ran &&
	test_grep "^wf-hooks: pre-push: refs/heads/main: 1 path changed; checking 1 workflow$" err &&
	test_grep "^wf-hooks: pre-push: .docs.: passed \(1 step\)$" err &&
	rm ran
'

test_expect_success 'a change whose check fails is blocked, with the failing output' '
	git -C srv.git rev-parse main >before &&
	(
		cd c && echo "int x; /* FIXME */" >src/x.c && git add . &&
		git commit -q -m fixme &&
		test_must_fail git push origin HEAD:refs/for/main/fixme
	) 2>err &&
	echo code >expect &&
	test_cmp expect ran &&
	test_grep "^wf-hooks: pre-push: .code.: step .pre-push. failed with exit code 1:$" err &&
	test_grep "^src/x.c:1:int x; /\* FIXME \*/$" err &&
	test_grep "^src has a FIXME$" err &&
	test_grep "^wf-hooks: error: pre-push checks failed: the push is blocked \(WF_SKIP=1 git push ... skips the checks\)$" err &&
	test_grep "error: failed to push some refs" err &&
	test -z "$(git -C srv.git for-each-ref refs/for)" &&
	rm ran
'

test_expect_success 'WF_SKIP=1 lets it through without running a check' '
	(cd c && WF_SKIP=1 git push origin HEAD:refs/for/main/fixme) 2>err &&
	test ! -e ran &&
	test_grep "^wf-hooks: pre-push: checks skipped \(WF_SKIP is set\)$" err &&
	test -n "$(git -C srv.git for-each-ref refs/for/main/fixme)"
'

test_expect_success 'the checks run on the commit pushed, not on the work tree' '
	(
		cd c && git rm -q src/x.c && echo "int y;" >>src/main.c &&
		git commit -q -am "No FIXME" &&
		echo "/* FIXME, uncommitted */" >src/y.c &&
		git push origin HEAD:refs/for/main/clean
	) 2>err &&
	echo code >expect &&
	test_cmp expect ran &&
	test_grep "^wf-hooks: pre-push: .code.: passed \(2 steps\)$" err &&
	rm ran c/src/y.c
'

test_expect_success 'the outgoing paths of a refs/for push are those since the remote branch' '
	(
		cd c && git fetch -q && git reset -q --hard origin/main &&
		echo t >notes.txt && git add notes.txt && git commit -q -m notes &&
		git push origin HEAD:refs/for/main/notes
	) 2>err &&
	test ! -e ran &&
	! grep -q "checking" err
'

test_expect_success 'paths full of shell are data to the hook' '
	(
		cd c && echo "int z;" >"src/\$(touch pwned).c" && git add . &&
		git commit -q -m "\$(touch pwned2)" &&
		git push origin "HEAD:refs/for/main/\$(touch\${IFS}pwned3)"
	) 2>err &&
	echo code >expect &&
	test_cmp expect ran &&
	test -z "$(find "$TRASH" -name "pwned*")" &&
	rm ran
'

test_expect_success 'deleting a remote ref checks nothing' '
	(cd c && git push -q origin :refs/for/main/notes) 2>err &&
	test ! -e ran
'

test_expect_success 'pre-push steps that need other steps are refused, blocking the push' '
	mkdir cat2 &&
	cat >cat2/w.json <<-\EOF &&
	{"name": "w", "match": {"paths": ["src"]},
	 "steps": [
	  {"id": "build", "type": "shell", "run": "true"},
	  {"id": "pre-push", "type": "shell", "run": "true", "needs": ["build"]}
	 ]}
	EOF
	(
		cd c && echo "int w;" >src/w.c && git add . && git commit -q -m w &&
		WF_CATALOG=$TRASH/cat2 &&
		export WF_CATALOG &&
		test_must_fail git push origin HEAD:refs/for/main/w
	) 2>err &&
	test_grep "^wf-hooks: error: workflow .w.: its pre-push steps do not stand on their own: " err
'

test_expect_success 'without a catalog, nothing is checked' '
	git clone -q srv.git plain &&
	rm -rf plain/.wf &&
	wf-hooks install -C plain >/dev/null &&
	(
		cd plain && echo p >p.txt && git add . && git commit -q -m p &&
		git push origin HEAD:refs/for/main/plain
	) 2>err &&
	! grep -q "wf-hooks" err
'

test_expect_success 'pre-push reads the hook input itself too' '
	(
		cd c &&
		git reset -q --hard origin/main &&
		echo "/* FIXME */" >src/f.c && git add . && git commit -q -m f &&
		echo "refs/heads/main $(git rev-parse HEAD) refs/heads/main $(git rev-parse origin/main)" |
			test_expect_code 1 wf-hooks pre-push origin "$TRASH/srv.git"
	) 2>err &&
	test_grep "src has a FIXME" err &&
	rm ran
'

test_done
