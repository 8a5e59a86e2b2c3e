/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backends.c - the registry: every backend that is built, in the contract's order.
 * A new backend is one line in BACKENDS below, after the contract's five (the tests require them
 * first and in this order): X(<name>) declares its `const chm_backend chm_<name>` -- a
 * redeclaration for the five chm.h declares, harmless -- and lists it. Nothing else outside its
 * own files: what it guarantees (struct chm_backend's caps) is how tests and benchmarks tell
 * backends apart.
 */
#include "chm_internal.h"

#include <string.h>

/* clang-format off */
#define BACKENDS(X) \
    X(unsafe)       \
    X(rwlock)       \
    X(segmented)    \
    X(binlock)      \
    X(readmostly)

#define BACKEND_DECLARE(name) extern const chm_backend chm_##name;
BACKENDS(BACKEND_DECLARE)
#undef BACKEND_DECLARE

static const chm_backend *const backends[] = {
#define BACKEND_ENTRY(name) &chm_##name,
    BACKENDS(BACKEND_ENTRY)
#undef BACKEND_ENTRY
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
