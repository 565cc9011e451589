#!/usr/bin/env python3
"""make bench-fleet: one `drover upgrade` of a fleet of sandbox clusters (default 20 clusters, 60 backends,
the sandbox's default delays), against the same upgrade of one cluster alone, timed just before and just
after it on the same machine. Reports the fleet's wall time as a ratio of one cluster's, its peak RSS and
the most threads it had at once, and checks every cluster's upgrade from the simulator's state.

  bench-fleet.py --drover BIN --sandbox BIN [--clusters 20] [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from sandboxbench import check_command_order, check_invariants, run_measured  # noqa: E402


def up(sandbox, directory, cluster):
    subprocess.run([sandbox, "up", "--dir", directory, "--cluster", cluster], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    with open(os.path.join(directory, "inventory.yml")) as file:
        return file.read().split("\n  version: ")[1].split()[0]


def down(sandbox, directory):
    subprocess.run([sandbox, "down", "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def solo(args, base, label):
    """One cluster alone, on a sandbox of its own: (wall seconds, problems)."""
    directory = os.path.join(base, label)
    target = up(args.sandbox, directory, label)
    try:
        env = dict(os.environ, HOME=os.path.join(base, "home-" + label), NO_COLOR="1")
        os.makedirs(env["HOME"])
        status, wall, _, rss, threads = run_measured(
            [args.drover, "upgrade", "--inventory", os.path.join(directory, "inventory.yml"), "--yes"],
            directory, env, os.path.join(base, label + ".out"))
        problems, _ = check_invariants(directory, target)
        problems += check_command_order(directory) or []
        if status != 0:
            problems.insert(0, f"exit status {status}")
        print(f"{label}: one cluster {wall:.1f}s, rss {rss / 1024:.1f} MiB, {threads} threads "
              f"{'OK' if not problems else '; '.join(problems)}", file=sys.stderr)
        return wall, rss, threads, problems
    finally:
        down(args.sandbox, directory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drover", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="bench-fleet.")
    names = [f"c{number:02d}" for number in range(1, args.clusters + 1)]
    problems = []
    try:
        before = solo(args, base, "solo-before")
        inventories = os.path.join(base, "inventories")
        os.makedirs(inventories)
        targets = {}
        try:
            for name in names:
                targets[name] = up(args.sandbox, os.path.join(base, name), name)
                shutil.copy(os.path.join(base, name, "inventory.yml"), os.path.join(inventories, name + ".yml"))
            env = dict(os.environ, HOME=os.path.join(base, "home-fleet"), NO_COLOR="1")
            os.makedirs(env["HOME"])
            status, wall, cpu, rss, threads = run_measured(
                [args.drover, "upgrade", "--inventories", inventories, "--parallel", str(args.clusters), "--yes"],
                base, env, os.path.join(base, "fleet.out"))
            if status != 0:
                problems.append(f"fleet exit status {status} (output: {base}/fleet.out)")
            for name in names:
                found, _ = check_invariants(os.path.join(base, name), targets[name])
                found += check_command_order(os.path.join(base, name)) or []
                problems += [f"{name}: {problem}" for problem in found]
        finally:
            for name in names:
                down(args.sandbox, os.path.join(base, name))
        after = solo(args, base, "solo-after")
        problems += before[3] + after[3]
        one = statistics.mean([before[0], after[0]])
        result = {"clusters": args.clusters, "backends": 3 * args.clusters, "one_cluster_wall_s": one,
                  "fleet_wall_s": wall, "ratio": wall / one, "fleet_cpu_s": cpu, "fleet_peak_rss_mib": rss / 1024,
                  "fleet_peak_threads": threads, "one_cluster_peak_threads": before[2]}
        print("| clusters | backends | one cluster | fleet | fleet / one | fleet peak RSS | fleet peak threads (one cluster) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(f"| {args.clusters} | {3 * args.clusters} | {one:.1f} s | {wall:.1f} s | {wall / one:.2f}x | "
              f"{rss / 1024:.1f} MiB | {threads} ({before[2]}) |")
        if args.json:
            with open(args.json, "w") as file:
                json.dump(result, file, indent=2)
        if problems:
            print("bench-fleet: " + "; ".join(problems) + f" (kept under {base})", file=sys.stderr)
            return 1
        shutil.rmtree(base, ignore_errors=True)
        return 0
    except BaseException:
        print(f"bench-fleet: stopped; its files are under {base}", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
