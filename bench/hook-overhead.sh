#!/bin/sh
# What wf's server hooks add to a push: the median wall time of a push of
# one new commit (a new file) to refs/for/main/<topic> into a bare repository with
# the hooks (pre-receive validates; proc-receive queues, keeps the
# commits at refs/wf/changes/<queue id> and starts the landing in the
# background), against the same push into a bare repository without
# hooks (where it makes a ref refs/for/main/<topic>), in one run,
# pushes alternating.
#
#   sh bench/hook-overhead.sh [PUSHES]        (default 31 each)
#
# Landing is kept out of the figure: it runs in the background, and the
# next push starts only once that runner is done, so the figure is what
# the pusher waits for: validation, the enqueue and starting the runner.
# The goal is under 30 ms added.  The runner removes the ref of each
# change it landed: an empty refs/wf/ says it is done.  A throwaway setup is made in
# bench/out/hooks/.  Exits non-zero only when a push fails or a change
# does not land.
set -u

pushes=${1:-31}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out/hooks
bin=$src/bin

for t in wf-hooks wf-apply wf-enqueue wf-queue; do
	if [ ! -x "$bin/$t" ]; then
		echo "hook-overhead: error: '$bin/$t' is not built; run make" >&2
		exit 4
	fi
done
PATH=$bin:$PATH
export PATH
rm -rf "$out" && mkdir -p "$out" || exit 4
cd "$out" || exit 4

git init -q --bare plain.git &&
git init -q --bare hooked.git &&
git init -q work &&
git -C work config user.name bench &&
git -C work config user.email bench@example.com &&
seq 1 1000 >work/f &&
git -C work add f &&
git -C work commit -q -m base &&
git -C work push -q "$out/plain.git" HEAD:refs/heads/main &&
git -C work push -q "$out/hooked.git" HEAD:refs/heads/main &&
wf-hooks install --server -C hooked.git >/dev/null || exit 4
base=$(git -C work rev-parse HEAD) || exit 4
mkdir -p hooked.git/wf || exit 4

now_ns() {
	date +%s%N
}

# push_ms REPO TOPIC: milliseconds (with a decimal) of one push.
push_ms() {
	t0=$(now_ns)
	git -C work push -q "$out/$1" "HEAD:refs/for/main/$2" 2>/dev/null ||
		return 1
	t1=$(now_ns)
	echo "$t0 $t1" | awk '{ printf "%.1f\n", ($2 - $1) / 1e6 }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

: >plain.ms
: >hooked.ms
i=0
while [ $i -lt "$pushes" ]; do
	git -C work checkout -q -B "t$i" "$base" || exit 4
	echo "change $i" >"work/f$i"
	git -C work add "f$i" &&
	git -C work commit -q -m "change $i" || exit 4
	push_ms plain.git "t$i" >>plain.ms || exit 1
	push_ms hooked.git "t$i" >>hooked.ms || exit 1
	# The background runner of this push finishes before the next.
	n=0
	until [ -z "$(git -C hooked.git for-each-ref refs/for refs/wf)" ] &&
	    flock -n hooked.git/wf/land.lock true; do
		n=$((n + 1))
		[ $n -lt 300 ] || { echo "hook-overhead: error: no landing" >&2; exit 1; }
		sleep 0.05
	done
	i=$((i + 1))
done

landed=$(wf-queue -C hooked.git list --state landed | wc -l)
p=$(median <plain.ms)
h=$(median <hooked.ms)
printf 'pushes            %d each, to refs/for/main/<topic>\n' "$pushes"
printf 'without hooks     %s ms (median)\n' "$p"
printf 'with wf hooks     %s ms (median)\n' "$h"
echo "$p $h" | awk '{ printf "added             %.1f ms\n", $2 - $1 }'
printf 'landed            %d changes, in the background\n' "$landed"
[ "$landed" -eq "$pushes" ] || {
	echo "hook-overhead: error: $landed changes landed, not $pushes" >&2
	exit 1
}
