#!/bin/sh
# wf's change queue against a raw SQLite C loop doing the same rows:
# enqueue of a stream of requests, then lease+ack of all of them with
# 1 and with 4 workers.  Prints the seconds of each side, the ratio of
# throughputs wf/raw (the goal is 70% or more) and peak RSS.
#
#   sh bench/queue-vs-sqlite.sh [REQUESTS [CONTENT]]   (default 100000 512)
#
# CONTENT is the length of each request's one file, in base64 characters
# (512: a canonical payload of about 740 bytes).  BENCH_RUNS (default 3)
# sets how many times each case runs, turn about; the best time of each
# is kept.  BENCH_BATCH (default 10) is how many entries a lease takes.
#
# wf's side is bench/wf-queue-bench.c, which calls lib/libwf.a, so the
# queue is timed and not process start-up; the enqueue case also runs
# the real bin/wf-enqueue (start-up, JSON reading and validation, output
# included).  The raw side is bench/raw-queue.c: the same database
# schema (it starts from a copy of an empty wf queue), WAL,
# synchronous=NORMAL, the same rows (payloads from wf's own canonical
# form, audit rows of the same shape), with the plainest statements and
# none of wf's checks.  Both are built into bench/out/ with the
# Makefile's flags; inputs, databases and outputs are left there.
# Exits non-zero only when a build or a tool fails, never on a ratio.
set -u

requests=${1:-100000}
content=${2:-512}
runs=${BENCH_RUNS:-3}
batch=${BENCH_BATCH:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out
me=queue-vs-sqlite

fail() {
	echo "$me: error: $*" >&2
	exit 4
}

for f in "$src/lib/libwf.a" "$src/bin/wf-enqueue"; do
	[ -e "$f" ] || fail "'$f' is not built; run make"
done
case $requests$content$runs$batch in
*[!0-9]*)
	echo "$me: error: REQUESTS, CONTENT, BENCH_RUNS and BENCH_BATCH" \
	    "are numbers" >&2
	exit 2
	;;
esac
if [ "$requests" -lt 1 ] || [ "$content" -lt 4 ] || [ "$runs" -lt 1 ] ||
    [ "$batch" -lt 1 ]; then
	echo "$me: error: REQUESTS, BENCH_RUNS and BENCH_BATCH must be" \
	    "1 or more, CONTENT 4 or more" >&2
	exit 2
fi
mkdir -p "$out" || exit 4

# Build with the Makefile's compiler, flags and libraries.
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
pkgs="libgit2 sqlite3 jansson libarchive zlib"
pkg_cflags=$($PKG_CONFIG --cflags $pkgs) || fail "pkg-config failed"
pkg_libs=$($PKG_CONFIG --libs $pkgs) || fail "pkg-config failed"
warnings="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wpointer-arith -Wwrite-strings -Wformat=2 -Wno-format-nonliteral
	-Wundef -Wcast-align -Wold-style-definition"
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I$src/lib
	$warnings $pkg_cflags ${CFLAGS:--O2 -g}"
# shellcheck disable=SC2086
$CC $cflags -o "$out/wf-queue-bench" "$src/bench/wf-queue-bench.c" \
    "$src/lib/libwf.a" $pkg_libs -lm -lpthread ||
	fail "cannot build wf-queue-bench"
# shellcheck disable=SC2086
$CC $cflags -o "$out/raw-queue" "$src/bench/raw-queue.c" $pkg_libs ||
	fail "cannot build raw-queue"

# The stream: "files" requests, one file each, whose base64 content is
# cut from a fixed Park-Miller pool, so every run has the same input.
stream=$out/queue-stream.jsonl
awk -v n="$requests" -v clen="$content" '
BEGIN {
	b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	seed = 20240601
	clen -= clen % 4
	for (j = 0; j < clen + 4096; j++) {
		seed = (seed * 16807) % 2147483647
		pool = pool substr(b64, seed % 64 + 1, 1)
	}
	for (i = 0; i < n; i++) {
		seed = (seed * 16807) % 2147483647
		printf "{\"id\": \"req-%07d\", \"target\": \"main\", " \
		    "\"kind\": \"files\", \"message\": \"bench request %d\", " \
		    "\"author\": {\"name\": \"Bench\", \"email\": " \
		    "\"bench@example.org\"}, \"files\": [{\"path\": " \
		    "\"src/d%02d/f%07d.txt\", \"content\": \"%s\"}]}\n", i, i,
		    i % 100, i, substr(pool, seed % 4096 + 1, clen)
	}
}' >"$stream" || fail "cannot write '$stream'"

# Run "$@" with stdout to $out/last; sets secs (the program's own timing
# when it prints one, else wall) and kib (peak RSS, "?" without GNU time).
if /usr/bin/time -f '%M' -o "$out/rss" true 2>/dev/null; then
	have_time=1
else
	have_time=0
fi
measure() {
	start=$(date +%s.%N)
	if [ $have_time = 1 ]; then
		/usr/bin/time -f '%M' -o "$out/rss" "$@" >"$out/last" ||
			return 1
		kib=$(tail -n 1 "$out/rss")
	else
		"$@" >"$out/last" || return 1
		kib='?'
	fi
	end=$(date +%s.%N)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
}

# The program's own "SECONDS COUNT" line, checked against the count.
own_secs() {
	read -r secs count <"$out/last" || return 1
	[ "$count" = "$requests" ] || {
		echo "$me: error: $1 handled $count of $requests" >&2
		return 1
	}
	secs=$(awk -v s="$secs" 'BEGIN { printf "%.3f", s }')
}

min() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'
}

max() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "?" || b == "?") ? "?" : (a == "" || b + 0 > a + 0) ? b : a }'
}

# One case: best seconds into best_<name>, every time into all_<name>,
# largest peak RSS into kib_<name>.
record() {
	eval "best_$1=\$(min \"\${best_$1:-}\" \"\$secs\")"
	eval "all_$1=\"\${all_$1:-}\$secs \""
	eval "kib_$1=\$(max \"\${kib_$1:-}\" \"\$kib\")"
}

db=$out/queue
"$out/wf-queue-bench" init "$db-empty.db" || fail "wf-queue-bench init failed"
i=0
while [ "$i" -lt "$runs" ]; do
	rm -f "$db"-wf*.db* "$db"-raw*.db* "$db"-cli.db*
	for d in wf raw cli; do
		cp "$db-empty.db" "$db-$d.db" || exit 4
	done
	# The first run writes the rows for raw-queue (after its clock).
	rows=
	[ "$i" -eq 0 ] && rows=$out/queue-rows.tsv
	# shellcheck disable=SC2086
	measure "$out/wf-queue-bench" enqueue "$db-wf.db" "$stream" $rows &&
	    own_secs wf-queue-bench ||
		fail "wf-queue-bench enqueue failed"
	record enq_wf
	measure "$out/raw-queue" enqueue "$db-raw.db" "$out/queue-rows.tsv" &&
	    own_secs raw-queue || fail "raw-queue enqueue failed"
	record enq_raw
	measure "$src/bin/wf-enqueue" --db "$db-cli.db" "$stream" ||
		fail "wf-enqueue failed"
	[ "$(wc -l <"$out/last")" -eq "$requests" ] ||
		fail "wf-enqueue stored $(wc -l <"$out/last") of $requests"
	record enq_cli
	for w in 1 4; do
		cp "$db-wf.db" "$db-wf$w.db" && cp "$db-raw.db" "$db-raw$w.db" ||
			exit 4
		measure "$out/wf-queue-bench" work "$db-wf$w.db" "$w" "$batch" &&
		    own_secs wf-queue-bench || fail "wf-queue-bench work failed"
		record "work${w}_wf"
		measure "$out/raw-queue" work "$db-raw$w.db" "$w" "$batch" &&
		    own_secs raw-queue || fail "raw-queue work failed"
		record "work${w}_raw"
	done
	i=$((i + 1))
done

payload=$(awk -F '\t' '{ n += length($7) } END { printf "%d", n / NR }' \
    "$out/queue-rows.tsv")
printf 'input:  %s requests, %s bytes of JSON Lines, canonical payload %s bytes\n' \
    "$requests" "$(wc -c <"$stream" | tr -d ' ')" "$payload"
printf 'runs:   best of %s; lease batch %s; peak RSS in KiB\n\n' "$runs" \
    "$batch"
printf '%-26s %8s %8s %9s %7s  %9s %9s\n' case "wf s" "raw s" "wf req/s" \
    wf/raw "wf RSS" "raw RSS"
row() {
	eval "w=\$best_$2 r=\$best_$3 wk=\$kib_$2 rk=\$kib_$3"
	awk -v c="$1" -v w="$w" -v r="$r" -v n="$requests" -v wk="$wk" \
	    -v rk="$rk" 'BEGIN {
		ratio = (w > 0) ? r / w : 0
		rate = (w > 0) ? n / w : 0
		note = (ratio < 0.70) ? "  below 70%" : ""
		printf "%-26s %8.3f %8.3f %9.0f %6.0f%%  %9s %9s%s\n", c, w, r,
		    rate, 100 * ratio, wk, rk, note
	}'
}
row "enqueue (library)" enq_wf enq_raw
row "enqueue (bin/wf-enqueue)" enq_cli enq_raw
row "lease+ack, 1 worker" work1_wf work1_raw
row "lease+ack, 4 workers" work4_wf work4_raw
printf '\nevery run (s):\n'
for c in enq_wf enq_raw enq_cli work1_wf work1_raw work4_wf work4_raw; do
	eval "printf '  %-10s %s\n' $c \"\${all_$c% }\""
done
