#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_symbols.sh LIBCHM_SO LIBCHM_A - only chm_ names are visible from either library: every
# symbol libchm.so exports is public API (chm_, never chm__), and every global symbol libchm.a
# defines starts with chm_ (internal ones chm__), so no name of the library collides with a
# user's own (a user's gomap_init, say) when linking statically.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
. "$(dirname "$0")/checklib.sh"
SO=${1:?usage: test_symbols.sh libchm.so libchm.a}
AR=${2:?usage: test_symbols.sh libchm.so libchm.a}

nm -D --defined-only "$SO" | awk 'NF == 3 { print $3 }' | sort -u >"$TMP/so.txt"
nm -g --defined-only "$AR" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$TMP/a.txt"
check "libchm.so exports symbols (nm works on it)" [ -s "$TMP/so.txt" ]
check "libchm.a defines global symbols (nm works on it)" [ -s "$TMP/a.txt" ]
grep -v '^chm_' "$TMP/so.txt" >"$TMP/so-foreign.txt"
check "libchm.so exports only chm_ names" [ ! -s "$TMP/so-foreign.txt" ]
sed 's/^/    /' "$TMP/so-foreign.txt"
grep '^chm__' "$TMP/so.txt" >"$TMP/so-internal.txt"
check "libchm.so exports no internal chm__ name" [ ! -s "$TMP/so-internal.txt" ]
sed 's/^/    /' "$TMP/so-internal.txt"
grep -v '^chm_' "$TMP/a.txt" >"$TMP/a-foreign.txt"
check "libchm.a defines only chm_/chm__ global names" [ ! -s "$TMP/a-foreign.txt" ]
sed 's/^/    /' "$TMP/a-foreign.txt"
check "libchm.so exports the contract's entry points (chm_new, chm_get, chm_backend_list)" \
    sh -c "grep -qx chm_new '$TMP/so.txt' && grep -qx chm_get '$TMP/so.txt' &&
           grep -qx chm_backend_list '$TMP/so.txt'"
checklib_finish
