#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""compare_tables.py - make compare's ratio tables: each chm backend beside its original, and the
best chm backend beside each C/C++ peer, from chmbench mix JSON.

usage: compare_tables.py RESULT.json [RESULT.json ...]   (make compare runs it on its results)

Reads the JMH JSON of `chmbench -rff FILE mix` (make compare's) and prints Markdown: a line
saying what the tables are, then

1. "chm backend / its original": one row per pair, key count and thread count, one column per
   read percentage, each cell the ratio of the two Scores (ops/us) with its interval. The pairs
   are the designs chm renders and the originals they render: binlock / java:chm, segmented /
   java:segments (Java 7's design) and java:chm, readmostly / go:syncmap, rwlock / go:rwmutex,
   java:sync and java:rwlock, unsafe / go:map (one thread: Go's map is not thread-safe).
2. "best chm backend / C/C++ peer": for each peer (ck_ht, lfht, cuckoo, tbb) and cell, the
   thread-safe library backend with the highest Score in that cell (so not unsafe; not a
   variant such as segmented:concurrency=256), divided by the peer's Score, the backend named.

3. "Scores": for each key count and thread count, one column per backend (each chm backend
   beside its originals, then the C/C++ peers; a backend without a Score in that slice left
   out), one row per read percentage, the Score in ops/us.
4. Only when the input also holds `-bm sample` rows of the same grid (a second file, e.g. the
   sample run docs/benchmarks.md gives the command for): the same layout with each cell
   "p50 / p99 / p99.9" of the per-operation latency in us (JMH's scorePercentiles).

A ratio above 1 means chm's backend did more operations per microsecond. Its [interval] comes
from both Scores' 99.9% Errors by tools/bench_summary.py's interval arithmetic (ratio(): for
a / b, [(a - ea) / (b + eb), (a + ea) / (b - eb)], the high end ∞ when b - eb <= 0); a Score
without an Error (fewer than 3 iterations) gives the ratio alone. A cell whose two Scores are
not both in the input is "—"; a pair or peer with no cell at all is left out of its table, and
the backends the run reported skipped are listed under the tables with the reason. Only mix's
throughput rows with uniform keys, no workload preset and churn writes are read (make compare's
grid); anything else is ignored. Standard library only.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no tools/__pycache__ in the source tree from the import below
from bench_summary import Scores, fmt, load, ratio  # noqa: E402  (the interval arithmetic)

PAIRS = (("binlock", "java:chm"), ("segmented", "java:segments"), ("segmented", "java:chm"),
         ("readmostly", "go:syncmap"), ("rwlock", "go:rwmutex"), ("rwlock", "java:sync"),
         ("rwlock", "java:rwlock"), ("unsafe", "go:map"))
PEERS = ("ck_ht", "lfht", "cuckoo", "tbb")
NOT_THREAD_SAFE = {"unsafe"}  # chmbench runs it at one thread only; no peer is that weak

HEADER = (
    "make compare's ratios, each of two Scores of this one run (ops/us; above 1: chm's backend "
    "did more operations per microsecond), with the [interval] their 99.9% Errors allow "
    "(tools/compare_tables.py, the interval arithmetic of tools/bench_summary.py). On a noisy "
    "2-core machine single runs move 10–40%: trust a ratio whose whole interval is past 1, and "
    "rerun with more forks and iterations (`make compare BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1'`) "
    "before concluding from the others.")


# The grids' column order: each chm backend beside the originals it renders, then the peers.
ORDER = ("unsafe", "go:map", "rwlock", "go:rwmutex", "java:sync", "java:rwlock", "segmented",
         "java:segments", "binlock", "java:chm", "readmostly", "go:syncmap", "cuckoo", "tbb",
         "ck_ht", "lfht")


def grid_rows(results, mode="thrpt"):
    """make compare's mix rows of @mode (and the skipped entries, which carry no metric)."""
    def default(params, name, value):
        return params.get(name, value) == value
    return [r for r in results
            if r.get("benchmark") == "chm.mix" and r.get("mode", "thrpt") == mode
            and default(r["params"], "dist", "uniform") and default(r["params"], "workload", "none")
            and default(r["params"], "writes", "churn")]


def grids(title, rows, reads, keys, threads, cell):
    """One table per (keys, threads): a column per backend with a metric there (ORDER first),
    a row per read %, cell(primaryMetric) in each."""
    metric = {(r["params"]["backend"], r["threads"], int(r["params"]["keys"]),
               int(r["params"]["reads"])): r["primaryMetric"]
              for r in rows if "primaryMetric" in r}
    named = {b for b, _, _, _ in metric}
    order = [b for b in ORDER if b in named] + sorted(named - set(ORDER))
    for k in keys:
        for t in threads:
            cols = [b for b in order if any((b, t, k, rd) in metric for rd in reads)]
            if not cols:
                continue
            print(f"**keys = {k:,}, threads = {t}**: {title}")
            print()
            print("| reads | " + " | ".join(cols) + " |")
            print("|---|" + "---:|" * len(cols))
            for rd in reads:
                cells = [cell(metric[(b, t, k, rd)]) if (b, t, k, rd) in metric else "—"
                         for b in cols]
                print(f"| {rd}% | " + " | ".join(cells) + " |")
            print()


def score_cell(m):
    return f"{float(m['score']):.1f}"


def latency_cell(m):
    p = m.get("scorePercentiles", {})
    try:
        return f"{float(p['50.0']):.3f} / {float(p['99.0']):.2f} / {float(p['99.9']):.1f}"
    except (KeyError, TypeError, ValueError):
        return "—"


def cell_text(a, b, name=None):
    r, low, high = ratio(a, b)
    if not math.isfinite(r):
        return "—"
    text = f"{r:.2f}" if math.isnan(low) else f"{r:.2f} [{fmt(low)}, {fmt(high)}]"
    return f"{text} {name}" if name else text


def main(argv):
    if not argv:
        sys.exit(__doc__)
    rows = grid_rows(load(argv))
    s = Scores(rows)

    def values(name, key=lambda v: v):
        return sorted({key(r["params"][name] if name != "threads" else r["threads"])
                       for r in rows if "primaryMetric" in r})

    reads = sorted(values("reads", int), reverse=True)
    keys = values("keys", int)
    threads = values("threads", int)

    def mix(backend, t, k, rd):
        return s.get("chm.mix", t, backend=backend, keys=k, reads=rd)

    def table(title, first, lines):
        """lines: (label, keys, threads, [cell text per read %]); all-"—" lines left out."""
        lines = [ln for ln in lines if any(c != "—" for c in ln[3])]
        if not lines:
            return
        print(f"**{title}** (ratio of Scores [interval])")
        print()
        print(f"| {first} | keys | threads | " + " | ".join(f"{rd}%" for rd in reads) + " |")
        print("|---|---:|---:|" + "---|" * len(reads))
        for label, k, t, cells in lines:
            print(f"| {label} | {k:,} | {t} | " + " | ".join(cells) + " |")
        print()

    print(HEADER)
    print()
    table("chm backend / its original", "pair",
          [(f"{c} / {o}", k, t, [cell_text(mix(c, t, k, rd), mix(o, t, k, rd)) for rd in reads])
           for c, o in PAIRS for k in keys for t in threads])

    named = {r["params"].get("backend") for r in rows}
    library = sorted(b for b in named
                     if b and ":" not in b and b not in PEERS and b not in NOT_THREAD_SAFE)

    def best_cell(peer, t, k, rd):
        scored = [(mix(b, t, k, rd), b) for b in library]
        scored = [(m, b) for m, b in scored if m.measured()]
        if not scored:
            return "—"
        m, b = max(scored, key=lambda mb: mb[0].score)
        return cell_text(m, mix(peer, t, k, rd), f"({b})")

    table("best chm backend / C/C++ peer", "best chm / peer",
          [(f"best / {p}", k, t, [best_cell(p, t, k, rd) for rd in reads])
           for p in PEERS for k in keys for t in threads])

    grids("Score (ops/us)", rows, reads, keys, threads, score_cell)
    sample = grid_rows(load(argv), "sample")
    if any("primaryMetric" in r for r in sample):
        grids("latency p50 / p99 / p99.9 (us/op, -bm sample)", sample, reads, keys, threads,
              latency_cell)

    skipped = {}
    for r in rows:
        if "skipped" in r:
            skipped.setdefault(r["params"].get("backend"), r["skipped"])
    for b, why in skipped.items():
        print(f"- `{b}` skipped in this run: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
