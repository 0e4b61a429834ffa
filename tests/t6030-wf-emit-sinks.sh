#!/bin/sh
# wf-emit sinks: files appended one write per event by concurrent
# emitters, --tee, unix sockets with a real listener, and the outbox:
# a sink that is down keeps its events, 'wf-emit flush' delivers them
# later, in order, each once.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t6000
PLAN=$T/expect-plan_created.jsonl

jt() {
	python3 "$T/jsontool.py" "$@"
}

# sql DB QUERY: the rows, columns joined by "|" (no sqlite3 needed).
sql() {
	python3 -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("|".join(str(c) for c in row))' "$1" "$2"
}

# wait_lines FILE N: wait (up to 10 s) until FILE has N lines.
wait_lines() {
	i=0
	while test "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" &&
	    test $i -lt 100; do
		sleep 0.1
		i=$((i + 1))
	done
	test "$(wc -l <"$1")" -eq "$2"
}

# listen [--dgram] SOCKET OUT: a listener in the background; its pid in
# $listener.
listen() {
	if test "$1" = --dgram; then
		python3 "$T/listen.py" --dgram "$2" "$3" &
		out=$3
	else
		python3 "$T/listen.py" "$1" "$2" &
		out=$2
	fi
	listener=$!
	i=0
	while test ! -e "$out.ready" && test $i -lt 100; do
		sleep 0.1
		i=$((i + 1))
	done
	test -e "$out.ready"
}

# Three distinct events: the change lines of t6000.
head -n 3 "$T/changes.jsonl" >three.jsonl
wf-emit change three.jsonl >three-events.jsonl

test_expect_success '--output appends, one line per event, made on the first' '
	wf-emit change --output events.jsonl </dev/null &&
	test ! -e events.jsonl &&
	wf-emit change --output events.jsonl three.jsonl >out &&
	test ! -s out &&
	test_cmp three-events.jsonl events.jsonl &&
	wf-emit change --output events.jsonl --fsync three.jsonl &&
	cat three-events.jsonl three-events.jsonl >expect &&
	test_cmp expect events.jsonl
'

test_expect_success 'concurrent emitters of large events never interleave a line' '
	# Each event is about 40 KB, far above PIPE_BUF, so only a single
	# write(2) per line keeps the lines whole.
	python3 - "$T/summary-executed.json" <<-\EOF &&
	import json, sys
	s = json.load(open(sys.argv[1]))
	files = ["study/%d/path/number/%04d/of/a/long/deliverable.md" % (0, i)
	         for i in range(800)]
	for k in range(4):
	    s["issue_number"] = 1000 + k
	    s["stage_runs"][0]["workflows"][0]["created_files"] = files
	    with open("big-%d.jsonl" % k, "w") as f:
	        for _ in range(40):
	            f.write(json.dumps(s) + "\n")
	EOF
	for k in 0 1 2 3; do
		wf-emit execution_summary --output big-events.jsonl \
			big-$k.jsonl &
	done &&
	wait &&
	test $(wc -l <big-events.jsonl) -eq 160 &&
	test $(wc -c <big-events.jsonl) -gt 6000000 &&
	python3 -c "
import json, sys, collections
n = collections.Counter(json.loads(l)[\"issue_number\"] for l in open(\"big-events.jsonl\"))
assert n == {1000: 40, 1001: 40, 1002: 40, 1003: 40}, n
" &&
	for k in 0 1 2 3; do
		head -n 1 big-$k.jsonl | wf-emit execution_summary >one-$k &&
		test $(grep -c -F -x -f one-$k big-events.jsonl) -eq 40 || exit 1
	done
'

test_expect_success '--tee passes the input through byte for byte' '
	wf-match --catalog "$TEST_DIRECTORY/t1000/catalog" \
		"$TEST_DIRECTORY/t1000/issue-482.json" "$TEST_DIRECTORY/t1000/items.jsonl" |
		wf-plan >plans.jsonl &&
	test $(wc -l <plans.jsonl) -gt 3 &&
	wf-emit plan_created --output tee-events.jsonl --tee \
		<plans.jsonl >passed &&
	cmp plans.jsonl passed &&
	test $(wc -l <tee-events.jsonl) -eq $(wc -l <plans.jsonl) &&
	wf-plan --pretty "$TEST_DIRECTORY/t2000/plan-482.json" >pretty.json &&
	wf-emit plan_created --output tee-events.jsonl --tee pretty.json \
		>passed &&
	cmp pretty.json passed
'

test_expect_success 'wf-emit in the middle of a pipeline' '
	wf-match --catalog "$TEST_DIRECTORY/t1000/catalog" \
		"$TEST_DIRECTORY/t1000/issue-482.json" |
		wf-plan --preview-only |
		wf-emit plan_created --output pipe-events.jsonl --tee |
		wf-emit execution_summary --skipped --output pipe-events.jsonl \
		--tee >plan &&
	test $(wc -l <plan) -eq 1 &&
	test_grep "\"max_parallel\":4," plan &&
	test $(wc -l <pipe-events.jsonl) -eq 2 &&
	head -n 1 pipe-events.jsonl | test_grep "^\{\"plan_id\"" - &&
	tail -n 1 pipe-events.jsonl | test_grep "^\{\"issue_number\":482,.*\"skip_reason\":\"preview_only_guard\"\}$" -
'

test_expect_success 'a stream socket listener gets the events' '
	listen "$TRASH/s.sock" got-stream &&
	wf-emit change --socket "$TRASH/s.sock" three.jsonl 2>err &&
	wait_lines got-stream 3 &&
	kill $listener &&
	test_cmp three-events.jsonl got-stream &&
	test ! -s err
'

test_expect_success 'a datagram socket listener gets one datagram per event' '
	listen --dgram "$TRASH/d.sock" got-dgram &&
	wf-emit change --socket "$TRASH/d.sock" three.jsonl 2>err &&
	wait_lines got-dgram 3 &&
	kill $listener &&
	test_cmp three-events.jsonl got-dgram &&
	test ! -s err
'

test_expect_success 'socket down: events kept, then flush delivers them once, in order' '
	rm -f s.sock &&
	wf-emit change --socket "$TRASH/s.sock" --outbox ob.db \
		"$T/changes.jsonl" >out 2>err &&
	test ! -s out &&
	test_grep "^wf-emit: warning: cannot connect to socket .*s.sock.: No such file or directory; keeping its events in the outbox .ob.db. for .wf-emit flush.$" err &&
	test $(wc -l <err) -eq 1 &&
	test "$(sql ob.db "select count(*) from outbox")" -eq 7 &&
	test_expect_code 75 wf-emit flush --outbox ob.db >out 2>err &&
	echo "{\"sink\":\"socket:$TRASH/s.sock\",\"delivered\":0,\"pending\":7}" >expect &&
	test_cmp expect out &&
	test_grep "^wf-emit: warning: cannot connect to socket" err &&
	listen "$TRASH/s.sock" got-flush &&
	wf-emit flush --outbox ob.db >out &&
	echo "{\"sink\":\"socket:$TRASH/s.sock\",\"delivered\":7,\"pending\":0}" >expect &&
	test_cmp expect out &&
	wf-emit change "$T/changes.jsonl" >expect &&
	wait_lines got-flush 7 &&
	test_cmp expect got-flush &&
	wf-emit flush --outbox ob.db >out &&
	test ! -s out &&
	wf-emit flush --outbox ob.db --socket "$TRASH/s.sock" >out &&
	echo "{\"sink\":\"socket:$TRASH/s.sock\",\"delivered\":0,\"pending\":0}" >expect &&
	test_cmp expect out &&
	sleep 0.2 &&
	kill $listener &&
	test $(wc -l <got-flush) -eq 7
'

test_expect_success 'a new emitter delivers the waiting events before its own' '
	rm -f s.sock &&
	wf-emit change --socket "$TRASH/s.sock" --outbox ob.db \
		three.jsonl 2>err &&
	test_grep "keeping its events" err &&
	listen "$TRASH/s.sock" got-backlog &&
	sed -n 4p "$T/changes.jsonl" >fourth.jsonl &&
	wf-emit change --socket "$TRASH/s.sock" --outbox ob.db \
		fourth.jsonl 2>err &&
	test ! -s err &&
	wait_lines got-backlog 4 &&
	kill $listener &&
	head -n 4 "$T/changes.jsonl" | wf-emit change >expect &&
	test_cmp expect got-backlog &&
	test "$(sql ob.db "select count(*) from outbox")" -eq 0
'

test_expect_success 'concurrent flushers deliver each event once, in order' '
	python3 -c "
for i in range(300):
    print(\"{\\\"id\\\":\\\"task-%d/1\\\",\\\"queue_id\\\":%d,\\\"state\\\":\\\"queued\\\",\\\"position\\\":1}\" % (i, i + 1))
" >many.jsonl &&
	wf-emit change --output later/events.jsonl --outbox ob2.db \
		many.jsonl 2>err &&
	test_grep "cannot open .*later/events.jsonl.: No such file or directory" err &&
	test ! -e later &&
	mkdir later &&
	wf-emit flush --outbox ob2.db >out1 &
	wf-emit flush --outbox ob2.db >out2 &
	wf-emit flush --outbox ob2.db >out3 &
	wait &&
	wf-emit change many.jsonl >expect &&
	test_cmp expect later/events.jsonl &&
	cat out1 out2 out3 | sed -e "s/.*\"delivered\":\([0-9]*\).*/\1/" |
		awk "{ n += \$1 } END { exit n != 300 }"
'

test_expect_success 'a full disk keeps the events too' '
	wf-emit change --output /dev/full --outbox ob3.db three.jsonl 2>err &&
	test_grep "^wf-emit: warning: cannot write to ./dev/full.: No space left on device; keeping" err &&
	test_expect_code 75 wf-emit flush --outbox ob3.db >out 2>err &&
	echo "{\"sink\":\"file:/dev/full\",\"delivered\":0,\"pending\":3}" >expect &&
	test_cmp expect out &&
	test "$(sql ob3.db "select attempts, last_error from outbox where seq = 1")" = \
		"1|cannot write to '\''/dev/full'\'': No space left on device"
'

test_expect_success 'the outbox is found through WF_OUTBOX, then in the git directory' '
	WF_OUTBOX=$TRASH/env.db wf-emit change --socket "$TRASH/none.sock" \
		three.jsonl 2>err &&
	test "$(sql env.db "select count(*) from outbox")" -eq 3 &&
	git init -q repo &&
	(cd repo && wf-emit change --socket "$TRASH/none.sock" \
		../three.jsonl 2>../err) &&
	test "$(sql repo/.git/wf/outbox.db "select count(*) from outbox")" -eq 3 &&
	test_grep "outbox .*repo/.git/wf/outbox.db" err
'

test_expect_success 'flush with no outbox has nothing to do' '
	wf-emit flush --outbox nothing.db >out 2>err &&
	test ! -s out &&
	test ! -s err &&
	test ! -e nothing.db
'

test_done
