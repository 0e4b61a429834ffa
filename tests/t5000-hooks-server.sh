#!/bin/sh
# The server hooks with real pushes: a bare repository with wf's hooks,
# clones pushing to refs/for/main, changes landing on main.

. "$(dirname "$0")/lib.sh"

# main_has FILE PATTERN: main's FILE on the server matches PATTERN.
main_has() {
	git -C srv.git show "main:$1" 2>/dev/null | grep -q -e "$2"
}

# No runner holds the lock (the background landing is over).
runner_idle() {
	flock -n srv.git/wf/land.lock true
}

# The id of the change HEAD of clone $1 makes when pushed to topic $2.
change_id() {
	echo "main:$2@$(git -C "$1" rev-parse HEAD | cut -c1-12)"
}

# No ref under refs/for/ (never made), none keeping a landed change.
no_for_refs() {
	test -z "$(git -C srv.git for-each-ref refs/for refs/wf)"
}

# The ref keeping the change a push reported in file $1.
kept_ref() {
	sed -n -e "s|^remote: wf-hooks: its commits are kept at \(refs/wf/changes/[0-9]*\);.*|\1|p" "$1" | head -n 1
}

# Hold the runner's lock (as a runner at work would), then let it go.
hold_land_lock() {
	{ (exec 9>srv.git/wf/land.lock && flock 9 && exec sleep 60) & } &&
	locker=$! &&
	wait_for test_must_fail flock -n srv.git/wf/land.lock true 2>/dev/null
}

release_land_lock() {
	kill $locker &&
	{ wait $locker; test $? -gt 128; }
}

queue_size() {
	wf-queue -C srv.git list | wc -l
}

test_expect_success 'setup: a bare server with a first commit, the hooks, two clones' '
	git init -q --bare srv.git &&
	git clone -q srv.git alice 2>/dev/null &&
	(
		cd alice &&
		seq 1 20 >f && echo readme >README &&
		git add . && git commit -q -m base &&
		git push -q origin HEAD:main
	) &&
	wf-hooks install --server -C srv.git >out &&
	cat >expect <<-EOF &&
	{"hook":"pre-receive","path":"$TRASH/srv.git/hooks/pre-receive","state":"installed","chained":null}
	{"hook":"proc-receive","path":"$TRASH/srv.git/hooks/proc-receive","state":"installed","chained":null}
	EOF
	test_cmp expect out &&
	git -C srv.git config wf.main.protect true &&
	test "$(git -C srv.git config receive.advertisePushOptions)" = true &&
	test "$(git -C srv.git config --get-all receive.procReceiveRefs)" = refs/for &&
	git clone -q srv.git bob
'

test_expect_success 'a push to refs/for/main with -o wf.wait lands, and git pull shows it' '
	(
		cd alice &&
		sed -i 1s/1/one/ f && git commit -q -am "Edit line 1" &&
		git push -o wf.wait origin HEAD:refs/for/main/alice
	) 2>err &&
	id=$(change_id alice alice) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1 \(queue id 1\)" err &&
	test_grep "^remote: wf-hooks: its commits are kept at refs/wf/changes/1; follow it with: wf-queue show $id" err &&
	test_grep "^remote: wf-apply: main: landed 1 change at " err &&
	test_grep "^ \* \[new reference\] +HEAD -> refs/wf/changes/1$" err &&
	test_grep "^remote: wf-hooks: .$id. landed: main is now at [0-9a-f]{12}" err &&
	(cd bob && git pull -q) &&
	test "$(head -n 1 bob/f)" = one &&
	git -C bob log -1 --format="%s|%(trailers:key=Queue-Id,valueonly,separator=)" >log &&
	echo "Edit line 1|$id" >expect &&
	test_cmp expect log
'

test_expect_success 'after landing, no refs/for ref exists and the ref that kept the change is gone' '
	no_for_refs &&
	wf-queue -C srv.git show "$(change_id alice alice)" >show &&
	test_grep "\"state\":\"landed\"" show &&
	test_grep "\"meta\":\{\"ref\":\"refs/for/main/alice\"\}" show
'

test_expect_success 'a direct push to the protected main is refused with the message' '
	git -C srv.git rev-parse main >before &&
	(
		cd bob &&
		echo direct >>README && git commit -q -am direct &&
		test_must_fail git push origin HEAD:main
	) 2>err &&
	test_grep "^remote: wf-hooks: error: refs/heads/main: .main. is protected: its changes land through the queue; push to refs/for/main instead \(git push <remote> HEAD:refs/for/main\)" err &&
	test_grep "\[remote rejected\] HEAD -> main \(pre-receive hook declined\)" err &&
	(cd bob && test_must_fail git push origin :main) 2>err &&
	test_grep "is protected" err &&
	git -C srv.git rev-parse main >after &&
	test_cmp before after &&
	git -C bob reset -q --hard origin/main
'

test_expect_success 'an unprotected branch takes direct pushes, and is not queued' '
	(cd bob && git push -q origin HEAD:refs/heads/side) 2>err &&
	test ! -s err &&
	test "$(queue_size)" -eq 1
'

test_expect_success 'without wf.wait the change lands in the background' '
	(
		cd bob &&
		echo "more" >>README && git commit -q -am "More README" &&
		git push origin HEAD:refs/for/main/bob
	) 2>err &&
	test_grep "^remote: wf-hooks: queued .$(change_id bob bob). for main at position 1" err &&
	test_grep "^remote: wf-hooks: landing in the background; its log: $TRASH/srv.git/wf/hooks.log" err &&
	wait_for main_has README more &&
	wait_for no_for_refs &&
	wait_for runner_idle &&
	test_grep "^\{\"time\":\"[-0-9T:]+Z\",\"targets\":\[\"main\"\],\"status\":0,\"removed\":\[\{\"ref\":\"refs/wf/changes/[0-9]+\",\"id\":\"$(change_id bob bob)\"\}\],\"more\":false\}$" srv.git/wf/hooks.log &&
	test_grep "^wf-apply: main: landed 1 change at " srv.git/wf/hooks.log
'

test_expect_success 'two clones pushing disjoint changes at the same moment both land' '
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	git -C bob fetch -q && git -C bob reset -q --hard origin/main &&
	(cd alice && echo a >a.txt && git add a.txt && git commit -q -m "Add a") &&
	(cd bob && echo b >b.txt && git add b.txt && git commit -q -m "Add b") &&
	{
		(cd alice && git push -q origin HEAD:refs/for/main/a 2>../err-a) &
		(cd bob && git push -q origin HEAD:refs/for/main/b 2>../err-b) &
		wait
	} &&
	test_grep "queued .$(change_id alice a)." err-a &&
	test_grep "queued .$(change_id bob b)." err-b &&
	wait_for main_has a.txt a &&
	wait_for main_has b.txt b &&
	wait_for no_for_refs &&
	wait_for runner_idle &&
	wf-queue -C srv.git list --state landed >landed &&
	test $(wc -l <landed) -eq 4
'

test_expect_success 'two conflicting pushes: one lands, the other is dead, with the reason, and keeps its ref' '
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	git -C bob fetch -q && git -C bob reset -q --hard origin/main &&
	(cd alice && sed -i 5s/5/five/ f && git commit -q -am "Five") &&
	(cd bob && sed -i 5s/5/FIVE/ f && git commit -q -am "FIVE") &&
	(cd alice && git push -o wf.wait origin HEAD:refs/for/main/five) 2>err-a &&
	test_grep "landed: main is now at" err-a &&
	(cd bob && git push -o wf.wait origin HEAD:refs/for/main/FIVE) 2>err-b &&
	id=$(change_id bob FIVE) &&
	test_grep "^remote: wf-hooks: .$id. did not land and is dead: commit [0-9a-f]{12} conflicts in .f." err-b &&
	kept=$(kept_ref err-b) &&
	test_grep "^remote: wf-hooks: its commits stay at $kept; push a fixed version to refs/for/main/FIVE" err-b &&
	git -C srv.git for-each-ref --format="%(refname) %(objectname)" refs/for refs/wf >refs &&
	echo "$kept $(git -C bob rev-parse HEAD)" >expect &&
	test_cmp expect refs &&
	wf-queue -C srv.git show "$id" >show &&
	test_grep "\"state\":\"dead\"" show &&
	test_grep "\"last_error\":\"commit [0-9a-f]{12} conflicts in .f.\"" show &&
	main_has f five
'

test_expect_success 'a change whose check fails does not land, and the pusher sees why' '
	git -C srv.git config wf.main.check "if grep -q BAD README; then echo README is BAD; exit 1; fi" &&
	git -C srv.git rev-parse main >before &&
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	(
		cd alice &&
		echo BAD >>README && git commit -q -am "Bad" &&
		git push -o wf.wait origin HEAD:refs/for/main/bad
	) 2>err &&
	test_grep "^remote: wf-hooks: .$(change_id alice bad). did not land and is dead: check .if grep -q BAD README; then echo README is BAD; exit 1; fi. failed \(exit status 1\):" err &&
	test_grep "^remote: README is BAD" err &&
	git -C srv.git rev-parse main >after &&
	test_cmp before after &&
	git -C srv.git config --unset wf.main.check &&
	(cd alice && git push -q origin ":$(kept_ref ../err)") 2>err2 &&
	test ! -s err2
'

test_expect_success 'bad input is refused before it enters the queue' '
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	before=$(queue_size) &&
	git -C srv.git for-each-ref refs/for >refs-before &&
	(
		cd alice &&
		echo x >x && git add x && git commit -q -m x &&
		test_must_fail git push origin HEAD:refs/for/nosuch 2>../err1 &&
		test_must_fail git push origin HEAD:refs/for/main/ok \
			origin/main:refs/for/main/same 2>../err2 &&
		git checkout -q -b side2 HEAD~1 && echo y >y && git add y &&
		git commit -q -m y && git checkout -q - &&
		git merge -q --no-edit side2 &&
		test_must_fail git push origin HEAD:refs/for/main/merge 2>../err3 &&
		git checkout -q --orphan lone && git commit -q -m lone &&
		test_must_fail git push origin HEAD:refs/for/main/lone 2>../err4 &&
		git checkout -q - &&
		test_must_fail git push -o wf.priority=high origin HEAD:refs/for/main/p 2>../err5 &&
		test_must_fail git push -o wf.prio=1 origin HEAD:refs/for/main/p 2>../err6 &&
		test_must_fail git push -o wf.priority=9999999 origin HEAD:refs/for/main/p 2>../err7
	) &&
	test_grep "^remote: wf-hooks: error: refs/for/nosuch: no branch to queue for: push to refs/for/<branch>\[/<topic>\], where <branch> exists" err1 &&
	test_grep "^remote: wf-hooks: error: refs/for/main/same: nothing to queue: commit [0-9a-f]{12} is in .main. already" err2 &&
	test_grep "^remote: wf-hooks: the push is refused: nothing was queued or updated" err2 &&
	test_grep "^remote: wf-hooks: error: refs/for/main/merge: commit [0-9a-f]{12} is a merge: the queue replays commits one by one; rebase onto .main. and push again" err3 &&
	test_grep "^remote: wf-hooks: error: refs/for/main/lone: commit [0-9a-f]{12} has no history in common with .main." err4 &&
	test_grep "^remote: wf-hooks: error: push option .wf.priority=high.: expected wf.priority=N, an integer" err5 &&
	test_grep "^remote: wf-hooks: error: unknown push option .wf.prio=1. \(wf knows wf.priority=N, wf.message=TEXT and wf.wait\)" err6 &&
	test_grep "^remote: wf-hooks: error: refs/for/main/p:1:1: .priority: request .main:p@[0-9a-f]{12}.: priority must be between -1000000 and 1000000" err7 &&
	test "$(queue_size)" -eq "$before" &&
	git -C srv.git for-each-ref refs/for >refs-after &&
	test_cmp refs-before refs-after
'

test_expect_success 'push options give the change its priority and message' '
	git -C alice reset -q --hard origin/main &&
	(
		cd alice &&
		echo p >p.txt && git add p.txt && git commit -q -m "Add p" &&
		git push -q -o wf.wait -o wf.priority=7 \
			-o "wf.message=Add p, at last" origin HEAD:refs/for/main/p
	) 2>err &&
	wf-queue -C srv.git show --payload "$(change_id alice p)" >show &&
	test_grep "\"priority\":7," show &&
	test_grep "\"message\":\"Add p, at last\"" show
'

test_expect_success 'a push to the ref of a waiting change replaces it; a busy runner leaves the landing to the next' '
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	hold_land_lock &&
	(
		cd alice &&
		echo v1 >v.txt && git add v.txt && git commit -q -m "v1" &&
		git push -q origin HEAD:refs/for/main/v &&
		git commit -q --amend -m "v2" &&
		git push -q -f origin HEAD:refs/for/main/v
	) 2>err &&
	test_grep "^remote: wf-hooks: a landing runner is at work; it lands this too" err &&
	! grep -q "landing in the background" err &&
	old=$(git -C alice rev-parse HEAD@{1} | cut -c1-12) &&
	test_grep "^remote: wf-hooks: .$(change_id alice v). replaces .main:v@$old., which is dropped from the queue" err &&
	release_land_lock &&
	test_expect_code 1 wf-queue -C srv.git show "main:v@$old" 2>err &&
	test_grep "^wf-queue: error: no entry .main:v@$old. in the queue" err &&
	wf-hooks land -C srv.git --wait >land 2>log &&
	wait_for runner_idle &&
	test "$(git -C srv.git for-each-ref refs/for refs/wf | wc -l)" -eq 1 &&
	git -C srv.git log -1 --format=%s main >subject &&
	echo v2 >expect &&
	test_cmp expect subject
'

test_expect_success 'the ref that keeps a change is the file git writes; with reflogs on, git writes it' '
	git -C alice fetch -q && git -C alice reset -q --hard origin/main &&
	hold_land_lock &&
	(
		cd alice &&
		echo k1 >k.txt && git add k.txt && git commit -q -m "k1" &&
		git push origin HEAD:refs/for/main/k1
	) 2>err1 &&
	kept1=$(kept_ref err1) &&
	git -C alice rev-parse HEAD >expect &&
	test_cmp expect "srv.git/$kept1" &&
	git -C srv.git rev-parse "$kept1" >got &&
	test_cmp expect got &&
	test_must_fail git -C srv.git reflog exists "$kept1" &&
	test -z "$(find srv.git/refs -name "*.lock")" &&
	git -C srv.git config core.logAllRefUpdates always &&
	(
		cd alice &&
		git reset -q --hard origin/main &&
		echo k2 >k2.txt && git add k2.txt && git commit -q -m "k2" &&
		git push origin HEAD:refs/for/main/k2
	) 2>err2 &&
	kept2=$(kept_ref err2) &&
	git -C srv.git reflog exists "$kept2" &&
	git -C alice rev-parse HEAD >expect &&
	git -C srv.git rev-parse "$kept2" >got &&
	test_cmp expect got &&
	git -C srv.git config --unset core.logAllRefUpdates &&
	release_land_lock &&
	wf-hooks land -C srv.git --wait >land 2>log &&
	wait_for runner_idle &&
	main_has k.txt k1 &&
	main_has k2.txt k2 &&
	test_must_fail git -C srv.git rev-parse -q --verify "$kept1" &&
	test_must_fail git -C srv.git rev-parse -q --verify "$kept2"
'

test_expect_success 'land with nothing pending runs no wf-apply' '
	wf-hooks land -C srv.git --wait >land &&
	test_grep "\"targets\":\[\],\"status\":null" land
'

test_expect_success 'the background runners logged no error' '
	wait_for runner_idle &&
	! grep -E "Sanitizer|runtime error|: error: " srv.git/wf/hooks.log
'

test_done
