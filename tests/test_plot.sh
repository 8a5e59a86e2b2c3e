#!/bin/sh
# test_plot.sh PLOT_SCRIPT PYTHON CHMBENCH - tools/plot_results.py on tiny chmbench result files:
# one PNG per benchmark chmbench lists (mix, falseshare, and memory, resize, group when present),
# each a real, non-empty PNG; a benchmark it does not know gets the generic chart; "NaN" errors
# are accepted; no results at all is an error.
# Prints "N passed, M failed"; exit status 0 only when nothing failed.
# shellcheck disable=SC2086  # $RUN and $expected: word lists, split on purpose
PLOT=${1:?usage: test_plot.sh tools/plot_results.py python3 path/to/chmbench}
PY=${2:?python3}
BENCH=${3:?chmbench}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...: passes when COMMAND succeeds
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
listed() { "$BENCH" -l | grep -q "^  $1 "; }

# 1. tiny result files; -i 3 gives a real error bar, -i 2 the "NaN" one
RUN="-wi 0 -r 0.01 -f 1"
expected="mix falseshare"
"$BENCH" $RUN -i 3 -t 1,2 -p backend=binlock,ck_ht,unsafe -p keys=100 -p reads=100,50 \
    -rff "$TMP/mix.json" mix >/dev/null 2>&1
check "chmbench mix" [ $? -eq 0 ]
"$BENCH" $RUN -i 2 -t 2 -rff "$TMP/falseshare.json" falseshare >/dev/null 2>&1
check "chmbench falseshare" [ $? -eq 0 ]
for b in memory resize; do
    if listed $b; then
        "$BENCH" $RUN -i 2 -p backend=binlock,ck_ht -p keys=1000 -rff "$TMP/$b.json" $b \
            >/dev/null 2>&1
        check "chmbench $b" [ $? -eq 0 ]
        expected="$expected $b"
    fi
done
if listed group; then
    "$BENCH" $RUN -i 2 -p backend=binlock,ck_ht -p keys=100 -rff "$TMP/group.json" group \
        >/dev/null 2>&1
    check "chmbench group" [ $? -eq 0 ]
    expected="$expected group"
fi
# a benchmark the script has no chart for: the generic one
cat >"$TMP/other.json" <<'EOF'
[{"benchmark": "chm.other", "mode": "thrpt", "threads": 1, "params": {"backend": "binlock"},
  "primaryMetric": {"score": 1.5, "scoreError": "NaN", "scoreUnit": "ops/us", "rawData": [[1.5]]},
  "secondaryMetrics": {}}]
EOF
expected="$expected other"

# 2. the charts
"$PY" "$PLOT" -o "$TMP/png" --suffix=-t "$TMP"/*.json >"$TMP/written.txt" 2>"$TMP/plot.err"
prc=$?
check "plot_results.py exits 0" [ "$prc" -eq 0 ]
[ "$prc" -eq 0 ] || cat "$TMP/plot.err"
for b in $expected; do
    check "$b-t.png is a non-empty PNG, and reported" "$PY" -c '
import struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])  # IHDR
assert w >= 300 and h >= 200 and len(data) > 5000, (w, h, len(data))
assert path in open(sys.argv[2]).read().split(), "not in the output"
' "$TMP/png/$b-t.png" "$TMP/written.txt"
done
check "one PNG per benchmark, nothing else" \
    [ "$(find "$TMP/png" -type f | wc -l)" -eq "$(echo $expected | wc -w)" ]

# 3. nothing to plot is an error
echo '[]' >"$TMP/empty.json"
"$PY" "$PLOT" -o "$TMP/none" "$TMP/empty.json" >/dev/null 2>&1
check "no results: exit 1" [ $? -eq 1 ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
