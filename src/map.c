/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * map.c - the public entry points: argument checks, option resolution, and one indirect call
 * through the map's ops table per operation.
 *
 * Every entry point that may retire, take a backend lock or run a user callback counts itself
 * in the thread's nesting depth (chm__smr_enter/chm__smr_leave, smr.h): when the outermost one
 * returns -- every lock released, no callback of ours on the stack -- the thread runs the
 * reclamation its retires asked for (smr.h, THE RECLAMATION RULE). chm_get on integer keys is
 * the one exception, to keep the read path short: it runs no callback and holds a lock
 * (rwlock, readmostly's mutex) only around code that calls nothing, so no call can nest inside
 * it; a retire it makes (readmostly's promotion) flags as any other, acted on at the end of the
 * thread's next outermost tracked call.
 */
#include "chm_internal.h"
#include "smr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_tracked(chm *m, uint64_t key, uint64_t *value);

void chm__header_init(chm *m, const struct chm_ops *ops, const chm_backend *b,
                      const chm_options *opt)
{
    m->ops = ops;
    m->backend = b;
    m->keys = opt->keys;
    m->seed = opt->seed != 0 ? opt->seed : chm__random_seed();
    m->hash_mul = chm__hash_mul(m->seed);
    m->int_keys = opt->keys == &chm_keys_u64;
    /* Integer keys: no callback, nothing can nest (see the top), so the backend's get runs
     * untracked -- its integer-key form when it has one. */
    m->get = !m->int_keys ? get_tracked : ops->get_u64 != NULL ? ops->get_u64 : ops->get;
    m->value_free = opt->value_free;
    m->ctx = opt->ctx;
    m->opt = *opt;
}

static bool backend_known(const chm_backend *b)
{
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++)
        if (*p == b)
            return true;
    return false;
}

/* Copy the caller's options into @o (see chm_options.size in chm.h): the first `size` bytes of
 * a struct that may be older (shorter) or newer (longer) than this library's. false = a newer
 * caller set a field this library does not know. */
static bool options_copy(chm_options *o, const chm_options *opt)
{
    memset(o, 0, sizeof *o);
    if (opt == NULL)
        return true;
    size_t size = opt->size != 0 ? opt->size : offsetof(chm_options, size) + sizeof opt->size;
    if (size < offsetof(chm_options, size) + sizeof opt->size)
        return false; /* smaller than the first header that had the field: not a size */
    memcpy(o, opt, size < sizeof *o ? size : sizeof *o);
    for (size_t i = sizeof *o; i < size; i++)
        if (((const unsigned char *)opt)[i] != 0)
            return false;
    return true;
}

chm *chm_new(const chm_backend *b, const chm_options *opt)
{
    chm_options o;
    if (!options_copy(&o, opt)) {
        errno = EINVAL;
        return NULL;
    }
    if (b == NULL || !backend_known(b)) {
        errno = EINVAL;
        return NULL;
    }
    if (o.keys == NULL)
        o.keys = &chm_keys_u64;
    if (o.keys->hash == NULL || o.keys->equal == NULL ||
        (o.on_race != CHM_RACE_ABORT && o.on_race != CHM_RACE_RETURN) ||
        (o.rwlock != CHM_RWLOCK_ADAPTIVE && o.rwlock != CHM_RWLOCK_PTHREAD &&
         o.rwlock != CHM_RWLOCK_CK)) {
        errno = EINVAL;
        return NULL;
    }
    if (o.concurrency == 0)
        o.concurrency = 16;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    chm *m = b->create(b, &o);
    chm__smr_leave(t);
    return m;
}

void chm_free(chm *m)
{
    if (m == NULL)
        return;
#if defined(CHM_VALIDATE) && CHM_VALIDATE
    /* Torture build: chm_free is quiescent by contract, so every invariant must hold here. */
    int rc = chm__validate(m);
    if (rc != 0) {
        fprintf(stderr, "chm: chm_free: %s map broken: %s (validate code %d)\n", m->backend->name,
                chm__invariant(m, rc), rc);
        abort();
    }
#endif
    struct chm__smr_thread_hot *t = chm__smr_enter();
    m->ops->destroy(m);
    chm__smr_leave(t);
}

/* chm_reclaim: the map's domain barrier (smr.h, chm__smr_domain_barrier). The checks come first,
 * so that CHM_EDEADLK does not depend on the backend or on whether anything is pending. */
int chm_reclaim(chm *m)
{
    if (m == NULL)
        return CHM_EINVAL;
    /* A thread inside a chm call (a compute or visit function, a key op, chm_free's callbacks),
     * running free_fns, or in a read-side section could wait for itself. */
    if (!chm__smr_may_wait())
        return CHM_EDEADLK;
    /* Without deferred frees (unsafe, rwlock) everything left within its removing call. */
    if ((m->backend->caps & CHM_CAP_DEFERRED_FREE) == 0)
        return CHM_OK;
    /* The backends keep their domain in their own struct; the registry finds it by owner (a
     * walk of the live maps' domains under a mutex: small beside the grace period). */
    chm_smr_domain *d = chm__smr_domain_of(m);
    if (d == NULL)
        return CHM_OK;
    /* Counted as a public call, so that the callbacks it runs see a call in progress (their
     * own chm_reclaim returns CHM_EDEADLK) and what they flag is reclaimed when it returns. */
    struct chm__smr_thread_hot *t = chm__smr_enter();
    chm__smr_domain_barrier(d);
    chm__smr_leave(t);
    return CHM_OK;
}

const chm_backend *chm_map_backend(const chm *m)
{
    return m != NULL ? m->backend : NULL;
}

/* chm_get jumps to the map's get: chosen once at chm_new (chm__header_init), so the hot path
 * is a NULL check and one indirect jump. */
int chm_get(chm *m, uint64_t key, uint64_t *value)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    return m->get(m, key, value);
}

/* A get with key ops that run user code (hash, equal): tracked like every other entry point. */
static int get_tracked(chm *m, uint64_t key, uint64_t *value)
{
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->get(m, key, value);
    chm__smr_leave(t);
    return rc;
}

int chm_put(chm *m, uint64_t key, uint64_t value, uint64_t *old)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->put(m, key, value, old);
    chm__smr_leave(t);
    return rc;
}

int chm_put_if_absent(chm *m, uint64_t key, uint64_t value, uint64_t *current)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->put_if_absent(m, key, value, current);
    chm__smr_leave(t);
    return rc;
}

int chm_remove(chm *m, uint64_t key, uint64_t *old)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->remove(m, key, old);
    chm__smr_leave(t);
    return rc;
}

int chm_replace(chm *m, uint64_t key, uint64_t expected, uint64_t desired)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->replace(m, key, expected, desired);
    chm__smr_leave(t);
    return rc;
}

int chm_compute_if_absent(chm *m, uint64_t key, chm_compute_fn *fn, void *arg, uint64_t *value)
{
    if (chm_unlikely(m == NULL || fn == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->compute_if_absent(m, key, fn, arg, value);
    chm__smr_leave(t);
    return rc;
}

int chm_compute(chm *m, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result)
{
    if (chm_unlikely(m == NULL || fn == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->compute(m, key, fn, arg, result);
    chm__smr_leave(t);
    return rc;
}

int chm_remove_if(chm *m, uint64_t key, uint64_t expected)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->remove_if(m, key, expected);
    chm__smr_leave(t);
    return rc;
}

int chm_clear(chm *m)
{
    if (chm_unlikely(m == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->clear(m);
    chm__smr_leave(t);
    return rc;
}

int chm_visit(chm *m, uint64_t key, chm_visit_fn *fn, void *arg)
{
    if (chm_unlikely(m == NULL || fn == NULL))
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->visit(m, key, fn, arg);
    chm__smr_leave(t);
    return rc;
}

int chm_stats_get(chm *m, chm_stats *st)
{
    if (m == NULL || st == NULL)
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    m->ops->stats(m, st);
    chm__smr_leave(t);
    return CHM_OK;
}

size_t chm_size(chm *m)
{
    if (m == NULL)
        return 0;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    size_t n = m->ops->size(m);
    chm__smr_leave(t);
    return n;
}

int chm__validate(chm *m)
{
    return m->ops->validate(m);
}

const char *chm__invariant(const chm *m, int code)
{
    if (code == 0)
        return "sound";
    const char *s = m->ops->invariant != NULL ? m->ops->invariant(code) : NULL;
    return s != NULL ? s : "unknown invariant";
}

/* ---- iteration -------------------------------------------------------------------------- */

static struct chm__iter_base *base_of(chm_iter *it)
{
    return (struct chm__iter_base *)(void *)it->opaque;
}

int chm_iter_init(chm_iter *it, chm *m)
{
    if (it == NULL)
        return CHM_EINVAL;
    struct chm__iter_base *b = base_of(it);
    b->ops = NULL; /* so that chm_iter_fini after a failed init is a no-op */
    if (m == NULL)
        return CHM_EINVAL;
    b->m = m;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = m->ops->iter_init(it, m);
    chm__smr_leave(t);
    if (rc == CHM_OK)
        b->ops = m->ops;
    return rc;
}

int chm_iter_next(chm_iter *it, uint64_t *key, uint64_t *value)
{
    if (it == NULL || base_of(it)->ops == NULL)
        return CHM_EINVAL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    int rc = base_of(it)->ops->iter_next(it, key, value);
    chm__smr_leave(t);
    return rc;
}

void chm_iter_fini(chm_iter *it)
{
    if (it == NULL || base_of(it)->ops == NULL)
        return;
    const struct chm_ops *ops = base_of(it)->ops;
    base_of(it)->ops = NULL;
    struct chm__smr_thread_hot *t = chm__smr_enter();
    ops->iter_fini(it);
    chm__smr_leave(t); /* the last iterator of a map closed: what it parked is freed here */
}

/* ---- status codes ----------------------------------------------------------------------- */

const char *chm_strerror(int status)
{
    switch (status) {
    case CHM_OK: return "success";
    case CHM_NOTFOUND: return "key not found";
    case CHM_EXISTS: return "key already present";
    case CHM_END: return "end of iteration";
    case CHM_EINVAL: return "invalid argument";
    case CHM_ENOMEM: return "out of memory";
    case CHM_ECONCURRENT: return "map modified during iteration";
    case CHM_ERACE: return "concurrent map misuse detected";
    case CHM_EDEADLK: return "call would deadlock: compute function re-entered its map";
    default: return "unknown status";
    }
}
