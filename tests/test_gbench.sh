#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_gbench.sh CHM_GBENCH PYTHON - chm_gbench (Google Benchmark through bench/gbench's C shim)
# with tiny settings: every run's exact result checks pass, the JSON parses and carries the
# ci999 aggregate with the right value, Google Benchmark's own compare.py reads it, a failing
# run is reported as an error with exit status 1, and unknown options are refused.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
# shellcheck disable=SC2086  # $TINY: word lists, split on purpose
GB=${1:?usage: test_gbench.sh path/to/chm_gbench python3}
PY=${2:-/usr/bin/python3}
COMPARE=${CHM_GBENCH_COMPARE:-/usr/share/benchmark/compare.py}
. "$(dirname "$0")/checklib.sh"
TINY="--keys=64 --benchmark_min_time=0.005"

# 1. two ops x a library backend and a peer x 1 and 2 threads, 3 repetitions each
"$GB" $TINY --threads=1,2 --benchmark_repetitions=3 \
    --benchmark_filter='^(get_hit|remove_reinsert)/(binlock|lfht)/' \
    --benchmark_out="$TMP/a.json" --benchmark_out_format=json >"$TMP/a.txt" 2>"$TMP/a.err"
rc=$?
check "run exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/a.txt" "$TMP/a.err"
check "console shows the ci999 aggregate" grep -q '^get_hit/binlock/keys:64/real_time/threads:2_ci999 ' "$TMP/a.txt"
check "JSON: 8 runs x 3 repetitions, no errors, ci999 = t(0.9995, 2) s / sqrt(3)" \
    "$PY" - "$TMP/a.json" <<'PY'
import json, math, sys
doc = json.load(open(sys.argv[1]))
rows = doc["benchmarks"]
assert "chm_gbench.ci999" in doc["context"], doc["context"]
runs = {}
for r in rows:
    assert not r.get("error_occurred"), r
    runs.setdefault(r["run_name"], []).append(r)
expected = {f"{op}/{b}/keys:64/real_time/threads:{t}"
            for op in ("get_hit", "remove_reinsert") for b in ("binlock", "lfht") for t in (1, 2)}
assert set(runs) == expected, sorted(runs)
T = 31.59905458  # t(0.9995, 2)
for name, rs in runs.items():
    its = [r for r in rs if r["run_type"] == "iteration"]
    aggs = {r["aggregate_name"]: r for r in rs if r["run_type"] == "aggregate"}
    assert len(its) == 3 and all(r["repetitions"] == 3 for r in its), name
    assert set(aggs) == {"mean", "median", "stddev", "cv", "ci999"}, (name, sorted(aggs))
    assert all(r["threads"] == int(name[-1]) and r["time_unit"] == "ns" for r in its), name
    for field in ("real_time", "map_ops"):
        x = [r[field] for r in its]
        assert all(v > 0 for v in x), (name, field, x)
        mean = sum(x) / 3
        s = math.sqrt(sum((v - mean) ** 2 for v in x) / 2)
        want, got = T * s / math.sqrt(3), aggs["ci999"][field]
        assert abs(got - want) <= 1e-6 * want + 1e-9, (name, field, got, want)
        assert abs(aggs["mean"][field] - mean) <= 1e-9 * mean, (name, field)
    assert aggs["ci999"]["aggregate_unit"] == "time", aggs["ci999"]
PY

# 2. compare.py (Debian libbenchmark-tools) reads two outputs and pairs the ci999 rows
"$GB" $TINY --threads=1 --benchmark_repetitions=2 --benchmark_filter='^get_hit/binlock/' \
    --benchmark_out="$TMP/b.json" >"$TMP/b.txt" 2>&1
check "second run exits 0" [ $? -eq 0 ]
#    compare.py imports scipy (python3-scipy: boost, sympy, OpenBLAS) for its U test, which
#    tools/install-deps.sh installs only on request. Without it, a stand-in module lets
#    compare.py load: gmean (its geometric-mean row) computed exactly, mannwhitneyu refusing to
#    run, which --no-utest ensures: what is tested is that compare.py reads our JSON and pairs
#    its rows.
if "$PY" -c 'import scipy.stats' 2>/dev/null; then
    scipy_path=
else
    mkdir -p "$TMP/no-scipy/scipy"
    : >"$TMP/no-scipy/scipy/__init__.py"
    cat >"$TMP/no-scipy/scipy/stats.py" <<'STANDIN'
import numpy
def gmean(a):  # scipy.stats.gmean's default: per column
    return numpy.exp(numpy.mean(numpy.log(numpy.asarray(a, dtype=float)), axis=0))
def mannwhitneyu(*args, **kwargs):
    raise RuntimeError("stand-in scipy: compare.py must run with --no-utest")
STANDIN
    scipy_path=$TMP/no-scipy
    echo "note: python3-scipy not installed: compare.py runs with a stand-in scipy (--no-utest)"
fi
PYTHONPATH=$scipy_path${PYTHONPATH:+:$PYTHONPATH} "$PY" "$COMPARE" --no-utest benchmarks \
    "$TMP/b.json" "$TMP/a.json" >"$TMP/cmp.txt" 2>&1
crc=$?
check "compare.py benchmarks b.json a.json exits 0" [ "$crc" -eq 0 ]
[ "$crc" -eq 0 ] || cat "$TMP/cmp.txt"
check "compare.py lists the ci999 row" grep -q 'get_hit/binlock/keys:64/real_time/threads:1_ci999' "$TMP/cmp.txt"

# 3. a run that cannot work (remove_reinsert gives every thread its own keys: 1 key, 2 threads)
#    is an error in the console and the JSON, and the exit status is 1
"$GB" --keys=1 --threads=2 --benchmark_min_time=0.005 --benchmark_repetitions=1 \
    --benchmark_filter='^remove_reinsert/segmented/' --benchmark_out="$TMP/e.json" \
    >"$TMP/e.txt" 2>&1
erc=$?
check "failing run: exit 1" [ "$erc" -eq 1 ]
check "failing run: ERROR OCCURRED with the reason" \
    grep -q "ERROR OCCURRED: 'remove_reinsert needs keys >= threads'" "$TMP/e.txt"
check "failing run: error_occurred in JSON" "$PY" -c '
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
assert len(rows) == 1 and rows[0]["error_occurred"], rows
' "$TMP/e.json"

# 4. options
"$GB" --no-such-option >"$TMP/o.txt" 2>&1
check "unknown option: exit 2" [ $? -eq 2 ]
"$GB" --keys=0 >"$TMP/o.txt" 2>&1
check "--keys=0: exit 2" [ $? -eq 2 ]
check "--help explains --keys and --threads" sh -c \
    "'$GB' --help | grep -q -- '--keys=LIST' && '$GB' --help | grep -q -- '--threads=LIST'"
check "unsafe is listed at one thread only" sh -c \
    "'$GB' --benchmark_list_tests | grep -q '^put/unsafe/keys:1000/real_time/threads:1\$' && \
     ! '$GB' --benchmark_list_tests | grep -q '^put/unsafe/.*threads:2'"

checklib_finish
