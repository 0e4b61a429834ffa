#!/bin/sh
# inputs.sh NAME DIR: put the project's own test inputs that suit the
# fuzz harness NAME into DIR, one file each: the seeds of make fuzz,
# and (with the checked-in seeds/ and regress/) what make check runs
# the harness over.  With --history, make fuzz's seeds also take the
# patches of the last commits of the source tree's history.
history=
if [ "$1" = --history ]; then
	history=1
	shift
fi
name=$1
src=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
mkdir -p "$2" || exit 1
dir=$(cd "$2" && pwd) || exit 1

# Copy the files named, each under a name of its own.
take() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		cp "$f" "$dir/$(printf '%s' "${f#"$src"/}" | tr '/' '_')" || exit 1
	done
}

# A whole directory as one stream, one value after the other.
take_stream() {
	out=$dir/$(printf '%s' "${1#"$src"/}" | tr '/' '_').stream
	cat "$1"/*.json >"$out" || exit 1
}

# tar FILE ARGS...: an archive made the same way each time.
mktar() {
	out=$1
	shift
	tar --sort=name --mtime=@1700000000 --owner=0 --group=0 \
	    --numeric-owner -cf "$out" "$@" || exit 1
}

case $name in
json)
	take "$src"/tests/t1000/*.json "$src"/tests/t1000/*.jsonl \
	    "$src"/tests/t2000/*.json "$src"/tests/t2000/*.jsonl \
	    "$src"/tests/t6000/*.json "$src"/tests/t6000/*.jsonl \
	    "$src"/schema/*.json "$src"/contrib/demo/issues.jsonl
	;;
change)
	take "$src"/tests/t6000/changes.jsonl
	;;
patch)
	[ -n "$history" ] || exit 0
	git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || exit 0
	for c in $(git -C "$src" rev-list --no-merges -n 60 HEAD); do
		f=$dir/history-$c.patch
		git -C "$src" format-patch -1 --stdout "$c" >"$f"
		# Small ones: libFuzzer's inputs are capped (make fuzz).
		[ "$(wc -c <"$f")" -le 16384 ] || rm -f "$f"
	done
	;;
mail)
	[ -n "$history" ] || exit 0
	git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || exit 0
	git -C "$src" format-patch --stdout -3 HEAD >"$dir/history.mbox"
	for c in $(git -C "$src" rev-list --no-merges -n 30 HEAD); do
		f=$dir/history-$c.mbox
		git -C "$src" format-patch -1 --stdout "$c" >"$f"
		[ "$(wc -c <"$f")" -le 16384 ] || rm -f "$f"
	done
	;;
workflow)
	take "$src"/contrib/demo/catalog/*.json "$src"/tests/t1000/catalog/*.json
	take_stream "$src"/contrib/demo/catalog
	take_stream "$src"/tests/t1000/catalog
	take_stream "$src"/tests/t1000/changed/catalog
	;;
event)
	take "$src"/tests/t2000/plan-*.json "$src"/tests/t2000/expect-*.jsonl \
	    "$src"/tests/t6000/*.json "$src"/tests/t6000/*.jsonl
	;;
tar)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/wf-fuzz-tar.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/tree/site/sub" || exit 1
	cp "$src"/tests/t6000/*.jsonl "$tmp/tree/site/" || exit 1
	cp "$src"/contrib/demo/catalog/build.json "$tmp/tree/site/sub/" || exit 1
	ln -s build.json "$tmp/tree/site/sub/link"
	: >"$tmp/tree/site/.wh.gone"
	(
		cd "$tmp/tree" || exit 1
		mktar "$dir/tree.tar" site
		mktar "$dir/tree-pax.tar" --format=pax site
		mktar "$dir/tree-gnu.tar" --format=gnu site/sub
		gzip -9n <"$dir/tree.tar" >"$dir/tree.tar.gz"
	) || exit 1
	(
		cd "$src/tests/t6000" || exit 1
		mktar "$dir/jsonl.tar" --format=pax changes.jsonl \
		    expect-metrics.jsonl
		gzip -9n <"$dir/jsonl.tar" >"$dir/jsonl.tar.gz"
	) || exit 1
	;;
*)
	echo "inputs.sh: error: no harness '$name'" >&2
	exit 2
	;;
esac
