/*
 * smr.c - safe memory reclamation on liburcu's memb flavour (see docs/design.md, "Safe memory
 * reclamation", for the measurements behind the choice).
 *
 * Readers: liburcu memb's read lock/unlock, inlined into the callers through smr.h, so a
 * section costs two thread-local stores and compiler barriers; the membarrier() system call
 * moves the fences to the grace period. Threads register lazily on their first read section
 * and are unregistered by a pthread_key destructor when they exit.
 *
 * Writers: chm__smr_retire() counts the node in its domain's pending count and pushes it on one
 * process-wide lock-free stack (smr_queue; a CAS, no allocation, no lock). Our own reclaimer
 * thread, started by the first chm__smr_domain_init, takes the whole stack at once, waits for
 * one grace period (synchronize_rcu), runs every free_fn and drops the pending counts. Between
 * rounds it waits SMR_DELAY_MS for more work to batch -- liburcu's call_rcu worker does the
 * same, 10 ms -- unless a chm__smr_drain() is waiting: a drain wakes it at once, so freeing a
 * map costs about one grace period (~0.1 ms) instead of a whole batching delay (10 ms). That
 * kick is why we do not use call_rcu: its worker sleeps 10 ms after every wake-up, and nothing
 * can cut that short.
 *
 * ThreadSanitizer: liburcu 0.13 is not instrumented, so TSan cannot see that a grace period
 * orders every earlier read section before a free. Under -fsanitize=thread the layer says so
 * with a __tsan_release/__tsan_acquire pair (CHM__SMR_TSAN, detected in smr.h). Everything
 * else -- the retiring thread's writes before the reclaimer's free -- goes through C11 atomics
 * that TSan sees.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall, pthread_setname_np */
#endif
#include "smr.h"
#include "torture.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long the reclaimer lets retired nodes accumulate after a round before it starts the next
 * one (unless a drain waits): what liburcu's call_rcu worker does (10 ms), so a busy map pays
 * one grace period per 10 ms, not one per retire. */
#ifndef SMR_DELAY_MS
#define SMR_DELAY_MS 10
#endif

#ifdef CHM__SMR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

/* The happens-before edge a grace period implies, made visible to TSan: every reader releases
 * this token when it leaves a section, and whoever frees after a grace period (the reclaimer,
 * the caller of chm__smr_synchronize) acquires it. TSan's release joins clocks, so one acquire
 * covers every section that ended before it -- which, after a grace period, includes every
 * section that could still hold the object. */
static char smr_tsan_gp_token;
#define smr_tsan_release(p) __tsan_release(p)
#define smr_tsan_acquire(p) __tsan_acquire(p)
#else
#define smr_tsan_release(p) ((void)0)
#define smr_tsan_acquire(p) ((void)0)
#endif

static pthread_once_t smr_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t smr_key;

/* Set on the reclaimer thread: a drain there would wait for the very thread that frees. */
static _Thread_local bool smr_on_reclaimer;

static void smr_fatal(const char *msg)
{
    fprintf(stderr, "chm: %s\n", msg);
    abort();
}

/* Thread exit: leave liburcu's registry, or the next grace period would read this thread's
 * freed TLS. Only threads that chm__smr_register() registered carry the key, so a thread the
 * application registered itself is left alone. */
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
    /* Pairs with the smr_tsan_acquire of the token in smr_reclaim / chm__smr_synchronize:
     * everything this section read happens before a free that follows a grace period. */
    smr_tsan_release(&smr_tsan_gp_token);
#ifdef CHM__SMR_TSAN
    urcu_memb_read_unlock();
#else
    chm__smr_read_unlock_inline();
#endif
}

/* ---- the reclaimer ------------------------------------------------------------------------ */

/* Retired nodes of every domain not yet taken by the reclaimer, newest first, linked through
 * node->link. Pushed by CAS; taken whole by exchange, so there is no ABA problem: a push whose
 * CAS finds the same top again links to the right node, whatever happened in between. */
static _Atomic(chm_smr_node *) smr_queue;

/* The reclaimer sleeps on smr_kick (a futex word, bumped by whoever wakes it) in two places:
 * with no timeout while smr_queue is empty (smr_idle set), and for SMR_DELAY_MS between rounds.
 * Retires wake it only from the first wait, drains from both. */
static atomic_uint smr_kick;
static atomic_bool smr_idle;

/* Drain waiters sleep here; a round that brings a domain to zero wakes them. One global pair,
 * not one per domain: drains are rare (chm_free) and the domain may be freed as soon as its
 * drain returns, so the reclaimer must not touch it after the decrement. smr_drain_waiters also
 * tells the reclaimer to skip its batching delay. */
static pthread_mutex_t smr_drain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smr_drain_cond = PTHREAD_COND_INITIALIZER;
static atomic_uint smr_drain_waiters;

static pthread_once_t smr_reclaimer_once = PTHREAD_ONCE_INIT;

static void smr_futex_wait(atomic_uint *word, unsigned seen, const struct timespec *timeout)
{
    /* Returns at once if *word != seen; EINTR, EAGAIN and timeouts are fine: callers re-check. */
    (void)syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, seen, timeout, NULL, 0);
}

/* Wake the reclaimer if it sleeps on smr_kick. seq_cst: the bump is ordered after the waker's
 * own seq_cst store or RMW (a push, a waiter count), and the reclaimer loads smr_kick before it
 * re-checks those (see smr_reclaimer_main), so either it sees the waker's change or its
 * futex_wait sees a new smr_kick and returns at once. */
static void smr_kick_reclaimer(void)
{
    atomic_fetch_add_explicit(&smr_kick, 1, memory_order_seq_cst);
    (void)syscall(SYS_futex, (unsigned *)&smr_kick, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Drop @k from @d's pending count after its nodes were freed; wake the drains if it reached
 * zero. @d may be freed once the decrement is visible: nothing after it touches @d. */
static void smr_release_pending(chm_smr_domain *d, size_t k)
{
    /* Release: pairs with the acquire loads of pending in chm__smr_drain, so whatever the
     * free_fns did (including their retires, which incremented pending before this) is visible
     * once a drain sees zero. seq_cst: with the load of smr_drain_waiters it forms a Dekker
     * pair against the increment of waiters / load of pending in drain, so either we see the
     * waiter or it sees zero (no lost wake-up). */
    size_t before = atomic_fetch_sub_explicit(&d->pending, k, memory_order_seq_cst);
    if (before == k && atomic_load_explicit(&smr_drain_waiters, memory_order_seq_cst) != 0) {
        pthread_mutex_lock(&smr_drain_lock);
        pthread_cond_broadcast(&smr_drain_cond);
        pthread_mutex_unlock(&smr_drain_lock);
    }
}

/* One round: take everything queued, wait for a grace period, free it in retire order. */
static void smr_reclaim(void)
{
    /* Acquire: pairs with the release (seq_cst) CAS of each push in chm__smr_retire -- later
     * pushes are RMWs and continue each earlier push's release sequence -- so every node's
     * link, free_fn and domain, the pending increment, and whatever the retiring thread did
     * before (the unlink) happen before the frees. This is the retire -> free edge TSan sees. */
    chm_smr_node *n = atomic_exchange_explicit(&smr_queue, NULL, memory_order_acquire);
    if (n == NULL)
        return;
    /* Oldest first, as call_rcu did: reverse the chain (it is ours alone now). */
    chm_smr_node *fifo = NULL;
    while (n != NULL) {
        chm_smr_node *next = n->link;
        n->link = fifo;
        fifo = n;
        n = next;
    }
    CHM_YIELD_POINT("smr.reclaim.before_gp"); /* taken, grace period not yet started */
    /* Every node was retired before the exchange, hence unlinked before this grace period
     * began: no reader can still hold one when it ends. */
    urcu_memb_synchronize_rcu();
    /* Pairs with the smr_tsan_release in chm__smr_read_unlock (see smr_tsan_gp_token). */
    smr_tsan_acquire(&smr_tsan_gp_token);

    /* Runs of one domain (the usual case: a busy map) release their count in one RMW. A
     * domain's count cannot reach zero while a later node of the run is unfreed, and comparing
     * a later node's domain with a domain already released compares pointers only. */
    chm_smr_domain *d = NULL;
    size_t k = 0;
    for (n = fifo; n != NULL;) {
        chm_smr_node *next = n->link; /* n is gone after free_fn */
        if (n->domain != d) {
            if (k != 0)
                smr_release_pending(d, k);
            d = n->domain;
            k = 0;
        }
        n->free_fn(n);
        k++;
        n = next;
    }
    smr_release_pending(d, k);
}

static struct timespec smr_ts_add_ms(struct timespec t, long ms)
{
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static void *smr_reclaimer_main(void *arg)
{
    (void)arg;
    smr_on_reclaimer = true;
    struct timespec round_start = {0, 0};
    for (;;) {
        /* Wait for work. The kick is loaded before the checks: a waker that changes what they
         * read bumps it afterwards, and then the futex_wait returns at once. */
        bool slept = false;
        for (;;) {
            unsigned seen = atomic_load_explicit(&smr_kick, memory_order_seq_cst);
            if (atomic_load_explicit(&smr_queue, memory_order_seq_cst) != NULL)
                break;
            /* seq_cst store, then seq_cst load of the queue: the Dekker pair with a retire's
             * push (seq_cst CAS) then load of smr_idle. Either we see the node or it sees us
             * idle and kicks. */
            atomic_store_explicit(&smr_idle, true, memory_order_seq_cst);
            if (atomic_load_explicit(&smr_queue, memory_order_seq_cst) != NULL) {
                atomic_store_explicit(&smr_idle, false, memory_order_relaxed);
                break;
            }
            smr_futex_wait(&smr_kick, seen, NULL);
            atomic_store_explicit(&smr_idle, false, memory_order_relaxed);
            slept = true;
        }
        /* Let more work accumulate, unless a drain is waiting (it bumps the kick after
         * incrementing smr_drain_waiters: same load order as above). Rounds start at most every
         * SMR_DELAY_MS: after an idle wait the delay counts from the wake-up, otherwise from the
         * start of the previous round -- so a reclaimer that falls behind (a round longer than
         * the delay) runs flat out instead of idling between rounds. */
        struct timespec deadline;
        if (slept)
            clock_gettime(CLOCK_MONOTONIC, &deadline);
        else
            deadline = round_start;
        deadline = smr_ts_add_ms(deadline, SMR_DELAY_MS);
        for (;;) {
            unsigned seen = atomic_load_explicit(&smr_kick, memory_order_seq_cst);
            if (atomic_load_explicit(&smr_drain_waiters, memory_order_seq_cst) != 0)
                break;
            struct timespec now, left;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = deadline.tv_sec - now.tv_sec;
            left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_nsec += 1000000000L;
                left.tv_sec--;
            }
            if (left.tv_sec < 0)
                break;
            smr_futex_wait(&smr_kick, seen, &left);
        }
        clock_gettime(CLOCK_MONOTONIC, &round_start);
        smr_reclaim();
    }
    return NULL;
}

static void smr_start_reclaimer(void)
{
    /* The thread inherits a full signal mask: application signals go to application threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&t, &attr, smr_reclaimer_main, NULL);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        (void)pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        errno = rc;
        perror("chm: smr: cannot start the reclaimer thread");
        abort();
    }
    (void)pthread_setname_np(t, "chm-reclaim");
}

void chm__smr_domain_init(chm_smr_domain *d)
{
    atomic_init(&d->pending, 0);
    /* Start the reclaimer now (chm_new, may block) rather than in the first retire, which may
     * run under a backend's lock and must not block. */
    (void)pthread_once(&smr_reclaimer_once, smr_start_reclaimer);
}

void chm__smr_retire(chm_smr_domain *d, chm_smr_node *n, void (*free_fn)(chm_smr_node *n))
{
    n->free_fn = free_fn;
    n->domain = d;
    /* Relaxed: the push below publishes it (release), and the reclaimer's decrement follows its
     * acquire of the queue; a drain's caller happens after this retire, or -- for a free_fn
     * retiring into its own domain on the reclaimer -- this precedes that node's decrement. */
    atomic_fetch_add_explicit(&d->pending, 1, memory_order_relaxed);
    /* Relaxed: top is only stored into n->link, never dereferenced. */
    chm_smr_node *top = atomic_load_explicit(&smr_queue, memory_order_relaxed);
    do {
        CHM_YIELD_POINT("smr.retire.before_push"); /* racing retirers and the reclaimer */
        n->link = top;
        /* seq_cst (a release for the node, see smr_reclaim; seq_cst for the Dekker pair with
         * the reclaimer's smr_idle store / queue load). A locked instruction either way. */
    } while (!atomic_compare_exchange_weak_explicit(&smr_queue, &top, n, memory_order_seq_cst,
                                                    memory_order_relaxed));
    /* seq_cst: the other half of that Dekker pair. Usually false (the reclaimer is between
     * rounds or busy): then a retire costs one CAS and one increment. The exchange lets one of
     * several racing retirers make the system call. */
    if (top == NULL && atomic_load_explicit(&smr_idle, memory_order_seq_cst) &&
        atomic_exchange_explicit(&smr_idle, false, memory_order_relaxed))
        smr_kick_reclaimer();
}

void chm__smr_drain(chm_smr_domain *d)
{
    /* Acquire: pairs with the release decrement in smr_release_pending (the last decrement
     * heads a release sequence of RMWs, so seeing zero synchronises with every free_fn). */
    if (atomic_load_explicit(&d->pending, memory_order_acquire) == 0)
        return;
    if (_urcu_memb_read_ongoing())
        smr_fatal("smr: chm__smr_drain inside a read-side section (would never finish)");
    if (smr_on_reclaimer)
        smr_fatal("smr: chm__smr_drain from a reclamation callback (chm_free from value_free "
                  "or keyops.release?) would wait for itself");

    /* seq_cst increment + seq_cst load of pending: the Dekker pair with smr_release_pending.
     * The kick after the increment ends the reclaimer's batching delay (or its idle wait, if
     * it raced with the push of our last node): our nodes are freed in its next round, about a
     * grace period from now. This is rcu_barrier() restricted to one domain, without its
     * allocations and without call_rcu's 10 ms sleep. */
    atomic_fetch_add_explicit(&smr_drain_waiters, 1, memory_order_seq_cst);
    smr_kick_reclaimer();
    pthread_mutex_lock(&smr_drain_lock);
    while (atomic_load_explicit(&d->pending, memory_order_seq_cst) != 0)
        pthread_cond_wait(&smr_drain_cond, &smr_drain_lock);
    pthread_mutex_unlock(&smr_drain_lock);
    atomic_fetch_sub_explicit(&smr_drain_waiters, 1, memory_order_relaxed);
    /* The seq_cst load that saw zero is also an acquire: free_fn's effects are visible. */
}

static void smr_barrier_sentinel_freed(chm_smr_node *n)
{
    (void)n; /* on the caller's stack: the drain below is what waits for it */
}

void chm__smr_barrier(void)
{
    /* A round frees its whole batch in order, so a sentinel retired after node X is freed
     * either in a later round than X or in X's round -- possibly before X. A second sentinel,
     * retired once the first is freed, cannot be in that round any more (its batch was taken
     * before the first sentinel's free_fn ran): when it is freed, X's round is over. */
    for (int round = 0; round < 2; round++) {
        chm_smr_domain d;
        chm_smr_node sentinel;
        chm__smr_domain_init(&d);
        chm__smr_retire(&d, &sentinel, smr_barrier_sentinel_freed);
        chm__smr_drain(&d);
    }
}

void chm__smr_synchronize(void)
{
    if (_urcu_memb_read_ongoing())
        smr_fatal("smr: chm__smr_synchronize inside a read-side section (self-deadlock)");
    urcu_memb_synchronize_rcu();
    /* Pairs with the smr_tsan_release in chm__smr_read_unlock: the caller frees next. */
    smr_tsan_acquire(&smr_tsan_gp_token);
}

/* ---- values leaving a lock-free map ----------------------------------------------------------- */

struct chm_value_retire {
    chm_smr_node smr;
    const chm *map;
    uint64_t value;
};

static void value_retire_free(chm_smr_node *n)
{
    struct chm_value_retire *r = (struct chm_value_retire *)n;
    chm__value_free(r->map, r->value);
    chm__free(r);
}

bool chm__value_retire_reserve(const chm *m, chm_value_retire **rec)
{
    if (m->value_free == NULL || *rec != NULL)
        return true;
    *rec = chm__malloc(sizeof **rec);
    return *rec != NULL;
}

void chm__value_retire(const chm *m, chm_smr_domain *d, chm_value_retire **rec, uint64_t value)
{
    if (*rec == NULL)
        return;
    (*rec)->map = m;
    (*rec)->value = value;
    chm__smr_retire(d, &(*rec)->smr, value_retire_free);
    *rec = NULL;
}

void chm__smr_free_plain(chm_smr_node *n)
{
    chm__free(n);
}
