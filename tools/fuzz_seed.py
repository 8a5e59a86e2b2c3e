#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""fuzz_seed.py - write the seed corpus of tests/fuzz/fuzz_chm.c (its input format is documented
at the top of that file; the opcode numbers below must match its enums).

Every scenario is written once per backend of chm_backend_list() (index 0..n-1), so each backend
sees integer and string keys, colliding hashes, growth through bulk inserts, iterations with and
without writes during them, compute functions calling back into the map, and injected
allocation failures. Deterministic: the same files every run.

usage: tools/fuzz_seed.py [OUTDIR]     (default tests/fuzz/corpus; existing seed-* files are
                                        replaced, other files are left alone)
"""
import os
import random
import sys

# enum op in fuzz_chm.c
GET, PUT, PUT_IF_ABSENT, REMOVE, REPLACE, COMPUTE, ITER_INIT, ITER_NEXT, ITER_FINI, CHECK, \
    BULK_PUT, BULK_REMOVE, REMOVE_ALL, FAIL_ALLOC, UPDATE, REMOVE_IF, CLEAR, VISIT, STATS, \
    OP_COUNT = range(20)
# enum nested_kind
NK_GET, NK_PUT, NK_PUT_IF_ABSENT, NK_REMOVE, NK_REPLACE, NK_COMPUTE, NK_SIZE, NK_ITERATE, \
    NK_UPDATE, NK_REMOVE_IF, NK_CLEAR, NK_VISIT, NK_COUNT = range(13)
# enum upd_shape (chm_compute's decisions)
UPD_SET, UPD_DELETE, UPD_KEEP, UPD_COUNTER, UPD_SAME, UPD_OUTSIDE, UPD_DROP, \
    UPD_LOAD_OR_STORE, UPD_COUNT = range(9)
# key modes (h1 bits 0-1) and flags
KM_INT, KM_INT_CUSTOM, KM_STR_COUNTED, KM_STR_BUILTIN = range(4)
F_COMPARE, F_NO_VALUE_FREE, F_PACKED, F_RACE_RETURN, F_RWLOCK_CK, F_RWLOCK_PTHREAD = 4, 8, 16, 32, 64, 128
# hash qualities (h2 bits 2-3)
H_FULL, H_LOW, H_TOP, H_CONST = range(4)


def backend_count():
    """How many backends chm_backend_list() has: asked of the chm_backends helper of a build
    (bench/backends.c), so a backend added later gets its seeds with no edit here; the
    contract's five when no build has the helper yet."""
    import glob
    import subprocess
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    for exe in sorted(glob.glob(os.path.join(root, "build*", "bench", "chm_backends"))):
        try:
            out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        names = [n for n in out.strip().split(",") if n]
        if names:
            return len(names)
    print("fuzz_seed.py: no chm_backends helper built; seeding the contract's five backends",
          file=sys.stderr)
    return 5


BACKENDS = backend_count()
UNTIL_END = 0x80


class Seed:
    """Builds one input: a header, then operations."""

    def __init__(self, backend, keymode=KM_INT, flags=0, layout=0, quality=H_FULL, range_cls=4,
                 capacity_cls=0, concurrency_cls=0, seed16=1):
        self.b = bytearray([backend, keymode | flags,
                            layout | (quality << 2) | (range_cls << 4),
                            capacity_cls | (concurrency_cls << 3),
                            seed16 & 0xff, seed16 >> 8])

    def op(self, code, *args, null_out=False):
        self.b.append(code + (OP_COUNT if null_out else 0))
        self.b.extend(args)
        return self

    @staticmethod
    def big_key(id_):  # key id 1000 + id_ (the ids bulk operations use)
        return [0xF0, id_ & 0xff, id_ >> 8]

    def compute(self, key, value, nested=()):
        self.b.extend([COMPUTE, key, value, len(nested)])
        for kind, k, v, flag in nested:
            self.b.extend([kind + NK_COUNT * flag, k, v])
        return self

    def update(self, key, shape, value, nested=(), null_out=False):
        """chm_compute: the function decides by shape; nested calls as for compute()."""
        self.b.extend([UPDATE + (OP_COUNT if null_out else 0), key, shape, value, len(nested)])
        for kind, k, v, flag in nested:
            self.b.extend([kind + NK_COUNT * flag, k, v])
        return self

    def bulk(self, code, start, count_byte):
        return self.op(code, start & 0xff, start >> 8, count_byte)


def basic(backend, keymode, flags=0, **kw):
    """Every single-key operation over a small key range, with NULL out-pointers too."""
    s = Seed(backend, keymode, flags, **kw)
    for k in range(6):
        s.op(PUT, k, 20 + k)
    s.op(PUT, 0, 0).op(PUT, 1, 3).op(GET, 1).op(GET, 9, null_out=True)
    s.op(PUT_IF_ABSENT, 2, 40).op(PUT_IF_ABSENT, 12, 41, null_out=True)
    s.op(REPLACE, 3, 1, 0, 50).op(REPLACE, 4, 0, 60, 61).op(REPLACE, 13, 1, 0, 62)
    s.op(REMOVE, 5).op(REMOVE, 5, null_out=True).op(REMOVE, 14)
    s.compute(6, 70).compute(6, 71)
    for v in range(16):  # value bytes below 16: 0, UINT64_MAX, 1 << 63, ...
        s.op(PUT, v % 3, v).op(PUT_IF_ABSENT, 3 + v % 2, v).op(REPLACE, v % 3, 1, 0, 15 - v)
    s.op(CHECK)
    return s


def growth(backend, keymode, flags=0, **kw):
    """Bulk inserts across many resizes, overwrites, partial removes, then everything removed."""
    s = Seed(backend, keymode, flags, **kw)
    s.bulk(BULK_PUT, 0, 64 | 20)  # 1344 keys
    s.op(CHECK)
    s.bulk(BULK_PUT, 500, 10)  # overwrite 44 of them
    s.bulk(BULK_REMOVE, 100, 64 | 3)
    s.op(GET, *Seed.big_key(99)).op(GET, *Seed.big_key(100))
    s.op(CHECK).op(REMOVE_ALL).op(CHECK)
    s.bulk(BULK_PUT, 7, 12)
    return s


def iterate(backend, keymode, flags=0, **kw):
    """Iterations with and without writes during them, two iterators open at once."""
    s = Seed(backend, keymode, flags, **kw)
    for k in range(12):
        s.op(PUT, k, 30 + k)
    s.op(ITER_INIT, 0).op(ITER_NEXT, 0, 3)  # slot 0: a few entries
    s.op(ITER_INIT, 1).op(ITER_NEXT, 1, UNTIL_END).op(ITER_FINI, 1)  # slot 1: no writes
    s.op(PUT, 2, 99)  # an overwrite: not structural
    s.op(ITER_NEXT, 0, 2)
    s.op(PUT, 13, 98).op(REMOVE, 3)  # structural: fail-fast iterators fail from here
    s.op(ITER_NEXT, 0, UNTIL_END).op(ITER_NEXT, 0, 1).op(ITER_FINI, 0 | 2)
    s.op(ITER_INIT, 0).bulk(BULK_PUT, 0, 64 | 4)  # growth under an open iterator
    s.op(ITER_NEXT, 0, UNTIL_END).op(ITER_FINI, 0)
    s.op(ITER_INIT, 1).op(ITER_NEXT, 1, 5).op(REMOVE_ALL).op(ITER_NEXT, 1, UNTIL_END)
    return s


def nested(backend, keymode, flags=0, **kw):
    """Compute functions calling back into the map: reads, iteration, and writes (run on
    fail-fast backends, refused with CHM_EDEADLK elsewhere)."""
    s = Seed(backend, keymode, flags, **kw)
    for k in range(4):
        s.op(PUT, k, 10 + k)
    s.compute(8, 80, [(NK_GET, 8, 0, 0), (NK_SIZE, 0, 0, 0)])
    s.compute(9, 81, [(NK_ITERATE, 0, 0, 0), (NK_GET, 1, 0, 1)])
    s.compute(10, 82, [(NK_PUT, 1, 83, 0)])  # overwrite: not structural
    s.compute(11, 84, [(NK_PUT, 12, 85, 0)])  # a new key: fail-fast computes fail
    s.compute(13, 86, [(NK_REMOVE, 0, 0, 0), (NK_ITERATE, 0, 0, 0)])
    s.compute(14, 87, [(NK_COMPUTE, 14, 88, 0)])  # the key being computed, nested
    s.compute(15, 89, [(NK_PUT_IF_ABSENT, 2, 90, 1), (NK_REPLACE, 2, 12, 1)])
    s.compute(16, 91, [(NK_REMOVE, 30, 0, 0), (NK_COMPUTE, 17, 92, 1)])
    s.op(ITER_INIT, 0).compute(18, 93, [(NK_PUT, 19, 94, 0)]).op(ITER_NEXT, 0, UNTIL_END)
    s.op(CHECK)
    return s


def newops(backend, keymode, flags=0, **kw):
    """chm_compute with every decision shape on present and absent keys, remove_if, clear
    (empty and not, with iterators open), visit with nested reads and a refused write, stats."""
    s = Seed(backend, keymode, flags, **kw)
    for k in range(8):
        s.op(PUT, k, 20 + k)
    for shape in range(UPD_COUNT):
        s.update(shape, shape, 40 + shape)  # key `shape`: present
        s.update(10 + shape, shape, 50 + shape)  # absent
        s.update(shape, shape, 60 + shape, null_out=True)
    for _ in range(5):
        s.update(1, UPD_COUNTER, 0)
    s.op(REMOVE_IF, 2, 1, 0).op(REMOVE_IF, 3, 0, 77).op(REMOVE_IF, 13, 1, 0)
    s.op(VISIT, 4, 0).op(VISIT, 4, 1).op(VISIT, 4, 2).op(VISIT, 14, 3).op(STATS)
    s.op(ITER_INIT, 0).op(ITER_NEXT, 0, 2).op(CLEAR).op(ITER_NEXT, 0, UNTIL_END).op(ITER_FINI, 0)
    s.op(STATS).op(CLEAR).op(ITER_INIT, 1).op(CLEAR).op(ITER_NEXT, 1, UNTIL_END)
    s.bulk(BULK_PUT, 0, 64 | 6).op(STATS).op(CLEAR).op(CHECK).op(STATS)
    s.update(5, UPD_SET, 90).op(CHECK)
    return s


def nested_update(backend, keymode, flags=0, **kw):
    """chm_compute functions calling back into the map: reads, iteration, writes of other keys
    (run on exclusive backends, where a structural one fails the compute; refused elsewhere),
    remove_if, clear, and computes nested in computes."""
    s = Seed(backend, keymode, flags, **kw)
    for k in range(4):
        s.op(PUT, k, 10 + k)
    s.update(1, UPD_COUNTER, 0, [(NK_GET, 2, 0, 0), (NK_SIZE, 0, 0, 0)])
    s.update(2, UPD_DROP, 0, [(NK_VISIT, 3, 0, 1), (NK_VISIT, 9, 0, 0)])
    s.compute(20, 96, [(NK_VISIT, 20, 0, 1), (NK_VISIT, 0, 0, 1)])
    s.update(2, UPD_SET, 81, [(NK_ITERATE, 0, 0, 0)])
    s.update(3, UPD_SET, 82, [(NK_PUT, 0, 83, 0)])  # an overwrite of another key
    s.update(0, UPD_SAME, 84, [(NK_PUT, 12, 85, 0)])  # structural; fn SETs what it saw
    s.update(8, UPD_SET, 86, [(NK_REMOVE, 1, 0, 0)])
    s.update(9, UPD_DELETE, 87, [(NK_UPDATE, 2, 88, UPD_COUNTER * 2)])
    s.update(2, UPD_KEEP, 89, [(NK_REMOVE_IF, 3, 0, 1), (NK_COMPUTE, 15, 90, 0)])
    s.update(3, UPD_SET, 91, [(NK_CLEAR, 0, 0, 0)])
    s.compute(16, 92, [(NK_UPDATE, 17, 93, 0), (NK_CLEAR, 0, 0, 0)])
    s.op(ITER_INIT, 0).update(18, UPD_SET, 94, [(NK_PUT, 19, 95, 0)]).op(ITER_NEXT, 0, UNTIL_END)
    s.op(CHECK).op(STATS)
    return s


def alloc_fail(backend, keymode, flags=0, **kw):
    """Injected allocation failures on inserts, overwrites, removes, computes, growth and
    iterator creation: CHM_ENOMEM must leave the map unchanged."""
    s = Seed(backend, keymode, flags, **kw)
    for n in range(4):
        s.op(FAIL_ALLOC, n).op(PUT, n, 40 + n)
        s.op(FAIL_ALLOC, n).op(PUT, n, 50 + n)
        s.op(FAIL_ALLOC, n).op(REMOVE, n)
        s.op(FAIL_ALLOC, n).compute(20 + n, 60 + n)
    s.op(FAIL_ALLOC, 0x80).op(PUT, 30, 1)  # string keys: the key copy fails
    s.op(FAIL_ALLOC, 2).bulk(BULK_PUT, 0, 64 | 2)
    s.op(FAIL_ALLOC, 0).op(ITER_INIT, 0).op(ITER_NEXT, 0, UNTIL_END)
    s.op(FAIL_ALLOC, 1).op(PUT_IF_ABSENT, 31, 2).op(FAIL_ALLOC, 1).op(REPLACE, 31, 1, 0, 3)
    for n in range(4):  # chm_compute: CHM_ENOMEM before fn, or done
        s.op(FAIL_ALLOC, n).update(32 + n, UPD_SET, 70 + n)
        s.op(FAIL_ALLOC, n).update(32 + n, UPD_COUNTER, 0)
        s.op(FAIL_ALLOC, n).update(32 + n, UPD_DELETE, 0)
    s.op(FAIL_ALLOC, 0).op(REMOVE_IF, 31, 1, 0)
    s.op(FAIL_ALLOC, 0).op(CLEAR)  # never fails for lack of memory
    s.op(CHECK)
    return s


def randomized(backend, keymode, flags, rnd, n_ops, **kw):
    """A random mix over a small range: what libFuzzer would start from anyway."""
    s = Seed(backend, keymode, flags, **kw)
    for _ in range(n_ops):
        s.b.append(rnd.randrange(256 if rnd.random() < 0.9 else OP_COUNT))
        s.b.extend(rnd.randrange(256) for _ in range(rnd.randrange(1, 5)))
    return s


def seeds():
    out = []
    rnd = random.Random(20240601)
    for b in range(BACKENDS):
        out.append((f"b{b}-basic-int", basic(b, KM_INT, layout=1)))
        out.append((f"b{b}-basic-str", basic(b, KM_STR_COUNTED, F_COMPARE, quality=H_LOW,
                                             range_cls=5)))
        out.append((f"b{b}-growth-int", growth(b, KM_INT, F_PACKED, layout=2, capacity_cls=1,
                                               concurrency_cls=5)))
        out.append((f"b{b}-growth-str", growth(b, KM_STR_BUILTIN, F_RWLOCK_CK, seed16=7)))
        out.append((f"b{b}-collide-int", growth(b, KM_INT_CUSTOM, F_COMPARE | F_NO_VALUE_FREE,
                                                quality=H_CONST, capacity_cls=2)))
        out.append((f"b{b}-iter-int", iterate(b, KM_INT, F_RACE_RETURN, layout=3)))
        out.append((f"b{b}-iter-str", iterate(b, KM_STR_COUNTED, 0, quality=H_FULL,
                                              concurrency_cls=3)))
        out.append((f"b{b}-nested-int", nested(b, KM_INT, F_RWLOCK_CK | F_RACE_RETURN)))
        out.append((f"b{b}-nested-str", nested(b, KM_STR_COUNTED, F_COMPARE, quality=H_TOP)))
        out.append((f"b{b}-newops-int", newops(b, KM_INT, 0, layout=3)))
        out.append((f"b{b}-newops-str", newops(b, KM_STR_COUNTED, F_COMPARE, quality=H_LOW)))
        out.append((f"b{b}-nestedupdate-int", nested_update(b, KM_INT, F_RWLOCK_CK)))
        out.append((f"b{b}-nestedupdate-str", nested_update(b, KM_STR_BUILTIN, 0)))
        out.append((f"b{b}-allocfail-int", alloc_fail(b, KM_INT, 0, capacity_cls=0)))
        out.append((f"b{b}-allocfail-str", alloc_fail(b, KM_STR_COUNTED, 0)))
        out.append((f"b{b}-random", randomized(b, rnd.randrange(4), rnd.randrange(128), rnd,
                                               120, range_cls=3, capacity_cls=rnd.randrange(8))))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")
    os.makedirs(outdir, exist_ok=True)
    for name in os.listdir(outdir):
        if name.startswith("seed-"):
            os.remove(os.path.join(outdir, name))
    total = 0
    for name, s in seeds():
        with open(os.path.join(outdir, "seed-" + name), "wb") as fp:
            fp.write(bytes(s.b))
        total += len(s.b)
    print(f"fuzz_seed.py: {len(seeds())} seeds, {total} bytes in {os.path.normpath(outdir)}")


if __name__ == "__main__":
    main()
