#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_bench_summary.sh SUMMARY_SCRIPT PYTHON - tools/bench_summary.py on a synthetic result file
# whose Scores and Errors give known intervals: a ratio whose whole interval clears the target is
# "met", one whose whole interval falls short "**missed**", one that straddles it "within noise"
# (never bold); a denominator whose interval reaches 0 gives an unbounded interval; an Error
# from scoreConfidence counts as scoreError does; no Error at all is "no Error"; the line saying
# what the table is comes first.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
SUMMARY=${1:?usage: test_bench_summary.sh tools/bench_summary.py python3}
PY=${2:?python3}
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

def mix(backend, threads, keys, score, **error):
    return {"benchmark": "chm.mix", "mode": "thrpt", "threads": threads,
            "params": {"backend": backend, "dist": "uniform", "keys": str(keys), "reads": "100",
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

checklib_finish
