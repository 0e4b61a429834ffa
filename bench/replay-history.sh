#!/bin/sh
# A real project's history replayed through wf and through git am: the
# last N first-parent steps of REPO's HEAD, each written as a patch
# mail (its author, date, subject and body, and the diff from its first
# parent: merges count as one step), in one mbox.  git am applies the
# mbox in a clone with its work tree checked out at the commit the
# steps start from, as a person would; `wf-enqueue --mbox` reads the
# same mbox into the queue of a bare clone and `wf-apply --once` lands
# it, with no checks.  Prints the seconds and peak RSS of each side and
# the ratio (the goal is wf 10 times faster or more), and checks that
# every landed tree, on both sides, is the original's, in order.
#
#   sh bench/replay-history.sh [REPO [N]]  (default: this checkout, 300)
#
# BENCH_RUNS (default 3) runs each side that many times, turn about, each
# time from the same start, and prints the median of each figure: git
# am's time on one series varies by a factor of two on a shared machine.
#
# Inputs and repositories are left in bench/out/replay/.  Exits
# non-zero only when a tool fails or a tree differs, never on the ratio.
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$src}
n=${2:-300}
out=$src/bench/out/replay
me=replay-history

fail() {
	echo "$me: error: $*" >&2
	exit 4
}

runs=${BENCH_RUNS:-3}
case $n$runs in
'' | *[!0-9]*)
	echo "$me: error: N and BENCH_RUNS are numbers" >&2
	exit 2
	;;
esac
[ "$runs" -ge 1 ] || runs=1
for f in "$src/bin/wf-enqueue" "$src/bin/wf-apply"; do
	[ -x "$f" ] || fail "'$f' is not built; run make"
done
[ -x /usr/bin/time ] || fail "/usr/bin/time is needed for peak RSS"
repo=$(cd "$repo" && pwd) || exit 2
git -C "$repo" rev-parse -q --verify HEAD >/dev/null ||
	fail "'$repo' is not a git repository with a HEAD"
total=$(git -C "$repo" rev-list --first-parent --count HEAD)
[ "$n" -lt "$total" ] || n=$((total - 1))
[ "$n" -ge 1 ] || fail "'$repo' has no step to replay"
rm -rf "$out" && mkdir -p "$out" || exit 4
cd "$out" || exit 4
export GIT_COMMITTER_NAME='C O Mitter' GIT_COMMITTER_EMAIL='c@example.com'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE WF_DB

# Steps that change nothing (a merge of what was there) are left out:
# git am stops at a mail without a diff.
git -C "$repo" rev-list --first-parent --reverse -n "$n" HEAD >all-steps
while read -r c; do
	git -C "$repo" diff --quiet "$c^1" "$c" || echo "$c"
done <all-steps >steps
n=$(wc -l <steps)
start=$(git -C "$repo" rev-parse "$(head -1 steps)^1") ||
	fail "cannot find where the steps start"
while read -r c; do
	git -C "$repo" log -1 --format='From %H Mon Sep 17 00:00:00 2001%nFrom: %an <%ae>%nDate: %aD%nSubject: [PATCH] %s%n%n%b%n---' "$c"
	git -C "$repo" diff --binary --full-index "$c^1" "$c"
	echo
done <steps >series.mbox || fail "cannot write the mbox"

# Both sides start from a repository that has the history up to the
# start and nothing after it, as a real one would: objects the steps
# write are new, not found there already.
git init -q --bare src.git &&
	git -C src.git fetch -q --no-tags "$repo" "+$start:refs/heads/main" 2>/dev/null ||
	git -C src.git fetch -q --no-tags "$repo" "+refs/*:refs/*" &&
	git -C src.git update-ref refs/heads/main "$start" ||
	fail "cannot copy '$repo'"
git clone -q --no-local --single-branch --branch main src.git am0 ||
	fail "git clone failed"
git clone -q --bare --no-local --single-branch --branch main src.git wf0.git ||
	fail "git clone failed"
rm -rf src.git
for r in am0 wf0.git; do
	git -C $r config user.name 'C O Mitter'
	git -C $r config user.email c@example.com
done

timed() {
	label=$1
	shift
	/usr/bin/time -a -o "$out/$label.time" -f '%e %U %S %M' "$@" ||
		fail "$label: '$*' failed"
}

files=$(git -C "$repo" ls-tree -r "$start" | wc -l)
echo "$me: $repo: $n steps, $files files at the start, $runs runs"
rm -f am.time enqueue.time apply.time
run=0
while [ "$run" -lt "$runs" ]; do
	run=$((run + 1))
	# Each run from copies of the start: nothing an earlier one wrote.
	rm -rf am wf.git && cp -a am0 am && cp -a wf0.git wf.git ||
		fail "cannot copy the repositories"
	timed am sh -c 'cd am && git am -q --keep-cr --whitespace=nowarn ../series.mbox'
	timed enqueue sh -c 'cd wf.git && exec "$0/bin/wf-enqueue" --mbox ../series.mbox --target main >../enqueue.out' "$src"
	timed apply sh -c 'cd wf.git && exec "$0/bin/wf-apply" --once --batch 64 >../apply.out' "$src"

	landed=$(grep -c '"state":"landed"' apply.out)
	[ "$landed" -eq "$n" ] || fail "wf-apply landed $landed of $n"
	while read -r c; do
		git -C "$repo" rev-parse "$c^{tree}"
	done <steps >orig.trees
	git -C am log --reverse --first-parent --format=%T -n "$n" HEAD >am.trees
	git -C wf.git log --reverse --first-parent --format=%T -n "$n" main >wf.trees
	cmp -s orig.trees am.trees || fail "git am's trees differ from the original's"
	cmp -s orig.trees wf.trees || fail "wf's trees differ (orig.trees, wf.trees)"
done

# The median of each column of a .time file.
median() {
	for col in 1 2 3 4; do
		awk -v c=$col '{ print $c }' "$1" | sort -n |
			awk '{ v[NR] = $1 } END { printf "%s ", v[int((NR + 1) / 2)] }'
	done
	echo
}

{ median am.time; median enqueue.time; median apply.time; } | awk -v n="$n" -v runs="$runs" '
{ wall[NR] = $1; cpu[NR] = $2 + $3; kb[NR] = $4 }
END {
	printf "%-22s %8s %8s %9s   (median of %d)\n", "", "wall", "cpu", \
	    "peak RSS", runs
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "git am", wall[1], cpu[1], \
	    kb[1] / 1024
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "wf-enqueue --mbox", \
	    wall[2], cpu[2], kb[2] / 1024
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "wf-apply", wall[3], \
	    cpu[3], kb[3] / 1024
	w = wall[2] + wall[3]; c = cpu[2] + cpu[3]
	printf "%-22s %7.2fs %7.2fs\n", "wf total", w, c
	printf "%-22s %7.1fx %7.1fx   (goal: 10x)\n", "git am / wf", \
	    wall[1] / (w > 0.01 ? w : 0.01), cpu[1] / (c > 0.01 ? c : 0.01)
	printf "the original %d trees, in order, on both sides: yes\n", n
}'
