#!/bin/sh
# What a push carries is data: hostile ref names, push options, commit
# messages and paths are rejected or stored as text, never run.

. "$(dirname "$0")/lib.sh"

# Nothing the hostile names would create exists anywhere.
no_pwned() {
	test -z "$(find "$TRASH" -name "pwned*")"
}

test_expect_success 'setup: a server with hooks, a clone, a canary' '
	git init -q --bare srv.git &&
	git clone -q srv.git c 2>/dev/null &&
	(
		cd c && echo hi >README && git add . && git commit -q -m first &&
		git push -q origin HEAD:main
	) &&
	wf-hooks install --server -C srv.git >/dev/null &&
	wf-hooks install --client -C c >/dev/null &&
	mkdir canary && echo alive >canary/file &&
	no_pwned
'

test_expect_success 'the hooks evaluate nothing: no eval, no backquotes' '
	! grep -nw "eval" "$WF_SRC"/hooks/* &&
	! grep -n "\`" "$WF_SRC"/hooks/*
'

# fresh: the clone at the server's main, as after a pull.
fresh() {
	git -C c fetch -q && git -C c reset -q --hard origin/main
}

# push_as TOPIC: push a new commit to refs/for/main/TOPIC, waiting.
push_as() {
	fresh &&
	(
		cd c &&
		echo "$1" >>notes && git add notes &&
		git commit -q -m "Note $1" &&
		git push -o wf.wait origin "HEAD:refs/for/main/$1"
	)
}

test_expect_success 'a topic named $(touch${IFS}pwned) is a name' '
	push_as "\$(touch\${IFS}pwned)" 2>err &&
	test_grep "^remote: wf-hooks: queued .main:=24=28touch=24=7BIFS=7Dpwned=29@[0-9a-f]{12}. for main" err &&
	test_grep "landed: main is now at" err &&
	no_pwned
'

test_expect_success 'a topic named ;rm${IFS}-rf${IFS}$HOME is a name' '
	push_as ";rm\${IFS}-rf\${IFS}\$HOME" 2>err &&
	test_grep "queued .main:=3Brm=24=7BIFS=7D-rf=24=7BIFS=7D=24HOME@" err &&
	test_grep "landed: main is now at" err &&
	test -f canary/file && no_pwned
'

test_expect_success 'backquotes, quotes, pipes and redirections in a topic are a name' '
	push_as "\`touch\${IFS}pwned2\`|tee>pwned3&&it'"'"'s\"q\"" 2>err &&
	test_grep "landed: main is now at" err &&
	no_pwned
'

test_expect_success 'a ref name git itself refuses never reaches the server' '
	(
		cd c &&
		test_must_fail git push origin "HEAD:refs/for/main/;rm -rf ~" &&
		test_must_fail git push origin "HEAD:refs/for/main/\$(touch pwned)"
	) 2>err &&
	! grep -q "^remote:" err &&
	test -f canary/file && no_pwned
'

test_expect_success 'a push option full of shell is stored as text' '
	msg="\$(touch pwned4); \`touch pwned5\`; rm -rf ~; it'"'"'s" &&
	fresh &&
	(
		cd c && echo opt >>notes && git add notes && git commit -q -m opt &&
		git push -q -o wf.wait -o "wf.message=$msg" origin HEAD:refs/for/main/opt
	) 2>err &&
	id="main:opt@$(git -C c rev-parse HEAD | cut -c1-12)" &&
	wf-queue -C srv.git show --payload "$id" >show &&
	grep -F -e "\"message\":\"$msg\"" show &&
	test -f canary/file && no_pwned
'

test_expect_success 'an unknown option full of shell is refused, named as text' '
	fresh &&
	(
		cd c && echo opt2 >>notes && git add notes && git commit -q -m opt2 &&
		test_must_fail git push -o "wf.\$(touch pwned6)=1" origin HEAD:refs/for/main/opt2
	) 2>err &&
	test_grep "^remote: wf-hooks: error: unknown push option .wf.\\\$\(touch pwned6\)=1." err &&
	no_pwned
'

test_expect_success 'a commit message and a path full of shell are data to the hooks' '
	fresh &&
	(
		cd c &&
		echo x >"\$(touch pwned7).c" &&
		git add . &&
		git commit -q -m "\$(touch pwned8) \`touch pwned9\`" &&
		git push -o wf.wait origin HEAD:refs/for/main/paths
	) 2>err &&
	test_grep "landed: main is now at" err &&
	git -C srv.git ls-tree --name-only main >names &&
	test_grep "^\"?\\\$\(touch pwned7\)\.c\"?$" names &&
	no_pwned
'

test_expect_success 'a hostile topic is removed after landing like any other' '
	test -z "$(git -C srv.git for-each-ref refs/for)"
'

test_done
