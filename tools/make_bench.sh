#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_bench.sh - `make bench`, `make compare` and `make findings`: the Release build (preset
# release, build-release/), then chmbench's default comparisons (docs/harness.md, "make bench"
# and "make compare"): JMH tables on stdout, JSON, PNG charts (tools/plot_results.py), the
# goals table (tools/bench_summary.py) and, for compare, the ratio tables of each chm backend
# against its original and the peers (tools/compare_tables.py) in RESULTS, with *-latest links
# to the newest; or tools/findings.sh.
#
# usage: tools/make_bench.sh [bench|compare|findings]
#   bench    (default) each of BENCHMARKS, about 5 minutes on 2 cores: mix over every library
#            backend and the peers ck_ht, lfht (reads 100,99,90,50 x keys 1000,1000000 x threads
#            1,2); falseshare (the counters and every backend with CHM_CAP_PADDING_SWITCH);
#            memory. One fork, 1 x 0.2 s warm-up and 5 x 0.2 s measurement per trial, so that
#            the 104 mix trials (half prefilling 10^6 keys per fork) fit the budget; for numbers
#            to publish add e.g. BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1' on an idle machine.
#            RESULTS/<benchmark>-<time>.json, charts, summary-<time>.md.
#   compare  one mix run of every library backend beside the Java and Go originals and every
#            peer (240 trials: go:map and unsafe run at one thread), about 12 minutes (the one
#            place this figure is kept), a progress line per trial on stderr. A 1 s warm-up lets
#            the JVM's C2 compile the originals' loops before measuring (docs/harness.md, "The
#            originals"), 5 x 0.3 s measured.
#            RESULTS/compare-<time>.json, its charts, compare-summary-<time>.md (the goals),
#            compare-tables-<time>.md (chm backend / original, best chm / peer, per cell).
#   findings every measurement of docs/findings.md (tools/findings.sh, whose header says how
#            long; on an idle machine): tables, JSON and charts regenerated in FINDINGS_OUT.
# The backend lists come from the library (bench/backends.c, chm_backends): a new backend is in
# them with no edit here.
#
# env: BENCHMARKS  make bench's benchmarks (default "mix falseshare memory"; churn, not in the
#                  default: one 60 s run per backend with CHM_CAP_DEFERRED_FREE, 2 threads). A
#                  -p that a benchmark lacks is an error: restrict BENCHMARKS then
#      BENCH_ARGS  more chmbench options for every benchmark, given last so that they win
#      RESULTS     output directory (default results)
#      BENCH_BUILD build directory (default the release preset's, build-release)
#      PYTHON      a python3 with matplotlib (default /usr/bin/python3)
#      FINDINGS_OUT  make findings' output directory (default docs/findings)
#      CC, CXX, CMAKE_FLAGS, JOBS, CMAKE: tools/presets.sh
set -euo pipefail
. "$(dirname "$0")/presets.sh"

what=${1:-bench}
case $what in bench | compare | findings) ;; *)
    echo "usage: tools/make_bench.sh [bench|compare|findings]" >&2
    exit 2
    ;;
esac
BENCHMARKS=${BENCHMARKS:-mix falseshare memory}
BENCH_ARGS=${BENCH_ARGS:-}
RESULTS=${RESULTS:-results}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH_BUILD=${BENCH_BUILD:-$(preset_dir release)}

configure release "$BENCH_BUILD"
build release "$BENCH_BUILD"
if [ "$what" = findings ]; then
    PYTHON=$PYTHON exec tools/findings.sh "$BENCH_BUILD" "${FINDINGS_OUT:-docs/findings}"
fi

exe=$BENCH_BUILD/bench/chmbench
backends=$("$BENCH_BUILD/bench/chm_backends")
padded=$("$BENCH_BUILD/bench/chm_backends" PADDING_SWITCH)
deferred=$("$BENCH_BUILD/bench/chm_backends" DEFERRED_FREE)
ts=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"

# plots PREFIX FILE...: the charts of FILEs (their paths on stdout), with -latest links
plots() {
    local prefix=$1 p n
    shift
    echo
    echo "==== $PYTHON tools/plot_results.py -o $RESULTS ${prefix:+--prefix $prefix }--suffix=-$ts $*"
    pngs=$("$PYTHON" tools/plot_results.py -o "$RESULTS" ${prefix:+--prefix "$prefix"} \
        --suffix=-"$ts" "$@")
    for p in $pngs; do
        n=$(basename "$p")
        ln -sfn "$n" "$RESULTS/${n%-"$ts".png}-latest.png"
    done
}
# report NAME TITLE SCRIPT FILE...: tools/SCRIPT's Markdown for FILEs, shown under TITLE and kept
# in RESULTS/NAME-<time>.md with a -latest link
report() {
    local name=$1 title=$2 script=$3
    shift 3
    echo
    echo "==== $title"
    "$PYTHON" "tools/$script" "$@" | tee "$RESULTS/$name-$ts.md"
    ln -sfn "$name-$ts.md" "$RESULTS/$name-latest.md"
}
# goals NAME FILE...: the goals table (tools/bench_summary.py)
goals() {
    local name=$1
    shift
    report "$name" "performance goals (docs/benchmarks.md), as ratios of this run's Scores" \
        bench_summary.py "$@"
}
# tables NAME FILE...: make compare's ratio and Score tables (tools/compare_tables.py)
tables() {
    local name=$1
    shift
    report "$name" "chm backend / original and best chm / peer, as ratios of this run's Scores" \
        compare_tables.py "$@"
}

case $what in
bench)
    run=(-f 1 -wi 1 -w 0.2 -i 5 -r 0.2)
    files=()
    listing=$("$exe" -l)
    for b in $BENCHMARKS; do
        if ! grep -q "^  $b " <<<"$listing"; then
            echo "# $b: not in this chmbench, skipped"
            continue
        fi
        case $b in
        mix) args="-p backend=$backends,ck_ht,lfht -p reads=100,99,90,50 -p keys=1000,1000000 -p dist=uniform -t 1,2" ;;
        falseshare) args="-t 2 -p subject=counters,$padded" ;;
        memory) args="-wi 0 -i 1 -p presize=yes" ;;
        churn) args="-p backend=$deferred -t 2" ;; # one run of 60 s per backend (-wi/-i do not apply)
        *) args= ;;
        esac
        out=$RESULTS/$b-$ts.json
        echo
        echo "==== $exe ${run[*]} $args $BENCH_ARGS -rf json -rff $out $b"
        # shellcheck disable=SC2086  # args and BENCH_ARGS are lists of options
        "$exe" "${run[@]}" $args $BENCH_ARGS -rf json -rff "$out" "$b"
        ln -sfn "$b-$ts.json" "$RESULTS/$b-latest.json"
        files+=("$out")
    done
    [ ${#files[@]} -gt 0 ] || { echo "make bench: no benchmark ran" >&2; exit 1; }
    plots "" "${files[@]}"
    goals summary "${files[@]}"
    echo
    echo "results (the *-latest.* links point at this run):"
    for f in "${files[@]}" $pngs "$RESULTS/summary-$ts.md"; do echo "  $f"; done
    echo "Google Benchmark view: $BENCH_BUILD/bench/gbench/chm_gbench (--help; docs/harness.md)"
    ;;
compare)
    run=(-f 1 -wi 1 -w 1 -i 5 -r 0.3)
    originals=java:chm,java:sync,java:rwlock,java:segments,go:syncmap,go:rwmutex,go:map
    # shellcheck disable=SC2054  # the commas are chmbench's
    mix=(-p "backend=$backends,$originals,cuckoo,tbb,ck_ht,lfht" -p reads=100,99,90,50
        -p keys=1000,1000000 -p dist=uniform -t 1,2)
    out=$RESULTS/compare-$ts.json
    echo
    echo "==== $exe ${run[*]} ${mix[*]} $BENCH_ARGS -rf json -rff $out mix"
    echo "# a progress line per trial follows (how long it takes: tools/make_bench.sh's header)"
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
    "$exe" "${run[@]}" "${mix[@]}" $BENCH_ARGS -rf json -rff "$out" mix
    ln -sfn "compare-$ts.json" "$RESULTS/compare-latest.json"
    plots compare- "$out"
    goals compare-summary "$out"
    tables compare-tables "$out"
    echo
    echo "results (the compare-*-latest.* links point at this run):"
    for f in "$out" $pngs "$RESULTS/compare-summary-$ts.md" "$RESULTS/compare-tables-$ts.md"; do
        echo "  $f"
    done
    ;;
esac
