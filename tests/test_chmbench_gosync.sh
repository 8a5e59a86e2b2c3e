#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_gosync.sh CHMBENCH GO_SYNC_BENCH_PY [PYTHON] - chmbench's gosync benchmark (Go's
# src/sync/map_bench_test.go suite on chm), tiny settings (about 20 s): every case briefly on
# one backend at 1 and 2 threads, JMH's JSON in ns/op, the default backends chosen by
# CHM_CAP_THREAD_SAFE, the skips (unsafe at 2 threads, peers, originals), an unknown case,
# tools/go_sync_bench.py running Go's own benchmark beside it (skipped with a message without go;
# its --save-json file read back by --from-json gives the same table), and the script's table
# from canned input (--from-json, no go needed) with its ratio columns computed by hand.
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
        --save-json "$TMP/go.json" >"$TMP/go.md" 2>"$TMP/go.err"
    rc=$?
    check "go_sync_bench.py: go test -bench on the installed Go's map_bench_test.go, exit 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$TMP/go.err" "$TMP/go.md"
    check "go_sync_bench.py: Go's three maps and chm's two backends side by side in ns/op, and their ratios" sh -c "
        grep -q 'src/sync/map_bench_test.go' '$TMP/go.md' &&
        grep -q '^| case | threads | Go sync.Map | Go sync_test.DeepCopyMap | Go sync_test.RWMutexMap | binlock | readmostly | binlock ÷ sync.Map | readmostly ÷ sync.Map |\$' '$TMP/go.md' &&
        grep -Eq '^\| LoadMostlyHits \| 1( \| [0-9.]+){7} \|\$' '$TMP/go.md'"
    "$PY" "$SCRIPT" --from-json "$TMP/go.json" --case LoadMostlyHits --chmbench "$TMP/side.json" \
        >"$TMP/again.md" 2>&1
    tail -n +2 "$TMP/go.md" >"$TMP/go.tail"   # the first line names the source
    tail -n +2 "$TMP/again.md" >"$TMP/again.tail"
    check "go_sync_bench.py --save-json, then --from-json: the same table" \
        cmp -s "$TMP/go.tail" "$TMP/again.tail"
else
    echo "# no go on PATH: tools/go_sync_bench.py not run on Go (Debian: golang-go; tools/install-deps.sh)"
fi

# 5. the table from canned input (no go needed): Go's results as --save-json writes them and a
#    chmbench gosync file, made by hand; the ratio columns BACKEND ÷ sync.Map computed by hand
"$PY" - "$TMP/canned-go.json" "$TMP/canned-chm.json" <<'EOF'
import json, sys
go = [("LoadMostlyHits", 1, "sync.Map", 25.9), ("LoadMostlyHits", 1, "sync_test.DeepCopyMap", 25.8),
      ("LoadMostlyHits", 1, "sync_test.RWMutexMap", 26.9), ("LoadMostlyHits", 2, "sync.Map", 14.5),
      ("Range", 1, "sync.Map", 8206.0), ("Range", 2, "sync.Map", 3765.0)]
json.dump({"goroot": "/usr/lib/go-1.19", "command": "go test -run NONE -bench ... sync",
           "results": [{"case": c, "threads": t, "map": m, "nsPerOp": v} for c, t, m, v in go]},
          open(sys.argv[1], "w"))
def row(case, threads, backend, score):
    return {"benchmark": "chm.gosync", "mode": "avgt", "threads": threads,
            "params": {"backend": backend, "case": case},
            "primaryMetric": {"score": score, "scoreError": 0.1, "scoreUnit": "ns/op"}}
json.dump([row("LoadMostlyHits", 1, "binlock", 4.3),     # 4.3 / 25.9 = 0.166 -> 0.17
           row("LoadMostlyHits", 1, "readmostly", 4.7),  # 4.7 / 25.9 = 0.181 -> 0.18
           row("LoadMostlyHits", 2, "binlock", 2.2),     # 2.2 / 14.5 = 0.152 -> 0.15
           row("Range", 1, "binlock", 7103.9),           # / 8206.0 = 0.866 -> 0.87
           row("Range", 1, "readmostly", 4672.6),        # / 8206.0 = 0.569 -> 0.57
           row("LoadOrStoreUnique", 1, "binlock", 267.8)],  # no Go row: ratio "—"
          open(sys.argv[2], "w"))
EOF
PYPATH=$("$PY" -c "import sys; print(sys.executable)") # go hidden from PATH, python kept
PATH=/nonexistent "$PYPATH" "$SCRIPT" --from-json "$TMP/canned-go.json" --chmbench "$TMP/canned-chm.json" \
    >"$TMP/canned.md" 2>"$TMP/canned.err"
rc=$?
check "go_sync_bench.py --from-json: no go needed, exit 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/canned.err"
# line TEXT: canned.md has exactly this line
line() { grep -qxF -- "$1" "$TMP/canned.md"; }
check "--from-json: the header line names the saved file and what the ratio is" sh -c "
    head -n 1 '$TMP/canned.md' | grep -qF '/usr/lib/go-1.19/src/sync/map_bench_test.go (go test -bench, ns/op as saved in $TMP/canned-go.json)' &&
    head -n 1 '$TMP/canned.md' | grep -qF \"BACKEND ÷ sync.Map: the backend's ns/op over Go sync.Map's\""
check "--from-json: Go's maps, the backends, then a ratio column per backend" \
    line "| case | threads | Go sync.Map | Go sync_test.DeepCopyMap | Go sync_test.RWMutexMap | binlock | readmostly | binlock ÷ sync.Map | readmostly ÷ sync.Map |"
check "ratios: LoadMostlyHits, 1 thread" \
    line "| LoadMostlyHits | 1 | 25.9 | 25.8 | 26.9 | 4.3 | 4.7 | 0.17 | 0.18 |"
check "ratios: LoadMostlyHits, 2 threads (no readmostly Score: —)" \
    line "| LoadMostlyHits | 2 | 14.5 | — | — | 2.2 | — | 0.15 | — |"
check "ratios: Range, 1 thread" \
    line "| Range | 1 | 8206.0 | — | — | 7103.9 | 4672.6 | 0.87 | 0.57 |"
check "ratios: no Go sync.Map row gives —; a row with Go only has no ratio" sh -c "
    grep -qxF '| LoadOrStoreUnique | 1 | — | — | — | 267.8 | — | — | — |' '$TMP/canned.md' &&
    grep -qxF '| Range | 2 | 3765.0 | — | — | — | — | — | — |' '$TMP/canned.md'"
"$PY" "$SCRIPT" --from-json "$TMP/canned-go.json" --case LoadMostlyHits >"$TMP/goonly.md" 2>&1
check "--from-json without --chmbench: Go's columns only, --case honoured" sh -c "
    grep -qxF '| case | threads | Go sync.Map | Go sync_test.DeepCopyMap | Go sync_test.RWMutexMap |' '$TMP/goonly.md' &&
    ! grep -q '^| Range ' '$TMP/goonly.md'"

checklib_finish
