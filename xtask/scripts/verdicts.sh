#!/bin/sh
# Issue 21's real-machine verdict experiments: measure, then compare (see docs/STATISTICS.md).
#
#   verdicts.sh collect BIN OUT PAIRS ITERATIONS   measure PAIRS rounds of:
#       sep-a-I.json   bench A (default settings), one invocation
#       sep-s-I.json   bench S = A with 10% more loop iterations, one invocation
#       h2h-I.json     bench --reference A  A  S  (interleaved, one invocation, -r RUNS)
# The comparisons and the tally are verdicts.py's.
#
# Each bench works in its own scratch directory (OUT/store), so nothing touches a project's store.
set -eu
what=$1 BIN=$(realpath "$2") OUT=$(realpath -m "$3")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/store"
if [ "$what" = collect ]; then
    PAIRS=$4 N=$5 RUNS=${H2H_RUNS:-40}
    S=$((N + N / 10))
    A="awk -v n=$N -f $here/loop.awk"
    SLOW="awk -v n=$S -f $here/loop.awk"
    cd "$OUT/store"
    {
        echo "# started $(date -u +%FT%TZ) on $(uname -n), $(nproc) CPUs, A: $A, S: $SLOW, h2h runs $RUNS"
        uptime
    } >> "$OUT/collect.log"
    i=0
    while [ "$i" -lt "$PAIRS" ]; do
        t0=$(date +%s.%N)
        "$BIN" bench -n A "$A" --export-json "$OUT/sep-a-$i.json" --style none > /dev/null 2>&1
        t1=$(date +%s.%N)
        "$BIN" bench -n A "$SLOW" --export-json "$OUT/sep-s-$i.json" --style none > /dev/null 2>&1
        t2=$(date +%s.%N)
        "$BIN" bench -r "$RUNS" --reference "$A" --reference-name base -n A -n S "$A" "$SLOW" \
            --export-json "$OUT/h2h-$i.json" --style none > "$OUT/h2h-$i.out" 2>&1
        t3=$(date +%s.%N)
        echo "$i $t0 $t1 $t2 $t3 $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/times.txt"
        i=$((i + 1))
        # keep the scratch store small
        if [ $((i % 20)) -eq 0 ]; then rm -rf "$OUT/store/.benchfleet"; fi
    done
    echo "# finished $(date -u +%FT%TZ)" >> "$OUT/collect.log"
fi
