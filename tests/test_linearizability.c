/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_linearizability.c - every single-key operation of every thread-safe backend is
 * linearizable: concurrent random histories are recorded and checked key by key by
 * tests/lincheck.c (Wing-Gong / Lowe search with memoization), and the checker is shown to fail
 * on histories that are not linearizable.
 *
 * Usage
 *   test_linearizability             the default run (make test): >= 100,000 checked operations
 *                                    per backend pass (the same under the sanitizers), 2 and 4
 *                                    threads
 *   test_linearizability --stress    (or CHM_STRESS=1) the long run for `make stress`: 10M
 *                                    checked operations per backend pass, 2, 4 and 8 threads
 *   CHM_LINCHECK_SEED=N              the workload's PRNG seed (every run prints the one it used;
 *                                    thread interleavings are not reproducible, the op mix is)
 *   CHM_LINCHECK_BACKEND=NAME        only this backend ("rwlock", "binlock", ...)
 * A failing backend history is written to linearizability-<backend>-<config>-round<r>.txt in
 * the working directory (every key of the failing round) and its failing key is printed.
 *
 * Sub-tests
 *   checker_rejects      hand-written non-linearizable histories (a read of a value never
 *                        written, a stale read after a completed overwrite, two successful
 *                        put_if_absent with no remove between, a lost update, ...) are rejected
 *   checker_accepts      hand-written linearizable histories with overlapping operations are
 *                        accepted
 *   checker_vs_bruteforce  thousands of random small histories (half of them corrupted): the
 *                        checker's verdict equals an exhaustive search over every order that
 *                        respects real time, written independently in this file
 *   checker_stretched    long random histories made from a sequential run by stretching each
 *                        operation around its linearization point are accepted within budget;
 *                        the same with one read of a value never written is rejected
 *   checker_limits       the step budget gives LC_BUDGET (not a pass), bad input is refused,
 *                        a multi-key history is blamed on the right key
 *   history/<backend>    threads (2 and 4, oversubscribing the 2 cores) run random get, put,
 *                        put_if_absent, remove, replace, compute_if_absent, compute (an
 *                        increment-or-delete whose decision is a function of what it sees,
 *                        lc_compute_decide, recorded with its view) and remove_if on 4 or 16 keys,
 *                        with a value unique to each operation (so every read names its write),
 *                        plus unchecked "filler" inserts and removes of other keys that make the
 *                        table grow concurrently. Two configurations use the built-in integer
 *                        keys (the inline fast path), two use key operations and a compute
 *                        function that sometimes sched_yield() inside the map's operations, so
 *                        threads interleave mid-operation even on a busy machine. The run is
 *                        split into rounds (about 512 operations per key) separated by a
 *                        quiescent barrier; each round's history is checked, ending with a
 *                        chm_get of every key, part of the checked history, whose result is
 *                        the state the next round starts from. Printed per configuration: ops
 *                        checked, rounds, longest per-key history, how many ops overlapped
 *                        another on their key, search steps. When too few overlapped (threads
 *                        ran one at a time), rounds continue for up to half of tl_budget()
 *   catches_broken_put_if_absent/<backend>  the same workload over a wrapper whose
 *                        put_if_absent is a non-atomic get, sched_yield, put: a violation must be
 *                        found within a few rounds
 *   catches_stale_get/<backend>  likewise with a get that sometimes returns the value its thread
 *                        saw last instead of reading the map
 *
 * Each compute_if_absent also checks that its function ran exactly once when it returned CHM_OK
 * and never when it returned CHM_EXISTS; each compute that its function ran exactly once. The
 * rwlock backend runs every backend sub-test three times, once per lock kind (tl_lock_kind);
 * with ck_rwlock, whose waiters spin, the yielding configurations use the built-in keys (a lock
 * holder that yields would leave the others spinning for time slices).
 */
#include "testlib.h"

#include "chm_internal.h" /* chm__validate */
#include "lincheck.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIN_MAX_THREADS 8
#define LIN_MAX_KEYS 16
#define LIN_PER_KEY 512           /* operations per key and round (plus the final get) */
#define LIN_MIN_OVERLAP_PCT 5     /* see run_history */
#define LIN_BUDGET (1u << 20)     /* search steps per key and round */
#define STRETCH_MAX 400           /* checker_stretched: widest stretch of an op */
#define LIN_BROKEN_MAX_ROUNDS 40  /* a broken map must be caught within this many rounds */
#define FILLER_BIT (1ULL << 63)   /* filler keys; checked keys are 0..LIN_MAX_KEYS-1 */
#define BOGUS_TAG (0xffULL << 56) /* values never written (thread tags are 1..8) */

static bool g_stress;
static uint64_t g_seed = 0x11ea7ab1e5eedULL;

/* ---- helpers for hand-written histories ----------------------------------------------------- */

#define A 0xaaULL
#define B 0xbbULL
#define C 0xccULL
#define X 0x99ULL

#define GET(c, r, rc_, out_)                                                                       \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_GET, .rc = (rc_), .out = (out_)                        \
    }
#define PUT(c, r, v, rc_, old)                                                                     \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_PUT, .arg = (v), .rc = (rc_), .out = (old)             \
    }
#define PIA(c, r, v, rc_, cur)                                                                     \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_PUT_IF_ABSENT, .arg = (v), .rc = (rc_), .out = (cur)   \
    }
#define CIA(c, r, v, rc_, cur)                                                                     \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_COMPUTE_IF_ABSENT, .arg = (v), .rc = (rc_),            \
        .out = (cur)                                                                               \
    }
#define REM(c, r, rc_, old)                                                                        \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_REMOVE, .rc = (rc_), .out = (old)                      \
    }
#define REP(c, r, exp, des, rc_)                                                                   \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_REPLACE, .expected = (exp), .arg = (des), .rc = (rc_)  \
    }
#define RIF(c, r, exp, rc_)                                                                        \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_REMOVE_IF, .expected = (exp), .rc = (rc_)              \
    }
/* chm_compute whose function saw the key present with `old` (CMP) or absent (CMPA, inserting
 * `v` unless it decides to keep it absent); lc_compute_decide: A (0xaa) and B (0xbb) are
 * incremented, C (0xcc) deleted, X (0x99) kept. */
#define CMP(c, r, old, rc_, out_)                                                                  \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_COMPUTE, .seen = 1, .expected = (old), .rc = (rc_),    \
        .out = (out_)                                                                              \
    }
#define CMPA(c, r, v, rc_, out_)                                                                   \
    {                                                                                              \
        .call = (c), .ret = (r), .kind = LC_COMPUTE, .seen = 0, .arg = (v), .rc = (rc_),           \
        .out = (out_)                                                                              \
    }

#define OK CHM_OK
#define NF CHM_NOTFOUND
#define EX CHM_EXISTS

struct hcase {
    const char *name;
    lc_reg init;
    size_t n;
    lc_op ops[8];
};

#define ABSENT                                                                                     \
    {                                                                                              \
        false, 0                                                                                   \
    }
#define HOLDS(v)                                                                                   \
    {                                                                                              \
        true, (v)                                                                                  \
    }

static const struct hcase bad_cases[] = {
    {"a get returns a value never written", ABSENT, 2, {PUT(1, 2, A, OK, 0), GET(3, 4, OK, B)}},
    {"stale read after a completed overwrite",
     ABSENT,
     3,
     {PUT(1, 2, A, OK, 0), PUT(3, 4, B, EX, A), GET(5, 6, OK, A)}},
    {"two put_if_absent succeed with no remove between",
     ABSENT,
     2,
     {PIA(1, 4, A, OK, 0), PIA(2, 5, B, OK, 0)}},
    {"lost update: two overwrites replaced the same value",
     ABSENT,
     3,
     {PUT(1, 2, A, OK, 0), PUT(3, 6, B, EX, A), PUT(4, 7, C, EX, A)}},
    {"new-old inversion: a write seen, then unseen",
     ABSENT,
     3,
     {PUT(1, 10, A, OK, 0), GET(2, 3, OK, A), GET(4, 5, NF, 0)}},
    {"one value removed twice",
     ABSENT,
     3,
     {PUT(1, 2, A, OK, 0), REM(3, 6, OK, A), REM(4, 7, OK, A)}},
    {"replace succeeds against an overwritten value",
     ABSENT,
     3,
     {PUT(1, 2, A, OK, 0), PUT(3, 4, B, EX, A), REP(5, 6, A, C, OK)}},
    {"compute_if_absent inserts twice", ABSENT, 2, {CIA(1, 4, A, OK, A), CIA(2, 5, B, OK, B)}},
    {"compute_if_absent EXISTS shows a value never present",
     ABSENT,
     2,
     {CIA(1, 2, A, OK, A), CIA(3, 4, B, EX, B)}},
    {"compute_if_absent OK returns another value than fn's", ABSENT, 1, {CIA(1, 2, A, OK, B)}},
    {"remove of an absent key reports OK", ABSENT, 1, {REM(1, 2, OK, A)}},
    {"the initial value is ignored", HOLDS(X), 1, {GET(1, 2, NF, 0)}},
    {"a get misses an insert that completed before it",
     ABSENT,
     2,
     {PIA(1, 2, A, OK, 0), GET(3, 4, NF, 0)}},
    {"put reports a new key over a present one", HOLDS(X), 1, {PUT(1, 2, A, OK, 0)}},
    {"put_if_absent EXISTS on an absent key", ABSENT, 1, {PIA(1, 2, A, EX, X)}},
    {"replace NOTFOUND on a present key", HOLDS(X), 1, {REP(1, 2, X, A, NF)}},
    {"replace EXISTS although the value matched", HOLDS(X), 1, {REP(1, 2, X, A, EX)}},
    {"a removed value comes back",
     HOLDS(X),
     3,
     {REM(1, 2, OK, X), GET(3, 4, NF, 0), GET(5, 6, OK, X)}},
    {"concurrent overwrites each see the other's value",
     HOLDS(X),
     2,
     {PUT(1, 4, A, EX, B), PUT(2, 5, B, EX, A)}},
    {"lost update: two overlapping computes saw the same value",
     HOLDS(A),
     2,
     {CMP(1, 4, A, OK, A + 1), CMP(2, 5, A, OK, A + 1)}},
    {"a compute's result is not what its function decided from its view",
     HOLDS(A),
     1,
     {CMP(1, 2, A, OK, A + 5)}},
    {"a compute's function saw the key absent while it was present",
     HOLDS(X),
     1,
     {CMPA(1, 2, B, OK, B)}},
    {"a compute's function saw a value the key never held", HOLDS(X), 1, {CMP(1, 2, B, OK, B + 1)}},
    {"a compute deleted, yet the key is read later",
     HOLDS(C),
     2,
     {CMP(1, 2, C, NF, 0), GET(3, 4, OK, C)}},
    {"a compute kept the value but reports NOTFOUND", HOLDS(X), 1, {CMP(1, 2, X, NF, 0)}},
    {"two remove_if of one value both succeed",
     ABSENT,
     3,
     {PUT(1, 2, A, OK, 0), RIF(3, 6, A, OK), RIF(4, 7, A, OK)}},
    {"remove_if EXISTS although the value matched", HOLDS(X), 1, {RIF(1, 2, X, EX)}},
    {"remove_if OK on an absent key", ABSENT, 1, {RIF(1, 2, X, OK)}},
    {"remove_if OK against an overwritten value",
     HOLDS(X),
     2,
     {PUT(1, 2, A, EX, X), RIF(3, 4, X, OK)}},
};

static const struct hcase good_cases[] = {
    {"overlapping puts, reads in the order opposite to the calls",
     ABSENT,
     4,
     {PUT(1, 10, A, EX, B), PUT(2, 11, B, OK, 0), GET(3, 4, OK, B), GET(5, 6, OK, A)}},
    {"put_if_absent, remove, put_if_absent all overlapping",
     ABSENT,
     3,
     {PIA(1, 5, A, OK, 0), REM(2, 6, OK, A), PIA(3, 7, B, OK, 0)}},
    {"reads during an overwrite see the old, then the new value",
     HOLDS(X),
     3,
     {PUT(1, 6, A, EX, X), GET(2, 3, OK, X), GET(4, 5, OK, A)}},
    {"replace race: one wins, the other sees the new value",
     ABSENT,
     4,
     {PUT(1, 2, A, OK, 0), REP(3, 6, A, B, OK), REP(4, 7, A, C, EX), GET(8, 9, OK, B)}},
    {"compute_if_absent racers: one runs, the other sees its value",
     ABSENT,
     2,
     {CIA(1, 4, A, OK, A), CIA(2, 5, B, EX, A)}},
    {"a get overlapping a remove misses the key",
     HOLDS(X),
     3,
     {REM(1, 6, OK, X), GET(2, 3, NF, 0), GET(4, 5, NF, 0)}},
    {"one long get spans three writes and sees the middle one",
     ABSENT,
     4,
     {GET(1, 100, OK, B), PUT(2, 3, A, OK, 0), PUT(4, 5, B, EX, A), PUT(6, 7, C, EX, B)}},
    {"a late-called op linearizes first",
     ABSENT,
     3,
     {PUT(1, 10, A, EX, B), PIA(2, 11, B, OK, 0), GET(12, 13, OK, A)}},
    {"remove and re-insert inside one long put_if_absent",
     HOLDS(X),
     4,
     {PIA(1, 20, A, OK, 0), REM(2, 3, OK, X), GET(4, 5, OK, A), PUT(6, 7, B, EX, A)}},
    {"replace of an absent key, then of a present one",
     ABSENT,
     3,
     {REP(1, 2, A, B, NF), PUT(3, 4, A, OK, 0), REP(5, 6, A, B, OK)}},
    {"overlapping computes apply one after the other (the second saw the first's value)",
     HOLDS(A),
     3,
     {CMP(1, 5, A + 1, OK, A + 2), CMP(2, 6, A, OK, A + 1), GET(7, 8, OK, A + 2)}},
    {"a compute on an absent key inserts, then an increment and a delete",
     ABSENT,
     4,
     {CMPA(1, 2, B, OK, B), CMP(3, 4, B, OK, B + 1), PUT(5, 6, C, EX, B + 1), CMP(7, 8, C, NF, 0)}},
    {"a compute that keeps a present value", HOLDS(X), 2, {CMP(1, 4, X, OK, X), GET(2, 3, OK, X)}},
    {"remove_if loses to an overlapping put",
     HOLDS(X),
     3,
     {PUT(1, 5, A, EX, X), RIF(2, 6, X, EX), GET(7, 8, OK, A)}},
    {"remove_if wins, then an overlapping put inserts",
     HOLDS(X),
     3,
     {RIF(1, 5, X, OK), PUT(2, 6, A, OK, 0), GET(7, 8, OK, A)}},
};

static void run_cases(const struct hcase *cases, size_t ncases, lc_verdict want)
{
    for (size_t i = 0; i < ncases; i++) {
        const struct hcase *h = &cases[i];
        lc_verdict v = lc_check_key(h->ops, h->n, h->init, LIN_BUDGET, NULL);
        if (v != want) {
            FAIL("\"%s\": %s, want %s", h->name, lc_verdict_name(v), lc_verdict_name(want));
            lc_print(stdout, h->ops, h->n, &h->init);
        }
        /* the same history through lc_check, under a key, with the initial state by key */
        lc_op ops[8];
        memcpy(ops, h->ops, sizeof ops);
        for (size_t j = 0; j < h->n; j++)
            ops[j].key = 7;
        lc_init init = {7, h->init};
        lc_stats st;
        CHECK_EQ(lc_check(ops, h->n, &init, 1, LIN_BUDGET, &st), want);
        CHECK_EQ(st.ops, h->n);
    }
}

static void test_checker_rejects(void *arg)
{
    (void)arg;
    run_cases(bad_cases, sizeof bad_cases / sizeof bad_cases[0], LC_VIOLATION);
}

static void test_checker_accepts(void *arg)
{
    (void)arg;
    run_cases(good_cases, sizeof good_cases / sizeof good_cases[0], LC_LINEARIZABLE);
}

/* ---- an independent sequential spec and exhaustive search ---------------------------------- */

/* Which (kind, status) pairs return a value through the out-parameter (chm.h). */
static bool has_out(int kind, int rc)
{
    switch (kind) {
    case LC_GET: return rc == CHM_OK;
    case LC_PUT:
    case LC_PUT_IF_ABSENT: return rc == CHM_EXISTS;
    case LC_REMOVE: return rc == CHM_OK;
    case LC_COMPUTE_IF_ABSENT: return rc == CHM_OK || rc == CHM_EXISTS;
    case LC_COMPUTE: return rc == CHM_OK;
    default: return false;
    }
}

/* The compute function's rule, written again from lincheck.h's description (not calling it):
 * absent: insert arg unless arg % 8 == 0; present: old % 4 == 0 delete, == 1 keep, else
 * old + 1. 0 keep, 1 set (*v), 2 delete. */
static int ref_decide(bool present, uint64_t old, uint64_t arg, uint64_t *v)
{
    if (!present) {
        *v = arg;
        return (arg & 7) != 0 ? 1 : 0;
    }
    switch (old & 3) {
    case 0: return 2;
    case 1: return 0;
    default: *v = old + 1; return 1;
    }
}

/* Run op on the model (present, value): fills in its status and out-value. */
static void ref_exec(lc_op *o, bool *present, uint64_t *value)
{
    o->out = 0;
    if (o->kind == LC_GET || o->kind == LC_REMOVE) {
        o->rc = *present ? CHM_OK : CHM_NOTFOUND;
        o->out = *present ? *value : 0;
        if (o->kind == LC_REMOVE)
            *present = false;
    } else if (o->kind == LC_PUT) {
        o->rc = *present ? CHM_EXISTS : CHM_OK;
        o->out = *present ? *value : 0;
        *present = true;
        *value = o->arg;
    } else if (o->kind == LC_PUT_IF_ABSENT || o->kind == LC_COMPUTE_IF_ABSENT) {
        o->rc = *present ? CHM_EXISTS : CHM_OK;
        o->out = *present ? *value : o->kind == LC_COMPUTE_IF_ABSENT ? o->arg : 0;
        if (!*present) {
            *present = true;
            *value = o->arg;
        }
    } else if (o->kind == LC_REMOVE_IF) {
        o->rc = !*present ? CHM_NOTFOUND : *value == o->expected ? CHM_OK : CHM_EXISTS;
        if (o->rc == CHM_OK) {
            *present = false;
            *value = 0;
        }
    } else if (o->kind == LC_COMPUTE) {
        o->seen = *present;
        o->expected = *present ? *value : 0;
        uint64_t v = 0;
        int action = ref_decide(*present, *value, o->arg, &v);
        if (action == 1) {
            *present = true;
            *value = v;
        } else if (action == 2) {
            *present = false;
            *value = 0;
        }
        o->rc = *present ? CHM_OK : CHM_NOTFOUND;
        o->out = *present ? *value : 0;
    } else { /* replace */
        o->rc = !*present ? CHM_NOTFOUND : *value == o->expected ? CHM_OK : CHM_EXISTS;
        if (o->rc == CHM_OK)
            *value = o->arg;
    }
}

static bool ref_matches(const lc_op *o, bool *present, uint64_t *value)
{
    lc_op want = *o;
    bool p = *present;
    uint64_t v = *value;
    ref_exec(&want, &p, &v);
    if (want.rc != o->rc || (has_out(o->kind, o->rc) && want.out != o->out))
        return false;
    if (o->kind == LC_COMPUTE &&
        (want.seen != o->seen || (o->seen && want.expected != o->expected)))
        return false; /* the function's view is part of what the operation returned */
    *present = p;
    *value = v;
    return true;
}

/* Is there an order of the unused ops (bitmask) that respects real time and the spec? */
static bool ref_search(const lc_op *ops, size_t n, unsigned used, bool present, uint64_t value)
{
    if (used == (1u << n) - 1)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (used & (1u << i))
            continue;
        bool minimal = true;
        for (size_t j = 0; j < n && minimal; j++)
            if (!(used & (1u << j)) && ops[j].ret < ops[i].call)
                minimal = false;
        bool p = present;
        uint64_t v = value;
        if (minimal && ref_matches(&ops[i], &p, &v) && ref_search(ops, n, used | 1u << i, p, v))
            return true;
    }
    return false;
}

/* A random history of n ops: a sequential run on the model, each op stretched around its
 * linearization point by up to `width` points on each side (distinct timestamps). */
static void random_history(tl_rng *r, lc_op *ops, size_t n, uint64_t nvalues, uint64_t width,
                           bool unique_values, lc_reg *init)
{
    bool present = tl_below(r, 2) == 0;
    uint64_t value = present ? 1 + tl_below(r, nvalues) : 0;
    init->present = present;
    init->value = value;
    for (size_t i = 0; i < n; i++) {
        lc_op *o = &ops[i];
        memset(o, 0, sizeof *o);
        o->kind = (uint8_t)tl_below(r, LC_KIND_COUNT);
        o->arg = unique_values ? 1000 + i : 1 + tl_below(r, nvalues);
        if (o->kind == LC_REPLACE || o->kind == LC_REMOVE_IF)
            o->expected = tl_below(r, 3) == 0 || !present ? 1 + tl_below(r, nvalues) : value;
        ref_exec(o, &present, &value);
        uint64_t point = 100 * (i + 1);
        uint64_t lo = 1 + tl_below(r, width), hi = 1 + tl_below(r, width);
        if (tl_below(r, 64) == 0) /* now and then a very long op (a preempted thread) */
            hi += tl_below(r, 50 * width);
        lo = lo < point ? lo : point - 1;
        /* distinct timestamps: scale, then add a unique offset smaller than the scale */
        o->call = (point - lo) * 4096 + 2 * i;
        o->ret = (point + hi) * 4096 + 2 * i + 1;
    }
}

/* Change one op's response so that it may no longer fit (it still might). */
static void corrupt(tl_rng *r, lc_op *ops, size_t n, uint64_t nvalues)
{
    lc_op *o = &ops[tl_below(r, n)];
    if (tl_below(r, 2) == 0) {
        static const int rcs[] = {CHM_OK, CHM_NOTFOUND, CHM_EXISTS};
        o->rc = rcs[tl_below(r, 3)];
    } else {
        o->out = 1 + tl_below(r, nvalues);
    }
}

static void test_checker_vs_bruteforce(void *arg)
{
    (void)arg;
    tl_rng r = tl_rng_seed(g_seed ^ 0xb4);
    uint64_t cases = tl_scaled(20000, 4000), yes = 0, no = 0;
    for (uint64_t c = 0; c < cases; c++) {
        lc_op ops[7];
        lc_reg init;
        size_t n = 1 + tl_below(&r, 7);
        random_history(&r, ops, n, 3, 40 + tl_below(&r, 400), false, &init);
        if (tl_below(&r, 2) == 0)
            corrupt(&r, ops, n, 3);
        bool want = ref_search(ops, n, 0, init.present, init.value);
        lc_verdict v = lc_check_key(ops, n, init, LIN_BUDGET, NULL);
        if (v != (want ? LC_LINEARIZABLE : LC_VIOLATION)) {
            FAIL("case %" PRIu64 ": checker says %s, exhaustive search %s", c, lc_verdict_name(v),
                 want ? "linearizable" : "not");
            lc_print(stdout, ops, n, &init);
            break;
        }
        if (want)
            yes++;
        else
            no++;
    }
    tl_note("%" PRIu64 " random histories: %" PRIu64 " linearizable, %" PRIu64 " not", cases, yes,
            no);
    /* both verdicts are common, so the comparison means something */
    CHECK(yes * 10 > cases);
    CHECK(no * 10 > cases);
}

static void test_checker_stretched(void *arg)
{
    (void)arg;
    tl_rng r = tl_rng_seed(g_seed ^ 0x57);
    size_t n = 400;
    lc_op *ops = calloc(n, sizeof *ops);
    uint64_t rounds = tl_scaled(200, 40), max_ok = 0, max_bad = 0, max_open = 0;
    for (uint64_t i = 0; i < rounds && tl_failures() == 0; i++) {
        lc_reg init;
        /* stretch up to STRETCH_MAX points either way, 100 points between linearization points:
           up to ~2 * STRETCH_MAX / 100 ops pending at once, more than the threads of a real run
           produce (plus now and then a very long op, as a preempted thread makes) */
        random_history(&r, ops, n, 0, 20 + tl_below(&r, STRETCH_MAX), true, &init);
        lc_key_stats ks;
        if (!CHECK_EQ(lc_check_key(ops, n, init, LIN_BUDGET, &ks), LC_LINEARIZABLE))
            lc_print(stdout, ops, n, &init);
        max_ok = ks.steps > max_ok ? ks.steps : max_ok;
        max_open = ks.max_open > max_open ? ks.max_open : max_open;
        /* a read of a value no operation wrote can never be linearized: the search has to
           exhaust every configuration before that read returns */
        size_t g = tl_below(&r, n);
        for (size_t tries = 0; ops[g].kind != LC_GET && tries < n; tries++)
            g = (g + 1) % n;
        ops[g].kind = LC_GET;
        ops[g].rc = CHM_OK;
        ops[g].out = BOGUS_TAG | 1;
        CHECK_EQ(lc_check_key(ops, n, init, LIN_BUDGET, &ks), LC_VIOLATION);
        max_bad = ks.steps > max_bad ? ks.steps : max_bad;
    }
    tl_note("%" PRIu64 " histories of %zu ops, up to %" PRIu64 " pending at once: at most %" PRIu64
            " steps to accept, %" PRIu64 " to reject",
            rounds, n, max_open, max_ok, max_bad);
    free(ops);
}

static void test_checker_limits(void *arg)
{
    (void)arg;
    tl_rng r = tl_rng_seed(g_seed ^ 0x11);
    lc_op ops[64];
    lc_reg init;
    random_history(&r, ops, 64, 0, 300, true, &init);
    lc_key_stats ks;
    CHECK_EQ(lc_check_key(ops, 64, init, LIN_BUDGET, &ks), LC_LINEARIZABLE);
    CHECK(ks.steps >= 64);
    CHECK(ks.overlapped > 0 && ks.max_open >= 2);
    /* out of steps is undecided, reported as such */
    CHECK_EQ(lc_check_key(ops, 64, init, 20, &ks), LC_BUDGET);
    CHECK_EQ(ks.steps, 21);
    lc_stats st;
    for (size_t i = 0; i < 64; i++)
        ops[i].key = 3;
    lc_init in = {3, init};
    CHECK_EQ(lc_check(ops, 64, &in, 1, 20, &st), LC_BUDGET);
    CHECK_EQ(st.bad_key, 3);

    /* bad input */
    lc_op bad1[] = {GET(5, 5, NF, 0)};
    CHECK_EQ(lc_check_key(bad1, 1, (lc_reg)ABSENT, LIN_BUDGET, NULL), LC_INVALID_INPUT);
    lc_op bad2[] = {GET(1, 3, NF, 0), GET(3, 4, NF, 0)};
    CHECK_EQ(lc_check_key(bad2, 2, (lc_reg)ABSENT, LIN_BUDGET, NULL), LC_INVALID_INPUT);
    lc_op bad3[] = {GET(1, 2, NF, 0)};
    bad3[0].kind = 9;
    CHECK_EQ(lc_check_key(bad3, 1, (lc_reg)ABSENT, LIN_BUDGET, NULL), LC_INVALID_INPUT);
    CHECK_EQ(lc_check_key(NULL, 0, (lc_reg)ABSENT, LIN_BUDGET, NULL), LC_LINEARIZABLE);

    /* keys are independent: key 1 is fine, key 2 (starting at X) is not, key 5 is fine */
    lc_op multi[] = {PUT(1, 2, A, OK, 0), GET(3, 4, OK, X), GET(5, 6, OK, A), GET(7, 8, OK, B),
                     GET(9, 10, NF, 0)};
    static const uint64_t keys[] = {1, 2, 1, 2, 5};
    for (size_t i = 0; i < 5; i++)
        multi[i].key = keys[i];
    lc_init inits[] = {{2, HOLDS(X)}};
    CHECK_EQ(lc_check(multi, 5, inits, 1, LIN_BUDGET, &st), LC_VIOLATION);
    CHECK_EQ(st.bad_key, 2);
    CHECK_EQ(st.bad_len, 2);
    CHECK_EQ(multi[st.bad_first].key, 2);
    CHECK(st.bad_init.present && st.bad_init.value == X);
    /* ... and with key 2 reading X twice it passes, every key counted */
    lc_op fixed[] = {PUT(1, 2, A, OK, 0), GET(3, 4, OK, X), GET(5, 6, OK, A), GET(7, 8, OK, X),
                     GET(9, 10, NF, 0)};
    for (size_t i = 0; i < 5; i++)
        fixed[i].key = keys[i];
    CHECK_EQ(lc_check(fixed, 5, inits, 1, LIN_BUDGET, &st), LC_LINEARIZABLE);
    CHECK_EQ(st.keys, 3);
    CHECK_EQ(st.ops, 5);
    CHECK_EQ(st.max_len, 2);
}

#undef A
#undef B
#undef C
#undef X
#undef OK
#undef NF
#undef EX

/* ---- the concurrent workload ---------------------------------------------------------------- */

enum broken { BROKEN_NONE, BROKEN_PUT_IF_ABSENT, BROKEN_STALE_GET };

struct worker {
    tl_rng rng;
    uint64_t seq; /* unique per operation of this thread, across rounds */
    lc_op *ops;   /* this round's history */
    size_t n;
    uint64_t seen[LIN_MAX_KEYS]; /* the value this thread last saw a key hold */
    bool have_seen[LIN_MAX_KEYS];
    uint64_t fill_lo, fill_hi; /* this thread's live filler keys: sequence numbers [lo, hi) */
    _Alignas(64) char pad[64]; /* workers' hot fields on separate cache lines */
};

struct run {
    chm *m;
    int nthreads;
    unsigned nkeys;
    size_t per_thread; /* checked operations per thread and round */
    enum broken broken;
    bool yielding; /* the compute function yields (the map uses yielding_keys) */
    /* Workers live for the whole run: start and done (threads + the main thread) bracket each
       round; the main thread checks the round while they wait at start. stop is written before
       start is released and read after it is passed (the barrier orders it). */
    tl_barrier start, done;
    bool stop;

    /* The real-time clock of the history. Every operation takes a ticket before its call
       (fetch_add, acquire) and one after its return (fetch_add, release). If A's return ticket
       is smaller than B's call ticket, B's acquire read a value written by A's release RMW or
       by a later RMW in its release sequence (every write to the counter is an RMW), so A's
       return ticket synchronizes with B's call ticket and all of A happens before all of B:
       A really precedes B, and a linearizable map must order A before B. Ops whose tickets
       interleave are simply treated as concurrent, which is never wrong. With relaxed tickets
       the ticket order would imply no happens-before and the check could blame the map for
       an order the memory model never promised. */
    _Alignas(64) atomic_ullong ticket;
    _Alignas(64) struct worker w[LIN_MAX_THREADS];
};

static uint64_t value_of(int t, uint64_t key, uint64_t seq)
{
    return ((uint64_t)(t + 1) << 56) | ((key & 0xff) << 40) | (seq & 0xffffffffffULL);
}

static uint64_t filler_key(int t, uint64_t seq)
{
    return FILLER_BIT | ((uint64_t)t << 48) | seq;
}

/* ---- yielding keys: preemption points inside the operations ---- */

/* On a busy machine the threads often run one at a time, switching where a time slice ends,
 * which rarely falls inside a map operation. These key operations put switches inside them:
 * equal() runs while an operation holds its bin, segment or map lock, or walks a chain
 * lock-free; hash() at the start of an operation (under the lock on rwlock); the compute
 * function under the key's lock or reservation. Each sometimes yields the CPU, and the other
 * threads run against the half-done operation. */
static _Thread_local uint64_t t_yield_state;

static void maybe_yield(unsigned one_in)
{
    t_yield_state = t_yield_state * 6364136223846793005ULL + 1442695040888963407ULL;
    if ((t_yield_state >> 33) % one_in == 0)
        sched_yield();
}

static uint64_t yk_hash(uint64_t key, uint64_t seed)
{
    maybe_yield(64);
    return chm_hash_u64(key, seed);
}

static bool yk_equal(uint64_t a, uint64_t b)
{
    maybe_yield(16);
    return a == b;
}

static int yk_compare(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static const chm_keyops yielding_keys = {yk_hash, yk_equal, yk_compare, NULL, NULL};

/* Not with ck_rwlock, whose waiters spin: a holder that yields (hash and equal run under the
 * lock there) leaves them spinning for whole time slices, and one lock serializes everything
 * anyway. */
static bool can_yield(const chm_backend *b, chm_rwlock_kind kind)
{
    return kind != CHM_RWLOCK_CK || !tl_has_cap(b, CHM_CAP_RWLOCK_KINDS);
}

struct cia_arg {
    int t;
    uint64_t seq;
    bool yielding;
    unsigned calls;
};

/* The compute function: a value derived from the key it is given and the operation's id. */
static uint64_t cia_fn(uint64_t key, void *arg)
{
    struct cia_arg *a = arg;
    a->calls++;
    if (a->yielding)
        maybe_yield(4);
    return value_of(a->t, key, a->seq);
}

/* The update function of chm_compute operations: lc_compute_decide on what it sees, which it
 * records for the checker (the function's view is part of the operation's result). */
struct upd_arg {
    uint64_t arg;
    bool yielding;
    unsigned calls;
    bool present;
    uint64_t old;
};

static chm_compute_action lin_update(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                     void *arg)
{
    struct upd_arg *a = arg;
    (void)key;
    a->calls++;
    a->present = present;
    a->old = old;
    if (a->yielding)
        maybe_yield(4);
    uint64_t v = 0;
    int action = lc_compute_decide(present, old, a->arg, &v);
    if (action == CHM_COMPUTE_SET)
        *value = v;
    return (chm_compute_action)action;
}

/* Unchecked traffic on other keys so that the table grows (and segments, bins and read indexes
 * change) while the checked operations run. Each filler key has one writer: exact results. */
static void filler_op(struct run *r, struct worker *w, int t)
{
    if (w->fill_lo < w->fill_hi && tl_below(&w->rng, 3) == 0) {
        uint64_t k = filler_key(t, w->fill_lo++), old = 0;
        if (CHECK_RC(chm_remove(r->m, k, &old), CHM_OK))
            CHECK_EQ(old, tl_mix(k));
    } else {
        uint64_t k = filler_key(t, w->fill_hi++);
        CHECK_RC(chm_put(r->m, k, tl_mix(k), NULL), CHM_OK);
    }
}

/* put_if_absent done wrong: check, then act (with a yield to widen the window). */
static int broken_put_if_absent(chm *m, uint64_t k, uint64_t v, uint64_t *cur)
{
    if (chm_get(m, k, cur) == CHM_OK)
        return CHM_EXISTS;
    sched_yield();
    chm_put(m, k, v, NULL);
    return CHM_OK;
}

static void round_ops(struct run *r, int t)
{
    struct worker *w = &r->w[t];
    w->n = 0;
    while (w->n < r->per_thread) {
        uint64_t dice = tl_below(&w->rng, 100);
        if (dice < 6) {
            filler_op(r, w, t);
            continue;
        }
        lc_op *op = &w->ops[w->n++];
        uint64_t k = tl_below(&w->rng, r->nkeys), seq = w->seq++;
        uint64_t v = value_of(t, k, seq);
        memset(op, 0, sizeof *op);
        op->key = k;
        op->thread = (uint16_t)t;
        op->arg = v;
        dice = tl_below(&w->rng, 100);
        op->kind = dice < 26   ? LC_GET
                   : dice < 38 ? LC_PUT
                   : dice < 50 ? LC_PUT_IF_ABSENT
                   : dice < 61 ? LC_REMOVE
                   : dice < 72 ? LC_REPLACE
                   : dice < 80 ? LC_COMPUTE_IF_ABSENT
                   : dice < 92 ? LC_COMPUTE
                               : LC_REMOVE_IF;
        if (op->kind == LC_REPLACE || op->kind == LC_REMOVE_IF) /* mostly a value the key may
                                                                   still hold */
            op->expected =
                w->have_seen[k] && tl_below(&w->rng, 4) != 0 ? w->seen[k] : BOGUS_TAG | seq;
        if (op->kind == LC_GET || op->kind == LC_REMOVE)
            op->arg = 0;
        bool stale = r->broken == BROKEN_STALE_GET && op->kind == LC_GET && w->have_seen[k] &&
                     tl_below(&w->rng, 2) == 0;
        struct cia_arg ca = {t, seq, r->yielding, 0};
        struct upd_arg ua = {v, r->yielding, 0, false, 0};
        int rc = CHM_EINVAL;

        op->call = atomic_fetch_add_explicit(&r->ticket, 1, memory_order_acquire);
        switch (op->kind) {
        case LC_GET:
            if (stale) {
                rc = CHM_OK;
                op->out = w->seen[k];
            } else {
                rc = chm_get(r->m, k, &op->out);
            }
            break;
        case LC_PUT: rc = chm_put(r->m, k, v, &op->out); break;
        case LC_PUT_IF_ABSENT:
            rc = r->broken == BROKEN_PUT_IF_ABSENT ? broken_put_if_absent(r->m, k, v, &op->out)
                                                   : chm_put_if_absent(r->m, k, v, &op->out);
            break;
        case LC_REMOVE: rc = chm_remove(r->m, k, &op->out); break;
        case LC_REPLACE: rc = chm_replace(r->m, k, op->expected, v); break;
        case LC_COMPUTE_IF_ABSENT:
            rc = chm_compute_if_absent(r->m, k, cia_fn, &ca, &op->out);
            break;
        case LC_COMPUTE: rc = chm_compute(r->m, k, lin_update, &ua, &op->out); break;
        case LC_REMOVE_IF: rc = chm_remove_if(r->m, k, op->expected); break;
        }
        op->ret = atomic_fetch_add_explicit(&r->ticket, 1, memory_order_release);
        op->rc = rc;

        /* fn runs exactly once for the caller that inserts, never for one that finds the key */
        if (op->kind == LC_COMPUTE_IF_ABSENT && !CHECK_EQ(ca.calls, rc == CHM_OK ? 1 : 0))
            FAIL("compute_if_absent returned %s after fn ran %u times", tl_rc_name(rc), ca.calls);
        /* chm_compute: fn ran exactly once per call (CHM_OK or CHM_NOTFOUND); its view goes
         * into the history */
        if (op->kind == LC_COMPUTE) {
            if (!CHECK_EQ(ua.calls, 1))
                FAIL("compute returned %s after fn ran %u times", tl_rc_name(rc), ua.calls);
            op->seen = ua.present;
            op->expected = ua.old;
            if (rc == CHM_NOTFOUND)
                op->out = 0;
        }

        /* remember what the key holds now, as far as this thread knows (replace's expected) */
        bool holds = has_out(op->kind, rc) && op->kind != LC_REMOVE;
        uint64_t now = op->out; /* compute: the value after */
        if ((op->kind == LC_PUT) || (op->kind == LC_PUT_IF_ABSENT && rc == CHM_OK) ||
            (op->kind == LC_REPLACE && rc == CHM_OK)) {
            holds = true;
            now = v;
        }
        if (holds) {
            w->have_seen[k] = true;
            w->seen[k] = now;
        } else if (op->kind == LC_REMOVE || rc == CHM_NOTFOUND ||
                   (op->kind == LC_REMOVE_IF && rc == CHM_OK)) {
            w->have_seen[k] = false;
        }
    }
}

struct worker_arg {
    struct run *r;
    int t;
};

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    t_yield_state = tl_mix((uint64_t)a->t + 1); /* threads yield at different points */
    for (;;) {
        tl_barrier_wait(&a->r->start);
        if (a->r->stop)
            return NULL;
        round_ops(a->r, a->t);
        tl_barrier_wait(&a->r->done);
    }
}

struct hist_params {
    const chm_backend *b;
    chm_rwlock_kind kind;
    const char *label; /* backend name with "(pthread)" or "(ck)" for the other rwlock
                          passes */
    int threads;
    unsigned keys;
    uint64_t ops; /* checked operations, at least */
    enum broken broken;
    uint64_t max_rounds; /* 0 = as many as ops needs */
    bool yielding;       /* yielding_keys instead of the built-in integer keys */
};

struct hist_result {
    lc_verdict verdict; /* of the first failing round, else LC_LINEARIZABLE */
    uint64_t rounds, ops, max_len, steps, max_steps, memo, overlapped, max_open;
    uint64_t bad_round, bad_key, bad_len;
};

/* Print the shortest prefix (in call order) of a failing key's history that is already not
 * linearizable, or rather its last operations, where the violation shows. */
static void print_failure(const lc_op *ops, size_t n, lc_reg init)
{
    size_t p = n; /* ops is sorted by call (lc_check) */
    for (size_t i = 1; i < n; i++) {
        if (lc_check_key(ops, i, init, LIN_BUDGET, NULL) == LC_VIOLATION) {
            p = i;
            break;
        }
    }
    size_t from = p > 40 ? p - 40 : 0;
    printf("    the first %zu of its %zu ops (sorted by call) are already not linearizable; "
           "ops %zu..%zu of them:\n",
           p, n, from + 1, p);
    lc_print(stdout, ops + from, p - from, from == 0 ? &init : NULL);
}

/* Write every key of a failing round to a file, for the report. */
static void save_history(const struct hist_params *p, uint64_t round, lc_op *all, size_t n,
                         const lc_init *init, const lc_stats *st, lc_verdict v)
{
    char path[256];
    snprintf(path, sizeof path, "linearizability-%s-%dt-%uk-round%" PRIu64 ".txt", p->label,
             p->threads, p->keys, round);
    for (char *c = path; *c; c++)
        if (*c == '(' || *c == ')')
            *c = '_';
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        tl_note("could not write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f,
            "backend %s, %d threads, %u keys, round %" PRIu64 ", CHM_LINCHECK_SEED=%" PRIu64
            "\nverdict: %s on key %" PRIu64 "\n",
            p->label, p->threads, p->keys, round, g_seed, lc_verdict_name(v), st->bad_key);
    /* lc_check sorted all by (key, call) */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && all[j].key == all[i].key)
            j++;
        lc_reg reg = {false, 0};
        for (unsigned k = 0; k < p->keys; k++)
            if (init[k].key == all[i].key)
                reg = init[k].reg;
        fprintf(f, "\nkey %" PRIu64 " (%zu ops)\n", all[i].key, j - i);
        lc_print(f, all + i, j - i, &reg);
        i = j;
    }
    fclose(f);
    tl_note("history of the failing round saved to %s", path);
}

static void run_history(const struct hist_params *p, struct hist_result *res)
{
    memset(res, 0, sizeof *res);
    res->verdict = LC_LINEARIZABLE;
    chm_options o;
    memset(&o, 0, sizeof o);
    o.rwlock = p->kind;
    if (p->yielding)
        o.keys = &yielding_keys;
    struct run *r = aligned_alloc(64, sizeof *r);
    if (!CHECK(r != NULL))
        return;
    memset(r, 0, sizeof *r);
    r->m = chm_new(p->b, &o);
    if (!CHECK(r->m != NULL)) {
        free(r);
        return;
    }
    r->nthreads = p->threads;
    r->nkeys = p->keys;
    r->broken = p->broken;
    r->yielding = p->yielding;
    r->per_thread = (size_t)p->keys * LIN_PER_KEY / (size_t)p->threads;
    atomic_init(&r->ticket, 1);
    uint64_t per_round = r->per_thread * (uint64_t)p->threads;
    uint64_t rounds = (p->ops + per_round - 1) / per_round;
    if (p->max_rounds != 0 && rounds > p->max_rounds)
        rounds = p->max_rounds;
    uint64_t seed =
        g_seed ^ ((uint64_t)p->threads << 32) ^ ((uint64_t)p->keys << 40) ^ (uint64_t)p->broken;
    for (int t = 0; t < p->threads; t++) {
        r->w[t].rng = tl_rng_seed(seed + (uint64_t)t);
        r->w[t].ops = malloc(r->per_thread * sizeof(lc_op));
        if (!CHECK(r->w[t].ops != NULL))
            return;
    }
    lc_op *all = malloc((per_round + p->keys) * sizeof *all);
    lc_init init[LIN_MAX_KEYS];
    for (unsigned k = 0; k < p->keys; k++)
        init[k] = (lc_init){k, {false, 0}};

    tl_barrier_init(&r->start, (unsigned)p->threads + 1);
    tl_barrier_init(&r->done, (unsigned)p->threads + 1);
    tl_thread th[LIN_MAX_THREADS];
    struct worker_arg wa[LIN_MAX_THREADS];
    for (int t = 0; t < p->threads; t++) {
        wa[t] = (struct worker_arg){r, t};
        tl_spawn(&th[t], worker_main, &wa[t]);
    }

    /* After the rounds ops needs, a history checker run keeps going while too few operations
       overlapped one another (a busy machine ran the threads one at a time), for at most half
       the time budget of a loop: more chances for real interleavings, bounded time. */
    double extend_until = tl_now() + tl_budget() / 2;
    for (uint64_t round = 0; res->verdict == LC_LINEARIZABLE; round++) {
        if (round >= rounds &&
            (p->max_rounds != 0 || res->overlapped * 100 >= res->ops * LIN_MIN_OVERLAP_PCT ||
             tl_now() > extend_until))
            break;
        tl_barrier_wait(&r->start);
        tl_barrier_wait(&r->done);
        size_t n = 0;
        for (int t = 0; t < p->threads; t++) {
            memcpy(all + n, r->w[t].ops, r->w[t].n * sizeof *all);
            n += r->w[t].n;
        }
        /* quiescent: one get per key, part of the checked history, fixes the state the next
           round starts from */
        for (unsigned k = 0; k < p->keys; k++) {
            lc_op *op = &all[n++];
            memset(op, 0, sizeof *op);
            op->key = k;
            op->thread = (uint16_t)p->threads;
            op->kind = LC_GET;
            op->call = atomic_fetch_add_explicit(&r->ticket, 1, memory_order_acquire);
            op->rc = chm_get(r->m, k, &op->out);
            op->ret = atomic_fetch_add_explicit(&r->ticket, 1, memory_order_release);
        }
        lc_stats st;
        lc_verdict v = lc_check(all, n, init, p->keys, LIN_BUDGET, &st);
        res->rounds++;
        res->ops += st.ops;
        res->steps += st.steps;
        res->memo += st.memo;
        res->overlapped += st.overlapped;
        res->max_open = st.max_open > res->max_open ? st.max_open : res->max_open;
        res->max_len = st.max_len > res->max_len ? st.max_len : res->max_len;
        res->max_steps = st.max_steps > res->max_steps ? st.max_steps : res->max_steps;
        if (v != LC_LINEARIZABLE) {
            res->verdict = v;
            res->bad_round = round;
            res->bad_key = st.bad_key;
            res->bad_len = st.bad_len;
            if (p->broken == BROKEN_NONE) {
                FAIL("%s, %d threads, %u keys, round %" PRIu64 ": %s on key %" PRIu64
                     " (%zu ops); its history:",
                     p->label, p->threads, p->keys, round, lc_verdict_name(v), st.bad_key,
                     st.bad_len);
                print_failure(all + st.bad_first, st.bad_len, st.bad_init);
                save_history(p, round, all, n, init, &st, v);
            }
            break;
        }
        /* the final gets are the last ops of each key (sorted by call) */
        for (size_t i = 0; i < n; i++) {
            if (i + 1 == n || all[i + 1].key != all[i].key) {
                bool present = all[i].rc == CHM_OK;
                init[all[i].key].reg = (lc_reg){present, present ? all[i].out : 0};
            }
        }
        if (p->broken == BROKEN_NONE && tl_failures() != 0)
            break;
    }
    r->stop = true;
    tl_barrier_wait(&r->start);
    for (int t = 0; t < p->threads; t++)
        tl_join(&th[t]);
    if (p->broken == BROKEN_NONE)
        CHECK_EQ((uint64_t)(int64_t)chm__validate(r->m), 0);
    chm_free(r->m);
    for (int t = 0; t < p->threads; t++)
        free(r->w[t].ops);
    free(all);
    free(r);
}

/* ---- backend sub-tests ----------------------------------------------------------------------- */

struct config {
    int threads;
    unsigned keys;
    uint64_t ops;
    bool yielding;
};

/* The built-in integer keys (the inline fast path) and yielding_keys, 2 and 4 threads. */
static const struct config default_configs[] = {
    {2, 4, 26000, false},
    {4, 16, 26000, false},
    {2, 4, 26000, true},
    {4, 4, 26000, true},
};

static const struct config stress_configs[] = {
    {2, 4, 1500000, false}, {4, 4, 1500000, false}, {4, 16, 1500000, false}, {8, 8, 1000000, false},
    {2, 4, 1500000, true},  {4, 4, 1500000, true},  {8, 16, 1500000, true},
};

struct pass {
    const chm_backend *b;
    chm_rwlock_kind kind;
    char label[32];
};

static void test_history(void *arg)
{
    const struct pass *ps = arg;
    const struct config *cf = g_stress ? stress_configs : default_configs;
    size_t ncf = g_stress ? sizeof stress_configs / sizeof stress_configs[0]
                          : sizeof default_configs / sizeof default_configs[0];
    uint64_t total = 0;
    for (size_t i = 0; i < ncf && tl_failures() == 0; i++) {
        struct hist_params p = {
            ps->b,         ps->kind,   ps->label,
            cf[i].threads, cf[i].keys, cf[i].ops,
            BROKEN_NONE,   0,          cf[i].yielding && can_yield(ps->b, ps->kind)};
        struct hist_result res;
        double t0 = tl_now();
        run_history(&p, &res);
        total += res.ops;
        tl_note(
            "%d threads, %u keys%s: %" PRIu64 " ops checked in %" PRIu64 " rounds (%.2f s); max "
            "history %" PRIu64 " per key and round; %.0f%% of ops overlap another on their "
            "key, up to %" PRIu64 " pending at once; %" PRIu64 " search steps (max %" PRIu64
            " for one key and round)",
            p.threads, p.keys, p.yielding ? " (yielding)" : "", res.ops, res.rounds, tl_now() - t0,
            res.max_len, 100.0 * (double)res.overlapped / (double)(res.ops ? res.ops : 1),
            res.max_open, res.steps, res.max_steps);
    }
    if (tl_failures() == 0)
        CHECK(total >= (g_stress ? 10000000u : 100000u));
    tl_note("%s: %" PRIu64 " operations checked", ps->label, total);
}

static void catches(const struct pass *ps, enum broken broken)
{
    struct hist_params p = {
        ps->b, ps->kind, ps->label, 4, 4, UINT64_MAX / 2, broken, LIN_BROKEN_MAX_ROUNDS, false};
    struct hist_result res;
    run_history(&p, &res);
    if (!CHECK_EQ(res.verdict, LC_VIOLATION)) {
        FAIL("the broken map was %s after %" PRIu64 " rounds (%" PRIu64 " ops)",
             lc_verdict_name(res.verdict), res.rounds, res.ops);
        return;
    }
    tl_note("caught in round %" PRIu64 " (key %" PRIu64 ", %" PRIu64 " ops in its history)",
            res.bad_round + 1, res.bad_key, res.bad_len);
}

static void test_catches_broken_pia(void *arg)
{
    catches(arg, BROKEN_PUT_IF_ABSENT);
}

static void test_catches_stale_get(void *arg)
{
    catches(arg, BROKEN_STALE_GET);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    const char *e = getenv("CHM_STRESS");
    g_stress = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--stress") == 0)
            g_stress = true;
    e = getenv("CHM_LINCHECK_SEED");
    if (e != NULL && *e != '\0')
        g_seed = strtoull(e, NULL, 0);
    tl_watchdog(g_stress ? 0 : 280);
    printf("linearizability: %s run, CHM_LINCHECK_SEED=%" PRIu64 "\n",
           g_stress ? "stress" : "default", g_seed);

    tl_run("checker_rejects", test_checker_rejects, NULL);
    tl_run("checker_accepts", test_checker_accepts, NULL);
    tl_run("checker_vs_bruteforce", test_checker_vs_bruteforce, NULL);
    tl_run("checker_stretched", test_checker_stretched, NULL);
    tl_run("checker_limits", test_checker_limits, NULL);

    const char *only = getenv("CHM_LINCHECK_BACKEND");
    int backends = 0;
    for (const chm_backend *const *b = chm_backend_list(); *b != NULL; b++) {
        if (!chm_backend_thread_safe(*b))
            continue;
        if (only != NULL && *only != '\0' && strcmp(only, chm_backend_name(*b)) != 0)
            continue;
        backends++;
        int kinds = tl_lock_kinds(*b); /* CHM_CAP_RWLOCK_KINDS: once per lock kind */
        for (int kind = 0; kind < kinds; kind++) {
            struct pass ps = {*b, tl_lock_kind(kind), ""};
            snprintf(ps.label, sizeof ps.label, "%s%s", chm_backend_name(*b),
                     tl_lock_kind_label(kind));
            char name[96];
            snprintf(name, sizeof name, "history/%s", ps.label);
            tl_run(name, test_history, &ps);
            snprintf(name, sizeof name, "catches_broken_put_if_absent/%s", ps.label);
            tl_run(name, test_catches_broken_pia, &ps);
            snprintf(name, sizeof name, "catches_stale_get/%s", ps.label);
            tl_run(name, test_catches_stale_get, &ps);
        }
    }
    if (backends == 0)
        tl_skip("linearizability", "no thread-safe backend is built (or selected)");
    return tl_finish();
}
