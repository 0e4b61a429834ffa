#!/bin/sh
# Plan a random DAG with wf-plan and sort the same edges with tsort(1),
# side by side: wall seconds, the ratio, and peak memory.
#
#   sh bench/plan-vs-tsort.sh [NODES [EDGES]]     (default 100000 300000)
#
# BENCH_RUNS (default 3) sets how many times each tool runs.
# The graph comes from a fixed Park-Miller generator in awk, so every run
# (and every awk) plans the same input.  Node i may depend only on nodes
# with a smaller i, so the graph has no cycle; names are a permutation
# of the indices, so name order is not topological order.  Inputs and
# outputs are left in bench/out/.  Exits non-zero only when a tool fails.
set -u

nodes=${1:-100000}
edges=${2:-300000}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out
plan=$src/bin/wf-plan

if [ ! -x "$plan" ]; then
	echo "plan-vs-tsort: error: '$plan' is not built; run make" >&2
	exit 4
fi
if ! command -v tsort >/dev/null 2>&1; then
	echo "plan-vs-tsort: error: tsort not found" >&2
	exit 4
fi
if [ "$edges" -gt $((nodes * (nodes - 1) / 2)) ]; then
	echo "plan-vs-tsort: error: $edges edges do not fit $nodes nodes" >&2
	exit 2
fi
mkdir -p "$out" || exit 4

awk -v n="$nodes" -v m="$edges" -v json="$out/dag.json" \
    -v pairs="$out/dag.pairs" '
function rnd() {
	seed = (seed * 16807) % 2147483647
	return seed
}
# A bijection of 0..n-1 (the multiplier is prime to any n it is used
# with; fall back to the identity otherwise).
function name(i) {
	return sprintf("w%07d", perm ? (i * 7919 + 13) % n : i)
}
BEGIN {
	seed = 20240601
	perm = (n % 7919 != 0)
	while (count < m) {
		a = rnd() % n
		b = rnd() % n
		if (a == b)
			continue
		if (a > b) {
			t = a; a = b; b = t
		}
		if ((a, b) in seen)
			continue
		seen[a, b] = 1
		count++
		sep = (b in deps) ? "," : ""
		deps[b] = deps[b] sep "\"" name(a) "\""
		print name(a), name(b) > pairs
		has[a] = has[b] = 1
	}
	for (i = 0; i < n; i++)
		if (!(i in has))
			print name(i), name(i) > pairs
	printf "{\"item\": {\"number\": 1, \"title\": \"bench\"},\n" > json
	printf " \"selection_reason\": \"multi_match\",\n" > json
	printf " \"candidates\": [\n" > json
	for (i = 0; i < n; i++)
		printf "  {\"name\": \"%s\", \"priority\": %d, " \
		    "\"depends_on\": [%s]}%s\n", name(i), rnd() % 10,
		    (i in deps) ? deps[i] : "", i < n - 1 ? "," : "" > json
	printf " ]}\n" > json
}' || exit 4

# Wall seconds and peak RSS (KiB) of "$@", stdout to the file $1; sets
# secs and kib (kib is "?" without GNU time).
measure() {
	dest=$1
	shift
	if /usr/bin/time -f '%e %M' -o "$out/time" true 2>/dev/null; then
		/usr/bin/time -f '%e %M' -o "$out/time" "$@" >"$dest" || return 1
		read -r secs kib <"$out/time"
	else
		start=$(date +%s.%N)
		"$@" >"$dest" || return 1
		end=$(date +%s.%N)
		secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
		kib='?'
	fi
}

# The smaller of two numbers (either may be empty).
min() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'
}

# Each tool runs $runs times, turn about, so both see the same machine;
# the best time of each is kept, the usual way to see past other load.
runs=${BENCH_RUNS:-3}
plan_secs= tsort_secs= i=0
while [ "$i" -lt "$runs" ]; do
	measure "$out/plan.json" "$plan" "$out/dag.json" || {
		echo "plan-vs-tsort: error: wf-plan failed" >&2
		exit 1
	}
	plan_all="${plan_all:-}$secs "
	plan_secs=$(min "$plan_secs" "$secs") plan_kib=$kib
	measure "$out/tsort.txt" tsort "$out/dag.pairs" || {
		echo "plan-vs-tsort: error: tsort failed" >&2
		exit 1
	}
	tsort_all="${tsort_all:-}$secs "
	tsort_secs=$(min "$tsort_secs" "$secs") tsort_kib=$kib
	i=$((i + 1))
done

stages=$(sed -n 's/.*"stage_count":\([0-9]*\).*/\1/p' "$out/plan.json")
printf 'input:   %s nodes, %s edges (%s bytes of JSON, %s of pairs)\n' \
    "$nodes" "$edges" "$(wc -c <"$out/dag.json" | tr -d ' ')" \
    "$(wc -c <"$out/dag.pairs" | tr -d ' ')"
printf 'wf-plan: %5s s best of %s (%s)  %8s KiB peak  %s stages\n' \
    "$plan_secs" "$runs" "${plan_all% }" "$plan_kib" "$stages"
printf 'tsort:   %5s s best of %s (%s)  %8s KiB peak\n' "$tsort_secs" \
    "$runs" "${tsort_all% }" "$tsort_kib"
awk -v p="$plan_secs" -v t="$tsort_secs" 'BEGIN {
	if (t > 0)
		printf "ratio:   wf-plan / tsort = %.2f\n", p / t
}'
