#!/usr/bin/python3
"""plot_results.py - PNG charts from chmbench's JMH JSON result files (docs/harness.md, "Plots").

usage: plot_results.py [-o OUTDIR] [--prefix P] [--suffix S] RESULT.json [RESULT.json ...]

Reads one or more files written by `chmbench -rf json -rff FILE` (a top-level array of JMH
results) and writes, into OUTDIR (default: the current directory), one PNG per kind of result
present (<P> and <S> are the prefix and suffix, empty by default; <S> goes before ".png"):

  chm.mix         <P>mix[-<dist>][-<writes>].png  Score (ops/us), 99.9% error bars, vs read %,
                                        one line per backend, one panel per (keys, threads)
  chm.falseshare  <P>falseshare.png     bars per layout within each op, one panel per subject
  chm.memory      <P>memory.png         B/entry per backend, one panel per (keys, presize)
  chm.resize      <P>resize.png         inserts/us per backend, bars per presize, per keys
  chm.group       <P>group.png          total, reader and writer ops/us per backend
  anything else   <P><name>.png         one bar per result, labelled by its parameters

Prints the path of every file written; exits 1 when nothing could be plotted. Needs matplotlib
(Debian: python3-matplotlib; run with /usr/bin/python3 if `python3` is another installation).
"""
import argparse
import json
import math
import os
import sys
from collections import OrderedDict, defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after use())


def number(v):
    """JMH writes NaN and infinities as strings; anything unusable becomes NaN."""
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return {"NaN": math.nan, "+INF": math.inf, "-INF": -math.inf}.get(v, math.nan)
    return math.nan


def error_bar(v):
    """Half-width for matplotlib: 0 when JMH has none (N <= 2)."""
    e = number(v)
    return e if math.isfinite(e) else 0.0


def sort_key(v):
    """Numbers in numeric order, then strings."""
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def ordered(values):
    return sorted(set(values), key=sort_key)


def backend_order(results):
    """Backends in the order they first appear (chmbench's order: the library's, then peers)."""
    seen = OrderedDict()
    for r in results:
        b = r["params"].get("backend")
        if b is not None:
            seen.setdefault(b, None)
    return list(seen)


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


def grouped_bars(ax, groups, series, value, err=None, ylabel=""):
    """Bars for every (group, series) pair that has a value; missing pairs leave a gap."""
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        xs, ys, es = [], [], []
        for j, g in enumerate(groups):
            v = value(g, s)
            if v is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(v)
            es.append(err(g, s) if err else 0.0)
        if xs:
            ax.bar(xs, ys, width, yerr=es if any(es) else None, capsize=3, label=str(s))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups], rotation=30 if len(groups) > 4 else 0,
                       ha="right" if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small")


SUFFIX = ""  # --suffix


def save(fig, outdir, name, written):
    root, ext = os.path.splitext(name)
    path = os.path.join(outdir, root + SUFFIX + ext)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)


def plot_mix(results, outdir, prefix, written):
    # one figure per (dist, writes): the key distribution and the write kind (churn | grow)
    def kind(r):
        return (r["params"].get("dist", "uniform"), r["params"].get("writes", "churn"))

    kinds = sorted(set(kind(r) for r in results))
    # one colour per backend in every panel, also where one is missing (unsafe at 2 threads)
    colours = {b: f"C{i % 10}" for i, b in enumerate(backend_order(results))}
    for dist, writes in kinds:
        rs = [r for r in results if kind(r) == (dist, writes)]
        keys = ordered(r["params"].get("keys", "?") for r in rs)
        threads = ordered(r["threads"] for r in rs)
        cells = [(k, t) for k in keys for t in threads
                 if any(r["params"].get("keys", "?") == k and r["threads"] == t for r in rs)]
        unit = unit_of(rs)
        fig, axes = panels(len(cells), f"chm.mix ({dist}, writes={writes}): throughput vs "
                                        f"read %, error bars = 99.9% CI")
        for ax, (k, t) in zip(axes, cells):
            cell = [r for r in rs if r["params"].get("keys", "?") == k and r["threads"] == t]
            reads = ordered(r["params"].get("reads", "?") for r in cell)
            for b in backend_order(cell):
                pts = sorted(((r["params"].get("reads", "?"), r["primaryMetric"]) for r in cell
                              if r["params"].get("backend") == b), key=lambda p: sort_key(p[0]))
                xs = [reads.index(p[0]) for p in pts]
                ax.errorbar(xs, [number(m["score"]) for _, m in pts],
                            yerr=[error_bar(m.get("scoreError")) for _, m in pts],
                            marker="o", capsize=3, label=b, color=colours[b])
            ax.set_xticks(range(len(reads)))
            ax.set_xticklabels([f"{v}%" for v in reads])
            ax.set_xlabel("reads")
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.set_title(f"keys={k}, threads={t}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
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
    fig, axes = panels(len(cells), "chm.falseshare: throughput per layout, error bars = 99.9% CI")
    for ax, (s, t) in zip(axes, cells):
        cell = {(r["params"].get("op", "?"), r["params"].get("layout", "?")): r["primaryMetric"]
                for r in results
                if r["params"].get("subject", "counters") == s and r["threads"] == t}
        ops = ordered(o for o, _ in cell)
        layouts = [l for l in ("packed", "align64", "align128", "padded")
                   if any(k[1] == l for k in cell)]
        layouts += ordered(l for _, l in cell if l not in layouts)
        grouped_bars(ax, ops, layouts,
                     lambda o, l: number(cell[(o, l)]["score"]) if (o, l) in cell else None,
                     lambda o, l: error_bar(cell[(o, l)].get("scoreError")),
                     unit_of(results))
        ax.set_title(f"subject={s}, threads={t}")
    save(fig, outdir, prefix + "falseshare.png", written)


def plot_by_backend(results, outdir, prefix, written, bench, cell_params, series_param, title,
                    filename):
    """Bars per backend; one panel per combination of cell_params; bars per series_param."""
    combos = ordered(tuple(r["params"].get(p, "-") for p in cell_params) + (r["threads"],)
                     for r in results)
    fig, axes = panels(len(combos), title)
    for ax, combo in zip(axes, combos):
        cell = [r for r in results
                if tuple(r["params"].get(p, "-") for p in cell_params) + (r["threads"],) == combo]
        backends = backend_order(cell)
        series = ordered(r["params"].get(series_param, "-") for r in cell) if series_param else [""]
        table = {(r["params"].get("backend"),
                  r["params"].get(series_param, "-") if series_param else ""): r["primaryMetric"]
                 for r in cell}
        grouped_bars(ax, backends, series,
                     lambda b, s: number(table[(b, s)]["score"]) if (b, s) in table else None,
                     lambda b, s: error_bar(table[(b, s)].get("scoreError")),
                     unit_of(cell))
        if series_param and len(series) > 1:
            ax.legend(title=series_param, fontsize="small")
        label = ", ".join(f"{p}={v}" for p, v in zip(cell_params, combo) if v != "-")
        ax.set_title(f"{label}, threads={combo[-1]}" if label else f"threads={combo[-1]}")
    save(fig, outdir, prefix + filename, written)


def plot_group(results, outdir, prefix, written):
    combos = ordered((r["params"].get("keys", "-"), r["params"].get("readers", "-"),
                      r["params"].get("writers", "-")) for r in results)
    fig, axes = panels(len(combos), "chm.group: total and per-role throughput, "
                                    "error bars = 99.9% CI")
    for ax, (k, rd, wr) in zip(axes, combos):
        cell = [r for r in results if (r["params"].get("keys", "-"), r["params"].get("readers", "-"),
                                       r["params"].get("writers", "-")) == (k, rd, wr)]
        backends = backend_order(cell)
        roles = ["total"] + ordered(role for r in cell for role in r.get("secondaryMetrics", {}))
        table = {}
        for r in cell:
            b = r["params"].get("backend")
            table[(b, "total")] = r["primaryMetric"]
            for role, m in r.get("secondaryMetrics", {}).items():
                table[(b, role)] = m
        grouped_bars(ax, backends, roles,
                     lambda b, s: number(table[(b, s)]["score"]) if (b, s) in table else None,
                     lambda b, s: error_bar(table[(b, s)].get("scoreError")),
                     unit_of(cell))
        ax.set_title(f"keys={k}, readers={rd}, writers={wr}")
    save(fig, outdir, prefix + "group.png", written)


def plot_generic(bench, results, outdir, prefix, written):
    labels, scores, errors = [], [], []
    for r in results:
        params = ",".join(f"{k}={v}" for k, v in sorted(r["params"].items()))
        labels.append(f"{params} t={r['threads']}" if params else f"t={r['threads']}")
        scores.append(number(r["primaryMetric"]["score"]))
        errors.append(error_bar(r["primaryMetric"].get("scoreError")))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(results) + 2), 5))
    ax.bar(range(len(scores)), scores, yerr=errors if any(errors) else None, capsize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize="small")
    ax.set_ylabel(unit_of(results))
    ax.set_title(bench)
    ax.grid(axis="y", alpha=0.3)
    save(fig, outdir, prefix + bench.split(".", 1)[-1].replace(":", "_") + ".png", written)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", metavar="RESULT.json")
    ap.add_argument("-o", "--outdir", default=".")
    ap.add_argument("--prefix", default="", help="prepended to every PNG name")
    ap.add_argument("--suffix", default="", help='inserted before ".png" in every PNG name')
    args = ap.parse_args()
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
            plot_by_backend(rs, args.outdir, args.prefix, written, bench, ("keys", "presize"),
                            None, "chm.memory: heap bytes per entry", "memory.png")
        elif bench == "chm.resize":
            plot_by_backend(rs, args.outdir, args.prefix, written, bench, ("keys",), "presize",
                            "chm.resize: inserts into a new map (grown vs presized)",
                            "resize.png")
        elif bench == "chm.group":
            plot_group(rs, args.outdir, args.prefix, written)
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
