#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chmbench_churn.sh CHMBENCH [PLOT_SCRIPT PYTHON] - chmbench's churn benchmark at 1 s per
# trial (about 15 s in all): every library backend (the thread-safe ones at 2 writers, the others
# at 1) exits 0 with the value_free count check passing, and its JSON has the secondary metrics,
# exact counts (value_free calls = prefilled + inserted values; puts = removes) and a time series
# of at least 5 samples that the secondary metrics agree with; value_free=none and slow; a wrong
# count fails the run loudly; bad parameters and peers are refused. Then, when PYTHON has
# matplotlib, tools/plot_results.py draws the churn chart from those files. Nothing is asserted
# about throughput, RSS growth or timing: the machine is noisy.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
BENCH=${1:?usage: test_chmbench_churn.sh path/to/chmbench [tools/plot_results.py python3]}
PLOT=${2:-}
PY=${3:-}
. "$(dirname "$0")/checklib.sh"
RUN="-p duration=1 -p keys=1000"

# 1. errors: a peer (the message names the library backends, which the rest of the test uses),
#    a duration that is not whole seconds, an unknown value_free
"$BENCH" -p backend=ck_ht churn >/dev/null 2>"$TMP/peer.err"
rc=$?
check "a peer is refused (exit 2, library backends only)" \
    sh -c "[ $rc -eq 2 ] && grep -q \"backend 'ck_ht' is a peer.*library backends only\" '$TMP/peer.err'"
library=$(sed -n 's/.*library backends only (\(.*\))$/\1/p' "$TMP/peer.err")
check "the library backends are named: $library" [ -n "$library" ]
"$BENCH" -p duration=0.5 churn >/dev/null 2>"$TMP/d.err"
check "duration=0.5: exit 2 with the reason" \
    sh -c "[ $? -eq 2 ] && grep -q 'duration must be whole seconds' '$TMP/d.err'"
"$BENCH" -p value_free=maybe churn >/dev/null 2>"$TMP/v.err"
check "value_free=maybe: exit 2 with the reason" \
    sh -c "[ $? -eq 2 ] && grep -q 'value_free must be none, count or slow' '$TMP/v.err'"
check "-l: churn, 2 writers by default, one run per fork" sh -c \
    "'$BENCH' -l | grep -A1 '^  churn ' | grep -q -- '-t default 2; one run per fork'"

# 2. every library backend: the default list at the default 2 writers (the backends that are not
#    thread-safe are skipped with a note), then those at 1 writer
"$BENCH" $RUN -rff "$TMP/two.json" churn >"$TMP/two.txt" 2>"$TMP/two.err"
rc=$?
check "churn at 2 writers exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/two.err"
single=$(sed -n 's/^# skipped churn backend=\([^ ]*\) .*threads=2: not thread-safe.*/\1/p' \
    "$TMP/two.err" | paste -sd, -)
check "2 writers: a row per thread-safe backend, a skip note for the others (${single:-none})" \
    python3 - "$library" "$single" "$TMP/two.txt" <<'PY'
import re, sys
library, single = sys.argv[1].split(","), [b for b in sys.argv[2].split(",") if b]
rows = [l.split()[1] for l in open(sys.argv[3]) if re.match(r"chm\.churn +", l)]
assert sorted(rows + single) == sorted(library), (rows, single, library)
PY
if [ -n "$single" ]; then
    "$BENCH" $RUN -t 1 -p backend="$single" -rff "$TMP/one.json" churn >"$TMP/one.txt" \
        2>"$TMP/one.err"
    rc=$?
    check "churn at 1 writer ($single) exits 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$TMP/one.err"
else
    echo '[]' >"$TMP/one.json"
fi
check "table: the primary row and 5 secondary rows per backend, mode ss" python3 - \
    "$TMP/two.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
names = ("", ":pending_peak", ":pending_peak_after_warmup", ":bytes_peak", ":rss_peak_kb",
         ":rss_growth_second_half_kb")
units = ("ops/us", "objects", "objects", "B", "KiB", "KiB")
counts = [len(re.findall(rf"^chm\.churn{re.escape(n)} +\S+ +1 +1000 +2 +count +ss +-?[0-9.]+ +{u}$",
                         text, re.M)) for n, u in zip(names, units)]
assert len(set(counts)) == 1 and counts[0] > 0, counts
PY

# 3. the JSON of every backend: structure, exact counts, the series and the metrics from it
check "JSON: every library backend, secondary metrics, exact counts, a time series >= 5 samples" \
    python3 - "$library" "$TMP/two.json" "$TMP/one.json" <<'PY'
import json, sys
library = sys.argv[1].split(",")
rs = [r for path in sys.argv[2:] for r in json.load(open(path))]
assert sorted(r["params"]["backend"] for r in rs) == sorted(library), rs
metrics = {"pending_peak": "objects", "pending_peak_after_warmup": "objects", "bytes_peak": "B",
           "rss_peak_kb": "KiB", "rss_growth_second_half_kb": "KiB"}
for r in rs:
    b = r["params"]["backend"]
    assert r["benchmark"] == "chm.churn" and r["mode"] == "ss" and r["forks"] == 1, r
    assert r["warmupIterations"] == 0 and r["measurementIterations"] == 1, b
    assert r["params"] == {"backend": b, "keys": "1000", "duration": "1", "value_free": "count"}
    p = r["primaryMetric"]
    assert p["scoreUnit"] == "ops/us" and p["score"] > 0 and p["rawData"] == [[p["score"]]], b
    sec = r["secondaryMetrics"]
    assert {k: m["scoreUnit"] for k, m in sec.items()} == metrics, (b, sec)
    c = r["opCounts"]
    assert c["prefill"] == 1000 and c["put"] == c["remove"] > 0, (b, c)
    assert c["value_free"] == c["prefill"] + c["put"], (b, c)
    series = r["timeSeries"]
    assert isinstance(series, list) and len(series) == 1, (b, series)
    s = series[0]
    assert list(s) == ["t", "ops", "entries", "bytes", "pending", "rss_kb"], (b, list(s))
    n = len(s["t"])
    assert n >= 5 and all(len(v) == n for v in s.values()), (b, {k: len(v) for k, v in s.items()})
    assert all(a < z for a, z in zip(s["t"], s["t"][1:])) and s["t"][-1] >= 1, (b, s["t"])
    assert all(a <= z for a, z in zip(s["ops"], s["ops"][1:])), (b, s["ops"])
    assert s["ops"][-1] == c["put"] + c["remove"], (b, s["ops"][-1], c)
    assert s["entries"][-1] == 1000, (b, s["entries"])  # sampled after the writers stopped
    assert all(v >= 0 for k in ("bytes", "pending") for v in s[k]), b
    assert all(v > 0 for v in s["rss_kb"]), (b, s["rss_kb"])
    late = [i for i, t in enumerate(s["t"]) if t >= 0.5]
    expect = {"pending_peak": max(s["pending"]), "bytes_peak": max(s["bytes"]),
              "pending_peak_after_warmup": max(s["pending"][i] for i in late),
              "rss_peak_kb": max(s["rss_kb"]),
              "rss_growth_second_half_kb": s["rss_kb"][-1] - s["rss_kb"][late[0]]}
    got = {k: sec[k]["score"] for k in expect}
    assert got == expect, (b, got, expect)
PY

# 4. value_free=slow (freed in the removing call on one backend, in batches on another) and
#    none (no callback: no count, the size invariant only)
two=$(echo "$library" | tr , '\n' | grep -vx -e "$(echo "$single" | sed 's/,/\\|/g')" | head -n 2 |
    paste -sd, -)
"$BENCH" $RUN -p backend="$two" -p value_free=slow,none -rff "$TMP/vf.json" churn \
    >/dev/null 2>"$TMP/vf.err"
rc=$?
check "value_free=slow,none on $two exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$TMP/vf.err"
check "value_free=slow: exact count; none: no value_free counted" python3 - "$TMP/vf.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
assert len(rs) == 4, len(rs)
for r in rs:
    c = r["opCounts"]
    assert c["put"] == c["remove"] > 0, c
    if r["params"]["value_free"] == "slow":
        assert c["value_free"] == c["prefill"] + c["put"], c
    else:
        assert "value_free" not in c, c
PY

# 5. a wrong value_free count fails the trial loudly (one call hidden by a test hook)
b=$(echo "$two" | cut -d, -f1)
CHMBENCH_INJECT_FREE_ERROR=1 "$BENCH" $RUN -p backend="$b" churn >/dev/null 2>"$TMP/bad.err"
rc=$?
check "$b: a value_free count one short fails the run (exit 1, the counts named)" sh -c \
    "[ $rc -eq 1 ] && grep -Eq 'FAILED churn backend=$b .*value_free ran ([0-9]+) times, but [0-9]+ values left the map' '$TMP/bad.err'"

# 6. the chart, when PYTHON has matplotlib (as test_plot, plain builds pass Debian's python3)
if [ -n "$PLOT" ] && [ -n "$PY" ] && "$PY" -c 'import matplotlib' 2>/dev/null; then
    "$PY" "$PLOT" -o "$TMP/png" "$TMP/two.json" "$TMP/one.json" >"$TMP/written.txt" \
        2>"$TMP/plot.err"
    rc=$?
    check "plot_results.py on the churn results exits 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$TMP/plot.err"
    check "a churn PNG per thread count, real PNGs, reported" "$PY" - "$TMP/png" \
        "$TMP/written.txt" "$single" <<'PY'
import os, struct, sys
png, written, single = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3]
names = ["churn-t1.png", "churn-t2.png"] if single else ["churn.png"]
assert sorted(os.listdir(png)) == names, os.listdir(png)
for n in names:
    data = open(os.path.join(png, n), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", n
    w, h = struct.unpack(">II", data[16:24])
    assert w >= 600 and h >= 600 and len(data) > 20000, (n, w, h, len(data))
    assert os.path.join(png, n) in written, (n, written)
PY
    # what is drawn: three panels (pending, bytes, RSS) with one line per backend in its colour,
    # and a caption line per backend
    check "the chart: 3 panels, a line per backend in its colour each, a caption per backend" \
        env PYTHONDONTWRITEBYTECODE=1 "$PY" - "$PLOT" "$TMP/two.json" "$TMP/drawn" <<'PY'
import contextlib, importlib.util, io, json, sys
from matplotlib.colors import to_rgba
spec = importlib.util.spec_from_file_location("plot_results", sys.argv[1])
p = importlib.util.module_from_spec(spec)
spec.loader.exec_module(p)
figs = []
p.save = lambda fig, outdir, name, written: (figs.append(fig), written.append(name))
with contextlib.redirect_stdout(io.StringIO()):
    p.main(["-o", sys.argv[3], sys.argv[2]])  # nothing is written there: save is replaced
backends = [r["params"]["backend"] for r in json.load(open(sys.argv[2]))]
assert len(figs) == 1, figs
axes = [ax for ax in figs[0].axes if ax.get_visible()]
assert len(axes) == 3, len(axes)
for ax, what in zip(axes, ("objects", "MB", "RSS")):
    assert what in ax.get_ylabel(), ax.get_ylabel()
    colours = sorted(to_rgba(l.get_color()) for l in ax.get_lines())
    assert colours == sorted(to_rgba(p.colour(b)) for b in backends), (ax.get_ylabel(), colours)
assert "time" in axes[-1].get_xlabel()
caption = "\n".join(t.get_text() for t in figs[0].texts)
assert all(f"{b}: pending peak" in caption for b in backends), caption
assert "second half" in caption, caption
PY
else
    echo "# skipped: the chart (no python3 with matplotlib given: '${PY}')"
fi

checklib_finish
