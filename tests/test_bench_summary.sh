#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_bench_summary.sh SUMMARY_SCRIPT PYTHON - tools/bench_summary.py on a synthetic result file
# whose Scores and Errors give known intervals: a ratio whose whole interval clears the target is
# "met", one whose whole interval falls short "**missed**", one that straddles it "within noise"
# (never bold); a denominator whose interval reaches 0 gives an unbounded interval; an Error
# from scoreConfidence counts as scoreError does; no Error at all is "no Error"; the line saying
# what the table is comes first; a C++ peer (cuckoo) is never the "best chm" of the peers goal.
# Then tools/compare_tables.py (beside it in tools/) on a synthetic make compare file: each chm
# backend / original ratio and each best chm / peer ratio with the interval computed by hand, a
# missing Score as "—", an Error-less Score as a bare ratio, unsafe never the best, a pair or
# peer with no cell left out, workload presets ignored, skipped backends listed with the reason;
# its Score grids (a table per key and thread count, each chm backend beside its originals) and,
# given a -bm sample file too, its latency grids (p50 / p99 / p99.9).
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
SUMMARY=${1:?usage: test_bench_summary.sh tools/bench_summary.py python3}
PY=${2:?python3}
COMPARE=$(dirname "$SUMMARY")/compare_tables.py
. "$(dirname "$0")/checklib.sh"
# row GOAL: the table row of that goal, "" when there is none
row() { grep -F "| $1 |" "$TMP/out.md"; }
# has GOAL TEXT: the goal's row contains TEXT
has() { row "$1" | grep -qF -- "$2"; }
lacks() { ! has "$1" "$2"; }
# contains STRING TEXT: STRING contains TEXT
contains() { case $1 in *"$2"*) return 0 ;; esac; return 1; }

# mix(backend, threads, keys, score, primaryMetric's error fields)
"$PY" - "$TMP/results.json" <<'EOF'
import json, sys

def mix(backend, threads, keys, score, reads="100", **error):
    return {"benchmark": "chm.mix", "mode": "thrpt", "threads": threads,
            "params": {"backend": backend, "dist": "uniform", "keys": str(keys), "reads": reads,
                       "writes": "churn"},
            "primaryMetric": dict(score=score, scoreUnit="ops/us", **error)}

def memory(backend, score):  # one iteration: JMH has no Error
    return {"benchmark": "chm.memory", "mode": "ss", "threads": 1,
            "params": {"backend": backend, "keys": "1000000", "presize": "yes"},
            "primaryMetric": {"score": score, "scoreError": "NaN", "scoreUnit": "B/entry"}}

json.dump([
    mix("unsafe", 1, 1000, 50.0, scoreError=1.0),
    mix("readmostly", 1, 1000, 60.0, scoreError=2.0),   # 1.20 [1.14, 1.27], >= 1: met
    mix("binlock", 1, 1000, 40.0, scoreError=20.0),     # 0.80 [0.39, 1.22], >= 0.8: noise
    mix("segmented", 1, 1000, 30.0, scoreError=1.0),    # 0.60 [0.57, 0.63], >= 0.8: missed
    mix("unsafe", 1, 1000000, 10.0, scoreError=30.0),   # denominator down to 0
    mix("readmostly", 1, 1000000, 5.0, scoreError=1.0),  # 0.50 [0.10, inf]: noise
    mix("segmented", 2, 1000, 66.0, scoreError="NaN", scoreConfidence=[64.0, 68.0]),
    mix("binlock", 2, 1000, 80.0, scoreError="NaN"),     # no Error: no interval
    memory("unsafe", 40.1),                              # <= 32: missed (exact)
    memory("binlock", 45.0),                             # <= 48: met
    # vs peers at 99% reads: cuckoo (a C++ peer) is faster but not chm; ck_ht the goal's peer
    mix("segmented", 2, 1000000, 10.0, reads="99", scoreError=1.0),  # 1.25 [9/9, 11/7]
    mix("ck_ht", 2, 1000000, 8.0, reads="99", scoreError=1.0),
    mix("cuckoo", 2, 1000000, 100.0, reads="99", scoreError=1.0),
], open(sys.argv[1], "w"))
EOF
"$PY" "$SUMMARY" "$TMP/results.json" >"$TMP/out.md" 2>"$TMP/err"
src=$?
check "bench_summary.py exits 0" [ "$src" -eq 0 ]
[ "$src" -eq 0 ] || cat "$TMP/err"

first=$(head -n 1 "$TMP/out.md")
for phrase in "measured on this run" "not gated by CI" "Scores of this one run" "99.9% Errors" \
    "2-core" "10–40%" "BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1'"; do
    check "first line says: $phrase" contains "$first" "$phrase"
done

g="read cost: readmostly / unsafe, 100% reads, 1 thread, 1000 keys"
check "interval clear above the target: met" has "$g" "| 60.0 ± 2.0 / 50.0 ± 1.0 ops/us | 1.20 [1.14, 1.27] | ≥ 1 | met |"
g="read cost: binlock / unsafe, 100% reads, 1 thread, 1000 keys"
check "interval straddling the target: within noise" has "$g" "| 0.80 [0.39, 1.22] | ≥ 0.8 | within noise |"
check "within noise is not bold" lacks "$g" "**"
g="read cost: segmented / unsafe, 100% reads, 1 thread, 1000 keys"
check "interval clear below the target: **missed**" has "$g" "| 0.60 [0.57, 0.63] | ≥ 0.8 | **missed** |"
g="read cost: readmostly / unsafe, 100% reads, 1 thread, 1000000 keys"
check "denominator's interval reaching 0: unbounded, within noise" has "$g" "| 0.50 [0.10, ∞] | ≥ 1 | within noise |"
g="read scaling: segmented 2 threads / 1 thread, 100% reads, 1000 keys"
check "Error from scoreConfidence" has "$g" "| 66.0 ± 2.0 / 30.0 ± 1.0 ops/us | 2.20 [2.06, 2.34] | ≥ 1.9 | met |"
g="read scaling: binlock 2 threads / 1 thread, 100% reads, 1000 keys"
check "no Error: no interval, no verdict on it" has "$g" "| 80.0 ± ? / 40.0 ± 20.0 ops/us | 2.00 | ≥ 1.9 | no Error |"
check "memory, one iteration, over the ceiling: **missed**" \
    has "memory: unsafe, B/entry at 1M entries" "| 40.1 ± 0.0 B/entry | 40.10 | ≤ 32 | **missed** |"
check "memory under the ceiling: met" \
    has "memory: binlock, B/entry at 1M entries" "| 45.0 ± 0.0 B/entry | 45.00 | ≤ 48 | met |"
check "a goal without rows: not measured" \
    has "read scaling: rwlock 2 threads / 1 thread, 100% reads, 1000 keys" "| not measured |"
check "vs peers: the best chm is a library backend, never the faster C++ peer cuckoo" \
    has "vs peers: best chm / best peer, 99% reads, 2 threads, 1M keys" "| segmented 10.0 ± 1.0 / ck_ht 8.0 ± 1.0 ops/us | 1.25 [1.00, 1.57] | ≥ 1.5 |"

# ---- tools/compare_tables.py: make compare's ratio tables -----------------------------------
# mix(backend, threads, keys, reads, score, error, params...): a row of a make compare file; the
# expected ratios and intervals, by hand, in the comments ([(a - ea) / (b + eb), (a + ea) / (b - eb)])
"$PY" - "$TMP/compare.json" <<'EOF'
import json, sys

def mix(backend, threads, keys, reads, score, error, **params):
    p = {"backend": backend, "workload": "none", "dist": "uniform", "keys": str(keys),
         "reads": str(reads), "writes": "churn"}
    p.update(params)
    return {"benchmark": "chm.mix", "mode": "thrpt", "threads": threads, "params": p,
            "primaryMetric": {"score": score, "scoreError": error, "scoreUnit": "ops/us"}}

def skipped(backend, why):
    return {"benchmark": "chm.mix", "mode": "thrpt", "threads": 1, "skipped": why,
            "params": {"backend": backend, "workload": "none", "dist": "uniform",
                       "keys": "1000", "reads": "100", "writes": "churn"}}

json.dump([
    # a workload preset in the same file, first: not make compare's grid, must not count
    mix("binlock", 1, 1000, 100, 1000.0, 1.0, workload="readheavy"),
    # 1,000 keys, 1 thread
    mix("binlock", 1, 1000, 100, 40.0, 2.0),      # / java:chm 0.80 [38/55 0.69, 42/45 0.93]
    mix("java:chm", 1, 1000, 100, 50.0, 5.0),
    mix("segmented", 1, 1000, 100, 45.0, 1.0),    # / java:chm 0.90 [44/55 0.80, 46/45 1.02]
    mix("unsafe", 1, 1000, 100, 60.0, 3.0),       # / go:map 1.50 [57/42 1.36, 63/38 1.66]
    mix("go:map", 1, 1000, 100, 40.0, 2.0),
    mix("cuckoo", 1, 1000, 100, 30.0, 3.0),       # best is segmented (unsafe is not
                                                  # thread-safe): 1.50 [44/33 1.33, 46/27 1.70]
    mix("binlock", 1, 1000, 50, 30.0, 1.0),       # no java:chm at 50%: "—"
    # 1,000 keys, 2 threads
    mix("readmostly", 2, 1000, 100, 30.0, "NaN"),  # / go:syncmap: no Error, 1.50 alone
    mix("go:syncmap", 2, 1000, 100, 20.0, 1.0),
    mix("rwlock", 2, 1000, 50, 5.0, 1.0),         # / go:rwmutex 2.50 [4/5 0.80, 6/(2-3): ∞]
    mix("go:rwmutex", 2, 1000, 50, 2.0, 3.0),
    # 10^6 keys, 2 threads, 50% reads
    mix("segmented", 2, 1000000, 50, 12.0, 1.0),  # / java:segments 1.50 [11/10 1.10, 13/6 2.17]
    mix("java:segments", 2, 1000000, 50, 8.0, 2.0),
    mix("java:chm", 2, 1000000, 50, 16.0, 0.5),   # segmented / it: 0.75 [11/16.5 0.67, 13/15.5 0.84]
    mix("cuckoo", 2, 1000000, 50, 10.0, 1.0),     # best is segmented: 1.20 [11/11 1.00, 13/9 1.44]
    skipped("java:rwlock", "no Java runtime: `java` is not on PATH"),
    skipped("tbb", "oneTBB was not found when CMake configured this build"),
], open(sys.argv[1], "w"))
EOF
"$PY" "$COMPARE" "$TMP/compare.json" >"$TMP/compare.md" 2>"$TMP/compare.err"
crc=$?
check "compare_tables.py exits 0" [ "$crc" -eq 0 ]
[ "$crc" -eq 0 ] || cat "$TMP/compare.err"
# line TEXT: the output has exactly this line; no_line REGEX: no line matches
line() { grep -qxF -- "$1" "$TMP/compare.md"; }
no_line() { ! grep -Eq -- "$1" "$TMP/compare.md"; }
first=$(head -n 1 "$TMP/compare.md")
for phrase in "make compare's ratios" "Scores of this one run" "99.9% Errors" \
    "interval arithmetic" "BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1'"; do
    check "compare: first line says: $phrase" contains "$first" "$phrase"
done
check "compare: the pairs' table, a column per read % in the file, highest first" \
    line "| pair | keys | threads | 100% | 50% |"
check "compare: binlock / java:chm with its interval; no java:chm Score at 50%: —" \
    line "| binlock / java:chm | 1,000 | 1 | 0.80 [0.69, 0.93] | — |"
check "compare: segmented / java:segments (Java 7's design)" \
    line "| segmented / java:segments | 1,000,000 | 2 | — | 1.50 [1.10, 2.17] |"
check "compare: segmented / java:chm at 10^3 keys, 1 thread" \
    line "| segmented / java:chm | 1,000 | 1 | 0.90 [0.80, 1.02] | — |"
check "compare: segmented / java:chm at 10^6 keys, 2 threads" \
    line "| segmented / java:chm | 1,000,000 | 2 | — | 0.75 [0.67, 0.84] |"
check "compare: an Error-less Score gives the ratio alone" \
    line "| readmostly / go:syncmap | 1,000 | 2 | 1.50 | — |"
check "compare: a denominator whose interval reaches 0 gives ∞" \
    line "| rwlock / go:rwmutex | 1,000 | 2 | — | 2.50 [0.80, ∞] |"
check "compare: unsafe / go:map at one thread" \
    line "| unsafe / go:map | 1,000 | 1 | 1.50 [1.36, 1.66] | — |"
check "compare: a pair with no cell left out (rwlock / java:sync; the skipped java:rwlock)" \
    no_line '^\| rwlock / java:(sync|rwlock) '
check "compare: a line with every cell missing left out (unsafe / go:map at 2 threads)" \
    no_line '^\| unsafe / go:map \| [0-9,]+ \| 2 '
check "compare: the preset row ignored (binlock's 1000 ops/us never divided)" \
    no_line '25\.00|33\.33|\(binlock\)'
check "compare: the peers' table" line "| best chm / peer | keys | threads | 100% | 50% |"
check "compare: best thread-safe chm backend / cuckoo, named (not unsafe), 10^3 keys" \
    line "| best / cuckoo | 1,000 | 1 | 1.50 [1.33, 1.70] (segmented) | — |"
check "compare: best chm backend / cuckoo, 10^6 keys, 2 threads" \
    line "| best / cuckoo | 1,000,000 | 2 | — | 1.20 [1.00, 1.44] (segmented) |"
check "compare: a peer without Scores (tbb) has no row" no_line '^\| best / tbb '
check "compare: the skipped java:rwlock listed with the reason" \
    line '- `java:rwlock` skipped in this run: no Java runtime: `java` is not on PATH'
check "compare: the skipped tbb listed with the reason" \
    line '- `tbb` skipped in this run: oneTBB was not found when CMake configured this build'
# The Score grids: a table per (keys, threads), backends in ORDER (each beside its originals,
# then the peers), a Score-less backend of that slice left out, a missing cell "—".
check "compare: Score grid for 1,000 keys, 1 thread" \
    line "**keys = 1,000, threads = 1**: Score (ops/us)"
check "compare: its columns: chm backends beside their originals, then the peers" \
    line "| reads | unsafe | go:map | segmented | binlock | java:chm | cuckoo |"
check "compare: its 100% row" line "| 100% | 60.0 | 40.0 | 45.0 | 40.0 | 50.0 | 30.0 |"
check "compare: its 50% row, missing cells as —" line "| 50% | — | — | — | 30.0 | — | — |"
check "compare: the 10^6-key, 2-thread grid has only its own backends" \
    line "| reads | segmented | java:segments | java:chm | cuckoo |"
check "compare: no latency grid without -bm sample rows" no_line 'p50 / p99 / p99.9'
# With a -bm sample file beside it: latency grids, "p50 / p99 / p99.9" per cell.
"$PY" - "$TMP/sample.json" <<'EOF2'
import json, sys

def sample(backend, threads, keys, reads, p50, p99, p999):
    return {"benchmark": "chm.mix", "mode": "sample", "threads": threads,
            "params": {"backend": backend, "workload": "none", "dist": "uniform",
                       "keys": str(keys), "reads": str(reads), "writes": "churn"},
            "primaryMetric": {"score": p50, "scoreUnit": "us/op", "scorePercentiles": {
                "0.0": 0.01, "50.0": p50, "90.0": p99, "99.0": p99, "99.9": p999,
                "100.0": 100.0}}}

json.dump([sample("binlock", 1, 1000, 100, 0.041, 0.0512, 0.125),
           sample("java:chm", 1, 1000, 100, 0.03, 0.07, 2.25)], open(sys.argv[1], "w"))
EOF2
"$PY" "$COMPARE" "$TMP/compare.json" "$TMP/sample.json" >"$TMP/compare.md" 2>"$TMP/compare.err"
check "compare + sample: exits 0" [ $? -eq 0 ]
check "compare + sample: the latency grid's title" \
    line "**keys = 1,000, threads = 1**: latency p50 / p99 / p99.9 (us/op, -bm sample)"
check "compare + sample: its columns are the sampled backends" line "| reads | binlock | java:chm |"
check "compare + sample: p50 to 3 decimals, p99 to 2, p99.9 to 1" \
    line "| 100% | 0.041 / 0.05 / 0.1 | 0.030 / 0.07 / 2.2 |"
check "compare + sample: the Score grids unchanged by the sample rows" \
    line "| 100% | 60.0 | 40.0 | 45.0 | 40.0 | 50.0 | 30.0 |"
"$PY" "$COMPARE" >/dev/null 2>&1
check "compare: no file given: usage, non-zero exit" [ $? -ne 0 ]

checklib_finish
