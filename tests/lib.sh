# Test harness sourced by tests/tNNNN-*.sh, in the manner of git's t/.
#
#   test_expect_success 'what it proves' '
#           commands chained with &&
#   '
#   test_done
#
# Each script runs in its own scratch directory tests/trash.<script>,
# with the built tools first in PATH and a private HOME and git config.
# Output is TAP-like: "ok N - ..." or "not ok N - ...".  Set
# WF_TEST_VERBOSE=1 to see the commands' output.

TEST_DIRECTORY=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=$(basename "$0" .sh)
WF_SRC=$(cd "$TEST_DIRECTORY/.." && pwd)
WF_BIN=${WF_BIN:-$WF_SRC/bin}
TRASH=$TEST_DIRECTORY/trash.$TEST_NAME
export WF_SRC WF_BIN TEST_DIRECTORY

PATH=$WF_BIN:$PATH
export PATH

# A clean, reproducible git and wf environment.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
	GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CONFIG_PARAMETERS \
	WF_CATALOG WF_DB
HOME=$TRASH
GIT_CONFIG_NOSYSTEM=1
GIT_AUTHOR_NAME='A U Thor'
GIT_AUTHOR_EMAIL='author@example.com'
GIT_COMMITTER_NAME='C O Mitter'
GIT_COMMITTER_EMAIL='committer@example.com'
GIT_AUTHOR_DATE='1700000000 +0000'
GIT_COMMITTER_DATE='1700000000 +0000'
export HOME GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL \
	GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL GIT_AUTHOR_DATE \
	GIT_COMMITTER_DATE
LC_ALL=C
export LC_ALL

rm -rf "$TRASH"
mkdir -p "$TRASH/.tmp" || exit 1
cd "$TRASH" || exit 1
# Temporary files of the tools (sandboxes, check trees, even those a
# killed process leaves behind) go with the scratch directory, which is
# inside the source tree; a test that needs a directory outside any
# repository makes it in $TEST_OUTSIDE (and removes it).
TEST_OUTSIDE=${TMPDIR:-/tmp}
export TEST_OUTSIDE
TMPDIR=$TRASH/.tmp
export TMPDIR
# Under make SANITIZE=... check, a sanitizer's report ends the tool at
# once (abort: a signal, never an exit status a test could take for a
# refusal), and any report fails the test it appeared in, whatever the
# test expected: ASan's and LSan's are written to $WF_SANITIZER_LOG,
# which test_done checks; UBSan's (gcc's runtime writes them to stderr
# whatever log_path says) are looked for, with WF_SANITIZE set, in the
# files each test wrote.  A plain build ignores these options.
if [ -z "$WF_SANITIZE" ] && [ -f "$WF_SRC/.build-flags" ]; then
	WF_SANITIZE=$(sed -n 's/.*-fsanitize=\([^ ]*\).*/\1/p' \
	    "$WF_SRC/.build-flags")
fi
WF_SANITIZER_LOG=$TRASH/.sanitizer
mkdir -p "$WF_SANITIZER_LOG" || exit 1
ASAN_OPTIONS="abort_on_error=1:halt_on_error=1:detect_leaks=1:log_path=$WF_SANITIZER_LOG/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_OPTIONS="abort_on_error=1:halt_on_error=1:print_stacktrace=1:log_path=$WF_SANITIZER_LOG/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS UBSAN_OPTIONS WF_SANITIZER_LOG WF_SANITIZE
git config --global init.defaultBranch main
git config --global user.name 'A U Thor'
git config --global user.email 'author@example.com'

test_count=0
test_failed=0

say() {
	printf '%s\n' "$*"
}

# The files under $TRASH written since $TRASH/.stamp that hold a
# sanitizer's report: a line "file:line:col: runtime error: ..." or
# "SUMMARY: ...Sanitizer: ..." (anchored, so that a copy of this file,
# which tests of the project's own history make, is none).
sanitizer_reports() {
	find "$TRASH" -type f -newer "$TRASH/.stamp" ! -path "*/.git/*" \
	    ! -name "*.db" ! -name "*.db-*" ! -name .stamp -size -8M \
	    -exec grep -l -E \
	    "^[^[:space:]]+:[0-9]+:[0-9]+: runtime error: |^SUMMARY: [A-Za-z]+Sanitizer: " \
	    {} + 2>/dev/null
}

test_expect_success() {
	test_count=$((test_count + 1))
	[ -z "$WF_SANITIZE" ] || : >"$TRASH/.stamp"
	if [ -n "$WF_TEST_VERBOSE" ]; then
		(eval "$2")
	else
		(eval "$2") >"$TRASH/.out" 2>&1
	fi
	wf_rc=$?
	if [ -n "$WF_SANITIZE" ] && wf_reports=$(sanitizer_reports) &&
	    [ -n "$wf_reports" ]; then
		printf '%s\n' "$wf_reports" | while read -r f; do
			say "# sanitizer report in ${f#"$TRASH"/}:"
			grep -h -A12 -E "runtime error: |Sanitizer: " "$f" |
				sed -e 's/^/#	/'
		done
		wf_rc=1
	fi
	if [ $wf_rc -eq 0 ]; then
		say "ok $test_count - $1"
	else
		test_failed=$((test_failed + 1))
		say "not ok $test_count - $1"
		if [ -z "$WF_TEST_VERBOSE" ]; then
			sed -e 's/^/#	/' "$TRASH/.out"
		fi
		printf '%s\n' "$2" | sed -e 's/^/#	/'
	fi
}

test_done() {
	for report in "$WF_SANITIZER_LOG"/*; do
		[ -f "$report" ] || continue
		test_count=$((test_count + 1))
		test_failed=$((test_failed + 1))
		say "not ok $test_count - no sanitizer report: ${report#"$TRASH"/}"
		sed -e 's/^/#	/' "$report"
	done
	say "# $TEST_NAME: $test_count tests, $test_failed failed"
	if [ "$test_failed" -eq 0 ]; then
		cd "$TEST_DIRECTORY" && rm -rf "$TRASH"
		exit 0
	fi
	exit 1
}

# test_cmp expect actual: the two files are byte-identical.
test_cmp() {
	if ! cmp -s "$1" "$2"; then
		diff -u "$1" "$2"
		return 1
	fi
}

# test_expect_code N cmd...: cmd exits with status N.
test_expect_code() {
	want=$1
	shift
	"$@"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "test_expect_code: '$*' exited $got, wanted $want" >&2
		return 1
	fi
}

# test_must_fail cmd...: cmd exits non-zero, and not by a signal.
test_must_fail() {
	"$@"
	got=$?
	if [ "$got" -eq 0 ]; then
		echo "test_must_fail: '$*' succeeded" >&2
		return 1
	fi
	if [ "$got" -gt 128 ]; then
		echo "test_must_fail: '$*' died of signal $((got - 128))" >&2
		return 1
	fi
}

# test_grep pattern file: file has a line matching the ERE.
# wait_for CMD...: run CMD every 0.1 s until it succeeds, for 15 s at most.
wait_for() {
	n=0
	until "$@"; do
		n=$((n + 1))
		if [ $n -ge 150 ]; then
			echo "wait_for: '$*' still fails after 15 s" >&2
			return 1
		fi
		sleep 0.1
	done
}

test_grep() {
	if ! grep -E -e "$1" "$2" >/dev/null; then
		echo "test_grep: no line matches '$1' in $2:" >&2
		cat "$2" >&2
		return 1
	fi
}
