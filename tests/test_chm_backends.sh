#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test_chm_backends.sh CHM_BACKENDS CHMBENCH - bench/backends.c, the helper make bench builds its
# backend lists with (tools/make_bench.sh): with no capability it lists every library backend,
# in chm_backend_list()'s order, as chmbench does (the start of mix's default backend list); a
# capability selects a subset, in the same order; CHM_CAP_ prefixes are accepted; several
# capabilities intersect; an unknown one is an error (exit 2).
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
LIST=${1:?usage: test_chm_backends.sh path/to/chm_backends path/to/chmbench}
BENCH=${2:?usage: test_chm_backends.sh path/to/chm_backends path/to/chmbench}
. "$(dirname "$0")/checklib.sh"

all=$("$LIST")
check "no capability: exit 0 and a comma-separated list of names ($all)" \
    sh -c "[ -n '$all' ] && echo '$all' | grep -Eq '^[a-z0-9_]+(,[a-z0-9_]+)*\$'"
mix_default=$("$BENCH" -l | sed -n 's/^ *-p backend .*(default \([^)]*\))$/\1/p' | head -n 1)
check "the same backends, in the same order, as chmbench (mix's default: $mix_default)" \
    sh -c "case '$mix_default,' in '$all',*) true ;; *) false ;; esac"

# subset_in_order SUB: every name of SUB is in $all, in $all's order
subset_in_order() {
    rest=",$all,"
    for n in $(echo "$1" | tr ',' ' '); do
        case $rest in *",$n,"*) rest=",${rest#*,"$n",}" ;; *) return 1 ;; esac
    done
}
safe=$("$LIST" THREAD_SAFE)
check "THREAD_SAFE: a subset, in order ($safe)" subset_in_order "$safe"
check "CHM_CAP_THREAD_SAFE is THREAD_SAFE" [ "$("$LIST" CHM_CAP_THREAD_SAFE)" = "$safe" ]
# intersection A B: the names of A that are in B, in A's order
intersection() {
    for n in $(echo "$1" | tr ',' ' '); do
        case ",$2," in *",$n,"*) printf '%s\n' "$n" ;; esac
    done | paste -sd, -
}
padded=$("$LIST" PADDING_SWITCH)
both=$("$LIST" THREAD_SAFE PADDING_SWITCH)
check "THREAD_SAFE PADDING_SWITCH: the intersection ($both)" \
    [ "$both" = "$(intersection "$padded" "$safe")" ]
"$LIST" NO_SUCH_CAP >/dev/null 2>"$TMP/err"
rc=$?
check "an unknown capability: exit 2, named on stderr" \
    sh -c "[ $rc -eq 2 ] && grep -q NO_SUCH_CAP '$TMP/err'"
checklib_finish
