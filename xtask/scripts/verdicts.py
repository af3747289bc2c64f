#!/usr/bin/env python3
"""Issue 21's verdict rates on a real machine, from the files `verdicts.sh collect` measured.

    verdicts.py BIN OUT [--invocations 3,5]

Every comparison goes through the real `BIN compare --format json` (separate invocations) or
is read from the head-to-head `bench --reference` export; nothing is re-implemented here.
Prints one table (Markdown) of rates, detectable changes and costs, and writes every
comparison's verdict line to OUT/verdicts.tsv.
"""
import json, os, statistics as st, subprocess, sys

BIN, OUT = sys.argv[1], sys.argv[2]
KS = [int(k) for k in sys.argv[sys.argv.index("--invocations") + 1].split(",")] if "--invocations" in sys.argv else [3, 5]

def files(prefix):
    out, i = [], 0
    while os.path.exists(f"{OUT}/{prefix}-{i}.json"):
        out.append(f"{OUT}/{prefix}-{i}.json")
        i += 1
    return out

a, s, h = files("sep-a"), files("sep-s"), files("h2h")
n = min(len(a), len(s), len(h))
a, s, h = a[:n], s[:n], h[:n]
rows = []
tsv = open(f"{OUT}/verdicts.tsv", "w")

def compare(case, base, cand, *extra):
    out = subprocess.run([BIN, "compare", base, cand, "--format", "json", *extra],
                         capture_output=True, text=True, cwd=f"{OUT}/store")
    if out.returncode not in (0, 1):
        raise SystemExit(f"compare failed: {out.stderr}")
    c = json.loads(out.stdout)["comparisons"][0]
    tsv.write(f"{case}\t{base}\t{cand}\t{c['verdict']}\t{c['change_percent']:.2f}\t{c['assessment_text']}\n")
    return c

def tally(case, comps, want):
    v = [c["verdict"] for c in comps]
    mdc = st.median(c["assessment"]["min_detectable"] for c in comps) * 100
    band = st.median(c["assessment"]["band"] for c in comps) * 100
    rows.append((case, len(v), v.count("regressed"), v.count("improved"), v.count("unchanged"),
                 v.count("inconclusive"), want, band, mdc,
                 st.median(c["change_percent"] for c in comps)))

# Separate invocations, one a side (defaults; and with no assumed between-invocation noise,
# which is what compare did before issue 21).
aa = [compare("sep-aa", a[i], a[i + 1]) for i in range(n - 1)]
tally("A/A, separate invocations, default", aa, "regressed")
aa0 = [compare("sep-aa-old", a[i], a[i + 1], "--assume-between", "0") for i in range(n - 1)]
tally("A/A, separate invocations, --assume-between 0 (before)", aa0, "regressed")
ab = [compare("sep-ab", a[i], s[i]) for i in range(n)]
tally("+10%, separate invocations, default", ab, "regressed")
ab0 = [compare("sep-ab-old", a[i], s[i], "--assume-between", "0") for i in range(n)]
tally("+10%, separate invocations, --assume-between 0 (before)", ab0, "regressed")
# Multi-invocation: K invocations a side (sliding windows over the pairs).
j = lambda xs: ",".join(xs)
for K in KS:
    # A/A: the even and the odd separate invocations of A, interleaved in time as the two
    # builds' invocations of a real multi-invocation comparison are (and as A and S are here).
    maa = [compare(f"multi{K}-aa", j(a[i:i + 2 * K:2]), j(a[i + 1:i + 2 * K:2])) for i in range(n - 2 * K + 1)]
    tally(f"A/A, {K} invocations a side, interleaved in time", maa, "regressed")
    # A/A, the first K against the next K: a load that changes over minutes is not cancelled.
    mseq = [compare(f"multi{K}-aa-seq", j(a[i:i + K]), j(a[i + K:i + 2 * K])) for i in range(n - 2 * K + 1)]
    tally(f"A/A, {K} invocations a side, one side after the other", mseq, "regressed")
    mab = [compare(f"multi{K}-ab", j(a[i:i + K]), j(s[i:i + K])) for i in range(n - K + 1)]
    tally(f"+10%, {K} invocations a side", mab, "regressed")

# Head-to-head: the verdicts bench --reference exported.
def h2h(name):
    out = []
    for f in h:
        r = next(r for r in json.load(open(f))["results"] if r["command"] == name)
        c = r["comparison"]
        tsv.write(f"h2h-{name}\t{f}\t\t{c['verdict']}\t{c['change_percent']:.2f}\t{c['assessment_text']}\n")
        out.append(c)
    return out
hA, hS = h2h("A"), h2h("S")
tally("A/A, head-to-head", hA, "regressed")
tally("+10%, head-to-head", hS, "regressed")
# Head-to-head by the machine's load (1-minute load average when the pair finished).
loads = [float(l.split()[5]) for l in open(f"{OUT}/times.txt")][:n]
for lo, hi in [(0, 4), (4, 8), (8, 1e9)]:
    idx = [i for i, l in enumerate(loads) if lo <= l < hi]
    if idx:
        tally(f"+10%, head-to-head, load {lo}–{hi if hi < 1e9 else '∞'}", [hS[i] for i in idx], "regressed")
# Runs head-to-head needs for 95% power at +10% (α = 1%), from the noise each comparison saw.
need = [2 * ((2.576 + 1.645) * c["assessment"]["within_cv"] / 0.10) ** 2 for c in hS]

# The machine: between-invocation spread of the separate A invocations, within-run CV.
means = [json.load(open(f))["results"][0]["mean"] for f in a]
sds = [json.load(open(f))["results"][0]["stddev"] / json.load(open(f))["results"][0]["mean"] for f in a]
runs = [len(json.load(open(f))["results"][0]["times"]) for f in a]
import math
logs = [math.log(m) for m in means]
print(f"pairs {n}; A mean {st.mean(means)*1e3:.2f} ms; runs per separate invocation median {st.median(runs)}; "
      f"within-invocation CV median {st.median(sds)*100:.1f}%; between-invocation CV (sd of log means) {st.stdev(logs)*100:.2f}%")
times = [list(map(float, l.split()[1:5])) for l in open(f"{OUT}/times.txt")][:n]
print(f"wall time per invocation: separate {st.median(t[1]-t[0] for t in times):.1f} s, "
      f"head-to-head with 3 commands {st.median(t[3]-t[2] for t in times):.1f} s (median)")
print(f"head-to-head: runs per command {len(json.load(open(h[0]))['results'][0]['times'])}; runs a side for 95% power at +10% from the noise seen (median) {st.median(need):.0f}")
print()
print("| case | pairs | regressed | improved | unchanged | inconclusive | band (median) | detectable at 95% power (median) | change (median) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (case, m, r, i, u, inc, _, band, mdc, ch) in rows:
    print(f"| {case} | {m} | {r} ({100*r/m:.1f}%) | {i} | {u} | {inc} | ±{band:.1f}% | ±{mdc:.1f}% | {ch:+.1f}% |")
