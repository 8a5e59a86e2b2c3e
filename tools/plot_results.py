#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""plot_results.py - PNG charts from chmbench's JMH JSON result files (docs/harness.md, "Plots").

usage: plot_results.py [-o OUTDIR] [--prefix P] [--suffix S] RESULT.json [RESULT.json ...]

Reads one or more files written by `chmbench -rf json -rff FILE` (a top-level array of JMH
results) and writes, into OUTDIR (default: the current directory), one PNG per kind of result
present (<P> and <S> are the prefix and suffix, empty by default; <S> goes before ".png"):

  chm.mix         <P>mix[-<dist>][-<writes>].png  Score (ops/us) vs read %, one line per
                                        backend, one panel per (keys, threads)
  chm.falseshare  <P>falseshare.png     bars per layout within each op, one panel per subject
  chm.memory      <P>memory.png         B/entry per backend, one panel per (keys, presize)
  chm.resize      <P>resize.png         inserts/us per backend, bars per presize, per keys
  chm.group       <P>group.png          total, reader and writer ops/us per backend
  chm.churn       <P>churn[-<vf>][-keys<k>][-t<t>].png  pending objects, the map's bytes and
                                        RSS over time, one line per backend, one figure per
                                        (value_free, keys, threads); the caption gives what the
                                        second half added (flat after warm-up: about nothing)
  anything else   <P><name>.png         one bar per result, labelled by its parameters

How to read them:
  - Error bars are the 99.9% confidence interval of each Score (JMH's scoreError, else its
    scoreConfidence), cut at zero: no throughput or size is negative, so a bar that ends at 0
    means "the Error is larger than the Score". An Error of "NaN" (N <= 2) draws no bar.
  - Each backend and peer has the same colour in every chart and every run (COLOURS; a variant
    such as segmented:concurrency=256 gets a shade of its base's colour and a dashed line, and
    an unlisted name a colour derived from the name), so charts can be compared side by side.
  - Throughput axes say "summed over threads": chmbench adds up each thread's rate, as JMH does.
  - A panel that lacks a backend shown elsewhere in the same chart says so under its title
    (chmbench runs a backend that is not thread-safe, such as unsafe, at one thread only: a
    backend with results at one thread only, in a chart with results at more, is said to be
    single-threaded).

Prints the path of every file written; exits 1 when nothing could be plotted. Needs matplotlib
(Debian: python3-matplotlib; run with /usr/bin/python3 if `python3` is another installation).
"""
import argparse
import json
import math
import os
import sys
import zlib
from collections import OrderedDict, defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.colors as mcolors  # noqa: E402  (after use())
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# One colour per backend and peer, whatever the order or the set of names in a file, so that
# "binlock is blue" holds in every chart. Variants are listed as shades of their base so that
# the ones in use never collide; java:chm etc. are peers that may join later.
COLOURS = {
    "unsafe": "#8c8c8c",
    "rwlock": "#d62728",
    "rwlock:ck": "#ff9896",
    "rwlock:adaptive": "#ef3b2c",
    "rwlock:pthread": "#67000d",
    "segmented": "#2ca02c",
    "segmented:concurrency=1": "#98df8a",
    "segmented:concurrency=256": "#145a14",
    "segmented:packed": "#6fcf5f",
    "binlock": "#1f77b4",
    "binlock:packed": "#9ecae1",
    "readmostly": "#9467bd",
    "readmostly:packed": "#c5b0d5",
    "ck_ht": "#ff7f0e",
    "lfht": "#8c564b",
    "java:chm": "#e377c2",
    "go:syncmap": "#17becf",
    "libcuckoo": "#bcbd22",
    "tbb": "#000080",
}
# falseshare's series are layouts, not backends: the false-sharing case warm, the padded cool
LAYOUT_COLOURS = {"packed": "#d95f02", "align64": "#1b9e77", "align128": "#0f5c46",
                  "padded": "#1b9e77"}
SERIES_HATCHES = ("", "//", "..", "xx", "\\\\", "oo")
MIX_DODGE = 0.05  # x offset between backends' points at one read %, at most
NEUTRAL = "#d0d0d0"  # bars that belong to no backend
# where bar charts put their legend: beside the panel, where it cannot hide a bar or an error bar
BESIDE = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}


def stable_hash(name):
    """Python's hash() of a str changes from run to run (PYTHONHASHSEED); CRC-32 does not."""
    return zlib.crc32(name.encode())


def shade(colour, amount):
    """colour moved amount (0..1) of the way towards white, or towards black if negative."""
    rgb = mcolors.to_rgb(colour)
    target = 1.0 if amount > 0 else 0.0
    return tuple(c + (target - c) * abs(amount) for c in rgb)


def is_variant(name):
    """base:options with a listed base; java:chm and the like are peers' own names."""
    base, sep, _ = name.partition(":")
    return bool(sep) and base in COLOURS


def colour(name):
    """The colour of a backend or peer in every chart: listed, a shade of its base, or hashed."""
    if name in COLOURS:
        return COLOURS[name]
    h = stable_hash(name)
    if is_variant(name):
        # 0.2 to 0.6 of the way to black (even hash) or white (odd)
        amount = 0.2 + 0.4 * ((h >> 1) % 101) / 100
        return shade(COLOURS[name.partition(":")[0]], amount if h & 1 else -amount)
    return tuple(mcolors.hsv_to_rgb((h % 360 / 360, 0.7, 0.75)))


def line_style(name):
    return "--" if is_variant(name) else "-"


def number(v):
    """JMH writes NaN and infinities as strings; anything unusable becomes NaN."""
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return {"NaN": math.nan, "+INF": math.inf, "-INF": -math.inf}.get(v, math.nan)
    return math.nan


def interval(metric):
    """(score, low, high): the 99.9% interval of a JMH metric, its low end cut at zero (no
    throughput or size is negative); low and high are NaN when JMH has no Error (N <= 2)."""
    score = number(metric.get("score"))
    err = number(metric.get("scoreError"))
    conf = [number(c) for c in metric.get("scoreConfidence") or []]
    if math.isfinite(err):
        low, high = score - err, score + err
    elif len(conf) == 2 and all(math.isfinite(c) for c in conf):
        low, high = conf
    else:
        return score, math.nan, math.nan  # matplotlib draws no bar for a NaN error
    return score, max(low, 0.0), high


def error_bars(metrics):
    """(scores, yerr) for matplotlib: asymmetric, so that the cut at zero shows."""
    ivs = [interval(m) for m in metrics]
    scores = [s for s, _, _ in ivs]
    yerr = [[s - lo for s, lo, _ in ivs], [hi - s for s, _, hi in ivs]]
    # none at all when every Error is 0 or missing: zero-length bars would still draw caps
    return scores, yerr if any(e > 0 for side in yerr for e in side) else None


def sort_key(v):
    """Numbers in numeric order, then strings."""
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def ordered(values):
    return sorted(set(values), key=sort_key)


def backend_order(results):
    """The backends of results in one order for every chart: COLOURS' (the library's, then the
    peers; a variant after its base), then unlisted names as they first appear."""
    seen = list(OrderedDict.fromkeys(r["params"]["backend"] for r in results
                                     if "backend" in r["params"]))
    rank = {name: i for i, name in enumerate(COLOURS)}

    def key(name):
        base = name.partition(":")[0] if is_variant(name) else name
        return (rank.get(name, rank.get(base, len(rank))), name not in rank, seen.index(name))

    return sorted(seen, key=key)


def load(paths):
    results = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise SystemExit(f"plot_results.py: {path}: not a JMH result array")
        for r in data:
            if not isinstance(r, dict) or "benchmark" not in r or "primaryMetric" not in r:
                continue
            r.setdefault("params", {})
            r.setdefault("threads", 1)
            results.append(r)
    return results


def grid(n):
    cols = min(n, 2 if n <= 4 else 3)
    rows = (n + cols - 1) // cols
    return rows, cols


def panels(n, title, width=6.0, height=4.0):
    rows, cols = grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    fig.suptitle(title)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def unit_of(results):
    units = {r["primaryMetric"].get("scoreUnit", "") for r in results}
    return units.pop() if len(units) == 1 else "/".join(sorted(units))


def axis_unit(results):
    """The y-axis label: the unit, and for throughput what it is a rate of."""
    unit = unit_of(results).replace("/us", "/µs")
    if unit == "ops/µs" and all(r.get("mode", "thrpt") == "thrpt" for r in results):
        return "ops/µs, summed over threads"
    return unit


def single_threaded(results):
    """The backends of results that have results at one thread only while others have some at
    more. chmbench skips a backend that is not thread-safe above one thread (it asks the
    library's CHM_CAP_THREAD_SAFE), and its JSON shows that only by the missing results, so
    that is what is read here: no list of names to keep up to date."""
    threads = {}
    for r in results:
        threads.setdefault(r["params"].get("backend"), set()).add(r["threads"])
    if max((t for ts in threads.values() for t in ts), default=1) <= 1:
        return set()
    return {b for b, ts in threads.items() if b is not None and ts == {1}}


def panel_title(ax, title, chart_backends, panel_backends, threads, single=frozenset()):
    """The title, plus a line for each backend of the chart that this panel lacks, so that a
    missing line or bar is not read as a zero or as a plotting bug. single: the chart's
    single_threaded() backends."""
    lines = [title]
    for b in chart_backends:
        if b in panel_backends:
            continue
        if b in single and threads > 1:
            lines.append(f"{b}: single-threaded only, not run at {threads} threads")
        else:
            lines.append(f"{b}: no result in this panel")
    ax.set_title("\n".join(lines))


def grouped_bars(ax, groups, series, metric, colour_of, hatch_of):
    """Bars for every (group, series) pair that metric(group, series) has a JMH metric for;
    missing pairs leave a gap. Bars are coloured by colour_of(group, series) and hatched by
    hatch_of(series)."""
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        xs, ms, cs = [], [], []
        for j, g in enumerate(groups):
            m = metric(g, s)
            if m is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ms.append(m)
                cs.append(colour_of(g, s))
        if xs:
            scores, yerr = error_bars(ms)
            ax.bar(xs, scores, width, yerr=yerr, capsize=3, color=cs, hatch=hatch_of(s),
                   edgecolor="black", linewidth=0.5, label=str(s))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups], rotation=30 if len(groups) > 4 else 0,
                       ha="right" if len(groups) > 4 else "center")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)


def hatch_legend(ax, series, hatch_of, title):
    """Bars are coloured by backend, so the series (presize, role) is told apart by hatching."""
    if len(series) > 1:
        ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=hatch_of(s),
                                 label=str(s)) for s in series],
                  title=title, fontsize="small", **BESIDE)


SUFFIX = ""  # --suffix


def save(fig, outdir, name, written):
    root, ext = os.path.splitext(name)
    path = os.path.join(outdir, root + SUFFIX + ext)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")  # "tight": keeps a legend outside the axes
    plt.close(fig)
    written.append(path)


def plot_mix(results, outdir, prefix, written):
    # one figure per (dist, writes): the key distribution and the write kind (churn | grow)
    def kind(r):
        return (r["params"].get("dist", "uniform"), r["params"].get("writes", "churn"))

    kinds = sorted(set(kind(r) for r in results))
    for dist, writes in kinds:
        rs = [r for r in results if kind(r) == (dist, writes)]
        backends = backend_order(rs)
        keys = ordered(r["params"].get("keys", "?") for r in rs)
        threads = ordered(r["threads"] for r in rs)
        cells = [(k, t) for k in keys for t in threads
                 if any(r["params"].get("keys", "?") == k and r["threads"] == t for r in rs)]
        fig, axes = panels(len(cells), f"chm.mix ({dist}, writes={writes}): throughput vs read %, "
                                        f"error bars = 99.9% CI (cut at 0)")
        for ax, (k, t) in zip(axes, cells):
            cell = [r for r in rs if r["params"].get("keys", "?") == k and r["threads"] == t]
            reads = ordered(r["params"].get("reads", "?") for r in cell)
            for b in backend_order(cell):
                pts = sorted(((r["params"].get("reads", "?"), r["primaryMetric"]) for r in cell
                              if r["params"].get("backend") == b), key=lambda p: sort_key(p[0]))
                scores, yerr = error_bars([m for _, m in pts])
                # each backend a little to the side, so that error bars at one read % do not
                # hide each other
                dodge = min(MIX_DODGE, 0.6 / len(backends)) * (
                    backends.index(b) - (len(backends) - 1) / 2)
                ax.errorbar([reads.index(p[0]) + dodge for p in pts], scores, yerr=yerr,
                            marker="o", capsize=3, label=b, color=colour(b),
                            linestyle=line_style(b))
            ax.set_xticks(range(len(reads)))
            ax.set_xlim(-0.5, len(reads) - 0.5)
            ax.set_xticklabels([f"{v}%" for v in reads])
            ax.set_xlabel("reads, % of operations")
            ax.set_ylabel(axis_unit(cell))
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            panel_title(ax, f"keys={k}, threads={t}", backends, backend_order(cell), t,
                        single_threaded(rs))
        # one legend for the figure: the colours are the same in every panel, and a legend
        # inside a panel hides its points
        fig.legend(handles=[Line2D([], [], color=colour(b), linestyle=line_style(b), marker="o",
                                   label=b) for b in backends],
                   title="backend", loc="center left", bbox_to_anchor=(1.0, 0.5))
        name = "mix"
        if len(set(d for d, _ in kinds)) > 1:
            name += f"-{dist}"
        if len(set(w for _, w in kinds)) > 1:
            name += f"-{writes}"
        name += ".png"
        save(fig, outdir, prefix + name, written)


def plot_falseshare(results, outdir, prefix, written):
    subjects = list(OrderedDict.fromkeys(r["params"].get("subject", "counters") for r in results))
    threads = ordered(r["threads"] for r in results)
    cells = [(s, t) for s in subjects for t in threads
             if any(r["params"].get("subject", "counters") == s and r["threads"] == t
                    for r in results)]
    fig, axes = panels(len(cells), "chm.falseshare: throughput per memory layout, "
                                   "error bars = 99.9% CI (cut at 0)")
    for ax, (s, t) in zip(axes, cells):
        cell = [r for r in results
                if r["params"].get("subject", "counters") == s and r["threads"] == t]
        table = {(r["params"].get("op", "?"), r["params"].get("layout", "?")): r["primaryMetric"]
                 for r in cell}
        ops = ordered(o for o, _ in table)
        layouts = [l for l in LAYOUT_COLOURS if any(k[1] == l for k in table)]
        layouts += ordered(l for _, l in table if l not in layouts)
        grouped_bars(ax, ops, layouts, lambda o, l: table.get((o, l)),
                     lambda o, l: LAYOUT_COLOURS.get(l) or colour(l), lambda l: None)
        ax.set_xlabel("op, each thread on its own counter or keys")
        ax.set_ylabel(axis_unit(cell))
        ax.legend(title="layout", fontsize="small", **BESIDE)
        ax.set_title(f"subject={s}, threads={t}")
    save(fig, outdir, prefix + "falseshare.png", written)


def plot_by_backend(results, outdir, prefix, written, cell_params, series_param, title,
                    ylabel, filename):
    """Bars per backend in its colour; one panel per combination of cell_params and threads;
    one hatched bar per value of series_param."""
    def combo_of(r):
        return tuple(r["params"].get(p, "-") for p in cell_params) + (r["threads"],)

    def series_of(r):
        return r["params"].get(series_param, "-") if series_param else ""

    backends = backend_order(results)
    combos = ordered(combo_of(r) for r in results)
    series = ordered(series_of(r) for r in results)

    def hatch(s):
        return SERIES_HATCHES[series.index(s) % len(SERIES_HATCHES)]

    fig, axes = panels(len(combos), title)
    for ax, combo in zip(axes, combos):
        cell = [r for r in results if combo_of(r) == combo]
        table = {(r["params"].get("backend"), series_of(r)): r["primaryMetric"] for r in cell}
        present = backend_order(cell)
        grouped_bars(ax, present, series, lambda b, s: table.get((b, s)),
                     lambda b, s: colour(b), hatch)
        hatch_legend(ax, series, hatch, series_param)
        ax.set_xlabel("backend")
        ax.set_ylabel(ylabel)
        label = ", ".join(f"{p}={v}" for p, v in zip(cell_params, combo) if v != "-")
        threads = combo[-1]
        panel_title(ax, f"{label}, threads={threads}" if label else f"threads={threads}",
                    backends, present, threads, single_threaded(results))
    save(fig, outdir, prefix + filename, written)


def plot_group(results, outdir, prefix, written):
    def combo_of(r):
        return (r["params"].get("keys", "-"), r["params"].get("readers", "-"),
                r["params"].get("writers", "-"))

    backends = backend_order(results)
    combos = ordered(combo_of(r) for r in results)
    roles = ["total"] + ordered(role for r in results for role in r.get("secondaryMetrics", {}))

    def hatch(role):
        return SERIES_HATCHES[roles.index(role) % len(SERIES_HATCHES)]

    fig, axes = panels(len(combos), "chm.group: total and per-role throughput, "
                                    "error bars = 99.9% CI (cut at 0)")
    for ax, (k, rd, wr) in zip(axes, combos):
        cell = [r for r in results if combo_of(r) == (k, rd, wr)]
        table = {}
        for r in cell:
            b = r["params"].get("backend")
            table[(b, "total")] = r["primaryMetric"]
            for role, m in r.get("secondaryMetrics", {}).items():
                table[(b, role)] = m
        present = backend_order(cell)
        grouped_bars(ax, present, roles, lambda b, s: table.get((b, s)),
                     lambda b, s: colour(b), hatch)
        hatch_legend(ax, roles, hatch, "throughput of")
        ax.set_xlabel("backend")
        ax.set_ylabel(axis_unit(cell))
        panel_title(ax, f"keys={k}, readers={rd}, writers={wr}", backends, present,
                    max(r["threads"] for r in cell), single_threaded(results))
    save(fig, outdir, prefix + "group.png", written)


def second_half(series, duration):
    """What one run's series did after its warm-up (the samples at t >= duration / 2): the
    peak of pending, and the growth of bytes and RSS from the first such sample to the last."""
    t = series.get("t") or []
    late = [i for i, x in enumerate(t) if number(x) >= duration / 2]
    if not late:
        return None

    def growth(col):
        v = [number(x) for x in series.get(col) or []]
        return v[late[-1]] - v[late[0]] if len(v) == len(t) else math.nan

    pending = [number(series["pending"][i]) for i in late] if "pending" in series else []
    return {"pending_peak": max(pending, default=math.nan),
            "pending_peak_all": max((number(x) for x in series.get("pending") or []),
                                    default=math.nan),
            "bytes": growth("bytes"), "rss_kb": growth("rss_kb"),
            "rss_at_half_kb": number((series.get("rss_kb") or [math.nan] * len(t))[late[0]])}


CHURN_PANELS = (  # (column, y label, scale) from top to bottom
    ("pending", "removed, not yet freed (objects)", 1.0),
    ("bytes", "held by the map (MB, chm_stats bytes)", 1e-6),
    ("rss_kb", "process RSS (MB)", 1.024e-3),
)


def plot_churn(results, outdir, prefix, written):
    """One figure per (value_free, keys, threads): pending, bytes and RSS over time, one line
    per backend (every fork drawn, in the backend's colour), the warm-up half shaded, and a
    caption with what the second half added."""
    results = [r for r in results if r.get("timeSeries")]
    if not results:
        return

    def combo_of(r):
        return (r["params"].get("value_free", "-"), r["params"].get("keys", "-"), r["threads"])

    combos = ordered(combo_of(r) for r in results)
    varies = [len({c[i] for c in combos}) > 1 for i in range(3)]
    for combo in combos:
        vf, keys, threads = combo
        rs = [r for r in results if combo_of(r) == combo]
        backends = backend_order(rs)
        duration = max(number(r["params"].get("duration", "nan")) for r in rs)
        if not math.isfinite(duration):
            duration = max(number(x) for r in rs for s in r["timeSeries"] for x in s["t"])
        fig, axes = plt.subplots(len(CHURN_PANELS), 1, figsize=(9.0, 9.0), sharex=True)
        fig.suptitle(f"chm.churn: keys inserted and removed forever (keys={keys}, "
                     f"{threads} writer thread{'s' if threads != 1 else ''}, value_free={vf})")
        caption = []
        for b in backends:
            runs = [s for r in rs if r["params"].get("backend") == b for s in r["timeSeries"]]
            for ax, (col, label, scale) in zip(axes, CHURN_PANELS):
                for s in runs:
                    if col in s:
                        ax.plot([number(x) for x in s["t"]], [number(x) * scale for x in s[col]],
                                color=colour(b), linestyle=line_style(b), linewidth=1.2)
            halves = [h for h in (second_half(s, duration) for s in runs) if h]
            if halves:  # the worst fork
                h = max(halves, key=lambda h: h["rss_kb"] if math.isfinite(h["rss_kb"]) else 0)
                rss_pct = 100 * h["rss_kb"] / h["rss_at_half_kb"] if h["rss_at_half_kb"] else math.nan
                caption.append(
                    f"{b}: pending peak {h['pending_peak']:.0f} after warm-up "
                    f"({h['pending_peak_all']:.0f} over the run); second half: bytes "
                    f"{h['bytes'] / 1024:+.0f} KiB, RSS {h['rss_kb']:+.0f} KiB ({rss_pct:+.1f}%)")
            else:  # a run so short or so starved that no sample fell in its second half
                caption.append(f"{b}: pending peak n/a (no sample in the second half)")
        for ax, (col, label, scale) in zip(axes, CHURN_PANELS):
            ax.axvspan(0, duration / 2, color=NEUTRAL, alpha=0.3, linewidth=0)
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            ax.set_xlim(0, duration * 1.02)
            ax.grid(alpha=0.3)
        axes[0].set_title("shaded: the first half, a warm-up; flat afterwards = what is retired "
                          "is freed as fast", fontsize="small")
        axes[-1].set_xlabel("time since the writers started (s)")
        fig.legend(handles=[Line2D([], [], color=colour(b), linestyle=line_style(b), label=b)
                            for b in backends],
                   title="backend", loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.text(0.01, 0.0, "Flatness (second half = after warm-up):\n" + "\n".join(caption),
                 ha="left", va="top", fontsize="small")
        name = "churn"
        for part, vary in zip((vf, f"keys{keys}", f"t{threads}"), varies):
            if vary:
                name += f"-{part}"
        save(fig, outdir, prefix + name + ".png", written)


def plot_generic(bench, results, outdir, prefix, written):
    labels = []
    for r in results:
        params = ",".join(f"{k}={v}" for k, v in sorted(r["params"].items()))
        labels.append(f"{params} t={r['threads']}" if params else f"t={r['threads']}")
    scores, yerr = error_bars([r["primaryMetric"] for r in results])
    colours = [colour(r["params"]["backend"]) if "backend" in r["params"] else NEUTRAL
               for r in results]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(results) + 2), 5))
    ax.bar(range(len(scores)), scores, yerr=yerr, capsize=3, color=colours, edgecolor="black",
           linewidth=0.5)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize="small")
    ax.set_xlabel("parameters, t = threads")
    ax.set_ylabel(axis_unit(results))
    ax.set_ylim(bottom=0)
    ax.set_title(f"{bench}, error bars = 99.9% CI (cut at 0)")
    ax.grid(axis="y", alpha=0.3)
    save(fig, outdir, prefix + bench.split(".", 1)[-1].replace(":", "_") + ".png", written)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", metavar="RESULT.json")
    ap.add_argument("-o", "--outdir", default=".")
    ap.add_argument("--prefix", default="", help="prepended to every PNG name")
    ap.add_argument("--suffix", default="", help='inserted before ".png" in every PNG name')
    args = ap.parse_args(argv)
    global SUFFIX
    SUFFIX = args.suffix

    results = load(args.files)
    by_bench = defaultdict(list)
    for r in results:
        by_bench[r["benchmark"]].append(r)
    os.makedirs(args.outdir, exist_ok=True)
    written = []
    for bench, rs in by_bench.items():
        if bench == "chm.mix":
            plot_mix(rs, args.outdir, args.prefix, written)
        elif bench == "chm.falseshare":
            plot_falseshare(rs, args.outdir, args.prefix, written)
        elif bench == "chm.memory":
            plot_by_backend(rs, args.outdir, args.prefix, written, ("keys", "presize"), None,
                            "chm.memory: heap bytes per entry (lower is leaner)",
                            "B/entry (heap bytes held per entry)", "memory.png")
        elif bench == "chm.resize":
            plot_by_backend(rs, args.outdir, args.prefix, written, ("keys",), "presize",
                            "chm.resize: inserts into a new map (grown vs presized), "
                            "error bars = 99.9% CI (cut at 0)",
                            "inserts/µs, all threads together", "resize.png")
        elif bench == "chm.group":
            plot_group(rs, args.outdir, args.prefix, written)
        elif bench == "chm.churn" and any(r.get("timeSeries") for r in rs):
            plot_churn(rs, args.outdir, args.prefix, written)
        else:
            plot_generic(bench, rs, args.outdir, args.prefix, written)
    for path in written:
        print(path)
    if not written:
        print("plot_results.py: no results to plot", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
