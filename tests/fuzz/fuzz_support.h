/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_support.h - the pieces fuzz_chm.c builds on: the input reader, a set of (key, value)
 * pairs, the key sets a fuzzed map can use (integer keyops with weakened hashes; string keyops
 * whose stored copies are counted and checked), and the abort-on-mismatch reporter.
 */
#ifndef CHM_FUZZ_SUPPORT_H
#define CHM_FUZZ_SUPPORT_H

#include "testlib.h"

#include <stddef.h>
#include <stdint.h>

/* ---- mismatch reporting ------------------------------------------------------------------- */

/* Context printed with every mismatch (set by fuzz_chm.c as it goes). */
extern const char *fz_ctx_backend;
extern unsigned long fz_ctx_op; /* index of the operation being checked */

/* Print "fuzz_chm: MISMATCH ..." with the context above to stderr, then abort(). */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- input reader: bytes past the end read as 0 ------------------------------------------ */

typedef struct fz_reader {
    const uint8_t *p;
    size_t n, i;
} fz_reader;

static inline uint8_t fz_u8(fz_reader *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}
static inline unsigned fz_u16(fz_reader *r)
{
    unsigned lo = fz_u8(r);
    return lo | (unsigned)fz_u8(r) << 8;
}
static inline bool fz_eof(const fz_reader *r)
{
    return r->i >= r->n;
}

/* ---- a set of (key, value) pairs: which values a key held while an iterator was open ------ */

typedef struct fz_pairset {
    uint64_t *keys, *vals;
    unsigned char *used;
    size_t cap, n;
} fz_pairset;

void fz_pairset_init(fz_pairset *s);
void fz_pairset_fini(fz_pairset *s);
void fz_pairset_clear(fz_pairset *s);
void fz_pairset_add(fz_pairset *s, uint64_t key, uint64_t val);
bool fz_pairset_has(const fz_pairset *s, uint64_t key, uint64_t val);

/* ---- key sets ----------------------------------------------------------------------------- */

/* How badly a custom keyops hashes: the full seeded hash, only 3 low bits (8 chains, equal
 * top bytes), only the top byte (one bucket, distinct top bytes), or one constant. */
enum { FZ_HASH_FULL, FZ_HASH_LOW, FZ_HASH_TOP, FZ_HASH_CONST, FZ_HASH_COUNT };

/* Integer keyops of a hash quality, with or without a compare (tree bins need one). */
const chm_keyops *fz_int_keys(int quality, bool with_compare);

/* String keyops of a hash quality: retain mallocs a copy and release frees it, both counted;
 * releasing a copy that is not live (never retained, or released already) is a mismatch. */
const chm_keyops *fz_str_keys(int quality, bool with_compare);

/* Reset the counters of the string keyops (no copy may be live). */
void fz_str_reset(void);
/* Make the next retain fail (returns false: the map must answer CHM_ENOMEM). */
void fz_str_fail_next_retain(bool on);
/* Is @stored a live copy made by retain (not yet released)? */
bool fz_str_is_live(uint64_t stored);
/* Copies retained and released since the last reset. */
void fz_str_counts(unsigned long *retained, unsigned long *released);

#endif /* CHM_FUZZ_SUPPORT_H */
