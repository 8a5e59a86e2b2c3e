#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench.sh CHMBENCH CHM_BACKENDS - chmbench end to end with tiny settings (about 15 s in
# all): the console table, the JMH JSON (parsed by python3), forks pooling samples, errors on
# invalid options and parameters, the size invariant failing loudly, the statistics self-test,
# and each benchmark: mix, falseshare (counters and backends), group (secondary metrics per
# role), resize and memory (single shot).
# Which backends have a property (a padding switch, thread safety) is asked of CHM_BACKENDS
# (bench/backends.c), never inferred from a name, so a backend added later needs no edit here.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench.sh path/to/chmbench path/to/chm_backends}
LIST=${2:?usage: test_chmbench.sh path/to/chmbench path/to/chm_backends}
. "$(dirname "$0")/checklib.sh"

ALL=$("$LIST")
SAFE=$("$LIST" THREAD_SAFE)
PADDED=$("$LIST" PADDING_SWITCH)
# the names of list $1 that are not in list $2, comma-separated, in $1's order
minus() {
    for n in $(echo "$1" | tr ',' ' '); do
        case ",$2," in *",$n,"*) ;; *) printf '%s\n' "$n" ;; esac
    done | paste -sd, -
}
SINGLE=$(minus "$ALL" "$SAFE")       # not thread-safe: chmbench runs them at one thread only
ONE_SINGLE=${SINGLE%%,*}             # one of them, for the runs that need one
NOT_PADDED=$(minus "$ALL" "$PADDED") # no padding switch: not a falseshare subject
ONE_PADDED=${PADDED%%,*}
N_PADDED=$(echo "$PADDED" | tr ',' '\n' | grep -c .)
PADDED_RE=$(echo "$PADDED" | tr ',' '|') # an ERE alternation
check "chm_backends: a backend with a padding switch ($PADDED), one without ($NOT_PADDED) and \
one that is not thread-safe ($SINGLE), as these checks need" \
    sh -c "[ -n '$ONE_PADDED' ] && [ -n '$NOT_PADDED' ] && [ -n '$ONE_SINGLE' ]"

# 1. the statistics: t quantiles, mean and error of a known sample, NaN for N <= 2
check "stats self-test" "$BENCH" --self-test

# 2. a tiny sweep: two library backends and a peer, two thread counts, two forks
"$BENCH" -wi 0 -i 3 -r 0.05 -f 2 -t 1,2 -p backend=segmented,rwlock,ck_ht -p keys=100 \
    -rf json -rff "$TMP/out.json" >"$TMP/table.txt" 2>"$TMP/err.txt"
rc=$?
check "sweep exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/err.txt"
check "table header has JMH's columns" \
    grep -Eq '^Benchmark +\(backend\) +\(dist\) +\(keys\) +\(reads\) +\(threads\) +\(workload\) +\(writes\) +Mode +Cnt +Score +Error +Units$' \
    "$TMP/table.txt"
check "one table row per configuration (6)" \
    [ "$(grep -Ec '^chm\.mix +(segmented|rwlock|ck_ht) +uniform +100 +90 +[12] +none +churn +thrpt +6 +[0-9.]+ ± +[0-9.]+ +ops/us$' "$TMP/table.txt")" -eq 6 ]
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
    assert set(r["params"]) == {"backend", "workload", "dist", "keys", "reads", "writes"}, r["params"]
    assert all(isinstance(v, str) for v in r["params"].values()), r["params"]
    m = r["primaryMetric"]
    for k in ("score", "scoreError", "scoreConfidence", "scoreUnit", "rawData"):
        assert k in m, k
    assert m["scoreUnit"] == "ops/us"
    raw = m["rawData"]
    assert len(raw) == 2 and all(len(f) == 3 for f in raw), raw
    flat = [x for f in raw for x in f]
    # a loaded machine may deschedule every thread for a whole short iteration: one sample may
    # be 0, the trial as a whole is not
    assert all(x >= 0 for x in flat) and sum(flat) > 0, flat
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
    grep -Eq '^chm\.mix +lfht +zipf +100 +50 +1 +none +churn +thrpt +2 +[0-9.]+ +ops/us$' "$TMP/n2.txt"
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
expect_error "group: bad readers" "readers must be a thread count in \[1, 64\], not 'many'" \
    -p readers=many group
expect_error "group: bad writers" "writers must be a thread count in \[1, 64\], not '0'" \
    -p writers=0 group
expect_error "resize: bad presize" "presize must be no or yes, not 'maybe'" -p presize=maybe resize
expect_error "resize: bad keys" "keys must be an integer in \[1, 2^30\], not '1e6'" -p keys=1e6 resize
expect_error "memory: unknown backend" "unknown backend 'nosuch'" -p backend=nosuch memory
expect_error "falseshare: subject without a padding switch" \
    "subject must be counters or a backend with a padding switch ($(echo "$PADDED" | sed 's/,/, /g')), not '${NOT_PADDED%%,*}'" \
    -p subject="${NOT_PADDED%%,*}" falseshare
expect_error "falseshare: bad layout" "layout must be packed, align64 or align128" \
    -p layout=sparse falseshare

# 5. a size-invariant violation fails the run loudly, through a fork
CHMBENCH_INJECT_SIZE_ERROR=1 "$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -p backend=binlock -p keys=10 \
    >"$TMP/v.out" 2>"$TMP/v.err"
vrc=$?
check "size invariant violation: non-zero exit and a message" \
    sh -c "[ $vrc -ne 0 ] && grep -q 'size invariant violated' '$TMP/v.err'"

# 6. falseshare (JMH sample 22): six counter configurations at two threads, counters verified;
#    then the backends' padding switch, packed vs padded, size invariant verified
"$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -t 2 falseshare >"$TMP/fs.txt" 2>"$TMP/fs.err"
check "falseshare exits 0" [ $? -eq 0 ]
check "falseshare: one row per layout x op (6)" \
    [ "$(grep -Ec '^chm\.falseshare +(packed|align64|align128) +(plain|atomic) +counters +2 +thrpt ' "$TMP/fs.txt")" -eq 6 ]
"$BENCH" -wi 0 -i 2 -r 0.02 -f 1 -t 2 -p subject="$PADDED" falseshare \
    -rff "$TMP/fsb.json" >"$TMP/fsb.txt" 2>"$TMP/fsb.err"
check "falseshare backends exit 0" [ $? -eq 0 ]
check "falseshare backends: packed and padded rows for each ($((2 * N_PADDED)))" \
    [ "$(grep -Ec "^chm\.falseshare +(packed|padded) +putremove +($PADDED_RE) +2 +thrpt +2 +[0-9.]+ +ops/us\$" "$TMP/fsb.txt")" -eq $((2 * N_PADDED)) ]
check "falseshare backends: JSON params and samples" python3 - "$TMP/fsb.json" "$PADDED" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
padded = sys.argv[2].split(",")
assert len(rs) == 2 * len(padded), len(rs)
got = {(r["params"]["subject"], r["params"]["layout"]) for r in rs}
assert got == {(s, l) for s in padded for l in ("packed", "padded")}, got
for r in rs:
    assert r["benchmark"] == "chm.falseshare" and r["mode"] == "thrpt" and r["threads"] == 2
    assert r["params"]["op"] == "putremove" and r["secondaryMetrics"] == {}
    assert len(r["primaryMetric"]["rawData"]) == 1 and len(r["primaryMetric"]["rawData"][0]) == 2
PY
"$BENCH" -wi 0 -i 1 -r 0.02 -f 0 -t 2 -p subject="counters,$ONE_PADDED" -p layout=packed,padded \
    -p op=plain,putremove falseshare >"$TMP/fsm.txt" 2>"$TMP/fsm.err"
check "falseshare: a mixed sweep skips what belongs to the other subject (3 rows, 5 skipped)" \
    sh -c "[ \$(grep -c '^chm\.falseshare ' '$TMP/fsm.txt') -eq 3 ] && [ \$(grep -c '^# skipped' '$TMP/fsm.err') -eq 5 ]"

# 7. group (JMH @Group): readers + writers threads, -t ignored, per-role secondary metrics
"$BENCH" -wi 0 -i 3 -r 0.02 -f 2 -t 1,2 -p backend="segmented,ck_ht,$ONE_SINGLE" -p keys=1000 \
    -p readers=1,2 -p writers=1 group -rff "$TMP/group.json" >"$TMP/group.txt" 2>"$TMP/group.err"
rc=$?
check "group exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/group.err"
check "group: primary, :reader and :writer rows (4 configurations x 3)" sh -c "
    [ \$(grep -Ec '^chm\.group +(segmented|ck_ht) +1000 +[12] +[23] +1 +thrpt +6 +[0-9.]+ ± +[0-9.]+ +ops/us\$' '$TMP/group.txt') -eq 4 ] &&
    [ \$(grep -Ec '^chm\.group:reader +(segmented|ck_ht) +1000 +[12] +[23] +1 +thrpt +6 ' '$TMP/group.txt') -eq 4 ] &&
    [ \$(grep -Ec '^chm\.group:writer +(segmented|ck_ht) +1000 +[12] +[23] +1 +thrpt +6 ' '$TMP/group.txt') -eq 4 ]"
check "group: $ONE_SINGLE (not thread-safe) skipped (no -t multiplication: 2 skips)" \
    [ "$(grep -c "^# skipped group backend=$ONE_SINGLE " "$TMP/group.err")" -eq 2 ]
check "group: JSON secondaryMetrics reader/writer sum to the primary" python3 - "$TMP/group.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
assert len(rs) == 4, len(rs)
for r in rs:
    assert r["benchmark"] == "chm.group" and r["mode"] == "thrpt" and r["forks"] == 2
    p = r["params"]
    assert set(p) == {"backend", "keys", "readers", "writers"} and all(isinstance(v, str) for v in p.values())
    assert r["threads"] == int(p["readers"]) + int(p["writers"]), (r["threads"], p)
    prim, sec = r["primaryMetric"], r["secondaryMetrics"]
    assert set(sec) == {"reader", "writer"}, sec
    for m in [prim] + list(sec.values()):
        for k in ("score", "scoreError", "scoreConfidence", "scorePercentiles", "scoreUnit", "rawData"):
            assert k in m, k
        assert m["scoreUnit"] == "ops/us"
        assert len(m["rawData"]) == 2 and all(len(f) == 3 for f in m["rawData"]), m["rawData"]
        # a role's threads -- or all threads -- may be descheduled for a whole 20 ms iteration
        # on a busy machine: a sample may be 0, a trial of 6 samples is not
        assert all(x >= 0 for f in m["rawData"] for x in f), m["rawData"]
    assert sum(x for f in prim["rawData"] for x in f) > 0, prim["rawData"]
    for f in range(2):
        for i in range(3):
            total = sec["reader"]["rawData"][f][i] + sec["writer"]["rawData"][f][i]
            assert abs(total - prim["rawData"][f][i]) <= 1e-9 * total, (total, prim["rawData"])
PY

# 8. resize (single shot): inserts/us plus worst_insert_us, exact sample counts, size checked
"$BENCH" -wi 1 -i 3 -f 2 -t 1,2 -p backend="binlock,lfht,$ONE_SINGLE" -p keys=1000 resize \
    -rff "$TMP/resize.json" >"$TMP/resize.txt" 2>"$TMP/resize.err"
rc=$?
check "resize exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/resize.err"
check "resize: primary and :worst_insert_us rows in mode ss (10 configurations)" sh -c "
    [ \$(grep -Ec '^chm\.resize +(binlock|lfht|$ONE_SINGLE) +1000 +(no|yes) +[12] +ss +6 +[0-9.]+ ± +[0-9.]+ +ops/us\$' '$TMP/resize.txt') -eq 10 ] &&
    [ \$(grep -Ec '^chm\.resize:worst_insert_us +(binlock|lfht|$ONE_SINGLE) +1000 +(no|yes) +[12] +ss +6 +[0-9.]+ ± +[0-9.]+ +us\$' '$TMP/resize.txt') -eq 10 ]"
check "resize: JSON mode ss, secondaryMetrics worst_insert_us, 2 forks x 3 samples" python3 - "$TMP/resize.json" "$SINGLE" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
single = sys.argv[2].split(",")  # not thread-safe (chm_backends): run at one thread only
assert len(rs) == 10, len(rs)  # the one that is not thread-safe skipped at 2 threads
for r in rs:
    assert r["benchmark"] == "chm.resize" and r["mode"] == "ss" and r["forks"] == 2
    assert set(r["params"]) == {"backend", "keys", "presize"}, r["params"]
    assert r["params"]["presize"] in ("no", "yes") and r["params"]["keys"] == "1000"
    assert r["params"]["backend"] not in single or r["threads"] == 1
    prim, sec = r["primaryMetric"], r["secondaryMetrics"]
    assert prim["scoreUnit"] == "ops/us" and set(sec) == {"worst_insert_us"}, sec
    w = sec["worst_insert_us"]
    assert w["scoreUnit"] == "us"
    for m in (prim, w):
        for k in ("score", "scoreError", "scoreConfidence", "scorePercentiles", "rawData"):
            assert k in m, k
        assert len(m["rawData"]) == 2 and all(len(f) == 3 for f in m["rawData"]), m["rawData"]
        assert all(x > 0 for f in m["rawData"] for x in f), m["rawData"]
    # The worst single insert lies inside the iteration: it cannot be longer than the iteration
    # (keys / score microseconds; 1% for the TSC-to-time conversion). Unlike "worst >= average"
    # this holds on a loaded machine too, where a thread may be delayed between its inserts.
    for f in range(2):
        for i in range(3):
            iteration_us = int(r["params"]["keys"]) / prim["rawData"][f][i]
            assert w["rawData"][f][i] <= iteration_us * 1.01, (w["rawData"], prim["rawData"])
PY
CHMBENCH_INJECT_SIZE_ERROR=1 "$BENCH" -wi 0 -i 1 -f 1 -p backend=segmented -p keys=100 \
    -p presize=no resize >"$TMP/rv.out" 2>"$TMP/rv.err"
rvrc=$?
check "resize: a wrong size fails the run (single-shot failure path, through a fork)" \
    sh -c "[ $rvrc -eq 1 ] && grep -q 'FAILED resize backend=segmented.*size 101' '$TMP/rv.err'"

# 9. memory (single shot): bytes per entry, one thread
"$BENCH" -wi 1 -i 3 -f 1 -t 1,2 -p keys=1000 -p presize=no,yes memory -rff "$TMP/mem.json" \
    >"$TMP/mem.txt" 2>"$TMP/mem.err"
rc=$?
check "memory exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/mem.err"
# every backend and peer memory runs by default, as `chmbench -l` lists them (a C++ peer missing
# from this build is reported skipped at both -t)
maps=$("$BENCH" -l | sed -n '/^  memory /,/^  [a-z]/s/.*-p backend .*(default \([^)]*\)).*/\1/p' | tr ',' ' ' | wc -w)
trials=$((2 * maps))
missing=$(grep -Ec '^# skipped memory backend=(cuckoo|tbb) .*threads=1: .*not found' "$TMP/mem.err")
check "memory: one row per backend x presize at 1 thread ($trials less missing peers), -t 2 skipped" sh -c "
    [ $maps -ge 5 ] &&
    [ \$(grep -Ec '^chm\.memory +[a-z_]+ +1000 +(no|yes) +1 +ss +3 +[0-9.]+ ± +[0-9.]+ +B/entry\$' '$TMP/mem.txt') -eq $((trials - missing)) ] &&
    [ \$(grep -c '^# skipped memory .*threads=2: one thread only' '$TMP/mem.err') -eq $((trials - missing)) ]"
check "memory: JSON B/entry, 3 samples, plausible sizes" python3 - "$TMP/mem.json" "$missing" "$trials" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
missing = int(sys.argv[2])  # skipped trials of missing peers at 1 thread (2 per peer)
trials = int(sys.argv[3])   # backends and peers x presize
# a missing peer is listed with "skipped" at both thread counts
assert len(rs) == trials + missing, (len(rs), missing, trials)
for r in rs:
    if "skipped" in r:
        assert r["params"]["backend"] in ("cuckoo", "tbb") and "primaryMetric" not in r, r
        continue
    assert r["benchmark"] == "chm.memory" and r["mode"] == "ss" and r["threads"] == 1
    assert set(r["params"]) == {"backend", "keys", "presize"} and r["secondaryMetrics"] == {}
    m = r["primaryMetric"]
    assert m["scoreUnit"] == "B/entry"
    assert len(m["rawData"]) == 1 and len(m["rawData"][0]) == 3, m["rawData"]
    # a key and a value are 16 bytes; no map here needs a kilobyte per entry
    assert all(16 <= x < 1024 for x in m["rawData"][0]), (r["params"], m["rawData"])
PY

# 10. mix writes=grow (the size grows by exactly the inserts) and backend variants with options
"$BENCH" -wi 0 -i 2 -r 0.05 -f 1 -t 2 \
    -p backend=readmostly,segmented:concurrency=1,rwlock:ck,rwlock:pthread,rwlock:adaptive \
    -p keys=100 -p writes=grow -p reads=50 >"$TMP/grow.txt" 2>"$TMP/grow.err"
check "mix writes=grow with variants exits 0" [ $? -eq 0 ]
check "one grow row per variant (5)" [ "$(grep -Ec '^chm\.mix +(readmostly|segmented:concurrency=1|rwlock:ck|rwlock:pthread|rwlock:adaptive) +uniform +100 +50 +2 +none +grow +thrpt' "$TMP/grow.txt")" -eq 5 ]
"$BENCH" -p backend=segmented:pthread mix >/dev/null 2>"$TMP/lockkind.err"
check "a lock kind on a backend without kinds is refused" sh -c \
    "[ $? -ne 0 ] && grep -q \"unknown backend 'segmented:pthread'\" '$TMP/lockkind.err'"
"$BENCH" -p backend=lfht:packed mix >/dev/null 2>"$TMP/variant.err"
check "a peer with options is refused with a message" sh -c \
    "[ $? -ne 0 ] && grep -q \"unknown backend 'lfht:packed'\" '$TMP/variant.err'"
"$BENCH" -p backend=binlock -p writes=sometimes mix >/dev/null 2>"$TMP/writes.err"
check "writes=sometimes is refused with a message" sh -c \
    "[ $? -ne 0 ] && grep -q 'writes must be churn or grow' '$TMP/writes.err'"

# 11. -l and -h
check "-l lists every benchmark" sh -c \
    "out=\$('$BENCH' -l) && for b in mix group falseshare resize memory; do echo \"\$out\" | grep -q \"^  \$b \" || exit 1; done"
check "-l lists every parameter" sh -c \
    "out=\$('$BENCH' -l) && for p in backend workload dist keys reads writes readers writers subject layout op presize; do echo \"\$out\" | grep -q -- \"-p \$p \" || exit 1; done"
check "-h documents every option" sh -c \
    "out=\$('$BENCH' -h) && for o in -p -t -wi -w -i -r -f -rf -rff -l -h; do echo \"\$out\" | grep -q -- \"^  \$o \" || exit 1; done"

# 12. progress and output order. stderr not a terminal: one plain line per trial run (skipped
#     configurations not counted), no control characters. stdout and stderr into one pipe: no
#     stderr text inside a table row, "# results written to" after the last row; the table is
#     over 4 KiB (a pipe's stdio buffer), so a fully buffered stdout would split it.
"$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -t 1,2 -p backend="binlock,$ONE_SINGLE" -p keys=100 \
    >"$TMP/pr.txt" 2>"$TMP/pr.err"
check "progress: exits 0" [ $? -eq 0 ]
check "progress: one line per trial run, [1/3] to [3/3] (4 configurations, 1 skipped)" sh -c "
    [ \$(grep -Ec '^# \[[1-3]/3\] mix backend=(binlock|$ONE_SINGLE) .* threads=[12]: [0-9.]+( ± [0-9.]+)? ops/us \([0-9.]+ (s|min|h) elapsed, ~[0-9.]+ (s|min|h) left\)\$' '$TMP/pr.err') -eq 3 ] &&
    [ \$(grep -Eo '^# \[[0-9]+/[0-9]+\]' '$TMP/pr.err' | sort -u | wc -l) -eq 3 ] &&
    [ \$(grep -c '^# skipped' '$TMP/pr.err') -eq 1 ]"
check "progress: no terminal control characters when stderr is a file" \
    sh -c "tr -d '\\033\\r' <'$TMP/pr.err' | cmp -s - '$TMP/pr.err'"
ROW='^chm\.mix +(segmented|binlock|rwlock) +uniform +(10|100) +(100|99|90|50|10|0) +[12] +none +churn +thrpt +[0-9.]+ +ops/us$'
HEADER='^Benchmark +\(backend\) +\(dist\) +\(keys\) +\(reads\) +\(threads\) +\(workload\) +\(writes\) +Mode +Cnt +Score +Error +Units$'
"$BENCH" -wi 0 -i 1 -r 0.01 -f 0 -t 1,2 -p backend=segmented,binlock,rwlock \
    -p reads=100,99,90,50,10,0 -p keys=10,100 -rff "$TMP/order.json" 2>&1 | cat >"$TMP/order.txt"
check "output order: 72 whole table rows, over 4 KiB, in a 2>&1 pipe" sh -c "
    [ \$(grep -Ec '$ROW' '$TMP/order.txt') -eq 72 ] &&
    [ \$(grep -E '$ROW' '$TMP/order.txt' | wc -c) -gt 4096 ]"
check "output order: one progress line per trial (72) in the same pipe" \
    [ "$(grep -Ec '^# \[[0-9]+/72\] mix .*left\)$' "$TMP/order.txt")" -eq 72 ]
check "output order: every line is the header, a row, a progress line or the results line" \
    [ "$(grep -Ev "$ROW|$HEADER|^# \[[0-9]+/72\] mix .*left\)\$|^# results written to $TMP/order\.json\$" "$TMP/order.txt" | wc -l)" -eq 0 ]
check "output order: '# results written to' is the last line, after the last row" \
    awk '/^chm\.mix / { last_row = NR } /^# results written to / { results = NR }
         END { exit !(results > last_row && results == NR) }' "$TMP/order.txt"

# 13. the result file's directories are created (README's `-rff results/example.json` in a fresh
#     checkout); one that cannot be created fails at once (status 2, nothing run)
"$BENCH" -wi 0 -i 1 -r 0.01 -f 0 -t 1 -p backend=unsafe -p keys=10 -p reads=100 \
    -rff "$TMP/new/dir/r.json" >/dev/null 2>&1
check "-rff into directories that do not exist yet: exit 0, JSON written" \
    sh -c "[ $? -eq 0 ] && python3 -m json.tool '$TMP/new/dir/r.json' >/dev/null"
: >"$TMP/plainfile"
"$BENCH" -wi 0 -i 1 -r 0.01 -f 0 -t 1 -p backend=unsafe -p keys=10 -p reads=100 \
    -rff "$TMP/plainfile/r.json" >"$TMP/rff.out" 2>"$TMP/rff.err"
check "-rff under a plain file: exit 2 before any trial, the reason named" \
    sh -c "[ $? -eq 2 ] && [ ! -s '$TMP/rff.out' ] && grep -q 'cannot create .*plainfile' '$TMP/rff.err'"

checklib_finish
