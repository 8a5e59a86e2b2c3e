#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_originals.sh CHMBENCH - the Java and Go originals in chmbench's mix, tiny
# settings (about 20 s): the Go child's unit tests; each original runs a mix trial (1 and 2
# threads; go:map at 1 only) with the size invariant checked in its child after the trial (and
# tools/compare_tables.py reads that run's JSON: binlock / java:chm rows),
# presets with opCounts, the same seed
# giving the same key stream in C, Java and Go (--dump-keys), an injected size error failing the
# run (java:segments' size() included), MapBench --self-test's checks of java:segments' Java 7
# map against its design (HashMap's answers through rehashes, segment by high hash bits, old
# chains untouched by a rehash that reuses their tails, size() locking nothing on a quiet map and
# everything under writers), a missing toolchain reported skipped with the reason (stderr and JSON), the first-use
# build, the benchmarks that cannot run originals skipping them, and -bm sample on java:chm and
# go:syncmap (the children's histograms: shapes, counts and monotone percentiles, never timing;
# the ported bucket function checked against C's values by go test and MapBench --self-test).
# A language whose toolchain is absent here has its checks skipped with a message; with neither,
# the script exits 77 (ctest: skipped). Prints "N passed, M failed"; exit 0 only when nothing
# failed.
BENCH=${1:?usage: test_chmbench_originals.sh path/to/chmbench}
. "$(dirname "$0")/checklib.sh"
RUN="-wi 0 -i 2 -r 0.05 -f 1"

# Which originals can run here: chmbench itself says so (--dump-keys exits 3 with the reason).
available() {
    "$BENCH" --dump-keys 1 -p backend="$1" >/dev/null 2>"$TMP/avail.err"
    rc=$?
    [ $rc -eq 3 ] && sed 's/^/# /' "$TMP/avail.err"
    return $rc
}
java=no go=no
available java:chm && java=yes
available go:syncmap && go=yes
echo "# originals runnable here: java $java, go $go"
if [ $java = no ] && [ $go = no ]; then
    echo "# neither java nor go: every originals check skipped (tools/install-deps.sh installs both)"
    exit 77
fi
originals=
[ $java = yes ] && originals="java:chm,java:sync,java:rwlock,java:segments"
[ $go = yes ] && originals="${originals:+$originals,}go:syncmap,go:rwmutex,go:map"

# 0. the Go program's own unit tests (its size-range check; the -bm sample histogram's bucket
#    function and text form against values C computed), offline in GOPATH mode as the build does
if [ $go = yes ]; then
    GO=${CHMBENCH_GO:-go}
    SRC=$(cd "$(dirname "$0")/../bench/originals/go" && pwd)
    check "go test of the go:* child program (mapbench_test.go, histogram_test.go)" \
        sh -c "cd '$SRC' && GO111MODULE=off GOFLAGS= CGO_ENABLED=0 GOPATH='$TMP/gopath' \
               GOCACHE='$TMP/gocache' '$GO' test . >'$TMP/gotest.out' 2>&1 || { cat '$TMP/gotest.out'; exit 1; }"
fi

# 1. a tiny churn trial per original at 1 and 2 threads, next to a C backend (size invariant
#    checked by each child after the trial: a violation would fail the run)
"$BENCH" $RUN -t 1,2 -p backend="binlock,$originals" -p keys=1000 -p reads=50 \
    -rff "$TMP/mix.json" >"$TMP/mix.txt" 2>"$TMP/mix.err"
rc=$?
check "mix with the originals exits 0 (every child's size invariant held)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/mix.err"
check "a table row per original and thread count; go:map skipped at 2 threads with the reason" \
    sh -c "for b in \$(echo '$originals' | tr , ' '); do for t in 1 2; do
        if [ \$b = go:map ] && [ \$t = 2 ]; then
            grep -q '^# skipped mix backend=go:map .*threads=2: not thread-safe' '$TMP/mix.err' || exit 1
        else
            grep -Eq \"^chm\\.mix +\$b +uniform +1000 +50 +\$t +none +churn +thrpt +2 +[0-9.]+ +ops/us\\\$\" '$TMP/mix.txt' || exit 1
        fi
    done; done"
# the Java program's self-test (built by the run above): its histogram against C's values, and
# java:segments' map (MapBench.Java7Map) against Java 7's design
if [ $java = yes ]; then
    CLASSES=${CHMBENCH_ORIGINALS_DIR:-$(dirname "$BENCH")/originals}/java
    check "MapBench --self-test: the -bm sample histogram is C's; java:segments behaves as Java 7's map" \
        sh -c "'${CHMBENCH_JAVA:-java}' -cp '$CLASSES' MapBench --self-test >'$TMP/jself.out' 2>&1 &&
               grep -q '^self-test ok' '$TMP/jself.out' || { cat '$TMP/jself.out'; exit 1; }"
fi
# make compare's ratio tables read a real run's JSON: binlock / java:chm at both thread counts
if [ $java = yes ]; then
    python3 "$(dirname "$0")/../tools/compare_tables.py" "$TMP/mix.json" >"$TMP/tables.md"
    check "tools/compare_tables.py on this run: binlock / java:chm rows at 1 and 2 threads" sh -c "
        grep -Eq '^\| binlock / java:chm \| 1,000 \| 1 \| [0-9]+\.[0-9]{2} \|\$' '$TMP/tables.md' &&
        grep -Eq '^\| binlock / java:chm \| 1,000 \| 2 \| [0-9]+\.[0-9]{2} \|\$' '$TMP/tables.md' || { cat '$TMP/tables.md'; exit 1; }"
fi
check "JSON: each original's trial with a positive ops/us score and 2 samples" \
    python3 - "$TMP/mix.json" "$originals" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
wanted = {(b, t) for b in sys.argv[2].split(",") for t in (1, 2)} - {("go:map", 2)}
got = {(r["params"]["backend"], r["threads"]): r for r in rs}
assert wanted <= set(got), sorted(wanted - set(got))
for key in wanted:
    m = got[key]["primaryMetric"]
    assert m["score"] > 0 and m["scoreUnit"] == "ops/us" and len(m["rawData"][0]) == 2, (key, m)
PY

# 2. presets (update included) and writes=grow at 2 threads, and zipf keys at 10^5 keys:
#    the children's preset loop, opCounts, size checks
"$BENCH" -wi 0 -i 1 -r 0.05 -f 1 -t 2 -p backend="$originals" -p keys=200 \
    -p workload=exchange,ycsb-a -rff "$TMP/preset.json" >"$TMP/preset.txt" 2>"$TMP/preset.err"
rc=$?
check "exchange and ycsb-a at 2 threads on the originals: exit 0 (size invariant held)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/preset.err"
check "presets: opCounts within a percentage point of the advertised mix" \
    python3 - "$TMP/preset.json" <<'PY'
import json, sys
mixes = {"exchange": (10, 40, 40, 10), "ycsb-a": (50, 0, 0, 50)}
rs = [r for r in json.load(open(sys.argv[1])) if "primaryMetric" in r]
assert rs
for r in rs:
    c = r["opCounts"]
    n = sum(c.values())
    got = [100 * c[k] / n for k in ("get", "put", "remove", "update")]
    want = mixes[r["params"]["workload"]]
    assert all(abs(g - w) < 1 for g, w in zip(got, want)), (r["params"], got)
PY
"$BENCH" -wi 0 -i 1 -r 0.05 -f 1 -t 2 -p backend="$originals" -p keys=100000 -p dist=zipf \
    -p writes=grow -p reads=50 >"$TMP/grow.txt" 2>"$TMP/grow.err"
rc=$?
check "writes=grow with zipf keys at 10^5 keys, 2 threads: exit 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/grow.err"

# 3. the same seed, the same operations and keys in C, Java and Go: the first 70000 draws of
#    threads 0 and 1 (past a whole 65536-key Zipf stream), for each of mix's loops
same_stream() { # same_stream NAME ARGS...: --dump-keys of binlock and every original agree
    name=$1
    shift
    "$BENCH" --dump-keys 70000 -t 2 -p backend=binlock "$@" >"$TMP/c.keys" 2>"$TMP/c.err" ||
        { bad "$name: C's dump"; cat "$TMP/c.err"; return; }
    for b in $(echo "$originals" | tr , ' '); do
        [ $b = go:map ] && continue # one thread only; go:rwmutex has the same program
        "$BENCH" --dump-keys 70000 -t 2 -p backend=$b "$@" >"$TMP/o.keys" 2>"$TMP/o.err" &&
            cmp -s "$TMP/c.keys" "$TMP/o.keys" ||
            { bad "$name: $b's draws differ from C's"; cmp "$TMP/c.keys" "$TMP/o.keys"; cat "$TMP/o.err"; return; }
    done
    [ "$(wc -l <"$TMP/c.keys")" -eq 140000 ] || { bad "$name: 140000 draws"; return; }
    ok "$name: C, Java and Go draw the same 2 x 70000 operations"
}
same_stream "uniform churn, seed 1" -p keys=1000 -p reads=90
same_stream "zipf churn at 10^6 keys, seed 7" --seed 7 -p keys=1000000 -p dist=zipf
same_stream "zipf grow loop, seed 3" --seed 3 -p keys=1000 -p dist=zipf -p writes=grow -p reads=50
same_stream "preset exchange with writes=grow" -p keys=1000 -p workload=exchange -p writes=grow
same_stream "preset ycsb-b (zipf, even keys)" --seed 11 -p keys=5000 -p workload=ycsb-b
"$BENCH" --dump-keys 1000 -t 2 --seed 2 -p backend=binlock >"$TMP/s2.keys"
"$BENCH" --dump-keys 1000 -t 2 --seed 1 -p backend=binlock >"$TMP/s1.keys"
check "another seed, other draws" sh -c "! cmp -s '$TMP/s1.keys' '$TMP/s2.keys'"
check "--dump-keys with two trials: exit 2 and a message" sh -c "
    '$BENCH' --dump-keys 5 -t 1,2 -p backend=binlock >/dev/null 2>'$TMP/d.err'; [ \$? -eq 2 ] &&
    grep -q 'needs one trial' '$TMP/d.err'"

# 4. a size-invariant violation in a child fails the run, with the child's message
for b in $( [ $java = yes ] && echo java:chm java:segments; [ $go = yes ] && echo go:rwmutex); do
    CHMBENCH_INJECT_SIZE_ERROR=1 "$BENCH" -wi 0 -i 1 -r 0.02 -f 1 -p backend=$b -p keys=10 \
        >/dev/null 2>"$TMP/v.err"
    vrc=$?
    check "$b: an injected size error fails the run (exit 1, the child's check named)" \
        sh -c "[ $vrc -eq 1 ] && grep -q 'FAILED mix backend=$b .*$b: size invariant violated' '$TMP/v.err'"
done

# 5. a missing toolchain: skipped with the reason on stderr and in the JSON, never absent (an
#    empty build directory and no java or go on PATH)
mkdir "$TMP/empty"
CHMBENCH_ORIGINALS_DIR="$TMP/empty" PATH=/nonexistent "$BENCH" $RUN \
    -p backend=java:chm,binlock,go:syncmap -p keys=100 -rff "$TMP/missing.json" \
    >"$TMP/missing.txt" 2>"$TMP/missing.err"
check "no toolchain: exit 0, binlock ran" sh -c "[ $? -eq 0 ] && grep -Eq '^chm\.mix +binlock ' '$TMP/missing.txt'"
check "no toolchain: a '# skipped' line naming the Debian package for each, no row" sh -c "
    grep -q '^# skipped mix backend=java:chm .*java. is not on PATH (Debian: openjdk-17-jdk-headless' '$TMP/missing.err' &&
    grep -q '^# skipped mix backend=go:syncmap .*go. is not on PATH (Debian: golang-go' '$TMP/missing.err' &&
    ! grep -Eq '^chm\.mix +(java|go):' '$TMP/missing.txt'"
check "no toolchain: JSON lists them in sweep order with \"skipped\" and no metrics" \
    python3 - "$TMP/missing.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
assert [r["params"]["backend"] for r in rs] == ["java:chm", "binlock", "go:syncmap"], rs
for r in (rs[0], rs[2]):
    assert "install-deps" in r["skipped"] and "primaryMetric" not in r, r
assert "skipped" not in rs[1]
PY
CHMBENCH_HIDE_PEERS=java:sync "$BENCH" $RUN -p backend=java:sync -p keys=100 >/dev/null \
    2>"$TMP/hidden.err"
check "CHMBENCH_HIDE_PEERS hides an original too" \
    grep -q '^# skipped mix backend=java:sync .*hidden by CHMBENCH_HIDE_PEERS' "$TMP/hidden.err"

# 6. the first-use build: an empty build directory, the toolchains on PATH
first="$TMP/first"
CHMBENCH_ORIGINALS_DIR="$first" "$BENCH" $RUN -p backend="$originals" -p keys=100 \
    >"$TMP/first.txt" 2>"$TMP/first.err"
rc=$?
check "first use: the programs are built into the empty directory and run" sh -c "
    [ $rc -eq 0 ] &&
    { [ $java = no ] || { [ -f '$first/java/MapBench.class' ] && grep -q '^# chmbench: compiling .*javac, first use' '$TMP/first.err'; }; } &&
    { [ $go = no ] || { [ -x '$first/go/mapbench' ] && grep -q '^# chmbench: building .*go build, first use' '$TMP/first.err'; }; }"
[ "$rc" -eq 0 ] || cat "$TMP/first.err"

# 7. only mix runs originals: elsewhere they are skipped with a note, and left out of defaults
one=${originals%%,*}
"$BENCH" -wi 0 -i 1 -f 1 -p backend=$one,binlock -p keys=1000 resize \
    >"$TMP/resize.txt" 2>"$TMP/resize.err"
check "resize names an original: skipped with 'runs in mix only', binlock runs" sh -c "
    [ $? -eq 0 ] && grep -q '^# skipped resize backend=$one .*runs in mix only' '$TMP/resize.err' &&
    grep -Eq '^chm\.resize +binlock ' '$TMP/resize.txt'"
check "-l: the originals are mix's default backends, not resize's or memory's" sh -c "
    '$BENCH' -l | grep -- '-p backend' | head -1 | grep -q 'tbb,java:chm,java:sync,java:rwlock,java:segments,go:syncmap,go:rwmutex,go:map)' &&
    ! '$BENCH' -l | sed -n '/^  resize/,\$p' | grep -q 'java:chm'"

# 8. -bm sample on the originals: each child times every 64th operation with its own clock into
#    histograms laid out as chmbench's and sends them as a C fork does; the parent pools them.
#    Only shapes, counts and monotone percentiles are checked, never a latency.
sampled=
[ $java = yes ] && sampled=java:chm
[ $go = yes ] && sampled="${sampled:+$sampled,}go:syncmap"
"$BENCH" -bm sample -wi 0 -i 1 -r 0.05 -f 1 -t 1,2 -p backend="$sampled" -p keys=200 \
    -p reads=50 -rff "$TMP/sample.json" >"$TMP/sample.txt" 2>"$TMP/sample.err"
rc=$?
check "-bm sample on $sampled at 1 and 2 threads: exit 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/sample.err"
check "-bm sample: a row per original and thread count with p50..max, and get, put, remove rows" \
    python3 - "$TMP/sample.txt" "$sampled" <<'PY'
import re, sys
table = open(sys.argv[1]).read()
N = r"[0-9]+\.[0-9]{3}"
assert re.search(r"^Benchmark .* +Mode +Cnt +Score +Error +p50 +p90 +p99 +p99\.9 +max +Units$", table, re.M)
for b in sys.argv[2].split(","):
    for t in (1, 2):
        for name in ("chm.mix", "chm.mix:get", "chm.mix:put", "chm.mix:remove"):
            row = r"^%s +%s +uniform +200 +50 +%d +none +churn +sample +[0-9]+ +%s ± +%s( +%s){5} +us/op$" % (
                re.escape(name), re.escape(b), t, N, N, N)
            assert re.search(row, table, re.M), (name, b, t)
PY
check "-bm sample: the note under the table names each child's clock" sh -c "
    { [ $java = no ] || grep -Eq '^# -bm sample: every 64th mix operation timed alone \(nanoTime\); timer overhead [0-9.]+(-[0-9.]+)? ns per timed operation, included in every figure; clock granularity [0-9.]+ ns' '$TMP/sample.txt'; } &&
    { [ $go = no ] || grep -Eq '^# -bm sample: every 64th mix operation timed alone \(go-monotonic\); timer overhead [0-9.]+(-[0-9.]+)? ns per timed operation, included in every figure; clock granularity [0-9.]+ ns' '$TMP/sample.txt'; }"
check "-bm sample JSON: sampleTimer names the clock, monotone scorePercentiles, counts within opCounts / 64" \
    python3 - "$TMP/sample.json" "$TMP/sample.txt" "$sampled" <<'PY'
import json, re, sys
rs = json.load(open(sys.argv[1]))
table = open(sys.argv[2]).read()
wanted = {(b, t) for b in sys.argv[3].split(",") for t in (1, 2)}
assert {(r["params"]["backend"], r["threads"]) for r in rs} == wanted, rs
KEYS = ["0.0", "50.0", "90.0", "95.0", "99.0", "99.9", "99.99", "99.999", "99.9999", "100.0"]
CLOCKS = {"java": "nanoTime", "go": "go-monotonic"}

def check_metric(m, label):
    assert m["scoreUnit"] == "us/op", (label, m["scoreUnit"])
    pct = m["scorePercentiles"]
    assert list(pct) == KEYS, (label, list(pct))
    values = [pct[k] for k in KEYS]
    # a child's clock may step coarser than an operation: 0 is a possible reading, never < 0
    assert all(isinstance(v, (int, float)) and v >= 0 for v in values), (label, values)
    assert values == sorted(values), (label, values)  # p0 <= p50 <= p90 <= ... <= p99.9 <= max
    assert values[0] <= m["score"] <= values[-1], (label, m["score"], values)
    hist = m["rawDataHistogram"]
    assert len(hist) == 1 and len(hist[0]) == 1 and len(m["rawData"][0]) == 1, label
    return sum(n for _, n in hist[0][0])

for r in rs:
    b, t = r["params"]["backend"], r["threads"]
    assert r["mode"] == "sample" and r["forks"] == 1, (b, t, r["mode"])
    timer = r["sampleTimer"]
    assert timer["clock"] == CLOCKS[b.split(":")[0]] and timer["every"] == 64, (b, timer)
    assert 0 <= timer["overheadNs"] < 1e6 and 0 < timer["granularityNs"] < 1e6, (b, timer)
    total = check_metric(r["primaryMetric"], (b, t))
    sec = r["secondaryMetrics"]
    assert list(sec) == ["get", "put", "remove"], (b, t, list(sec))
    kinds = {k: check_metric(m, (b, t, k)) for k, m in sec.items()}
    assert sum(kinds.values()) == total > 0, (b, t, kinds, total)
    row = re.search(r"^chm\.mix +%s +uniform +200 +50 +%d +none +churn +sample +(\d+) " % (re.escape(b), t), table, re.M)
    assert row and int(row.group(1)) == total, (b, t, row and row.group(1), total)
    # every 64th operation of the measured part: no more than test_chmbench_sample.sh allows C
    ops = sum(r["opCounts"].values())
    assert total <= ops / 64 + 2 * t * 4, (b, t, total, ops)
PY
CHMBENCH_ORIGINALS_DIR="$TMP/empty" PATH=/nonexistent "$BENCH" -bm sample -wi 0 -i 1 -r 0.02 \
    -f 1 -p backend=java:chm,binlock,go:syncmap -p keys=100 >"$TMP/nosample.txt" 2>"$TMP/nosample.err"
check "-bm sample with no toolchain: the originals skipped with the reason, binlock sampled" sh -c "
    [ $? -eq 0 ] && grep -Eq '^chm\.mix +binlock .* sample ' '$TMP/nosample.txt' &&
    grep -q '^# skipped mix backend=java:chm .*java. is not on PATH' '$TMP/nosample.err' &&
    grep -q '^# skipped mix backend=go:syncmap .*go. is not on PATH' '$TMP/nosample.err'"

checklib_finish
