/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * consumer.c - an outside program using an installed chm: only <chm.h> and one library name.
 * Creates a map for every backend in chm_backend_list(), puts and gets, prints OK.
 */
#include <chm.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define N 10000

static int fail(const char *backend, const char *what, int status)
{
    fprintf(stderr, "consumer: %s: %s failed (%d: %s)\n", backend, what, status,
            chm_strerror(status));
    return 1;
}

static int check_backend(const chm_backend *b)
{
    const char *name = chm_backend_name(b);
    if (name == NULL || chm_backend_find(name) != b) {
        fprintf(stderr, "consumer: backend lookup broken\n");
        return 1;
    }
    chm *m = chm_new(b, NULL);
    if (m == NULL) {
        perror("consumer: chm_new");
        return 1;
    }
    int rc = 0;
    for (uint64_t k = 0; k < N && rc == 0; k++) {
        int s = chm_put(m, k * 0x9e3779b97f4a7c15ULL, k + 1, NULL);
        if (s != CHM_OK)
            rc = fail(name, "chm_put", s);
    }
    for (uint64_t k = 0; k < N && rc == 0; k++) {
        uint64_t v = 0;
        int s = chm_get(m, k * 0x9e3779b97f4a7c15ULL, &v);
        if (s != CHM_OK)
            rc = fail(name, "chm_get", s);
        else if (v != k + 1)
            rc = fail(name, "chm_get value", s);
    }
    if (rc == 0) {
        uint64_t v = 0;
        int s = chm_get(m, 12345, &v); /* 12345 is not a multiple of the odd constant */
        if (s != CHM_NOTFOUND)
            rc = fail(name, "chm_get of an absent key", s);
    }
    if (rc == 0 && chm_size(m) != N) {
        fprintf(stderr, "consumer: %s: chm_size = %zu, want %d\n", name, chm_size(m), N);
        rc = 1;
    }
    chm_free(m);
    if (rc == 0)
        printf("consumer: %s OK (%d entries)\n", name, N);
    return rc;
}

int main(void)
{
    const chm_backend *const *list = chm_backend_list();
    int n = 0, failed = 0;
    for (const chm_backend *const *p = list; p != NULL && *p != NULL; p++, n++)
        failed |= check_backend(*p);
    if (n == 0) {
        fprintf(stderr, "consumer: chm_backend_list() is empty\n");
        return 1;
    }
    if (failed)
        return 1;
    printf("OK: chm %d.%d.%d, %d backends\n", CHM_VERSION_MAJOR, CHM_VERSION_MINOR,
           CHM_VERSION_PATCH, n);
    return 0;
}
