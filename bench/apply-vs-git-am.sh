#!/bin/sh
# wf-enqueue + wf-apply against git am: one repository of FILES files
# and a series of PATCHES small disjoint patches, each landed as one
# commit.  Prints the seconds and peak RSS of each side, the ratio (the
# goal is wf 40 times faster or more), and checks that both sides end
# with the same commits' trees, in the same order.
#
#   sh bench/apply-vs-git-am.sh [FILES [PATCHES]]   (default 10000 1000)
#
# The repository is made with git fast-import: FILES files of 20 lines
# in directories of 100.  Patch i changes line 10 of file 10 * i - 5 (so
# no two touch the same file), written by git format-patch from a series
# of commits made the same way.  git am applies the series in a clone
# with its work tree checked out, as a person would; wf-enqueue reads
# the same patches as one JSON stream (author, subject and patch of
# each) into a new queue of a bare clone, and `wf-apply --once --batch
# PATCHES` lands them, with no checks.  Inputs and repositories are left
# in bench/out/am/.  Exits non-zero only when a tool fails or the trees
# differ, never on the ratio.
set -u

files=${1:-10000}
patches=${2:-1000}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out/am
me=apply-vs-git-am

fail() {
	echo "$me: error: $*" >&2
	exit 4
}

case $files$patches in
*[!0-9]*)
	echo "$me: error: FILES and PATCHES are numbers" >&2
	exit 2
	;;
esac
if [ "$patches" -lt 1 ] || [ $((patches * 10)) -gt "$files" ]; then
	echo "$me: error: need 1 or more patches and 10 files per patch" >&2
	exit 2
fi
for f in "$src/bin/wf-enqueue" "$src/bin/wf-apply"; do
	[ -x "$f" ] || fail "'$f' is not built; run make"
done
[ -x /usr/bin/time ] || fail "/usr/bin/time is needed for peak RSS"
rm -rf "$out" && mkdir -p "$out" || exit 4
cd "$out" || exit 4

export GIT_AUTHOR_NAME='A U Thor' GIT_AUTHOR_EMAIL='author@example.com'
export GIT_COMMITTER_NAME='C O Mitter' GIT_COMMITTER_EMAIL='c@example.com'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE WF_DB

# fast-import: the base commit on main, then the series on its own
# branch, one commit per patch.
awk -v files="$files" -v patches="$patches" '
function body(i, changed,   s, j) {
	s = ""
	for (j = 1; j <= 20; j++)
		s = s (j == 10 && changed ? "changed by patch " changed : \
		    "line " j " of file " i) "\n"
	return s
}
function path(i) {
	return sprintf("d%03d/f%02d.txt", int(i / 100), i % 100)
}
function put(i, changed,   s) {
	s = body(i, changed)
	printf "M 100644 inline %s\ndata %d\n%s\n", path(i), length(s), s
}
BEGIN {
	t = 1700000000
	printf "commit refs/heads/main\ncommitter C O Mitter <c@example.com> %d +0000\ndata 5\nbase\n", t
	for (i = 0; i < files; i++)
		put(i, 0)
	print ""
	for (p = 1; p <= patches; p++) {
		msg = "Change file " (p * 10 - 5) " (patch " p ")"
		printf "commit refs/heads/series\n"
		printf "author A U Thor <author@example.com> %d +0000\n", t + p
		printf "committer C O Mitter <c@example.com> %d +0000\n", t + p
		printf "data %d\n%s\n", length(msg), msg
		if (p == 1)
			printf "from refs/heads/main\n"
		put(p * 10 - 5, p)
		print ""
	}
}' >import.fi || fail "cannot write the import stream"

git init -q --bare base.git &&
	git -C base.git fast-import --quiet <import.fi &&
	git -C base.git symbolic-ref HEAD refs/heads/main ||
	fail "git fast-import failed"
git -C base.git format-patch -q -o "$out/series" main..series ||
	fail "git format-patch failed"

# The same patches as one stream of requests: JSON strings by awk.
for p in "$out"/series/*.patch; do
	printf '%s\n' "$p"
done | awk -v n="$patches" '
function esc(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	gsub(/\t/, "\\t", s)
	gsub(/\r/, "\\r", s)
	return s
}
{
	file = $0
	text = ""; subject = ""; name = ""; email = ""; hdr = 1
	while ((getline line < file) > 0) {
		if (hdr && line ~ /^Subject: /) {
			subject = line
			sub(/^Subject: (\[PATCH[^]]*\] )?/, "", subject)
		}
		if (hdr && line ~ /^From: /) {
			name = line; sub(/^From: /, "", name)
			email = name; sub(/ <.*/, "", name)
			sub(/^[^<]*</, "", email); sub(/>.*/, "", email)
		}
		if (line == "")
			hdr = 0
		text = text esc(line) "\\n"
	}
	close(file)
	printf "{\"id\": \"am/%04d\", \"target\": \"main\", \"kind\": \"patch\", \"message\": \"%s\", \"author\": {\"name\": \"%s\", \"email\": \"%s\"}, \"patch\": \"%s\"}\n", NR, esc(subject), esc(name), email, text
}' >requests.jsonl || fail "cannot write the requests"
[ "$(wc -l <requests.jsonl)" -eq "$patches" ] ||
	fail "expected $patches requests"

# Only main's objects: the series' blobs must be new to both sides.
git clone -q --no-local --single-branch base.git am ||
	fail "git clone failed"
git clone -q --bare --no-local --single-branch base.git wf.git ||
	fail "git clone failed"
git -C am config user.name 'C O Mitter'
git -C am config user.email c@example.com
git -C wf.git config user.name 'C O Mitter'
git -C wf.git config user.email c@example.com

# timed LABEL CMD...: run CMD, keep "wall-s cpu-s peak-KiB" in
# LABEL.time (cpu: user and system, children included).
timed() {
	label=$1
	shift
	/usr/bin/time -o "$out/$label.time" -f '%e %U %S %M' "$@" ||
		fail "$label: '$*' failed"
}

echo "$me: $files files, $patches patches"
timed am sh -c 'cd am && git am -q "$0"/series/*.patch' "$out"
timed enqueue sh -c 'cd wf.git && exec "$0/bin/wf-enqueue" ../requests.jsonl >../enqueue.out' "$src"
timed apply sh -c 'cd wf.git && exec "$0/bin/wf-apply" --once --batch "$1" >../apply.out' "$src" "$patches"

landed=$(grep -c '"state":"landed"' apply.out)
[ "$landed" -eq "$patches" ] || fail "wf-apply landed $landed of $patches"
git -C am log --format=%T origin/main..HEAD >am.trees
git -C wf.git log --format=%T "$(git -C base.git rev-parse main)..main" \
	>wf.trees
cmp -s am.trees wf.trees || fail "the trees differ (am.trees, wf.trees)"
[ "$(wc -l <wf.trees)" -eq "$patches" ] || fail "expected $patches commits"

# The VM may be shared: CPU seconds are printed beside wall seconds,
# and the ratio of each.
cat am.time enqueue.time apply.time | awk -v n="$patches" '
{ wall[NR] = $1; cpu[NR] = $2 + $3; kb[NR] = $4 }
END {
	printf "%-22s %8s %8s %9s\n", "", "wall", "cpu", "peak RSS"
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "git am", wall[1], cpu[1], \
	    kb[1] / 1024
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "wf-enqueue", wall[2], \
	    cpu[2], kb[2] / 1024
	printf "%-22s %7.2fs %7.2fs %6.1f MB\n", "wf-apply --batch " n, \
	    wall[3], cpu[3], kb[3] / 1024
	w = wall[2] + wall[3]; c = cpu[2] + cpu[3]
	printf "%-22s %7.2fs %7.2fs\n", "wf total", w, c
	printf "%-22s %7.1fx %7.1fx   (goal: 40x)\n", "git am / wf", \
	    wall[1] / (w > 0.01 ? w : 0.01), cpu[1] / (c > 0.01 ? c : 0.01)
	printf "same %d trees, in the same order: yes\n", n
}'
