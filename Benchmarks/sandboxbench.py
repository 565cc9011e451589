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




NODE_COMMAND_MARKER = "##drover-node-command##"


def command_events(directory):
    """The started/finished commands of the nodes' log. A command Drover ran detached (its SSH command is
    Drover's node-command script) stands for the tools it ran on the node, logged under the session that
    started it."""
    with open(os.path.join(directory, "commands.log")) as log:
        records = [json.loads(line) for line in log if line.strip()]
    detached = {r.get("session") for r in records if r.get("event") == "started" and NODE_COMMAND_MARKER in r.get("command", "")}
    events = []
    for record in records:
        event = record.get("event")
        if event in ("started", "finished") and NODE_COMMAND_MARKER not in record.get("command", ""):
            events.append(record)
        elif event in ("tool_started", "tool_finished") and record.get("session") in detached:
            events.append(dict(record, event=event[len("tool_"):]))
    return events


def check_command_order(directory, leader="be1"):
    """The documented order, from the nodes' command log: failover off before the first install, each
    follower's upgrade started only after the previous one finished, failover on before the leader's
    `upgrade --failover`, which comes last. Returns the problems found, or None when the log shows no
    chef-backend-ctl command (a tool that sends its commands inside its own program, as Ansible's modules
    do: then the simulator's state transitions are the check)."""
    events = command_events(directory)
    commands = [record for record in events if record["event"] == "started"]
    if not any("chef-backend-ctl" in record.get("command", "") for record in commands):
        return None
    problems = []
    first_install = next((i for i, r in enumerate(commands) if r["command"].startswith(("dpkg -i", "yum install"))), None)
    first_off = next((i for i, r in enumerate(commands) if r["command"] == "chef-backend-ctl set-cluster-failover off"), None)
    if first_install is None or first_off is None or first_off > first_install:
        problems.append("failover was not turned off before the first install")
    upgrades = [r for r in commands if r["command"].startswith("chef-backend-ctl upgrade")]
    leader_upgrades = [r for r in upgrades if r["command"].endswith("--failover")]
    if len(leader_upgrades) != 1 or leader_upgrades[0]["node"] != leader or upgrades[-1] is not leader_upgrades[0]:
        problems.append(f"not one leader upgrade with --failover, last: {[(r['node'], r['command']) for r in upgrades]}")
    # One upgrade at a time: no upgrade starts while another is running.
    running = 0
    for record in events:
        if record.get("command", "").startswith("chef-backend-ctl upgrade"):
            running += 1 if record["event"] == "started" else -1
            if running > 1:
                problems.append("two upgrades ran at once")
                break
    if leader_upgrades:
        index = commands.index(leader_upgrades[0])
        before = [r["command"] for r in commands[:index] if "set-cluster-failover" in r["command"]]
        if not before or before[-1] != "chef-backend-ctl set-cluster-failover on":
            problems.append("failover was not on when the leader was upgraded with --failover")
    return problems
