#!/usr/bin/env python3
"""The fleet's figures (issue 16), with the release binary and a PostgreSQL server.

    python3 xtask/scripts/fleet_bench.py --benchfleet target/release/benchfleet \
        --url postgres://postgres@127.0.0.1:55432/bench [--only enqueue,dag,scaling,kill,latency]

Each part uses fresh working directories (one per worker: separate machines' stand-ins) and a
schema of its own. Workers are `benchfleet worker` processes; times are wall clock around the
processes. Prints one JSON object per part.

- enqueue: `submit` of a 10,000-node random DAG (0-3 earlier `needs` each), 5 times; the whole
  command (start, connect, parse, insert).
- dag: that DAG of `touch` jobs run by 3 workers (`--jobs 1` each) against `run -j 2` on the
  embedded default in one directory, alternating, ROUNDS rounds; the ratio fleet / local.
- scaling: 2,000 `sleep 0.05` jobs on 1, 2, 4 and 8 workers at `--jobs 4`: from starting the
  workers to the last one exiting (`--until-idle`); efficiency = ideal / measured, ideal =
  2000 x 0.05 s / (workers x 4).
- kill: a worker holding a `sleep 30` job is SIGKILLed; the time until a waiting worker prints
  its claim of attempt 2. ROUNDS times; p50 and p95.
- latency: a chain of 200 `true` jobs on one worker; per edge, the child's start minus the
  parent's end (record start + wall, from the catalog); p50 and p95.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def config(url, schema):
    return (f'[storage.catalog]\nbackend = "postgres"\nurl = "{url}"\nschema = "{schema}"\n'
            'max_connections = 4\n')


class Env:
    def __init__(self, args):
        self.bin = os.path.abspath(args.benchfleet)
        self.url = args.url
        self.root = tempfile.mkdtemp(prefix="fleet-bench-")
        self.n = 0

    def fleet(self, machines):
        """`machines` directories sharing a fresh schema."""
        self.n += 1
        schema = f"fb_{os.getpid()}_{self.n}_{int(time.time())}"
        dirs = []
        for i in range(machines):
            d = os.path.join(self.root, f"{schema}_{i}")
            os.makedirs(d)
            with open(os.path.join(d, "benchfleet.toml"), "w") as f:
                f.write(config(self.url, schema))
            dirs.append(d)
        return schema, dirs

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith("BENCHFLEET_")}
        e["BENCHFLEET_OUTPUT__PROGRESS"] = "none"
        e.update(extra)
        return e

    def submit(self, d, suite_text):
        with open(os.path.join(d, "suite.toml"), "w") as f:
            f.write(suite_text)
        out = subprocess.run([self.bin, "submit", "suite.toml"], cwd=d, env=self.env(),
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"submit failed: {out.stderr}")
        return out.stdout.strip()

    def workers(self, dirs, args):
        return [subprocess.Popen([self.bin, "worker", *args], cwd=d, env=self.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for d in dirs]

    def psql(self, sql):
        out = subprocess.run(["psql", self.url, "-X", "-A", "-t", "-F", " ", "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"psql: {out.stderr}")
        return out.stdout


def wait_all(procs):
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"worker failed ({p.returncode}): {err[-2000:]}")


def dag_suite(nodes, seed=7, touch_dir=None):
    rng = random.Random(seed)
    lines = ['[suite]\nname = "dag"\n']
    for i in range(nodes):
        deps = sorted(set(rng.randrange(i) for _ in range(rng.randint(0, 3)))) if i else []
        target = f"{touch_dir}/n{i}" if touch_dir else f"{{out}}/t"
        lines.append(f'[[job]]\nname = "n{i}"\ncommand = "touch {target}"\n')
        if deps:
            lines.append("needs = [" + ", ".join(f'"n{d}"' for d in deps) + "]\n")
    return "".join(lines)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def enqueue(env, args):
    text = dag_suite(10_000)
    times = []
    for _ in range(5):
        _, dirs = env.fleet(1)
        with open(os.path.join(dirs[0], "suite.toml"), "w") as f:
            f.write(text)
        t = time.perf_counter()
        out = subprocess.run([env.bin, "submit", "suite.toml"], cwd=dirs[0], env=env.env(),
                             capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            sys.exit(out.stderr)
    return {"part": "enqueue", "nodes": 10_000, "seconds": times,
            "median_s": statistics.median(times)}


def dag(env, args):
    fleet_t, local_t = [], []
    for r in range(args.rounds):
        order = ["fleet", "local"] if r % 2 == 0 else ["local", "fleet"]
        for which in order:
            if which == "fleet":
                _, dirs = env.fleet(3)
                env.submit(dirs[0], dag_suite(10_000))
                t = time.perf_counter()
                wait_all(env.workers(dirs, ["--until-idle", "--jobs", "1"]))
                fleet_t.append(time.perf_counter() - t)
            else:
                d = tempfile.mkdtemp(dir=env.root)
                with open(os.path.join(d, "suite.toml"), "w") as f:
                    f.write(dag_suite(10_000))
                t = time.perf_counter()
                out = subprocess.run([env.bin, "run", "suite.toml", "-j", "2", "--no-cache"],
                                     cwd=d, env=env.env(), capture_output=True, text=True)
                local_t.append(time.perf_counter() - t)
                if out.returncode != 0:
                    sys.exit(out.stderr[-2000:])
    ratios = [f / l for f, l in zip(fleet_t, local_t)]
    return {"part": "dag", "nodes": 10_000, "fleet_3_workers_s": fleet_t,
            "run_j2_s": local_t, "ratios": ratios, "median_ratio": statistics.median(ratios)}


def scaling(env, args):
    suite = ('[suite]\nname = "sleeps"\n[[job]]\nname = "s-{i}"\ncommand = "sleep 0.05"\n'
             'matrix = { i = [' + ", ".join(str(i) for i in range(2000)) + "] }\n")
    out = {"part": "scaling", "jobs": 2000, "per_worker": 4, "runs": []}
    for n in [1, 2, 4, 8]:
        _, dirs = env.fleet(n)
        env.submit(dirs[0], suite)
        t = time.perf_counter()
        wait_all(env.workers(dirs, ["--until-idle", "--jobs", "4"]))
        secs = time.perf_counter() - t
        ideal = 2000 * 0.05 / (n * 4)
        out["runs"].append({"workers": n, "seconds": secs, "ideal_s": ideal,
                            "efficiency": ideal / secs})
    return out


def kill(env, args):
    delays = []
    for _ in range(args.rounds):
        _, dirs = env.fleet(2)
        run = env.submit(dirs[0], '[suite]\nname = "k"\n[[job]]\nname = "long"\n'
                                  'command = "sleep 30"\n')
        victim = env.workers(dirs[:1], [])[0]
        for line in victim.stderr:
            if "long: claimed" in line:
                break
        rescuer = env.workers(dirs[1:], ["--until-idle"])[0]
        for line in rescuer.stderr:
            if "serving pool" in line:
                break
        claimed = threading.Event()
        stamp = {}

        def watch():
            for line in rescuer.stderr:
                if "long: claimed (attempt 2)" in line:
                    stamp["t"] = time.perf_counter()
                    claimed.set()
                    break
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        time.sleep(0.3)
        t0 = time.perf_counter()
        victim.kill()
        victim.wait()
        if not claimed.wait(60):
            sys.exit("no re-claim within 60 s")
        delays.append(stamp["t"] - t0)
        subprocess.run([env.bin, "fleet", "cancel", run], cwd=dirs[1], env=env.env(),
                       capture_output=True)
        rescuer.wait(60)
    return {"part": "kill", "rounds": len(delays), "seconds": delays,
            "p50_s": pct(delays, 50), "p95_s": pct(delays, 95)}


def latency(env, args):
    schema, dirs = env.fleet(1)
    n = 200
    suite = '[suite]\nname = "chain"\n' + "".join(
        f'[[job]]\nname = "c{i}"\ncommand = "true"\n' + (f'needs = ["c{i-1}"]\n' if i else "")
        for i in range(n))
    run = env.submit(dirs[0], suite)
    wait_all(env.workers(dirs, ["--until-idle"]))
    rows = env.psql(f'SELECT name, started_ns, wall_ns FROM "{schema}".bf_records '
                    f"WHERE run_id = '{run}'")
    recs = {}
    for line in rows.split("\n"):
        if line.strip():
            name, start, wall = line.split(" ")
            recs[name] = (int(start), int(wall))
    gaps = [(recs[f"c{i}"][0] - sum(recs[f"c{i-1}"])) / 1e6 for i in range(1, n)]
    return {"part": "latency", "edges": len(gaps), "p50_ms": pct(gaps, 50),
            "p95_ms": pct(gaps, 95), "max_ms": max(gaps)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--benchfleet", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="enqueue,dag,scaling,kill,latency")
    args = p.parse_args()
    env = Env(args)
    try:
        for part in args.only.split(","):
            print(json.dumps(globals()[part](env, args)), flush=True)
    finally:
        shutil.rmtree(env.root, ignore_errors=True)


if __name__ == "__main__":
    main()
