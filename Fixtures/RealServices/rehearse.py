#!/usr/bin/python3
"""`make rehearse`: the rolling upgrade of a sandbox standing on a real data layer (`drover-sandbox up --real`),
under a steady write load, by three procedures, each on a cluster set up afresh:

  drover              `drover upgrade`
  naive               by hand: both followers upgraded at once, then the leader in place (no --failover),
                      failover left on
  drover-leader-crash `drover upgrade`, the leader's PostgreSQL killed (kill -9) while a follower upgrades

For each: wall time, writes acknowledged, acknowledged but lost, the longest time no write succeeded, the
most nodes out at once (their PostgreSQL not running, sampled every 0.2 s), and whether every node ends at
the target version and streaming. For Drover's procedures it also
checks, from the samples, that no upgrade started while another node was behind, and that each of Drover's
`rejoined`/`synced` waits that held agrees with PostgreSQL's replay positions; each procedure's log puts the
samples, the nodes' commands and Drover's events side by side.

Needs root and what `drover-sandbox up --real` needs. Prints a Markdown table; --out DIR keeps the logs.
"""

import argparse
import calendar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datalayer  # noqa: E402

PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datalayer.py")
TIMEOUTS = "timeouts:\n  rejoin: 90s\n  failover: 90s\n  poll_interval: 200ms\n  stable_polls: 2\n"


def lsn(text):
    """A WAL position `X/Y` as a number; -1 when there is none."""
    try:
        high, low = text.split("/")
        return int(high, 16) << 32 | int(low, 16)
    except (AttributeError, ValueError):
        return -1


def read_layer(state):
    """One sample: the election's holder, then the leader's PostgreSQL before the others (so a standby read
    after it is caught up when its replay position reached the primary's)."""
    try:
        leader = datalayer.etcd_get(datalayer.any_member(state), datalayer.LEADER_KEY)[0]
    except (SystemExit, Exception):
        leader = None
    names = sorted(state["nodes"], key=lambda name: name != leader)
    return {"leader": leader, "nodes": {name: datalayer.node_status(state["nodes"][name]) for name in names},
            "running": {name: datalayer.postmaster_pid(state, name) is not None for name in names}}


def taken_out(sample, name):
    """The node's PostgreSQL is not running (its postmaster is gone: a standby that lost its primary for a
    moment, or a server slow to answer, is still in)."""
    return not sample["running"].get(name, False)


def in_service(sample, name):
    """The node's PostgreSQL is the leader's primary, or a standby streaming."""
    node = sample["nodes"].get(name, {})
    if name == sample["leader"]:
        return node.get("role") == "primary"
    return node.get("role") == "standby" and node.get("streaming") is True


def caught_up(sample, name):
    """The node leads, or streams and replayed up to the primary's position."""
    if name == sample["leader"]:
        return sample["nodes"].get(name, {}).get("role") == "primary"
    primary = sample["nodes"].get(sample["leader"] or "", {})
    node = sample["nodes"].get(name, {})
    if primary.get("role") != "primary" or not in_service(sample, name):
        return False
    return lsn(node.get("replay_lsn")) >= lsn(primary.get("current_lsn")) >= 0


class Sampler(threading.Thread):
    """Reads the real services every 0.2 s until stopped."""

    def __init__(self, state):
        super().__init__(daemon=True)
        self.state, self.samples, self.stopping = state, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            sample = read_layer(self.state)
            # Stamped when the reading is complete: `before(moment)` never uses what was read after it.
            self.samples.append((time.time(), sample))
            self.stopping.wait(0.2)

    def before(self, moment):
        """The last sample taken before `moment`."""
        earlier = [sample for at, sample in self.samples if at <= moment]
        return earlier[-1] if earlier else None


def rss_mib(state):
    """The data layer's resident memory: etcd members, leaderls, and every PostgreSQL process."""
    roots = set(state["pids"].values())
    roots |= {pid for pid in (datalayer.postmaster_pid(state, name) for name in state["nodes"]) if pid}
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    total = 0
    for pid in parents:
        ancestor, seen = pid, 0
        while ancestor not in roots and ancestor in parents and seen < 64:
            ancestor, seen = parents[ancestor], seen + 1
        if ancestor in roots:
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
    return total / 1024


def command_log(directory):
    """The nodes' commands as the sandbox logged them: (time, node, command) of each tool a node ran."""
    entries = []
    try:
        with open(os.path.join(directory, "commands.log")) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == "tool_started":
                    moment = utc_seconds(record.get("time", ""))
                    if moment is not None:
                        entries.append((moment, record.get("node", "?"), record.get("command", "")))
    except FileNotFoundError:
        pass
    return entries


def rehearse(procedure, args, out):
    sandbox_dir = tempfile.mkdtemp(prefix=f"drover-rehearse-{procedure}-")
    os.rmdir(sandbox_dir)
    began = time.monotonic()
    up = subprocess.run([args.sandbox, "up", "--real", "--dir", sandbox_dir, "--delay-scale", "0.05"],
                        capture_output=True, text=True)
    setup = time.monotonic() - began
    if up.returncode != 0:
        subprocess.run([args.sandbox, "down", "--dir", sandbox_dir], capture_output=True)
        raise SystemExit(f"rehearse: drover-sandbox up --real failed: {up.stderr.strip()}")
    home = tempfile.mkdtemp(prefix="drover-rehearse-home-")
    load = sampler = None
    try:
        with open(os.path.join(sandbox_dir, "sandbox.json")) as f:
            record = json.load(f)
        layer = record["realDataLayer"]["directory"]
        state = datalayer.load_state(layer)
        memory = rss_mib(state)
        inventory = os.path.join(sandbox_dir, "inventory.yml")
        with open(inventory) as f:
            text = f.read()
        package = re.search(r"^\s*path:\s*(\S+)", text, re.M).group(1)
        with open(inventory, "w") as f:
            f.write(text[:text.index("timeouts:")] + TIMEOUTS)
        sampler = Sampler(state)
        sampler.start()
        ledger_path = os.path.join(out, f"{procedure}-ledger.json")
        load = subprocess.Popen([PYTHON, SCRIPT, "load", "--dir", layer, "--seconds", "900", "--rate", str(args.rate)],
                                stdout=open(ledger_path, "w"), stderr=subprocess.DEVNULL)
        time.sleep(1)
        events, exit_code = [], None
        started = time.monotonic()
        if procedure == "naive":
            ssh = ["ssh", "-F", os.path.join(sandbox_dir, "ssh_config")]
            step = f"dpkg -i {package} && chef-backend-ctl upgrade"
            followers = [subprocess.Popen(ssh + [node, step], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for node in ("be2", "be3")]
            codes = [follower.wait() for follower in followers]
            codes.append(subprocess.run(ssh + ["be1", step], capture_output=True).returncode)
            exit_code = max(codes)
        else:
            if procedure == "drover-leader-crash":
                threading.Thread(target=crash_leader_during_follower_upgrade, args=(sandbox_dir, layer),
                                 daemon=True).start()
            run = subprocess.Popen([args.drover, "upgrade", "--yes", "--json", "--inventory", inventory],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   env=dict(os.environ, HOME=home, XDG_STATE_HOME=""))
            for line in run.stdout:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
            exit_code = run.wait()
        wall = time.monotonic() - started
        time.sleep(1)
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=120)
        try:
            with open(ledger_path) as f:
                ledger = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, IndexError, ValueError):
            raise SystemExit(f"rehearse: the write load of {procedure} left no ledger in {ledger_path}")
        # The end: every node at the target and streaming, given up to 30 s to settle.
        deadline, settled = time.monotonic() + 30, False
        while time.monotonic() < deadline and not settled:
            last = read_layer(state)
            settled = all(in_service(last, name) for name in state["nodes"])
            if not settled:
                time.sleep(0.5)
        sampler.stopping.set()
        sampler.join()
        with open(os.path.join(sandbox_dir, "state.json")) as f:
            cluster = json.load(f)
        at_target = all(node["runningVersion"] == record["packageVersion"] for node in cluster["nodes"])
        most_out = max((sum(taken_out(sample, name) for name in state["nodes"])
                        for _, sample in sampler.samples), default=0)
        commands = command_log(sandbox_dir)
        checks = drover_checks(procedure, sampler, commands, events)
        write_log(os.path.join(out, f"{procedure}.log"), sampler, commands, events)
        return {"procedure": procedure, "wall_s": round(wall, 1), "setup_s": round(setup, 1),
                "memory_mib": round(memory), "acknowledged": ledger["acknowledged"], "lost": ledger["lost"],
                "failed": ledger["failed"], "longest_outage_s": ledger["longest_outage_s"], "most_out": most_out,
                "end": at_target and settled, "exit": exit_code, **checks}
    finally:
        if sampler is not None:
            sampler.stopping.set()
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        subprocess.run([args.sandbox, "down", "--dir", sandbox_dir], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", home])


def crash_leader_during_follower_upgrade(sandbox_dir, layer):
    """Kills the leader's PostgreSQL as soon as be2's `chef-backend-ctl upgrade` starts."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if any(node == "be2" and command.startswith("chef-backend-ctl upgrade")
               for _, node, command in command_log(sandbox_dir)):
            time.sleep(0.3)
            subprocess.run([PYTHON, SCRIPT, "kill", "--dir", layer, "--node", "be1"], capture_output=True)
            return
        time.sleep(0.1)


def utc_seconds(stamp):
    """An RFC 3339 UTC time (`2026-12-07T15:56:13.414Z`) as seconds since the epoch; None if it is not one."""
    try:
        seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        fraction = stamp[19:].rstrip("Z")
        return seconds + (float(fraction) if fraction.startswith(".") else 0)
    except ValueError:
        return None


def event_time(event):
    return utc_seconds(event.get("time", "")) or 0.0


def drover_checks(procedure, sampler, commands, events):
    """For Drover's runs: upgrades started with every other node in sync, and waits that agree."""
    if procedure == "naive":
        return {"upgrades_in_sync": None, "waits_agree": None}
    upgrades = [(at, node) for at, node, command in commands if command.startswith("chef-backend-ctl upgrade")]
    in_sync = 0
    for at, node in upgrades:
        sample = sampler.before(at)
        if sample and all(caught_up(sample, other) for other in sample["nodes"] if other != node):
            in_sync += 1
    waits = [event for event in events if event.get("event") == "wait_finished" and event.get("ok")
             and event.get("predicate") in ("rejoined", "synced")]
    agree = 0
    for event in waits:
        sample = sampler.before(event_time(event))
        if sample and caught_up(sample, event.get("node")):
            agree += 1
    return {"upgrades_in_sync": f"{in_sync}/{len(upgrades)}", "waits_agree": f"{agree}/{len(waits)}"}


def describe(sample, positions=True):
    """The leader and each node's PostgreSQL role (streaming or not), with WAL positions."""
    def node(name, fields):
        role = fields.get("role")
        position = fields.get("current_lsn") if role == "primary" else fields.get("replay_lsn")
        text = f"{name}={role}" + (f"@{position}" if positions and position else "")
        return text + (" (not streaming)" if role == "standby" and not fields.get("streaming") else "")
    return f"leader={sample['leader']} " + " ".join(node(name, f) for name, f in sorted(sample["nodes"].items()))


def write_log(path, sampler, commands, events):
    """PostgreSQL as sampled (whenever a role, the leader or streaming changed, and beside each of the nodes'
    commands and Drover's events), the nodes' commands and Drover's events, side by side in time order."""
    lines, previous = [], None
    for at, sample in sampler.samples:
        shape = describe(sample, positions=False)
        if shape != previous:
            lines.append((at, "postgres", describe(sample)))
            previous = shape

    def beside(at):
        sample = sampler.before(at)
        return f"   [postgres: {describe(sample)}]" if sample else ""
    for at, node, command in commands:
        if not command.startswith(("chef-backend-ctl status", "chef-backend-ctl cluster-status", "df ")):
            lines.append((at, "node", f"{node}$ {command}{beside(at)}"))
    for event in events:
        if event.get("event") in ("step_started", "wait_finished", "command_finished", "run_finished"):
            detail = {key: event[key] for key in ("step", "node", "predicate", "ok", "command", "outcome")
                      if key in event}
            at = event_time(event)
            extra = beside(at) if event.get("event") == "wait_finished" else ""
            lines.append((at, "drover", f"{event['event']} {json.dumps(detail)}{extra}"))
    with open(path, "w") as f:
        for at, source, text in sorted(lines, key=lambda line: line[0]):
            f.write(f"{time.strftime('%H:%M:%S', time.gmtime(at))}.{int(at % 1 * 1000):03d} {source:8} {text}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drover", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--short", action="store_true", help="only Drover's upgrade")
    parser.add_argument("--out", help="where the logs and ledgers are kept (default: a new temporary directory)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("rehearse: run it as root (the sandbox and PostgreSQL need it)")
    out = args.out or tempfile.mkdtemp(prefix="drover-rehearsal-")
    os.makedirs(out, exist_ok=True)
    procedures = ["drover"] if args.short else ["drover", "naive", "drover-leader-crash"]
    rows = []
    for procedure in procedures:
        row = rehearse(procedure, args, out)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print("| procedure | wall | writes acknowledged | acknowledged but lost | longest write outage | most nodes out "
          "at once | every node at the target and streaming | upgrades started with the others in sync | "
          "Drover's waits agreeing with PostgreSQL |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['procedure']} | {row['wall_s']} s | {row['acknowledged']} | {row['lost']} | "
              f"{row['longest_outage_s']} s | {row['most_out']} | {'yes' if row['end'] else 'no'} | "
              f"{row['upgrades_in_sync'] or '-'} | {row['waits_agree'] or '-'} |")
    print(f"\nSet-up: {', '.join(str(row['setup_s']) + ' s' for row in rows)}; the data layer's memory after set-up: "
          f"{', '.join(str(row['memory_mib']) + ' MiB' for row in rows)}. Logs and ledgers: {out}")
    drover_rows = [row for row in rows if row["procedure"].startswith("drover")]
    if any(row["lost"] for row in drover_rows) or not all(row["end"] for row in drover_rows):
        sys.exit("rehearse: Drover's procedure lost an acknowledged write or did not end with every node in sync")


if __name__ == "__main__":
    main()
