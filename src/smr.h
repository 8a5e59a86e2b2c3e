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
 * read section that began before the retire is still running), on some other thread.
 * chm__smr_retire never fails and never blocks, so a backend can retire after it committed a
 * change (preallocate whatever else it needs before committing). A domain (one per map) counts
 * what it has pending; chm__smr_drain waits until all of it has been freed (chm_free uses it so
 * that no value_free callback runs after chm_free returns).
 */
#ifndef CHM_SMR_H
#define CHM_SMR_H

#include "chm_internal.h"

#include <urcu/urcu-memb.h> /* struct rcu_head */

typedef struct chm_smr_domain {
    atomic_size_t pending; /* retired through this domain and not yet freed */
} chm_smr_domain;

typedef struct chm_smr_node chm_smr_node;
struct chm_smr_node {
    struct rcu_head head;
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

/* Wait until every node retired through @d has been freed. Not inside a read section. */
CHM_HIDDEN void chm__smr_drain(chm_smr_domain *d);

/* Wait for one grace period. Not inside a read section. */
CHM_HIDDEN void chm__smr_synchronize(void);

#endif /* CHM_SMR_H */
