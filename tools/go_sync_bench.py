#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""go_sync_bench.py - Go's own sync.Map benchmarks, for a side-by-side look with chmbench gosync.

usage: go_sync_bench.py [--cpu 1,2] [--benchtime 1s] [--count N] [--case NAME,...]
                        [--gocache DIR] [--save-json GO.json] [--chmbench RESULT.json]
       go_sync_bench.py --from-json GO.json [--case NAME,...] [--chmbench RESULT.json]

Runs `go test -run NONE -bench '^Benchmark(CASE|...)$' -cpu ... sync` on the installed Go's own
copy of src/sync/map_bench_test.go (Debian 12: Go 1.19, /usr/lib/go-1.19/src/sync), offline:
GOPATH mode (GO111MODULE=off), nothing fetched, the build cache in a temporary directory (or
--gocache DIR, to keep it between runs: the first build of the sync tests takes about 10 s).
Prints one Markdown row per case and -cpu value with Go's ns/op for each of its maps
(sync_test.DeepCopyMap, sync_test.RWMutexMap, sync.Map; the mean over --count runs). With
--chmbench FILE (the JSON of `chmbench -rff FILE gosync`), the rows also show each chm backend's
Score for the same case at the same thread count (chmbench's -t = Go's -cpu, GOMAXPROCS), and
then, per backend, the ratio "BACKEND ÷ sync.Map": its ns/op over Go sync.Map's in that row
(below 1: chm's backend takes less time per operation), "—" when either is missing.

--save-json GO.json keeps Go's results (the GOROOT, the go test command, ns/op per case, -cpu
and map) and --from-json GO.json prints the table from such a file instead of running Go (no
go needed): the table of a published run can be redone, or joined with another chmbench run.

The cases are chmbench gosync's (`chmbench -l`): Go's benchmark names without the Benchmark
prefix. Go's ns/op for RunParallel is wall time over all goroutines' operations, and chmbench
gosync scores the same quantity; Go sizes b.N itself, chmbench runs time-bound iterations.
Standard library only.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

CASES = ("LoadMostlyHits", "LoadMostlyMisses", "LoadOrStoreBalanced", "LoadOrStoreUnique",
         "LoadOrStoreCollision", "LoadAndDeleteBalanced", "LoadAndDeleteUnique",
         "LoadAndDeleteCollision", "Range", "AdversarialAlloc", "AdversarialDelete",
         "DeleteCollision")
# "BenchmarkRange/*sync.Map-2   	  100	  8545 ns/op": -N is GOMAXPROCS, absent when it is 1
LINE = re.compile(r"^Benchmark(\w+)/\*([\w.]+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op")


def parse_go(text):
    """(case, threads, map) -> mean ns/op over the runs, from go test -bench's output."""
    runs = collections.defaultdict(list)
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            case, go_map, procs, ns = m.groups()
            runs[(case, int(procs or 1), go_map)].append(float(ns))
    return {k: sum(v) / len(v) for k, v in runs.items()}


def run_go(cases, cpu, benchtime, count, gocache):
    """Go's results and the command that made them."""
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOCACHE=gocache,
               GOPATH=os.path.join(gocache, "gopath"))
    pattern = "^Benchmark(" + "|".join(cases) + ")$"
    cmd = ["go", "test", "-run", "NONE", "-bench", pattern, "-cpu", cpu, "-benchtime",
           benchtime, "-count", str(count), "sync"]
    print("#", " ".join(cmd), file=sys.stderr)
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        sys.exit(f"go_sync_bench.py: go test exited with status {done.returncode}")
    return parse_go(done.stdout), " ".join(cmd)


def save_go(path, goroot, command, go):
    rows = [{"case": c, "threads": t, "map": m, "nsPerOp": v}
            for (c, t, m), v in sorted(go.items())]
    with open(path, "w") as f:
        json.dump({"goroot": goroot, "command": command, "results": rows}, f, indent=1)


def load_go(path):
    """(goroot, results) from a --save-json file."""
    with open(path) as f:
        data = json.load(f)
    return data["goroot"], {(r["case"], int(r["threads"]), r["map"]): float(r["nsPerOp"])
                            for r in data["results"]}


def chmbench_scores(path):
    """(case, threads, backend) -> Score in ns/op, from chmbench gosync's JSON."""
    scores = {}
    for r in json.load(open(path)):
        if r.get("benchmark") != "chm.gosync" or "primaryMetric" not in r:
            continue
        p = r["params"]
        scores[(p["case"], r["threads"], p["backend"])] = r["primaryMetric"]["score"]
    return scores


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", default="1,2", help="go test -cpu (GOMAXPROCS values)")
    ap.add_argument("--benchtime", default="1s", help="go test -benchtime: 1s, 100x, ...")
    ap.add_argument("--count", type=int, default=1, help="go test -count (the mean is shown)")
    ap.add_argument("--case", default=",".join(CASES), help="comma-separated case names")
    ap.add_argument("--gocache", help="Go's build cache directory (default: a temporary one)")
    ap.add_argument("--chmbench", metavar="RESULT.json", help="chmbench gosync results to join")
    ap.add_argument("--save-json", metavar="GO.json", help="also write Go's results to GO.json")
    ap.add_argument("--from-json", metavar="GO.json",
                    help="Go's results from a --save-json file instead of running go test")
    args = ap.parse_args(argv)
    cases = args.case.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {unknown[0]}; known: {', '.join(CASES)}")
    if args.from_json:
        goroot, go = load_go(args.from_json)
        source = f" as saved in {args.from_json}"
    else:
        goroot = subprocess.run(["go", "env", "GOROOT"], stdout=subprocess.PIPE, text=True,
                                check=True).stdout.strip()
        with tempfile.TemporaryDirectory() as tmp:
            go, command = run_go(cases, args.cpu, args.benchtime, args.count, args.gocache or tmp)
        if args.save_json:
            save_go(args.save_json, goroot, command, go)
        source = ""
    chm = chmbench_scores(args.chmbench) if args.chmbench else {}
    go_maps = sorted({k[2] for k in go})
    backends = sorted({k[2] for k in chm})
    print(f"Go's {goroot}/src/sync/map_bench_test.go (go test -bench, ns/op{source})"
          + (f" beside chmbench gosync ({args.chmbench}, Score in ns/op); BACKEND ÷ sync.Map: "
             "the backend's ns/op over Go sync.Map's, below 1 when chm's takes less time"
             if chm else ""))
    print()
    ratios = [f"{b} ÷ sync.Map" for b in backends]
    print("| case | threads | " + " | ".join(["Go " + m for m in go_maps] + backends + ratios)
          + " |")
    print("|---|---:|" + "---:|" * (len(go_maps) + len(backends) + len(ratios)))
    threads = sorted({k[1] for k in go} | {k[1] for k in chm})
    for case in cases:
        for t in threads:
            cells = [go.get((case, t, m)) for m in go_maps] + [chm.get((case, t, b))
                                                               for b in backends]
            if all(c is None for c in cells):
                continue
            text = ["—" if c is None else f"{c:.1f}" for c in cells]
            base = go.get((case, t, "sync.Map"))
            for b in backends:
                ns = chm.get((case, t, b))
                text.append("—" if ns is None or not base else f"{ns / base:.2f}")
            print(f"| {case} | {t} | " + " | ".join(text) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
