/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_chm.c - differential fuzz target: the input bytes pick a backend, its options and a
 * sequence of operations, which run on a chm map and on a reference model (tl_model) side by
 * side; every return code, out-value and size is compared exactly, and a mismatch prints what
 * differed and aborts (libFuzzer records the input). Single-threaded and deterministic (fixed
 * hash seeds, no clock); value_free and key release run on the writing thread at the end of
 * its call or in chm_free; their bookkeeping is locked all the same.
 *
 * Checked beyond single results: iteration (fail-fast backends: CHM_ECONCURRENT exactly after a
 * structural change, sticky; otherwise, and on weakly consistent backends: no key twice, each
 * value one its key held since chm_iter_init, every key present throughout returned), compute
 * functions calling back into the map (the rules of chm.h, by CHM_CAP_COMPUTE_EXCLUSIVE:
 * nested writes run, a structural one failing the compute, or return CHM_EDEADLK), chm_compute's
 * decisions and its function's view, chm_remove_if, chm_clear (never CHM_ENOMEM), chm_visit and
 * its nested calls, chm_stats_get against the model, injected allocation failures
 * (CHM_ENOMEM leaves the map unchanged), chm__validate, and at the end that every value went to
 * value_free and every stored string key copy to release exactly once.
 *
 * Input format (bytes past the end read as 0; tools/fuzz_seed.py writes seeds in it):
 *   h0  backend: index into chm_backend_list(), modulo its length
 *   h1  bits 0-1 key mode (0 integer keys, default keyops; 1 integer keys, custom keyops;
 *       2 string keys, counted custom keyops; 3 chm_keys_string); bit 2 custom keyops have a
 *       compare; bit 3 no value_free; bit 4 packed; bit 5 on_race = CHM_RACE_RETURN;
 *       bit 6 rwlock = CHM_RWLOCK_CK; else bit 7 rwlock = CHM_RWLOCK_PTHREAD; else the default
 *       CHM_RWLOCK_ADAPTIVE
 *   h2  bits 0-1 integer key layout (0.., UINT64_MAX.., spread, both ends); bits 2-3 custom
 *       hash quality (FZ_HASH_*); bits 4-6 small key range {1,2,4,8,16,32,64,200}
 *   h3  bits 0-2 capacity {0,1,7,8,64,100,1000,5000}; bits 3-5 concurrency {0,1,2,3,16,17,64,256}
 *   h4 h5  hash seed (mixed; never 0, which would mean random)
 *   then operations until the input ends: one byte, opcode = byte % OP_COUNT, and bit 0 of
 *   byte / OP_COUNT asks for NULL out-pointers; the opcode's arguments follow (see enum op).
 *   A key byte kb names key id kb % range, or, for kb >= 0xF0, id 1000 + the next 16 bits
 *   (the ids bulk operations use). A value byte below 16 names a special value (0, UINT64_MAX,
 *   ...), any other a fresh value.
 */
#include "fuzz_support.h"

#include "chm_internal.h" /* chm__validate, chm__alloc_fail_nth */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum op {
    OP_GET,           /* key */
    OP_PUT,           /* key value */
    OP_PUT_IF_ABSENT, /* key value */
    OP_REMOVE,        /* key */
    OP_REPLACE,       /* key flag value value (flag bit 0 and key present: expected = current) */
    OP_COMPUTE,       /* key value n, then n % 3 nested operations: kind key value */
    OP_ITER_INIT,     /* slot */
    OP_ITER_NEXT,     /* slot steps (bit 7: until the end, else (steps & 15) + 1) */
    OP_ITER_FINI,     /* slot (bit 1: call chm_iter_fini twice) */
    OP_CHECK,         /* -: validate, size, full iteration, get of every model key */
    OP_BULK_PUT,      /* start16 count (ids 1000 + start ..; grows the table) */
    OP_BULK_REMOVE,   /* start16 count */
    OP_REMOVE_ALL,    /* - */
    OP_FAIL_ALLOC,    /* n: the next operation's (n & 15) + 1-th allocation fails (bit 7 and
                         counted string keys: its key retain fails instead) */
    OP_UPDATE,        /* key shape value n, then n % 3 nested operations: chm_compute whose
                         function decides by shape (enum upd_shape) from what it sees */
    OP_REMOVE_IF,     /* key flag value (flag bit 0 and key present: expected = current) */
    OP_CLEAR,         /* - */
    OP_VISIT,         /* key flags (bit 0: nested reads from fn; bit 1: a nested write, which
                         must be refused) */
    OP_STATS,         /* -: chm_stats_get against the model */
    OP_COUNT
};

/* What a chm_compute function decides (the shape byte modulo UPD_COUNT), from (present, old)
 * and the operation's value v. */
enum upd_shape {
    UPD_SET,           /* SET v */
    UPD_DELETE,        /* DELETE */
    UPD_KEEP,          /* KEEP (after storing junk into *value) */
    UPD_COUNTER,       /* SET old + 1 */
    UPD_SAME,          /* SET old if present (a KEEP), else v */
    UPD_OUTSIDE,       /* an action outside the enum (a KEEP), after storing junk */
    UPD_DROP,          /* absent: SET v; present: odd old DELETE, else SET old - 1 */
    UPD_LOAD_OR_STORE, /* present: KEEP; absent: SET v */
    UPD_COUNT
};

/* What a compute function does inside the map (the kind byte modulo NK_COUNT). */
enum nested_kind {
    NK_GET,
    NK_PUT,
    NK_PUT_IF_ABSENT,
    NK_REMOVE,
    NK_REPLACE,
    NK_COMPUTE,
    NK_SIZE,
    NK_ITERATE,
    NK_UPDATE,    /* chm_compute (shape from the flags), on another key than the computed one */
    NK_REMOVE_IF, /* expected = current when the flag's bit 0 is set */
    NK_CLEAR,
    NK_VISIT, /* chm_visit (with nested reads when the flag's bit 0 is set) */
    NK_COUNT
};

enum key_mode { KM_INT, KM_INT_CUSTOM, KM_STR_COUNTED, KM_STR_BUILTIN };

#define N_SLOTS 2
#define BUDGET 400000 /* work units per input (keys touched), to keep executions fast */
#define POISON 0xdeadbeefcafef00dULL

static const uint64_t special_values[] = {
    0, 1, 2, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, (uint64_t)1 << 63, ((uint64_t)1 << 63) - 1,
};
#define N_SPECIAL (sizeof special_values / sizeof special_values[0])

struct slot {
    bool open, ended, failed;
    int structural; /* fail-fast: 0 none since init, 1 a key added or removed, 2 maybe (ENOMEM) */
    chm_iter it;
    tl_model seen;    /* model key -> value returned */
    tl_model changed; /* model keys added or removed since init */
    fz_pairset held;  /* (model key, value) pairs held since init */
};

struct fz {
    fz_reader in;
    const chm_backend *b;
    bool fail_fast; /* CHM_CAP_FAIL_FAST_ITER: iteration is fail-fast */
    bool exclusive; /* CHM_CAP_COMPUTE_EXCLUSIVE: nested writes from a compute run */
    bool deferred;  /* CHM_CAP_DEFERRED_FREE */
    int keymode, style, quality;
    chm *m;
    tl_model model; /* model key (integer key, or string key id) -> value */
    bool count_frees;
    tl_freelog log;
    tl_model left; /* value -> times it left the map (expected value_free calls) */
    unsigned long left_total;
    struct slot slots[N_SLOTS];
    uint64_t range, vcounter, structural_epoch;
    long budget;
    bool trace, armed;
    int depth;        /* 1 inside a compute function */
    char kbuf[3][96]; /* the caller's key strings: one per call depth */
};

static struct fz F; /* one input at a time; static so its buffers are reused */

/* ---- keys ---------------------------------------------------------------------------------- */

static const char *const key_prefixes[] = {"", "k:", "a-much-longer-prefix-for-string-keys/", "z"};

static void key_string(uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s%" PRIu64, key_prefixes[id % 4], id);
}

static bool str_mode(const struct fz *f)
{
    return f->keymode == KM_STR_COUNTED || f->keymode == KM_STR_BUILTIN;
}

/* The model key of key id @id: the integer key itself, or the id of a string key. */
static uint64_t mkey_of_id(const struct fz *f, uint64_t id)
{
    if (str_mode(f))
        return id;
    switch (f->style) {
    case 0: return id;
    case 1: return UINT64_MAX - id;
    case 2: return id * 0x9e3779b97f4a7c15ULL;
    default: return (id & 1) ? UINT64_MAX - (id >> 1) : id >> 1;
    }
}

/* The chm key for model key @mk at call depth @depth (string keys live in that depth's buffer,
 * scribbled over after the call: the map must have made its own copy). */
static uint64_t map_key(struct fz *f, uint64_t mk, int depth)
{
    if (!str_mode(f))
        return mk;
    key_string(mk, f->kbuf[depth], sizeof f->kbuf[depth]);
    return (uint64_t)(uintptr_t)f->kbuf[depth];
}

static void scribble(struct fz *f, int depth)
{
    memset(f->kbuf[depth], '#', sizeof f->kbuf[depth] - 1);
    f->kbuf[depth][sizeof f->kbuf[depth] - 1] = '\0';
}

static const char *kdesc(const struct fz *f, uint64_t mk)
{
    static char buf[128];
    if (str_mode(f)) {
        char s[96];
        key_string(mk, s, sizeof s);
        snprintf(buf, sizeof buf, "\"%s\"", s);
    } else {
        snprintf(buf, sizeof buf, "0x%" PRIx64, mk);
    }
    return buf;
}

/* The model key of a key returned by iteration (string keys: checked to be the map's own live
 * copy and a string this input inserted). */
static uint64_t mkey_from_map(struct fz *f, uint64_t k)
{
    if (!str_mode(f))
        return k;
    const char *s = (const char *)(uintptr_t)k;
    for (int d = 0; d < 3; d++)
        if (s == f->kbuf[d])
            fz_fail("iteration returned the caller's key buffer, not the map's copy");
    if (f->keymode == KM_STR_COUNTED && !fz_str_is_live(k))
        fz_fail("iteration returned key %p, which is not a live stored copy", (void *)s);
    size_t len = strlen(s), i = len;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    uint64_t id = strtoull(s + i, NULL, 10);
    char want[96];
    key_string(id, want, sizeof want);
    if (i == len || strcmp(s, want) != 0)
        fz_fail("iteration returned key \"%.80s\", never inserted", s);
    return id;
}

static uint64_t read_mkey(struct fz *f)
{
    uint8_t kb = fz_u8(&f->in);
    uint64_t id = kb >= 0xF0 ? 1000 + fz_u16(&f->in) : kb % f->range;
    return mkey_of_id(f, id);
}

static uint64_t read_value(struct fz *f)
{
    uint8_t vb = fz_u8(&f->in);
    if (vb < 16)
        return special_values[vb % N_SPECIAL];
    return tl_mix(++f->vcounter * 0x100 + vb);
}

/* ---- the model, and what open iterators must allow for ------------------------------------- */

static void model_set(struct fz *f, uint64_t mk, uint64_t v)
{
    bool added = tl_model_put(&f->model, mk, v, NULL);
    if (added)
        f->structural_epoch++;
    for (int i = 0; i < N_SLOTS; i++) {
        struct slot *s = &f->slots[i];
        if (!s->open)
            continue;
        fz_pairset_add(&s->held, mk, v);
        if (added) {
            tl_model_put(&s->changed, mk, 1, NULL);
            s->structural = 1;
        }
    }
}

static void model_del(struct fz *f, uint64_t mk)
{
    if (!tl_model_remove(&f->model, mk, NULL))
        return;
    f->structural_epoch++;
    for (int i = 0; i < N_SLOTS; i++) {
        struct slot *s = &f->slots[i];
        if (s->open) {
            tl_model_put(&s->changed, mk, 1, NULL);
            s->structural = 1;
        }
    }
}

static void value_left(struct fz *f, uint64_t v)
{
    if (f->count_frees) {
        tl_model_add(&f->left, v, 1);
        f->left_total++;
    }
}

/* ---- result checks ------------------------------------------------------------------------- */

static void want_rc(struct fz *f, const char *what, uint64_t mk, int got, int want)
{
    if (got != want)
        fz_fail("%s(%s): returned %s, the model expects %s", what, kdesc(f, mk), tl_rc_name(got),
                tl_rc_name(want));
}

static void want_val(struct fz *f, const char *what, uint64_t mk, uint64_t got, uint64_t want)
{
    if (got != want)
        fz_fail("%s(%s): out-value 0x%" PRIx64 ", the model has 0x%" PRIx64, what, kdesc(f, mk),
                got, want);
}

/* Nested writes from a compute function: backends whose compute holds the whole map
 * (CHM_CAP_COMPUTE_EXCLUSIVE) run them; the others refuse. */
static bool nested_write_refused(struct fz *f, const char *what, uint64_t mk, int rc)
{
    if (f->depth == 0 || f->exclusive)
        return false;
    want_rc(f, what, mk, rc, CHM_EDEADLK);
    return true;
}

/* CHM_ENOMEM under an injected failure: the map must be unchanged (checked at once for the key,
 * and by every later comparison). A fail-fast iterator may or may not notice a failed growth. */
static bool enomem(struct fz *f, const char *what, uint64_t mk, int rc)
{
    if (rc != CHM_ENOMEM)
        return false;
    if (!f->armed)
        fz_fail("%s(%s): CHM_ENOMEM without an injected allocation failure", what, kdesc(f, mk));
    chm__alloc_disarm();
    fz_str_fail_next_retain(false);
    f->armed = false;
    uint64_t cur, got = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    int rc2 = chm_get(f->m, map_key(f, mk, f->depth), &got);
    scribble(f, f->depth);
    want_rc(f, "chm_get after CHM_ENOMEM", mk, rc2, present ? CHM_OK : CHM_NOTFOUND);
    if (present)
        want_val(f, "chm_get after CHM_ENOMEM", mk, got, cur);
    for (int i = 0; i < N_SLOTS; i++)
        if (f->slots[i].open && f->slots[i].structural == 0)
            f->slots[i].structural = 2;
    return true;
}

/* ---- single-key operations ----------------------------------------------------------------- */

static void do_get(struct fz *f, uint64_t mk, bool null_out)
{
    uint64_t cur, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    int rc = chm_get(f->m, map_key(f, mk, f->depth), null_out ? NULL : &out);
    scribble(f, f->depth);
    if (enomem(f, "chm_get", mk, rc))
        return;
    want_rc(f, "chm_get", mk, rc, present ? CHM_OK : CHM_NOTFOUND);
    if (present && !null_out)
        want_val(f, "chm_get", mk, out, cur);
}

static void do_put(struct fz *f, uint64_t mk, uint64_t v, bool null_out)
{
    uint64_t cur, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    int rc = chm_put(f->m, map_key(f, mk, f->depth), v, null_out ? NULL : &out);
    scribble(f, f->depth);
    if (nested_write_refused(f, "chm_put", mk, rc) || enomem(f, "chm_put", mk, rc))
        return;
    want_rc(f, "chm_put", mk, rc, present ? CHM_EXISTS : CHM_OK);
    if (present) {
        if (!null_out)
            want_val(f, "chm_put", mk, out, cur);
        if (cur != v) /* a value replaced by itself has not left the map */
            value_left(f, cur);
    }
    model_set(f, mk, v);
}

static void do_put_if_absent(struct fz *f, uint64_t mk, uint64_t v, bool null_out)
{
    uint64_t cur, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    int rc = chm_put_if_absent(f->m, map_key(f, mk, f->depth), v, null_out ? NULL : &out);
    scribble(f, f->depth);
    if (nested_write_refused(f, "chm_put_if_absent", mk, rc) ||
        enomem(f, "chm_put_if_absent", mk, rc))
        return;
    want_rc(f, "chm_put_if_absent", mk, rc, present ? CHM_EXISTS : CHM_OK);
    if (present && !null_out)
        want_val(f, "chm_put_if_absent", mk, out, cur);
    if (!present)
        model_set(f, mk, v);
}

static void do_remove(struct fz *f, uint64_t mk, bool null_out)
{
    uint64_t cur, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    int rc = chm_remove(f->m, map_key(f, mk, f->depth), null_out ? NULL : &out);
    scribble(f, f->depth);
    if (nested_write_refused(f, "chm_remove", mk, rc) || enomem(f, "chm_remove", mk, rc))
        return;
    want_rc(f, "chm_remove", mk, rc, present ? CHM_OK : CHM_NOTFOUND);
    if (present) {
        if (!null_out)
            want_val(f, "chm_remove", mk, out, cur);
        value_left(f, cur);
        model_del(f, mk);
    }
}

static void do_replace(struct fz *f, uint64_t mk, bool use_current, uint64_t expected,
                       uint64_t desired)
{
    uint64_t cur;
    bool present = tl_model_get(&f->model, mk, &cur);
    if (present && use_current)
        expected = cur;
    int rc = chm_replace(f->m, map_key(f, mk, f->depth), expected, desired);
    scribble(f, f->depth);
    if (nested_write_refused(f, "chm_replace", mk, rc) || enomem(f, "chm_replace", mk, rc))
        return;
    int want = !present ? CHM_NOTFOUND : cur == expected ? CHM_OK : CHM_EXISTS;
    want_rc(f, "chm_replace", mk, rc, want);
    if (want == CHM_OK) {
        if (cur != desired)
            value_left(f, cur);
        model_set(f, mk, desired);
    }
}

/* ---- compute_if_absent, and what its function does inside the map -------------------------- */

struct nested {
    int kind;
    uint64_t mk, v;
    uint8_t raw; /* for flags */
};

struct compute_ctx {
    struct fz *f;
    uint64_t mk, result;
    unsigned calls;
    int n;
    struct nested ops[2];
};

static void full_iteration(struct fz *f, const char *what);
static void do_compute(struct fz *f, uint64_t mk, uint64_t result, int n, const struct nested *ops,
                       bool null_out);
static void do_update(struct fz *f, uint64_t mk, int shape, uint64_t v, int n,
                      const struct nested *ops, bool null_out);
static void do_remove_if(struct fz *f, uint64_t mk, bool use_current, uint64_t expected);
static void do_clear(struct fz *f);
static void do_visit(struct fz *f, uint64_t mk, uint8_t flags);

/* The bytes @f's map holds (chm_stats_get). */
static size_t map_bytes(struct fz *f)
{
    chm_stats st;
    if (chm_stats_get(f->m, &st) != CHM_OK)
        fz_fail("chm_stats_get inside a compute function failed");
    return st.bytes;
}

/* Run one call of a compute function. On a backend whose nested writes run (exclusive computes:
 * a Go table), a nested call that reserves room for an absent key may start a growth of the
 * table and then insert nothing (a nested chm_compute that keeps the key absent): no key
 * changed, but the table did -- a growth start is a structural change there (unsafe.c's
 * modcount), so the enclosing compute returns CHM_ECONCURRENT and fail-fast iterators end. A
 * growth start allocates the new array, and nothing else a call that changes no key does makes
 * the map's bytes grow: so bytes that grew across the call count as a structural change. */
static void run_nested_call(struct fz *f, const struct nested *op);

static void run_nested(struct fz *f, const struct nested *op)
{
    if (!f->exclusive) {
        run_nested_call(f, op);
        return;
    }
    size_t before = map_bytes(f);
    run_nested_call(f, op);
    if (map_bytes(f) > before) {
        f->structural_epoch++;
        for (int i = 0; i < N_SLOTS; i++)
            if (f->slots[i].open && f->slots[i].structural == 0)
                f->slots[i].structural = 2; /* may end with CHM_ECONCURRENT */
    }
}

static void run_nested_call(struct fz *f, const struct nested *op)
{
    switch (op->kind) {
    case NK_GET: do_get(f, op->mk, op->raw & 1); break;
    case NK_PUT: do_put(f, op->mk, op->v, op->raw & 1); break;
    case NK_PUT_IF_ABSENT: do_put_if_absent(f, op->mk, op->v, op->raw & 1); break;
    case NK_REMOVE: do_remove(f, op->mk, op->raw & 1); break;
    case NK_REPLACE: do_replace(f, op->mk, op->raw & 1, op->v, op->v ^ 1); break;
    case NK_COMPUTE: do_compute(f, op->mk, op->v, 0, NULL, op->raw & 1); break;
    case NK_SIZE: {
        size_t got = chm_size(f->m);
        if (got != tl_model_size(&f->model))
            fz_fail("chm_size inside a compute function: %zu, the model has %zu", got,
                    tl_model_size(&f->model));
        break;
    }
    case NK_UPDATE:
        do_update(f, op->mk, (op->raw >> 1) % UPD_COUNT, op->v, 0, NULL, op->raw & 1);
        break;
    case NK_REMOVE_IF: do_remove_if(f, op->mk, op->raw & 1, op->v); break;
    case NK_CLEAR: do_clear(f); break;
    case NK_VISIT: do_visit(f, op->mk, op->raw & 1); break;
    default: full_iteration(f, "iteration inside a compute function"); break;
    }
}

static uint64_t compute_fn(uint64_t key, void *arg)
{
    struct compute_ctx *c = arg;
    struct fz *f = c->f;
    c->calls++;
    if (str_mode(f)) {
        char want[96];
        key_string(c->mk, want, sizeof want);
        if (strcmp((const char *)(uintptr_t)key, want) != 0)
            fz_fail("compute function called with key \"%.80s\", want %s",
                    (const char *)(uintptr_t)key, kdesc(f, c->mk));
    } else if (key != c->mk) {
        fz_fail("compute function called with key 0x%" PRIx64 ", want %s", key, kdesc(f, c->mk));
    }
    if (c->n > 0) {
        f->depth++;
        for (int i = 0; i < c->n; i++)
            run_nested(f, &c->ops[i]);
        f->depth--;
    }
    return c->result;
}

static void do_compute(struct fz *f, uint64_t mk, uint64_t result, int n, const struct nested *ops,
                       bool null_out)
{
    uint64_t cur, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    struct compute_ctx c = {.f = f, .mk = mk, .result = result, .n = n};
    if (n > 0)
        memcpy(c.ops, ops, (size_t)n * sizeof *ops);
    uint64_t epoch = f->structural_epoch;
    int depth = f->depth;
    int rc =
        chm_compute_if_absent(f->m, map_key(f, mk, depth), compute_fn, &c, null_out ? NULL : &out);
    scribble(f, depth);
    if (nested_write_refused(f, "chm_compute_if_absent", mk, rc)) {
        if (c.calls != 0)
            fz_fail("chm_compute_if_absent(%s) refused as a nested write, yet fn ran",
                    kdesc(f, mk));
        return;
    }
    if (c.calls > 1)
        fz_fail("chm_compute_if_absent(%s): fn ran %u times", kdesc(f, mk), c.calls);
    if (enomem(f, "chm_compute_if_absent", mk, rc)) {
        if (c.calls != 0) /* every backend allocates before fn (chm.h) */
            fz_fail("chm_compute_if_absent(%s): CHM_ENOMEM after fn ran", kdesc(f, mk));
        return;
    }
    if (present) {
        want_rc(f, "chm_compute_if_absent", mk, rc, CHM_EXISTS);
        if (c.calls != 0)
            fz_fail("chm_compute_if_absent(%s): the key was present, yet fn ran", kdesc(f, mk));
        if (!null_out)
            want_val(f, "chm_compute_if_absent", mk, out, cur);
        return;
    }
    if (c.calls != 1)
        fz_fail("chm_compute_if_absent(%s): absent key, fn ran %u times", kdesc(f, mk), c.calls);
    if (f->structural_epoch != epoch) {
        /* only exclusive computes let fn change the map; then nothing is inserted, and fn's
         * value goes to value_free */
        want_rc(f, "chm_compute_if_absent (fn changed the map)", mk, rc, CHM_ECONCURRENT);
        value_left(f, result);
        return;
    }
    want_rc(f, "chm_compute_if_absent", mk, rc, CHM_OK);
    if (!null_out)
        want_val(f, "chm_compute_if_absent", mk, out, result);
    model_set(f, mk, result);
}

/* ---- chm_compute, chm_remove_if, chm_clear, chm_visit, chm_stats_get ---------------------- */

/* The decision of shape @shape from (present, old) and the operation's value @v: the action
 * (outside the enum for UPD_OUTSIDE) and *set, the value a SET stores. */
static int upd_decide(int shape, bool present, uint64_t old, uint64_t v, uint64_t *set)
{
    *set = v;
    switch (shape) {
    case UPD_SET: return CHM_COMPUTE_SET;
    case UPD_DELETE: return CHM_COMPUTE_DELETE;
    case UPD_KEEP: *set = v ^ 0x5a5a; return CHM_COMPUTE_KEEP;
    case UPD_COUNTER: *set = old + 1; return CHM_COMPUTE_SET;
    case UPD_SAME: *set = present ? old : v; return CHM_COMPUTE_SET;
    case UPD_OUTSIDE: *set = v ^ 0xa5a5; return 3 + (int)(v & 0xff);
    case UPD_DROP:
        if (!present)
            return CHM_COMPUTE_SET;
        *set = old - 1;
        return (old & 1) ? CHM_COMPUTE_DELETE : CHM_COMPUTE_SET;
    default: return present ? CHM_COMPUTE_KEEP : CHM_COMPUTE_SET;
    }
}

struct update_ctx {
    struct fz *f;
    uint64_t mk, v;
    int shape;
    unsigned calls;
    bool want_present; /* the model's view when the call started */
    uint64_t want_old;
    int action;
    uint64_t set;
    int n;
    struct nested ops[2];
};

static void check_fn_key(struct fz *f, uint64_t key, uint64_t mk, const char *what)
{
    if (str_mode(f)) {
        char want[96];
        key_string(mk, want, sizeof want);
        if (strcmp((const char *)(uintptr_t)key, want) != 0)
            fz_fail("%s called with key \"%.80s\", want %s", what, (const char *)(uintptr_t)key,
                    kdesc(f, mk));
    } else if (key != mk) {
        fz_fail("%s called with key 0x%" PRIx64 ", want %s", what, key, kdesc(f, mk));
    }
}

static chm_compute_action update_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                    void *arg)
{
    struct update_ctx *c = arg;
    struct fz *f = c->f;
    c->calls++;
    check_fn_key(f, key, c->mk, "chm_compute's function");
    if (present != c->want_present || old != (c->want_present ? c->want_old : 0))
        fz_fail("chm_compute(%s): fn saw %s 0x%" PRIx64 ", the model has %s 0x%" PRIx64,
                kdesc(f, c->mk), present ? "present" : "absent", old,
                c->want_present ? "present" : "absent", c->want_old);
    if (*value != old)
        fz_fail("chm_compute(%s): *value is 0x%" PRIx64 " on entry, old is 0x%" PRIx64,
                kdesc(f, c->mk), *value, old);
    if (c->n > 0) {
        f->depth++;
        for (int i = 0; i < c->n; i++) {
            /* calls on the key being computed are left out: what they see or do then is not
             * specified (a reader may see it absent, as on readmostly) */
            struct nested op = c->ops[i];
            if (op.mk == c->mk)
                op.kind = NK_SIZE;
            run_nested(f, &op);
        }
        f->depth--;
    }
    c->action = upd_decide(c->shape, present, old, c->v, &c->set);
    *value = c->set;
    return (chm_compute_action)c->action;
}

static void do_update(struct fz *f, uint64_t mk, int shape, uint64_t v, int n,
                      const struct nested *ops, bool null_out)
{
    uint64_t cur = 0, out = POISON;
    bool present = tl_model_get(&f->model, mk, &cur);
    struct update_ctx c = {
        .f = f, .mk = mk, .v = v, .shape = shape, .n = n, .want_present = present, .want_old = cur};
    if (n > 0)
        memcpy(c.ops, ops, (size_t)n * sizeof *ops);
    uint64_t epoch = f->structural_epoch;
    int depth = f->depth;
    int rc = chm_compute(f->m, map_key(f, mk, depth), update_fn, &c, null_out ? NULL : &out);
    scribble(f, depth);
    if (nested_write_refused(f, "chm_compute", mk, rc)) {
        if (c.calls != 0)
            fz_fail("chm_compute(%s) refused as a nested write, yet fn ran", kdesc(f, mk));
        return;
    }
    if (c.calls > 1)
        fz_fail("chm_compute(%s): fn ran %u times", kdesc(f, mk), c.calls);
    if (enomem(f, "chm_compute", mk, rc)) {
        if (c.calls != 0) /* every backend allocates what a SET needs before fn (chm.h) */
            fz_fail("chm_compute(%s): CHM_ENOMEM after fn ran", kdesc(f, mk));
        return;
    }
    if (c.calls != 1)
        fz_fail("chm_compute(%s): returned %s, fn ran %u times", kdesc(f, mk), tl_rc_name(rc),
                c.calls);
    if (f->structural_epoch != epoch) {
        /* fn's nested writes changed the map (exclusive computes only): nothing is applied,
         * and a SET value goes to value_free -- unless it is the value fn saw the key hold (a
         * SET of that value is a KEEP: it is the map's, not fn's) */
        want_rc(f, "chm_compute (fn changed the map)", mk, rc, CHM_ECONCURRENT);
        if (!null_out)
            want_val(f, "chm_compute (fn changed the map): *result untouched", mk, out, POISON);
        if (c.action == CHM_COMPUTE_SET && !(c.want_present && c.set == c.want_old))
            value_left(f, c.set);
        return;
    }
    present = tl_model_get(&f->model, mk, &cur); /* nested writes left this key alone */
    if (c.action == CHM_COMPUTE_SET) {
        want_rc(f, "chm_compute (SET)", mk, rc, CHM_OK);
        if (!null_out)
            want_val(f, "chm_compute (SET)", mk, out, c.set);
        if (present && cur != c.set) /* a SET of the value it holds is a KEEP */
            value_left(f, cur);
        model_set(f, mk, c.set);
    } else if (c.action == CHM_COMPUTE_DELETE) {
        want_rc(f, "chm_compute (DELETE)", mk, rc, CHM_NOTFOUND);
        if (!null_out)
            want_val(f, "chm_compute (DELETE): *result untouched", mk, out, POISON);
        if (present) {
            value_left(f, cur);
            model_del(f, mk);
        }
    } else { /* KEEP, or outside the enum */
        want_rc(f, "chm_compute (KEEP)", mk, rc, present ? CHM_OK : CHM_NOTFOUND);
        if (!null_out)
            want_val(f, "chm_compute (KEEP)", mk, out, present ? cur : POISON);
    }
}

static void do_remove_if(struct fz *f, uint64_t mk, bool use_current, uint64_t expected)
{
    uint64_t cur;
    bool present = tl_model_get(&f->model, mk, &cur);
    if (present && use_current)
        expected = cur;
    int rc = chm_remove_if(f->m, map_key(f, mk, f->depth), expected);
    scribble(f, f->depth);
    if (nested_write_refused(f, "chm_remove_if", mk, rc) || enomem(f, "chm_remove_if", mk, rc))
        return;
    int want = !present ? CHM_NOTFOUND : cur == expected ? CHM_OK : CHM_EXISTS;
    want_rc(f, "chm_remove_if", mk, rc, want);
    if (want == CHM_OK) {
        value_left(f, cur);
        model_del(f, mk);
    }
}

/* chm_clear never fails for lack of memory, injected failures included. */
static void do_clear(struct fz *f)
{
    int rc = chm_clear(f->m);
    if (f->depth > 0 && !f->exclusive) {
        if (rc != CHM_EDEADLK)
            fz_fail("chm_clear inside a compute function returned %s, want CHM_EDEADLK",
                    tl_rc_name(rc));
        return;
    }
    if (rc != CHM_OK)
        fz_fail("chm_clear returned %s%s", tl_rc_name(rc),
                f->armed ? " (an allocation failure was injected)" : "");
    size_t n = tl_model_size(&f->model), pos = 0, i = 0;
    uint64_t *keys = malloc((n + 1) * sizeof *keys), mk, v;
    if (keys == NULL)
        abort();
    while (tl_model_slot(&f->model, &pos, &mk, &v)) {
        keys[i++] = mk;
        value_left(f, v);
    }
    for (size_t j = 0; j < i; j++)
        model_del(f, keys[j]);
    free(keys);
    f->budget -= (long)n;
}

struct visit_ctx {
    struct fz *f;
    uint64_t mk, want;
    uint64_t key; /* the key as passed to chm_visit, which fn must get (not the stored copy) */
    unsigned calls;
    uint8_t flags;
};

static void visit_inner(uint64_t key, uint64_t value, void *arg)
{
    unsigned *calls = arg;
    (void)key;
    (void)value;
    ++*calls;
}

static void visit_fn(uint64_t key, uint64_t value, void *arg)
{
    struct visit_ctx *c = arg;
    struct fz *f = c->f;
    c->calls++;
    check_fn_key(f, key, c->mk, "chm_visit's function");
    if (key != c->key)
        fz_fail("chm_visit(%s): fn got key 0x%" PRIx64 ", not the caller's 0x%" PRIx64,
                kdesc(f, c->mk), key, c->key);
    if (value != c->want)
        fz_fail("chm_visit(%s): fn saw 0x%" PRIx64 ", the model has 0x%" PRIx64, kdesc(f, c->mk),
                value, c->want);
    if (c->flags & 1) { /* reads of the same map work from a visit function */
        uint64_t got = POISON;
        int rc = chm_get(f->m, map_key(f, c->mk, 2), &got);
        if (rc != CHM_OK || got != c->want)
            fz_fail("chm_get inside chm_visit(%s): %s 0x%" PRIx64, kdesc(f, c->mk), tl_rc_name(rc),
                    got);
        unsigned inner = 0;
        rc = chm_visit(f->m, map_key(f, c->mk, 2), visit_inner, &inner);
        if (rc != CHM_OK || inner != 1)
            fz_fail("chm_visit inside chm_visit(%s): %s, fn ran %u times", kdesc(f, c->mk),
                    tl_rc_name(rc), inner);
        if (chm_size(f->m) != tl_model_size(&f->model))
            fz_fail("chm_size inside chm_visit: %zu, the model has %zu", chm_size(f->m),
                    tl_model_size(&f->model));
    }
    if (c->flags & 2) { /* a write to the same map: refused on every backend */
        int rc = chm_put(f->m, map_key(f, c->mk, 2), c->want ^ 1, NULL);
        if (rc != CHM_EDEADLK)
            fz_fail("chm_put inside chm_visit(%s) returned %s, want CHM_EDEADLK", kdesc(f, c->mk),
                    tl_rc_name(rc));
        rc = chm_clear(f->m);
        if (rc != CHM_EDEADLK)
            fz_fail("chm_clear inside chm_visit(%s) returned %s, want CHM_EDEADLK", kdesc(f, c->mk),
                    tl_rc_name(rc));
    }
}

static void do_visit(struct fz *f, uint64_t mk, uint8_t flags)
{
    uint64_t cur = 0;
    bool present = tl_model_get(&f->model, mk, &cur);
    struct visit_ctx c = {.f = f, .mk = mk, .want = cur, .flags = flags};
    c.key = map_key(f, mk, f->depth);
    int rc = chm_visit(f->m, c.key, visit_fn, &c);
    scribble(f, f->depth);
    scribble(f, 2);
    if (enomem(f, "chm_visit", mk, rc))
        return;
    want_rc(f, "chm_visit", mk, rc, present ? CHM_OK : CHM_NOTFOUND);
    if (c.calls != (present ? 1u : 0u))
        fz_fail("chm_visit(%s): fn ran %u times on a key %s", kdesc(f, mk), c.calls,
                present ? "present" : "absent");
}

static void do_stats(struct fz *f)
{
    chm_stats st;
    int rc = chm_stats_get(f->m, &st);
    if (rc != CHM_OK)
        fz_fail("chm_stats_get returned %s", tl_rc_name(rc));
    if (st.entries != tl_model_size(&f->model))
        fz_fail("chm_stats.entries %zu, the model has %zu", st.entries, tl_model_size(&f->model));
    if (!f->deferred && st.pending != 0)
        fz_fail("chm_stats.pending %zu on a backend that frees within the call", st.pending);
    if (f->fail_fast && st.buckets < st.entries) /* slots: one entry each */
        fz_fail("chm_stats: %zu slots for %zu entries", st.buckets, st.entries);
    if (st.entries > 0 && st.bytes < st.entries * 16)
        fz_fail("chm_stats: %zu bytes for %zu entries", st.bytes, st.entries);
}

/* ---- iteration ----------------------------------------------------------------------------- */

/* A whole iteration with no write during it: exactly the model. */
static void full_iteration(struct fz *f, const char *what)
{
    chm_iter it;
    int rc = chm_iter_init(&it, f->m);
    if (rc != CHM_OK)
        fz_fail("%s: chm_iter_init returned %s", what, tl_rc_name(rc));
    tl_model seen;
    tl_model_init(&seen);
    uint64_t k, v;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
        uint64_t mk = mkey_from_map(f, k), want;
        if (!tl_model_get(&f->model, mk, &want))
            fz_fail("%s: returned key %s, absent from the model", what, kdesc(f, mk));
        if (want != v)
            fz_fail("%s: key %s with value 0x%" PRIx64 ", the model has 0x%" PRIx64, what,
                    kdesc(f, mk), v, want);
        if (!tl_model_put(&seen, mk, v, NULL))
            fz_fail("%s: key %s returned twice", what, kdesc(f, mk));
    }
    if (rc != CHM_END)
        fz_fail("%s: chm_iter_next returned %s", what, tl_rc_name(rc));
    if ((rc = chm_iter_next(&it, &k, &v)) != CHM_END)
        fz_fail("%s: chm_iter_next after CHM_END returned %s", what, tl_rc_name(rc));
    if (tl_model_size(&seen) != tl_model_size(&f->model))
        fz_fail("%s: returned %zu keys, the model has %zu", what, tl_model_size(&seen),
                tl_model_size(&f->model));
    chm_iter_fini(&it);
    tl_model_fini(&seen);
    f->budget -= (long)tl_model_size(&f->model);
}

/* Quiescent comparison: validate, size, a full iteration, chm_get of every model key. */
static void full_check(struct fz *f)
{
    int vr = chm__validate(f->m);
    if (vr != 0)
        fz_fail("chm__validate returned %d (%s)", vr, chm__invariant(f->m, vr));
    size_t n = chm_size(f->m);
    if (n != tl_model_size(&f->model))
        fz_fail("chm_size %zu, the model has %zu", n, tl_model_size(&f->model));
    full_iteration(f, "full iteration");
    size_t pos = 0;
    uint64_t mk, want;
    while (tl_model_slot(&f->model, &pos, &mk, &want)) {
        uint64_t got = POISON;
        int rc = chm_get(f->m, map_key(f, mk, 0), &got);
        scribble(f, 0);
        want_rc(f, "chm_get (full check)", mk, rc, CHM_OK);
        want_val(f, "chm_get (full check)", mk, got, want);
    }
}

static void slot_close(struct slot *s)
{
    if (s->open)
        chm_iter_fini(&s->it);
    s->open = false;
}

static void iter_init(struct fz *f, struct slot *s)
{
    slot_close(s);
    int rc = chm_iter_init(&s->it, f->m);
    if (rc == CHM_ENOMEM && f->armed) {
        chm_iter_fini(&s->it); /* harmless after a failed init */
        return;
    }
    if (rc != CHM_OK)
        fz_fail("chm_iter_init returned %s", tl_rc_name(rc));
    s->open = true;
    s->ended = s->failed = false;
    s->structural = 0;
    tl_model_clear(&s->seen);
    tl_model_clear(&s->changed);
    fz_pairset_clear(&s->held);
    size_t pos = 0;
    uint64_t mk, v;
    while (tl_model_slot(&f->model, &pos, &mk, &v))
        fz_pairset_add(&s->held, mk, v);
    f->budget -= (long)tl_model_size(&f->model);
}

/* One chm_iter_next, checked; false when the iteration is over (END or ECONCURRENT). */
static bool iter_step(struct fz *f, struct slot *s)
{
    uint64_t k = POISON, v = POISON;
    int rc = chm_iter_next(&s->it, &k, &v);
    f->budget--;
    if (f->fail_fast && (s->failed || s->structural == 1)) {
        if (rc != CHM_ECONCURRENT)
            fz_fail("fail-fast chm_iter_next after %s returned %s, want CHM_ECONCURRENT",
                    s->failed ? "CHM_ECONCURRENT" : "a structural change", tl_rc_name(rc));
        s->failed = true;
        return false;
    }
    if (f->fail_fast && s->structural == 2 && rc == CHM_ECONCURRENT) {
        s->failed = true; /* a failed growth may count as a structural change */
        return false;
    }
    if (rc == CHM_OK) {
        uint64_t mk = mkey_from_map(f, k);
        if (s->ended)
            fz_fail("chm_iter_next returned key %s after CHM_END", kdesc(f, mk));
        if (!fz_pairset_has(&s->held, mk, v))
            fz_fail("chm_iter_next returned key %s with value 0x%" PRIx64
                    ", which that key never held since chm_iter_init (%s now)",
                    kdesc(f, mk), v, tl_model_get(&f->model, mk, NULL) ? "present" : "absent");
        if (!tl_model_put(&s->seen, mk, v, NULL))
            fz_fail("chm_iter_next returned key %s twice", kdesc(f, mk));
        return true;
    }
    if (rc != CHM_END)
        fz_fail("chm_iter_next returned %s", tl_rc_name(rc));
    if (!s->ended) {
        /* every key present throughout (present now, never added or removed since init) */
        size_t pos = 0;
        uint64_t mk, val;
        while (tl_model_slot(&f->model, &pos, &mk, &val))
            if (!tl_model_get(&s->changed, mk, NULL) && !tl_model_get(&s->seen, mk, NULL))
                fz_fail("iteration ended without key %s, present throughout", kdesc(f, mk));
        f->budget -= (long)tl_model_size(&f->model);
    }
    s->ended = true;
    return false;
}

/* ---- bulk operations ----------------------------------------------------------------------- */

static uint64_t bulk_count(struct fz *f, uint8_t cb)
{
    uint64_t n = (uint64_t)((cb & 63) + 1) * ((cb & 64) ? 64 : 4);
    if (f->quality != FZ_HASH_FULL && (f->keymode == KM_INT_CUSTOM || f->keymode == KM_STR_COUNTED))
        n = n < 48 ? n : 48; /* colliding hashes: keep chains short enough to stay fast */
    return n;
}

static void remove_all(struct fz *f)
{
    size_t n = tl_model_size(&f->model), pos = 0, i = 0;
    uint64_t *keys = malloc((n + 1) * sizeof *keys), mk, v;
    if (keys == NULL)
        abort();
    while (tl_model_slot(&f->model, &pos, &mk, &v))
        keys[i++] = mk;
    for (size_t j = 0; j < i; j++)
        do_remove(f, keys[j], j & 1);
    free(keys);
    f->budget -= (long)n;
}

/* ---- one input ----------------------------------------------------------------------------- */

static const char *const op_names[OP_COUNT] = {
    "get",       "put",         "put_if_absent", "remove",     "replace",
    "compute",   "iter_init",   "iter_next",     "iter_fini",  "check",
    "bulk_put",  "bulk_remove", "remove_all",    "fail_alloc", "update",
    "remove_if", "clear",       "visit",         "stats",
};

static void run_op(struct fz *f, uint8_t opb)
{
    int op = opb % OP_COUNT;
    bool null_out = (opb / OP_COUNT) & 1;
    if (f->trace)
        fprintf(stderr, "#%lu %s%s (model size %zu)\n", fz_ctx_op, op_names[op],
                null_out ? " (NULL out)" : "", tl_model_size(&f->model));
    f->budget--;
    switch (op) {
    case OP_GET: do_get(f, read_mkey(f), null_out); break;
    case OP_PUT: {
        uint64_t mk = read_mkey(f);
        do_put(f, mk, read_value(f), null_out);
        break;
    }
    case OP_PUT_IF_ABSENT: {
        uint64_t mk = read_mkey(f);
        do_put_if_absent(f, mk, read_value(f), null_out);
        break;
    }
    case OP_REMOVE: do_remove(f, read_mkey(f), null_out); break;
    case OP_REPLACE: {
        uint64_t mk = read_mkey(f);
        bool use_current = fz_u8(&f->in) & 1;
        uint64_t expected = read_value(f);
        do_replace(f, mk, use_current, expected, read_value(f));
        break;
    }
    case OP_COMPUTE: {
        uint64_t mk = read_mkey(f), result = read_value(f);
        int n = fz_u8(&f->in) % 3;
        struct nested ops[2];
        for (int i = 0; i < n; i++) {
            ops[i].raw = fz_u8(&f->in);
            ops[i].kind = ops[i].raw % NK_COUNT;
            ops[i].raw /= NK_COUNT;
            ops[i].mk = read_mkey(f);
            ops[i].v = read_value(f);
        }
        do_compute(f, mk, result, f->armed ? 0 : n, ops, null_out);
        break;
    }
    case OP_ITER_INIT: iter_init(f, &f->slots[fz_u8(&f->in) % N_SLOTS]); break;
    case OP_ITER_NEXT: {
        struct slot *s = &f->slots[fz_u8(&f->in) % N_SLOTS];
        uint8_t sb = fz_u8(&f->in);
        if (!s->open)
            break;
        unsigned steps = (sb & 0x80) ? UINT32_MAX : (sb & 15) + 1u;
        for (unsigned i = 0; i < steps && iter_step(f, s); i++) {
            if (f->budget < 0)
                break;
        }
        break;
    }
    case OP_ITER_FINI: {
        uint8_t sb = fz_u8(&f->in);
        struct slot *s = &f->slots[sb % N_SLOTS];
        bool open = s->open;
        slot_close(s);
        if (open && (sb & 2))
            chm_iter_fini(&s->it); /* a second call is a no-op */
        break;
    }
    case OP_CHECK: full_check(f); break;
    case OP_BULK_PUT:
    case OP_BULK_REMOVE: {
        uint64_t start = 1000 + fz_u16(&f->in), n = bulk_count(f, fz_u8(&f->in));
        for (uint64_t i = 0; i < n; i++) {
            uint64_t mk = mkey_of_id(f, start + i);
            if (op == OP_BULK_PUT)
                do_put(f, mk, tl_mix(++f->vcounter), true);
            else
                do_remove(f, mk, false);
        }
        f->budget -= (long)n;
        break;
    }
    case OP_REMOVE_ALL: remove_all(f); break;
    case OP_UPDATE: {
        uint64_t mk = read_mkey(f);
        int shape = fz_u8(&f->in) % UPD_COUNT;
        uint64_t v = read_value(f);
        int n = fz_u8(&f->in) % 3;
        struct nested ops[2];
        for (int i = 0; i < n; i++) {
            ops[i].raw = fz_u8(&f->in);
            ops[i].kind = ops[i].raw % NK_COUNT;
            ops[i].raw /= NK_COUNT;
            ops[i].mk = read_mkey(f);
            ops[i].v = read_value(f);
        }
        do_update(f, mk, shape, v, f->armed ? 0 : n, ops, null_out);
        break;
    }
    case OP_REMOVE_IF: {
        uint64_t mk = read_mkey(f);
        bool use_current = fz_u8(&f->in) & 1;
        do_remove_if(f, mk, use_current, read_value(f));
        break;
    }
    case OP_CLEAR: do_clear(f); break;
    case OP_VISIT: {
        uint64_t mk = read_mkey(f);
        do_visit(f, mk, fz_u8(&f->in));
        break;
    }
    case OP_STATS: do_stats(f); break;
    default: break; /* OP_FAIL_ALLOC: handled by the caller */
    }
}

static void slots_init(struct fz *f)
{
    for (int i = 0; i < N_SLOTS; i++) {
        struct slot *s = &f->slots[i];
        memset(s, 0, sizeof *s);
        tl_model_init(&s->seen);
        tl_model_init(&s->changed);
        fz_pairset_init(&s->held);
    }
}

static void slots_fini(struct fz *f)
{
    for (int i = 0; i < N_SLOTS; i++) {
        slot_close(&f->slots[i]);
        tl_model_fini(&f->slots[i].seen);
        tl_model_fini(&f->slots[i].changed);
        fz_pairset_fini(&f->slots[i].held);
    }
}

static chm *open_map(struct fz *f)
{
    static const size_t capacities[] = {0, 1, 7, 8, 64, 100, 1000, 5000};
    static const unsigned concurrencies[] = {0, 1, 2, 3, 16, 17, 64, 256};
    static const uint64_t ranges[] = {1, 2, 4, 8, 16, 32, 64, 200};
    const chm_backend *const *list = chm_backend_list();
    size_t nb = 0;
    while (list[nb] != NULL)
        nb++;
    uint8_t h0 = fz_u8(&f->in), h1 = fz_u8(&f->in), h2 = fz_u8(&f->in), h3 = fz_u8(&f->in);
    unsigned seed16 = fz_u16(&f->in);

    f->b = list[h0 % nb];
    fz_ctx_backend = chm_backend_name(f->b);
    unsigned caps = chm_backend_caps(f->b);
    f->fail_fast = (caps & CHM_CAP_FAIL_FAST_ITER) != 0;
    f->exclusive = (caps & CHM_CAP_COMPUTE_EXCLUSIVE) != 0;
    f->deferred = (caps & CHM_CAP_DEFERRED_FREE) != 0;
    f->keymode = h1 & 3;
    f->style = h2 & 3;
    f->quality = (h2 >> 2) & 3;
    f->range = ranges[(h2 >> 4) & 7];
    f->count_frees = !(h1 & 8);

    chm_options o;
    memset(&o, 0, sizeof o);
    o.capacity = capacities[h3 & 7];
    o.concurrency = concurrencies[(h3 >> 3) & 7];
    o.seed = tl_mix(seed16 + 1) | 1;
    o.packed = h1 & 16;
    o.on_race = (h1 & 32) ? CHM_RACE_RETURN : CHM_RACE_ABORT;
    o.rwlock = (h1 & 64) ? CHM_RWLOCK_CK : (h1 & 128) ? CHM_RWLOCK_PTHREAD : CHM_RWLOCK_ADAPTIVE;
    switch (f->keymode) {
    case KM_INT: o.keys = (h1 & 4) ? &chm_keys_u64 : NULL; break;
    case KM_INT_CUSTOM: o.keys = fz_int_keys(f->quality, h1 & 4); break;
    case KM_STR_COUNTED: o.keys = fz_str_keys(f->quality, h1 & 4); break;
    default: o.keys = &chm_keys_string; break;
    }
    if (f->count_frees) {
        o.value_free = tl_freelog_cb;
        o.ctx = &f->log;
    }
    if (f->trace)
        fprintf(stderr,
                "fuzz_chm: backend %s, key mode %d, layout %d, hash %d, compare %d, range %" PRIu64
                ", capacity %zu, concurrency %u, packed %d, on_race %d, rwlock %d, value_free %d\n",
                fz_ctx_backend, f->keymode, f->style, f->quality, (h1 & 4) != 0, f->range,
                o.capacity, o.concurrency, o.packed, o.on_race, o.rwlock, f->count_frees);
    return chm_new(f->b, &o);
}

/* After chm_free: every value that left the map was freed exactly once, and every stored key
 * copy released exactly once. */
static void check_reclamation(struct fz *f)
{
    if (f->count_frees) {
        unsigned long calls = tl_freelog_calls(&f->log);
        if (calls != f->left_total)
            fz_fail("after chm_free: value_free ran %lu times, %lu values left the map", calls,
                    f->left_total);
        size_t pos = 0;
        uint64_t v, want;
        while (tl_model_slot(&f->left, &pos, &v, &want)) {
            uint64_t got = 0;
            tl_model_get(&f->log.freed, v, &got);
            if (got != want)
                fz_fail("after chm_free: value 0x%" PRIx64 " freed %" PRIu64
                        " times, it left the map %" PRIu64 " times",
                        v, got, want);
        }
    }
    if (f->keymode == KM_STR_COUNTED) {
        unsigned long retained, released;
        fz_str_counts(&retained, &released);
        if (retained != released)
            fz_fail("after chm_free: %lu key copies retained, %lu released", retained, released);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz *f = &F;
    memset(f, 0, sizeof *f);
    f->in = (fz_reader){data, size, 0};
    f->trace = getenv("FUZZ_CHM_TRACE") != NULL;
    f->budget = BUDGET;
    fz_ctx_op = 0;
    fz_str_reset();
    tl_freelog_init(&f->log, true);
    tl_model_init(&f->model);
    tl_model_init(&f->left);
    slots_init(f);

    f->m = open_map(f);
    if (f->m == NULL)
        fz_fail("chm_new returned NULL");
    uint8_t fail_arg = 0;
    bool fail_pending = false;
    while (!fz_eof(&f->in) && f->budget > 0) {
        fz_ctx_op++;
        uint8_t opb = fz_u8(&f->in);
        if (opb % OP_COUNT == OP_FAIL_ALLOC) {
            fail_arg = fz_u8(&f->in);
            fail_pending = true;
            continue;
        }
        if (fail_pending) {
            fail_pending = false;
            f->armed = true;
            if ((fail_arg & 0x80) && f->keymode == KM_STR_COUNTED)
                fz_str_fail_next_retain(true);
            else
                chm__alloc_fail_nth((fail_arg & 15) + 1u);
        }
        run_op(f, opb);
        if (f->armed) {
            chm__alloc_disarm();
            fz_str_fail_next_retain(false);
            f->armed = false;
        }
        size_t n = chm_size(f->m);
        if (n != tl_model_size(&f->model))
            fz_fail("chm_size %zu after %s, the model has %zu", n, op_names[opb % OP_COUNT],
                    tl_model_size(&f->model));
        if (f->count_frees && tl_freelog_calls(&f->log) > f->left_total)
            fz_fail("value_free ran %lu times, only %lu values left the map",
                    tl_freelog_calls(&f->log), f->left_total);
        if (f->keymode == KM_STR_COUNTED) {
            unsigned long retained, released;
            fz_str_counts(&retained, &released);
            if (retained - released < tl_model_size(&f->model))
                fz_fail("%lu live key copies for %zu keys", retained - released,
                        tl_model_size(&f->model));
        }
    }
    fz_ctx_op++;
    for (int i = 0; i < N_SLOTS; i++)
        slot_close(&f->slots[i]);
    full_check(f);
    size_t pos = 0;
    uint64_t mk, v;
    while (tl_model_slot(&f->model, &pos, &mk, &v))
        value_left(f, v); /* what is still in the map leaves at chm_free */
    chm_free(f->m);
    check_reclamation(f);

    slots_fini(f);
    tl_model_fini(&f->left);
    tl_model_fini(&f->model);
    tl_freelog_fini(&f->log);
    return 0;
}
