/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smr.h - safe memory reclamation for the lock-free read paths (segmented, binlock,
 * readmostly); implementation in smr.c, design in docs/design.md ("Safe memory reclamation").
 *
 * Read side: chm__smr_read_lock()/chm__smr_read_unlock() bracket every lock-free read of shared
 * nodes. They nest, take no lock, store nothing to memory shared with other threads, and
 * register the calling thread lazily on first use (unregistered by a thread-exit destructor):
 * users never call a register function.
 *
 * Write side: an object that a concurrent reader may still hold embeds a chm_smr_node (one
 * word) and is handed to chm__smr_retire() after it was unlinked. Retire never fails and never blocks (no
 * lock, no allocation, no system call): it pushes the node on its domain's lock-free list. Each
 * map owns a domain. There is no thread of the library's own: retired objects are freed by the
 * threads that write, in batches, and by chm_free.
 *
 * THE RECLAMATION RULE. A retire that brings its domain's queue to CHM_SMR_BATCH objects or more
 * flags the domain on the calling thread (a reference in a small thread-local array, no
 * waiting). Flags are acted on only by chm__smr_quiesce(), which the public entry points of
 * src/map.c call when the outermost chm call of the thread returns: nesting depth back to 0,
 * every backend lock released. chm__smr_quiesce() does nothing inside a read-side section nor
 * while the thread is already reclaiming (a callback's own chm calls). Otherwise, for each
 * flagged domain whose queue is still at CHM_SMR_BATCH or more, it takes the whole queue (one
 * exchange), waits for one grace period and runs the free_fns, with cancellation disabled --
 * unless an iterator of the domain's map is open (below): then the batch is parked instead.
 * So a grace period is never waited for inside a read-side section,
 * under a backend lock, or from a user callback nested in another chm call; free_fns (value_free,
 * key release) run on the writing thread after its outermost call, or in chm_free
 * (chm__smr_domain_free / chm__smr_drain) on the caller's thread.
 *
 * Iterators (segmented, binlock) keep node and table pointers between their calls but hold a
 * read-side section only inside each chm_iter_init / chm_iter_next call. Instead, the map's
 * domain counts its open iterators (chm__smr_iter_open / chm__smr_iter_close): a reclamation
 * that finds the count non-zero after its grace period parks the batch (neither freed nor
 * called back; smr.c, smr_reclaim, gives the ordering argument). The chm_iter_fini that
 * brings the count to 0 flags the domain like a crossed batch, and the reclamation at the end
 * of its outermost call frees what was parked (no further grace period: parked batches had
 * theirs). chm_free's drain frees parked batches too (no iterator may be open then).
 *
 * THE BOUND (what a domain has retired and not yet freed, chm__smr_pending). A thread that
 * crosses CHM_SMR_BATCH reclaims the queue when its outermost call returns, so with one thread
 * writing a domain its backlog never exceeds CHM_SMR_BATCH - 1 + R objects, R being the most one
 * call retires into it (1 for a put or remove that replaces a value or node; a resize retires
 * its old table and, in segmented, the shells of cloned nodes); with W threads writing it,
 * W * (CHM_SMR_BATCH + W * R) (each may hold one taken batch while the queue refills). It counts
 * objects, not bytes: a retired table is one object. Not bounded: while an iterator of a map is
 * open, everything retired into that map's domain and reclaimed meanwhile is parked, so its
 * backlog grows with the writes to that map until the last of its iterators is finished. That
 * stalls nothing else: no writer waits for an iterator (the grace periods do not wait for it,
 * it holds no section between calls), and no other map is affected (its domain, its bound).
 * Nor bounded: a thread whose outermost call retires into more than CHM_SMR_MAX_FLAGGED domains
 * that cross the batch size flags only that many (the others are flagged again by their next
 * retire).
 *
 * Maps are independent: a domain is reclaimed by its own writers and its own chm_free. A slow
 * free_fn delays the thread that runs it, and chm_free of the same map, nothing else; grace
 * periods (liburcu's, shared by concurrent callers) wait for read-side sections only.
 *
 * Process life cycle: fork() (pthread_atfork handlers: the child can use, create and free maps,
 * see smr.c), pthread_cancel (grace-period waits, drains and free_fns run with cancellation
 * disabled), dlclose (no thread; the pthread_key is deleted by a library destructor).
 */
#ifndef CHM_SMR_H
#define CHM_SMR_H

#include "chm_internal.h"

#include <urcu/urcu-memb.h> /* the out-of-line liburcu memb API */

/* Objects a domain queues before a writer reclaims them (see THE BOUND above). A grace period
 * costs microseconds; amortised over this many retires it is a few nanoseconds each. */
#ifndef CHM_SMR_BATCH
#define CHM_SMR_BATCH 1024
#endif
/* Domains one thread can have flagged at once (one outermost call's worth). */
#define CHM_SMR_MAX_FLAGGED 8

/* A domain is allocated by chm__smr_domain_new and freed by chm__smr_domain_free (the last of
 * its references: a thread that flagged it holds one until it has acted on the flag). */
typedef struct chm_smr_domain chm_smr_domain;

/* The record a retired object embeds: one word, the next object in the domain's queue with the
 * object's kind -- which of the domain's free_fns frees it -- in the low 3 bits (objects are
 * 8-byte aligned). A free_fn gets the domain's owner (the map) as an argument, so neither the
 * function nor the domain is stored per object: 8 bytes per node instead of 24. */
typedef struct chm_smr_node chm_smr_node;
struct chm_smr_node {
    uintptr_t link;
};
typedef void chm_smr_free_fn(chm_smr_node *n, void *owner);
/* Distinct free_fns one domain may be given (its kinds, registered on first use). */
#define CHM_SMR_KINDS 8

/* A new domain whose chm__smr_domain_owner() is @owner (the map, for free_fns); NULL when out
 * of memory. */
CHM_HIDDEN chm_smr_domain *chm__smr_domain_new(void *owner);
/* Drain @d (everything retired into it is freed, callbacks done) and release it. The owner's
 * objects must be unreachable and no operation on it may be running (chm_free's contract).
 * Not inside a read section, nor from one of @d's own free_fns. */
CHM_HIDDEN void chm__smr_domain_free(chm_smr_domain *d);
CHM_HIDDEN void *chm__smr_domain_owner(const chm_smr_domain *d);

/* Enter / leave a read-side section (nestable; lazily registers the thread). */
CHM_HIDDEN void chm__smr_read_lock(void);
CHM_HIDDEN void chm__smr_read_unlock(void);

/* Hand @n (already unreachable for new readers, 8-byte aligned) to @d: @free_fn(@n, owner) runs
 * after a grace period (see THE RECLAMATION RULE for where). At most CHM_SMR_KINDS distinct
 * free_fns per domain (more is a library bug: abort). Callable inside or outside a read
 * section, under a lock. Never fails, never blocks. */
CHM_HIDDEN void chm__smr_retire(chm_smr_domain *d, chm_smr_node *n, chm_smr_free_fn *free_fn);

/* The end of an outermost call: run this thread's flagged reclamations if it may (not in a read
 * section, not already reclaiming, nesting depth 0). src/map.c calls it through
 * chm__smr_leave(); code that retires outside any chm call (tests) calls it directly. */
CHM_HIDDEN void chm__smr_quiesce(void);

/* Wait until every node retired through @d has been freed (what a free_fn retires into @d
 * meanwhile, too): takes @d's queue, one grace period, runs the free_fns, then waits for the
 * batches other threads took from @d before (bounded by a grace period and @d's own
 * callbacks; never by another domain's). Nothing may retire into @d concurrently except @d's
 * free_fns. Not inside a read section, nor from one of @d's free_fns. */
CHM_HIDDEN void chm__smr_drain(chm_smr_domain *d);

/* Iterators that keep pointers to @d's nodes between calls: chm__smr_iter_open before the
 * iterator's first read section, chm__smr_iter_close after its last access (see "Iterators"
 * above). The close that brings the count to 0 flags @d if batches are parked. */
CHM_HIDDEN void chm__smr_iter_open(chm_smr_domain *d);
CHM_HIDDEN void chm__smr_iter_close(chm_smr_domain *d);

/* Wait for one grace period. Not inside a read section. */
CHM_HIDDEN void chm__smr_synchronize(void);

/* Wait until every node retired (into any live domain) before the call has been freed or
 * parked (a domain with an open iterator; parked batches of a domain without one are freed).
 * For tests that count the blocks a map holds: after a barrier with no iterator open nothing
 * is in flight, so the count depends on the map's contents alone. Same restrictions as
 * chm__smr_drain. */
CHM_HIDDEN void chm__smr_barrier(void);

/* For tests: what @d has retired and not yet freed (queued, taken and not yet freed, or
 * parked). */
CHM_HIDDEN size_t chm__smr_pending(const chm_smr_domain *d);
/* For tests: the largest chm__smr_pending any domain reached since the last reset (@reset
 * returns the old peak and starts again from 0). Compared against THE BOUND. */
CHM_HIDDEN size_t chm__smr_pending_peak(bool reset);
/* For tests: the same for @d alone. */
CHM_HIDDEN size_t chm__smr_domain_peak(chm_smr_domain *d, bool reset);
/* For tests: the live domain whose chm__smr_domain_owner() is @owner (a map), or NULL. */
CHM_HIDDEN chm_smr_domain *chm__smr_domain_of(const void *owner);

/* ---- public-call nesting (src/map.c) --------------------------------------------------------
 * Every public entry point that may retire, take a backend lock or run a user callback brackets
 * its work with t = chm__smr_enter() ... chm__smr_leave(t). Thread-local, no shared store. */
struct chm__smr_thread_hot {
    unsigned depth; /* public calls in progress on this thread */
    unsigned nflag; /* domains flagged for reclamation */
};
/* Initial-exec, like the backends' own thread-locals: 8 bytes of static TLS, no __tls_get_addr
 * per call in libchm.so. */
CHM_HIDDEN extern _Thread_local struct chm__smr_thread_hot chm__smr_hot
    __attribute__((tls_model("initial-exec")));

static inline struct chm__smr_thread_hot *chm__smr_enter(void)
{
    struct chm__smr_thread_hot *t = &chm__smr_hot;
    t->depth++;
    return t;
}

static inline void chm__smr_leave(struct chm__smr_thread_hot *t)
{
    if (--t->depth == 0 && chm_unlikely(t->nflag != 0))
        chm__smr_quiesce();
}

/* ---- values leaving a lock-free map ------------------------------------------------------------
 * A replaced value may still be returned by a reader that loaded it, so it goes to value_free a
 * grace period later, like the node it came from. The record is reserved before the change (the
 * only step that can fail) and consumed after it. Maps without a value_free need no record. */
typedef struct chm_value_retire chm_value_retire;

/* Reserve a record in *@rec for a value about to leave @m, unless one is already held or @m has
 * no value_free (then *@rec stays NULL). false = out of memory. An unused reservation is freed
 * with chm__free. */
CHM_HIDDEN bool chm__value_retire_reserve(const chm *m, chm_value_retire **rec);

/* Hand @value to @m's value_free after a grace period, consuming *@rec (set to NULL). A no-op
 * when *@rec is NULL (no value_free). */
CHM_HIDDEN void chm__value_retire(const chm *m, chm_smr_domain *d, chm_value_retire **rec,
                                  uint64_t value);

/* A free_fn for retired objects that own nothing else: it frees the memory (chm__free). */
CHM_HIDDEN void chm__smr_free_plain(chm_smr_node *n, void *owner);

/* ---- private: inline read-side fast path ----------------------------------------------------
 * chm__smr_read_lock() / chm__smr_read_unlock() expand to inline code: the registration check
 * plus liburcu memb's read-side protocol (two thread-local stores and compiler barriers), so a
 * section costs about 1.2 ns instead of 3.3 ns through the out-of-line functions (measured in
 * docs/design.md). The functions above still exist -- call them as (chm__smr_read_lock)() to
 * bypass the macros -- and behave identically.
 *
 * The bodies are liburcu 0.13's _urcu_memb_read_lock/_urcu_memb_read_unlock (static/urcu-memb.h,
 * which liburcu marks as meeting LGPL's 10-line criterion for inlining into non-LGPL code),
 * with one change: the thread's urcu_reader is addressed once per call through a pointer.
 * liburcu's own inline functions name the TLS variable at every access, and in a shared object
 * (general-dynamic TLS) each of those costs a __tls_get_addr call: 4 per section, about 13 ns
 * (4.2 ns with one address per call). The protocol, the struct layout and the constants are
 * part of liburcu's ABI (SONAME 8) precisely because LGPL users inline them.
 *
 * Under ThreadSanitizer the macros are not defined: the unlock's wake-up check races benignly
 * on liburcu's global futex word, which TSan would report; smr.c then calls liburcu's
 * uninstrumented out-of-line wrappers and adds the TSan annotations. */
#include "sanitizers.h" /* CHM__TSAN */

#include <urcu/static/urcu-memb.h> /* urcu_memb_reader (TLS), urcu_memb_gp, the protocol */

/* Register the calling thread with liburcu and arrange its unregistration at thread exit. */
CHM_HIDDEN void chm__smr_register(void);

static inline struct urcu_reader *chm__smr_tls(void)
{
    struct urcu_reader *r = &URCU_TLS(urcu_memb_reader);
    /* Hide that r is a TLS address, or the compiler recomputes it (a __tls_get_addr call in a
     * shared object) after every compiler barrier instead of keeping it in a register. */
    __asm__("" : "+r"(r));
    return r;
}

/* The calling thread's reader, registered. liburcu's own "registered" flag rather than one of
 * ours: it sits in the TLS block the read lock touches anyway, and stays right if the
 * application (un)registers the thread itself. */
static inline struct urcu_reader *chm__smr_self(void)
{
    struct urcu_reader *r = chm__smr_tls();
    if (chm_unlikely(!r->registered))
        chm__smr_register();
    return r;
}

#ifndef CHM__TSAN
static inline void chm__smr_read_lock_inline(void)
{
    struct urcu_reader *r = chm__smr_self();
    cmm_barrier(); /* the section's accesses stay after the lock (liburcu's comment) */
    unsigned long tmp = r->ctr;
    if (chm_likely(!(tmp & URCU_GP_CTR_NEST_MASK))) {
        /* Outermost: snapshot the grace-period phase. The slave barrier is a compiler barrier
         * when membarrier() is available (the grace period issues the fences). */
        _CMM_STORE_SHARED(r->ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr));
        urcu_memb_smp_mb_slave();
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp + URCU_GP_COUNT);
    }
}

static inline void chm__smr_read_unlock_inline(void)
{
    struct urcu_reader *r = chm__smr_tls();
    unsigned long tmp = r->ctr;
    if (chm_likely((tmp & URCU_GP_CTR_NEST_MASK) == URCU_GP_COUNT)) {
        /* Outermost: the section precedes the store; the store precedes the futex check. */
        urcu_memb_smp_mb_slave();
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
        urcu_memb_smp_mb_slave();
        urcu_common_wake_up_gp(&urcu_memb_gp);
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
    }
    cmm_barrier();
}

#define chm__smr_read_lock() chm__smr_read_lock_inline()
#define chm__smr_read_unlock() chm__smr_read_unlock_inline()
#endif

#endif /* CHM_SMR_H */
