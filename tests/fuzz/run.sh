#!/bin/sh
# make fuzz: run each libFuzzer harness named for SECONDS, one after the
# other (libFuzzer, one process each: mind the other users of the
# machine).
#
#   run.sh SECONDS NAME...
#
# Each grows its corpus in tests/fuzz/corpus/NAME/ (kept between runs,
# not in git) from its seeds (tests/fuzz/seeds/NAME/, the project's own
# test inputs from inputs.sh, tests/fuzz/regress/NAME/).  An input that
# crashes, hangs (10 s), leaks or trips ASan or UBSan is written to
# tests/fuzz/crash/NAME-*; the run then fails.  Fix it, and put the
# input in tests/fuzz/regress/NAME/, where make check runs it.
# FUZZ_ARGS adds libFuzzer options (-jobs=2, -dict=..., -max_len=...).
cd "$(dirname "$0")" || exit 1
secs=$1
shift
fail=0
mkdir -p crash obj/logs || exit 1
for name in "$@"; do
	seeds=obj/inputs/$name
	rm -rf "$seeds"
	sh ./inputs.sh --history "$name" "$seeds" || exit 1
	mkdir -p corpus/"$name" seeds/"$name" regress/"$name" || exit 1
	log=obj/logs/$name.log
	echo "fuzz $name: ${secs}s (log in tests/fuzz/$log)"
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	./obj/fuzz-"$name" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=crash/"$name"- $FUZZ_ARGS \
	    corpus/"$name" seeds/"$name" regress/"$name" "$seeds" \
	    >"$log" 2>&1
	rc=$?
	grep -E '^(Done [0-9]+ runs|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' \
	    "$log" | sed -e 's/^/	/'
	echo "	corpus: $(ls corpus/"$name" | wc -l) inputs"
	if [ "$rc" -ne 0 ]; then
		echo "fuzz $name: FAILED (exit status $rc):"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz: |artifact_prefix|Test unit written)' \
		    "$log" | head -20 | sed -e 's/^/	/'
		fail=1
	fi
done
exit $fail
