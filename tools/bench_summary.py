#!/usr/bin/python3
"""bench_summary.py - the performance goals of docs/benchmarks.md, as ratios, from chmbench JSON.

usage: bench_summary.py RESULT.json [RESULT.json ...]      (make bench runs it on its results)

Reads the JMH JSON that `chmbench -rff FILE` writes (mix, falseshare, memory; anything else is
ignored) and prints a Markdown table: every goal, the measured ratio (Score over Score, i.e. mean
over mean, all of one run side by side), the target and whether it is met. A goal whose rows are
missing from the input is listed as "not measured". Standard library only.
"""
import json
import math
import sys


def number(v):
    if isinstance(v, (int, float)):
        return float(v)
    return math.nan  # JMH's "NaN" strings


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
            key = (r["benchmark"], r["threads"], tuple(sorted(r["params"].items())))
            self.by[key] = number(r["primaryMetric"]["score"])

    def get(self, bench, threads, **params):
        want = {k: str(v) for k, v in params.items()}
        for (b, t, ps), score in self.by.items():
            d = dict(ps)
            if b == bench and t == threads and all(d.get(k) == v for k, v in want.items()):
                return score
        return math.nan

    def backends(self, bench):
        seen = []
        for (b, _, ps) in self.by:
            name = dict(ps).get("backend")
            if b == bench and name and name not in seen:
                seen.append(name)
        return seen


PEERS = ("ck_ht", "lfht")


def mix(s, backend, threads, keys, reads):
    return s.get("chm.mix", threads, backend=backend, keys=keys, reads=reads, dist="uniform")


def ratio(a, b):
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    s = Scores(load(sys.argv[1:]))
    rows = []  # (goal, measured text, ratio, target, comparison)

    def goal(name, detail, value, target, at_least=True):
        rows.append((name, detail, value, target, at_least))

    # Read cost of thread safety: 100% reads, 1 thread, against unsafe.
    for keys in (1000, 1000000):
        base = mix(s, "unsafe", 1, keys, 100)
        for b, target in (("readmostly", 1.0), ("binlock", 0.8), ("segmented", 0.8)):
            v = mix(s, b, 1, keys, 100)
            goal(f"read cost: {b} / unsafe, 100% reads, 1 thread, {keys} keys",
                 f"{v:.1f} / {base:.1f} ops/us", ratio(v, base), target)
    # Read scaling: 2 threads / 1 thread at 100% reads.
    for keys in (1000, 1000000):
        for b in ("segmented", "binlock", "readmostly", "rwlock"):
            one, two = mix(s, b, 1, keys, 100), mix(s, b, 2, keys, 100)
            target = 1.9 if b != "rwlock" else None  # rwlock: shown failing to scale
            goal(f"read scaling: {b} 2 threads / 1 thread, 100% reads, {keys} keys",
                 f"{two:.1f} / {one:.1f} ops/us", ratio(two, one), target)
    # Against the peers: 2 threads, 1M keys.
    chm_backends = [b for b in s.backends("chm.mix") if b not in PEERS and ":" not in b]
    for reads, target in ((99, 1.5), (90, 1.5), (50, 1.2)):
        best_chm = max(chm_backends, key=lambda b: _finite(mix(s, b, 2, 1000000, reads)),
                       default=None)
        best_peer = max(PEERS, key=lambda b: _finite(mix(s, b, 2, 1000000, reads)))
        if best_chm is None:
            continue
        v, p = mix(s, best_chm, 2, 1000000, reads), mix(s, best_peer, 2, 1000000, reads)
        goal(f"vs peers: best chm / best peer, {reads}% reads, 2 threads, 1M keys",
             f"{best_chm} {v:.2f} / {best_peer} {p:.2f} ops/us", ratio(v, p), target)
    # False sharing.
    for op in ("plain", "atomic"):
        packed = s.get("chm.falseshare", 2, subject="counters", layout="packed", op=op)
        for layout in ("align64", "align128"):
            padded = s.get("chm.falseshare", 2, subject="counters", layout=layout, op=op)
            goal(f"false sharing: counters {layout} / packed, {op}, 2 threads",
                 f"{padded:.1f} / {packed:.1f} ops/us", ratio(padded, packed), None)
    for subject in ("segmented", "binlock", "readmostly"):
        packed = s.get("chm.falseshare", 2, subject=subject, layout="packed")
        padded = s.get("chm.falseshare", 2, subject=subject, layout="padded")
        goal(f"padding switch: {subject} padded / packed, put+remove, 2 threads",
             f"{padded:.1f} / {packed:.1f} ops/us", ratio(padded, packed), None)
    # Memory (lower is better: the target is a ceiling).
    for b in s.backends("chm.memory"):
        v = s.get("chm.memory", 1, backend=b, keys=1000000)
        if b in PEERS:
            target = None
        else:
            target = 32 if b in ("unsafe", "rwlock") else 48
        goal(f"memory: {b}, B/entry at 1M entries", f"{v:.1f} B/entry", v, target,
             at_least=False)

    print("| goal | measured | ratio / value | target | met |")
    print("|---|---|---|---|---|")
    for name, detail, value, target, at_least in rows:
        if not math.isfinite(value):
            print(f"| {name} | not measured | | | |")
            continue
        if target is None:
            met, tgt = "(shown)", ""
        else:
            ok = value >= target if at_least else value <= target
            met = "yes" if ok else "**no**"
            tgt = f"{'≥' if at_least else '≤'} {target:g}"
        print(f"| {name} | {detail} | {value:.2f} | {tgt} | {met} |")


def _finite(v):
    return v if math.isfinite(v) else -math.inf


if __name__ == "__main__":
    main()
