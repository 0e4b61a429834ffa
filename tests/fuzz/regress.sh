#!/bin/sh
# make check: run each fuzz harness named (json, patch, ...) over its
# regression inputs (tests/fuzz/regress/<name>/), its seeds
# (tests/fuzz/seeds/<name>/) and the project's test inputs that suit it
# (tests/fuzz/inputs.sh), through tests/fuzz/driver.c.  A harness that
# exits non-zero (a crash, a broken contract, a sanitizer report) or
# writes anything on stderr fails the run, naming the inputs that fail.
cd "$(dirname "$0")" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wf-fuzz-regress.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
for name in "$@"; do
	sh ./inputs.sh "$name" "$tmp/$name" || exit 1
	set --
	for f in regress/"$name"/* seeds/"$name"/* "$tmp/$name"/*; do
		[ -f "$f" ] && set -- "$@" "$f"
	done
	if [ $# -eq 0 ]; then
		echo "not ok - fuzz $name: no inputs"
		fail=1
		continue
	fi
	err=$(./regress-"$name" "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$err" ]; then
		echo "ok - fuzz $name: $# inputs"
		continue
	fi
	echo "not ok - fuzz $name: $# inputs, exit status $rc"
	printf '%s\n' "$err" | sed -e 's/^/#	/'
	for f in "$@"; do
		e=$(./regress-"$name" "$f" 2>&1 >/dev/null)
		if [ $? -ne 0 ] || [ -n "$e" ]; then
			echo "#	fails: $f"
		fi
	done
	fail=1
done
exit $fail
