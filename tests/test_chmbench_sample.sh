#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_sample.sh CHMBENCH - chmbench -bm sample (JMH's SampleTime), tiny settings (a few
# seconds): mix and resize report per-operation latency in us/op, the table has p50 p90 p99
# p99.9 max and one row per operation kind, the JSON has JMH's SampleTime fields
# (scorePercentiles monotone, rawDataHistogram adding up to the count, per-kind
# secondaryMetrics, histograms pooled over forks), the timer overhead is stated, and -bm sample
# on a benchmark without it, or an unknown mode, is an error (exit 2).
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench_sample.sh path/to/chmbench}
. "$(dirname "$0")/checklib.sh"

# 1. mix: a library backend and a peer, 1 and 2 threads, 2 forks x 2 iterations
"$BENCH" -bm sample -wi 0 -i 2 -r 0.05 -f 2 -t 1,2 -p backend=binlock,ck_ht -p keys=1000 \
    -rff "$TMP/mix.json" >"$TMP/mix.txt" 2>"$TMP/mix.err"
rc=$?
check "mix -bm sample exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/mix.err"
N='[0-9]+\.[0-9]{3}'
check "table: Mode Cnt Score Error p50 p90 p99 p99.9 max Units" \
    grep -Eq '^Benchmark .* +Mode +Cnt +Score +Error +p50 +p90 +p99 +p99\.9 +max +Units$' "$TMP/mix.txt"
check "table: a sample row per configuration (4) and one per kind get, put, remove (12)" sh -c "
    [ \$(grep -Ec '^chm\.mix +(binlock|ck_ht) +uniform +1000 +90 +[12] +none +churn +sample +[0-9]+ +$N ± +$N( +$N){5} +us/op\$' '$TMP/mix.txt') -eq 4 ] &&
    [ \$(grep -Ec '^chm\.mix:(get|put|remove) +(binlock|ck_ht) +uniform +1000 +90 +[12] +none +churn +sample +[0-9]+ ' '$TMP/mix.txt') -eq 12 ] &&
    ! grep -q '^chm\.mix:update ' '$TMP/mix.txt'"
check "the timer overhead and granularity are stated under the table" \
    grep -Eq '^# -bm sample: every 64th mix operation timed alone \((rdtsc|clock_gettime)\); timer overhead [0-9.]+(-[0-9.]+)? ns per timed operation, included in every figure; clock granularity [0-9.]+ ns' \
    "$TMP/mix.txt"
check "JSON: JMH SampleTime fields, monotone scorePercentiles, histograms adding up" \
    python3 - "$TMP/mix.json" "$TMP/mix.txt" <<'PY'
import json, math, re, sys
rs = json.load(open(sys.argv[1]))
table = open(sys.argv[2]).read()
assert len(rs) == 4, len(rs)
KEYS = ["0.0", "50.0", "90.0", "95.0", "99.0", "99.9", "99.99", "99.999", "99.9999", "100.0"]

def check_metric(m, label):
    assert m["scoreUnit"] == "us/op", m["scoreUnit"]
    pct = m["scorePercentiles"]
    assert list(pct) == KEYS, list(pct)  # the contract's keys, as JMH writes them
    values = [pct[k] for k in KEYS]
    assert all(isinstance(v, float) and v > 0 for v in values), (label, values)
    assert values == sorted(values), (label, values)  # monotone
    assert values[0] <= m["score"] <= values[-1], (label, m["score"], values)
    lo, hi = m["scoreConfidence"]
    assert abs(lo - (m["score"] - m["scoreError"])) < 1e-9, m
    hist = m["rawDataHistogram"]
    assert len(hist) == 2 and all(len(f) == 2 for f in hist), label  # 2 forks x 2 iterations
    assert len(m["rawData"]) == 2 and all(len(f) == 2 for f in m["rawData"]), label
    count = 0
    for f in range(2):
        for i in range(2):
            pairs = hist[f][i]
            c = sum(n for _, n in pairs)
            count += c
            vs = [v for v, _ in pairs]
            assert vs == sorted(vs) and all(values[0] <= v <= values[-1] for v in vs), label
            # rawData = the iteration's mean, within the histogram's bucket precision
            mean = sum(v * n for v, n in pairs) / c
            assert abs(m["rawData"][f][i] - mean) <= 0.05 * mean + 0.011, (label, m["rawData"][f][i], mean)
    return count

for r in rs:
    assert r["mode"] == "sample" and r["forks"] == 2, r["mode"]
    b, t = r["params"]["backend"], r["threads"]
    timer = r["sampleTimer"]
    assert timer["every"] == 64 and timer["clock"] in ("rdtsc", "clock_gettime"), timer
    assert 0 < timer["overheadNs"] < 10000 and 0 < timer["granularityNs"] < 10000, timer
    total = check_metric(r["primaryMetric"], (b, t))
    sec = r["secondaryMetrics"]
    assert list(sec) == ["get", "put", "remove"], list(sec)
    kinds = {k: check_metric(m, (b, t, k)) for k, m in sec.items()}
    assert sum(kinds.values()) == total, (kinds, total)
    # the table's Cnt is the number of timed operations
    row = re.search(r"^chm\.mix +%s +uniform +1000 +90 +%d +none +churn +sample +(\d+) " % (b, t), table, re.M)
    assert row and int(row.group(1)) == total, (row and row.group(1), total)
    # sampled kinds follow the mix: 90 % get, 5 % put, 5 % remove
    assert total >= 500, total
    for k, want in (("get", 90), ("put", 5), ("remove", 5)):
        got = 100.0 * kinds[k] / total
        assert abs(got - want) <= 4, (k, got, want)
    # every 64th operation of the measured part: no more samples than operations / 64
    ops = sum(r["opCounts"].values())
    assert total <= ops / 64 + 2 * t * 4, (total, ops)
PY

# 2. resize: every insert timed, one kind (put), Cnt = forks x iterations x keys
"$BENCH" -bm sample -wi 0 -i 2 -f 1 -t 1,2 -p backend=segmented,lfht -p keys=5000 \
    -p presize=no resize -rff "$TMP/resize.json" >"$TMP/resize.txt" 2>"$TMP/resize.err"
rc=$?
check "resize -bm sample exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/resize.err"
check "resize: one sample row per configuration (4), Cnt 10000, no per-kind rows" sh -c "
    [ \$(grep -Ec '^chm\.resize +(segmented|lfht) +5000 +no +[12] +sample +10000 +$N ± +$N( +$N){5} +us/op\$' '$TMP/resize.txt') -eq 4 ] &&
    ! grep -q '^chm\.resize:' '$TMP/resize.txt'"
check "resize JSON: every insert timed, monotone percentiles, secondaryMetrics put only" \
    python3 - "$TMP/resize.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
assert len(rs) == 4, len(rs)
for r in rs:
    assert r["benchmark"] == "chm.resize" and r["mode"] == "sample"
    assert r["sampleTimer"]["every"] == 1
    for m in [r["primaryMetric"], r["secondaryMetrics"]["put"]]:
        values = list(m["scorePercentiles"].values())
        assert values == sorted(values) and values[0] > 0, values
        assert sum(n for f in m["rawDataHistogram"] for it in f for _, n in it) == 10000
    assert list(r["secondaryMetrics"]) == ["put"]
    assert r["primaryMetric"]["scorePercentiles"] == r["secondaryMetrics"]["put"]["scorePercentiles"]
PY

# 3. a preset's update kind gets its own row and histogram; in-process (-f 0) works too
"$BENCH" -bm sample -wi 0 -i 1 -r 0.05 -f 0 -t 2 -p backend=segmented -p workload=exchange \
    -rff "$TMP/ex.json" >"$TMP/ex.txt" 2>"$TMP/ex.err"
erc=$?
check "exchange under -bm sample, in-process: get, put, remove and update rows" sh -c "
    [ $erc -eq 0 ] && for k in get put remove update; do
        grep -Eq \"^chm\\.mix:\$k +segmented +uniform +1000 +10 +2 +exchange +churn +sample \" '$TMP/ex.txt' || exit 1
    done"
check "exchange JSON: secondaryMetrics get, put, remove, update" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[0]
assert list(r["secondaryMetrics"]) == ["get", "put", "remove", "update"], r["secondaryMetrics"].keys()
' "$TMP/ex.json"

# 4. errors: exit 2 before anything runs
"$BENCH" -bm sample group >"$TMP/g.out" 2>"$TMP/g.err"
check "-bm sample on group (no sample mode): exit 2 with a message" sh -c "
    [ $? -eq 2 ] && [ ! -s '$TMP/g.out' ] && grep -q \"benchmark 'group' runs in mode thrpt only\" '$TMP/g.err'"
"$BENCH" -bm avgt >/dev/null 2>"$TMP/m.err"
check "-bm avgt: exit 2 with a message" sh -c "[ $? -eq 2 ] && grep -q 'bm takes sample, thrpt or ss' '$TMP/m.err'"
check "-h documents -bm" sh -c "'$BENCH' -h | grep -q -- '^  -bm MODE '"
check "-l says which benchmarks have -bm sample" sh -c \
    "[ \$('$BENCH' -l | grep -c -- '-bm sample:') -eq 2 ]"

checklib_finish
