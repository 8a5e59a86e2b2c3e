/*
 * smr.h - safe memory reclamation for the lock-free read paths (segmented, binlock,
 * readmostly). INTERFACE FIXED; implementation in smr.c.
 *
 * Read side: chm__smr_read_lock()/chm__smr_read_unlock() bracket every lock-free read of shared
 * nodes. They nest, take no lock, store nothing to memory shared with other threads, and
 * register the calling thread lazily on first use (unregistered by a thread-exit destructor):
 * users never call a register function.
 *
 * Write side: an object that a concurrent reader may still hold embeds a chm_smr_node and is
 * handed to chm__smr_retire() after it was unlinked. Its free_fn runs after a grace period (no
 * read section that began before the retire is still running), on the library's reclaimer
 * thread, 10-20 ms later. chm__smr_retire never fails and never blocks (no lock, no allocation),
 * so a backend can retire after it committed a change (preallocate whatever else it needs
 * before committing). A domain (one per map) counts what it has pending; chm__smr_drain waits
 * until all of it has been freed, about one grace period when nothing else is queued (chm_free
 * uses it so that no value_free callback runs after chm_free returns).
 */
#ifndef CHM_SMR_H
#define CHM_SMR_H

#include "chm_internal.h"

#include <urcu/urcu-memb.h> /* the out-of-line liburcu memb API */

typedef struct chm_smr_domain {
    atomic_size_t pending; /* retired through this domain and not yet freed */
} chm_smr_domain;

typedef struct chm_smr_node chm_smr_node;
struct chm_smr_node {
    chm_smr_node *link; /* next in the reclaimer's queue */
    void (*free_fn)(chm_smr_node *n);
    chm_smr_domain *domain;
};

CHM_HIDDEN void chm__smr_domain_init(chm_smr_domain *d);

/* Enter / leave a read-side section (nestable; lazily registers the thread). */
CHM_HIDDEN void chm__smr_read_lock(void);
CHM_HIDDEN void chm__smr_read_unlock(void);

/* Hand @n (already unreachable for new readers) to the reclaimer: @free_fn(@n) runs after a
 * grace period. Callable inside or outside a read section, under a lock. Never fails. */
CHM_HIDDEN void chm__smr_retire(chm_smr_domain *d, chm_smr_node *n,
                                void (*free_fn)(chm_smr_node *n));

/* Wait until every node retired through @d has been freed (what a free_fn retires into @d
 * meanwhile, too): wakes the reclaimer, so it takes about one grace period, not its 10 ms
 * batching delay. Not inside a read section, nor from a free_fn. */
CHM_HIDDEN void chm__smr_drain(chm_smr_domain *d);

/* Wait for one grace period. Not inside a read section. */
CHM_HIDDEN void chm__smr_synchronize(void);

/* Wait until every node retired (into any domain) before the call has been freed. For tests
 * that count the blocks a map holds: after a barrier nothing is in flight, so the count depends
 * on the map's contents alone, not on how far the reclaimer got on a loaded machine. Same
 * restrictions as chm__smr_drain. */
CHM_HIDDEN void chm__smr_barrier(void);

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

/* A free_fn for retired objects that own nothing else: it frees the memory. */
CHM_HIDDEN void chm__smr_free_plain(chm_smr_node *n);

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
#if defined(__SANITIZE_THREAD__)
#define CHM__SMR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHM__SMR_TSAN 1
#endif
#endif

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

#ifndef CHM__SMR_TSAN
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
