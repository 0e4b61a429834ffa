#!/bin/sh
# Run every tests/tNNNN-*.sh (or those named) and summarise.
cd "$(dirname "$0")" || exit 1
pass=0
fail=0
failed_scripts=
[ $# -gt 0 ] || set -- t[0-9][0-9][0-9][0-9]-*.sh
for t in "$@"; do
	[ -f "$t" ] || continue
	out=$(sh "./$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# The script itself broke: count it as a failure.
		fail=$((fail + 1))
	fi
	[ "$rc" -eq 0 ] || failed_scripts="$failed_scripts $t"
done
[ -z "$failed_scripts" ] || echo "# failed:$failed_scripts"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
