#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""bench_summary.py - the performance goals of docs/benchmarks.md, as ratios, from chmbench JSON.

usage: bench_summary.py RESULT.json [RESULT.json ...]      (make bench runs it on its results)

Reads the JMH JSON that `chmbench -rff FILE` writes (mix, falseshare, memory; anything else is
ignored) and prints a line saying what the table is, then a Markdown table: every goal, the
Scores it compares (Score ± Error), their ratio with its interval, the target and a verdict. A
goal whose rows are missing from the input is listed as "not measured". These goals are
measured, never gated: nothing fails when one is missed. Standard library only.

The interval. Each Score a comes with JMH's 99.9% Error ea (scoreError, or half the width of
scoreConfidence), so the mean lies in [a - ea, a + ea]. A ratio r = a / b of two Scores then lies
in [(a - ea) / (b + eb), (a + ea) / (b - eb)]: the extreme ratios of the two intervals (interval
arithmetic, wider than a joint confidence interval, which is the safe side for a verdict). The
low end is cut at 0 (no throughput is negative), and when b - eb <= 0 the high end is unbounded
("∞"): the denominator may be as small as nothing. A goal on a single value (memory) uses
[v - ev, v + ev]; memory's Error is taken as 0 when JMH has none (one iteration), because
mallinfo2() counts bytes exactly and every iteration gives the same figure.

The verdict. "met" when the whole interval is on the target's side (at or above a floor, at or
below a ceiling), "missed" when the whole interval is on the other side, otherwise "within
noise": this run cannot tell, rerun with more forks and iterations. "no Error" when JMH gave none
(N <= 2 iterations), so no interval. A goal with no target is "(shown)": a ratio to look at.
"""
import json
import math
import sys

HEADER = (
    "Goals measured on this run, not gated by CI: each ratio divides two Scores of this one run, "
    "and its [interval] combines their 99.9% Errors (tools/bench_summary.py); a goal is met or "
    "missed only when the whole interval is past the target, else within noise. On a noisy 2-core "
    "machine single runs move 10–40%, so rerun with more forks and iterations "
    "(`make bench BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1'`) before concluding.")


def number(v):
    if isinstance(v, (int, float)):
        return float(v)
    return math.nan  # JMH's "NaN" strings


class Measure:
    """A Score and its 99.9% Error (NaN when JMH has none)."""

    def __init__(self, score, error):
        self.score, self.error = score, error

    @classmethod
    def of(cls, metric):
        score, error = number(metric.get("score")), number(metric.get("scoreError"))
        conf = [number(c) for c in metric.get("scoreConfidence") or []]
        if not math.isfinite(error) and len(conf) == 2 and all(math.isfinite(c) for c in conf):
            error = (conf[1] - conf[0]) / 2
        return cls(score, error)

    def measured(self):
        return math.isfinite(self.score)

    def __str__(self):
        if not math.isfinite(self.error):
            return f"{self.score:.1f} ± ?"
        return f"{self.score:.1f} ± {self.error:.1f}"


MISSING = Measure(math.nan, math.nan)


def load(paths):
    results = []
    for p in paths:
        with open(p) as f:
            results.extend(json.load(f))
    return results


class Scores:
    def __init__(self, results):
        self.by = {}
        for r in results:
            if "primaryMetric" not in r:
                continue  # a trial reported "skipped" (a peer whose package is missing): no score
            key = (r["benchmark"], r["threads"], tuple(sorted(r["params"].items())))
            self.by[key] = Measure.of(r["primaryMetric"])

    def get(self, bench, threads, **params):
        want = {k: str(v) for k, v in params.items()}
        for (b, t, ps), m in self.by.items():
            d = dict(ps)
            if b == bench and t == threads and all(d.get(k) == v for k, v in want.items()):
                return m
        return MISSING

    def backends(self, bench):
        seen = []
        for (b, _, ps) in self.by:
            name = dict(ps).get("backend")
            if b == bench and name and name not in seen:
                seen.append(name)
        return seen


PEERS = ("ck_ht", "lfht")  # the goals' peers (docs/benchmarks.md, "Performance goals")
# peers that joined after the goals were set (make compare runs them): never "chm"
LATER_PEERS = ("cuckoo", "tbb")


def mix(s, backend, threads, keys, reads):
    return s.get("chm.mix", threads, backend=backend, keys=keys, reads=reads, dist="uniform")


def ratio(a, b):
    """(ratio, low, high) of two Measures; the interval is NaN when either lacks an Error."""
    if not (a.measured() and b.measured()) or b.score == 0:
        return math.nan, math.nan, math.nan
    if not (math.isfinite(a.error) and math.isfinite(b.error)):
        return a.score / b.score, math.nan, math.nan
    low = max(0.0, (a.score - a.error) / (b.score + b.error))
    b_low = b.score - b.error
    high = (a.score + a.error) / b_low if b_low > 0 else math.inf
    return a.score / b.score, low, high


def value(m):
    """(value, low, high) of one Measure; the interval is NaN when it lacks an Error."""
    if not math.isfinite(m.error):
        return m.score, math.nan, math.nan
    return m.score, max(0.0, m.score - m.error), m.score + m.error


def verdict(low, high, target, at_least):
    if math.isnan(low):
        return "no Error"
    if at_least:
        met, missed = low >= target, high < target
    else:
        met, missed = high <= target, low > target
    # bold only for a miss the noise cannot explain
    return "met" if met else "**missed**" if missed else "within noise"


def fmt(x):
    return "∞" if x == math.inf else f"{x:.2f}"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    s = Scores(load(sys.argv[1:]))
    rows = []  # (goal, measured text, (value, low, high), target, at least?)

    def goal(name, detail, estimate, target, at_least=True):
        rows.append((name, detail, estimate, target, at_least))

    # Read cost of thread safety: 100% reads, 1 thread, against unsafe.
    for keys in (1000, 1000000):
        base = mix(s, "unsafe", 1, keys, 100)
        for b, target in (("readmostly", 1.0), ("binlock", 0.8), ("segmented", 0.8)):
            v = mix(s, b, 1, keys, 100)
            goal(f"read cost: {b} / unsafe, 100% reads, 1 thread, {keys} keys",
                 f"{v} / {base} ops/us", ratio(v, base), target)
    # Read scaling: 2 threads / 1 thread at 100% reads.
    for keys in (1000, 1000000):
        for b in ("segmented", "binlock", "readmostly", "rwlock"):
            one, two = mix(s, b, 1, keys, 100), mix(s, b, 2, keys, 100)
            target = 1.9 if b != "rwlock" else None  # rwlock: shown failing to scale
            goal(f"read scaling: {b} 2 threads / 1 thread, 100% reads, {keys} keys",
                 f"{two} / {one} ops/us", ratio(two, one), target)
    # Against the peers: 2 threads, 1M keys; the best of each side by Score.
    chm_backends = [b for b in s.backends("chm.mix")
                    if b not in PEERS + LATER_PEERS and ":" not in b]
    for reads, target in ((99, 1.5), (90, 1.5), (50, 1.2)):
        best_chm = max(chm_backends, key=lambda b: _finite(mix(s, b, 2, 1000000, reads).score),
                       default=None)
        best_peer = max(PEERS, key=lambda b: _finite(mix(s, b, 2, 1000000, reads).score))
        if best_chm is None:
            continue
        v, p = mix(s, best_chm, 2, 1000000, reads), mix(s, best_peer, 2, 1000000, reads)
        goal(f"vs peers: best chm / best peer, {reads}% reads, 2 threads, 1M keys",
             f"{best_chm} {v} / {best_peer} {p} ops/us", ratio(v, p), target)
    # False sharing.
    for op in ("plain", "atomic"):
        packed = s.get("chm.falseshare", 2, subject="counters", layout="packed", op=op)
        for layout in ("align64", "align128"):
            padded = s.get("chm.falseshare", 2, subject="counters", layout=layout, op=op)
            goal(f"false sharing: counters {layout} / packed, {op}, 2 threads",
                 f"{padded} / {packed} ops/us", ratio(padded, packed), None)
    for subject in ("segmented", "binlock", "readmostly"):
        packed = s.get("chm.falseshare", 2, subject=subject, layout="packed")
        padded = s.get("chm.falseshare", 2, subject=subject, layout="padded")
        goal(f"padding switch: {subject} padded / packed, put+remove, 2 threads",
             f"{padded} / {packed} ops/us", ratio(padded, packed), None)
    # Memory (lower is better: the target is a ceiling).
    for b in s.backends("chm.memory"):
        m = s.get("chm.memory", 1, backend=b, keys=1000000)
        if not math.isfinite(m.error):
            m = Measure(m.score, 0.0)
        if b in PEERS + LATER_PEERS:
            target = None
        else:
            target = 32 if b in ("unsafe", "rwlock") else 48
        goal(f"memory: {b}, B/entry at 1M entries", f"{m} B/entry", value(m), target,
             at_least=False)

    print(HEADER)
    print()
    print("| goal | measured (Score ± Error) | ratio / value [interval] | target | verdict |")
    print("|---|---|---|---|---|")
    for name, detail, (v, low, high), target, at_least in rows:
        if not math.isfinite(v):
            print(f"| {name} | not measured | | | |")
            continue
        # an exact figure (memory) has no interval to show
        exact = math.isnan(low) or low == high
        shown = f"{v:.2f}" if exact else f"{v:.2f} [{fmt(low)}, {fmt(high)}]"
        if target is None:
            tgt, met = "", "(shown)"
        else:
            tgt, met = f"{'≥' if at_least else '≤'} {target:g}", verdict(low, high, target, at_least)
        print(f"| {name} | {detail} | {shown} | {tgt} | {met} |")


def _finite(v):
    return v if math.isfinite(v) else -math.inf


if __name__ == "__main__":
    main()
