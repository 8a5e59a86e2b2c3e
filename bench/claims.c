/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * claims.c - `chm_claims`: the behavioural measurements behind docs/findings.md claims 1 and 2,
 * printed as Markdown tables (timing claims are measured by chmbench instead).
 *
 *   chm_claims race [EPISODES]   claim 1, Go's map: two goroutines writing at once die with
 *       "concurrent map writes"; iterating while writing, "concurrent map iteration and map
 *       write". For chm_unsafe with on_race = CHM_RACE_RETURN it runs EPISODES (default 2000)
 *       episodes of each scenario - writer+writer, reader+writer, iterator+writer - where two
 *       pinned threads are released together by a spin barrier and run a short burst each, and
 *       counts the episodes in which either thread saw CHM_ERACE. Then it runs each scenario once
 *       more in a child process with the default policy (CHM_RACE_ABORT) and prints how the
 *       child died and the first line it wrote to stderr.
 *
 *   chm_claims iterate [ROUNDS]  claim 2, Java's HashMap iterators fail fast, ConcurrentHashMap's
 *       are weakly consistent. For every backend: (a) one thread inserts a key between two
 *       chm_iter_next calls of its own iterator (Java's classic CME case); (b) for thread-safe
 *       backends, ROUNDS (default 200) full iterations of a map of 10,000 stable keys while
 *       another thread inserts and removes 10,000 other keys: how many iterations completed,
 *       how many failed (and with which code), and whether every completed one returned each
 *       stable key exactly once.
 *
 * Exit status 0 when every measurement ran (the numbers themselves are findings, not asserted;
 * tests/ asserts the guarantees).
 */
#define _GNU_SOURCE
#include "chm.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- two threads released together --------------------------------------------------------- */

static void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % CPU_SETSIZE, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
}

enum scenario { WRITE_WRITE, READ_WRITE, ITER_WRITE, SCENARIO_COUNT };

static const char *const scenario_names[SCENARIO_COUNT] = {"writer + writer", "reader + writer",
                                                           "iterator + writer"};

#define RACE_KEYS 64 /* prefilled, so the racing writes overwrite: no allocation, no growth */
#define BURST 64

struct race_episode {
    chm *map;
    enum scenario scenario;
    atomic_int arrived; /* spin barrier: both threads start their burst together */
    atomic_bool detected;
};

struct race_thread {
    struct race_episode *episode;
    int role; /* 0: the writer; 1: the other side of the scenario */
};

static void *race_thread_main(void *arg)
{
    struct race_thread *self = arg;
    struct race_episode *e = self->episode;
    pin_to_cpu(self->role);
    /* acq_rel: the arrival pairs with the other thread's, so neither starts before both are
     * running (the point of the barrier is overlap, not ordering of data). */
    atomic_fetch_add_explicit(&e->arrived, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&e->arrived, memory_order_acquire) < 2)
        ;
    bool seen = false;
    if (self->role == 0 || e->scenario == WRITE_WRITE) {
        for (uint64_t i = 0; i < BURST && !seen; i++)
            seen = chm_put(e->map, i % RACE_KEYS, i, NULL) == CHM_ERACE;
    } else if (e->scenario == READ_WRITE) {
        uint64_t v;
        for (uint64_t i = 0; i < BURST && !seen; i++)
            seen = chm_get(e->map, i % RACE_KEYS, &v) == CHM_ERACE;
    } else {
        chm_iter it;
        uint64_t k, v;
        int rc = chm_iter_init(&it, e->map);
        while (rc == CHM_OK)
            rc = chm_iter_next(&it, &k, &v);
        chm_iter_fini(&it);
        seen = rc == CHM_ERACE;
    }
    if (seen) /* relaxed: read by the main thread after pthread_join, which orders it */
        atomic_store_explicit(&e->detected, true, memory_order_relaxed);
    return NULL;
}

static chm *new_unsafe(chm_race_policy policy)
{
    chm_options opt = {.on_race = policy};
    chm *m = chm_new(&chm_unsafe, &opt);
    if (!m) {
        perror("chm_new");
        exit(1);
    }
    for (uint64_t k = 0; k < RACE_KEYS; k++)
        chm_put(m, k, k, NULL);
    return m;
}

static bool run_episode(chm *m, enum scenario s)
{
    struct race_episode e = {.map = m, .scenario = s};
    struct race_thread t[2] = {{&e, 0}, {&e, 1}};
    pthread_t tid[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&tid[i], NULL, race_thread_main, &t[i]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    for (int i = 0; i < 2; i++)
        pthread_join(tid[i], NULL);
    return atomic_load_explicit(&e.detected, memory_order_relaxed);
}

/* One episode with the default policy in a child: how it died, and its first stderr line. */
static void abort_child(enum scenario s, char *line, size_t len, int *signal_out)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        chm *m = new_unsafe(CHM_RACE_ABORT);
        for (int i = 0; i < 100000; i++)
            run_episode(m, s); /* the first detection aborts the process */
        _exit(0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    line[0] = '\0';
    if (!in || !fgets(line, (int)len, in))
        snprintf(line, len, "(nothing)");
    line[strcspn(line, "\n")] = '\0';
    if (in)
        fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static const char *code_name(int rc)
{
    switch (rc) {
    case CHM_ECONCURRENT: return "CHM_ECONCURRENT";
    case CHM_ERACE: return "CHM_ERACE";
    case CHM_END: return "CHM_END";
    case CHM_OK: return "CHM_OK";
    default: return chm_strerror(rc);
    }
}

static int claim_race(int episodes)
{
    printf("### chm_unsafe: concurrent misuse detected (on_race = CHM_RACE_RETURN)\n\n");
    printf("| scenario | episodes | detected | rate |\n|---|---|---|---|\n");
    for (int s = 0; s < SCENARIO_COUNT; s++) {
        chm *m = new_unsafe(CHM_RACE_RETURN);
        int detected = 0;
        for (int i = 0; i < episodes; i++)
            detected += run_episode(m, (enum scenario)s);
        chm_free(m);
        printf("| %s | %d | %d | %.1f%% |\n", scenario_names[s], episodes, detected,
               100.0 * detected / episodes);
    }
    printf("\n### chm_unsafe with the default policy (CHM_RACE_ABORT), one child per scenario\n\n");
    printf("| scenario | child ended by | first line on stderr |\n|---|---|---|\n");
    for (int s = 0; s < SCENARIO_COUNT; s++) {
        char line[256];
        int sig;
        abort_child((enum scenario)s, line, sizeof line, &sig);
        printf("| %s | %s | `%s` |\n", scenario_names[s], sig ? strsignal(sig) : "exit", line);
    }
    return 0;
}

/* ---- claim 2: fail-fast vs weakly consistent iteration -------------------------------------- */

#define STABLE_KEYS 10000
#define CHURN_BASE 1000000 /* churned keys live apart from the stable ones */

static chm *new_map(const chm_backend *b)
{
    chm_options opt = {.on_race = CHM_RACE_RETURN};
    chm *m = chm_new(b, &opt);
    if (!m) {
        perror("chm_new");
        exit(1);
    }
    return m;
}

/* (a) one thread modifies the map between two calls of its own iterator */
static const char *own_write_during_iteration(const chm_backend *b)
{
    chm *m = new_map(b);
    for (uint64_t k = 0; k < 100; k++)
        chm_put(m, k, k, NULL);
    chm_iter it;
    uint64_t k, v;
    int rc = chm_iter_init(&it, m);
    if (rc == CHM_OK)
        rc = chm_iter_next(&it, &k, &v);
    chm_put(m, 1000, 1000, NULL); /* a structural modification */
    int entries = 1;
    while (rc == CHM_OK && (rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
        entries++;
    chm_iter_fini(&it);
    chm_free(m);
    static char text[128];
    if (rc == CHM_END)
        snprintf(text, sizeof text, "continues: %d entries, then CHM_END", entries);
    else
        snprintf(text, sizeof text, "%s after %d entries", code_name(rc), entries);
    return text;
}

struct churn {
    chm *map;
    atomic_bool started, stop;
    uint64_t writes;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    pin_to_cpu(1);
    uint64_t i = 0;
    /* relaxed: the flags only start and end the measurement; the join orders everything after */
    atomic_store_explicit(&c->started, true, memory_order_relaxed);
    /* relaxed: the flag only ends the loop; the join orders everything after it */
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        uint64_t k = CHURN_BASE + i % STABLE_KEYS;
        if ((i / STABLE_KEYS) % 2 == 0)
            chm_put(c->map, k, k, NULL);
        else
            chm_remove(c->map, k, NULL);
        i++;
    }
    c->writes = i;
    return NULL;
}

static int claim_iterate(int rounds)
{
    printf("### One thread inserts a key between two chm_iter_next calls of its own iterator\n\n");
    printf("| backend | result of the next chm_iter_next |\n|---|---|\n");
    for (const chm_backend *const *b = chm_backend_list(); *b; b++)
        printf("| %s | %s |\n", chm_backend_name(*b), own_write_during_iteration(*b));

    printf("\n### %d full iterations over %d stable keys while another thread inserts and "
           "removes %d other keys\n\n",
           rounds, STABLE_KEYS, STABLE_KEYS);
    printf("| backend | completed | failed (code) | completed with every stable key once | "
           "churned keys seen per completed iteration | concurrent writes |\n"
           "|---|---|---|---|---|---|\n");
    unsigned char *seen = malloc(STABLE_KEYS);
    for (const chm_backend *const *b = chm_backend_list(); *b; b++) {
        if (!chm_backend_thread_safe(*b))
            continue; /* chm_unsafe: claim 1 covers it */
        chm *m = new_map(*b);
        for (uint64_t k = 0; k < STABLE_KEYS; k++)
            chm_put(m, k, k, NULL);
        struct churn c = {.map = m};
        pthread_t tid;
        if (pthread_create(&tid, NULL, churn_main, &c) != 0) {
            perror("pthread_create");
            return 1;
        }
        pin_to_cpu(0);
        while (!atomic_load_explicit(&c.started, memory_order_relaxed))
            sched_yield(); /* iterate only while the writer runs */
        int completed = 0, failed = 0, exact = 0, fail_code = 0;
        uint64_t churn_seen = 0;
        for (int r = 0; r < rounds; r++) {
            memset(seen, 0, STABLE_KEYS);
            chm_iter it;
            uint64_t k, v;
            bool once = true;
            uint64_t churn_this = 0;
            int rc = chm_iter_init(&it, m);
            while (rc == CHM_OK && (rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
                if (k < STABLE_KEYS)
                    once &= seen[k]++ == 0 && v == k;
                else
                    churn_this++;
            }
            chm_iter_fini(&it);
            if (rc == CHM_END) {
                completed++;
                churn_seen += churn_this;
                for (int i = 0; i < STABLE_KEYS && once; i++)
                    once = seen[i] == 1;
                exact += once;
            } else {
                failed++;
                fail_code = rc;
            }
        }
        atomic_store_explicit(&c.stop, true, memory_order_relaxed);
        pthread_join(tid, NULL);
        char failed_text[64];
        snprintf(failed_text, sizeof failed_text, failed ? "%d (%s)" : "%d", failed,
                 failed ? code_name(fail_code) : "");
        printf("| %s | %d | %s | %d | %.0f | %llu |\n", chm_backend_name(*b), completed,
               failed_text, exact, completed ? (double)churn_seen / completed : 0.0,
               (unsigned long long)c.writes);
        chm_free(m);
    }
    free(seen);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "race") == 0)
        return claim_race(argc > 2 ? atoi(argv[2]) : 2000);
    if (argc >= 2 && strcmp(argv[1], "iterate") == 0)
        return claim_iterate(argc > 2 ? atoi(argv[2]) : 200);
    fprintf(stderr, "usage: chm_claims race [EPISODES] | iterate [ROUNDS]\n"
                    "  race     claim 1: chm_unsafe's detection of concurrent misuse\n"
                    "  iterate  claim 2: fail-fast vs weakly consistent iterators\n");
    return 2;
}
