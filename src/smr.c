/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smr.c - safe memory reclamation on liburcu's memb flavour, with no thread of the library's
 * own (the rule and the bound are stated in smr.h; measurements and alternatives in
 * docs/design.md, "Safe memory reclamation").
 *
 * Readers: liburcu memb's read lock/unlock, inlined into the callers through smr.h, so a
 * section costs two thread-local stores and compiler barriers; the membarrier() system call
 * moves the fences to the grace period. Threads register lazily on their first read section
 * and are unregistered by a pthread_key destructor when they exit.
 *
 * Writers: each domain (one per map) has its own retire queue, striped: a thread retires into
 * the stripe its ticket picks (src/stripes.h), a cache line holding a lock-free stack of
 * retired nodes whose top word carries their count, so a retire is one CAS on a line that
 * other writers do not touch (one shared line for all had writers on two cores waiting for
 * each other: docs/design.md, "Striped queues"). A retire that brings its stripe's count to
 * CHM_SMR_BATCH flags the domain on its thread (a reference, see smr_flag); when the thread's
 * outermost chm call returns (chm__smr_leave -> chm__smr_quiesce), outside any read section
 * and holding no lock, it takes its stripe's whole stack, waits for one
 * urcu_memb_synchronize_rcu (concurrent callers share one grace period inside liburcu), runs
 * the free_fns newest first and drops the counts (smr_reclaim): what one thread retired is
 * usually still in its cache, and it was usually allocated by the same thread. Objects taken
 * and not yet freed are counted in the domain's held. chm_free drains its own domain only:
 * take every stripe, grace period, free, and wait for batches other threads took from it
 * (which end after a grace period and this domain's own callbacks). A domain is freed by its
 * last reference: the map's (chm__smr_domain_free) or a thread's flag, so a flag never points
 * at freed memory, whatever chm_free does meanwhile.
 *
 * Slow paths -- reclaiming, draining, grace periods, registration, the domain registry -- run
 * inside "the gate" (smr_gate_enter/leave) with cancellation disabled: a cancelled thread never
 * leaves a lock held or a batch half freed, and fork()'s prepare handler waits until no thread
 * is inside the gate. liburcu 0.13 has no fork hooks for memb (urcu_memb_before_fork and
 * friends exist for the bp flavour only), so the gate stands in for them: at fork no thread of
 * ours holds liburcu's registry or grace-period mutex, and the child handler unlinks the
 * threads that did not survive from liburcu's registry (their TLS would otherwise be reused
 * while still linked) and from ours, drops their flags, and recounts the overflow of each
 * full stripe (a thread caught between a saturated retire's push and its overflow increment
 * leaves an object without its count).
 *
 * ThreadSanitizer: liburcu 0.13 is not instrumented, so TSan cannot see that a grace period
 * orders every earlier read section before a free. Under -fsanitize=thread the layer says so
 * with a __tsan_release/__tsan_acquire pair (CHM__TSAN, src/sanitizers.h). Everything
 * else -- the retiring thread's writes before the reclaiming thread's free -- goes through C11
 * atomics that TSan sees.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smr.h"
#include "reentry.h" /* CHM__LOCK_CALL */
#include "stripes.h" /* chm__thread_ticket */
#include "torture.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/list.h>

#ifdef CHM__TSAN

/* The happens-before edge a grace period implies, made visible to TSan: every reader releases
 * this token when it leaves a section, and whoever frees after a grace period (smr_gp)
 * acquires it. TSan's release joins clocks, so one acquire covers every section that ended
 * before it -- which, after a grace period, includes every section that could still hold the
 * object. */
static char smr_tsan_gp_token;
#define smr_tsan_release(p) chm__tsan_release(p)
#define smr_tsan_acquire(p) chm__tsan_acquire(p)
#else
#define smr_tsan_release(p) ((void)0)
#define smr_tsan_acquire(p) ((void)0)
#endif

/* ---- domains ---------------------------------------------------------------------------- */

/* A domain's queue is striped: a thread retires into the stripe its ticket picks
 * (src/stripes.h), so writers on different threads never write the same line on a retire --
 * one line per stripe, holding its lock-free stack of retired objects and their count.
 *
 * The stack's top and its count share one word, so that a retire is one CAS: the top object's
 * address in the low SMR_COUNT_SHIFT bits and the count above them. Before, the count was a
 * word of its own, and a retire paid a fetch_add on it before its CAS (two locked instructions,
 * each draining the store buffer; docs/design.md, "Striped queues"); and a taker then had to
 * walk the chain it took to count it, a cache miss per object. User-space addresses on x86-64
 * (4-level paging, or 5-level without an mmap hint above 2^47) and AArch64 are below 2^48;
 * chm__smr_retire checks. The count field saturates at SMR_COUNT_MAX: the retires that find it
 * full count themselves in the stripe's overflow instead, and a taker that finds it full
 * counts its chain by walking it (only a queue of 65,535 objects or more: a big resize's
 * shells in segmented). */
struct smr_stripe {
    /* The newest retired object not yet taken (linked through its record to the older ones),
     * with the count of the stack in the top bits (smr_top_*); 0: empty. */
    alignas(CHM_CACHELINE) atomic_uintptr_t top;
    /* Objects retired while the count field was full, minus those a taker counted by its walk;
     * may be briefly negative (a taker's walk counts a saturated push before that push's
     * increment lands). */
    atomic_long overflow;
};
_Static_assert(sizeof(struct smr_stripe) == CHM_CACHELINE, "a stripe is one cache line");
#define SMR_MAX_STRIPES 64u
#define SMR_COUNT_SHIFT 48
#define SMR_PTR_MASK (((uintptr_t)1 << SMR_COUNT_SHIFT) - 1)
#define SMR_COUNT_MAX ((size_t)(UINTPTR_MAX >> SMR_COUNT_SHIFT))
_Static_assert(sizeof(uintptr_t) == 8, "the count shares a 64-bit word with an address");
_Static_assert(SMR_COUNT_MAX >= CHM_SMR_BATCH,
               "a batch crossing is seen before the count saturates");

static inline chm_smr_node *smr_top_node(uintptr_t top)
{
    return (chm_smr_node *)(top & SMR_PTR_MASK);
}

static inline size_t smr_top_count(uintptr_t top)
{
    return (size_t)(top >> SMR_COUNT_SHIFT);
}

/* Objects on stripe @s's stack: its count field, and beyond a full field its overflow.
 * Acquire on top: smr_pending_now's ordering (below). */
static size_t smr_stripe_queued(struct smr_stripe *s)
{
    size_t n = smr_top_count(atomic_load_explicit(&s->top, memory_order_acquire));
    if (chm_unlikely(n == SMR_COUNT_MAX)) {
        long over = atomic_load_explicit(&s->overflow, memory_order_relaxed);
        if (over > 0)
            n += (size_t)over;
    }
    return n;
}

struct chm_smr_domain {
    /* Read by every retire: the free_fn of each kind (smr_kind), and the stripe mask. */
    _Atomic(chm_smr_free_fn *) kinds[CHM_SMR_KINDS];
    /* Bit i: kind i is retired by chm__smr_retire_bulk, so its objects are chm_smr_bulk and
     * count their weight (smr_weight). Relaxed, as kinds[]. */
    atomic_uint bulk_kinds;
    unsigned stripe_mask;
    /* Slow paths only. */
    alignas(CHM_CACHELINE) atomic_uint refs; /* the owner's, plus one per thread flag */
    atomic_uint inflight;                    /* batches taken and not yet freed (nor parked) */
    atomic_size_t held;                      /* objects taken and not yet freed (parked too) */
    atomic_size_t batches_done;              /* decrements of held so far (smr_pending_now) */
    atomic_size_t peak;                      /* the largest pending, for tests (smr_track) */
    /* Open iterators of the owner (chm__smr_iter_open/close), on a line of their own: iterators
     * of one map opened and closed by many threads do not slow its writers down. */
    alignas(CHM_CACHELINE) atomic_uint open_iters;
    /* Batches that had their grace period while an iterator was open: not freed until the
     * count of open iterators is seen at 0 (smr_reclaim). One chain, newest batch first, each
     * batch as it was taken (newest object first); counted in held. */
    _Atomic(chm_smr_node *) parked;
    atomic_bool dead; /* chm__smr_domain_free has begun */
    void *owner;
    chm_pool *pool;           /* whose puts the free_fns batch (chm__smr_domain_set_pool) */
    chm_smr_flush_fn *flush;  /* the owner's partial bulks, retired by the barriers */
    size_t outside;           /* the most they hold (chm__smr_domain_set_flush) */
    struct cds_list_head reg; /* in smr_domains, under smr_registry_lock */
    struct smr_stripe stripes[];
};

/* The stripe the calling thread retires into. */
static inline struct smr_stripe *smr_my_stripe(chm_smr_domain *d)
{
    return &d->stripes[chm__thread_ticket() & d->stripe_mask];
}

/* What @d has retired and not yet freed: held, then every stripe's count. Exact when nothing
 * runs on @d, which is when tests read it. While other threads work on @d it never exceeds what
 * was pending at the instant of its last load, so a peak taken from it (smr_note_peak) never
 * exceeds the truth:
 *   - a taker moves objects from a stripe to held: held is loaded first (acquire: it pairs
 *     with smr_take's release increment, which follows its exchange of the stripe's top and its
 *     decrement of the overflow), so a load that sees them in held sees them gone from the
 *     stripe -- they may be counted in neither, never in both;
 *   - a batch that is freed between the load of held and the loads of the stripes would be
 *     counted in held while the stripes show what was retired after it was freed (a thread
 *     descheduled between the loads, on a loaded machine: a peak of 8965 against THE BOUND's
 *     8200 for two writers, once): batches_done, which smr_batch_done raises after lowering
 *     held, is loaded before and after, and the sum is taken again if a batch ended between.
 *     Those loads, the decrement and the increment are seq_cst: if the second load does not
 *     see the increment, the decrement follows it in that order, and then the batch was
 *     still pending when the stripes were read. */
static size_t smr_pending_now(const chm_smr_domain *d)
{
    chm_smr_domain *w = (chm_smr_domain *)d;
    size_t n;
    for (int tries = 0;; tries++) {
        size_t done = atomic_load_explicit(&w->batches_done, memory_order_seq_cst);
        n = atomic_load_explicit(&w->held, memory_order_seq_cst);
        for (unsigned i = 0; i <= w->stripe_mask; i++)
            n += smr_stripe_queued(&w->stripes[i]);
        if (atomic_load_explicit(&w->batches_done, memory_order_seq_cst) == done || tries == 64)
            break; /* 64 batches ending during one sum: give the last sum */
    }
    return n;
}

/* Whether everything retired into @d so far is freed: every stack empty, no batch in flight,
 * nothing held. seq_cst loads in this order: a taker raises inflight (seq_cst) before its
 * exchange empties a stack and lowers it only after its frees and its decrement of held, so
 * a load that sees the stack emptied and then inflight at 0 sees held after that decrement
 * (and the free_fns' effects, which the decrements release: smr_batch_done). */
static bool smr_settled(chm_smr_domain *d)
{
    for (unsigned i = 0; i <= d->stripe_mask; i++)
        if (atomic_load_explicit(&d->stripes[i].top, memory_order_seq_cst) != 0)
            return false;
    return atomic_load_explicit(&d->inflight, memory_order_seq_cst) == 0 &&
           atomic_load_explicit(&d->held, memory_order_seq_cst) == 0;
}

/* The queue links: the next object, and the object's kind in the low bits (chm_smr_node). */
#define SMR_KIND_MASK ((uintptr_t)(CHM_SMR_KINDS - 1))
_Static_assert(CHM_SMR_KINDS <= 8, "kinds fit the low bits of an 8-byte aligned pointer");

static inline chm_smr_node *smr_next(const chm_smr_node *n)
{
    return (chm_smr_node *)(n->link & ~SMR_KIND_MASK);
}

static inline void smr_set_next(chm_smr_node *n, chm_smr_node *next)
{
    n->link = (uintptr_t)next | (n->link & SMR_KIND_MASK);
}

/* @d's bulk kinds (chm_smr_domain.bulk_kinds), for smr_weight. Relaxed: every object a taker
 * holds was retired after its kind was registered, and the push released that. */
static inline unsigned smr_bulk_kinds(chm_smr_domain *d)
{
    return atomic_load_explicit(&d->bulk_kinds, memory_order_relaxed);
}

/* What @n counts for in its domain's counts, @bulk being the domain's smr_bulk_kinds: its
 * weight if its kind is a bulk kind, else 1. */
static inline size_t smr_weight(unsigned bulk, const chm_smr_node *n)
{
    unsigned kind = (unsigned)(n->link & SMR_KIND_MASK);
    if (chm_likely(((bulk >> kind) & 1) == 0))
        return 1;
    return ((const chm_smr_bulk *)n)->weight;
}

/* The last object of the chain @n (not NULL), and in *@weight (unless NULL) what the chain
 * counts for in @d (its objects, each bulk its weight): walks it. */
static chm_smr_node *smr_chain_tail(chm_smr_domain *d, chm_smr_node *n, size_t *weight)
{
    unsigned bulk = smr_bulk_kinds(d);
    size_t k = weight != NULL ? smr_weight(bulk, n) : 0;
    for (chm_smr_node *next; (next = smr_next(n)) != NULL; n = next)
        if (weight != NULL)
            k += smr_weight(bulk, next);
    if (weight != NULL)
        *weight = k;
    return n;
}

/* The kind of @fn in @d: its index in d->kinds, registering it on first use. Relaxed: a
 * reclaimer reads kinds[] after acquiring the queue, whose pushes released it (the registering
 * retire's among them). */
static unsigned smr_kind(chm_smr_domain *d, chm_smr_free_fn *fn)
{
    for (unsigned i = 0; i < CHM_SMR_KINDS; i++) {
        chm_smr_free_fn *k = atomic_load_explicit(&d->kinds[i], memory_order_relaxed);
        if (k == fn)
            return i;
        if (k == NULL && (atomic_compare_exchange_strong_explicit(&d->kinds[i], &k, fn,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed) ||
                          k == fn))
            return i;
    }
    fprintf(stderr, "chm: smr: more than %d kinds of retired objects in one domain\n",
            CHM_SMR_KINDS);
    abort();
}

/* ---- per-thread state ------------------------------------------------------------------- */

/* A domain whose free_fns this thread is running (a stack: a free_fn may chm_free another map). */
struct smr_freeing {
    const chm_smr_domain *d;
    struct smr_freeing *prev;
};

struct smr_thread {
    struct chm__smr_thread_hot *hot;           /* this thread's chm__smr_hot */
    struct urcu_reader *reader;                /* this thread's liburcu reader */
    chm_smr_domain *flag[CHM_SMR_MAX_FLAGGED]; /* hot->nflag of them, each holding a reference */
    bool flag_soon[CHM_SMR_MAX_FLAGGED];       /* take the queue even below a batch */
    struct smr_freeing *freeing;
    unsigned gate_depth;
    int cancel_state;      /* saved by the outermost smr_gate_enter */
    int cancel_state_fork; /* saved by smr_atfork_prepare */
    bool reclaiming;       /* inside chm__smr_quiesce's loop */
    bool keyed;            /* smr_key set: the exit destructor will run */
    bool registered;       /* registered with liburcu by chm__smr_register */
    bool listed;           /* in smr_threads (node) */
    struct cds_list_head node;
};

struct urcu_reader chm__smr_no_reader; /* registered == 0: see smr.h's read-side fast path */
_Thread_local struct chm__smr_thread_hot chm__smr_hot
    __attribute__((tls_model("initial-exec"))) = {.fast = &chm__smr_no_reader};
static _Thread_local struct smr_thread smr_me;

static struct smr_thread *smr_self(void)
{
    struct smr_thread *t = &smr_me;
    if (chm_unlikely(t->hot == NULL)) {
        t->hot = &chm__smr_hot;
        t->reader = &URCU_TLS(urcu_memb_reader);
    }
    return t;
}

/* The largest pending count seen in any domain since the last reset (for tests). Peaks are
 * kept only once a test has asked for one (smr_track): a retire then sums its domain's stripes,
 * which a writer does not otherwise read. */
static atomic_size_t smr_peak;
static atomic_bool smr_track;

static void smr_fatal(const char *msg)
{
    fprintf(stderr, "chm: %s\n", msg);
    abort();
}

/* ---- the gate (fork, cancellation) ------------------------------------------------------- */

/* Every pthread lock, unlock and condition call of this file is checked (CHM__LOCK_CALL,
 * src/reentry.h), as the backends' are: these mutexes keep fork() out of the registries and of
 * liburcu, and the waits of chm_free and fork's prepare handler depend on their wake-ups, so a
 * call that failed unnoticed (EINVAL: a broken object; EDEADLK or EPERM: a relock or an unlock
 * of what the thread does not hold) would go on unprotected or sleep forever. chm prints the
 * call and its site and aborts. pthread_cond_wait has no other result to handle: a signal or a
 * spurious wake-up returns 0 (every wait here is a loop that re-checks its condition), and it
 * never returns EINTR; the robust-mutex codes cannot occur with these default mutexes. */

static pthread_mutex_t smr_gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smr_gate_cond = PTHREAD_COND_INITIALIZER;
static unsigned smr_gate_active; /* threads inside the gate */
static bool smr_gate_forking;    /* a fork's prepare handler holds the gate shut */

static void smr_gate_enter(struct smr_thread *t)
{
    if (t->gate_depth++ != 0)
        return;
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &t->cancel_state);
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_gate_lock));
    while (smr_gate_forking)
        CHM__LOCK_CALL(pthread_cond_wait(&smr_gate_cond, &smr_gate_lock));
    smr_gate_active++;
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_gate_lock));
}

static void smr_gate_leave(struct smr_thread *t)
{
    if (--t->gate_depth != 0)
        return;
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_gate_lock));
    smr_gate_active--;
    if (smr_gate_forking)
        CHM__LOCK_CALL(pthread_cond_broadcast(&smr_gate_cond));
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_gate_lock));
    (void)pthread_setcancelstate(t->cancel_state, NULL);
}

/* ---- registries (inside the gate) --------------------------------------------------------- */

static pthread_mutex_t smr_registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* liburcu's cds_list_for_each_entry forms the entry of the list head itself to end its loop: a
 * misaligned "member access" for UBSan with our 64-byte aligned domains. The loops here convert
 * only real nodes. */
#define smr_entry(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))
static CDS_LIST_HEAD(smr_domains); /* live domains, for chm__smr_barrier and fork */
static CDS_LIST_HEAD(smr_threads); /* threads chm__smr_register registered */

static pthread_once_t smr_once = PTHREAD_ONCE_INIT;
static pthread_key_t smr_key;
static bool smr_key_created;
static volatile bool smr_unloaded; /* the library destructor deleted smr_key */

static void smr_thread_exit(void *arg);
static void smr_unlist(struct smr_thread *t);
static void smr_drop_flags(struct smr_thread *t);
/* Take the threads on smr_threads other than @self out of liburcu's registry (without its
 * mutex: the callers make sure no thread of ours is inside liburcu) and out of ours, dropping
 * their flags. @only_quiescent: leave a thread inside a read section alone. */
static void smr_unlink_others(struct smr_thread *self, bool only_quiescent)
{
    for (struct cds_list_head *p = smr_threads.next, *next; p != &smr_threads; p = next) {
        next = p->next;
        struct smr_thread *o = smr_entry(p, struct smr_thread, node);
        if (o == self)
            continue;
        if (only_quiescent && (o->reader->ctr & URCU_GP_CTR_NEST_MASK) != 0)
            continue;
        if (o->registered && o->reader->registered) {
            cds_list_del(&o->reader->node);
            o->reader->registered = 0;
        }
        o->registered = false;
        if (!only_quiescent)
            smr_drop_flags(o); /* a live thread's flags are its own to drop */
        smr_unlist(o);
    }
}

static void smr_atfork_prepare(void);
static void smr_atfork_parent(void);
static void smr_atfork_child(void);

static void smr_init(void)
{
    if (pthread_key_create(&smr_key, smr_thread_exit) != 0)
        smr_fatal("smr: pthread_key_create failed");
    smr_key_created = true;
    if (pthread_atfork(smr_atfork_prepare, smr_atfork_parent, smr_atfork_child) != 0)
        smr_fatal("smr: pthread_atfork failed");
}

/* dlclose of libchm.so (or exit): no thread-exit destructor may point into unloaded code, so
 * the key goes. The threads we registered that are still alive will then exit without leaving
 * liburcu's registry; if liburcu stays loaded (the application uses it too), their TLS nodes
 * would stay linked there after they exit, and a thread created later on the same stack would
 * overwrite a linked node. So they are unlinked now, as after fork: only if no thread is inside
 * the gate (then none of ours is in liburcu's registry or grace-period code; the gate's lock,
 * held meanwhile, keeps any from entering) and only threads outside a read section (after
 * dlclose none can be inside one of ours; at exit a thread still running chm code re-registers
 * on its next section, since its registered flag is cleared). Defined after the fork handlers
 * below, which it shares code with. */

__attribute__((destructor)) static void smr_unload(void)
{
    if (!smr_key_created)
        return;
    smr_unloaded = true;
    (void)pthread_key_delete(smr_key);
    struct smr_thread *t = smr_self();
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_gate_lock));
    if (smr_gate_active == 0 && !smr_gate_forking) {
        smr_unlink_others(t, true);
        if (t->registered && t->reader->registered)
            urcu_memb_unregister_thread();
        t->registered = false;
    }
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_gate_lock));
}

/* Arm this thread's exit destructor. No lock, no allocation (a low key index). */
static void smr_key_arm(struct smr_thread *t)
{
    if (t->keyed || smr_unloaded)
        return;
    (void)pthread_once(&smr_once, smr_init);
    if (pthread_setspecific(smr_key, (void *)1) != 0) {
        if (smr_unloaded)
            return;
        smr_fatal("smr: pthread_setspecific failed");
    }
    t->keyed = true;
}

/* Slow path of the lazy registration. liburcu's registry mutex is held briefly (liburcu drops
 * it while a grace period waits for readers), so this cannot deadlock against one. */
void chm__smr_register(void)
{
    struct smr_thread *t = smr_self();
    /* The key must be set before registering: if it failed after, the thread would exit
     * registered and leave a dangling TLS node in the registry. */
    t->keyed = false; /* a destructor round may have consumed it: set it again */
    smr_key_arm(t);
    smr_gate_enter(t);
    urcu_memb_register_thread();
    t->registered = true;
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
    if (!t->listed) {
        t->listed = true;
        cds_list_add(&t->node, &smr_threads);
    }
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
    smr_gate_leave(t);
}

static void smr_unlist(struct smr_thread *t)
{
    if (!t->listed)
        return;
    cds_list_del(&t->node);
    t->listed = false;
}

static void smr_unref(chm_smr_domain *d)
{
    /* acq_rel: every holder's accesses happen before the free by the last one. */
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1)
        chm__free(d);
}

static void smr_drop_flags(struct smr_thread *t)
{
    while (t->hot != NULL && t->hot->nflag != 0)
        smr_unref(t->flag[--t->hot->nflag]);
}

/* Thread exit: act on flags left (a thread that exits between calls, outside a section), drop
 * the rest, and leave liburcu's registry, or the next grace period would read this thread's
 * freed TLS. A thread the application registered itself is left registered. */
static void smr_thread_exit(void *arg)
{
    (void)arg;
    struct smr_thread *t = smr_self();
    t->keyed = false;
    if (t->hot->depth == 0)
        chm__smr_quiesce();
    smr_drop_flags(t);
    if (t->registered) {
        smr_gate_enter(t);
        CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
        smr_unlist(t);
        CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
        if (URCU_TLS(urcu_memb_reader).registered)
            urcu_memb_unregister_thread();
        t->registered = false;
        smr_gate_leave(t);
    }
}

/* ---- fork --------------------------------------------------------------------------------- */

static void smr_atfork_prepare(void)
{
    struct smr_thread *t = smr_self();
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &t->cancel_state_fork);
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_gate_lock));
    while (smr_gate_forking) /* another thread's fork */
        CHM__LOCK_CALL(pthread_cond_wait(&smr_gate_cond, &smr_gate_lock));
    smr_gate_forking = true;
    /* Wait for every other thread to leave the gate (this one may be inside it: fork() from a
     * free_fn). The lock stays held across fork(). */
    while (smr_gate_active > (t->gate_depth != 0 ? 1u : 0u))
        CHM__LOCK_CALL(pthread_cond_wait(&smr_gate_cond, &smr_gate_lock));
}

static void smr_atfork_parent(void)
{
    struct smr_thread *t = smr_self();
    smr_gate_forking = false;
    CHM__LOCK_CALL(pthread_cond_broadcast(&smr_gate_cond));
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_gate_lock));
    (void)pthread_setcancelstate(t->cancel_state_fork, NULL);
}

static void smr_atfork_child(void)
{
    struct smr_thread *t = smr_self();
    /* Fresh synchronisation objects: the parent's may have waiters that do not exist here. */
    CHM__LOCK_CALL(pthread_mutex_init(&smr_gate_lock, NULL));
    CHM__LOCK_CALL(pthread_cond_init(&smr_gate_cond, NULL));
    smr_gate_forking = false;
    smr_gate_active = t->gate_depth != 0 ? 1u : 0u;
    /* Nobody held smr_registry_lock (it is only taken inside the gate). Threads other than this
     * one are gone: out of liburcu's registry (nobody holds its mutexes either: every call into
     * them is inside the gate), out of ours, their flags dropped. */
    smr_unlink_others(t, false);
    /* Recount the overflow of each full stripe: a thread caught between a saturated retire's
     * push and its increment of the overflow left an object without its count (the count
     * field itself changes with the push, in one CAS). Batches in flight (held) can only be
     * this thread's own. */
    struct cds_list_head *p;
    cds_list_for_each(p, &smr_domains)
    {
        chm_smr_domain *d = smr_entry(p, chm_smr_domain, reg);
        for (unsigned i = 0; i <= d->stripe_mask; i++) {
            struct smr_stripe *s = &d->stripes[i];
            uintptr_t top = atomic_load_explicit(&s->top, memory_order_relaxed);
            size_t k = SMR_COUNT_MAX; /* a full field heads a chain at least that long */
            if (smr_top_count(top) == SMR_COUNT_MAX)
                (void)smr_chain_tail(d, smr_top_node(top), &k);
            atomic_store_explicit(&s->overflow, (long)(k - SMR_COUNT_MAX), memory_order_relaxed);
        }
    }
    (void)pthread_setcancelstate(t->cancel_state_fork, NULL);
}

/* ---- read side ---------------------------------------------------------------------------- */

/* The out-of-line forms. Without TSan they do what the inline fast paths in smr.h do; with
 * TSan they are the only forms, and liburcu's read-side code runs uninstrumented in the
 * library (see smr.h). The parentheses keep smr.h's macros from expanding. */
void(chm__smr_read_lock)(void)
{
#ifdef CHM__TSAN
    (void)chm__smr_self(); /* registers if needed */
    urcu_memb_read_lock();
#else
    chm__smr_read_lock_inline();
#endif
}

void chm__smr_read_lock_slow(void)
{
    struct urcu_reader *r = chm__smr_self(); /* registers if needed */
    if (urcu_memb_has_sys_membarrier)
        chm__smr_hot.fast = r; /* from the next section on, the inline fast path */
    urcu_memb_read_lock();
}

void chm__smr_read_unlock_slow(void)
{
    urcu_memb_read_unlock();
}

int chm__smr_wake_gp_return(int rc)
{
    urcu_common_wake_up_gp(&urcu_memb_gp);
    return rc;
}

void(chm__smr_read_unlock)(void)
{
    /* Pairs with the smr_tsan_acquire of the token in smr_gp: everything this section read
     * happens before a free that follows a grace period. */
    smr_tsan_release(&smr_tsan_gp_token);
#ifdef CHM__TSAN
    urcu_memb_read_unlock();
#else
    chm__smr_read_unlock_inline();
#endif
}

/* ---- reclamation -------------------------------------------------------------------------- */

/* Drain and barrier waiters sleep here; every batch that ends wakes them if there are any.
 * One global pair: waits are rare (chm_free, tests). */
static pthread_mutex_t smr_wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smr_wait_cond = PTHREAD_COND_INITIALIZER;
static atomic_uint smr_waiters;

/* One grace period, outside any read section (callers check), inside the gate. */
static void smr_gp(void)
{
    urcu_memb_synchronize_rcu();
    /* Pairs with the smr_tsan_release in chm__smr_read_unlock (see smr_tsan_gp_token). */
    smr_tsan_acquire(&smr_tsan_gp_token);
}

static void smr_raise(atomic_size_t *peak, size_t pending)
{
    size_t p = atomic_load_explicit(peak, memory_order_relaxed);
    while (pending > p && !atomic_compare_exchange_weak_explicit(
                              peak, &p, pending, memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* @d's pending count reached @pending: raise its peak and the global one. */
static void smr_note_peak(chm_smr_domain *d, size_t pending)
{
    smr_raise(&d->peak, pending);
    smr_raise(&smr_peak, pending);
}

/* A batch of @d (@k nodes) is over: its free_fns ran. Drop the counts, wake the waiters. The
 * caller holds a reference on @d. */
static void smr_batch_done(chm_smr_domain *d, size_t k)
{
    /* seq_cst: a release for the free_fns' effects (a drain that sees pending 0 acquires them),
     * and with the load of smr_waiters a Dekker pair against smr_wait's increment of waiters /
     * load of the condition: either we see the waiter or it sees the new counts. */
    if (k != 0) {
        atomic_fetch_sub_explicit(&d->held, k, memory_order_seq_cst);
        atomic_fetch_add_explicit(&d->batches_done, 1, memory_order_seq_cst); /* after: see
                                                                                smr_pending_now */
    }
    atomic_fetch_sub_explicit(&d->inflight, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&smr_waiters, memory_order_seq_cst) != 0) {
        CHM__LOCK_CALL(pthread_mutex_lock(&smr_wait_lock));
        CHM__LOCK_CALL(pthread_cond_broadcast(&smr_wait_cond));
        CHM__LOCK_CALL(pthread_mutex_unlock(&smr_wait_lock));
    }
}

/* Run the free_fns of @chain (linked through link, in the order to free), as @d's callbacks.
 * Returns what the chain counted for (smr_weight: its objects, a bulk for its weight). */
static size_t smr_free_chain(struct smr_thread *t, chm_smr_domain *d, chm_smr_node *chain)
{
    if (chain == NULL)
        return 0;
    struct smr_freeing fr = {d, t->freeing};
    t->freeing = &fr;
    chm_pool *outer = NULL;
    if (d->pool != NULL)
        outer = chm__pool_defer_begin(d->pool); /* the owner's chm_free waits for this batch */
    size_t k = 0;
    unsigned bulk = smr_bulk_kinds(d); /* the chain's kinds were all registered before */
    for (chm_smr_node *n = chain; n != NULL; k++) {
        chm_smr_node *next = smr_next(n); /* n is gone after free_fn */
        /* The chain is a dependent walk: start the next object's line on its way while the
         * free_fn runs (a batch is thousands of objects, no longer all in L1 when taken). */
        __builtin_prefetch(next, 1);
        /* Relaxed: the kind was registered before the retire that released n (smr_kind). */
        chm_smr_free_fn *fn =
            atomic_load_explicit(&d->kinds[n->link & SMR_KIND_MASK], memory_order_relaxed);
        k += smr_weight(bulk, n) - 1; /* the loop counts 1 */
        fn(n, d->owner);
        n = next;
    }
    if (d->pool != NULL)
        chm__pool_defer_end(outer);
    t->freeing = fr.prev;
    return k;
}

/* Put the chain @head .. @tail (NULL: not known yet, walk to it), which had its grace period,
 * on @d's parked list. seq_cst: the release for whoever takes the list (the frees follow
 * everything that preceded the parking), and the first half of the Dekker pair with
 * chm__smr_iter_close (see smr_reclaim). */
static void smr_park(chm_smr_domain *d, chm_smr_node *head, chm_smr_node *tail)
{
    if (tail == NULL)
        tail = smr_chain_tail(d, head, NULL);
    chm_smr_node *top = atomic_load_explicit(&d->parked, memory_order_relaxed);
    do
        smr_set_next(tail, top);
    while (!atomic_compare_exchange_weak_explicit(&d->parked, &top, head, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

/* Take stripe @s's queue (one exchange) and add it, as it stands (newest first), to the chain
 * @chain .. @last, which is ours alone; *@last NULL with *@chain not NULL means "not walked to
 * yet" (smr_park walks then). The first queue taken starts the chain; each later one goes in
 * front of it, so that only that queue is walked (to its tail), never the chain so far.
 * Returns how many objects it held.
 *
 * No walk when the count field is not full: the objects are freed in the order they sit on
 * the stack, newest first. Until 2026-12-08 the taker reversed the chain to free them oldest
 * first, for no reason of correctness (every object of a batch had the same grace period),
 * and that walk -- a dependent load per object, L2 or worse by the time of the batch -- was
 * 64% of smr_reclaim's samples in a binlock profile at 50% reads. */
static size_t smr_take(chm_smr_domain *d, struct smr_stripe *s, chm_smr_node **chain,
                       chm_smr_node **last)
{
    /* Acquire (seq_cst): pairs with the release CAS of each push in chm__smr_retire -- later
     * pushes are RMWs and continue each earlier push's release sequence -- so every node's
     * link and free_fn, and whatever the retiring thread did before (the unlink) happen before
     * the frees. This is the retire -> free edge TSan sees. */
    uintptr_t top = atomic_exchange_explicit(&s->top, 0, memory_order_seq_cst);
    chm_smr_node *n = smr_top_node(top);
    if (n == NULL)
        return 0;
    size_t k = smr_top_count(top);
    chm_smr_node *tail = NULL;
    if (chm_unlikely(k == SMR_COUNT_MAX)) {
        /* Saturated: the pushes beyond the field counted themselves in the overflow; take
         * back as many as this chain holds beyond it. */
        tail = smr_chain_tail(d, n, &k);
        atomic_fetch_sub_explicit(&s->overflow, (long)(k - SMR_COUNT_MAX), memory_order_relaxed);
    }
    if (*chain == NULL) {
        *last = tail; /* NULL (not known) unless the count was full */
    } else {
        if (tail == NULL)
            tail = smr_chain_tail(d, n, NULL);
        smr_set_next(tail, *chain); /* *last stays the whole chain's tail */
    }
    *chain = n;
    /* The stripe emptied (and its overflow fell) before held rises, and the rise is a release:
     * smr_pending_now, which loads held (acquire) before the stripes, counts these objects at
     * most once. */
    atomic_fetch_add_explicit(&d->held, k, memory_order_release);
    return k;
}

/* What smr_reclaim takes before its grace period. */
enum smr_take_what {
    SMR_TAKE_NONE, /* nothing: free what is parked, if the last iterator closed */
    SMR_TAKE_MINE, /* the calling thread's stripe: a batch it crossed */
    SMR_TAKE_ALL,  /* every stripe (chm_free's drain, the barriers) */
};

/* Reclaim @d: take what @what says and wait for a grace period; then free the parked batches
 * and that one, unless an iterator of the owner is open, which parks the batch instead. @drain
 * (chm_free: no iterator may be open) frees regardless. The caller is outside any read section,
 * holds no backend lock, is inside the gate and holds a reference on @d. */
static void smr_reclaim(struct smr_thread *t, chm_smr_domain *d, enum smr_take_what what,
                        bool drain)
{
    /* seq_cst: inflight rises before the queue is taken, so whoever takes the queue after us
     * and then loads inflight sees our batch until it is freed or parked (chm__smr_barrier). */
    atomic_fetch_add_explicit(&d->inflight, 1, memory_order_seq_cst);
    chm_smr_node *batch = NULL, *last = NULL;
    size_t taken = 0;
    if (what == SMR_TAKE_MINE)
        taken = smr_take(d, smr_my_stripe(d), &batch, &last);
    else if (what == SMR_TAKE_ALL)
        for (unsigned i = 0; i <= d->stripe_mask; i++)
            taken += smr_take(d, &d->stripes[i], &batch, &last);
    if (taken != 0) {
        CHM_YIELD_POINT("smr.reclaim.before_gp"); /* taken, grace period not yet started */
        /* Every node was retired before the exchange, hence unlinked before this grace
         * period began: no read section can still hold one when it ends. */
        smr_gp();
    }
    /* Open iterators. A segmented/binlock iterator keeps node and table pointers between its
     * calls, outside any read section, so the grace period above does not cover it. What does:
     * chm__smr_iter_open increments open_iters (seq_cst) before the iterator's first read
     * section, and the load of open_iters below (seq_cst) follows the grace period. A node of
     * the batch was unlinked before the grace period began. An iterator that could have
     * reached it had a read section running before the grace period began (a section that
     * begins after the unlink cannot reach the node); that section followed the iterator's
     * increment, and the grace period waited for it to end, so the load sees the increment
     * (and then the batch is parked) unless that iterator was closed since (then it holds
     * nothing). An iterator whose first section began after the grace period began cannot
     * reach any node of the batch. The parked batches need no further grace period: no read
     * section holds them, and an iterator that does is counted until chm__smr_iter_close. */
    size_t freed = 0;
    while (batch != NULL || atomic_load_explicit(&d->parked, memory_order_relaxed) != NULL) {
        if (!drain && atomic_load_explicit(&d->open_iters, memory_order_seq_cst) != 0) {
            if (batch == NULL)
                break; /* the parked batches stay, ours too */
            smr_park(d, batch, last);
            batch = NULL;
            /* Dekker pair with chm__smr_iter_close (its seq_cst decrement, then its seq_cst
             * load of parked): either it sees our batch parked and flags @d, or we see its
             * decrement here and free what is parked ourselves. */
            if (atomic_load_explicit(&d->open_iters, memory_order_seq_cst) != 0)
                break;
            continue;
        }
        /* Acquire (seq_cst): pairs with smr_park's release. */
        chm_smr_node *old = atomic_exchange_explicit(&d->parked, NULL, memory_order_seq_cst);
        /* A batch parked because of an iterator that opened after our load above: the load
         * that parked it saw that iterator's increment, and it happens before this load (the
         * exchange acquired the parking), so this load sees the increment too unless the
         * iterator was closed since. Rare: park them again. */
        if (old != NULL && !drain &&
            atomic_load_explicit(&d->open_iters, memory_order_seq_cst) != 0) {
            smr_park(d, old, NULL);
            continue; /* our own batch, if any, goes the same way */
        }
        freed += smr_free_chain(t, d, old); /* parked before ours: older */
        freed += smr_free_chain(t, d, batch);
        batch = NULL;
        break;
    }
    smr_batch_done(d, freed);
}

static bool smr_freeing_domain(const struct smr_thread *t, const chm_smr_domain *d)
{
    for (const struct smr_freeing *f = t->freeing; f != NULL; f = f->prev)
        if (f->d == d)
            return true;
    return false;
}

/* Sleep until @done(@d). Inside the gate (cancellation disabled). */
static void smr_wait(bool (*done)(chm_smr_domain *), chm_smr_domain *d)
{
    /* seq_cst increment, then seq_cst loads of the condition: the Dekker pair with
     * smr_batch_done (no lost wake-up). */
    atomic_fetch_add_explicit(&smr_waiters, 1, memory_order_seq_cst);
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_wait_lock));
    while (!done(d))
        CHM__LOCK_CALL(pthread_cond_wait(&smr_wait_cond, &smr_wait_lock));
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_wait_lock));
    atomic_fetch_sub_explicit(&smr_waiters, 1, memory_order_relaxed);
}

static bool smr_drained_or_queued(chm_smr_domain *d)
{
    /* Something for the drain to take -- a stack (what a batch's free_fns retired into @d) or
     * parked batches -- or done (smr_settled: the free_fns' effects visible). */
    for (unsigned i = 0; i <= d->stripe_mask; i++)
        if (atomic_load_explicit(&d->stripes[i].top, memory_order_seq_cst) != 0)
            return true;
    return atomic_load_explicit(&d->parked, memory_order_seq_cst) != NULL || smr_settled(d);
}

static bool smr_no_batch_in_flight(chm_smr_domain *d)
{
    return atomic_load_explicit(&d->inflight, memory_order_seq_cst) == 0;
}

static void smr_check_may_wait(const struct smr_thread *t, const chm_smr_domain *d,
                               const char *what)
{
    if (_urcu_memb_read_ongoing()) {
        fprintf(stderr, "chm: smr: %s inside a read-side section (would never finish)\n", what);
        abort();
    }
    if (d != NULL && smr_freeing_domain(t, d)) {
        fprintf(stderr,
                "chm: smr: %s from one of the domain's own reclamation callbacks (chm_free "
                "from the map's value_free or keyops.release?) would wait for itself\n",
                what);
        abort();
    }
}

/* Flag @d on this thread, holding a reference (the caller makes sure @d is alive), unless it is
 * already flagged or the array is full (the next retire or close tries again); @soon: take this
 * thread's queue of @d when the call ends even below a batch (chm__smr_retire_soon). No lock,
 * no wait. */
static void smr_flag(chm_smr_domain *d, bool soon)
{
    struct smr_thread *t = smr_self();
    unsigned nf = t->hot->nflag;
    for (unsigned i = 0; i < nf; i++)
        if (t->flag[i] == d) {
            t->flag_soon[i] |= soon;
            return;
        }
    if (nf == CHM_SMR_MAX_FLAGGED)
        return;
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    t->flag[nf] = d;
    t->flag_soon[nf] = soon;
    t->hot->nflag = nf + 1;
    smr_key_arm(t); /* so that a thread exiting before acting on it drops the reference */
}

/* Push @n, of kind @kind and counting @w (1, or a bulk's weight), on the calling thread's
 * stripe of @d, and flag @d if the stripe reaches a batch. The count field adds @w up to
 * SMR_COUNT_MAX; what does not fit goes to the stripe's overflow (smr_take, the fork handler). */
static inline void smr_push(chm_smr_domain *d, chm_smr_node *n, uintptr_t kind, size_t w)
{
    if (chm_unlikely(((uintptr_t)n & (SMR_KIND_MASK | ~SMR_PTR_MASK)) != 0)) {
        fprintf(stderr, "chm: smr: retired object %p is not 8-byte aligned or not below 2^%d\n",
                (void *)n, SMR_COUNT_SHIFT);
        abort();
    }
    struct smr_stripe *s = smr_my_stripe(d);
    /* Relaxed: the old top is only stored into n->link, never dereferenced. */
    uintptr_t top = atomic_load_explicit(&s->top, memory_order_relaxed);
    size_t count;
    do {
        CHM_YIELD_POINT("smr.retire.before_push"); /* racing retirers and a taker */
        n->link = (top & SMR_PTR_MASK) | kind;
        count = smr_top_count(top) + w;
        if (chm_unlikely(count > SMR_COUNT_MAX))
            count = SMR_COUNT_MAX;
        /* Release: the node's fields and the unlink before it, for the taker (smr_take). */
    } while (!atomic_compare_exchange_weak_explicit(
        &s->top, &top, (uintptr_t)n | ((uintptr_t)count << SMR_COUNT_SHIFT), memory_order_release,
        memory_order_relaxed));
    size_t before = smr_top_count(top);
    if (chm_unlikely(before + w > SMR_COUNT_MAX)) /* counted beyond the field */
        atomic_fetch_add_explicit(&s->overflow, (long)(before + w - SMR_COUNT_MAX),
                                  memory_order_relaxed);
    if (chm_unlikely(atomic_load_explicit(&smr_track, memory_order_relaxed)))
        smr_note_peak(d, smr_pending_now(d));
    if (chm_unlikely(count >= CHM_SMR_BATCH))
        smr_flag(d, false);
}

void chm__smr_retire(chm_smr_domain *d, chm_smr_node *n, chm_smr_free_fn *free_fn)
{
    smr_push(d, n, smr_kind(d, free_fn), 1);
}

void chm__smr_retire_soon(chm_smr_domain *d, chm_smr_node *n, chm_smr_free_fn *free_fn)
{
    chm__smr_retire(d, n, free_fn);
    smr_flag(d, true);
}

void chm__smr_retire_bulk(chm_smr_domain *d, chm_smr_bulk *b, chm_smr_free_fn *free_fn, bool soon)
{
    unsigned kind = smr_kind(d, free_fn);
    /* Relaxed, as the kind's registration: the reclaimer reads the mask after acquiring the
     * queue this push releases. */
    if (((smr_bulk_kinds(d) >> kind) & 1) == 0)
        atomic_fetch_or_explicit(&d->bulk_kinds, 1u << kind, memory_order_relaxed);
    smr_push(d, &b->smr, kind, b->weight);
    if (soon)
        smr_flag(d, true);
}

void chm__smr_iter_open(chm_smr_domain *d)
{
    /* seq_cst, before the iterator's first read section: see smr_reclaim. */
    atomic_fetch_add_explicit(&d->open_iters, 1, memory_order_seq_cst);
}

void chm__smr_iter_close(chm_smr_domain *d)
{
    /* seq_cst, after the iterator's last access: see smr_reclaim. The decrement is a release
     * for whoever then sees 0 and frees the parked batches (TSan's iterator -> free edge). */
    if (atomic_fetch_sub_explicit(&d->open_iters, 1, memory_order_seq_cst) != 1)
        return;
    /* The last open iterator: what was parked for it is freed when this thread's outermost
     * call returns. seq_cst load: the Dekker pair with smr_reclaim's parking. */
    if (atomic_load_explicit(&d->parked, memory_order_seq_cst) != NULL)
        smr_flag(d, false);
}

void chm__smr_quiesce(void)
{
    struct smr_thread *t = smr_self();
    struct chm__smr_thread_hot *h = t->hot;
    if (h->depth != 0 || t->reclaiming || h->nflag == 0 || _urcu_memb_read_ongoing())
        return;
    t->reclaiming = true; /* the free_fns' own chm calls flag, this loop acts */
    smr_gate_enter(t);
    while (h->nflag != 0 && !_urcu_memb_read_ongoing()) { /* a free_fn may leave a section open */
        chm_smr_domain *d = t->flag[--h->nflag];
        bool soon = t->flag_soon[h->nflag];
        /* Skip a domain whose queue another thread took meanwhile (unless batches are parked:
         * the last iterator closed), or that chm_free drains. */
        if (!atomic_load_explicit(&d->dead, memory_order_relaxed)) {
            size_t q = smr_stripe_queued(smr_my_stripe(d));
            bool take = q >= CHM_SMR_BATCH || (soon && q != 0);
            if (take || atomic_load_explicit(&d->parked, memory_order_relaxed) != NULL)
                smr_reclaim(t, d, take ? SMR_TAKE_MINE : SMR_TAKE_NONE, false);
        }
        smr_unref(d);
    }
    smr_gate_leave(t);
    t->reclaiming = false;
}

void chm__smr_drain(chm_smr_domain *d)
{
    struct smr_thread *t = smr_self();
    if (smr_settled(d))
        return;
    smr_check_may_wait(t, d, "chm__smr_drain");
    smr_gate_enter(t);
    for (;;) {
        /* What is queued, including what free_fns queued meanwhile, and what is parked. */
        smr_reclaim(t, d, SMR_TAKE_ALL, true);
        if (smr_settled(d))
            break;
        /* Batches another thread took before: wait for them (or for their free_fns' retires
         * into @d, which we then take ourselves). */
        smr_wait(smr_drained_or_queued, d);
    }
    smr_gate_leave(t);
}

chm_smr_domain *chm__smr_domain_new(void *owner, unsigned stripes)
{
    (void)pthread_once(&smr_once, smr_init); /* here (chm_new), not in a retire under a lock */
    unsigned n = chm__stripe_count(stripes, SMR_MAX_STRIPES);
    chm_smr_domain *d = chm__aligned_alloc(CHM_CACHELINE, sizeof *d + n * sizeof d->stripes[0]);
    if (d == NULL)
        return NULL;
    memset(d, 0, sizeof *d);
    d->stripe_mask = n - 1;
    for (unsigned i = 0; i < n; i++) {
        atomic_init(&d->stripes[i].top, 0);
        atomic_init(&d->stripes[i].overflow, 0);
    }
    atomic_init(&d->held, 0);
    atomic_init(&d->batches_done, 0);
    atomic_init(&d->refs, 1);
    atomic_init(&d->peak, 0);
    atomic_init(&d->inflight, 0);
    atomic_init(&d->open_iters, 0);
    atomic_init(&d->parked, NULL);
    for (unsigned i = 0; i < CHM_SMR_KINDS; i++)
        atomic_init(&d->kinds[i], NULL);
    atomic_init(&d->bulk_kinds, 0);
    atomic_init(&d->dead, false);
    d->owner = owner;
    struct smr_thread *t = smr_self();
    smr_gate_enter(t);
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
    cds_list_add(&d->reg, &smr_domains);
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
    smr_gate_leave(t);
    return d;
}

void chm__smr_domain_set_pool(chm_smr_domain *d, chm_pool *pool)
{
    d->pool = pool;
}

void chm__smr_domain_set_flush(chm_smr_domain *d, chm_smr_flush_fn *flush, size_t outside)
{
    d->flush = flush;
    d->outside = outside;
}

size_t chm__smr_domain_outside(const chm_smr_domain *d)
{
    return d->outside;
}

void chm__smr_domain_free(chm_smr_domain *d)
{
    if (d == NULL)
        return;
    struct smr_thread *t = smr_self();
    /* Flags other threads hold now see it and skip it (they only drop their reference). */
    atomic_store_explicit(&d->dead, true, memory_order_relaxed);
    chm__smr_drain(d);
    /* Every value record of the owner is back in its pool (the drain ran their free_fns, and
     * no operation on the owner runs: chm_free's contract). Domains of the tests own no map. */
    chm *m = d->owner;
    if (m != NULL) {
        chm__pool_free(atomic_load_explicit(&m->value_recs, memory_order_relaxed));
        atomic_store_explicit(&m->value_recs, NULL, memory_order_relaxed);
    }
    smr_gate_enter(t);
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
    cds_list_del(&d->reg);
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
    smr_gate_leave(t);
    smr_unref(d);
}

void *chm__smr_domain_owner(const chm_smr_domain *d)
{
    return d->owner;
}

size_t chm__smr_pending(const chm_smr_domain *d)
{
    return smr_pending_now(d);
}

size_t chm__smr_domain_peak(chm_smr_domain *d, bool reset)
{
    atomic_store_explicit(&smr_track, true, memory_order_relaxed); /* from now on (smr_peak) */
    if (reset)
        return atomic_exchange_explicit(&d->peak, 0, memory_order_relaxed);
    return atomic_load_explicit(&d->peak, memory_order_relaxed);
}

chm_smr_domain *chm__smr_domain_of(const void *owner)
{
    struct smr_thread *t = smr_self();
    chm_smr_domain *found = NULL;
    smr_gate_enter(t); /* the registry lock is only taken inside the gate (fork) */
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
    struct cds_list_head *p;
    cds_list_for_each(p, &smr_domains)
    {
        chm_smr_domain *d = smr_entry(p, chm_smr_domain, reg);
        if (d->owner == owner)
            found = d;
    }
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
    smr_gate_leave(t);
    return found;
}

size_t chm__smr_pending_peak(bool reset)
{
    atomic_store_explicit(&smr_track, true, memory_order_relaxed); /* from now on (smr_peak) */
    if (reset)
        return atomic_exchange_explicit(&smr_peak, 0, memory_order_relaxed);
    return atomic_load_explicit(&smr_peak, memory_order_relaxed);
}

/* Everything retired into @d before the call freed or parked (chm__smr_barrier, one domain).
 * Inside the gate, holding a reference on @d. */
static void smr_barrier_one(struct smr_thread *t, chm_smr_domain *d)
{
    /* The owner's partial bulks first (chm__smr_domain_set_flush), so that they are in the
     * queues taken below. The flush takes the owner's locks: the caller holds none of them
     * (smr_check_may_wait: no chm call in progress on this thread). */
    if (d->flush != NULL && !atomic_load_explicit(&d->dead, memory_order_relaxed))
        d->flush(d->owner);
    /* What is queued now is ours; what another thread took before our exchange raised inflight
     * before it took it, so the load after our exchange sees it until it is over. Nodes
     * retired before the call are in one or the other. */
    if (!atomic_load_explicit(&d->dead, memory_order_relaxed))
        smr_reclaim(t, d, SMR_TAKE_ALL, false);
    if (!smr_no_batch_in_flight(d))
        smr_wait(smr_no_batch_in_flight, d);
}

bool chm__smr_may_wait(void)
{
    struct smr_thread *t = smr_self();
    return t->hot->depth == 0 && !t->reclaiming && t->freeing == NULL &&
           !_urcu_memb_read_ongoing();
}

void chm__smr_domain_barrier(chm_smr_domain *d)
{
    /* Acquire: a pending 0 heads the release sequence of the batches' decrements (as in
     * chm__smr_drain), so every free_fn of what was retired before the call is visible. A
     * domain with a flush hook may hold retired objects outside its queues: no shortcut. */
    if (d->flush == NULL && smr_settled(d))
        return;
    struct smr_thread *t = smr_self();
    smr_check_may_wait(t, d, "chm__smr_domain_barrier");
    smr_gate_enter(t);
    smr_barrier_one(t, d); /* the caller's map holds its reference on @d */
    smr_gate_leave(t);
}

void chm__smr_barrier(void)
{
    struct smr_thread *t = smr_self();
    smr_check_may_wait(t, NULL, "chm__smr_barrier");
    smr_gate_enter(t);
    /* A reference on every live domain, so that none is freed while we work on it unlocked
     * (its free_fns may create and free maps). Plain malloc: a test hook, not library memory. */
    size_t n = 0, cap = 16;
    chm_smr_domain **ds = malloc(cap * sizeof *ds);
    if (ds == NULL)
        smr_fatal("smr: chm__smr_barrier: out of memory");
    CHM__LOCK_CALL(pthread_mutex_lock(&smr_registry_lock));
    struct cds_list_head *p;
    cds_list_for_each(p, &smr_domains)
    {
        chm_smr_domain *d = smr_entry(p, chm_smr_domain, reg);
        if (n == cap) {
            chm_smr_domain **more = realloc(ds, 2 * cap * sizeof *ds);
            if (more == NULL)
                smr_fatal("smr: chm__smr_barrier: out of memory");
            ds = more;
            cap *= 2;
        }
        atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
        ds[n++] = d;
    }
    CHM__LOCK_CALL(pthread_mutex_unlock(&smr_registry_lock));
    for (size_t i = 0; i < n; i++)
        smr_barrier_one(t, ds[i]);
    for (size_t i = 0; i < n; i++)
        smr_unref(ds[i]);
    free(ds);
    smr_gate_leave(t);
}

void chm__smr_synchronize(void)
{
    struct smr_thread *t = smr_self();
    smr_check_may_wait(t, NULL, "chm__smr_synchronize");
    smr_gate_enter(t);
    smr_gp();
    smr_gate_leave(t);
}

/* ---- values leaving a lock-free map ----------------------------------------------------------- */

struct chm_value_retire {
    chm_smr_node smr;
    uint64_t value;
};

/* The record pool of @m, which handed out the record its caller holds. Relaxed: the holder got
 * the record from chm__value_retire_alloc on this thread, or through a reclamation batch whose
 * acquire follows the retire (and so the allocation, and the pool's publication). */
static chm_pool *value_recs_of(const chm *m)
{
    return atomic_load_explicit(&((chm *)m)->value_recs, memory_order_relaxed);
}

static void value_retire_free(chm_smr_node *n, void *owner)
{
    struct chm_value_retire *r = (struct chm_value_retire *)n;
    chm__value_free(owner, r->value);
    chm__pool_put(value_recs_of(owner), r);
}

bool chm__value_retire_alloc(const chm *m, chm_value_retire **rec)
{
    chm *w = (chm *)m;
    /* Acquire: pairs with the release CAS below, so the pool is seen initialised. */
    chm_pool *p = atomic_load_explicit(&w->value_recs, memory_order_acquire);
    if (chm_unlikely(p == NULL)) {
        /* The map's first reservation (writers may race to it: one pool wins). */
        chm_pool *fresh = chm__pool_new(sizeof(chm_value_retire), m->opt.concurrency);
        if (fresh == NULL)
            return false;
        /* Release: the pool's initialisation before its publication; acquire on failure: the
         * winner's pool, as above. */
        if (atomic_compare_exchange_strong_explicit(&w->value_recs, &p, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            p = fresh;
        else
            chm__pool_free(fresh);
    }
    *rec = chm__pool_alloc(p);
    return *rec != NULL;
}

void chm__value_retire_put(const chm *m, chm_value_retire *rec)
{
    chm__pool_put(value_recs_of(m), rec);
}

size_t chm__value_retire_bytes(const chm *m)
{
    /* Acquire: a pool published by another thread's first reservation, seen initialised. */
    chm_pool *p = atomic_load_explicit(&((chm *)m)->value_recs, memory_order_acquire);
    return p != NULL ? chm__pool_bytes(p) : 0;
}

void chm__value_retire_record(chm_smr_domain *d, chm_value_retire **rec, uint64_t value)
{
    (*rec)->value = value; /* value_retire_free gets the domain's owner, the map */
    chm__smr_retire(d, &(*rec)->smr, value_retire_free);
    *rec = NULL;
}

void chm__smr_free_plain(chm_smr_node *n, void *owner)
{
    (void)owner;
    chm__free(n);
}
