#!/bin/sh
# Issue 21's real-machine verdict experiments: measure, then compare (see docs/STATISTICS.md).
#
#   verdicts.sh collect BIN OUT PAIRS ITERATIONS   measure PAIRS rounds of:
#       sep-a-I.json   bench A (default settings), one invocation
#       sep-s-I.json   bench S = A with 10% more loop iterations, one invocation
#       h2h-I.json     bench --reference A  A  S  (interleaved, one invocation, -r RUNS)
# The comparisons and the tally are verdicts.py's.
#
#   verdicts.sh detect BIN OUT PAIRS ITERATIONS    measure PAIRS rounds of:
#       det-I.json   bench --reference A  A  S --detect 0.1 (head-to-head, runs sized from the
#                    noise until +10% could be detected, at most DETECT_MAX_TIME, default 5m)
#   then tally them: A against the reference is the A/A case, S the +10% one.
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
if [ "$what" = detect ]; then
    PAIRS=$4 N=$5
    S=$((N + N / 10))
    A="awk -v n=$N -f $here/loop.awk"
    SLOW="awk -v n=$S -f $here/loop.awk"
    cd "$OUT/store"
    echo "# detect started $(date -u +%FT%TZ) on $(uname -n), $(nproc) CPUs, A: $A, S: $SLOW; $(uptime)" >> "$OUT/collect.log"
    i=0
    while [ "$i" -lt "$PAIRS" ]; do
        t0=$(date +%s.%N)
        "$BIN" bench --reference "$A" --reference-name base -n A -n S "$A" "$SLOW" --detect 0.1 \
            --detect-max-time "${DETECT_MAX_TIME:-5m}" \
            --export-json "$OUT/det-$i.json" --style none > "$OUT/det-$i.out" 2>&1 || true
        t1=$(date +%s.%N)
        echo "$i $t0 $t1 $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/det-times.txt"
        i=$((i + 1))
        if [ $((i % 5)) -eq 0 ]; then rm -rf "$OUT/store/.benchfleet"; fi
    done
    python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
rows = []
for f in sorted(glob.glob(f"{out}/det-*.json")):
    v = json.load(open(f))
    by = {x.get("command_name") or x["command"]: x for x in v["results"]}
    a, s = by.get("A"), by.get("S")
    if not a or not s or "comparison" not in a or "comparison" not in s:
        continue
    rows.append((a["comparison"]["verdict"], s["comparison"]["verdict"], len(a["times"]),
                 s["comparison"]["assessment"]["min_detectable"]))
times = [float(l.split()[2]) - float(l.split()[1]) for l in open(f"{out}/det-times.txt")]
loads = [float(l.split()[3]) for l in open(f"{out}/det-times.txt")]
n = len(rows)
if n:
    aa = sum(1 for r in rows if r[0] == "regressed")
    hit = sum(1 for r in rows if r[1] == "regressed")
    print(json.dumps({
        "pairs": n,
        "aa_regressed": aa, "aa_rate": aa / n,
        "plus10_regressed": hit, "plus10_rate": hit / n,
        "runs_median": statistics.median(r[2] for r in rows),
        "runs_max": max(r[2] for r in rows),
        "min_detectable_median": statistics.median(r[3] for r in rows),
        "wall_s_median": statistics.median(times),
        "load_median": statistics.median(loads),
        "verdicts_plus10": {v: sum(1 for r in rows if r[1] == v) for v in {r[1] for r in rows}},
    }))
PY
fi
