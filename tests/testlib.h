/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * testlib.h - the tiny framework every suite shares.
 *
 *   - CHECK / CHECK_EQ / CHECK_RC record file:line and the values on failure and evaluate to
 *     true when the check passed, so a loop can stop at its first mismatch:
 *         if (!CHECK_RC(chm_put(m, k, v, NULL), CHM_OK)) return;
 *     They may be used from any thread.
 *   - tl_run() runs one sub-test and prints it; tl_finish() prints the closing line
 *     "N passed, M failed" and returns the exit status (non-zero on any failure).
 *   - tl_each_backend() runs one sub-test per backend of chm_backend_list(), so a backend added
 *     later is tested with no new test code.
 *   - helpers: a seeded PRNG (splitmix64), a reference model map (uint64 -> uint64, open
 *     addressing, every key legal), threads, a start barrier, time, an iteration-count scale for
 *     sanitizer builds, and a fork+exec'd child runner that captures stderr and the exit status.
 */
#ifndef CHM_TESTLIB_H
#define CHM_TESTLIB_H

#include "chm.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sanitizer detection ------------------------------------------------------------------ */

#include "sanitizers.h" /* src/: CHM__TSAN, CHM__ASAN, detected once for library and tests */
#ifdef CHM__TSAN
#define TL_TSAN 1
#else
#define TL_TSAN 0
#endif
#ifdef CHM__ASAN
#define TL_ASAN 1
#else
#define TL_ASAN 0
#endif

/* ---- checks ------------------------------------------------------------------------------- */

bool tl_check(bool ok, const char *file, int line, const char *expr);
bool tl_check_eq(uint64_t got, uint64_t want, const char *file, int line, const char *got_expr,
                 const char *want_expr);
bool tl_check_rc(int got, int want, const char *file, int line, const char *expr);
void tl_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond) tl_check((cond) ? true : false, __FILE__, __LINE__, #cond)
/* Compares as uint64_t (prints unsigned, hex and signed views). */
#define CHECK_EQ(got, want)                                                                        \
    tl_check_eq((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got, #want)
/* Compares chm status codes (prints their names). */
#define CHECK_RC(got, want) tl_check_rc((got), (want), __FILE__, __LINE__, #got)
#define FAIL(...) tl_fail(__FILE__, __LINE__, __VA_ARGS__)

/* The name of a status code ("CHM_OK", ...). */
const char *tl_rc_name(int rc);

/* ---- runner ------------------------------------------------------------------------------- */

/* Call first: remembers argv[0]; returns the child-mode argument when the process was started by
 * tl_child_run (argv = [exe, "--tl-child", ARG]), else NULL. */
const char *tl_init(int argc, char **argv);

/* Run one sub-test; prints "[ RUN  ] name" and "[  OK  ]/[ FAIL ] name (ms)". */
void tl_run(const char *name, void (*fn)(void *arg), void *arg);
/* Run fn(b) as "name/<backend>" for every backend b of chm_backend_list() that pass() accepts
 * (pass NULL for all). */
void tl_each_backend(const char *name, void (*fn)(const chm_backend *b),
                     bool (*pass)(const chm_backend *b));
/* Record a skipped sub-test (printed; counted in the ", K skipped" part of the closing line). */
void tl_skip(const char *name, const char *why);
/* Failures recorded so far in the running sub-test (any thread). */
long tl_failures(void);
/* Print "N passed, M failed" and return the process exit status. */
int tl_finish(void);

/* Backend predicates: what a backend guarantees (chm_backend_caps), never its name. */
bool tl_has_cap(const chm_backend *b, unsigned cap); /* every bit of cap is set */
bool tl_fail_fast(const chm_backend *b);             /* CHM_CAP_FAIL_FAST_ITER */
bool tl_thread_safe(const chm_backend *b);           /* chm_backend_thread_safe */
bool tl_is_unsafe(const chm_backend *b); /* CHM_CAP_RACE_DETECT (concurrent misuse detected) */
bool tl_compute_exclusive(const chm_backend *b); /* CHM_CAP_COMPUTE_EXCLUSIVE: a nested write
                                                    from a compute function runs */
/* How many chm_options.rwlock kinds make a difference: 3 with CHM_CAP_RWLOCK_KINDS, else 1.
 * Suites that run a backend once per lock kind loop i over [0, tl_lock_kinds(b)) with
 * tl_lock_kind(i): the default CHM_RWLOCK_ADAPTIVE first (i = 0, also the only pass of the
 * other backends), then CHM_RWLOCK_PTHREAD and CHM_RWLOCK_CK; tl_lock_kind_label(i) is "" for
 * the default and "(pthread)" / "(ck)" for the others, to append to a sub-test's name. */
int tl_lock_kinds(const chm_backend *b);
chm_rwlock_kind tl_lock_kind(int i);
const char *tl_lock_kind_label(int i);

/* Print a line to stdout, prefixed so it is visible in ctest -V output. */
void tl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- PRNG (splitmix64) -------------------------------------------------------------------- */

typedef struct tl_rng {
    uint64_t s;
} tl_rng;

static inline uint64_t tl_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline tl_rng tl_rng_seed(uint64_t seed)
{
    tl_rng r;
    r.s = tl_mix(seed + 0x9e3779b97f4a7c15ULL);
    return r;
}
static inline uint64_t tl_next(tl_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return tl_mix(r->s);
}
/* Uniform in [0, n), n > 0 (Lemire's multiply; the tiny bias is irrelevant here). */
static inline uint64_t tl_below(tl_rng *r, uint64_t n)
{
    return (uint64_t)(((__uint128_t)tl_next(r) * n) >> 64);
}

/* ---- reference model: uint64 -> uint64, every key legal ----------------------------------- */

typedef struct tl_model {
    uint64_t *keys;
    uint64_t *vals;
    unsigned char *used;
    size_t cap; /* power of two */
    size_t n;
} tl_model;

void tl_model_init(tl_model *m);
void tl_model_fini(tl_model *m);
void tl_model_clear(tl_model *m);
bool tl_model_get(const tl_model *m, uint64_t key, uint64_t *val);
/* true if the key was new; *old (may be NULL) = previous value otherwise */
bool tl_model_put(tl_model *m, uint64_t key, uint64_t val, uint64_t *old);
/* true if the key was present; *old = its value */
bool tl_model_remove(tl_model *m, uint64_t key, uint64_t *old);
/* Add delta to the value of key (inserting 0 first): a multiset of keys. Returns the new count. */
uint64_t tl_model_add(tl_model *m, uint64_t key, uint64_t delta);
/* Iterate: for (size_t i = 0; tl_model_slot(m, &i, &k, &v); ) ... */
bool tl_model_slot(const tl_model *m, size_t *pos, uint64_t *key, uint64_t *val);
static inline size_t tl_model_size(const tl_model *m)
{
    return m->n;
}

/* Compare a map with integer keys to the model: chm_size, a full iteration (every key exactly
 * once, values equal, CHM_END at the end, and CHM_END again on a further call) and a chm_get of
 * every model key. Returns true when equal; records failures. */
bool tl_map_equals_model(chm *m, const tl_model *model);

/* Collect a full iteration into *out (cleared first). Returns the final status (CHM_END on
 * success); duplicates are reported as failures. */
int tl_collect(chm *m, tl_model *out);

/* ---- value_free accounting ---------------------------------------------------------------- */

/* A thread-safe value_free sink: counts calls, sums values and keeps a multiset of the values
 * freed (protected by a mutex; fine for tests). Use as options.value_free = tl_freelog_cb,
 * options.ctx = &log. */
typedef struct tl_freelog {
    atomic_ulong calls;
    atomic_ullong sum;
    atomic_ullong xor_mix; /* xor of tl_mix(value) */
    bool keep;             /* keep a multiset in `freed` */
    void *lock;            /* pthread_mutex_t* */
    tl_model freed;        /* value -> times freed */
} tl_freelog;

void tl_freelog_init(tl_freelog *l, bool keep_multiset);
void tl_freelog_fini(tl_freelog *l);
void tl_freelog_cb(uint64_t value, void *ctx);
unsigned long tl_freelog_calls(tl_freelog *l);

/* ---- memory the library holds ------------------------------------------------------------- */

/* The blocks the library holds (chm__alloc_live, counting armed) once nothing is in flight, for
 * churn tests that bound them. First TL_QUIESCE_ROUNDS rounds of a write and a full iteration:
 * they bring a map that keeps two views of its entries to one view, whatever point of its cycle
 * a churn stopped at (on readmostly the write of a new key builds a dirty map, which expunges
 * deleted entries, and the iteration promotes it, which drops them). Then a reclamation barrier
 * waits until everything retired so far is freed. The count then depends on the map's contents
 * alone, not on timing. Each round puts and removes the key UINT64_MAX (absent before), so one
 * value per round reaches value_free. */
enum { TL_QUIESCE_ROUNDS = 2 };
long tl_quiesced_blocks(chm *m);

/* ---- threads ------------------------------------------------------------------------------ */

#define TL_MAX_THREADS 64

/* Run fn(idx, arg) on n threads (idx 0..n-1) and join them all. */
void tl_run_threads(int n, void (*fn)(int idx, void *arg), void *arg);

typedef struct tl_thread {
    void *handle; /* pthread_t* */
} tl_thread;
void tl_spawn(tl_thread *t, void *(*fn)(void *), void *arg);
void tl_join(tl_thread *t);

/* A reusable spinning barrier (yields while waiting). */
typedef struct tl_barrier {
    atomic_uint count;
    atomic_uint generation;
    unsigned n;
} tl_barrier;
void tl_barrier_init(tl_barrier *b, unsigned n);
void tl_barrier_wait(tl_barrier *b);

/* ---- time and scale ----------------------------------------------------------------------- */

double tl_now(void); /* monotonic seconds */
/* Iteration-count scale: 1.0 in a normal build, 0.3 under ThreadSanitizer, 0.5 under
 * AddressSanitizer; overridden by the environment variable CHM_TEST_SCALE (a positive number). */
double tl_scale(void);
/* n scaled, at least min. */
uint64_t tl_scaled(uint64_t n, uint64_t min);
/* Time budget, in seconds, for one time-bounded loop of a sub-test: 0.4 in a normal build, 2.5
 * under ThreadSanitizer, 1.5 under AddressSanitizer (CHM_TEST_BUDGET overrides). Loops that stop
 * at a count or at the budget, whichever comes first, keep a loaded machine from stretching the
 * suite; their checks hold for any number of operations. */
double tl_budget(void);
/* Kill the process with a message if it is still running after `seconds` (0 cancels). */
void tl_watchdog(unsigned seconds);

/* ---- child processes ---------------------------------------------------------------------- */

typedef struct tl_child {
    bool exited;    /* exited normally ... */
    int status;     /* ... with this code */
    bool signaled;  /* killed by a signal ... */
    int sig;        /* ... this one */
    bool timed_out; /* killed by tl_child_run after the timeout */
    char *err;      /* captured stderr, NUL-terminated (free with tl_child_fini) */
    size_t err_len;
} tl_child;

/* Re-execute /proc/self/exe as [exe, "--tl-child", arg], with the current environment plus
 * env_overrides (NULL-terminated "NAME=value" strings replacing or adding variables), stdout
 * inherited and stderr captured. Waits at most timeout_s seconds (then SIGKILL). Returns false
 * if the child could not be started. */
bool tl_child_run(const char *arg, const char *const *env_overrides, double timeout_s,
                  tl_child *out);
void tl_child_fini(tl_child *c);
/* A short description of how the child ended ("exit 0", "signal 6", "timeout"). */
const char *tl_child_describe(const tl_child *c, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CHM_TESTLIB_H */
