#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_plot.sh PLOT_SCRIPT PYTHON CHMBENCH - tools/plot_results.py on tiny chmbench result files:
# one PNG per benchmark chmbench lists (mix, falseshare, and memory, resize, group when present),
# each a real, non-empty PNG; a benchmark it does not know gets the generic chart; "NaN" errors
# are accepted; no results at all is an error. Then, on synthetic results, what is drawn: no error
# bar below zero (10 +- 30 spans 0 to 40), both axes labelled, throughput "summed over threads",
# one colour per backend across runs with different backend orders, and a note where unsafe is
# missing from a 2-thread panel.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
# shellcheck disable=SC2086  # $RUN and $expected: word lists, split on purpose
PLOT=${1:?usage: test_plot.sh tools/plot_results.py python3 path/to/chmbench}
PY=${2:?python3}
BENCH=${3:?chmbench}
. "$(dirname "$0")/checklib.sh"
listed() { "$BENCH" -l | grep -q "^  $1 "; }

# 1. tiny result files; -i 3 gives a real error bar, -i 2 the "NaN" one
RUN="-wi 0 -r 0.01 -f 1"
expected="mix falseshare"
"$BENCH" $RUN -i 3 -t 1,2 -p backend=binlock,ck_ht,unsafe -p keys=100 -p reads=100,50 \
    -rff "$TMP/mix.json" mix >/dev/null 2>&1
check "chmbench mix" [ $? -eq 0 ]
"$BENCH" $RUN -i 2 -t 2 -rff "$TMP/falseshare.json" falseshare >/dev/null 2>&1
check "chmbench falseshare" [ $? -eq 0 ]
for b in memory resize; do
    if listed $b; then
        "$BENCH" $RUN -i 2 -p backend=binlock,ck_ht -p keys=1000 -rff "$TMP/$b.json" $b \
            >/dev/null 2>&1
        check "chmbench $b" [ $? -eq 0 ]
        expected="$expected $b"
    fi
done
if listed group; then
    "$BENCH" $RUN -i 2 -p backend=binlock,ck_ht -p keys=100 -rff "$TMP/group.json" group \
        >/dev/null 2>&1
    check "chmbench group" [ $? -eq 0 ]
    expected="$expected group"
fi
# a benchmark the script has no chart for: the generic one
cat >"$TMP/other.json" <<'EOF'
[{"benchmark": "chm.other", "mode": "thrpt", "threads": 1, "params": {"backend": "binlock"},
  "primaryMetric": {"score": 1.5, "scoreError": "NaN", "scoreUnit": "ops/us", "rawData": [[1.5]]},
  "secondaryMetrics": {}}]
EOF
expected="$expected other"

# 2. the charts
"$PY" "$PLOT" -o "$TMP/png" --suffix=-t "$TMP"/*.json >"$TMP/written.txt" 2>"$TMP/plot.err"
prc=$?
check "plot_results.py exits 0" [ "$prc" -eq 0 ]
[ "$prc" -eq 0 ] || cat "$TMP/plot.err"
for b in $expected; do
    check "$b-t.png is a non-empty PNG, and reported" "$PY" -c '
import struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])  # IHDR
assert w >= 300 and h >= 200 and len(data) > 5000, (w, h, len(data))
assert path in open(sys.argv[2]).read().split(), "not in the output"
' "$TMP/png/$b-t.png" "$TMP/written.txt"
done
check "one PNG per benchmark, nothing else" \
    [ "$(find "$TMP/png" -type f | wc -l)" -eq "$(echo $expected | wc -w)" ]

# 3. nothing to plot is an error
echo '[]' >"$TMP/empty.json"
"$PY" "$PLOT" -o "$TMP/none" "$TMP/empty.json" >/dev/null 2>&1
check "no results: exit 1" [ $? -eq 1 ]

# 4. what the charts draw, from synthetic results: the figures are taken from the script before
# they are saved and their artists read back
cat >"$TMP/drawn.py" <<'EOF'
import contextlib, importlib.util, io, json, os, subprocess, sys
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer, ErrorbarContainer

plot_path, tmp = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("plot_results", plot_path)
p = importlib.util.module_from_spec(spec)
spec.loader.exec_module(p)


def check(name, cond, detail=""):
    """One line per check for the shell to count."""
    line = name + ("" if cond else f" ({detail})")
    print(("ok  " if cond else "FAIL"), line.replace("\n", " / "))


def result(bench, threads, score, err, mode="thrpt", unit="ops/us", **params):
    return {"benchmark": bench, "mode": mode, "threads": threads, "params": params,
            "primaryMetric": {"score": score, "scoreError": err, "scoreUnit": unit}}


def mix(backend, threads, reads, score=20.0, err=2.0):
    return result("chm.mix", threads, score, err, backend=backend, keys="100", reads=reads)


def resize(backend, threads, presize, score=3.0, err=0.5):
    return result("chm.resize", threads, score, err, mode="ss", backend=backend, keys="1000",
                  presize=presize)


inputs = {  # the same backends in different orders; score 10 +- 30 in every chart
    "mix_a": [mix("binlock", 1, "100"), mix("binlock", 1, "50", 10.0, 30.0),
              mix("unsafe", 1, "100"), mix("unsafe", 1, "50"), mix("ck_ht", 1, "100"),
              mix("ck_ht", 1, "50"), mix("binlock", 2, "100"), mix("ck_ht", 2, "100")],
    "mix_b": [mix("ck_ht", 1, "100"), mix("readmostly", 1, "100"), mix("binlock", 1, "100"),
              mix("java:chm", 1, "100"), mix("segmented:concurrency=256", 1, "100")],
    "falseshare": [result("chm.falseshare", 2, 10.0, 30.0, subject="counters", layout="packed",
                          op="plain"),
                   result("chm.falseshare", 2, 900.0, 50.0, subject="counters",
                          layout="align64", op="plain")],
    "resize": [resize("ck_ht", 1, "no", 10.0, 30.0), resize("binlock", 1, "no"),
               resize("unsafe", 1, "no"), resize("ck_ht", 1, "yes"), resize("binlock", 1, "yes"),
               resize("unsafe", 1, "yes"), resize("ck_ht", 2, "no"), resize("binlock", 2, "no")],
}
figs = {}  # (input, PNG name) -> figure


def keep(fig, outdir, name, written):
    figs[(current, name)] = fig
    written.append(name)


p.save = keep
for current, results in inputs.items():  # one run of the script per input
    path = os.path.join(tmp, current + ".json")
    with open(path, "w") as f:
        json.dump(results, f)
    with contextlib.redirect_stdout(io.StringIO()):
        p.main(["-o", tmp, path])


def axes(key):
    return [ax for ax in figs[key].axes if ax.get_visible()]


def segments(key):
    """The error bars: ((x, low), (x, high)) each; a NaN error has none."""
    return [seg for ax in axes(key) for c in ax.collections if isinstance(c, LineCollection)
            for seg in c.get_segments() if len(seg) == 2]


def backend_colours(key):
    """{backend: {colours}}: mix lines by their label, bars by the backend under them."""
    seen = {}
    for ax in axes(key):
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        for c in ax.containers:
            if isinstance(c, ErrorbarContainer) and not c.get_label().startswith("_"):
                seen.setdefault(c.get_label(), set()).add(to_rgba(c.lines[0].get_color()))
            elif isinstance(c, BarContainer):
                for bar in c.patches:
                    b = ticks[round(bar.get_x() + bar.get_width() / 2)]
                    seen.setdefault(b, set()).add(to_rgba(bar.get_facecolor()))
    return seen


charts = {("mix_a", "mix.png"), ("mix_b", "mix.png"), ("falseshare", "falseshare.png"),
          ("resize", "resize.png")}
check("the synthetic charts are the expected ones", set(figs) == charts, sorted(figs))
for key in sorted(charts):
    segs = segments(key)
    lows = [min(s[0][1], s[1][1]) for s in segs]
    check(f"{key[1]} from {key[0]}: no error bar below zero", segs and min(lows) >= 0,
          f"lowest {min(lows, default=None)}")
    if key[0] != "mix_b":
        check(f"{key[1]} from {key[0]}: 10 +- 30 drawn from 0 to 40",
              any(sorted((s[0][1], s[1][1])) == [0, 40] for s in segs),
              sorted({(s[0][1], s[1][1]) for s in segs}))
    for ax in axes(key):
        check(f"{key[1]} from {key[0]}: '{ax.get_title()}' has both axis labels",
              ax.get_xlabel() and ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel()))
for key in (("mix_a", "mix.png"), ("falseshare", "falseshare.png")):
    check(f"{key[1]}: the y axis says the rate is summed over threads",
          all("summed over threads" in ax.get_ylabel() for ax in axes(key)),
          [ax.get_ylabel() for ax in axes(key)])
legend = axes(("falseshare", "falseshare.png"))[0].get_legend()
check("falseshare.png: legend titled 'layout'",
      legend is not None and legend.get_title().get_text() == "layout")

colours = {}
for key in (("mix_a", "mix.png"), ("mix_b", "mix.png"), ("resize", "resize.png")):
    for b, cs in backend_colours(key).items():
        colours.setdefault(b, set()).update(cs)
for b in ("binlock", "ck_ht", "unsafe"):
    check(f"{b}: one colour in three charts with different backend orders",
          len(colours.get(b, ())) == 1, colours.get(b))
distinct = {min(cs) for cs in colours.values()}
check("different backends, different colours", len(distinct) == len(colours), colours)
names = ["libcuckoo", "tbb", "go:syncmap", "binlock:nonesuch", "some_new_peer"]
runs = [subprocess.run([sys.executable, "-c", "import importlib.util, sys\n"
                        "s = importlib.util.spec_from_file_location('p', sys.argv[1])\n"
                        "p = importlib.util.module_from_spec(s); s.loader.exec_module(p)\n"
                        "print([p.colour(n) for n in sys.argv[2:]])", plot_path, *names],
                       env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True, text=True)
        for seed in ("1", "2")]
check("colours of other names do not change from run to run",
      all(r.returncode == 0 for r in runs) and runs[0].stdout == runs[1].stdout,
      [(r.returncode, r.stdout, r.stderr[-200:]) for r in runs])

for key, threads in ((("mix_a", "mix.png"), 2), (("resize", "resize.png"), 2)):
    note = f"unsafe: single-threaded only, not run at {threads} threads"
    titles = [ax.get_title() for ax in axes(key)]
    check(f"{key[1]}: the {threads}-thread panel says why unsafe is missing",
          [note in t for t in titles] == [f"threads={threads}" in t for t in titles], titles)
EOF
mkdir "$TMP/synthetic"
# importing the script would otherwise leave tools/__pycache__ in the source tree
PYTHONDONTWRITEBYTECODE=1 "$PY" "$TMP/drawn.py" "$PLOT" "$TMP/synthetic" >"$TMP/drawn.out" \
    2>"$TMP/drawn.err"
irc=$?
check "the synthetic charts could be inspected" [ "$irc" -eq 0 ]
[ "$irc" -eq 0 ] || cat "$TMP/drawn.err"
while read -r status name; do
    if [ "$status" = ok ]; then ok "$name"; else bad "$name"; fi
done <"$TMP/drawn.out"

checklib_finish
