/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lincheck.h - a linearizability checker for histories of single-key map operations, used by
 * test_linearizability.c (and unit-tested there on hand-written histories).
 *
 * A history is a set of completed operations, each with an invocation and a response
 * timestamp drawn from one totally ordered clock (distinct values; a < b means "a happened
 * before b"). Operation A precedes B in real time when A.ret < B.call; otherwise they overlap.
 *
 * Single-key operations on a map are P-compositional: the history is linearizable iff each
 * key's sub-history is linearizable against the sequential spec of one optional register
 * (absent, or holding a 64-bit value). lc_check splits by key; lc_check_key searches one key's
 * sub-history with the Wing-Gong algorithm as refined by Lowe ("just-in-time" linearization):
 * depth first over the operations that are minimal in real-time order, lifting each applied
 * operation out of a linked list of call/return events, backtracking when a return event is
 * reached, and memoizing every (set of linearized operations, register state) already explored,
 * so no configuration is searched twice. The search is bounded by a step budget; running out is
 * reported as LC_BUDGET, never as a pass.
 */
#ifndef CHM_LINCHECK_H
#define CHM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Operation kinds; the status codes and out-values follow include/chm.h exactly. */
typedef enum lc_kind {
    LC_GET,               /* CHM_OK out=value | CHM_NOTFOUND */
    LC_PUT,               /* CHM_OK (was absent) | CHM_EXISTS out=previous; then holds arg */
    LC_PUT_IF_ABSENT,     /* CHM_OK (inserted arg) | CHM_EXISTS out=present value, unchanged */
    LC_REMOVE,            /* CHM_OK out=removed value | CHM_NOTFOUND */
    LC_REPLACE,           /* CHM_OK (value was expected, now arg) | CHM_NOTFOUND | CHM_EXISTS */
    LC_COMPUTE_IF_ABSENT, /* CHM_OK out=arg (fn's result, inserted) | CHM_EXISTS out=present */
    LC_COMPUTE,           /* chm_compute with lc_compute_decide as its function, which saw
                             (seen, expected) = (present, old): CHM_OK out=the value after |
                             CHM_NOTFOUND (absent after) */
    LC_REMOVE_IF,         /* CHM_OK (value was expected, removed) | CHM_NOTFOUND | CHM_EXISTS */
    LC_KIND_COUNT
} lc_kind;

/* What the update function of LC_COMPUTE operations decides (an increment-or-delete, a function
 * of what it sees only, so the sequential spec knows it): for an absent key, insert @arg (the
 * operation's own value) unless arg % 8 == 0 (keep it absent); for a present one holding @old,
 * delete it when old % 4 == 0, keep it when old % 4 == 1, else store old + 1. Returns the
 * chm_compute_action; *v = the value to store on CHM_COMPUTE_SET. */
static inline int lc_compute_decide(bool present, uint64_t old, uint64_t arg, uint64_t *v)
{
    if (!present) {
        *v = arg;
        return arg % 8 == 0 ? 0 /* KEEP */ : 1 /* SET */;
    }
    *v = old + 1;
    return old % 4 == 0 ? 2 /* DELETE */ : old % 4 == 1 ? 0 /* KEEP */ : 1 /* SET */;
}

typedef struct lc_op {
    uint64_t call;     /* timestamp taken before the invocation */
    uint64_t ret;      /* timestamp taken after the response; call < ret */
    uint64_t key;      /* the key operated on */
    uint64_t arg;      /* value written: put, put_if_absent, replace's desired, the result the
                          compute function returns for this operation (compute_if_absent; for
                          compute: the value it inserts into an absent key) */
    uint64_t expected; /* replace, remove_if: the expected value; compute: the old value its
                          function saw (when seen) */
    uint64_t out;      /* value returned through the out-parameter (ignored where the status
                          says none was returned) */
    int32_t rc;        /* the status returned */
    uint16_t thread;   /* reports only */
    uint8_t kind;      /* lc_kind */
    uint8_t seen;      /* compute: its function saw the key present */
} lc_op;

/* The register: one key's state. value is 0 whenever present is false. */
typedef struct lc_reg {
    bool present;
    uint64_t value;
} lc_reg;

/* A key's state when the history begins (keys not listed start absent). */
typedef struct lc_init {
    uint64_t key;
    lc_reg reg;
} lc_init;

typedef enum lc_verdict {
    LC_LINEARIZABLE = 0,
    LC_VIOLATION,    /* no linearization exists */
    LC_BUDGET,       /* the search ran out of steps (or memory): undecided, a failure */
    LC_INVALID_INPUT /* call >= ret, equal timestamps within a key, unknown kind */
} lc_verdict;

/* What one key's check found besides the verdict. */
typedef struct lc_key_stats {
    uint64_t steps;      /* search steps */
    uint64_t memo;       /* configurations memoized */
    uint64_t overlapped; /* operations that overlap at least one other operation */
    uint64_t max_open;   /* most operations pending at one instant */
} lc_key_stats;

typedef struct lc_stats {
    uint64_t ops;        /* operations checked */
    uint64_t keys;       /* distinct keys */
    uint64_t max_len;    /* longest per-key history */
    uint64_t steps;      /* search steps, all keys */
    uint64_t max_steps;  /* most steps one key needed */
    uint64_t memo;       /* configurations memoized, all keys */
    uint64_t overlapped; /* operations overlapping another one of their key */
    uint64_t max_open;   /* most operations of one key pending at one instant */
    /* when the verdict is not LC_LINEARIZABLE: the key that failed and its operations, which
       are ops[bad_first .. bad_first + bad_len) of the array lc_check sorted */
    uint64_t bad_key;
    size_t bad_first, bad_len;
    lc_reg bad_init;
} lc_stats;

/* Apply one operation to the register: true (and *r updated) when the recorded status and
 * out-value are what the sequential spec gives from *r; false (and *r unchanged) otherwise. */
bool lc_apply(const lc_op *op, lc_reg *r);

/* Check the n operations of one key (any order; the key fields are ignored) starting from
 * init, in at most budget search steps. ks (may be NULL) receives the statistics. */
lc_verdict lc_check_key(const lc_op *ops, size_t n, lc_reg init, uint64_t budget, lc_key_stats *ks);

/* Check a multi-key history: sorts ops by (key, call) in place, then checks each key against
 * its initial state, stopping at the first key that is not linearizable. budget is per key. */
lc_verdict lc_check(lc_op *ops, size_t n, const lc_init *init, size_t ninit, uint64_t budget,
                    lc_stats *st);

const char *lc_verdict_name(lc_verdict v);
const char *lc_kind_name(int kind);

/* Print one key's history, sorted by call, one operation a line, after its initial state
 * (init NULL: no such line, for an excerpt). */
void lc_print(FILE *f, const lc_op *ops, size_t n, const lc_reg *init);

#endif /* CHM_LINCHECK_H */
