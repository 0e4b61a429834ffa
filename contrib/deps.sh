#!/bin/sh
# Install the Debian packages wf builds with, if pkg-config cannot find them.
# Exits 0 when everything is present; installs with apt-get when run as root;
# otherwise prints the exact command to run and fails.
#
#   deps.sh          what make, make check and make demo need
#   deps.sh fuzz     that and clang, for make fuzz
set -u

# pkg-config module : Debian package
want='libgit2:libgit2-dev sqlite3:libsqlite3-dev jansson:libjansson-dev libarchive:libarchive-dev zlib:zlib1g-dev libdeflate:libdeflate-dev check:check'

missing=
command -v pkg-config >/dev/null 2>&1 || missing=pkg-config
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v git >/dev/null 2>&1 || missing="$missing git"
for pair in $want; do
	mod=${pair%%:*}
	deb=${pair#*:}
	if ! command -v pkg-config >/dev/null 2>&1 ||
	    ! pkg-config --exists "$mod" 2>/dev/null; then
		missing="$missing $deb"
	fi
done
# Used by the demo and man page checks, not by the build.
command -v man >/dev/null 2>&1 || missing="$missing man-db"
# The independent JSON Schema (draft 2020-12) validator the wf-emit tests
# check every event with; Debian's python3 has it as python3-jsonschema.
have_jsonschema=
for py in python3 /usr/bin/python3; do
	if "$py" -c 'from jsonschema import Draft202012Validator' \
	    >/dev/null 2>&1; then
		have_jsonschema=1
		break
	fi
done
[ -n "$have_jsonschema" ] || missing="$missing python3-jsonschema"
# make fuzz: Debian's clang, and its runtimes (libFuzzer, the
# sanitizers), which clang only recommends.
if [ "${1:-}" = fuzz ]; then
	[ -x /usr/bin/clang ] || missing="$missing clang"
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a \
	    >/dev/null 2>&1 || missing="$missing libclang-rt-14-dev"
fi

[ -z "$missing" ] && exit 0

# shellcheck disable=SC2086
set -- $missing
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: error: missing packages: $*" >&2
	echo "deps.sh: run: sudo apt-get install -y $*" >&2
	exit 4
fi
echo "deps.sh: installing: $*" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "$@" >&2; then
	apt-get update >&2 || exit 4
	apt-get install -y --no-install-recommends "$@" >&2 || exit 4
fi
