#!/bin/sh
# What pre-receive hands to proc-receive: the requests it validated, in
# a file of the push's own, which proc-receive (wf-proc-receive) queues
# as they are -- and what proc-receive does when that file is missing,
# damaged or another push's: it validates again (wf-hooks proc-receive),
# and queues the right change all the same.

. "$(dirname "$0")/lib.sh"

runner_idle() {
	flock -n srv.git/wf/land.lock true
}

# The id of the change HEAD of the clone makes when pushed to topic $1.
change_id() {
	echo "main:$1@$(git -C alice rev-parse HEAD | cut -c1-12)"
}

# A proc-receive hook that does what stdin says to the handover of the
# push, then runs wf's (kept as proc-receive.wf); it runs in the bare
# repository, and leaves its standard input to wf's.
chain() {
	{ printf '#!/bin/sh\n' && cat && printf 'exec hooks/proc-receive.wf\n'; } \
		>srv.git/hooks/proc-receive &&
	chmod +x srv.git/hooks/proc-receive
}

unchain() {
	cp srv.git/hooks/proc-receive.wf srv.git/hooks/proc-receive
}

# commit_push TOPIC [OPTION...]: a new commit, pushed to refs/for/main/TOPIC.
commit_push() {
	topic=$1
	shift
	(
		cd alice &&
		git checkout -q -B "t-$topic" origin/main &&
		echo "$topic" >"file-$topic" && git add "file-$topic" &&
		git commit -q -m "Add $topic" &&
		git push "$@" origin "HEAD:refs/for/main/$topic"
	) 2>err
}

# json_val KEY <FILE: the first value of "KEY" (a string without quotes
# or escapes in it, or a number) in a line of JSON.
json_val() {
	{ cat && echo; } | sed -n \
		-e "s/^[^\"]*\(\"[^\"]*\"[^\"]*\)*\"$1\":\"\([^\"]*\)\".*/\2/p" \
		-e "s/^[^\"]*\(\"[^\"]*\"[^\"]*\)*\"$1\":\(-*[0-9][0-9]*\).*/\2/p" |
		head -n 1
}

handover_empty() {
	test -z "$(ls srv.git/wf/handover)"
}

test_expect_success 'setup: a bare server with the hooks, a clone' '
	git init -q --bare srv.git &&
	git clone -q srv.git alice 2>/dev/null &&
	(
		cd alice &&
		echo readme >README && git add . && git commit -q -m base &&
		git push -q origin HEAD:main
	) &&
	wf-hooks install --server -C srv.git >/dev/null &&
	grep -q "^exec wf-proc-receive$" srv.git/hooks/proc-receive &&
	cp srv.git/hooks/proc-receive srv.git/hooks/proc-receive.wf &&
	mkdir seen
'

test_expect_success 'pre-receive leaves the validated request for this push only' '
	chain <<-\EOF &&
	cp wf/handover/* ../seen/ && ls wf/handover >../seen.ls
	EOF
	commit_push one &&
	id=$(change_id one) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1" err &&
	# One file, named after the receive-pack: boot id, pid, start time.
	test $(wc -l <seen.ls) = 1 &&
	test_grep "^[0-9a-f]{32}-[0-9]+-[0-9]+$" seen.ls &&
	json_val line <"seen/$(cat seen.ls)" >lines &&
	echo "$(printf "%040d" 0) $(git -C alice rev-parse HEAD) refs/for/main/one" >expect &&
	test_cmp expect lines &&
	# proc-receive took it, and the queue holds what it held.
	handover_empty &&
	wf-queue -C srv.git show "$id" >show &&
	json_val hash <show >hash &&
	json_val hash <"seen/$(cat seen.ls)" >expect &&
	test_cmp expect hash &&
	wait_for runner_idle
'

test_expect_success 'proc-receive queues the request as handed over, without validating it again' '
	chain <<-\EOF &&
	sed -i "s/priority[^0-9]*3/&7/; s/3\(7,\)/\1/" wf/handover/*
	EOF
	commit_push two -o wf.priority=3 &&
	wf-queue -C srv.git show "$(change_id two)" >show &&
	test "$(json_val priority <show)" = 7 &&
	handover_empty &&
	wait_for runner_idle
'

test_expect_success 'without a handover, proc-receive validates and queues the change' '
	chain <<-\EOF &&
	rm -f wf/handover/*
	EOF
	commit_push three -o wf.priority=3 &&
	id=$(change_id three) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1" err &&
	test_grep "^remote: wf-hooks: landing in the background" err &&
	wf-queue -C srv.git show "$id" >show &&
	test "$(json_val priority <show)" = 3 &&
	test "$(json_val head <show)" = "$(git -C alice rev-parse HEAD)" &&
	wait_for runner_idle
'

test_expect_success 'a damaged handover is not taken, and is removed' '
	chain <<-\EOF &&
	for f in wf/handover/*; do echo "{\"updates\": [" >"$f"; done
	EOF
	commit_push four &&
	id=$(change_id four) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1" err &&
	test "$(wf-queue -C srv.git show "$id" | json_val head)" = \
		"$(git -C alice rev-parse HEAD)" &&
	handover_empty &&
	wait_for runner_idle
'

test_expect_success 'the handover of another push is not taken' '
	# The file left by the push of "one", under this push'"'"'s name.
	old=$(ls seen) &&
	echo "$old" >old &&
	chain <<-\EOF &&
	for f in wf/handover/*; do cp "../seen/$(cat ../old)" "$f"; done
	EOF
	n=$(wf-queue -C srv.git list | wc -l) &&
	commit_push five &&
	id=$(change_id five) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1" err &&
	! grep -q "queued before" err &&
	test "$(wf-queue -C srv.git show "$id" | json_val head)" = \
		"$(git -C alice rev-parse HEAD)" &&
	test $(wf-queue -C srv.git list | wc -l) = $((n + 1)) &&
	handover_empty &&
	wait_for runner_idle
'

test_expect_success 'the handovers of pushes that never reached proc-receive are removed' '
	unchain &&
	boot=$(tr -d "-" </proc/sys/kernel/random/boot_id) &&
	: >"srv.git/wf/handover/$boot-2147483600-1" &&
	: >"srv.git/wf/handover/0123456789abcdef0123456789abcdef-$$-1" &&
	commit_push six &&
	handover_empty &&
	wait_for runner_idle
'

test_expect_success 'a hostile topic takes the short way as text, and nothing runs' '
	chain <<-\EOF &&
	cp wf/handover/* ../seen/hostile
	EOF
	topic="\$(touch\${IFS}pwned)" &&
	commit_push "$topic" &&
	id="main:=24=28touch=24=7BIFS=7Dpwned=29@$(git -C alice rev-parse HEAD | cut -c1-12)" &&
	grep -F "remote: wf-hooks: queued '"'"'$id'"'"' for main" err &&
	test "$(json_val line <seen/hostile | cut -d" " -f3)" = \
		"refs/for/main/$topic" &&
	wf-queue -C srv.git show "$id" >show &&
	test "$(json_val ref <show)" = "refs/for/main/$topic" &&
	wait_for runner_idle &&
	test ! -e pwned && test ! -e srv.git/pwned && test ! -e alice/pwned
'

test_expect_success 'with -o wf.wait proc-receive validates again and lands while the pusher waits' '
	unchain &&
	commit_push seven -o wf.wait &&
	id=$(change_id seven) &&
	test_grep "^remote: wf-hooks: .$id. landed: main is now at" err &&
	handover_empty
'

test_expect_success 'a push to a branch only leaves nothing and queues nothing' '
	n=$(wf-queue -C srv.git list | wc -l) &&
	(
		cd alice && git checkout -q -B side origin/main &&
		git push -q origin HEAD:refs/heads/side
	) &&
	test $(wf-queue -C srv.git list | wc -l) = $n &&
	handover_empty
'

test_done
