#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# readme_example.sh - build and run README.md's example exactly as the README says:
#     cc example.c $(pkg-config --cflags --libs chm) && ./a.out
# and check that it prints what its comments promise.
#
# usage: readme_example.sh [PREFIX]
#   no PREFIX  chm as `make install` left it in the system: no PKG_CONFIG_PATH, no
#              LD_LIBRARY_PATH, so this fails if the loader cannot find libchm.so (CI runs it
#              after `make install`)
#   PREFIX     a private install (tests/consumer/run.sh): pkg-config and the loader are pointed
#              at it, since nothing in the system knows about it
# C compiler: $CC, else cc. The last line is "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
readme=$here/../../README.md
cc=${CC:-cc}
prefix=${1:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chm-readme.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: README example: $*"
    echo "0 passed, 1 failed"
    exit 1
}

# The first ```c block after the "## Example" heading.
awk '/^## Example/ { in_section = 1; next }
     in_section && /^```c$/ { in_code = 1; next }
     in_code && /^```$/ { exit }
     in_code { print }' "$readme" >"$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no \`\`\`c block under '## Example' in $readme"

# The README's build line, as written there.
grep -q '^Build it with `cc example.c $(pkg-config --cflags --libs chm)`' "$readme" ||
    fail "README.md no longer says: Build it with \`cc example.c \$(pkg-config --cflags --libs chm)\`"

if [ -n "$prefix" ]; then
    pcdir=$(dirname "$(find "$prefix" -name chm.pc -path '*/pkgconfig/*' | head -n 1)")
    libdir=$(cd "$pcdir/.." && pwd)
    PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export PKG_CONFIG_PATH LD_LIBRARY_PATH
    echo "== README example against $prefix (PKG_CONFIG_PATH and LD_LIBRARY_PATH set)"
else
    unset PKG_CONFIG_PATH LD_LIBRARY_PATH
    echo "== README example against the system's chm (no PKG_CONFIG_PATH, no LD_LIBRARY_PATH)"
fi

cd "$tmp" || exit 1
flags=$(pkg-config --cflags --libs chm) || fail "pkg-config does not know chm"
# shellcheck disable=SC2086  # the README word-splits $(pkg-config ...) too
"$cc" example.c $flags 2>"$tmp/cc.err" || fail "$cc example.c $flags: $(cat "$tmp/cc.err")"
out=$(./a.out 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] || fail "./a.out exited with status $rc"
expected=$(printf '42 -> 1000\nstill 1000')
[ "$out" = "$expected" ] || fail "./a.out printed something else than: $expected"
echo "PASS: README example"
echo "1 passed, 0 failed"
