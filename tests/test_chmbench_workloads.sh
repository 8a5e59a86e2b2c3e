#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_workloads.sh CHMBENCH - chmbench mix's -p workload presets, tiny settings (a few
# seconds): each preset runs the op mix it advertises (JSON "opCounts", every operation counted,
# within a percentage point), fixes reads (and dist=zipf for ycsb-*), skips a combination that
# contradicts it, keeps the size invariant with updates at 2 threads on every backend and peer,
# and an unknown preset is an error (exit 2) before anything runs.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench_workloads.sh path/to/chmbench}
. "$(dirname "$0")/checklib.sh"

# 1. every preset, a library backend and a peer, opCounts against the advertised mix
"$BENCH" -wi 0 -i 1 -r 0.05 -f 1 -t 1 -p backend=binlock,lfht \
    -p workload=readheavy,exchange,rapidgrow,ycsb-a,ycsb-b,ycsb-c \
    -rff "$TMP/presets.json" >"$TMP/presets.txt" 2>"$TMP/presets.err"
rc=$?
check "every preset runs (exit 0)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/presets.err"
check "table: a (workload) column, reads and dist as each preset fixes them (12 rows)" sh -c "
    [ \$(grep -Ec '^chm\.mix +(binlock|lfht) +uniform +1000 +(98 +1 +readheavy|10 +1 +exchange|5 +1 +rapidgrow) +churn +thrpt ' '$TMP/presets.txt') -eq 6 ] &&
    [ \$(grep -Ec '^chm\.mix +(binlock|lfht) +zipf +1000 +(50 +1 +ycsb-a|95 +1 +ycsb-b|100 +1 +ycsb-c) +churn +thrpt ' '$TMP/presets.txt') -eq 6 ]"
check "opCounts: each preset's op mix within 1 percentage point (get/put/remove/update)" \
    python3 - "$TMP/presets.json" <<'PY'
import json, sys
advertised = {  # get, insert (a put), remove, update: percentages
    "readheavy": (98, 1, 1, 0), "exchange": (10, 40, 40, 10), "rapidgrow": (5, 80, 5, 10),
    "ycsb-a": (50, 0, 0, 50), "ycsb-b": (95, 0, 0, 5), "ycsb-c": (100, 0, 0, 0)}
rs = json.load(open(sys.argv[1]))
assert len(rs) == 12, len(rs)
for r in rs:
    p = r["params"]
    counts = r["opCounts"]
    assert list(counts) == ["get", "put", "remove", "update"], counts
    total = sum(counts.values())
    assert total >= 10000, (p, counts)  # 0.05 s of operations; binomial sd < 0.2 points
    want = advertised[p["workload"]]
    for kind, pct in zip(counts, want):
        got = 100.0 * counts[kind] / total
        assert abs(got - pct) <= 1.0, (p["workload"], p["backend"], kind, got, pct)
        assert pct > 0 or counts[kind] == 0, (p["workload"], kind, counts)  # none at all
    assert p["reads"] == str(want[0]), p
    assert p["dist"] == ("zipf" if p["workload"].startswith("ycsb") else "uniform"), p
PY

# 2. workload=none: the plain loops, no opCounts (nothing counted per operation there)
"$BENCH" -wi 0 -i 1 -r 0.02 -f 0 -p backend=binlock -p keys=100 -rff "$TMP/none.json" \
    >/dev/null 2>&1
check "workload=none (the default): param 'none', no opCounts" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[0]
assert r["params"]["workload"] == "none" and "opCounts" not in r, r
' "$TMP/none.json"

# 3. a preset contradicted by -p reads / -p dist: skipped with a note, the rest runs
"$BENCH" -wi 0 -i 1 -r 0.02 -f 0 -p backend=binlock -p keys=100 \
    -p workload=none,readheavy,ycsb-c -p reads=98,100 -p dist=uniform \
    >"$TMP/conflict.txt" 2>"$TMP/conflict.err"
crc=$?
check "contradicting combinations skipped with a note, the others run" sh -c "
    [ $crc -eq 0 ] &&
    [ \$(grep -c '^# skipped mix backend=binlock workload=readheavy .*reads=100 .*fixes reads' '$TMP/conflict.err') -eq 1 ] &&
    [ \$(grep -c '^# skipped mix backend=binlock workload=ycsb-c .*reads=98 .*fixes reads' '$TMP/conflict.err') -eq 1 ] &&
    [ \$(grep -c '^# skipped mix backend=binlock workload=ycsb-c dist=uniform .*reads=100 .*zipf' '$TMP/conflict.err') -eq 1 ] &&
    [ \$(grep -Ec '^chm\.mix +binlock +uniform +100 +(98 +1 +none|100 +1 +none|98 +1 +readheavy) ' '$TMP/conflict.txt') -eq 3 ]"

# 4. the size invariant with inserts, removes and updates at 2 threads, on every backend and
#    peer (unsafe skipped; a missing C++ peer reported skipped), in forks; rapidgrow with
#    writes=grow (every insert a fresh key: the map grows through resizes)
"$BENCH" -wi 0 -i 1 -r 0.03 -f 1 -t 2 -p keys=200 -p workload=exchange,ycsb-a \
    >"$TMP/all.txt" 2>"$TMP/all.err"
rc=$?
check "exchange and ycsb-a at 2 threads on every backend and peer: size invariant holds" \
    [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/all.err"
"$BENCH" -wi 0 -i 1 -r 0.03 -f 1 -t 2 -p backend=segmented,readmostly,ck_ht,tbb \
    -p keys=100 -p workload=rapidgrow -p writes=grow >"$TMP/grow.txt" 2>"$TMP/grow.err"
rc=$?
check "rapidgrow with writes=grow at 2 threads: size invariant holds" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/grow.err"
CHMBENCH_INJECT_SIZE_ERROR=1 "$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -p backend=rwlock -p keys=10 \
    -p workload=exchange >/dev/null 2>"$TMP/v.err"
check "a size error under a preset still fails the run" \
    sh -c "[ $? -eq 1 ] && grep -q 'size invariant violated' '$TMP/v.err'"

# 5. an unknown preset: a clear message naming the known ones, exit 2, nothing run
"$BENCH" -wi 0 -i 1 -r 0.01 -p workload=heavy >"$TMP/u.out" 2>"$TMP/u.err"
check "unknown workload: exit 2, the presets listed, no table" sh -c "
    [ $? -eq 2 ] && [ ! -s '$TMP/u.out' ] &&
    grep -q \"workload must be none, readheavy, exchange, rapidgrow, ycsb-a, ycsb-b or ycsb-c, not 'heavy'\" '$TMP/u.err'"

checklib_finish
