/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * common.c - small pieces several benchmarks share: strict parameter parsing, the backend
 * check with its "known: ..." message, the size invariant, and which backends this build lacks.
 */
#include "chmbench.h"
#include "originals/originals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || *s == '+' || *s == ' ' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

const bench_map_impl *bench_backend_check(const char *name, char *err, size_t errlen)
{
    const bench_map_impl *impl = bench_map_find(name);
    if (!impl) {
        size_t used = (size_t)snprintf(err, errlen, "unknown backend '%s'; known:", name);
        for (const bench_map_impl *const *i = bench_map_impls(); *i && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, " %s", (*i)->name);
        if (used < errlen)
            snprintf(err + used, errlen - used,
                     "; a library backend may carry options: NAME:concurrency=N, NAME:packed, "
                     "rwlock:adaptive, rwlock:pthread, rwlock:ck");
    }
    return impl;
}

bool bench_check_size(const bench_map_impl *impl, bench_map *map, size_t prefill, uint64_t inserts,
                      uint64_t removes, char *err, size_t errlen)
{
    if (getenv("CHMBENCH_INJECT_SIZE_ERROR"))
        inserts++;
    size_t size = impl->size(map);
    if (size == prefill + inserts - removes)
        return true;
    snprintf(err, errlen,
             "%s: size invariant violated: size %zu != prefill %zu + inserts %llu - removes %llu",
             impl->name, size, prefill, (unsigned long long)inserts, (unsigned long long)removes);
    return false;
}

/* Whether `name` is one of the comma-separated names of `list`. */
static bool listed(const char *name, const char *list)
{
    size_t len = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',')) {
        p += *p == ',';
        if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return true;
    }
    return false;
}

const char *bench_map_unavailable(const bench_map_impl *impl)
{
    if (impl->unavailable)
        return impl->unavailable;
    const char *hidden = getenv("CHMBENCH_HIDE_PEERS");
    if (hidden && !impl->chm_backend && listed(impl->name, hidden))
        return "hidden by CHMBENCH_HIDE_PEERS (as if its package were missing at configure time)";
    return impl->original ? bench_original_unavailable(impl) : NULL;
}

const bench_map_impl *bench_trial_backend(const bench_trial *t)
{
    for (int i = 0; i < t->bench->param_count; i++)
        if (strcmp(t->bench->params[i].name, "backend") == 0)
            return bench_map_find(t->param_values[i]);
    return NULL;
}

const char *bench_trial_unavailable(const bench_trial *t)
{
    const bench_map_impl *impl = bench_trial_backend(t);
    return impl ? bench_map_unavailable(impl) : NULL;
}
