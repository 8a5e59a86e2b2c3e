/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backends.c - the registry: every backend that is built, in the contract's order.
 * A new backend adds its line to backends[] (after the contract's five) and, unless chm.h
 * declares it, an extern declaration here; nothing else outside its own files: what it
 * guarantees (struct chm_backend's caps) is how tests and benchmarks tell backends apart.
 */
#include "chm_internal.h"

#include <string.h>

/* One backend per line. */
/* clang-format off */
static const chm_backend *const backends[] = {
    &chm_unsafe,
    &chm_rwlock,
    &chm_segmented,
    &chm_binlock,
    &chm_readmostly,
    NULL,
};
/* clang-format on */

const chm_backend *const *chm_backend_list(void)
{
    return backends;
}

const chm_backend *chm_backend_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (const chm_backend *const *p = backends; *p != NULL; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

const char *chm_backend_name(const chm_backend *b)
{
    return b != NULL ? b->name : NULL;
}

bool chm_backend_thread_safe(const chm_backend *b)
{
    return (chm_backend_caps(b) & CHM_CAP_THREAD_SAFE) != 0;
}

unsigned chm_backend_caps(const chm_backend *b)
{
    return b != NULL ? b->caps : 0;
}
