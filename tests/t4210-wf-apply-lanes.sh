#!/bin/sh
# Several wf-apply on one branch take turns in its lane: every change
# lands once, in queue order, with no rebuild for a move another
# applier made and no give-up; a lane holder killed with -9 holds up
# nobody; a writer outside the lanes is still met by compare-and-swap;
# --once waits for the holder.

. "$(dirname "$0")/lib.sh"

N=300

# The requests: one new file each; every tenth also rewrites README,
# "odd" or "even" in turn (the last, c/299, says "even"), which makes
# them a series, each after the one before (see wf-enqueue(1)); every
# thirtieth, from c/14, has priority 1, so the queue's order is not
# that of the ids.
gen() {
	awk -v n="$N" 'BEGIN {
		for (i = 0; i < n; i++) {
			readme = ""
			odd = i % 20 == 9 ? "b2RkCg==" : "ZXZlbgo="
			if (i % 10 == 9)
				readme = sprintf(", {\"path\": \"README\", " \
				    "\"content\": \"%s\"}", odd)
			printf "{\"id\": \"c/%d\", \"target\": \"main\", " \
			    "\"kind\": \"files\", \"priority\": %d, " \
			    "\"files\": [{\"path\": \"d%d/f%d\", " \
			    "\"content\": \"aGkK\"}%s]}\n", i,
			    i % 30 == 14 ? 1 : 0, int(i / 100), i, readme
		}
	}'
}

# The order a lease takes them in: priority first, then as queued.
expected_order() {
	awk -v n="$N" 'BEGIN {
		for (i = 14; i < n; i += 30)
			print "c/" i
		for (i = 0; i < n; i++)
			if (i % 30 != 14)
				print "c/" i
	}'
}

# drained REPO: every change of REPO's queue is landed.
drained() {
	(cd "$1" && wf-queue metrics) | grep -q "\"landed\":$N,"
}

# wait_drained REPO: until drained, for 120 s at most (a stall, such as
# a lease left to expire after 10 minutes, fails it).
wait_drained() {
	n=0
	until drained "$1"; do
		n=$((n + 1))
		if [ $n -ge 600 ]; then
			echo "wait_drained: '$1' not drained after 120 s" >&2
			(cd "$1" && wf-queue metrics) >&2
			return 1
		fi
		sleep 0.2
	done
}

# stop PID...: SIGTERM, and each must end with status 0.
stop() {
	kill -TERM "$@" &&
	for p in "$@"; do
		wait "$p" || { echo "wf-apply $p exited $?" >&2; return 1; }
	done
}

# landed_ok REPO OUT ERR...: every change on the branch once and in
# queue order, each reported landed once on OUT, nothing failed or
# dead, and no applier rebuilt for a move or gave up.
landed_ok() {
	repo=$1 out=$2
	shift 2
	git -C "$repo" log --reverse --first-parent \
	    --format="%(trailers:key=Queue-Id,valueonly,separator=)" main |
		grep . >"$repo.landed" &&
	test_cmp order "$repo.landed" &&
	grep "\"state\":\"landed\"" "$out" |
		sed -e "s/.*\"id\":\"\([^\"]*\)\".*/\1/" | sort >"$repo.reported" &&
	test_cmp ids "$repo.reported" &&
	! grep -v "\"state\":\"landed\"" "$out" &&
	(cd "$repo" && wf-queue metrics) >"$repo.metrics" &&
	test_grep "\"landed\":$N,\"failed\":0,\"dead\":0" "$repo.metrics" &&
	echo even >expect &&
	git -C "$repo" show main:README >actual &&
	test_cmp expect actual &&
	cat "$@" >"$repo.err" &&
	! grep -e "kept moving" -e "\"event\":\"error\"" \
	    -e "\"event\":\"moved\"" -e "is busy" "$repo.err"
}

test_expect_success "setup: $N changes queued" '
	git init -q --bare seed.git &&
	git init -q work &&
	(cd work && echo base >README && git add . && git commit -q -m base &&
		git push -q ../seed.git main) &&
	gen >reqs &&
	(cd seed.git && wf-enqueue ../reqs) >/dev/null &&
	expected_order >order &&
	sort order >ids &&
	test $(wc -l <ids) -eq $N
'

test_expect_success 'four wf-apply --watch on one branch take turns' '
	cp -a seed.git watch.git &&
	pids= &&
	for i in 1 2 3 4; do
		(cd watch.git && exec wf-apply --watch --progress=json \
			>>"$TRASH/watch.out" 2>"$TRASH/watch.err.$i") &
		pids="$pids $!"
	done &&
	echo $pids >>started &&
	wait_drained watch.git &&
	stop $pids &&
	landed_ok watch.git watch.out watch.err.* &&
	test -f watch.git/wf/apply-main.lock
'

test_expect_success 'four loops of wf-apply --once on one branch' '
	cp -a seed.git once.git &&
	pids= &&
	for i in 1 2 3 4; do
		(
			cd once.git &&
			until drained .; do
				wf-apply --once --batch 5 --progress=json \
					>>"$TRASH/once.out.$i" \
					2>>"$TRASH/once.err.$i" ||
					{ echo "exit $?" >>"$TRASH/once.fail"; exit 1; }
			done
		) &
		pids="$pids $!"
	done &&
	wait $pids &&
	test ! -e once.fail &&
	cat once.out.* >once.out &&
	landed_ok once.git once.out once.err.*
'

test_expect_success 'four workers of one wf-apply on one branch' '
	cp -a seed.git workers.git &&
	(cd workers.git && wf-apply --workers 4 --batch 6 --progress=json \
		>../workers.out 2>../workers.err) &&
	landed_ok workers.git workers.out workers.err &&
	! grep "\"event\":\"wait\"" workers.err
'

# A check that says it runs, then waits for the file $1 to exist.
blocking_check() {
	echo "touch \"$TRASH/$1.running\"; while ! test -f \"$TRASH/$1\"; do sleep 0.05; done"
}

# (A job started in a chain of && is braced: "a && b &" puts all of it
# in the background.)
test_expect_success 'a lane holder killed with -9 holds up nobody' '
	cp -a seed.git kill.git &&
	base=$(git -C kill.git rev-parse main) &&
	{ (cd kill.git && exec wf-apply --watch --check "$(blocking_check go1)" \
		--progress=json >"$TRASH/kill.out.a" 2>"$TRASH/kill.err.a") & } &&
	a=$! &&
	echo $a >>started &&
	wait_for test -f go1.running &&
	pids= &&
	for i in b c; do
		(cd kill.git && exec wf-apply --watch --progress=json \
			>"$TRASH/kill.out.$i" 2>"$TRASH/kill.err.$i") &
		pids="$pids $!"
	done &&
	echo $pids >>started &&
	# Both wait for the holder, and nothing lands meanwhile.
	wait_for grep -q "\"event\":\"wait\"" kill.err.b &&
	wait_for grep -q "\"event\":\"wait\"" kill.err.c &&
	grep "\"event\":\"wait\"" kill.err.b >wait.b &&
	test_grep "\"holder\":\"wf-apply/0@[^\"]*:$a\"" wait.b &&
	test "$(git -C kill.git rev-parse main)" = "$base" &&
	(cd kill.git && wf-queue list --state leased) >leased &&
	test $(wc -l <leased) -eq 8 &&
	kill -9 $a &&
	{ wait $a; test $? -eq 137; } &&
	wait_drained kill.git &&
	stop $pids &&
	cat kill.out.b kill.out.c >kill.out &&
	test ! -s kill.out.a &&
	landed_ok kill.git kill.out kill.err.b kill.err.c &&
	cat kill.err.b kill.err.c | grep "\"event\":\"recover\"" >recover &&
	test_grep "\"landed\":0,\"queued\":8" recover &&
	(cd kill.git && wf-queue list) >list &&
	! grep "lease expired" list
'

test_expect_success 'a writer outside the lanes: built again on its commit' '
	cp -a seed.git outside.git &&
	{ (cd outside.git && exec wf-apply --watch --check "$(blocking_check go2)" \
		--progress=json >"$TRASH/outside.out" 2>"$TRASH/outside.err") & } &&
	a=$! &&
	echo $a >>started &&
	wait_for test -f go2.running &&
	# A plain update-ref to the branch, while the batch is checked.
	tree=$(git -C outside.git rev-parse "main^{tree}") &&
	theirs=$(git -C outside.git commit-tree -p main -m outside $tree) &&
	git -C outside.git update-ref refs/heads/main $theirs &&
	touch go2 &&
	wait_drained outside.git &&
	stop $a &&
	test_grep "\"event\":\"moved\"" outside.err &&
	! grep -e "kept moving" -e "\"event\":\"error\"" outside.err &&
	git -C outside.git merge-base --is-ancestor $theirs main &&
	git -C outside.git log --first-parent --format=%s main >subjects &&
	test_grep "^outside$" subjects &&
	git -C outside.git log --reverse --first-parent \
	    --format="%(trailers:key=Queue-Id,valueonly,separator=)" main |
		grep . >outside.landed &&
	test_cmp order outside.landed
'

test_expect_success '--once waits for the holder, then finds the work done' '
	cp -a seed.git wait.git &&
	{ (cd wait.git && exec wf-apply --once --check "$(blocking_check go3)" \
		>"$TRASH/wait.out.a" 2>"$TRASH/wait.err.a") & } &&
	a=$! &&
	echo $a >>started &&
	wait_for test -f go3.running &&
	{ (cd wait.git && exec wf-apply --once \
		>"$TRASH/wait.out.b" 2>"$TRASH/wait.err.b") & } &&
	b=$! &&
	echo $b >>started &&
	wait_for grep -q "waiting for" wait.err.b &&
	echo "wf-apply: main: waiting for '"'"'wf-apply/0@$(uname -n):$a'"'"'," \
		"which is landing on it" >expect &&
	sort -u wait.err.b >actual &&
	test_cmp expect actual &&
	kill -0 $b &&
	touch go3 &&
	{ wait $b || { echo "the waiting one exited $?"; false; }; } &&
	# When it is done, so is everything that was queued.
	(cd wait.git && wf-queue metrics) >metrics &&
	test_grep "\"depth\":\{\"queued\":0,\"leased\":0,\"landed\":$N," \
	    metrics &&
	{ wait $a || { echo "the holder exited $?"; false; }; } &&
	cat wait.out.a wait.out.b >wait.out &&
	landed_ok wait.git wait.out wait.err.a wait.err.b
'

# A case that failed may have left its appliers running: end them.
for p in $(cat started); do
	kill -9 "$p" 2>/dev/null
done
test_done
