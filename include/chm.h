/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chm.h - five concurrent hash map strategies behind one interface.
 *
 * A map stores 64-bit keys and 64-bit values; every one of the 2^64 keys and 2^64 values is legal
 * (0 and UINT64_MAX included). A map is created for one *backend*, the locking strategy:
 *
 *   chm_unsafe      Go's built-in map: no locking; concurrent misuse is detected (best effort)
 *   chm_rwlock      one reader-writer lock around the same table (Collections.synchronizedMap)
 *   chm_segmented   Java 7 ConcurrentHashMap: lock-striped segments, lock-free reads
 *   chm_binlock     Java 8 ConcurrentHashMap: CAS + per-bin locks, cooperative resize
 *   chm_readmostly  Go sync.Map: lock-free read snapshot + mutex-guarded dirty map
 *
 * chm_backend_list() lists the backends at run time, and chm_backend_caps() says what each
 * guarantees.
 *
 * Conventions
 *   - Every operation returns a status: CHM_OK (0) or a positive outcome code, or a negative error.
 *   - Out-pointers (value, old, current) may be NULL.
 *   - Any operation may return CHM_ENOMEM; the map is then unchanged and fully usable. The
 *     exceptions allocate nothing and say so: chm_clear, chm_visit, chm_stats_get.
 *   - A NULL map, a NULL required function or an unknown backend gives CHM_EINVAL, never a crash.
 *   - Names starting with chm__ / CHM__ are internal.
 *
 * Thread safety
 *   On a thread-safe backend (chm_backend_thread_safe() is true) every operation may run
 *   concurrently with every other on any thread, with no registration call; each single-key
 *   operation is linearizable. chm_new/chm_free are the exceptions: chm_free must not race with
 *   any other call on the same map. chm_unsafe is for one thread at a time, like a Go map.
 *
 * Memory ordering (thread-safe backends; as liburcu's rculfhash.h states its own)
 *   - A write that stores a value (chm_put, chm_put_if_absent and chm_replace on success,
 *     chm_compute with CHM_COMPUTE_SET, chm_compute_if_absent's insert) is a release: what the
 *     writing thread did before the call is visible to any thread whose read returns that
 *     value (chm_get, chm_visit, iteration, the *old / *current / *value / *result out-values
 *     of any call, a compute function's @old), which is an acquire. So a pointer value may be
 *     dereferenced by the reader -- while it cannot reach value_free: see chm_visit.
 *   - A removal (chm_remove, chm_remove_if, chm_compute's DELETE, chm_clear) that returns the
 *     removed value acquires it, like a read; the key's absence is ordered after every store of
 *     the key that it follows.
 *   - An operation that fails or changes nothing (CHM_NOTFOUND, CHM_EXISTS from
 *     chm_put_if_absent or chm_replace, a KEEP) is a read: an acquire of the value it reports,
 *     nothing released. An error (CHM_EINVAL, CHM_ENOMEM, CHM_EDEADLK) orders nothing.
 *   - Operations on different keys are ordered only through values, as above (no total order
 *     across keys beyond linearizability of each key). chm_size and chm_stats_get are relaxed
 *     sums: exact once the writes they count happen before the call (a join, a lock hand-off).
 *   chm_unsafe needs the caller's own synchronisation between threads, like a Go map; chm_rwlock
 *   orders everything through its lock.
 *
 * Callbacks: value_free, keyops.release, compute functions, visit functions
 *   value_free and keyops.release (reclamation, below) run once per value or key copy that left
 *   the map, on a thread of the library's choosing, with no lock of the library held; they may
 *   use other maps freely and must not touch their own map.
 *   A compute function (chm_compute_if_absent, chm_compute) runs exactly once per successful
 *   call, on the caller's thread, while the caller holds the key (its lock, or a reservation
 *   other writers of the key wait for): it should be short; it may read its own map (chm_get,
 *   chm_visit, chm_size, iteration) and do anything to other maps (chm_free included); a write
 *   to its own map returns CHM_EDEADLK -- or, on backends with CHM_CAP_COMPUTE_EXCLUSIVE, runs
 *   and fails the compute with CHM_ECONCURRENT if it changed the map structurally. Details:
 *   chm_compute_if_absent.
 *   A visit function (chm_visit) runs on the caller's thread inside the map's read protection
 *   (a read-side section; rwlock: the read lock), so it must be short and must not block: it may
 *   call chm_get, chm_visit and chm_size on any map; a write to its own map returns
 *   CHM_EDEADLK; nothing else. Details: chm_visit.
 *   None of them may be cancelled (pthread_cancel) while it runs inside a chm call.
 *
 * Reclamation
 *   A value that leaves the map (replaced, removed, or still present at chm_free) is passed to
 *   options.value_free exactly once, after no thread can still read it from the map. A value
 *   "replaced" by itself (chm_put or chm_replace storing the value the key already holds) has
 *   not left the map, and is not passed to value_free. A value that a compute function returned
 *   and the map did not insert (CHM_ECONCURRENT) is passed to value_free too, so that a function
 *   that allocates its value never leaks (see chm_compute_if_absent). Stored key
 *   copies (chm_keys_string, or any keyops with retain) are released by keyops.release under the
 *   same rule. When chm_free returns, every callback for that map has run.
 *
 *   Where the callbacks run. The library has no thread of its own. On segmented, binlock and
 *   readmostly, what leaves a map is queued on that map -- on segmented and binlock in one queue
 *   per writer thread (up to chm_options.concurrency queues, rounded up to a power of two, at
 *   most 64; more threads share them), on readmostly in one queue per map; a thread whose write
 *   brings its queue to a batch (4096 objects), or that resized the map, frees that queue
 *   itself when its outermost chm call returns --
 *   after every lock of the library is released, outside any read-side section, never inside
 *   a callback of another chm call -- waiting first for a grace period (microseconds, unless a
 *   reader is inside a long section). chm_free frees the rest on its caller's thread, and
 *   chm_reclaim what was queued when it began. So a callback runs on a thread that wrote the
 *   same map, at the end of that thread's chm call, or in chm_free or chm_reclaim; on unsafe and
 *   rwlock, in the call that removed the value, or in chm_free.
 *   Callbacks of one map may run on several threads at once: they must be thread-safe. They run
 *   with pthread cancellation disabled.
 *   What a callback may call: anything on other maps (chm_new, operations, chm_free of another
 *   map included) but chm_reclaim, which returns CHM_EDEADLK there. Nothing on its own map: it
 *   may be running inside that map's chm_free, and a chm_free of its own map would wait for the
 *   callback itself (chm aborts with a message).
 *   Nor anything that waits for another thread's chm call to return.
 *   Memory: a map holds at most about 4096 removed-but-unfreed objects per thread that writes
 *   or wrote it (a thread that stops writing leaves its queue's objects until chm_reclaim,
 *   chm_free, or another thread sharing that queue fills it; src/smr.h states the bound; a
 *   chm_clear retires the whole map in one call, and its thread frees that batch when the call
 *   returns; segmented also keeps up to a few hundred removed nodes per segment in the segment's
 *   sack until it fills, which chm_stats_get counts in pending and chm_reclaim frees) -- except,
 *   on a backend with
 *   CHM_CAP_ITER_HOLDS_RECLAIM (segmented, binlock), while an iterator of that map is open:
 *   everything removed from that map meanwhile is kept (neither freed nor passed to the
 *   callbacks), so its memory grows with the writes to it until the last of its iterators is
 *   finished; the chm_iter_fini that finishes it frees the lot when it returns. That stalls
 *   nothing: no thread waits for an iterator, and other maps are not affected.
 *
 * Process life cycle
 *   fork(): the child may use, create and free maps, inherited ones included (the library's
 *   pthread_atfork handlers wait for any reclamation in progress and forget the threads that do
 *   not exist in the child). As with any fork of a threaded process, a map that another thread
 *   was writing at the instant of the fork may be left with a lock held in the child: do not
 *   use it there. fork() waits for reclamation in progress on other threads, which waits for
 *   read-side sections: do not fork() from inside a callback or a compute function. An
 *   iterator that another thread had open at the fork counts as open forever in the child, so
 *   that map keeps what is removed from it there until chm_free.
 *   pthread_cancel: the library's waits (grace periods, chm_free) and the callbacks it runs
 *   happen with cancellation disabled, so a cancelled thread leaves no lock held and no batch
 *   half freed; a pending cancel acts at the caller's next cancellation point. A compute
 *   function runs under the map's lock: do not let it be cancelled.
 *   dlclose(libchm.so) once its maps are freed is safe: no thread, no thread-exit destructor
 *   left behind.
 */
#ifndef CHM_H
#define CHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(CHM__NO_VISIBILITY)
#define CHM_API __attribute__((visibility("default")))
#else
#define CHM_API
#endif

#define CHM_VERSION_MAJOR 0
#define CHM_VERSION_MINOR 1
#define CHM_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------
 * Types and backends
 * ------------------------------------------------------------------------------------------- */

typedef struct chm chm;                 /* opaque map handle */
typedef struct chm_backend chm_backend; /* one locking strategy (opaque) */

/* Go's classic map (8-slot buckets, top-hash bytes, incremental evacuation). Not thread-safe:
 * a writer racing with another writer, a reader or an iterator is detected on a best-effort
 * basis and handled according to chm_options.on_race. Iteration is fail-fast. */
CHM_API extern const chm_backend chm_unsafe;

/* The same table behind one reader-writer lock (chm_options.rwlock picks the lock). Every
 * operation is linearizable at the moment it holds the lock; reads share the lock, so every
 * reader still writes the lock word. Iteration is fail-fast and exact. */
CHM_API extern const chm_backend chm_rwlock;

/* Java 7's ConcurrentHashMap: `concurrency` lock-striped segments (default 16), each a chained
 * table with its own lock, count and growth. chm_get is lock-free and store-free (safe memory
 * reclamation); writes lock one segment; chm_size is exact when quiescent (unlocked passes, then
 * all segment locks). Iteration is weakly consistent; an iterator holds no read-side section
 * between calls, and while it is open the map keeps what is removed from it (see "Memory"
 * above). chm_options.packed drops the 64-byte segment alignment. */
CHM_API extern const chm_backend chm_segmented;

/* Java 8's ConcurrentHashMap: one table of bins; an empty bin is filled by one CAS, any other
 * write locks the bin's first node; chm_get is lock-free and store-free (safe memory
 * reclamation), following forwarding nodes into the next table during a resize, which every
 * writer that meets one helps with (cooperative transfer). Bins of 8+ colliding keys become
 * red-black trees (O(log n) under hash flooding when the key ops have a compare, as the built-in
 * ones do). chm_size is a base counter plus striped counter cells, exact when quiescent;
 * chm_options.packed packs the cells without 64-byte padding. Iteration is weakly consistent
 * (no key twice even if removed and re-added meanwhile); while an iterator is open the map keeps
 * what is removed from it, as for chm_segmented. */
CHM_API extern const chm_backend chm_binlock;

/* Go's classic sync.Map: an immutable read index published through one atomic pointer, and a
 * mutex-guarded dirty map for keys added since the last promotion. Values are boxed (an
 * allocation per overwrite). chm_get takes no lock and stores nothing when the key is in the
 * read index or the map is not amended; a key added since the last promotion is read under the
 * mutex until enough such misses promote the dirty map, as in Go. For read-mostly maps over a
 * stable key set; new keys cost a lock and, after a promotion, an O(n) copy. chm_size is exact
 * when quiescent (a striped counter written by writers only). Iteration is weakly consistent
 * (promotes the dirty map first, then walks the index without locks; no read section is held
 * between calls). A compute function may call chm_get, chm_size and iterate the same map; any
 * nested write returns CHM_EDEADLK. */
CHM_API extern const chm_backend chm_readmostly;

/* chm_backend_find - the backend called @name ("unsafe", "rwlock", "segmented", "binlock",
 * "readmostly"), or NULL when @name is NULL or unknown. */
CHM_API const chm_backend *chm_backend_find(const char *name);

/* chm_backend_name - the backend's name as accepted by chm_backend_find(); NULL for NULL. */
CHM_API const char *chm_backend_name(const chm_backend *b);

/* chm_backend_list - every backend built, NULL-terminated, in the order of the list above. */
CHM_API const chm_backend *const *chm_backend_list(void);

/* chm_backend_thread_safe - whether @b's operations may run concurrently: its
 * CHM_CAP_THREAD_SAFE bit. Of the backends above, false only for chm_unsafe; false for NULL. */
CHM_API bool chm_backend_thread_safe(const chm_backend *b);

/* What a backend guarantees, as data: chm_backend_caps() returns a set of these bits. Tests,
 * benchmarks and programs ask for a property, never for a backend's name. Bits may be added. */
enum {
    CHM_CAP_THREAD_SAFE = 1u << 0,        /* every operation may run concurrently */
    CHM_CAP_FAIL_FAST_ITER = 1u << 1,     /* iteration is fail-fast (CHM_ECONCURRENT); else
                                             weakly consistent (thread-safe backends) */
    CHM_CAP_STORE_FREE_GET = 1u << 2,     /* chm_get takes no lock and stores nothing shared
                                             (readmostly: for keys in its read index) */
    CHM_CAP_TREE_BINS = 1u << 3,          /* colliding keys with a compare cost O(log n) */
    CHM_CAP_RACE_DETECT = 1u << 4,        /* concurrent misuse detected (chm_unsafe) */
    CHM_CAP_PADDING_SWITCH = 1u << 5,     /* chm_options.packed changes the layout */
    CHM_CAP_RWLOCK_KINDS = 1u << 6,       /* chm_options.rwlock picks the lock */
    CHM_CAP_COMPUTE_EXCLUSIVE = 1u << 7,  /* a compute function holds the whole map: a nested
                                             write from it runs (and fails the compute with
                                             CHM_ECONCURRENT if structural) instead of
                                             returning CHM_EDEADLK */
    CHM_CAP_DEFERRED_FREE = 1u << 8,      /* values and keys that leave the map reach value_free
                                             and release a grace period later, in batches (see
                                             "Reclamation"); else within the removing call */
    CHM_CAP_SEGMENTS = 1u << 9,           /* chm_options.concurrency is the number of
                                             independently locked segments */
    CHM_CAP_ITER_HOLDS_RECLAIM = 1u << 10 /* an open iterator holds back this map's
                                             reclamation: what leaves the map while one of its
                                             iterators is open (values, keys, nodes, tables)
                                             reaches value_free and release, and is freed, only
                                             after the last of them is finished by chm_iter_fini;
                                             other maps are not held back. Implies
                                             DEFERRED_FREE. See "Reclamation", Memory */
};

/* chm_backend_caps - @b's CHM_CAP_* bits; 0 for NULL. */
CHM_API unsigned chm_backend_caps(const chm_backend *b);

/* ---------------------------------------------------------------------------------------------
 * Keys, values, options
 * ------------------------------------------------------------------------------------------- */

/* How a map hashes, compares and stores its keys. hash and equal are required; equal keys must
 * hash equally for every seed. All functions may be called concurrently from several threads and
 * must not call back into the map. */
typedef struct chm_keyops {
    uint64_t (*hash)(uint64_t key, uint64_t seed);  /* required */
    bool (*equal)(uint64_t a, uint64_t b);          /* required */
    int (*compare)(uint64_t a, uint64_t b);         /* optional total order (<0, 0, >0);
                                                          tree bins use it against collisions */
    bool (*retain)(uint64_t key, uint64_t *stored); /* optional: make the stored copy of a key
                                                          when it is first inserted; false = out
                                                          of memory (the call fails, CHM_ENOMEM) */
    void (*release)(uint64_t key);                  /* optional: free a stored copy once no
                                                          thread can still read it (where it
                                                          runs and what it may call: see
                                                          "Reclamation" above) */
} chm_keyops;

/* The default: integer keys, hashed with a seeded strong 64-bit mixer. */
CHM_API extern const chm_keyops chm_keys_u64;

/* key = (uint64_t)(uintptr_t)"a NUL-terminated string". The map stores its own copy, so the
 * caller's string may be freed once the call returns; keys returned by iteration point to the
 * map's copy, valid until the key is removed (thread-safe backends: until a grace period after). */
CHM_API extern const chm_keyops chm_keys_string;

/* Seeded hashes used by the two key sets above, for keyops that want to reuse them. */
CHM_API uint64_t chm_hash_u64(uint64_t key, uint64_t seed);
CHM_API uint64_t chm_hash_bytes(const void *data, size_t len, uint64_t seed);

typedef enum chm_race_policy {
    CHM_RACE_ABORT = 0, /* default: print "chm: concurrent map writes" (or the read/iteration
                           message) to stderr and abort(), like Go's fatal error */
    CHM_RACE_RETURN     /* the operation that detects the race returns CHM_ERACE */
} chm_race_policy;

/* Which reader-writer lock chm_rwlock uses (ignored by other backends). All three prefer
 * writers -- a writer that waits holds back the readers that arrive after it, so a stream of
 * reads cannot starve writes -- and make every reader write one shared counter. They differ in
 * how a thread waits and in what an uncontended read costs:
 *   CHM_RWLOCK_ADAPTIVE  the default (0): waiters spin briefly, then sleep on a futex, as with
 *                        Go's sync.RWMutex and Java's monitors; a read is one atomic add to
 *                        enter and one to leave.
 *   CHM_RWLOCK_CK        Concurrency Kit's ck_rwlock: waiters spin and never sleep. The cheapest
 *                        hand-off while every thread has a core of its own; whole time slices
 *                        lost when threads outnumber cores.
 *   CHM_RWLOCK_PTHREAD   glibc's pthread_rwlock_t (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP),
 *                        spun on with try-locks, then asleep in the kernel; its try-lock and
 *                        unlock calls add about 70 instructions to every read. It was the
 *                        default, with the value 0, before CHM_RWLOCK_ADAPTIVE: a program
 *                        compiled against that header that set it explicitly gets the adaptive
 *                        lock until it is recompiled.
 * Any other value makes chm_new fail with EINVAL. */
typedef enum chm_rwlock_kind {
    CHM_RWLOCK_ADAPTIVE = 0,
    CHM_RWLOCK_CK = 1,
    CHM_RWLOCK_PTHREAD = 2
} chm_rwlock_kind;

typedef struct chm_options {
    size_t capacity;         /* expected number of entries; 0 = small default. A capacity the
                                machine cannot hold makes chm_new fail with ENOMEM */
    unsigned concurrency;    /* segmented: number of segments (power of two, rounded up);
                                others: expected writer threads; 0 = 16 */
    const chm_keyops *keys;  /* NULL = chm_keys_u64 */
    uint64_t seed;           /* hash seed; 0 = a fresh random seed (getrandom) for every map */
    chm_race_policy on_race; /* chm_unsafe only */
    void (*value_free)(uint64_t value, void *ctx); /* optional: called once for each value that
                                left the map (replaced, removed, chm_free), after no thread can
                                still read it. Must not call into the same map; where
                                it runs and what it may call: "Reclamation" above */
    void *ctx;                                     /* passed to value_free */
    chm_rwlock_kind rwlock; /* chm_rwlock only: which lock (CHM_CAP_RWLOCK_KINDS) */
    bool packed;            /* lay hot per-segment / per-counter fields out without 64-byte
                                padding, to measure false sharing; default false = padded
                                (backends with CHM_CAP_PADDING_SWITCH; others ignore it) */
    size_t size;            /* how the struct grows without breaking compiled callers:
                                0 or sizeof(chm_options) as the caller's header declared it.
                                Fields added later go after this one; a library newer than
                                the caller reads only the first `size` bytes (0: every field
                                up to this one) and takes the rest as zero = default, and a
                                library older than the caller accepts a larger size only if
                                every byte it does not know is zero (else EINVAL), so an
                                option it cannot honour is never silently ignored */
} chm_options;

/* ---------------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------------- */

enum {
    CHM_OK = 0,           /* success */
    CHM_NOTFOUND = 1,     /* the key is absent */
    CHM_EXISTS = 2,       /* the key is present (put: replaced; put_if_absent: untouched) */
    CHM_END = 3,          /* iteration finished */
    CHM_EINVAL = -1,      /* invalid argument */
    CHM_ENOMEM = -2,      /* out of memory; the map is unchanged */
    CHM_ECONCURRENT = -3, /* fail-fast iterator: the map was structurally modified */
    CHM_ERACE = -4,       /* chm_unsafe with CHM_RACE_RETURN: concurrent misuse detected */
    CHM_EDEADLK = -5      /* the call would deadlock: a compute or visit function wrote to
                               the map that runs it (see chm_compute_if_absent, chm_visit) */
};

/* chm_strerror - a static, human-readable description of @status ("unknown status" if none). */
CHM_API const char *chm_strerror(int status);

/* ---------------------------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------------------------- */

/*
 * chm_new - create an empty map.
 * @b:   the backend; NULL or a backend not from chm_backend_list() -> NULL, errno = EINVAL.
 * @opt: options, or NULL for all defaults (so is a zero-initialised struct).
 *
 * Returns the map, or NULL with errno EINVAL (bad backend, keyops without hash/equal, unknown
 * on_race or rwlock kind, a size that is not one, an option newer than the library) or ENOMEM (out of memory, or a capacity too large to allocate).
 * Thread-safe: maps are independent of each other.
 */
CHM_API chm *chm_new(const chm_backend *b, const chm_options *opt);

/*
 * chm_free - destroy @m: every value still present goes to value_free, every stored key to
 * release, and every callback deferred for @m has run when it returns. NULL is a no-op.
 * Must not run concurrently with any other call on @m (including an unfinished iterator).
 */
CHM_API void chm_free(chm *m);

/*
 * chm_reclaim - wait until what @m had retired when the call began is freed: every value_free
 * and keyops.release call for the values and key copies that had left @m has run, and the
 * memory the map had retired (replaced nodes, old tables) is back with the allocator. So
 * afterwards chm_stats_get's pending counts only what was retired since (0 if nothing was),
 * and the memory @m holds depends on its contents alone -- for a measurement, or before
 * handing a value_free's resources elsewhere.
 * CHM_OK. CHM_EINVAL: @m is NULL. CHM_EDEADLK, nothing done: the calling thread is inside a chm
 * call -- in a compute or visit function, a keyops function, or a value_free or keyops.release
 * callback (wherever the library runs it: at the end of a write, in chm_free, in chm_reclaim)
 * -- where waiting for reclamation could wait for itself. The check does not depend on the
 * backend or on what is pending.
 * What it waits for (segmented, binlock, readmostly): one grace period (microseconds, unless a
 * reader is inside a long section), then the callbacks of what @m had queued, run on the
 * calling thread with cancellation disabled, then the batches of @m that other threads were
 * freeing when it began. On unsafe and rwlock, which free within the removing call, it checks
 * and returns at once.
 * Thread-safe on thread-safe backends: it may run concurrently with every call on @m but
 * chm_free, writes included, and with chm_reclaim of any map. Writes during the call are not
 * waited for, but a batch another writer starts freeing meanwhile is: a stream of writers that
 * keeps freeing batches of @m can delay the return until they pause.
 * An open iterator of a segmented or binlock map keeps what is removed meanwhile (see
 * "Reclamation"); chm_reclaim does not wait for iterators (it may be called between
 * chm_iter_next calls of the same thread) and returns with that still pending; the
 * chm_iter_fini that finishes the last of them frees it.
 */
CHM_API int chm_reclaim(chm *m);

/* chm_map_backend - the backend @m was created with (NULL for NULL). */
CHM_API const chm_backend *chm_map_backend(const chm *m);

/* ---------------------------------------------------------------------------------------------
 * Single-key operations. Each is linearizable on thread-safe backends.
 * ------------------------------------------------------------------------------------------- */

/* chm_get - look @key up. CHM_OK with *value set, or CHM_NOTFOUND. On segmented and binlock it
 * takes no lock and stores nothing to shared memory. On readmostly the same holds for every key
 * in the read index and whenever the map is not amended; a key added since the last promotion is
 * looked up under the mutex (counting a miss), exactly as Go's sync.Map.Load. Linearizable on
 * every thread-safe backend. */
CHM_API int chm_get(chm *m, uint64_t key, uint64_t *value);

/* chm_put - map @key to @value. CHM_OK: the key was new. CHM_EXISTS: it was present, its value
 * was replaced and the previous one is in *old (and goes to value_free, unless it is @value). */
CHM_API int chm_put(chm *m, uint64_t key, uint64_t value, uint64_t *old);

/* chm_put_if_absent - insert @key -> @value unless @key is present. CHM_OK: inserted.
 * CHM_EXISTS: the map is untouched and *current holds the present value. */
CHM_API int chm_put_if_absent(chm *m, uint64_t key, uint64_t value, uint64_t *current);

/* chm_remove - remove @key. CHM_OK with *old = its value (which goes to value_free), or
 * CHM_NOTFOUND. */
CHM_API int chm_remove(chm *m, uint64_t key, uint64_t *old);

/* chm_replace - compare-and-set on one key's value (64-bit word equality).
 * CHM_OK: the value was @expected and is now @desired (@expected goes to value_free, unless it
 * is @desired).
 * CHM_NOTFOUND: absent. CHM_EXISTS: present with another value; nothing changed. */
CHM_API int chm_replace(chm *m, uint64_t key, uint64_t expected, uint64_t desired);

/* A compute function: the value to store for @key. Where it runs, which calls it may make, and
 * what becomes of its value when it is not inserted: chm_compute_if_absent. */
typedef uint64_t chm_compute_fn(uint64_t key, void *arg);

/*
 * chm_compute_if_absent - insert fn(key, arg) unless @key is present.
 * CHM_OK: fn ran once and its result was inserted and is in *value.
 * CHM_EXISTS: fn did not run; *value holds the present value.
 * CHM_EINVAL: @fn is NULL.
 * The call is atomic, as Java's ConcurrentHashMap.computeIfAbsent: among racing callers for one
 * absent key, fn runs exactly once, its result is installed and every caller sees it.
 * CHM_ENOMEM: nothing was inserted and fn did not run. Every backend allocates what the insert
 * needs before fn runs, so once fn has returned a value it is inserted (CHM_OK) -- or, on
 * chm_unsafe and chm_rwlock, passed to value_free (CHM_ECONCURRENT, below): never lost.
 *
 * fn runs while the caller holds the key's lock (rwlock: the write lock; segmented: the
 * segment's lock; binlock: the bin's lock, or a reservation of the empty bin that other writers
 * of that bin wait for). A call fn makes into the same map never deadlocks, whether fn makes it
 * itself or from a compute in another map that it runs, at any depth (in compute(A) -> fn ->
 * compute(B) -> fn -> a call on A, the call on A follows A's rule below):
 *   - chm_unsafe, chm_rwlock: the nested call runs (rwlock: without locking, this thread already
 *     holds the map exclusively). If it changed the map structurally -- a key added or removed,
 *     or a resize started, which a nested call that prepares an insert starts even when it then
 *     inserts nothing (a nested chm_compute that keeps an absent key absent) -- the compute
 *     returns CHM_ECONCURRENT and inserts nothing (Java 9's HashMap throws
 *     ConcurrentModificationException).
 *     fn's value has then gone to value_free (when set) before the call returns, and *value is
 *     not set; likewise when chm_unsafe detects a race after fn ran (CHM_ERACE).
 *   - chm_segmented: nested chm_get, chm_size and iteration work (lock-free); any nested write
 *     returns CHM_EDEADLK.
 *   - chm_binlock: likewise: nested chm_get (readers see the key being computed as absent),
 *     chm_size and iteration work; any nested write to the same map (any key) returns
 *     CHM_EDEADLK. fn runs outside the library's read-side section, so it may do anything
 *     else, chm_free of another map included.
 *   - chm_readmostly: fn runs under the map's mutex with the key reserved (readers and removers
 *     see it absent; a racing put waits). Nested chm_get, chm_size and iteration work; any nested
 *     write returns CHM_EDEADLK.
 * Computes nest at most CHM_COMPUTE_NESTING_MAX deep on one thread (each running inside the
 * function of the one before, in any maps); a deeper chm_compute_if_absent returns CHM_ENOMEM
 * before fn runs.
 */
#define CHM_COMPUTE_NESTING_MAX 16
CHM_API int chm_compute_if_absent(chm *m, uint64_t key, chm_compute_fn *fn, void *arg,
                                  uint64_t *value);

/* What a chm_compute function decides for its key. */
typedef enum chm_compute_action {
    CHM_COMPUTE_KEEP = 0, /* leave the key as it is (an absent key stays absent) */
    CHM_COMPUTE_SET,      /* set the key to *value (insert it, or replace its value) */
    CHM_COMPUTE_DELETE    /* remove the key (nothing happens if it is absent) */
} chm_compute_action;

/* An update function for chm_compute. @present: whether @key is in the map; @old: its value if
 * present, 0 otherwise. *@value is @old on entry (0 if absent); on CHM_COMPUTE_SET it holds the
 * value to store. Any other return is taken as CHM_COMPUTE_KEEP. */
typedef chm_compute_action chm_update_fn(uint64_t key, bool present, uint64_t old,
                                         uint64_t *value, void *arg);

/*
 * chm_compute - an atomic read-modify-write of one key: fn(key, present, old, &value, arg) sees
 * the key's state and decides keep, set or delete, and its decision is applied atomically with
 * the state it saw (among racing chm_compute calls on one key, the decisions apply one after
 * another: two threads each adding 1 a million times end at exactly 2,000,000).
 *   CHM_OK:       the key is present after the call; *result = its value (set or kept).
 *   CHM_NOTFOUND: the key is absent after the call (deleted, or absent and kept); *result
 *                 untouched.
 *   CHM_EINVAL:   NULL map or fn; fn did not run.
 *   CHM_ENOMEM:   fn did not run and nothing changed (every backend allocates what a SET could
 *                 need before fn runs, so a decision is never lost to a failed allocation).
 *   CHM_EDEADLK, CHM_ECONCURRENT, CHM_ERACE: as chm_compute_if_absent (fn's rules below); when
 *                 the call fails after fn chose SET, fn's value goes to value_free (never lost).
 * fn runs exactly once per call that returns CHM_OK or CHM_NOTFOUND, under the same lock and
 * with the same nesting rules as chm_compute_if_absent's fn (there: what fn may call, what a
 * nested call on the same map returns, CHM_COMPUTE_NESTING_MAX; on backends with
 * CHM_CAP_COMPUTE_EXCLUSIVE a nested write that changes the value of the key being computed
 * fails the compute with CHM_ECONCURRENT too, since fn decided on a value that has left the
 * map). The value that leaves the map
 * (replaced by a different value, or deleted) goes to value_free; a SET of the value the key
 * already holds is a KEEP.
 * Linearization point: the moment the decision is applied (a KEEP: when fn's view was read).
 * Ordering: as chm_put for a SET, chm_remove for a DELETE, chm_get for a KEEP ("Memory ordering").
 *
 * The originals' calls, written with it (fn's body shown):
 *   Java compute(k, f):            *value = f(k, present, old); return SET (or DELETE for null)
 *   Java computeIfPresent(k, f):   if (!present) return KEEP; then as compute
 *   Java merge(k, v, f):           *value = present ? f(old, v) : v; return SET
 *   Go Swap(k, v):                 *value = v; return SET          (old, present: the previous)
 *   Go CompareAndSwap(k, o, n):    if (!present || old != o) return KEEP; *value = n; return SET
 *   Go CompareAndDelete(k, o):     return present && old == o ? DELETE : KEEP
 *   Go LoadOrStore(k, v):          if (present) return KEEP; *value = v; return SET
 *   Go LoadAndDelete(k):           return DELETE                   (old, present: what it had)
 *   a counter:                     *value = old + 1; return SET
 *   a refcount drop:               if (old == 1) return DELETE; *value = old - 1; return SET
 * (fn's arguments are the only way out for old/present: copy them into @arg.)
 */
CHM_API int chm_compute(chm *m, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result);

/* chm_remove_if - compare-and-delete (Java's remove(key, value), Go's CompareAndDelete), the
 * mirror of chm_replace. CHM_OK: the value was @expected and the key is removed (@expected goes
 * to value_free). CHM_NOTFOUND: absent. CHM_EXISTS: present with another value; nothing
 * changed. Linearizable; ordering as chm_remove on success, chm_get on failure. */
CHM_API int chm_remove_if(chm *m, uint64_t key, uint64_t expected);

/* chm_clear - remove every key. CHM_OK (CHM_EINVAL for NULL; CHM_ERACE on chm_unsafe with
 * CHM_RACE_RETURN). Every key present for the whole call is removed and its value goes to
 * value_free (and the stored key to release); keys put concurrently may survive. On binlock it
 * is one removal per key and on segmented one atomic step per segment, not one atomic step for
 * the map (Java's clear()); chm_rwlock clears
 * under its write lock and chm_readmostly atomically (Go's Clear: an empty read index is
 * published). It is a structural modification for fail-fast iterators (when the map was not
 * already empty); weakly consistent iterators keep their guarantees. It allocates nothing, so
 * it never fails for lack of memory; binlock, rwlock and unsafe keep their tables' capacity (as
 * Java's clear does), segmented gives each segment's table back (its next write makes one of
 * the map's initial capacity). */
CHM_API int chm_clear(chm *m);

/* A visit function: runs with the key's current value. */
typedef void chm_visit_fn(uint64_t key, uint64_t value, void *arg);

/*
 * chm_visit - run fn(key, value, arg) with @key's value, while that value cannot reach
 * value_free: a pointer value may be dereferenced inside fn even if another thread replaces or
 * removes it meanwhile (it goes to value_free after fn returns). The way to use pointer values
 * safely: take a reference inside fn (docs/choosing.md, "Pointer values").
 * CHM_OK: fn ran once, with @key as the caller passed it (not the map's stored copy) and the
 * value. CHM_NOTFOUND: absent, fn did not run. CHM_EINVAL: NULL map or fn. It allocates
 * nothing, so it works, and never returns CHM_ENOMEM, when memory is exhausted.
 * Linearizable as chm_get (the value fn sees is the key's value at one instant of the call).
 * fn runs on the calling thread inside the map's protection: a read-side section on segmented,
 * binlock and readmostly (while it runs, grace periods -- this map's reclamation and every other
 * map's -- wait for it), the read lock on rwlock. So fn must be short and must not block: it may
 * call chm_get, chm_visit and chm_size on any map, its own included (they do not lock what fn's
 * caller holds); a write, compute or chm_clear on its own map returns CHM_EDEADLK; it must not
 * write, compute, iterate or free other maps, take a lock another chm caller may hold, or wait
 * for another thread (any of these may wait for a grace period or a writer that waits for fn).
 */
CHM_API int chm_visit(chm *m, uint64_t key, chm_visit_fn *fn, void *arg);

/* chm_size - the number of entries; exact when no write is in flight (0 for NULL). */
CHM_API size_t chm_size(chm *m);

/* What an operator graphs, from chm_stats_get. Each field is read without stopping writers:
 * exact when the map is quiescent. */
typedef struct chm_stats {
    size_t entries; /* as chm_size */
    size_t buckets; /* slots (unsafe, rwlock: 8 per bucket) or bins of the current table(s)
                       (segmented: summed over segments; readmostly: the dirty map's) */
    size_t bytes;   /* memory the map holds now: tables, nodes, pools, boxes, stored-key copies
                       made by chm_keys_string; what malloc rounds up is not counted */
    size_t resizes; /* completed resizes since chm_new (table growths; readmostly: promotions
                       are not resizes) */
    size_t pending; /* objects retired by this map and not yet freed (0 on unsafe, rwlock) */
} chm_stats; /* fields may be added at the end */

/* chm_stats_get - fill *@st for @m. CHM_OK, or CHM_EINVAL for NULL arguments; it allocates
 * nothing, so it works when memory is exhausted. Thread-safe on thread-safe backends (takes no
 * lock that a writer holds long; rwlock: the read lock). */
CHM_API int chm_stats_get(chm *m, chm_stats *st);

/* ---------------------------------------------------------------------------------------------
 * Iteration
 *
 * chm_unsafe, chm_rwlock: fail-fast, like Java's HashMap. If the map is structurally modified
 * (a key added or removed, a resize; not a value overwrite, not a remove of an absent key) after
 * chm_iter_init, by any thread, the next chm_iter_next returns CHM_ECONCURRENT, and so does every
 * later call. On chm_rwlock the check is exact and the lock is held only inside each
 * chm_iter_next, so an idle iterator never blocks a writer and a thread may write between its own
 * chm_iter_next calls. On chm_unsafe it is best effort against other threads; an iterator whose
 * next call overlaps a write reports "concurrent map iteration and map write" (on_race).
 * chm_iter_init on a chm_unsafe map that is growing finishes the growth first.
 *
 * chm_segmented, chm_binlock, chm_readmostly: weakly consistent, like ConcurrentHashMap and
 * sync.Map.Range: never CHM_ECONCURRENT, no key twice, every key present for the whole iteration
 * returned, keys added or removed meanwhile may or may not be; each value returned was held by its
 * key during the iteration.
 *
 * Every chm_iter_init must be paired with chm_iter_fini, whatever chm_iter_next returned.
 * ------------------------------------------------------------------------------------------- */

#define CHM_ITER_SIZE 128

typedef struct chm_iter {
#if defined(__cplusplus)
    alignas(16) unsigned char opaque[CHM_ITER_SIZE];
#else
    _Alignas(16) unsigned char opaque[CHM_ITER_SIZE];
#endif
} chm_iter;

/* chm_iter_init - start iterating @m. CHM_OK, or CHM_EINVAL (NULL argument), CHM_ENOMEM. */
CHM_API int chm_iter_init(chm_iter *it, chm *m);

/* chm_iter_next - the next entry: CHM_OK with *key and *value set, CHM_END when done,
 * CHM_ECONCURRENT (fail-fast backends), CHM_ERACE (chm_unsafe, CHM_RACE_RETURN). */
CHM_API int chm_iter_next(chm_iter *it, uint64_t *key, uint64_t *value);

/* chm_iter_fini - release what the iterator holds. Always call it; a second call is a no-op. */
CHM_API void chm_iter_fini(chm_iter *it);

#ifdef __cplusplus
}
#endif

#endif /* CHM_H */
