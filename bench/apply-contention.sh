#!/bin/sh
# Several wf-apply on one target: the same queue of CHANGES changes
# drained by one `wf-apply --watch` and by APPLIERS of them started
# together, side by side in one run.  Prints the seconds each case took
# to drain the queue and the processor time the appliers used (user and
# system, summed), the ratio of the times (APPLIERS' over one's: the
# goal is 1.0 or less) and what the appliers reported: rebuilds because
# the branch moved, errors ("kept moving", busy), changes failed or dead.
#
#   sh bench/apply-contention.sh [CHANGES [APPLIERS]]   (default 8000 4)
#
# BENCH_RUNS (default 1) runs each case that many times, turn about,
# and keeps the best time; BENCH_BATCH (default 8, wf-apply's) is the
# batch.  Each change adds one file (in directories of 100 files), so
# none conflicts with another and every one must land.  The queue is
# made once by wf-enqueue into a bare repository and copied for each
# run.  A run ends when the queue's metrics say every change is landed
# (polled every 0.2 s, so times are +-0.2 s), or failed when one is
# failed or dead, or after BENCH_TIMEOUT seconds (default 900); the
# appliers are then stopped with SIGTERM.  Each run is checked: every
# change on the branch exactly once (by its Queue-Id trailer), and in
# queue order.  WF_BIN (default bin/ of this tree) is where the tools
# are, so that another build can be measured the same way.
# Repositories and logs are left in bench/out/contention/.
# Exits non-zero only when a tool fails or a check does not hold,
# never on the ratio.
set -u

changes=${1:-8000}
appliers=${2:-4}
runs=${BENCH_RUNS:-1}
batch=${BENCH_BATCH:-8}
timeout=${BENCH_TIMEOUT:-900}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out/contention
me=apply-contention

fail() {
	echo "$me: error: $*" >&2
	exit 4
}

case $changes$appliers$runs$batch$timeout in
*[!0-9]*)
	echo "$me: error: CHANGES, APPLIERS, BENCH_RUNS, BENCH_BATCH and" \
	    "BENCH_TIMEOUT are numbers" >&2
	exit 2
	;;
esac
if [ "$changes" -lt 1 ] || [ "$appliers" -lt 2 ] || [ "$runs" -lt 1 ] ||
    [ "$batch" -lt 1 ] || [ "$timeout" -lt 1 ]; then
	echo "$me: error: CHANGES, BENCH_RUNS, BENCH_BATCH and BENCH_TIMEOUT" \
	    "must be 1 or more, APPLIERS 2 or more" >&2
	exit 2
fi
bin=${WF_BIN:-$src/bin}
for f in wf-enqueue wf-apply wf-queue; do
	[ -x "$bin/$f" ] || fail "'$bin/$f' is not built; run make"
done
PATH=$bin:$PATH
export GIT_AUTHOR_NAME='A U Thor' GIT_AUTHOR_EMAIL='author@example.com'
export GIT_COMMITTER_NAME='C O Mitter' GIT_COMMITTER_EMAIL='c@example.com'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE WF_DB
rm -rf "$out" && mkdir -p "$out" || exit 4
cd "$out" || exit 4

# The repository and its queue, once.
git init -q --bare --initial-branch=main seed.git || fail "git init failed"
git init -q work &&
	(cd work && echo base >README && git add README &&
	    git commit -q -m base && git push -q ../seed.git HEAD:main) ||
	fail "cannot make the base commit"
rm -rf work
awk -v n="$changes" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"id\": \"c/%d\", \"target\": \"main\", \"kind\": " \
		    "\"files\", \"files\": [{\"path\": \"d%d/f%d\", " \
		    "\"content\": \"aGkK\"}]}\n", i, int(i / 100), i
}' >changes.jsonl
(cd seed.git && wf-enqueue ../changes.jsonl) >/dev/null ||
	fail "wf-enqueue failed"
awk '{ sub(/^.*"id": "/, ""); sub(/".*/, ""); print }' changes.jsonl \
    >queue-order

now() {
	date +%s.%N
}

# What the metrics say: "landed failed dead".
depth() {
	(cd "$1" && wf-queue metrics) | sed -e \
	    's/.*"landed":\([0-9]*\),"failed":\([0-9]*\),"dead":\([0-9]*\).*/\1 \2 \3/'
}

# run NAME K: drain a fresh copy with K appliers; sets $secs.
run() {
	name=$1 k=$2
	repo=$out/$name.git
	rm -rf "$repo" && cp -a seed.git "$repo" || fail "cannot copy the seed"
	: >"$name.out" && : >"$name.err"
	pids=
	t0=$(now)
	i=0
	while [ $i -lt "$k" ]; do
		(cd "$repo" && exec wf-apply --watch --batch "$batch" \
		    --progress=json >>"$out/$name.out" 2>>"$out/$name.err") &
		pids="$pids $!"
		i=$((i + 1))
	done
	state=timeout
	while :; do
		set -- $(depth "$repo")
		if [ "${1:-0}" -ge "$changes" ]; then
			state=drained
			break
		fi
		if [ "${2:-0}" -gt 0 ] || [ "${3:-0}" -gt 0 ]; then
			state="failed ($2 failed, $3 dead)"
			break
		fi
		if [ "$(awk -v a="$t0" -v b="$(now)" -v t="$timeout" \
		    'BEGIN { print (b - a > t) }')" = 1 ]; then
			break
		fi
		sleep 0.2
	done
	t1=$(now)
	# The appliers' processor time (user and system), from /proc.
	cpu=0
	for p in $pids; do
		c=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) ||
			c=0
		cpu=$((cpu + ${c:-0}))
	done
	cpu=$(awk -v c="$cpu" -v hz="$(getconf CLK_TCK)" \
	    'BEGIN { printf "%.2f", c / hz }')
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for p in $pids; do
		wait "$p"
	done
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	moved=$(grep -c '"event":"moved"' "$name.err")
	errors=$(grep -c '"event":"error"' "$name.err")
	gaveup=$(grep -c 'kept moving' "$name.err")
	busy=$(grep -c 'is busy' "$name.err")
	echo "$me: $name: $k applier(s): $state in $secs s (processor" \
	    "$cpu s); $moved rebuilds (branch moved), $errors errors" \
	    "($gaveup 'kept moving', $busy busy)"
	[ "$state" = drained ] || fail "$name: the queue was not drained"
	git -C "$repo" log --reverse --first-parent \
	    --format='%(trailers:key=Queue-Id,valueonly,separator=)' main |
	    grep . >"$name.landed"
	if [ "$(sort "$name.landed" | uniq -d | wc -l)" -ne 0 ] ||
	    [ "$(wc -l <"$name.landed")" -ne "$changes" ]; then
		fail "$name: not every change is on the branch exactly once"
	fi
	if cmp -s queue-order "$name.landed"; then
		order=yes
	else
		order=no
	fi
	echo "$me: $name: every change on the branch once; in queue" \
	    "order: $order"
}

# Whether $1 < $2.
less() {
	[ "$(awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) }')" = 1 ]
}

best1= bestk= all1= allk=
r=0
while [ $r -lt "$runs" ]; do
	r=$((r + 1))
	run "one-$r" 1
	all1="$all1 $secs"
	if [ -z "$best1" ] || less "$secs" "$best1"; then
		best1=$secs cpu1=$cpu
	fi
	run "$appliers-$r" "$appliers"
	allk="$allk $secs"
	if [ -z "$bestk" ] || less "$secs" "$bestk"; then
		bestk=$secs cpuk=$cpu
	fi
done
echo "$me: $changes changes, batch $batch, best of $runs:" \
    "1 applier $best1 s (processor $cpu1 s; every run:$all1)," \
    "$appliers appliers $bestk s (processor $cpuk s; every run:$allk)," \
    "ratio $(awk -v a="$bestk" -v b="$best1" \
    'BEGIN { printf "%.2f", a / b }')"
