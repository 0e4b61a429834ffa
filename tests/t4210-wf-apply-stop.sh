#!/bin/sh
# wf-apply stopped mid-check: by kill -9, then started again (the
# checkout and the check's processes it left are cleaned up), and by
# SIGTERM or SIGINT (it ends promptly, and gives the changes back).

. "$(dirname "$0")/lib.sh"

# req ID: a request adding the file named ID.
req() {
	printf '{"id": "%s", "target": "main", "kind": "files", "files": [{"path": "%s", "content": "aGkK"}]}\n' "$1" "$1"
}

# running PID: the process runs (a zombie does not).
running() {
	test -r /proc/$1/stat &&
	! sed -e 's/.*) //' /proc/$1/stat | grep -q '^[ZX]'
}

# start_time PID: field 22 of /proc/PID/stat.
start_time() {
	sed -e 's/.*) //' /proc/$1/stat | cut -d" " -f20
}

# The check: its shell and a child, both named in files.
cat >check.sh <<EOF
echo \$\$ >"$TRASH/leader"
sleep 300 &
echo \$! >"$TRASH/grandchild"
wait
EOF

test_expect_success 'setup' '
	git init -q --bare repo.git &&
	git init -q work &&
	(cd work && echo base >README && git add . && git commit -q -m base &&
		git push -q ../repo.git main)
'

test_expect_success 'kill -9 mid-check leaves a checkout and a grandchild' '
	req k1 | (cd repo.git && wf-enqueue) >/dev/null &&
	git -C repo.git rev-parse main >tip || exit 1
	(cd repo.git && exec wf-apply --check "sh $TRASH/check.sh" \
		>"$TRASH/out" 2>"$TRASH/err") &
	pid=$! &&
	wait_for test -s grandchild &&
	kill -9 $pid &&
	{ wait $pid; test $? -eq 137; } &&
	test -n "$(ls -A "$TMPDIR")" &&
	running $(cat grandchild) &&
	(cd repo.git && wf-queue list --state leased) >leased &&
	test_grep "\"id\":\"k1\"" leased
'

test_expect_success 'the restart removes them, and the change lands' '
	(cd repo.git && wf-apply --check true --progress=text) >out 2>err &&
	test_grep "removed 1 checkout of killed runs, killed [1-9][0-9]* process" err &&
	test_grep "after a crash: 0 landed, 1 queued again" err &&
	test_grep "^\{\"id\":\"k1\",.*\"state\":\"landed\"" out &&
	test -z "$(ls -A "$TMPDIR")" &&
	! running $(cat leader) &&
	! running $(cat grandchild) &&
	(cd repo.git && wf-queue show k1) >show &&
	test_grep "\"attempts\":1," show &&
	test "$(git -C repo.git rev-parse main~1)" = "$(cat tip)" &&
	(cd repo.git && wf-queue doctor) >doctor &&
	test_grep "^\{\"ok\":true" doctor
'

# stop SIGNAL MODE: wf-apply in MODE gets SIGNAL while its check runs.
stop() {
	rm -f leader grandchild &&
	git -C repo.git rev-parse main >tip || return 1
	(cd repo.git && exec wf-apply $2 --check "sh $TRASH/check.sh" \
		>"$TRASH/out" 2>"$TRASH/err") &
	pid=$! &&
	wait_for test -s grandchild &&
	start=$(date +%s) &&
	kill -$1 $pid &&
	{ wait $pid; echo $? >rc; } &&
	echo $(($(date +%s) - start)) >took &&
	echo 75 >expect &&
	test_cmp expect rc &&
	test $(cat took) -lt 10 &&
	test_grep "^wf-apply: error: interrupted" err &&
	test ! -s out &&
	! running $(cat leader) &&
	! running $(cat grandchild) &&
	test -z "$(ls -A "$TMPDIR")" &&
	test "$(git -C repo.git rev-parse main)" = "$(cat tip)"
}

test_expect_success 'SIGTERM mid-check ends wf-apply --watch promptly' '
	req t1 | (cd repo.git && wf-enqueue) >/dev/null &&
	stop TERM --watch &&
	(cd repo.git && wf-queue show t1) >show &&
	test_grep "\"state\":\"queued\",.*\"attempts\":0," show &&
	test_grep "\"why\":\"interrupted\",\"from\":\"leased\",\"to\":\"queued\"" show
'

test_expect_success 'SIGINT mid-check ends wf-apply --once promptly' '
	stop INT --once &&
	(cd repo.git && wf-queue show t1) >show &&
	test_grep "\"state\":\"queued\",.*\"attempts\":0," show
'

test_expect_success 'the interrupted change lands afterwards' '
	(cd repo.git && wf-apply --check true) >out &&
	test_grep "^\{\"id\":\"t1\",.*\"state\":\"landed\"" out &&
	(cd repo.git && wf-queue show t1) >show &&
	test_grep "\"attempts\":1," show
'

# record DIR PGID START: a check directory left by a killed wf-apply.
record() {
	mkdir "$TMPDIR/$1" "$TMPDIR/$1/tree" &&
	printf "wf-check 1\nhost %s\npid %010d\nid %s\npgid %010d %020d\n" \
		"$(uname -n)" 99999 0123456789abcdef0123456789abcdef $2 $3 \
		>"$TMPDIR/$1/lock"
}

test_expect_success 'a recorded group taken by a stranger is left alone' '
	setsid sh -c "echo \$\$ >stranger; exec sleep 300" &
	setsid sh -c "echo \$\$ >orphan; exec sleep 300" &
	wait_for test -s stranger &&
	wait_for test -s orphan &&
	s=$(cat stranger) o=$(cat orphan) &&
	# The same group id, not the same process: started at another time.
	record wf-check.reused $s $(($(start_time $s) + 1)) &&
	record wf-check.orphan $o $(start_time $o) &&
	(cd repo.git && wf-apply --progress=text) >out 2>err &&
	test_grep "removed 2 checkouts of killed runs, killed 1 process " err &&
	test -z "$(ls -A "$TMPDIR")" &&
	! running $o &&
	running $s
	rc=$?
	kill $s $o 2>/dev/null
	exit $rc
'

test_done
