#!/bin/sh
# test_chmbench.sh CHMBENCH - chmbench end to end with tiny settings (a few seconds in all):
# the console table, the JMH JSON (parsed by python3), forks pooling samples, errors on invalid
# options, the size invariant failing loudly, and the statistics self-test.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench.sh path/to/chmbench}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...: passes when COMMAND succeeds
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# 1. the statistics: t quantiles, mean and error of a known sample, NaN for N <= 2
check "stats self-test" "$BENCH" --self-test

# 2. a tiny sweep: two library backends and a peer, two thread counts, two forks
"$BENCH" -wi 0 -i 3 -r 0.05 -f 2 -t 1,2 -p backend=segmented,rwlock,ck_ht -p keys=100 \
    -rf json -rff "$TMP/out.json" >"$TMP/table.txt" 2>"$TMP/err.txt"
rc=$?
check "sweep exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/err.txt"
check "table header has JMH's columns" \
    grep -Eq '^Benchmark +\(backend\) +\(dist\) +\(keys\) +\(reads\) +\(threads\) +Mode +Cnt +Score +Error +Units$' \
    "$TMP/table.txt"
check "one table row per configuration (6)" \
    [ "$(grep -Ec '^chm\.mix +(segmented|rwlock|ck_ht) +uniform +100 +90 +[12] +thrpt +6 +[0-9.]+ ± +[0-9.]+ +ops/us$' "$TMP/table.txt")" -eq 6 ]
check "JSON parses (python3 -m json.tool)" python3 -m json.tool "$TMP/out.json" /dev/null
check "JSON has the contract's fields, 2 forks x 3 samples, params as strings" python3 - "$TMP/out.json" <<'PY'
import json, math, sys
results = json.load(open(sys.argv[1]))
assert isinstance(results, list) and len(results) == 6, len(results)
seen = set()
for r in results:
    for k in ("benchmark", "mode", "threads", "forks", "warmupIterations", "warmupTime",
              "measurementIterations", "measurementTime", "params", "primaryMetric"):
        assert k in r, k
    assert r["benchmark"] == "chm.mix" and r["mode"] == "thrpt" and r["forks"] == 2
    assert set(r["params"]) == {"backend", "dist", "keys", "reads"}, r["params"]
    assert all(isinstance(v, str) for v in r["params"].values()), r["params"]
    m = r["primaryMetric"]
    for k in ("score", "scoreError", "scoreConfidence", "scoreUnit", "rawData"):
        assert k in m, k
    assert m["scoreUnit"] == "ops/us"
    raw = m["rawData"]
    assert len(raw) == 2 and all(len(f) == 3 for f in raw), raw
    flat = [x for f in raw for x in f]
    assert all(x > 0 for x in flat), flat
    mean = sum(flat) / len(flat)
    assert abs(m["score"] - mean) < 1e-9 * mean, (m["score"], mean)
    s = math.sqrt(sum((x - mean) ** 2 for x in flat) / (len(flat) - 1))
    expected = 6.868826 * s / math.sqrt(len(flat))  # t(0.9995, 5)
    assert abs(m["scoreError"] - expected) < 1e-4 * expected + 1e-9, (m["scoreError"], expected)
    pct = m["scorePercentiles"]
    srt = sorted(flat)
    assert pct["0.0"] == srt[0] and pct["100.0"] == srt[-1], pct
    assert abs(pct["50.0"] - (srt[2] + srt[3]) / 2) < 1e-9 * mean, pct
    lo, hi = m["scoreConfidence"]
    assert abs(lo - (mean - m["scoreError"])) < 1e-6 and abs(hi - (mean + m["scoreError"])) < 1e-6
    seen.add((r["params"]["backend"], r["threads"]))
assert seen == {(b, t) for b in ("segmented", "rwlock", "ck_ht") for t in (1, 2)}, seen
PY

# 3. N <= 2: Error blank in the table, "NaN" in JSON; lfht and zipf in one go; no forks (-f 0)
"$BENCH" -wi 0 -i 2 -r 0.05 -f 0 -p backend=lfht -p keys=100 -p dist=zipf -p reads=50 \
    -rff "$TMP/n2.json" >"$TMP/n2.txt" 2>"$TMP/n2err.txt"
check "N=2 run exits 0" [ $? -eq 0 ]
check "N=2: no error column in the table" \
    grep -Eq '^chm\.mix +lfht +zipf +100 +50 +1 +thrpt +2 +[0-9.]+ +ops/us$' "$TMP/n2.txt"
check "N=2: scoreError is \"NaN\" in JSON" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[0]["primaryMetric"]
assert r["scoreError"] == "NaN" and r["scoreConfidence"] == ["NaN", "NaN"], r
assert len(r["rawData"]) == 1 and len(r["rawData"][0]) == 2
' "$TMP/n2.json"

# 4. errors: clear message, non-zero exit, nothing run
expect_error() { # expect_error NAME PATTERN ARGS...
    name=$1 pattern=$2
    shift 2
    "$BENCH" "$@" >"$TMP/e.out" 2>"$TMP/e.err"
    erc=$?
    if [ "$erc" -ne 0 ] && grep -q "$pattern" "$TMP/e.err"; then ok "$name"; else
        bad "$name (exit $erc)"
        cat "$TMP/e.err"
    fi
}
expect_error "unknown option" "unknown option '-zz'" -zz
expect_error "unknown backend" "unknown backend 'nosuch'" -p backend=nosuch -i 1 -r 0.01
expect_error "unknown parameter" "no selected benchmark has a parameter 'colour'" -p colour=red
expect_error "bad thread list" "\-t needs" -t 0
expect_error "bad duration" "\-r needs a duration" -r fast
expect_error "unknown benchmark" "unknown benchmark 'nosuch'" nosuch

# 5. a size-invariant violation fails the run loudly, through a fork
CHMBENCH_INJECT_SIZE_ERROR=1 "$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -p backend=binlock -p keys=10 \
    >"$TMP/v.out" 2>"$TMP/v.err"
vrc=$?
check "size invariant violation: non-zero exit and a message" \
    sh -c "[ $vrc -ne 0 ] && grep -q 'size invariant violated' '$TMP/v.err'"

# 6. falseshare (JMH sample 22): six configurations at two threads, counters verified
"$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -t 2 falseshare >"$TMP/fs.txt" 2>"$TMP/fs.err"
check "falseshare exits 0" [ $? -eq 0 ]
check "falseshare: one row per layout x op (6)" \
    [ "$(grep -Ec '^chm\.falseshare +(packed|align64|align128) +(plain|atomic) +2 +thrpt ' "$TMP/fs.txt")" -eq 6 ]

# 7. -l and -h
check "-l lists mix" sh -c "'$BENCH' -l | grep -q '^  mix '"
check "-h documents every option" sh -c \
    "out=\$('$BENCH' -h) && for o in -p -t -wi -w -i -r -f -rf -rff -l -h; do echo \"\$out\" | grep -q -- \"^  \$o \" || exit 1; done"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
