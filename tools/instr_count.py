#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""instr_count.py - read callgrind.out files of chm_gbench runs (tools/instr_count.sh).

usage: instr_count.py parse FILE                 print every call edge into chm_*/bench_op as TSV
       instr_count.py table DIR [BACKEND...]     the table for DIR/<backend>.<op>.out files, in
                                                 the order given (instr_count.sh passes
                                                 chm_backends' list); default: every backend
                                                 with files in DIR, sorted by name

Function-level only (no debug info needed): for every call edge (caller -> callee) callgrind
records the number of calls and the inclusive cost of those calls, i.e. the instructions executed
inside the callee and everything it called.
"""
import os
import re
import sys

BATCH = 64  # chm_gbench's operations per gb_keep_running_batch (bench/gbench/chm_gbench.c)
PREFILL_KEYS = 1000
OPS = ["get_hit", "get_miss", "put", "remove_reinsert"]

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse(path):
    """Returns {(caller, callee): [calls, inclusive Ir]} and the total Ir."""
    names = {}
    edges = {}
    fn = None
    cfn = None
    pending_calls = None
    total = None

    def name_of(spec):
        m = NAME.match(spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if pending_calls is not None:
                cost = int(line.split()[1]) if len(line.split()) > 1 else 0
                e = edges.setdefault((fn, cfn), [0, 0])
                e[0] += pending_calls
                e[1] += cost
                pending_calls = None
                continue
            if line.startswith("fn="):
                fn = name_of(line[3:])
            elif line.startswith("cfn="):
                cfn = name_of(line[4:])
            elif line.startswith("calls="):
                pending_calls = int(line[6:].split()[0])
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return edges, total


def into(edges, callee, caller_pred=lambda c: True):
    calls = cost = 0
    for (caller, c), (n, ir) in edges.items():
        if c == callee and caller != callee and caller_pred(caller):
            calls += n
            cost += ir
    return calls, cost


def analyse(path, prefill_put):
    """Per-op figures of one run; prefill_put = (calls, Ir) of the prefill's chm_put."""
    edges, _ = parse(path)
    runs, loop = into(edges, "bench_op")
    batches, _ = into(edges, "gb_keep_running_batch", lambda c: c == "bench_op")
    ops = BATCH * (batches - runs)  # one false gb_keep_running_batch per run ends its loop
    # adapters the loop called (chm_adapter_destroy runs from main at exit: not the loop's)
    adapters = {c for (caller, c) in edges if caller == "bench_op" and c.startswith("chm_adapter_")}
    lib_calls = {}
    lib_total = 0
    for (caller, callee), (n, ir) in edges.items():
        if (caller == "bench_op" or caller in adapters) and callee.startswith("chm_") \
                and not callee.startswith("chm_adapter_"):
            c = lib_calls.setdefault(callee, [0, 0])
            c[0] += n
            c[1] += ir
            lib_total += ir
    return dict(ops=ops, runs=runs, loop=loop, lib=lib_calls, lib_total=lib_total)


def backends_in(directory):
    """The backends with an <backend>.<op>.out file in directory, sorted: no list of names here,
    so that a backend added later is counted with no edit."""
    found = set()
    for f in os.listdir(directory):
        for op in OPS:
            if f.endswith(f".{op}.out"):
                found.add(f[: -len(f".{op}.out")])
    return sorted(found)


def table(directory, backends=None):
    rows = []
    problems = []
    for b in backends or backends_in(directory):
        results = {}
        for op in OPS:
            p = os.path.join(directory, f"{b}.{op}.out")
            if os.path.exists(p):
                results[op] = analyse(p, None)
        if "get_hit" not in results:
            continue
        prefill = results["get_hit"]["lib"].get("chm_put", [0, 0])
        if prefill[0] != PREFILL_KEYS:
            problems.append(f"{b}: get_hit run made {prefill[0]} chm_put calls, expected {PREFILL_KEYS} (prefill)")
        for op, r in results.items():
            lib = r["lib"]
            n = r["ops"]
            figures = []  # (label, calls, Ir)
            if op in ("get_hit", "get_miss"):
                figures.append(("chm_get", *lib.get("chm_get", [0, 0])))
                expect = {"chm_get": n, "chm_put": PREFILL_KEYS}
            elif op == "put":
                c, ir = lib.get("chm_put", [0, 0])
                figures.append(("chm_put", c - prefill[0], ir - prefill[1]))
                expect = {"chm_put": n + PREFILL_KEYS}
            else:
                c, ir = lib.get("chm_remove", [0, 0])
                figures.append(("chm_remove", c, ir))
                pc, pir = lib.get("chm_put", [0, 0])
                figures.append(("chm_put", pc - prefill[0], pir - prefill[1]))
                expect = {"chm_remove": n, "chm_put": n + PREFILL_KEYS}
            for fn, want in expect.items():
                got = lib.get(fn, [0, 0])[0]
                if got != want:
                    problems.append(f"{b} {op}: {got} calls of {fn}, the loop did {want}")
            harness = (r["loop"] - r["lib_total"]) / n if n else float("nan")
            if op == "remove_reinsert":
                pair = sum(ir / c for _, c, ir in figures)
                label = "remove+put(insert)"
                detail = " + ".join(f"{ir / c:.1f}" for _, c, ir in figures)
                rows.append((b, op, label, f"{pair:.1f} ({detail})", f"{harness:.1f}", n))
            else:
                fn, c, ir = figures[0]
                rows.append((b, op, fn, f"{ir / c:.1f}", f"{harness:.1f}", n))
    head = ("backend", "op", "chm call(s)", "instructions/op (chm, inclusive)", "harness/op", "ops")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    for p in problems:
        print("instr_count: CHECK FAILED: " + p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "parse":
        edges, total = parse(argv[2])
        print(f"total\t{total}")
        for (caller, callee), (n, ir) in sorted(edges.items()):
            if callee.startswith("chm_") or callee in ("bench_op", "gb_keep_running_batch"):
                print(f"{caller}\t{callee}\t{n}\t{ir}")
        return 0
    if len(argv) >= 3 and argv[1] == "table":
        return table(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
