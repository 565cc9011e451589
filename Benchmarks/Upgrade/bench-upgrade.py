#!/usr/bin/env python3
"""make bench-upgrade: the full sandbox upgrade (2.3.15 -> 2.3.16, three nodes, zero simulator delays) by
Drover (the release binary), by the reference bash + OpenSSH ControlMaster script and by Ansible, in
interleaved rounds on fresh sandboxes. Each run is checked from the simulator's own state (no outage,
never two nodes out at once, every node upgraded once, the leader last, all at the target, failover on)
and, where the nodes' command log shows the commands (Drover, the script; Ansible's modules carry theirs
inside), from the log: failover off before the first install, one upgrade at a time, failover on before
the leader's `upgrade --failover`, which is last. Reports wall time, CPU, peak RSS and remote commands
per tool, and the ratios, in one table.

  bench-upgrade.py --drover BIN --sandbox BIN [--ansible-playbook BIN] [--rounds N] [--json FILE]
                   [--compare NAME=BIN ...]

--compare adds another drover build (an older release, say) to the same interleaved rounds, so that a
change's cost is measured side by side: `make bench-upgrade BENCH_COMPARE="before=/tmp/drover-old"`.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from sandboxbench import check_command_order, check_invariants, remote_commands, run_measured  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drover", required=True)
    parser.add_argument("--sandbox", required=True, help="drover-sandbox (its chef-backend-sim beside it)")
    parser.add_argument("--ansible-playbook", help="ansible-playbook of a virtual environment; without it, no Ansible")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=BIN",
                        help="another drover build measured in the same rounds (repeatable)")
    args = parser.parse_args()
    builds = {"drover": args.drover}
    for item in args.compare:
        name, _, path = item.partition("=")
        if not name or not path or name in ("drover", "reference", "ansible"):
            parser.error(f"--compare {item}: give NAME=BIN, NAME other than drover, reference and ansible")
        builds[name] = path

    tools = list(builds) + ["reference"] + (["ansible"] if args.ansible_playbook else [])
    results = {tool: [] for tool in tools}
    base = tempfile.mkdtemp(prefix="bench-upgrade.")
    try:
        for round_number in range(args.rounds):
            # Interleaved, and each round in another order, so a slow moment of the machine hits every tool.
            shift = round_number % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                directory = os.path.join(base, f"{tool}-{round_number}")
                subprocess.run([args.sandbox, "up", "--delay-scale", "0", "--dir", directory],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                try:
                    with open(os.path.join(directory, "inventory.yml")) as file:
                        inventory = file.read()
                    target = inventory.split("\n  version: ")[1].split()[0]
                    package = inventory.split("\n  path: ")[1].split()[0]
                    open(os.path.join(directory, "commands.log"), "w").close()
                    env = dict(os.environ, HOME=os.path.join(directory, "home"), NO_COLOR="1")
                    os.makedirs(env["HOME"], exist_ok=True)
                    if tool in builds:
                        argv = [builds[tool], "upgrade", "--inventory", "inventory.yml", "--yes"]
                    elif tool == "reference":
                        argv = ["bash", os.path.join(HERE, "reference-upgrade.sh"), directory]
                    else:
                        argv = ansible_argv(args.ansible_playbook, directory, package, target, env)
                    status, wall, cpu, rss, _ = run_measured(argv, directory, env, os.path.join(directory, "output.txt"))
                    problems, order = check_invariants(directory, target)
                    problems += check_command_order(directory) or []
                    if status != 0:
                        problems.insert(0, f"exit status {status} (output: {directory}/output.txt)")
                    commands = remote_commands(directory)
                    results[tool].append({"wall_s": wall, "cpu_s": cpu, "peak_rss_kib": rss, "remote_commands": commands,
                                          "order": order, "problems": problems})
                    print(f"round {round_number + 1} {tool:9s} {wall:6.2f}s  cpu {cpu:5.2f}s  rss {rss / 1024:6.1f} MiB  "
                          f"{commands:4d} commands  order {'>'.join(order)}  {'OK' if not problems else '; '.join(problems)}",
                          file=sys.stderr)
                    if problems:
                        shutil.copytree(directory, directory + ".failed", ignore=shutil.ignore_patterns("sshd", "bin"),
                                        dirs_exist_ok=True)
                finally:
                    subprocess.run([args.sandbox, "down", "--dir", directory], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.STDOUT)
        report(results, tools)
        if args.json:
            with open(args.json, "w") as file:
                json.dump(results, file, indent=2)
        failed = [tool for tool in tools if any(run["problems"] for run in results[tool])]
        if failed:
            print(f"bench-upgrade: invariants broken by {', '.join(failed)} (kept under {base})", file=sys.stderr)
            return 1
    finally:
        if not any(run["problems"] for runs in results.values() for run in runs):
            shutil.rmtree(base, ignore_errors=True)
    return 0


def ansible_argv(playbook, directory, package, target, env):
    hosts = os.path.join(directory, "ansible-hosts.ini")
    with open(hosts, "w") as file:
        file.write("[backends]\nbe1\nbe2\nbe3\n[backends:vars]\nansible_user=root\n"
                   "ansible_python_interpreter=/usr/bin/python3\n")
    config = os.path.join(directory, "ansible.cfg")
    with open(config, "w") as file:
        file.write("[defaults]\nhost_key_checking = True\nforks = 5\nretry_files_enabled = False\n"
                   "[ssh_connection]\npipelining = True\n"
                   f"ssh_args = -F {directory}/ssh_config -o ControlMaster=auto -o ControlPersist=60s\n"
                   f"control_path_dir = {directory}/cp\n")
    env["ANSIBLE_CONFIG"] = config
    env["ANSIBLE_LOCAL_TEMP"] = os.path.join(directory, "ansible-tmp")
    return [playbook, "-i", hosts, os.path.join(HERE, "ansible-upgrade.yml"),
            "-e", f"package={package}", "-e", f"target={target}", "-e", "retries=60"]


def report(results, tools):
    """The table: medians per tool, and the ratios of wall times within each round (the same moment of the
    machine), their median."""
    def median(tool, key):
        return statistics.median(run[key] for run in results[tool])

    def ratio(tool, against):
        if against not in results:
            return "-"
        pairs = zip(results[tool], results[against])
        return f"{statistics.median(mine['wall_s'] / theirs['wall_s'] for mine, theirs in pairs):.2f}x"

    builds = [tool for tool in tools if tool not in ("reference", "ansible")]
    extra = builds[1:]
    print("| tool | wall (median) | CPU | peak RSS | remote commands | wall vs reference | wall vs Ansible |"
          + "".join(f" wall vs {name} |" for name in extra))
    print("| --- | --- | --- | --- | --- | --- | --- |" + " --- |" * len(extra))
    for tool in tools:
        print(f"| {tool} | {median(tool, 'wall_s'):.2f} s | {median(tool, 'cpu_s'):.2f} s | "
              f"{max(run['peak_rss_kib'] for run in results[tool]) / 1024:.1f} MiB | {median(tool, 'remote_commands'):.0f} | "
              f"{ratio(tool, 'reference')} | {ratio(tool, 'ansible')} |" + "".join(f" {ratio(tool, name)} |" for name in extra))
    print(f"(ratios: the median over {len(results[tools[0]])} rounds of the wall times' ratio within a round)")


if __name__ == "__main__":
    sys.exit(main())
