/*
 * smr.c - safe memory reclamation on liburcu's memb flavour (see docs/design.md, "Safe memory
 * reclamation", for the measurements behind the choice).
 *
 * Readers: liburcu memb's read lock/unlock, inlined into the callers through smr.h, so a
 * section costs two thread-local stores and compiler barriers; the membarrier() system call
 * moves the fences to the grace period. Threads register lazily on their first read section
 * or retire and are unregistered by a pthread_key destructor when they exit.
 *
 * Writers: call_rcu() on the embedded rcu_head. liburcu's default call_rcu worker thread runs
 * one synchronize_rcu() per batch and then the callbacks; ours runs free_fn and then drops the
 * domain's pending count, which chm__smr_drain() waits on.
 *
 * ThreadSanitizer: liburcu 0.13 is not instrumented, so TSan cannot see that a grace period
 * orders every earlier read section before a callback. Under -fsanitize=thread the layer says
 * so with __tsan_release/__tsan_acquire pairs (CHM__SMR_TSAN, detected in smr.h).
 */
#include "smr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef CHM__SMR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

/* The happens-before edge a grace period implies, made visible to TSan: every reader releases
 * this token when it leaves a section, and whoever frees after a grace period (the call_rcu
 * callback, the caller of chm__smr_synchronize) acquires it. TSan's release joins clocks, so
 * one acquire covers every section that ended before it -- which, after a grace period,
 * includes every section that could still hold the object. */
static char smr_tsan_gp_token;
#define smr_tsan_release(p) __tsan_release(p)
#define smr_tsan_acquire(p) __tsan_acquire(p)
#else
#define smr_tsan_release(p) ((void)0)
#define smr_tsan_acquire(p) ((void)0)
#endif

static pthread_once_t smr_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t smr_key;

/* Set while our callback runs on the call_rcu worker: waiting for reclamation there would
 * wait for the very thread that performs it. */
static _Thread_local bool smr_in_callback;

static void smr_fatal(const char *msg)
{
    fprintf(stderr, "chm: %s\n", msg);
    abort();
}

/* Thread exit: leave liburcu's registry, or the next grace period would read this thread's
 * freed TLS. Only threads that chm__smr_register() registered carry the key, so a thread the
 * application (or liburcu, for its workers) registered itself is left alone. */
static void smr_thread_exit(void *arg)
{
    (void)arg;
    if (URCU_TLS(urcu_memb_reader).registered)
        urcu_memb_unregister_thread();
}

static void smr_make_key(void)
{
    if (pthread_key_create(&smr_key, smr_thread_exit) != 0)
        smr_fatal("smr: pthread_key_create failed");
}

/* Slow path of the lazy registration. Takes liburcu's registry mutex briefly; liburcu drops
 * that mutex while a grace period waits for readers, so this cannot deadlock against one. */
void chm__smr_register(void)
{
    (void)pthread_once(&smr_key_once, smr_make_key);
    /* The key must be set before registering: if it failed after, the thread would exit
     * registered and leave a dangling TLS node in the registry. A later destructor pass that
     * finds the thread unregistered does nothing. */
    if (pthread_setspecific(smr_key, (void *)1) != 0)
        smr_fatal("smr: pthread_setspecific failed");
    urcu_memb_register_thread();
}

void chm__smr_domain_init(chm_smr_domain *d)
{
    atomic_init(&d->pending, 0);
    /* Start liburcu's default call_rcu worker now (chm_new, may block) rather than in the
     * first retire, which may run under a backend's lock and must not block. */
    (void)urcu_memb_get_default_call_rcu_data();
}

/* The out-of-line forms. Without TSan they do what the inline fast paths in smr.h do; with
 * TSan they are the only forms, and liburcu's read-side code runs uninstrumented in the
 * library (see smr.h). The parentheses keep smr.h's macros from expanding. */
void(chm__smr_read_lock)(void)
{
#ifdef CHM__SMR_TSAN
    (void)chm__smr_self(); /* registers if needed */
    urcu_memb_read_lock();
#else
    chm__smr_read_lock_inline();
#endif
}

void(chm__smr_read_unlock)(void)
{
    /* Pairs with the smr_tsan_acquire of the token in smr_callback / chm__smr_synchronize:
     * everything this section read happens before a free that follows a grace period. */
    smr_tsan_release(&smr_tsan_gp_token);
#ifdef CHM__SMR_TSAN
    urcu_memb_read_unlock();
#else
    chm__smr_read_unlock_inline();
#endif
}

/* Drain waiters sleep here; a callback that brings a domain to zero wakes them. One global
 * pair, not one per domain: drains are rare (chm_free) and the domain may be freed as soon as
 * its drain returns, so the callback must not touch it after the decrement. */
static pthread_mutex_t smr_drain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smr_drain_cond = PTHREAD_COND_INITIALIZER;
static atomic_uint smr_drain_waiters;

static void smr_callback(struct rcu_head *head)
{
    chm_smr_node *n = caa_container_of(head, chm_smr_node, head);

    /* Pairs with the smr_tsan_release(n) in chm__smr_retire: the retiring thread's last
     * writes to the node (free_fn, domain, the unlink itself) happen before the free. */
    smr_tsan_acquire(n);
    /* Pairs with the smr_tsan_release in chm__smr_read_unlock (see smr_tsan_gp_token). */
    smr_tsan_acquire(&smr_tsan_gp_token);

    chm_smr_domain *d = n->domain; /* n is gone after free_fn */
    smr_in_callback = true;
    n->free_fn(n);
    smr_in_callback = false;

    /* Release: pairs with the acquire loads of pending in chm__smr_drain, so whatever free_fn
     * did is visible once a drain sees zero. seq_cst: with the load of smr_drain_waiters it
     * forms a Dekker pair against the increment of waiters / load of pending in drain, so
     * either we see the waiter or it sees zero (no lost wake-up). The domain may be freed
     * as soon as this store is visible: nothing below touches it. */
    size_t before = atomic_fetch_sub_explicit(&d->pending, 1, memory_order_seq_cst);
    if (before == 1 && atomic_load_explicit(&smr_drain_waiters, memory_order_seq_cst) != 0) {
        pthread_mutex_lock(&smr_drain_lock);
        pthread_cond_broadcast(&smr_drain_cond);
        pthread_mutex_unlock(&smr_drain_lock);
    }
}

void chm__smr_retire(chm_smr_domain *d, chm_smr_node *n, void (*free_fn)(chm_smr_node *n))
{
    n->free_fn = free_fn;
    n->domain = d;
    /* Relaxed: drain's caller happens after this retire (chm_free does not race), and the
     * matching decrement cannot precede it: call_rcu's enqueue is a full barrier and the
     * callback runs a grace period later. */
    atomic_fetch_add_explicit(&d->pending, 1, memory_order_relaxed);
    /* liburcu 0.13: "call_rcu should be called from registered RCU read-side threads" (it
     * takes a read lock around its per-CPU data lookup). */
    (void)chm__smr_self(); /* registers if needed */
    /* Pairs with smr_tsan_acquire(n) in smr_callback: liburcu's queue is not instrumented. */
    smr_tsan_release(n);
    urcu_memb_call_rcu(&n->head, smr_callback);
}

void chm__smr_drain(chm_smr_domain *d)
{
    /* Acquire: pairs with the release decrement in smr_callback (the last decrement heads a
     * release sequence of RMWs, so seeing zero synchronises with every free_fn). */
    if (atomic_load_explicit(&d->pending, memory_order_acquire) == 0)
        return;
    if (_urcu_memb_read_ongoing())
        smr_fatal("smr: chm__smr_drain inside a read-side section (would never finish)");
    if (smr_in_callback)
        smr_fatal("smr: chm__smr_drain from a reclamation callback (chm_free from value_free "
                  "or keyops.release?) would wait for itself");

    /* seq_cst increment + seq_cst load of pending: the Dekker pair with smr_callback. The
     * condition variable only saves CPU; liburcu's worker makes progress on its own (call_rcu
     * woke it), so this is rcu_barrier() without its per-call allocations. */
    atomic_fetch_add_explicit(&smr_drain_waiters, 1, memory_order_seq_cst);
    pthread_mutex_lock(&smr_drain_lock);
    while (atomic_load_explicit(&d->pending, memory_order_seq_cst) != 0)
        pthread_cond_wait(&smr_drain_cond, &smr_drain_lock);
    pthread_mutex_unlock(&smr_drain_lock);
    atomic_fetch_sub_explicit(&smr_drain_waiters, 1, memory_order_relaxed);
    /* The seq_cst load that saw zero is also an acquire: free_fn's effects are visible. */
}

void chm__smr_synchronize(void)
{
    if (_urcu_memb_read_ongoing())
        smr_fatal("smr: chm__smr_synchronize inside a read-side section (self-deadlock)");
    urcu_memb_synchronize_rcu();
    /* Pairs with the smr_tsan_release in chm__smr_read_unlock: the caller frees next. */
    smr_tsan_acquire(&smr_tsan_gp_token);
}
