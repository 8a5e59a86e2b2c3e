#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# run.sh - install a chm build into a temporary prefix and build an outside program against it
# in every way a user would:
#   1. CMake, find_package(chm) + chm::chm          (shared libchm.so)
#   2. CMake, find_package(chm) + chm::chm_static   (static libchm.a + its private deps)
#   3. cc consumer.c $(pkg-config --cflags --libs chm)          (shared)
#   4. cc consumer.c + libchm.a $(pkg-config --static --libs)  (static libchm)
#   5. README.md's example, built with the README's command (readme_example.sh)
#   6. libchm links no Concurrency Kit (only its inline headers are compiled in: no ck_ symbol
#      in libchm.a's nm -u, no NEEDED libck in libchm.so), while chm.pc and the CMake package
#      still name it with liburcu, as the public contract lists the library's dependencies
#   7. the package states its licence: an SPDX line in chm.pc, chmConfig.cmake and
#      chmConfigVersion.cmake, LICENSE in share/doc/chm
# Each program must run and print OK. The last line is "N passed, M failed"; exit 1 on any
# failure.
#
# usage: run.sh BUILD_DIR [C_COMPILER [CMAKE]]
#   BUILD_DIR   a configured and built chm build tree (what `cmake --install` installs from)
#   C_COMPILER  compiler for the consumer (default: $CC, else cc)
#   CMAKE       cmake executable (default: cmake)
# Set CHM_KEEP_TMP=1 to keep the temporary directory.
set -u

build=${1:?usage: run.sh BUILD_DIR [C_COMPILER [CMAKE]]}
cc=${2:-${CC:-cc}}
cmake=${3:-cmake}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd) || { echo "run.sh: no build dir $1" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chm-consumer.XXXXXX") || exit 1
cleanup() {
    if [ "${CHM_KEEP_TMP:-0}" = 1 ]; then
        echo "run.sh: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prefix=$tmp/prefix
passed=0
failed=0

# run_step NAME COMMAND...: run with output to a log; on failure print the log.
log=$tmp/step.log
run_step() {
    step_name=$1
    shift
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    echo "FAIL [$step_name]: $*" >&2
    sed 's/^/    /' "$log" >&2
    return 1
}
pass() {
    passed=$((passed + 1))
    echo "PASS: $1"
}
failure() {
    failed=$((failed + 1))
    echo "FAIL: $1"
}
# check_links BINARY shared|static: the binary must use the installed libchm.so, or none.
check_links() {
    deps=$(env LD_LIBRARY_PATH="$libdir" ldd "$1" 2>&1) || { echo "$deps" >&2; return 1; }
    line=$(echo "$deps" | grep 'libchm\.so' || true)
    case $2 in
    shared)
        case $line in
        *"=> $libdir/libchm.so"*) return 0 ;;
        esac
        echo "$1 does not load libchm.so from $libdir:" >&2
        echo "$deps" >&2
        return 1
        ;;
    static)
        if [ -n "$line" ]; then
            echo "$1 was meant to link libchm statically but needs: $line" >&2
            return 1
        fi
        return 0
        ;;
    esac
}
# run_consumer BINARY: run it with the temporary prefix on the library path; must print OK.
run_consumer() {
    out=$(env LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1" 2>&1)
    rc=$?
    echo "$out" | sed 's/^/    /'
    if [ $rc -ne 0 ]; then
        echo "$1 exited with status $rc" >&2
        return 1
    fi
    echo "$out" | grep -q '^OK' || { echo "$1 did not print OK" >&2; return 1; }
}

# ---- install ---------------------------------------------------------------------------------
echo "== cmake --install $build --prefix $prefix"
if ! run_step install "$cmake" --install "$build" --prefix "$prefix"; then
    echo "0 passed, 7 failed"
    exit 1
fi
missing=
pc=$(find "$prefix" -name chm.pc -path '*/pkgconfig/*' | head -n 1)
cfg=$(find "$prefix" -name chmConfig.cmake | head -n 1)
[ -f "$prefix/include/chm.h" ] || missing="$missing include/chm.h"
[ -n "$pc" ] || missing="$missing chm.pc"
[ -n "$cfg" ] || missing="$missing chmConfig.cmake"
[ -n "$(find "$prefix" -name 'chmConfigVersion.cmake')" ] || missing="$missing chmConfigVersion.cmake"
[ -n "$(find "$prefix" -name 'libchm.a')" ] || missing="$missing libchm.a"
[ -n "$(find "$prefix" -name 'libchm.so*')" ] || missing="$missing libchm.so"
if [ -n "$missing" ]; then
    echo "FAIL: the install is missing:$missing" >&2
    find "$prefix" >&2
    echo "0 passed, 7 failed"
    exit 1
fi
pcdir=$(dirname "$pc")
libdir=$(cd "$pcdir/.." && pwd)
echo "   installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# ---- 1 + 2: CMake find_package ---------------------------------------------------------------
echo "== CMake: find_package(chm) with CMAKE_PREFIX_PATH=$prefix"
cbuild=$tmp/cmake-build
cmake_ok=0
if run_step "cmake configure" "$cmake" -S "$here" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release &&
    run_step "cmake build" "$cmake" --build "$cbuild"; then
    cmake_ok=1
fi
if [ $cmake_ok = 1 ] && check_links "$cbuild/consumer" shared && run_consumer "$cbuild/consumer"; then
    pass "cmake find_package + chm::chm (shared)"
else
    failure "cmake find_package + chm::chm (shared)"
fi
if [ $cmake_ok = 1 ] && check_links "$cbuild/consumer_static" static &&
    run_consumer "$cbuild/consumer_static"; then
    pass "cmake find_package + chm::chm_static (static)"
else
    failure "cmake find_package + chm::chm_static (static)"
fi

# ---- 3: pkg-config, shared -------------------------------------------------------------------
PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
echo "== pkg-config (PKG_CONFIG_PATH=$pcdir)"
# The flags are word-split on purpose (SC2086) in both ways below.
way_pkgconfig_shared() {
    flags=$(pkg-config --cflags --libs chm) || return 1
    echo "   pkg-config --cflags --libs chm: $flags"
    # shellcheck disable=SC2086
    run_step "cc (pkg-config)" "$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer_pc" \
        "$here/consumer.c" $flags &&
        check_links "$tmp/consumer_pc" shared && run_consumer "$tmp/consumer_pc"
}
if way_pkgconfig_shared; then
    pass "cc + pkg-config --cflags --libs chm (shared)"
else
    failure "cc + pkg-config --cflags --libs chm (shared)"
fi

# ---- 4: pkg-config --static against libchm.a -------------------------------------------------
# -l:libchm.a makes the linker take the archive although libchm.so sits beside it; the rest
# (liburcu-memb, -pthread) must come from chm.pc's Requires.private / Libs.private.
way_pkgconfig_static() {
    cflags=$(pkg-config --static --cflags chm) || return 1
    slibs=$(pkg-config --static --libs chm) || return 1
    echo "   pkg-config --static --libs chm: $slibs"
    slibs=$(echo " $slibs " | sed 's/ -lchm / -l:libchm.a /')
    # shellcheck disable=SC2086
    run_step "cc (pkg-config --static)" "$cc" -std=c11 -Wall -Wextra -Werror \
        -o "$tmp/consumer_pc_static" "$here/consumer.c" $cflags $slibs &&
        check_links "$tmp/consumer_pc_static" static &&
        run_consumer "$tmp/consumer_pc_static"
}
if way_pkgconfig_static; then
    pass "cc + pkg-config --static, libchm.a (static)"
else
    failure "cc + pkg-config --static, libchm.a (static)"
fi

# ---- 5: the README's example, as the README builds it ----------------------------------------
if CC=$cc sh "$here/readme_example.sh" "$prefix" >"$log" 2>&1; then
    grep -v -e '^PASS' -e ' passed, [0-9]* failed$' "$log"
    pass "README example"
else
    sed 's/^/    /' "$log" >&2
    failure "README example"
fi

# ---- 6: Concurrency Kit: named by the package, not linked -----------------------------------
# The library is compiled against CK's inline headers only, so libchm.so must not need libck.so
# and libchm.a must call no ck_ function; the package still names CK among the library's
# dependencies (the public contract lists liburcu, Concurrency Kit and pthreads there: a build
# dependency of the library, and harmless to a static link).
way_ck() {
    archive=$(find "$prefix" -name libchm.a | head -n 1)
    shared=$(find "$prefix" -name 'libchm.so*' -type f | head -n 1)
    if nm -u "$archive" | grep -q ' ck_'; then
        echo "libchm.a calls Concurrency Kit functions" >&2
        return 1
    fi
    if readelf -d "$shared" | grep NEEDED | grep -q 'libck'; then
        echo "libchm.so links libck, whose functions it does not call" >&2
        return 1
    fi
    reqs=$(pkg-config --print-requires-private chm) || return 1
    echo "   chm.pc Requires.private: $(echo $reqs)"
    if ! echo "$reqs" | grep -qw ck || ! echo "$reqs" | grep -qw liburcu-memb; then
        echo "chm.pc does not name liburcu-memb and ck in Requires.private" >&2
        return 1
    fi
    if ! grep -q '"CK;ck"' "$prefix"/lib*/cmake/chm/chmConfig.cmake \
        "$prefix"/lib/*/cmake/chm/chmConfig.cmake 2>/dev/null; then
        echo "the CMake package does not look for Concurrency Kit" >&2
        return 1
    fi
}
if way_ck; then
    pass "libchm links no Concurrency Kit; chm.pc and the CMake package name it"
else
    failure "libchm links no Concurrency Kit; chm.pc and the CMake package name it"
fi

# ---- 7: the licence travels with the package -------------------------------------------------
way_licence() {
    spdx='^# SPDX-License-Identifier: BSD-2-Clause$'
    for f in "$pc" "$cfg" "$(dirname "$cfg")/chmConfigVersion.cmake"; do
        grep -q "$spdx" "$f" || { echo "$f states no licence (SPDX line)" >&2; return 1; }
    done
    [ -s "$prefix/share/doc/chm/LICENSE" ] || {
        echo "no $prefix/share/doc/chm/LICENSE" >&2
        return 1
    }
}
if way_licence; then
    pass "chm.pc, chmConfig.cmake and chmConfigVersion.cmake state the licence, LICENSE installed"
else
    failure "chm.pc, chmConfig.cmake and chmConfigVersion.cmake state the licence, LICENSE installed"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
