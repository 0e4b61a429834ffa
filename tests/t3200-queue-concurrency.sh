#!/bin/sh
# The queue under load and crashes: 8 enqueuers and 4 workers at once
# land every request exactly once; kill -9 of an enqueuer mid-stream
# leaves a sound database with all or none of its stream.

. "$(dirname "$0")/lib.sh"

WF_DB=$TRASH/queue.db
export WF_DB

# gen NAME COUNT: a JSON Lines stream of COUNT files requests.
gen() {
	awk -v s="$1" -v n="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"id\": \"%s-%d\", \"target\": \"main\", \"kind\": \"files\", \"files\": [{\"path\": \"f/%s-%d\", \"content\": \"aGk=\"}]}\n", s, i, s, i
	}'
}

# worker N: lease (50 at a time) and ack until the enqueuers are done
# and nothing is left; any other failure is written to fail.N.
worker() {
	while :; do
		wf-queue lease --target main --max 50 --for 10m --owner "w$1" \
			>lease.$1 2>>err.w$1
		rc=$?
		if [ $rc -eq 1 ]; then
			[ -f enq.done ] && return 0
			sleep 0.05
			continue
		fi
		if [ $rc -ne 0 ]; then
			echo "lease exited $rc" >>fail.$1
			return 1
		fi
		pairs=$(sed -E 's/^\{"queue_id":[0-9]+,"id":"([^"]+)",.*"lease_token":"([0-9a-f]+)".*/\1 \2/' lease.$1)
		# shellcheck disable=SC2086
		wf-queue ack $pairs >>acked.$1 2>>err.w$1 ||
			echo "ack exited $?" >>fail.$1
	done
}

# integrity_ok: PRAGMA integrity_check says ok (sqlite3, else doctor).
integrity_ok() {
	if command -v sqlite3 >/dev/null 2>&1; then
		test "$(sqlite3 "$WF_DB" 'PRAGMA integrity_check')" = ok
	else
		wf-queue doctor >doctor.out
		grep -q '"check":"integrity","ok":true' doctor.out
	fi
}

test_expect_success 'setup: 8 streams of 1000 requests' '
	for i in 1 2 3 4 5 6 7 8; do
		gen s$i 1000 >stream.$i || return 1
	done &&
	cat stream.* | sed -E "s/^\{\"id\": \"([^\"]+)\".*/\1/" | sort >expect.ids &&
	test $(wc -l <expect.ids) -eq 8000 &&
	wf-queue list >/dev/null
'

test_expect_success '8 enqueuers and 4 workers: every request lands once' '
	for w in 1 2 3 4; do
		worker $w &
	done &&
	pids= &&
	for i in 1 2 3 4 5 6 7 8; do
		{ wf-enqueue stream.$i >enq.$i 2>err.e$i; echo $? >rc.e$i; } &
		pids="$pids $!"
	done &&
	wait $pids &&
	touch enq.done &&
	wait &&
	for i in 1 2 3 4 5 6 7 8; do
		test "$(cat rc.e$i)" = 0 &&
		test $(wc -l <enq.$i) -eq 1000 || return 1
	done &&
	cat err.* >errors &&
	test ! -s errors &&
	! ls fail.* 2>/dev/null &&
	cat acked.* | sed -E "s/^\{\"queue_id\":[0-9]+,\"id\":\"([^\"]+)\",.*\"state\":\"landed\".*/\1/" | sort >acked.ids &&
	test_cmp expect.ids acked.ids &&
	wf-queue list --state landed | sed -E "s/^\{\"queue_id\":[0-9]+,\"id\":\"([^\"]+)\".*/\1/" | sort >landed.ids &&
	test_cmp expect.ids landed.ids &&
	test $(wf-queue list | wc -l) -eq 8000 &&
	wf-queue metrics >metrics &&
	test_grep "\"depth\":\{\"queued\":0,\"leased\":0,\"landed\":8000,\"failed\":0,\"dead\":0\}" metrics &&
	test_grep "\"landed_last_hour\":8000," metrics &&
	integrity_ok
'

test_expect_success 'the audit log has exactly one landing per id' '
	if command -v sqlite3 >/dev/null 2>&1; then
		sqlite3 "$WF_DB" "SELECT count(*), count(DISTINCT entry_id) FROM audit WHERE to_state = '"'landed'"'" >out &&
		echo "8000|8000" >expect &&
		test_cmp expect out
	else
		# 8000 landing rows (metrics) over 8000 distinct landed ids.
		test_grep "\"landed_last_hour\":8000," metrics
	fi
'

# walsize: bytes in the write-ahead log (0 when there is none).
walsize() {
	if [ -f "$WF_DB-wal" ]; then wc -c <"$WF_DB-wal"; else echo 0; fi
}

test_expect_success 'kill -9 mid-stream: integrity ok, all or none of the stream' '
	gen big 20000 >big.jsonl &&
	for when in 0.3 wal wal wal; do
		rm -f "$WF_DB" "$WF_DB-wal" "$WF_DB-shm" &&
		gen before 10 | wf-enqueue >/dev/null &&
		base=$(walsize) &&
		{ wf-enqueue big.jsonl >big.out 2>big.err & } &&
		pid=$! &&
		if [ "$when" = wal ]; then
			# Kill as soon as the stream'"'"'s transaction writes pages.
			i=0 &&
			while [ $(walsize) -le $base ] && [ $i -lt 1000 ]; do
				sleep 0.005; i=$((i + 1))
			done &&
			test $i -lt 1000
		else
			sleep $when
		fi &&
		kill -9 $pid 2>/dev/null; wait $pid
		integrity_ok || return 1
		n=$(wf-queue list | grep -c "\"id\":\"big-") || :
		echo "killed at $when: $n of 20000 stored" &&
		{ test "$n" -eq 0 || test "$n" -eq 20000; } &&
		test $(wf-queue list | grep -c "\"id\":\"before-") -eq 10 &&
		gen after 3 | wf-enqueue >/dev/null &&
		test $(wf-queue list | grep -c "\"id\":\"after-") -eq 3 ||
		return 1
	done
'

test_done
