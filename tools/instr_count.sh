#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# instr_count.sh - instructions per chm operation, counted by callgrind: the same number on every
# run however busy the machine, so it is the first thing to run after touching a hot path.
#
# For every library backend it runs chm_gbench (Release build, keys=1000, one thread) once per
# operation under `valgrind --tool=callgrind`: get_hit, get_miss, put (an overwrite) and
# remove_reinsert (remove a present key, then put it back: one insert). tools/instr_count.py then
# reads the function-level call edges of each callgrind.out (no debug info needed): the
# inclusive instructions of the calls into chm_get / chm_put / chm_remove divided by their call
# counts, and the harness's own cost per operation (benchmark loop, adapter, Google Benchmark's
# batch check: bench_op's inclusive cost minus every library call it made, divided by the ops).
# Checked: the call counts equal the operations the loop ran (64 per batch), the prefill's 1000
# chm_put calls (measured in the get_hit run) are taken out of the put figures.
#
# usage: tools/instr_count.sh [BACKEND...]      (default: every backend, from chm_backends)
# env:   INSTR_KEEP=DIR   keep the callgrind.out files in DIR (default: a temporary directory)
#        INSTR_MIN_TIME   chm_gbench --benchmark_min_time per run, seconds (default 0.2)
#        INSTR_JOBS       valgrind processes at once (default 2)
set -eu

cd "$(dirname "$0")/.."
min_time=${INSTR_MIN_TIME:-0.2}
jobs=${INSTR_JOBS:-2}
gbench=build-release/bench/gbench/chm_gbench
list=build-release/bench/chm_backends

command -v valgrind >/dev/null 2>&1 || sh tools/install-deps.sh valgrind
# Always build: after a change to a hot path a stale binary would count the old code. A no-op
# when build-release is current.
if [ ! -f build-release/CMakeCache.txt ]; then
    echo "instr_count.sh: configuring build-release (Release: the preset release)" >&2
    cmake --preset release >/dev/null
fi
cmake --build build-release -j2 --target chm_gbench chm_backends >/dev/null
backends=${*:-$("$list" | tr ',' ' ')}

if [ -n "${INSTR_KEEP:-}" ]; then
    out=$INSTR_KEEP
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi

for b in $backends; do
    for op in get_hit get_miss put remove_reinsert; do
        echo "$b $op"
    done
done | xargs -P "$jobs" -n 2 sh -c '
    out=$0 gbench=$1 min_time=$2 b=$3 op=$4
    valgrind --tool=callgrind --callgrind-out-file="$out/$b.$op.out" "$gbench" --keys=1000 \
        --threads=1 --benchmark_filter="^$op/$b/" --benchmark_min_time="$min_time" \
        --benchmark_repetitions=1 >"$out/$b.$op.log" 2>&1 || {
        echo "instr_count.sh: $b $op failed:" >&2
        tail "$out/$b.$op.log" >&2
        exit 255
    }
' "$out" "$gbench" "$min_time"

echo "instructions per operation, callgrind, chm_gbench keys=1000, 1 thread ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
# shellcheck disable=SC2086 # $backends: one word per backend, in chm_backend_list()'s order
python3 tools/instr_count.py table "$out" $backends
