#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# cachesim_churn.sh - simulated cache misses per step of a deterministic churn
# (tools/cachesim_churn.c), for one or more builds of libchm: cachegrind's D1 and last-level
# misses with the last level sized as this machine's L2 (512 KiB, 8-way), the level a 100,000-key
# map's chains and bins miss in. Deterministic, so two builds compare exactly however busy the
# machine is; for time, use tools/ab_compare.sh.
#
# usage: tools/cachesim_churn.sh BACKEND STEPS LIBDIR...   (LIBDIR: a build holding libchm.so)
# e.g.   tools/cachesim_churn.sh segmented 300000 .ab/c00ebb2356dc/build build-release
set -eu
[ $# -ge 3 ] || { sed -n '3,10p' "$0" >&2; exit 2; }
backend=$1 steps=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| build | instructions | D1 misses | L2-sized LL misses | per step: D1, LL |\n|---|---|---|---|---|\n'
i=0
for dir in "$@"; do
    lib=$(cd "$dir" && pwd)
    i=$((i + 1))
    cc -O2 -I"$here/../include" "$here/cachesim_churn.c" -L"$lib" -lchm -Wl,-rpath,"$lib" \
        -o "$tmp/churn$i"
    valgrind --tool=cachegrind --cache-sim=yes --LL=524288,8,64 \
        --cachegrind-out-file="$tmp/cg$i" "$tmp/churn$i" "$backend" "$steps" >"$tmp/out$i" 2>&1
    awk -v d="$dir" -v s="$steps" '
        /I *refs:/ { gsub(",", "", $4); ir = $4 }
        /D1 *misses:/ { gsub(",", "", $4); d1 = $4 }
        /LLd misses:/ { gsub(",", "", $4); ll = $4 }
        END { printf "| %s | %d | %d | %d | %.2f, %.2f |\n", d, ir, d1, ll, d1 / s, ll / s }' \
        "$tmp/out$i"
done
