#!/bin/sh
# What wf-run adds to each step: one workflow of N trivial shell steps
# ("true") run through wf-run, against the same N commands run by a plain
# shell loop (sh -c true, N times), in one run.
#
#   sh bench/run-overhead.sh [STEPS]          (default 1000)
#
# BENCH_RUNS (default 3) sets how many times each side runs; the best
# time of each is kept.  wf-run runs with --no-cache (every step really
# runs), with an empty cache (every step runs and is stored: the default
# on a first run), then with the cache filled (every step a hit).  The
# goal is an overhead under 2 ms per step, measured with --no-cache.  A throwaway repository is made in
# bench/out/run/.  Exits non-zero only when a tool fails.
set -u

steps=${1:-1000}
runs=${BENCH_RUNS:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out/run
bin=$src/bin

for t in wf-match wf-plan wf-run; do
	if [ ! -x "$bin/$t" ]; then
		echo "run-overhead: error: '$bin/$t' is not built; run make" >&2
		exit 4
	fi
done
rm -rf "$out" && mkdir -p "$out/cat" "$out/tmp" || exit 4
TMPDIR=$out/tmp
export TMPDIR

git init -q "$out/repo" &&
echo "bench" >"$out/repo/README" &&
git -C "$out/repo" add README &&
git -C "$out/repo" -c user.name=bench -c user.email=bench@example.com \
    commit -q -m bench || exit 4

awk -v n="$steps" 'BEGIN {
	printf "{\"name\": \"overhead\", \"match\": {\"labels\": [\"bench\"]},"
	printf " \"steps\": ["
	for (i = 0; i < n; i++)
		printf "%s{\"id\": \"s%d\", \"type\": \"shell\", \"run\": \"true\"}",
		    i ? ", " : "", i
	printf "]}\n"
}' >"$out/cat/overhead.json"
echo '{"number": 1, "title": "bench", "labels": ["bench"]}' |
    "$bin/wf-match" --catalog "$out/cat" | "$bin/wf-plan" >"$out/plan.json" ||
    exit 4

now_ms() {
	date +%s%3N
}

# best_of CMD...: the least wall milliseconds of $runs runs of CMD.
best_of() {
	best=
	i=0
	while [ $i -lt "$runs" ]; do
		t0=$(now_ms)
		"$@" >/dev/null || return 1
		t1=$(now_ms)
		ms=$((t1 - t0))
		if [ -z "$best" ] || [ $ms -lt "$best" ]; then
			best=$ms
		fi
		i=$((i + 1))
	done
	echo "$best"
}

loop() {
	(
		cd "$out/repo" || exit 1
		i=0
		while [ $i -lt "$steps" ]; do
			/bin/sh -c true || exit 1
			i=$((i + 1))
		done
	)
}

run_wf() {
	(cd "$out/repo" && "$bin/wf-run" "$@" "$out/plan.json")
}

# A run storing every step in a cache of its own, empty at the start.
fresh=0
run_fresh() {
	fresh=$((fresh + 1))
	run_wf --db "$out/fresh-$fresh.db"
}

check_run() {
	run_wf "$@" >"$out/summary.json" || return 1
	grep -q "\"status\":\"executed\",\"errors\":\[\]" "$out/summary.json"
}

if ! check_run --no-cache; then
	echo "run-overhead: error: wf-run failed; see $out/summary.json" >&2
	exit 1
fi
check_run || exit 1	# fills the cache

loop_ms=$(best_of loop) || exit 1
wf_ms=$(best_of run_wf --no-cache) || exit 1
store_ms=$(best_of run_fresh) || exit 1
hit_ms=$(best_of run_wf) || exit 1

per_step() {
	awk -v a="$1" -v b="$2" -v n="$steps" \
	    'BEGIN { printf "%.3f", (a - b) / n }'
}
over=$(per_step "$wf_ms" "$loop_ms")
verdict=$(awk -v o="$over" 'BEGIN { print (o < 2 ? "met" : "missed") }')

printf 'run-overhead: %d trivial shell steps, best of %d runs\n' \
    "$steps" "$runs"
printf '  plain shell loop (sh -c true)   %6d ms  %.3f ms/step\n' \
    "$loop_ms" "$(awk -v a="$loop_ms" -v n="$steps" 'BEGIN { print a / n }')"
printf '  wf-run --no-cache               %6d ms  %.3f ms/step\n' \
    "$wf_ms" "$(awk -v a="$wf_ms" -v n="$steps" 'BEGIN { print a / n }')"
printf '  wf-run, every step stored       %6d ms  %.3f ms/step\n' \
    "$store_ms" "$(awk -v a="$store_ms" -v n="$steps" 'BEGIN { print a / n }')"
printf '  wf-run, every step a cache hit  %6d ms  %.3f ms/step\n' \
    "$hit_ms" "$(awk -v a="$hit_ms" -v n="$steps" 'BEGIN { print a / n }')"
printf '  overhead per step               %s ms (goal < 2 ms: %s)\n' \
    "$over" "$verdict"
