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
 * word) and is handed to chm__smr_retire() after it was unlinked. Retire never fails and never
 * blocks (no lock, no allocation, no system call): it pushes the node on a lock-free list of
 * its domain. Each map owns a domain. There is no thread of the library's own: retired objects
 * are freed by the threads that write, in batches, and by chm_free.
 *
 * Queues. A domain has a retire queue per stripe (the `stripes` of chm__smr_domain_new: a power
 * of two, at most 64); a thread always retires into the one its ticket picks (src/stripes.h),
 * so up to that many writer threads never share a queue, and more share them evenly. With one
 * stripe every thread shares the domain's one queue.
 *
 * THE RECLAMATION RULE. A retire that brings its queue to CHM_SMR_BATCH objects or more flags
 * the domain on the calling thread (a reference in a small thread-local array, no waiting).
 * Flags are acted on only by chm__smr_quiesce(), which the public entry points of src/map.c
 * call when the outermost chm call of the thread returns: nesting depth back to 0, every
 * backend lock released. chm__smr_quiesce() does nothing inside a read-side section nor while
 * the thread is already reclaiming (a callback's own chm calls). Otherwise, for each flagged
 * domain whose queue of this thread is still at CHM_SMR_BATCH or more (a thread sharing it may
 * have taken it), or not empty if a chm__smr_retire_soon flagged it, it takes that whole queue
 * (one exchange; not the domain's other queues), waits for one grace period and runs the
 * free_fns, with cancellation disabled -- unless an iterator of the domain's map is open
 * (below): then the batch is parked instead.
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
 * crosses CHM_SMR_BATCH reclaims its queue when its outermost call returns, so a queue that one
 * thread writes never holds more than CHM_SMR_BATCH - 1 + R objects, R being the most one call
 * retires into it (1 for a put or remove that replaces a value or node; a bulk counts as the
 * objects it holds, chm_smr_bulk below: segmented's removes retire a sack of up to 253 nodes at
 * a time, its resize one sack of the nodes it cloned, its chm_clear a segment's whole table; a
 * binlock resize retires its old table and sacks of 509 shells, each a bulk too). With W
 * threads writing a domain,
 * whatever the stripes, W * (CHM_SMR_BATCH + W * R) (each may hold one taken batch while its
 * queue refills, and W threads sharing one queue may each add R before one of them takes it).
 * A thread that stops writing leaves up to CHM_SMR_BATCH - 1 + R objects in its queue until
 * another thread crosses that queue's batch, chm_reclaim (chm__smr_domain_barrier) or chm_free:
 * so with one thread writing a domain that others wrote before, the backlog is that thread's
 * CHM_SMR_BATCH - 1 + R plus what the others left. It counts objects, not bytes: a retired
 * table is one object. An owner that collects retired objects into bulks over many calls holds
 * up to `outside` more that are not queued yet (chm__smr_domain_set_flush: segmented's partial
 * sacks, 252 per segment). Not bounded: while an iterator of a map is
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
#include "pool.h" /* chm__smr_domain_set_pool, the batched puts */

#include <urcu/urcu-memb.h> /* the out-of-line liburcu memb API */

/* Objects a domain queues before a writer reclaims them (see THE BOUND above). A grace period
 * costs microseconds of both cores (membarrier's interrupts, the waiter's futex); amortised
 * over this many retires it is about a nanosecond each. docs/design.md ("Amortised cost") has
 * the measurement that chose 4096 over 1024 and 16384. */
#ifndef CHM_SMR_BATCH
#define CHM_SMR_BATCH 4096
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

/* A new domain whose chm__smr_domain_owner() is @owner (the map, for free_fns), with a retire
 * queue per @stripes threads (rounded up to a power of two, at most 64: give it the number of
 * threads expected to write the map, as to chm__pool_new); NULL when out of memory. */
CHM_HIDDEN chm_smr_domain *chm__smr_domain_new(void *owner, unsigned stripes);
/* The pool the free_fns of @d put the owner's objects back into (src/pool.h): each batch's
 * free_fns then run inside chm__pool_defer_begin/end for it, so their puts reach the pool in a
 * few locked splices, not one lock per object. Before the first retire. @pool must outlive
 * every batch of @d: free it after chm__smr_domain_free, or before only if nothing was ever
 * retired into @d (a map whose creation failed half-way). */
CHM_HIDDEN void chm__smr_domain_set_pool(chm_smr_domain *d, chm_pool *pool);
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

/* chm__smr_retire for an object that holds much memory -- an old table (with, in segmented,
 * the shells of the nodes its resize cloned, retired in the same call), a sack of binlock's
 * shells -- which a batch of small objects would keep waiting (the batch counts objects, not
 * bytes; a thread that resized and then stops writing would never end its batch): the calling
 * thread also takes its queue when its outermost call returns, whatever the queue's count (THE
 * RECLAMATION RULE). One grace period per resize, which costs O(n) anyway. */
CHM_HIDDEN void chm__smr_retire_soon(chm_smr_domain *d, chm_smr_node *n,
                                     chm_smr_free_fn *free_fn);

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

/* chm__smr_barrier for @d alone (chm_reclaim): wait until every node retired into @d before
 * the call has been freed, or parked while an iterator of the owner is open (it is not waited
 * for: the thread may hold that iterator). Takes @d's queue, one grace period, runs the
 * free_fns, then waits for the batches other threads took from @d before, and returns with
 * nothing retired before the call pending (unless parked). Unlike chm__smr_drain, retires into
 * @d may run concurrently: they are not waited for, but a batch another thread takes meanwhile
 * is (the wait is for no batch of @d in flight), so writers that keep reclaiming can delay the
 * return until they pause. What the free_fns retire into @d meanwhile is left queued. Same
 * restrictions as chm__smr_drain: chm_reclaim checks chm__smr_may_wait() first. */
CHM_HIDDEN void chm__smr_domain_barrier(chm_smr_domain *d);

/* Whether the calling thread may wait for a grace period and run free_fns now: no public call
 * of this thread is in progress (nesting depth 0, so no compute or visit function, key op, or
 * chm_free's callback is on its stack, and no backend lock is held), it is not running
 * free_fns (chm__smr_quiesce's, a drain's or a barrier's), and it is outside any read-side
 * section. Where it is false, a wait could wait for the thread itself. */
CHM_HIDDEN bool chm__smr_may_wait(void);

/* Wait until every node retired (into any live domain) before the call has been freed or
 * parked (a domain with an open iterator; parked batches of a domain without one are freed).
 * Runs each domain's flush hook (chm__smr_domain_set_flush) first, on its owner: not while a
 * map with one (segmented) is being freed by another thread.
 * For tests that count the blocks a map holds: after a barrier with no iterator open nothing
 * is in flight, so the count depends on the map's contents alone. Same restrictions as
 * chm__smr_drain. */
CHM_HIDDEN void chm__smr_barrier(void);

/* For tests: what @d has retired and not yet freed (queued, taken and not yet freed, or
 * parked). */
CHM_HIDDEN size_t chm__smr_pending(const chm_smr_domain *d);
/* For tests: the largest chm__smr_pending any domain reached since the last reset (@reset
 * returns the old peak and starts again from 0). Compared against THE BOUND. Peaks are tracked
 * from the first call of this function or chm__smr_domain_peak on: a retire then sums its
 * domain's queues (a cost only tests pay). */
CHM_HIDDEN size_t chm__smr_pending_peak(bool reset);
/* For tests: the same for @d alone. */
CHM_HIDDEN size_t chm__smr_domain_peak(chm_smr_domain *d, bool reset);
/* The live domain whose chm__smr_domain_owner() is @owner (a map), or NULL: a walk of the
 * registry under its mutex (chm_reclaim, tests). */
CHM_HIDDEN chm_smr_domain *chm__smr_domain_of(const void *owner);

/* A retired object that stands for @weight objects -- a sack of a map's removed nodes, a
 * cleared table with its chains -- so that the batch rule and THE BOUND count what it holds,
 * not one: its free_fn frees all of them. The record's first word is the chm_smr_node. */
typedef struct chm_smr_bulk {
    chm_smr_node smr;
    size_t weight; /* set before the retire, read by the reclaimer (never 0) */
} chm_smr_bulk;

/* chm__smr_retire for a bulk: counts b->weight; @soon as chm__smr_retire_soon. A free_fn
 * given here must never be given to chm__smr_retire in the same domain (its objects are read
 * as chm_smr_bulk). */
CHM_HIDDEN void chm__smr_retire_bulk(chm_smr_domain *d, chm_smr_bulk *b, chm_smr_free_fn *free_fn,
                                     bool soon);

/* What @d's owner retires into bulks it fills over many calls (segmented's sack per segment)
 * is retired but not yet in @d's queues: @flush(owner) retires the partial bulks. The barriers
 * (chm__smr_domain_barrier, chm__smr_barrier) call it first, on a thread that holds no lock of
 * the owner's and is inside no other chm call (chm_reclaim's own, at most), so it may take the
 * owner's locks. chm_free's drain
 * does not: the owner's destroy frees its partial bulks itself. Set before the map is used. */
typedef void chm_smr_flush_fn(void *owner);
/* @outside: the most objects the owner may hold retired outside @d's queues (THE BOUND adds
 * it; for tests: chm__smr_domain_outside). */
CHM_HIDDEN void chm__smr_domain_set_flush(chm_smr_domain *d, chm_smr_flush_fn *flush,
                                          size_t outside);
/* For tests: the @outside given to chm__smr_domain_set_flush (0 without a flush hook). */
CHM_HIDDEN size_t chm__smr_domain_outside(const chm_smr_domain *d);

/* ---- public-call nesting (src/map.c) --------------------------------------------------------
 * Every public entry point that may retire, take a backend lock or run a user callback brackets
 * its work with t = chm__smr_enter() ... chm__smr_leave(t). Thread-local, no shared store. */
struct chm__smr_thread_hot {
    unsigned depth; /* public calls in progress on this thread */
    unsigned nflag; /* domains flagged for reclamation */
    /* The read side's fast path (below): this thread's liburcu reader once it is registered
     * and the kernel has membarrier(); until then &chm__smr_no_reader, whose registered flag
     * is 0, so the inline lock and unlock take their out-of-line forms. */
    struct urcu_reader *fast;
};
/* Initial-exec, like the backends' own thread-locals: 16 bytes of static TLS, no
 * __tls_get_addr per call in libchm.so. */
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
 * with chm__value_retire_discard. Inline tests: a map without value_free (the common case) pays
 * a load and a branch on every write, not three calls. Records come from a pool of @m's
 * (chm.value_recs: created by the first reservation, freed by chm__smr_domain_free of the
 * domain whose owner @m is), so an overwrite costs no malloc and no free. */
CHM_HIDDEN bool chm__value_retire_alloc(const chm *m, chm_value_retire **rec);
static inline bool chm__value_retire_reserve(const chm *m, chm_value_retire **rec)
{
    if (m->value_free == NULL || *rec != NULL)
        return true;
    return chm__value_retire_alloc(m, rec);
}

/* Hand @value to @m's value_free after a grace period, consuming *@rec (set to NULL). A no-op
 * when *@rec is NULL (no value_free). */
CHM_HIDDEN void chm__value_retire_record(chm_smr_domain *d, chm_value_retire **rec,
                                         uint64_t value);
static inline void chm__value_retire(const chm *m, chm_smr_domain *d, chm_value_retire **rec,
                                     uint64_t value)
{
    (void)m; /* the domain's owner: value_free's map */
    if (*rec != NULL)
        chm__value_retire_record(d, rec, value);
}

/* The bytes @m's value records hold from the system (their pool's slabs; 0 before the first
 * reservation), for chm_stats_get. */
CHM_HIDDEN size_t chm__value_retire_bytes(const chm *m);

/* Give an unused reservation of @m's back (NULL: nothing to do, no call). */
CHM_HIDDEN void chm__value_retire_put(const chm *m, chm_value_retire *rec);
static inline void chm__value_retire_discard(const chm *m, chm_value_retire *rec)
{
    if (rec != NULL)
        chm__value_retire_put(m, rec);
}

/* A free_fn for retired objects that own nothing else: it frees the memory (chm__free). */
CHM_HIDDEN void chm__smr_free_plain(chm_smr_node *n, void *owner);

/* ---- private: inline read-side fast path ----------------------------------------------------
 * chm__smr_read_lock() / chm__smr_read_unlock() expand to inline code: liburcu memb's
 * read-side protocol on the thread's reader, about 20 instructions for a lock/unlock pair
 * (tools/instr_count.sh; docs/design.md, "The read path, instruction by instruction"). The
 * functions above still exist -- call them as (chm__smr_read_lock)() to bypass the macros --
 * and behave identically.
 *
 * The bodies are liburcu 0.13's _urcu_memb_read_lock/_urcu_memb_read_unlock (static/urcu-memb.h,
 * which liburcu marks as meeting LGPL's 10-line criterion for inlining into non-LGPL code),
 * with two changes, both about finding the reader and neither about the protocol:
 *   - the reader is reached through chm__smr_hot.fast, an initial-exec thread-local of ours: one
 *     %fs-relative load. liburcu's own inline functions name its TLS variable at every access,
 *     and in a shared object (general-dynamic TLS) each of those is a __tls_get_addr call;
 *   - fast points at the reader only once the thread is registered AND liburcu found
 *     membarrier() (urcu_memb_has_sys_membarrier, set once at liburcu's load), so the slave
 *     barriers are compiler barriers with no test: liburcu tests the flag three times per
 *     section. Otherwise fast points at chm__smr_no_reader (registered == 0) and every section
 *     takes the out-of-line slow path (registration, then liburcu's own functions).
 * The check is liburcu's "registered" flag itself, not one of ours: it stays right if the
 * application (un)registers the thread itself. The protocol, the struct layout and the
 * constants are part of liburcu's ABI (SONAME 8) precisely because LGPL users inline them.
 *
 * Under ThreadSanitizer the macros are not defined: the unlock's wake-up check races benignly
 * on liburcu's global futex word, which TSan would report; smr.c then calls liburcu's
 * uninstrumented out-of-line wrappers and adds the TSan annotations. */
#include "sanitizers.h" /* CHM__TSAN */

#include <urcu/static/urcu-memb.h> /* urcu_memb_reader (TLS), urcu_memb_gp, the protocol */

/* Register the calling thread with liburcu and arrange its unregistration at thread exit. */
CHM_HIDDEN void chm__smr_register(void);

/* What chm__smr_hot.fast points at while the fast path is off (see above). Never written. */
CHM_HIDDEN extern struct urcu_reader chm__smr_no_reader;

/* The slow paths: register if needed, point fast at the reader if membarrier() is there, and
 * run liburcu's out-of-line lock / unlock. */
CHM_HIDDEN void chm__smr_read_lock_slow(void);
CHM_HIDDEN void chm__smr_read_unlock_slow(void);

/* The calling thread's liburcu reader, registered (the TSan build's read lock). */
static inline struct urcu_reader *chm__smr_self(void)
{
    struct urcu_reader *r = &URCU_TLS(urcu_memb_reader);
    if (chm_unlikely(!r->registered))
        chm__smr_register();
    return r;
}

/* ---- lookups that end in a return: chm__smr_lookup_begin / chm__smr_lookup_return ----------
 * The integer-key lookups (the backends' get_u64) are leaf functions on their fast path: no
 * call except tail calls, so the compiler saves no register and builds no frame. These two are
 * the read lock and unlock written for that:
 *
 *     chm__smr_reader *r = chm__smr_lookup_begin();
 *     if (r == NULL)
 *         return generic_get(m, key, value);    (fast path off, or a section already open)
 *     ... the lookup, every exit through ...
 *     return chm__smr_lookup_return(r, rc);
 *
 * chm__smr_lookup_begin opens an outermost section (as chm__smr_read_lock) and returns a token,
 * or NULL without opening one when the fast path is off (see above) or the thread is already
 * inside a section (chm_get from a visit function, an iterator's caller inside its own
 * section...): the generic get's nesting-aware section handles those. Knowing the section is
 * outermost, chm__smr_lookup_return closes it with one store of 0 (liburcu stores the counter
 * minus one nesting level, which leaves only the phase bit, and a reader whose nesting count is
 * 0 is quiescent whatever its phase bit: its next outermost lock overwrites the word), then
 * makes liburcu's wake-up check, the rare futex call a tail call, and returns @rc. Under
 * ThreadSanitizer both call the out-of-line functions, so the backends' lookup code itself
 * still runs under TSan. */
typedef struct urcu_reader chm__smr_reader;

CHM_HIDDEN int chm__smr_wake_gp_return(int rc);

#ifndef CHM__TSAN
static inline chm__smr_reader *chm__smr_lookup_begin(void)
{
    struct urcu_reader *r = chm__smr_hot.fast;
    if (chm_unlikely(!r->registered))
        return NULL;
    cmm_barrier(); /* the section's accesses stay after the lock (liburcu's comment) */
    if (chm_unlikely(r->ctr & URCU_GP_CTR_NEST_MASK))
        return NULL; /* nested: the generic path */
    /* Snapshot the grace-period phase. With membarrier() (the only case that gets here) the
     * slave barrier is a compiler barrier: the grace period issues the fences on this thread's
     * behalf. */
    _CMM_STORE_SHARED(r->ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr));
    cmm_barrier();
    return r;
}

static inline int chm__smr_lookup_return(chm__smr_reader *r, int rc)
{
    /* The section precedes the store; the store precedes the futex check (slave barriers,
     * compiler barriers with membarrier() as above). */
    cmm_barrier();
    _CMM_STORE_SHARED(r->ctr, 0);
    cmm_barrier();
    /* liburcu's urcu_common_wake_up_gp, its call made a tail call */
    if (chm_unlikely(uatomic_read(&urcu_memb_gp.futex) == -1))
        return chm__smr_wake_gp_return(rc);
    return rc;
}

/* The nesting-aware section of every other read path (liburcu's protocol as it is). */
static inline void chm__smr_read_lock_inline(void)
{
    struct urcu_reader *r = chm__smr_hot.fast;
    if (chm_unlikely(!r->registered)) {
        chm__smr_read_lock_slow();
        return;
    }
    cmm_barrier(); /* the section's accesses stay after the lock (liburcu's comment) */
    unsigned long tmp = r->ctr;
    if (chm_likely(!(tmp & URCU_GP_CTR_NEST_MASK))) {
        _CMM_STORE_SHARED(r->ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr)); /* as above */
        cmm_barrier();
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp + URCU_GP_COUNT);
    }
}

static inline void chm__smr_read_unlock_inline(void)
{
    struct urcu_reader *r = chm__smr_hot.fast;
    if (chm_unlikely(!r->registered)) {
        chm__smr_read_unlock_slow();
        return;
    }
    unsigned long tmp = r->ctr;
    if (chm_likely((tmp & URCU_GP_CTR_NEST_MASK) == URCU_GP_COUNT)) {
        cmm_barrier(); /* as in chm__smr_lookup_return */
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
        cmm_barrier();
        urcu_common_wake_up_gp(&urcu_memb_gp);
    } else {
        _CMM_STORE_SHARED(r->ctr, tmp - URCU_GP_COUNT);
    }
    cmm_barrier();
}

#define chm__smr_read_lock() chm__smr_read_lock_inline()
#define chm__smr_read_unlock() chm__smr_read_unlock_inline()
#else
static inline chm__smr_reader *chm__smr_lookup_begin(void)
{
    (chm__smr_read_lock)();
    return &chm__smr_no_reader; /* a token: never read */
}

static inline int chm__smr_lookup_return(chm__smr_reader *r, int rc)
{
    (void)r;
    (chm__smr_read_unlock)();
    return rc;
}
#endif

#endif /* CHM_SMR_H */
