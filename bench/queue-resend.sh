#!/bin/sh
# Re-sending requests that are queued already, at several queue depths:
# the cost should not grow with the depth.  For each DEPTH, a queue of
# DEPTH "files" requests is made with wf-enqueue, then RESEND of them
# are sent again, byte for byte, in one wf-enqueue run: the first RESEND
# of the queue (at its head) and the last RESEND (at its tail, where
# the most entries are ahead of each).  Prints the seconds of each
# re-send, best of BENCH_RUNS (default 3), and checks that every one
# came back "existing" with its position in the queue; then sends the
# tail again once more with a new request sent 50 ms after it starts,
# and prints how long that one took (it waits only for the re-send's
# write lock, if the re-send holds it).
#
#   sh bench/queue-resend.sh [RESEND [DEPTH...]]   (default 1000 1000 50000)
#
# WF_BIN (default bin/ of this tree) is where the tools are, so that
# another build can be measured the same way.  Queues and inputs are
# left in bench/out/resend/.  Exits non-zero only when a tool fails or
# a check does not hold, never on a time.
set -u

resend=${1:-1000}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 1000 50000
runs=${BENCH_RUNS:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${WF_BIN:-$src/bin}
out=$src/bench/out/resend
me=queue-resend

fail() {
	echo "$me: error: $*" >&2
	exit 4
}

case $resend$runs$* in
*[!0-9\ ]*)
	echo "$me: error: RESEND, DEPTH and BENCH_RUNS are numbers" >&2
	exit 2
	;;
esac
for d in "$@"; do
	if [ "$d" -lt "$resend" ] || [ "$resend" -lt 1 ]; then
		echo "$me: error: each DEPTH must be RESEND ($resend) or" \
		    "more, RESEND 1 or more" >&2
		exit 2
	fi
done
[ "$runs" -ge 1 ] || { echo "$me: error: BENCH_RUNS must be 1 or more" >&2;
	exit 2; }
[ -x "$bin/wf-enqueue" ] || fail "'$bin/wf-enqueue' is not built; run make"
export GIT_AUTHOR_NAME='A U Thor' GIT_AUTHOR_EMAIL='author@example.com'
export GIT_COMMITTER_NAME='C O Mitter' GIT_COMMITTER_EMAIL='c@example.com'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE WF_DB
rm -rf "$out" && mkdir -p "$out" || exit 4
cd "$out" || exit 4

git init -q --bare --initial-branch=main repo.git || fail "git init failed"
git init -q work &&
	(cd work && echo base >README && git add README &&
	    git commit -q -m base && git push -q ../repo.git HEAD:main) ||
	fail "cannot make the base commit"
rm -rf work

now() {
	date +%s.%N
}

# Whether $1 < $2.
less() {
	[ "$(awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) }')" = 1 ]
}

# resend NAME FILE FIRST: send FILE again, BENCH_RUNS times; sets $best.
# Each request must come back existing, the first at position FIRST.
resend() {
	best= all=
	r=0
	while [ $r -lt "$runs" ]; do
		r=$((r + 1))
		t0=$(now)
		"$bin/wf-enqueue" --db "$out/queue.db" "$2" >"$1.out" ||
			fail "$1: wf-enqueue failed"
		t1=$(now)
		secs=$(awk -v a="$t0" -v b="$t1" \
		    'BEGIN { printf "%.2f", b - a }')
		all="$all $secs"
		if [ -z "$best" ] || less "$secs" "$best"; then
			best=$secs
		fi
	done
	[ "$(grep -c '"existing":true' "$1.out")" -eq "$resend" ] ||
		fail "$1: not every request came back existing"
	head -1 "$1.out" | grep -q "\"position\":$3[,}]" ||
		fail "$1: the first is not at position $3"
}

results=
for depth in "$@"; do
	rm -f queue.db queue.db-wal queue.db-shm
	awk -v n="$depth" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"id\": \"r/%d\", \"target\": \"main\", " \
			    "\"kind\": \"files\", \"files\": [{\"path\": " \
			    "\"d%d/f%d\", \"content\": \"aGkK\"}]}\n", i,
			    int(i / 100), i
	}' >"queue-$depth.jsonl"
	head -n "$resend" "queue-$depth.jsonl" >"head-$depth.jsonl"
	tail -n "$resend" "queue-$depth.jsonl" >"tail-$depth.jsonl"
	(cd repo.git && "$bin/wf-enqueue" --db "$out/queue.db" \
	    "$out/queue-$depth.jsonl") >/dev/null ||
		fail "cannot fill the queue"
	cd repo.git || exit 4
	resend "$out/head-$depth" "$out/head-$depth.jsonl" 1
	head_best=$best head_all=$all
	resend "$out/tail-$depth" "$out/tail-$depth.jsonl" \
	    $((depth - resend + 1))
	# One new request sent while the tail is sent again.
	printf '{"id": "new/%d", "target": "main", "kind": "files", "files":' \
	    "$depth" >"$out/new-$depth.jsonl"
	printf ' [{"path": "new/%d", "content": "aGkK"}]}\n' "$depth" \
	    >>"$out/new-$depth.jsonl"
	"$bin/wf-enqueue" --db "$out/queue.db" "$out/tail-$depth.jsonl" \
	    >/dev/null &
	big=$!
	sleep 0.05
	t0=$(now)
	"$bin/wf-enqueue" --db "$out/queue.db" "$out/new-$depth.jsonl" \
	    >"$out/new-$depth.out" || fail "the new request was refused"
	t1=$(now)
	wait $big || fail "the re-send beside it failed"
	grep -q '"state":"queued"' "$out/new-$depth.out" &&
	    ! grep -q '"existing":true' "$out/new-$depth.out" ||
		fail "the new request was not queued as new"
	beside=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	cd "$out" || exit 4
	echo "$me: depth $depth: re-sending $resend at the head $head_best s" \
	    "(every run:$head_all), at the tail $best s (every run:$all);" \
	    "a new request beside the tail's re-send $beside s"
	results="$results $depth:$head_best/$best"
done
echo "$me: $resend re-sent, best of $runs, depth:head/tail seconds:$results"
