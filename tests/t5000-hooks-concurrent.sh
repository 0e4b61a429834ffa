#!/bin/sh
# Many pushes to refs/for/ at the same moment, real git, real pushes:
# proc-receive makes no refs/for/ ref, so none of them can conflict
# with another; each is a change of its own, or replaces the earlier
# version of its topic.

. "$(dirname "$0")/lib.sh"

N=16

runner_idle() {
	flock -n srv.git/wf/land.lock true
}

# main on the server has file $1.
main_has() {
	git -C srv.git cat-file -e "main:$1" 2>/dev/null
}

# all_landed N: main has the files f1..fN.
all_landed() {
	i=1
	while [ $i -le "$1" ]; do
		main_has "f$i" || return 1
		i=$((i + 1))
	done
}

# long_wait CMD...: wait_for, for up to 60 s (a busy machine, sanitizers).
long_wait() {
	k=0
	until "$@"; do
		k=$((k + 1))
		[ $k -lt 600 ] || { echo "long_wait: '$*' still fails" >&2; return 1; }
		sleep 0.1
	done
}

# The id of the change HEAD of clone $1 makes pushed to $2 (a topic or "").
change_id() {
	echo "main${2:+:$2}@$(git -C "$1" rev-parse HEAD | cut -c1-12)"
}

test_expect_success 'setup: a server with the hooks, main protected, 16 clones with a change each' '
	git init -q --bare srv.git &&
	git clone -q srv.git c0 2>/dev/null &&
	(
		cd c0 && echo base >README && git add README &&
		git commit -q -m base && git push -q origin HEAD:main
	) &&
	wf-hooks install --server -C srv.git >/dev/null &&
	git -C srv.git config wf.main.protect true &&
	i=1 &&
	while [ $i -le $N ]; do
		git clone -q srv.git c$i &&
		(
			cd c$i && echo "change $i" >f$i && git add f$i &&
			git commit -q -m "Add f$i"
		) || return 1
		i=$((i + 1))
	done
'

test_expect_success '16 pushes at once, to refs/for/main and to topics: all accepted, each told its id and ref' '
	rm -f go &&
	i=1 &&
	while [ $i -le $N ]; do
		# Even clones push to a topic of their own, odd ones without.
		if [ $((i % 2)) -eq 0 ]; then ref=refs/for/main/topic-$i; else ref=refs/for/main; fi &&
		(
			cd c$i &&
			while [ ! -e ../go ]; do sleep 0.01; done &&
			git push origin "HEAD:$ref" >../out$i 2>../err$i
			echo $? >../rc$i
		) &
		i=$((i + 1))
	done &&
	touch go &&
	wait &&
	i=1 &&
	while [ $i -le $N ]; do
		if [ $((i % 2)) -eq 0 ]; then topic=topic-$i; else topic=; fi &&
		id=$(change_id c$i "$topic") &&
		{ test "$(cat rc$i)" = 0 || { cat err$i; return 1; }; } &&
		test_grep "^remote: wf-hooks: queued .$id. for main at position [0-9]+ \(queue id [0-9]+\)" err$i &&
		test_grep "^remote: wf-hooks: its commits are kept at refs/wf/changes/[0-9]+; follow it with: wf-queue show $id" err$i &&
		test_grep "^ \* \[new reference\] +HEAD -> refs/wf/changes/[0-9]+$" err$i &&
		! grep -q "cannot lock ref" err$i || return 1
		i=$((i + 1))
	done &&
	# Each push its own queue id, each kept at its own ref.
	cat err* | sed -n "s/.*(queue id \([0-9]*\)).*/\1/p" | sort -u >qids &&
	test $(wc -l <qids) -eq $N
'

test_expect_success 'every change lands exactly once, and no ref is left under refs/for/ or refs/wf/' '
	long_wait all_landed $N &&
	long_wait runner_idle &&
	wf-queue -C srv.git list --state landed >landed &&
	test $(wc -l <landed) -eq $N &&
	test $(wf-queue -C srv.git list | wc -l) -eq $N &&
	git -C srv.git log --format=%s main >log &&
	test $(wc -l <log) -eq $((N + 1)) &&
	i=1 &&
	while [ $i -le $N ]; do
		test $(grep -c "^Add f$i$" log) -eq 1 || return 1
		i=$((i + 1))
	done &&
	test -z "$(git -C srv.git for-each-ref refs/for)" &&
	long_wait test -z "$(git -C srv.git for-each-ref refs/wf)" &&
	! grep -E "Sanitizer|runtime error|: error: " srv.git/wf/hooks.log
'

test_expect_success 'a topic pushed again, from another clone, before landing: only the new version lands' '
	for c in c1 c2; do
		git -C $c fetch -q && git -C $c reset -q --hard origin/main || return 1
	done &&
	{ (exec 9>srv.git/wf/land.lock && flock 9 && exec sleep 60) & } &&
	locker=$! &&
	wait_for test_must_fail flock -n srv.git/wf/land.lock true 2>/dev/null &&
	(cd c1 && echo one >v1 && git add v1 && git commit -q -m "v1" &&
		git push origin HEAD:refs/for/main/shared) 2>err-v1 &&
	(cd c2 && echo two >v2 && git add v2 && git commit -q -m "v2" &&
		git push origin HEAD:refs/for/main/shared) 2>err-v2 &&
	old=$(change_id c1 shared) &&
	new=$(change_id c2 shared) &&
	test_grep "^remote: wf-hooks: .$new. replaces .$old., which is dropped from the queue" err-v2 &&
	test_expect_code 1 wf-queue -C srv.git show "$old" 2>/dev/null &&
	kill $locker &&
	{ wait $locker; test $? -gt 128; } &&
	wf-hooks land -C srv.git --wait >/dev/null 2>&1 &&
	long_wait runner_idle &&
	main_has v2 &&
	! main_has v1 &&
	wf-queue -C srv.git show "$new" | grep -q "\"state\":\"landed\"" &&
	test -z "$(git -C srv.git for-each-ref refs/for refs/wf)"
'

test_expect_success 'the same topic pushed after its change landed is a new change' '
	git -C c1 fetch -q && git -C c1 reset -q --hard origin/main &&
	(cd c1 && echo three >v3 && git add v3 && git commit -q -m "v3" &&
		git push -o wf.wait origin HEAD:refs/for/main/shared) 2>err-v3 &&
	id=$(change_id c1 shared) &&
	test_grep "^remote: wf-hooks: queued .$id. for main at position 1" err-v3 &&
	! grep -q "replaces" err-v3 &&
	test_grep "^remote: wf-hooks: .$id. landed: main is now at" err-v3 &&
	main_has v2 && main_has v3 &&
	test $(wf-queue -C srv.git list --state landed | grep -c "\"id\":\"main:shared@") -eq 2
'

test_expect_success 'a push to refs/for/main/<topic> while changes of refs/for/main wait is no ref conflict' '
	git -C c3 fetch -q && git -C c3 reset -q --hard origin/main &&
	(cd c3 && echo w >w1 && git add w1 && git commit -q -m w1 &&
		git push origin HEAD:refs/for/main &&
		echo w >w2 && git add w2 && git commit -q -m w2 &&
		git push origin HEAD:refs/for/main/deeper/topic) 2>err &&
	test $(grep -c "queued " err) -eq 2 &&
	long_wait main_has w2 &&
	long_wait runner_idle
'

test_done
