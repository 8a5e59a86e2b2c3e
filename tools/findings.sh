#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# findings.sh - rerun every measurement behind docs/findings.md and regenerate its tables and
# charts (`make findings` builds build-release/ and runs this).
#
# usage: tools/findings.sh [BUILD_DIR [OUT_DIR]]     defaults: build-release docs/findings
# env:   FINDINGS_RUN   chmbench iteration options for the throughput claims
#                       (default "-f 1 -wi 1 -w 0.5 -i 5 -r 0.5")
#        FINDINGS_ONLY  space-separated claim numbers to rerun (default: all, 1..7)
#        PYTHON         a python3 with matplotlib (default /usr/bin/python3)
#
# For each claim N it writes OUT_DIR/claimN.txt (the console table or Markdown table, verbatim),
# OUT_DIR/claimN.json (chmbench's JMH JSON) and OUT_DIR/claimN-*.png (tools/plot_results.py),
# plus OUT_DIR/machine.txt. It takes about 14 minutes on a 2-core machine (the one place this
# figure is kept: Makefile, tools/make_bench.sh and docs/findings.md point here); run it on an
# idle machine (the numbers of a loaded one say little). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-release}
out=${2:-docs/findings}
run=${FINDINGS_RUN:--f 1 -wi 1 -w 0.5 -i 5 -r 0.5}
only=${FINDINGS_ONLY:-1 2 3 4 5 6 7}
python=${PYTHON:-/usr/bin/python3}
bench=$build/bench/chmbench
claims=$build/bench/chm_claims
for exe in "$bench" "$claims"; do
    [ -x "$exe" ] || { echo "findings.sh: no $exe (make findings builds it)" >&2; exit 1; }
done
mkdir -p "$out"
start=$(date +%s)

note() { echo "# [$(($(date +%s) - start)) s] $*" >&2; }
wanted() { [[ " $only " == *" $1 "* ]]; }

# chmbench_claim N ARGS...: one chmbench run, its table, JSON and charts
chmbench_claim() {
    local n=$1
    shift
    note "claim $n: chmbench $*"
    # shellcheck disable=SC2086  # $run is a list of options
    "$bench" $run "$@" -rf json -rff "$out/claim$n.json" | tee "$out/claim$n.txt"
    rm -f "$out/claim$n"-*.png
    "$python" tools/plot_results.py -o "$out" --prefix "claim$n-" "$out/claim$n.json" >/dev/null
}

{
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores:   $(nproc) ($(grep -c ^processor /proc/cpuinfo) logical)"
    echo "kernel:  $(uname -sr)"
    echo "os:      $(grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null | cut -d= -f2 | tr -d '"')"
    echo "cc:      $(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt") ($(cc --version | head -n1))"
    echo "libs:    ck $(pkg-config --modversion ck), liburcu $(pkg-config --modversion liburcu)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at the start)"
    echo "options: $run"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

# 1. Go: concurrent map writes are detected (chm_unsafe)
if wanted 1; then
    note "claim 1: chm_claims race 10000"
    "$claims" race 10000 | tee "$out/claim1.txt"
fi

# 2. Java: fail-fast vs weakly consistent iterators
if wanted 2; then
    note "claim 2: chm_claims iterate 200"
    "$claims" iterate 200 | tee "$out/claim2.txt"
fi

# 3. Java 8 (binlock) vs Java 7 (segmented, 1 / 16 / 256 segments) across read ratios
if wanted 3; then
    chmbench_claim 3 -t 1,2 -p keys=1000,1000000 -p reads=100,90,50,10,0 \
        -p backend=binlock,segmented:concurrency=1,segmented,segmented:concurrency=256 mix
fi

# 4. sync.Map (readmostly): stable keys vs a growing key set
if wanted 4; then
    chmbench_claim 4 -t 1,2 -p keys=1000,1000000 -p reads=99,90 -p writes=churn,grow \
        -p backend=readmostly,binlock,segmented,rwlock,ck_ht,lfht mix
fi

# 5. False sharing: counters packed / 64 / 128 bytes apart, and every backend's padding switch
if wanted 5; then
    chmbench_claim 5 -t 2 -p subject=counters,segmented,binlock,readmostly falseshare
fi

# 6. Java 8's cooperative resize vs Go's incremental evacuation (inserts into a growing map)
if wanted 6; then
    chmbench_claim 6 -t 1,2 -wi 1 -i 5 -p keys=1000000 -p presize=no,yes \
        -p backend=unsafe,rwlock,segmented,binlock,readmostly,ck_ht resize
fi

# 7. RW-mutex readers do not scale: both locks of rwlock vs the store-free readers
if wanted 7; then
    chmbench_claim 7 -t 1,2 -p keys=1000,1000000 -p reads=100 \
        -p backend=rwlock,rwlock:ck,segmented,binlock mix
fi

note "done: $out (tables claimN.txt, JSON claimN.json, charts claimN-*.png, machine.txt)"
