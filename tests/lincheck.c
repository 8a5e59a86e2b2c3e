/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lincheck.c - see lincheck.h.
 */
#include "lincheck.h"

#include "chm.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The memo table may not grow past this (the step budget normally stops the search first). */
#define LC_MEMO_MAX_BYTES ((size_t)512 << 20)

bool lc_apply(const lc_op *op, lc_reg *r)
{
    switch (op->kind) {
    case LC_GET:
        if (!r->present)
            return op->rc == CHM_NOTFOUND;
        return op->rc == CHM_OK && op->out == r->value;
    case LC_PUT:
        if (r->present ? op->rc != CHM_EXISTS || op->out != r->value : op->rc != CHM_OK)
            return false;
        break;
    case LC_PUT_IF_ABSENT:
        if (r->present)
            return op->rc == CHM_EXISTS && op->out == r->value;
        if (op->rc != CHM_OK)
            return false;
        break;
    case LC_COMPUTE_IF_ABSENT:
        if (r->present)
            return op->rc == CHM_EXISTS && op->out == r->value;
        if (op->rc != CHM_OK || op->out != op->arg)
            return false;
        break;
    case LC_REMOVE:
        if (!r->present)
            return op->rc == CHM_NOTFOUND;
        if (op->rc != CHM_OK || op->out != r->value)
            return false;
        r->present = false;
        r->value = 0;
        return true;
    case LC_REPLACE:
        if (!r->present)
            return op->rc == CHM_NOTFOUND;
        if (r->value != op->expected)
            return op->rc == CHM_EXISTS;
        if (op->rc != CHM_OK)
            return false;
        break;
    case LC_REMOVE_IF:
        if (!r->present)
            return op->rc == CHM_NOTFOUND;
        if (r->value != op->expected)
            return op->rc == CHM_EXISTS;
        if (op->rc != CHM_OK)
            return false;
        r->present = false;
        r->value = 0;
        return true;
    case LC_COMPUTE: {
        /* the function saw the state at the linearization point, and decided from it */
        if ((bool)op->seen != r->present || (r->present && op->expected != r->value))
            return false;
        uint64_t v;
        int action = lc_compute_decide(r->present, r->value, op->arg, &v);
        if (action == 0) /* keep */
            return r->present ? op->rc == CHM_OK && op->out == r->value : op->rc == CHM_NOTFOUND;
        if (action == 2) { /* delete */
            if (op->rc != CHM_NOTFOUND)
                return false;
            r->present = false;
            r->value = 0;
            return true;
        }
        if (op->rc != CHM_OK || op->out != v)
            return false;
        r->present = true;
        r->value = v;
        return true;
    }
    default: return false;
    }
    /* every case that breaks out installs arg */
    r->present = true;
    r->value = op->arg;
    return true;
}

/* ---- memo: a set of (linearized bitset, register) --------------------------------------- */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct memo {
    size_t words;  /* bitset words */
    size_t stride; /* words per entry: bitset, present, value */
    uint64_t *arena;
    size_t used, cap; /* entries */
    uint64_t *hashes; /* per slot; meaningful where idx != 0 */
    uint32_t *idx;    /* per slot: entry index + 1, 0 = empty */
    size_t nslots;    /* power of two */
};

static bool memo_init(struct memo *m, size_t words)
{
    memset(m, 0, sizeof *m);
    m->words = words;
    m->stride = words + 2;
    m->nslots = 1024;
    m->hashes = malloc(m->nslots * sizeof *m->hashes);
    m->idx = calloc(m->nslots, sizeof *m->idx);
    return m->hashes != NULL && m->idx != NULL;
}

static void memo_fini(struct memo *m)
{
    free(m->arena);
    free(m->hashes);
    free(m->idx);
}

static bool memo_equal(const struct memo *m, size_t e, const uint64_t *bits, lc_reg r)
{
    const uint64_t *x = m->arena + e * m->stride;
    return x[m->words] == (uint64_t)r.present && x[m->words + 1] == r.value &&
           memcmp(x, bits, m->words * sizeof *bits) == 0;
}

static bool memo_grow_slots(struct memo *m)
{
    size_t n = m->nslots * 2;
    uint64_t *h = malloc(n * sizeof *h);
    uint32_t *ix = calloc(n, sizeof *ix);
    if (h == NULL || ix == NULL) {
        free(h);
        free(ix);
        return false;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        if (m->idx[i] == 0)
            continue;
        size_t j = m->hashes[i] & (n - 1);
        while (ix[j] != 0)
            j = (j + 1) & (n - 1);
        ix[j] = m->idx[i];
        h[j] = m->hashes[i];
    }
    free(m->hashes);
    free(m->idx);
    m->hashes = h;
    m->idx = ix;
    m->nslots = n;
    return true;
}

/* 1: inserted (new configuration), 0: already there, -1: out of memory or over the cap. */
static int memo_insert(struct memo *m, const uint64_t *bits, uint64_t bits_hash, lc_reg r)
{
    uint64_t h = bits_hash ^ mix(r.value ^ ((uint64_t)r.present << 63) ^ 0x5bd1e995u);
    size_t j = h & (m->nslots - 1);
    while (m->idx[j] != 0) {
        if (m->hashes[j] == h && memo_equal(m, m->idx[j] - 1, bits, r))
            return 0;
        j = (j + 1) & (m->nslots - 1);
    }
    if (m->used == m->cap) {
        size_t cap = m->cap == 0 ? 256 : m->cap * 2;
        if (cap * m->stride * sizeof(uint64_t) > LC_MEMO_MAX_BYTES || cap >= UINT32_MAX)
            return -1;
        uint64_t *a = realloc(m->arena, cap * m->stride * sizeof *a);
        if (a == NULL)
            return -1;
        m->arena = a;
        m->cap = cap;
    }
    uint64_t *x = m->arena + m->used * m->stride;
    memcpy(x, bits, m->words * sizeof *bits);
    x[m->words] = r.present;
    x[m->words + 1] = r.value;
    m->idx[j] = (uint32_t)(++m->used);
    m->hashes[j] = h;
    if (m->used * 2 > m->nslots && !memo_grow_slots(m))
        return -1;
    return 1;
}

/* ---- one key: Lowe's just-in-time linearization search ---------------------------------- */

struct event {
    uint64_t t;
    uint32_t op;
    uint32_t is_ret;
};

static int event_cmp(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* How much the operations of one key overlap (events sorted by time). */
static void overlap_stats(const struct event *ev, size_t n, uint32_t *open, uint32_t *pos,
                          bool *marked, lc_key_stats *ks)
{
    size_t nopen = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        uint32_t op = ev[i].op;
        if (!ev[i].is_ret) {
            if (nopen > 0) {
                marked[op] = true;
                for (size_t j = 0; j < nopen; j++)
                    marked[open[j]] = true;
            }
            pos[op] = (uint32_t)nopen;
            open[nopen++] = op;
            if (nopen > ks->max_open)
                ks->max_open = nopen;
        } else {
            uint32_t last = open[--nopen];
            open[pos[op]] = last;
            pos[last] = pos[op];
        }
    }
    for (size_t i = 0; i < n; i++)
        ks->overlapped += marked[i];
}

lc_verdict lc_check_key(const lc_op *ops, size_t n, lc_reg init, uint64_t budget, lc_key_stats *ks)
{
    lc_key_stats local;
    if (ks == NULL)
        ks = &local;
    memset(ks, 0, sizeof *ks);
    if (n == 0)
        return LC_LINEARIZABLE;
    if (n >= UINT32_MAX / 2 - 2)
        return LC_INVALID_INPUT;
    for (size_t i = 0; i < n; i++)
        if (ops[i].call >= ops[i].ret || ops[i].kind >= LC_KIND_COUNT)
            return LC_INVALID_INPUT;
    if (!init.present)
        init.value = 0;

    /* Nodes: 0 = head sentinel, 1..2n = the events in time order, 2n+1 = tail sentinel. */
    size_t nn = 2 * n + 2, tail = 2 * n + 1, words = (n + 63) / 64;
    struct event *ev = malloc(2 * n * sizeof *ev);
    uint32_t *next = malloc(nn * sizeof *next), *prev = malloc(nn * sizeof *prev);
    uint32_t *opof = malloc(nn * sizeof *opof), *match = malloc(nn * sizeof *match);
    uint32_t *call_node = malloc(n * sizeof *call_node);
    uint32_t *stack = malloc(n * sizeof *stack);
    lc_reg *saved = malloc(n * sizeof *saved);
    uint64_t *bits = calloc(words, sizeof *bits);
    bool *marked = calloc(n, sizeof *marked);
    struct memo memo;
    bool memo_ok = memo_init(&memo, words);
    lc_verdict verdict = LC_BUDGET; /* out of memory below counts as undecided */
    uint64_t nsteps = 0;
    if (ev == NULL || next == NULL || prev == NULL || opof == NULL || match == NULL ||
        call_node == NULL || stack == NULL || saved == NULL || bits == NULL || marked == NULL ||
        !memo_ok)
        goto out;

    for (size_t i = 0; i < n; i++) {
        ev[2 * i] = (struct event){ops[i].call, (uint32_t)i, 0};
        ev[2 * i + 1] = (struct event){ops[i].ret, (uint32_t)i, 1};
    }
    qsort(ev, 2 * n, sizeof *ev, event_cmp);
    for (size_t i = 1; i < 2 * n; i++) {
        if (ev[i].t == ev[i - 1].t) {
            verdict = LC_INVALID_INPUT;
            goto out;
        }
    }
    overlap_stats(ev, n, stack, call_node, marked, ks); /* borrows two arrays set below */
    for (size_t i = 0; i < nn; i++) {
        next[i] = (uint32_t)(i + 1 < nn ? i + 1 : 0);
        prev[i] = (uint32_t)(i > 0 ? i - 1 : 0);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        uint32_t node = (uint32_t)(i + 1);
        opof[node] = ev[i].op;
        if (!ev[i].is_ret)
            call_node[ev[i].op] = node;
        else
            match[call_node[ev[i].op]] = node;
    }

    /* Zobrist hashing keeps the bitset's hash current in O(1) per step. */
    uint64_t bits_hash = 0, salt = mix((uint64_t)n ^ 0x243f6a8885a308d3ULL);
    lc_reg reg = init;
    size_t depth = 0;
    uint32_t e = next[0];
    while (next[0] != tail) {
        if (++nsteps > budget)
            goto out; /* LC_BUDGET */
        uint32_t op = opof[e];
        if (e == call_node[op]) {
            /* a call event: try to linearize op now */
            lc_reg r = reg;
            if (lc_apply(&ops[op], &r)) {
                bits[op / 64] |= 1ULL << (op % 64);
                uint64_t h = bits_hash ^ mix(salt + op);
                int ins = memo_insert(&memo, bits, h, r);
                if (ins < 0)
                    goto out; /* LC_BUDGET: memory */
                if (ins > 0) {
                    stack[depth] = e;
                    saved[depth] = reg;
                    depth++;
                    reg = r;
                    bits_hash = h;
                    /* lift: unlink the call, then its return */
                    uint32_t m = match[e];
                    next[prev[e]] = next[e];
                    prev[next[e]] = prev[e];
                    next[prev[m]] = next[m];
                    prev[next[m]] = prev[m];
                    e = next[0];
                    continue;
                }
                bits[op / 64] &= ~(1ULL << (op % 64));
            }
            e = next[e];
        } else {
            /* a return event: its operation was not linearized before it returned, so this
               branch is dead; undo the last choice and try the next call after it */
            if (depth == 0) {
                verdict = LC_VIOLATION;
                goto out;
            }
            depth--;
            e = stack[depth];
            reg = saved[depth];
            uint32_t o = opof[e];
            bits[o / 64] &= ~(1ULL << (o % 64));
            bits_hash ^= mix(salt + o);
            /* unlift in reverse order: the return, then the call */
            uint32_t m = match[e];
            next[prev[m]] = m;
            prev[next[m]] = m;
            next[prev[e]] = e;
            prev[next[e]] = e;
            e = next[e];
        }
    }
    verdict = LC_LINEARIZABLE;

out:
    ks->steps = nsteps;
    ks->memo = memo.used;
    free(marked);
    free(ev);
    free(next);
    free(prev);
    free(opof);
    free(match);
    free(call_node);
    free(stack);
    free(saved);
    free(bits);
    memo_fini(&memo);
    return verdict;
}

/* ---- whole histories ----------------------------------------------------------------------- */

static int op_cmp(const void *a, const void *b)
{
    const lc_op *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->call < y->call ? -1 : x->call > y->call;
}

lc_verdict lc_check(lc_op *ops, size_t n, const lc_init *init, size_t ninit, uint64_t budget,
                    lc_stats *st)
{
    memset(st, 0, sizeof *st);
    qsort(ops, n, sizeof *ops, op_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ops[j].key == ops[i].key)
            j++;
        lc_reg reg = {false, 0};
        for (size_t k = 0; k < ninit; k++)
            if (init[k].key == ops[i].key)
                reg = init[k].reg;
        lc_key_stats ks;
        lc_verdict v = lc_check_key(ops + i, j - i, reg, budget, &ks);
        st->ops += j - i;
        st->keys++;
        if (j - i > st->max_len)
            st->max_len = j - i;
        st->steps += ks.steps;
        st->memo += ks.memo;
        st->overlapped += ks.overlapped;
        if (ks.steps > st->max_steps)
            st->max_steps = ks.steps;
        if (ks.max_open > st->max_open)
            st->max_open = ks.max_open;
        if (v != LC_LINEARIZABLE) {
            st->bad_key = ops[i].key;
            st->bad_first = i;
            st->bad_len = j - i;
            st->bad_init = reg;
            return v;
        }
        i = j;
    }
    return LC_LINEARIZABLE;
}

const char *lc_verdict_name(lc_verdict v)
{
    switch (v) {
    case LC_LINEARIZABLE: return "linearizable";
    case LC_VIOLATION: return "NOT linearizable";
    case LC_BUDGET: return "undecided (search budget exceeded)";
    case LC_INVALID_INPUT: return "invalid history";
    }
    return "?";
}

const char *lc_kind_name(int kind)
{
    static const char *const names[] = {"get",     "put",      "put_if_absent",
                                        "remove",  "replace",  "compute_if_absent",
                                        "compute", "remove_if"};
    return kind >= 0 && kind < LC_KIND_COUNT ? names[kind] : "?";
}

static const char *rc_name(int rc)
{
    switch (rc) {
    case CHM_OK: return "OK";
    case CHM_NOTFOUND: return "NOTFOUND";
    case CHM_EXISTS: return "EXISTS";
    default: return chm_strerror(rc);
    }
}

static void print_op(FILE *f, const lc_op *o)
{
    fprintf(f, "  [%8" PRIu64 ", %8" PRIu64 "] t%u %s(", o->call, o->ret, (unsigned)o->thread,
            lc_kind_name(o->kind));
    switch (o->kind) {
    case LC_PUT:
    case LC_PUT_IF_ABSENT:
    case LC_COMPUTE_IF_ABSENT: fprintf(f, "%#" PRIx64, o->arg); break;
    case LC_REPLACE: fprintf(f, "%#" PRIx64 " -> %#" PRIx64, o->expected, o->arg); break;
    case LC_REMOVE_IF: fprintf(f, "%#" PRIx64, o->expected); break;
    case LC_COMPUTE:
        if (o->seen)
            fprintf(f, "fn saw %#" PRIx64, o->expected);
        else
            fprintf(f, "fn saw absent; %#" PRIx64 " if absent", o->arg);
        break;
    default: break;
    }
    fprintf(f, ") = %s", rc_name(o->rc));
    bool has_out = (o->kind == LC_GET && o->rc == CHM_OK) ||
                   ((o->kind == LC_PUT || o->kind == LC_PUT_IF_ABSENT) && o->rc == CHM_EXISTS) ||
                   (o->kind == LC_REMOVE && o->rc == CHM_OK) ||
                   (o->kind == LC_COMPUTE_IF_ABSENT && (o->rc == CHM_OK || o->rc == CHM_EXISTS)) ||
                   (o->kind == LC_COMPUTE && o->rc == CHM_OK);
    if (has_out)
        fprintf(f, ", %#" PRIx64, o->out);
    fputc('\n', f);
}

void lc_print(FILE *f, const lc_op *ops, size_t n, const lc_reg *init)
{
    lc_op *s = malloc(n * sizeof *s + 1);
    if (s == NULL)
        return;
    memcpy(s, ops, n * sizeof *s);
    qsort(s, n, sizeof *s, op_cmp);
    if (init != NULL && init->present)
        fprintf(f, "  initial: %#" PRIx64 "\n", init->value);
    else if (init != NULL)
        fprintf(f, "  initial: absent\n");
    for (size_t i = 0; i < n; i++)
        print_op(f, &s[i]);
    free(s);
}
