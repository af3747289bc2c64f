#!/usr/bin/env python3
"""Issue 4's acceptance checks, `benchfleet bench -N` side by side with `hyperfine -N`.

Builds nothing: pass the release binaries (see docs/benchmarks/measurement.md).

    python3 xtask/scripts/measurement.py --benchfleet target/release/benchfleet \
        --probe target/release/benchfleet-probe [--rounds 20] [--overhead-rounds 7]

1. accuracy and 4. noise: ROUNDS repetitions of each command (`sleep 0.01`, `true`, a ~50 ms
   CPU-bound probe), each command in its own invocation of each tool, the tools alternating
   (and alternating which goes first); the mean of each tool's per-repetition means is
   compared (within 3 % or 0.1 ms), and the spread (standard deviation) of those means.
2. overhead: OVERHEAD_ROUNDS pairs of `hyperfine -N --runs 1000 true` and
   `benchfleet bench -N --runs 1000 true` (fresh store each), alternating order, end-to-end wall
   time; the ratio of each pair and their median.
3. per-run memory: a ~10 MiB and a ~200 MiB allocation benchmarked together.
1b. accuracy of `true` again with LONG_ROUNDS alternating pairs of 1000-run invocations, whose
   means carry little of a tool's start-up transient (a 20-run invocation's do).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, cwd, env=None):
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return elapsed


def means(path):
    with open(path) as f:
        return {r["command"]: r["mean"] for r in json.load(f)["results"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchfleet", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--overhead-rounds", type=int, default=7)
    ap.add_argument("--long-rounds", type=int, default=5)
    a = ap.parse_args()
    bf = os.path.abspath(a.benchfleet)
    probe = os.path.abspath(a.probe)
    hf = shutil.which("hyperfine") or sys.exit("hyperfine is not on PATH (apt-get install hyperfine)")
    work = tempfile.mkdtemp(prefix="bf-measure-")
    env = dict(os.environ, BENCHFLEET_OUTPUT__PROGRESS="none")
    print(f"hyperfine: {subprocess.run([hf, '--version'], capture_output=True, text=True).stdout.strip()}")
    print(f"load average before: {os.getloadavg()}")

    # 1 and 4.
    cmds = ["sleep 0.01", "true", f"{probe} spin 50"]
    names = {"sleep 0.01": "sleep 0.01", "true": "true", cmds[2]: "spin 50 (CPU)"}
    runs = {"hyperfine": {c: [] for c in cmds}, "benchfleet": {c: [] for c in cmds}}
    # Each command in its own invocation of each tool: benchfleet interleaves the commands of
    # one invocation (A B C A B C ...), hyperfine runs them one after the other, so benchmarked
    # together a tiny command runs right after a different one in benchfleet and after itself in
    # hyperfine; measured alone, both see the same conditions.
    for i in range(a.rounds):
        for k, c in enumerate(cmds):
            tools = [
                ("hyperfine", [hf, "-N", "-w", "2", "-r", "20", "--style", "none", c,
                               "--export-json", f"h{i}-{k}.json"], f"h{i}-{k}.json"),
                ("benchfleet", [bf, "bench", "-N", "-w", "2", "-r", "20", c,
                                "--export-json", f"b{i}-{k}.json"], f"b{i}-{k}.json"),
            ]
            if (i + k) % 2:
                tools.reverse()
            for name, cmd, out in tools:
                run(cmd, work, env)
                runs[name][c].extend(means(os.path.join(work, out)).values())
    print(f"\n1/4. {a.rounds} repetitions of each command, -w 2 -r 20, tools alternating; ms")
    print(f"{'command':<16} {'tool':<11} {'mean of means':>14} {'sd of means':>12} {'min':>8} {'max':>8}")
    for c in cmds:
        for tool in ("hyperfine", "benchfleet"):
            xs = [m * 1e3 for m in runs[tool][c]]
            print(f"{names[c]:<16} {tool:<11} {statistics.mean(xs):>14.3f} {statistics.stdev(xs):>12.3f} "
                  f"{min(xs):>8.3f} {max(xs):>8.3f}")
        h = statistics.mean(runs["hyperfine"][c]) * 1e3
        b = statistics.mean(runs["benchfleet"][c]) * 1e3
        sd_h = statistics.stdev(runs["hyperfine"][c]) * 1e3
        sd_b = statistics.stdev(runs["benchfleet"][c]) * 1e3
        ok = abs(b - h) <= max(0.03 * h, 0.1)
        print(f"  accuracy: {b - h:+.3f} ms ({(b - h) / h * 100:+.1f} %) -> {'met' if ok else 'NOT met'}; "
              f"noise: sd {sd_b:.3f} vs {sd_h:.3f} ms -> {'met' if sd_b <= sd_h else 'NOT met'}")

    # 1b. The same accuracy check with long invocations: a 20-run invocation's mean carries its
    # tool's start-up transient (the first runs after the tool started), 1000 runs mostly do not.
    long_means = {"hyperfine": [], "benchfleet": []}
    for i in range(a.long_rounds):
        out = os.path.join(work, f"l{i}.json")
        jobs = [
            ("hyperfine", [hf, "-N", "--runs", "1000", "--style", "none", "true", "--export-json", out]),
            ("benchfleet", [bf, "bench", "-N", "--runs", "1000", "true", "--export-json", out]),
        ]
        if i % 2:
            jobs.reverse()
        for name, cmd in jobs:
            run(cmd, work, env)
            long_means[name].append(means(out)["true"])
    if a.long_rounds:
        h = statistics.mean(long_means["hyperfine"]) * 1e3
        b = statistics.mean(long_means["benchfleet"]) * 1e3
        ok = abs(b - h) <= max(0.03 * h, 0.1)
        print(f"\n1b. accuracy of true with 1000 runs per invocation ({a.long_rounds} alternating pairs); ms")
        print(f"  hyperfine {h:.3f}  benchfleet {b:.3f}  difference {b - h:+.3f} ms ({(b - h) / h * 100:+.1f} %) -> {'met' if ok else 'NOT met'}")

    # 2.
    pairs = []
    for i in range(a.overhead_rounds):
        store = os.path.join(work, f"o{i}")
        os.makedirs(store)
        jobs = [
            ("hyperfine", lambda: run([hf, "-N", "--runs", "1000", "--style", "none", "true"], store, env)),
            ("benchfleet", lambda: run([bf, "bench", "-N", "--runs", "1000", "true"], store, env)),
        ]
        if i % 2:
            jobs.reverse()
        t = dict((name, f()) for name, f in jobs)
        pairs.append((t["hyperfine"], t["benchfleet"]))
    ratios = [b / h for h, b in pairs]
    print(f"\n2. overhead, 1000 runs of true, end to end ({a.overhead_rounds} alternating pairs)")
    for (h, b), r in zip(pairs, ratios):
        print(f"  hyperfine {h:.3f} s  benchfleet {b:.3f} s  ratio {r:.2f}")
    med = statistics.median(ratios)
    print(f"  median ratio {med:.2f} -> {'met' if med <= 1.0 else 'NOT met'} (target <= 1.0)")

    # 3.
    run([bf, "bench", "-N", "-r", "5", f"{probe} alloc 10", f"{probe} alloc 200",
         "--export-json", "mem.json"], work, env)
    with open(os.path.join(work, "mem.json")) as f:
        res = json.load(f)["results"]
    print("\n3. per-run peak RSS (MiB), the two commands interleaved")
    for r in res:
        mib = [m / 2**20 for m in r["memory_usage_byte"]]
        print(f"  {r['command'].replace(probe, 'benchfleet-probe')}: {', '.join(f'{x:.1f}' for x in mib)}")
    print(f"\nload average after: {os.getloadavg()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
