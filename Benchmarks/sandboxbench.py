"""What the sandbox benchmarks share: running a tool measured, counting remote commands, and checking an
upgrade's order and outcome from the simulator's own state (whatever tool did it)."""
import json
import os
import subprocess
import threading
import time


def run_measured(argv, cwd, env, log):
    """Runs argv with its output in `log`; returns (exit status, wall seconds, CPU seconds of it and its
    children, peak RSS in KiB, the most threads it had at once, sampled every 20 ms)."""
    with open(log, "wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    with open(f"/proc/{process.pid}/status") as status:
                        for line in status:
                            if line.startswith("Threads:"):
                                peak[0] = max(peak[0], int(line.split()[1]))
                except OSError:
                    pass
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        done.set()
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, peak[0]


def remote_commands(directory):
    with open(os.path.join(directory, "commands.log")) as log:
        return sum(1 for line in log if json.loads(line).get("event") == "started")


def check_invariants(directory, target):
    """The ordering and outcome of an upgrade, from the simulator's state; returns the problems found."""
    with open(os.path.join(directory, "state.json")) as file:
        state = json.load(file)
    problems = []
    if state.get("outages"):
        problems.append(f"outages: {state['outages']}")
    nodes = {node["name"]: node for node in state["nodes"]}
    phase = {name: "synced" for name in nodes}
    upgrades = {name: 0 for name in nodes}
    order = []
    for transition in state.get("transitions", []):
        name, new = transition["node"], transition["to"]
        if new.startswith("leader:") or name not in phase:
            continue
        if phase[name] == "synced" and new != "synced":
            upgrades[name] += 1
            order.append(name)
        phase[name] = new
        out = [node for node, now in phase.items() if now != "synced"]
        if len(out) > 1:
            problems.append(f"two nodes out at once: {out}")
    for name, count in upgrades.items():
        if count != 1:
            problems.append(f"{name} went out {count} times")
    leader_changes = [t for t in state.get("transitions", []) if t["to"].startswith("leader:")]
    if not leader_changes:
        problems.append("the leader never moved (no upgrade --failover)")
    elif order and order[-1] != leader_changes[0]["from"].split(":", 1)[1]:
        problems.append(f"the leader {leader_changes[0]['from']} was not upgraded last: {order}")
    versions = {name: node.get("runningVersion") for name, node in nodes.items()}
    if any(version != target for version in versions.values()):
        problems.append(f"versions {versions}, target {target}")
    if not state.get("clusterFailover", False):
        problems.append("cluster failover left off")
    return problems, order


