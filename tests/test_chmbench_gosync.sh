#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_gosync.sh CHMBENCH GO_SYNC_BENCH_PY [PYTHON] - chmbench's gosync benchmark (Go's
# src/sync/map_bench_test.go suite on chm), tiny settings (about 20 s): every case briefly on
# one backend at 1 and 2 threads, JMH's JSON in ns/op, the default backends chosen by
# CHM_CAP_THREAD_SAFE, the skips (unsafe at 2 threads, peers, originals), an unknown case, and
# tools/go_sync_bench.py running Go's own benchmark beside it (skipped with a message without go).
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench_gosync.sh path/to/chmbench tools/go_sync_bench.py [python3]}
SCRIPT=${2:?usage: test_chmbench_gosync.sh path/to/chmbench tools/go_sync_bench.py [python3]}
PY=${3:-python3}
. "$(dirname "$0")/checklib.sh"
CASES="LoadMostlyHits LoadMostlyMisses LoadOrStoreBalanced LoadOrStoreUnique LoadOrStoreCollision
LoadAndDeleteBalanced LoadAndDeleteUnique LoadAndDeleteCollision Range AdversarialAlloc
AdversarialDelete DeleteCollision"

# 1. every case, one backend, 1 and 2 threads: a row each in ns/op, Go's checks held (exit 0)
"$BENCH" -wi 1 -w 0.02 -i 2 -r 0.03 -f 1 -t 1,2 -p backend=binlock -rff "$TMP/all.json" gosync \
    >"$TMP/all.txt" 2>"$TMP/all.err"
rc=$?
check "every case on binlock at 1 and 2 threads exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/all.err"
check "table: (backend) (case) (threads), mode avgt, a row per case and thread count in ns/op" \
    sh -c "grep -Eq '^Benchmark +\(backend\) +\(case\) +\(threads\) +Mode +Cnt +Score +Error +Units\$' '$TMP/all.txt' &&
    for c in $(echo $CASES); do for t in 1 2; do
        grep -Eq \"^chm\\.gosync +binlock +\$c +\$t +avgt +2 +[0-9.]+ +ns/op\\\$\" '$TMP/all.txt' || exit 1
    done; done"
check "JSON: chm.gosync, avgt, ns/op, Score = mean of rawData, params backend and case" \
    "$PY" - "$TMP/all.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
assert len(rs) == 24, len(rs)
for r in rs:
    assert r["benchmark"] == "chm.gosync" and r["mode"] == "avgt", r
    assert set(r["params"]) == {"backend", "case"}, r["params"]
    m = r["primaryMetric"]
    raw = m["rawData"][0]
    assert m["scoreUnit"] == "ns/op" and len(raw) == 2 and all(x > 0 for x in raw), m
    assert abs(m["score"] - sum(raw) / 2) < 1e-9 * m["score"], m
# one Range covers the whole 1024-entry map: far slower per op than one Load
by = {(r["params"]["case"], r["threads"]): r["primaryMetric"]["score"] for r in rs}
assert by[("Range", 1)] > 20 * by[("LoadMostlyHits", 1)], by
PY

# 2. the default backends: those with CHM_CAP_THREAD_SAFE (unsafe lacks it); unsafe named
#    explicitly runs at one thread and is skipped at two; peers and originals are skipped
"$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -t 1 -p case=LoadMostlyHits gosync >"$TMP/def.txt" 2>&1
check "default backends: the thread-safe library backends, not unsafe, no peers" sh -c "
    [ \$(grep -Ec '^chm\.gosync +(rwlock|segmented|binlock|readmostly) +LoadMostlyHits ' '$TMP/def.txt') -eq 4 ] &&
    ! grep -Eq '^chm\.gosync +(unsafe|ck_ht|lfht|cuckoo|tbb|java:chm) ' '$TMP/def.txt'"
"$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -t 1,2 -p backend=unsafe,ck_ht,java:chm -p case=DeleteCollision \
    gosync >"$TMP/skip.txt" 2>"$TMP/skip.err"
check "unsafe: runs at 1 thread, skipped at 2; a peer and an original skipped with the reason" sh -c "
    [ $? -eq 0 ] && grep -Eq '^chm\.gosync +unsafe +DeleteCollision +1 ' '$TMP/skip.txt' &&
    grep -q '^# skipped gosync backend=unsafe .*threads=2: not thread-safe' '$TMP/skip.err' &&
    grep -q '^# skipped gosync backend=ck_ht .*library backends only' '$TMP/skip.err' &&
    grep -Eq '^# skipped gosync backend=java:chm .*(runs in mix only|not on PATH|not built)' '$TMP/skip.err'"

# 3. an unknown case: exit 2, the cases listed
"$BENCH" -p case=LoadEverything gosync >"$TMP/u.out" 2>"$TMP/u.err"
check "unknown case: exit 2, the known cases listed" sh -c "
    [ $? -eq 2 ] && grep -q \"case must be one of LoadMostlyHits .* DeleteCollision, not 'LoadEverything'\" '$TMP/u.err'"

# 4. Go's own benchmark beside it: tools/go_sync_bench.py (needs go; skipped with a message)
if command -v go >/dev/null 2>&1; then
    "$BENCH" -wi 0 -i 2 -r 0.02 -f 1 -t 1 -p backend=binlock,readmostly -p case=LoadMostlyHits \
        -rff "$TMP/side.json" gosync >/dev/null 2>&1
    "$PY" "$SCRIPT" --cpu 1 --benchtime 100x --case LoadMostlyHits --chmbench "$TMP/side.json" \
        >"$TMP/go.md" 2>"$TMP/go.err"
    rc=$?
    check "go_sync_bench.py: go test -bench on the installed Go's map_bench_test.go, exit 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$TMP/go.err" "$TMP/go.md"
    check "go_sync_bench.py: Go's three maps and chm's two backends side by side, in ns/op" sh -c "
        grep -q 'src/sync/map_bench_test.go' '$TMP/go.md' &&
        grep -q '^| case | threads | Go sync.Map | Go sync_test.DeepCopyMap | Go sync_test.RWMutexMap | binlock | readmostly |\$' '$TMP/go.md' &&
        grep -Eq '^\| LoadMostlyHits \| 1( \| [0-9.]+){5} \|\$' '$TMP/go.md'"
else
    echo "# no go on PATH: tools/go_sync_bench.py not checked (Debian: golang-go; tools/install-deps.sh)"
fi

checklib_finish
