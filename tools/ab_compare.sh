#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# ab_compare.sh - a before/after table for one change: the same chmbench trials run by two
# builds, alternating A B A B ... so that whatever else the machine does weighs on both alike.
#
# usage: tools/ab_compare.sh REF_A REF_B [ROUNDS] -- CHMBENCH-ARGS...
#   REF_A, REF_B  git revisions (each built once, Release, in .ab/<sha>/), or paths to chmbench
#                 executables
#   ROUNDS        alternations (default 3); each is one chmbench run per build
#   CHMBENCH-ARGS what to run, e.g. -p backend=binlock -p keys=1000 -p reads=50 -t 1,2 mix
#                 (-f/-wi/-w/-i/-r default to -f 1 -wi 1 -w 0.5 -i 3 -r 0.5 unless given)
# It prints one markdown row per trial: the median of the rounds' Scores for A and for B, B/A,
# and every round's Score; a row whose rounds on one side differ by more than 1.3x is marked
# unsteady (the machine changed speed meanwhile). Each round's JSON is kept in .ab/results/.
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '3,15p' "$0" >&2; exit 2; }
a=$1 b=$2
shift 2
rounds=3
if [ "$1" != "--" ]; then rounds=$1; shift; fi
[ "$1" = "--" ] || { echo "ab_compare.sh: expected -- before the chmbench arguments" >&2; exit 2; }
shift
mkdir -p .ab/results

# A chmbench executable for revision or path $1, built if needed; its path on stdout.
chmbench_for() {
    if [ -x "$1" ]; then
        echo "$1"
        return
    fi
    sha=$(git rev-parse --short=12 "$1^{commit}") || { echo "ab_compare.sh: $1: not a revision or executable" >&2; exit 2; }
    dir=.ab/$sha
    if [ ! -x "$dir/build/bench/chmbench" ]; then
        echo "ab_compare.sh: building $1 ($sha) in $dir" >&2
        rm -rf "$dir"
        mkdir -p "$dir/src"
        git archive "$sha" | tar -x -C "$dir/src"
        cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DCHM_BUILD_TESTS=OFF \
            -DCHM_BUILD_BENCH=ON >/dev/null
        cmake --build "$dir/build" -j2 --target chmbench >/dev/null
    fi
    echo "$dir/build/bench/chmbench"
}

exe_a=$(chmbench_for "$a")
exe_b=$(chmbench_for "$b")
defaults=
case " $* " in *" -f "*) ;; *) defaults="$defaults -f 1" ;; esac
case " $* " in *" -wi "*) ;; *) defaults="$defaults -wi 1" ;; esac
case " $* " in *" -w "*) ;; *) defaults="$defaults -w 0.5" ;; esac
case " $* " in *" -i "*) ;; *) defaults="$defaults -i 3" ;; esac
case " $* " in *" -r "*) ;; *) defaults="$defaults -r 0.5" ;; esac
stamp=$(date +%Y%m%d-%H%M%S)
files_a= files_b=
r=1
while [ "$r" -le "$rounds" ]; do
    for side in a b; do
        if [ $side = a ]; then exe=$exe_a; else exe=$exe_b; fi
        out=.ab/results/$stamp-$side-$r.json
        echo "ab_compare.sh: round $r/$rounds, $side: $exe$defaults $*" >&2
        # shellcheck disable=SC2086
        "$exe" $defaults "$@" -rf json -rff "$out" >/dev/null
        if [ $side = a ]; then files_a="$files_a $out"; else files_b="$files_b $out"; fi
    done
    r=$((r + 1))
done
echo "A = $a, B = $b; $rounds alternating rounds of: chmbench$defaults $*"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# Trials are matched on the benchmark, the threads and the -p parameters given here: the two
# builds may report different parameter sets (one may know a parameter the other lacks).
names=$(printf '%s\n' "$@" | sed -n 's/^\([A-Za-z_]*\)=.*/\1/p' | tr '\n' ' ')
# shellcheck disable=SC2086
AB_PARAMS="$names" python3 - "$files_a" "$files_b" <<'EOF'
import json, os, statistics, sys

names = os.environ.get("AB_PARAMS", "").split()

def load(paths):
    scores = {}
    for p in paths.split():
        for r in json.load(open(p)):
            if "primaryMetric" not in r:
                continue
            params = ",".join(f"{k}={r['params'].get(k, '?')}" for k in names)
            key = (r["benchmark"], params, r["threads"], r["primaryMetric"]["scoreUnit"])
            scores.setdefault(key, []).append(r["primaryMetric"]["score"])
    return scores

# A side whose rounds differ by more than UNSTEADY (max / min) ran while the machine changed
# speed (on a shared 2-vCPU host whole runs drop to a third and back): its median may be a
# slow round's, so the row says so and lists every round rather than let a ratio of medians
# pass for a result.
UNSTEADY = 1.3
a, b = load(sys.argv[1]), load(sys.argv[2])
print("| benchmark | params | threads | A (median) | B (median) | B/A | unit | A rounds | B rounds | |")
print("|---|---|---|---|---|---|---|---|---|---|")
unsteady = 0
for key in sorted(set(a) & set(b)):
    ma, mb = statistics.median(a[key]), statistics.median(b[key])
    ratio = mb / ma if ma else float("nan")
    flag = ""
    if any(min(v) > 0 and max(v) / min(v) > UNSTEADY for v in (a[key], b[key])):
        flag = "**unsteady**"
        unsteady += 1
    rounds = [" ".join(f"{x:.1f}" for x in v) for v in (a[key], b[key])]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {ma:.3f} | {mb:.3f} | {ratio:.2f} | {key[3]} "
          f"| {rounds[0]} | {rounds[1]} | {flag} |")
if unsteady:
    print(f"\n{unsteady} row(s) unsteady: a side's rounds differ by more than {UNSTEADY}x: the "
          "machine's speed changed during the run; rerun on a quiet machine before quoting them.")
EOF
echo "(each round's JSON: .ab/results/$stamp-{a,b}-N.json)"
