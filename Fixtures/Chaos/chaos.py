#!/usr/bin/env python3
"""A seeded campaign of sandbox upgrades under faults (make chaos).

Each run starts a sandbox whose `chef-backend-ctl upgrade` behaves as a real program (it stops the node's
services and dies on its next write once its connection is gone), starts `drover upgrade --yes`, and
injects one to three faults at random moments: a connection cut (the node's per-connection sshd killed by
pid), a freeze longer than the keepalive limit (SIGSTOP, then SIGCONT), drover killed (SIGKILL), an
interrupt (SIGINT), a service down on a node, a follower whose upgrade fails. After each drover exit the
campaign does what an operator would: it fixes what a fault broke on purpose (heals the node) and runs
the next command Drover printed (`drover resume ...`), until the cluster is done or Drover rightly
refuses. The schedule of every run comes from CHAOS_SEED and the run's number, so a run can be replayed.

Checked from the simulator's own state: never two nodes out of the cluster at once, the leader never
upgraded in place, and at the end every node at the target, synced, failover on; a node left down must be
one `drover diagnose` names. Prints one table; exits 1 on any violation.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

KINDS = ["cut", "freeze", "kill-drover", "sigint", "service-down", "upgrade-fails"]
KEEPALIVE = "  keepalive_interval: 1s\n  keepalive_count: 3\n"
TARGET = "2.3.16"


def sshd_connections(directory, node):
    """The node's per-connection sshd processes: its listener's descendants named sshd."""
    with open(os.path.join(directory, "sandbox.json")) as file:
        record = json.load(file)
    listener = next((n.get("pid") for n in record["nodes"] if n["name"] == node), None)
    if not listener:
        return []
    found, queue = [], [listener]
    while queue:
        parent = queue.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as file:
                children = [int(pid) for pid in file.read().split()]
        except OSError:
            children = []
        for child in children:
            queue.append(child)
            try:
                with open(f"/proc/{child}/comm") as file:
                    if file.read().strip() == "sshd":
                        found.append(child)
            except OSError:
                pass
    return found


def signal_all(pids, number):
    for pid in pids:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass


class Run:
    def __init__(self, number, seed, args):
        self.number = number
        self.rng = random.Random(f"{seed}:{number}")
        self.args = args
        self.base = tempfile.mkdtemp(prefix=f"drover-chaos-{number}-")
        self.directory = os.path.join(self.base, "sandbox")
        self.home = os.path.join(self.base, "home")
        os.makedirs(self.home)
        count = self.rng.randint(1, 3)
        self.faults = [(self.rng.choice(KINDS), self.rng.choice(["be1", "be2", "be3"]), self.rng.uniform(0.3, 9.0))
                       for _ in range(count)]
        # At most one fault that ends drover: the next command takes over from there.
        enders = [f for f in self.faults if f[0] in ("kill-drover", "sigint")]
        for extra in enders[1:]:
            self.faults.remove(extra)
        self.injected = []
        self.commands = 0
        self.healed = set()

    def sandbox(self, *argv):
        return subprocess.run([self.args.sandbox, *argv, "--dir", self.directory], capture_output=True, text=True)

    def drover_env(self):
        return dict(os.environ, HOME=self.home, XDG_STATE_HOME="", NO_COLOR="1")

    def up(self):
        result = self.sandbox("up", "--delay-scale", "0.05", "--fragile-commands", "--upgrade-seconds", "2")
        if result.returncode != 0:
            raise RuntimeError(f"drover-sandbox up failed: {result.stderr}")
        path = os.path.join(self.directory, "inventory.yml")
        with open(path) as file:
            text = file.read()
        text = text.replace("\nssh:\n", "\nssh:\n" + KEEPALIVE, 1)
        text = text[:text.index("timeouts:")] + "timeouts:\n  rejoin: 30s\n  failover: 30s\n  poll_interval: 200ms\n  stable_polls: 2\n"
        with open(path, "w") as file:
            file.write(text)
        self.inventory = path
        # Faults set before the run: a follower whose upgrade fails.
        for kind, node, _ in self.faults:
            if kind == "upgrade-fails":
                node = self.rng.choice(["be2", "be3"])
                self.sandbox("break", node, "upgrade-fails")
                self.injected.append(("upgrade-fails", node))

    def inject(self, kind, node, process):
        if kind == "cut":
            signal_all(sshd_connections(self.directory, node), signal.SIGKILL)
        elif kind == "freeze":
            pids = sshd_connections(self.directory, node)
            signal_all(pids, signal.SIGSTOP)
            time.sleep(5)
            signal_all(pids, signal.SIGCONT)
        elif kind == "kill-drover":
            process.kill()
        elif kind == "sigint":
            process.send_signal(signal.SIGINT)
        elif kind == "service-down":
            self.sandbox("break", node, "service-down:" + self.rng.choice(["etcd", "elasticsearch"]))
        self.injected.append((kind, node))

    def drover(self, argv, faults):
        log = os.path.join(self.base, f"drover-{self.commands}.out")
        self.commands += 1
        with open(log, "w") as out:
            process = subprocess.Popen([self.args.drover, *argv], stdout=out, stderr=subprocess.STDOUT, env=self.drover_env())
            started = time.monotonic()
            pending = sorted(faults, key=lambda f: f[2])
            while process.poll() is None:
                if pending and time.monotonic() - started >= pending[0][2]:
                    kind, node, _ = pending.pop(0)
                    self.inject(kind, node, process)
                if time.monotonic() - started > 300:
                    process.kill()
                time.sleep(0.05)
        with open(log) as file:
            return process.returncode, file.read()

    def heal_broken(self):
        """What an operator fixes before following Drover's next command: the faults set on purpose."""
        for kind, node in self.injected:
            if kind in ("upgrade-fails", "service-down") and (kind, node) not in self.healed:
                self.sandbox("heal", node)
                self.healed.add((kind, node))

    def play(self):
        self.up()
        argv = ["upgrade", "--inventory", self.inventory, "--yes"]
        faults = [f for f in self.faults if f[0] != "upgrade-fails"]
        outcome = "unfinished"
        for _ in range(6):
            status, output = self.drover(argv, faults)
            faults = []
            if status == 0 and "Nothing to resume" in output:
                # Killed before the run recorded anything: start it again, as Drover says.
                argv = ["upgrade", "--inventory", self.inventory, "--yes"]
                continue
            if status == 0:
                outcome = "done"
                break
            # The next command Drover printed: resume (after an interrupt, a kill or a failure).
            if re.search(r"drover resume --inventory", output) or status in (-9, 130, 1):
                self.heal_broken()
                argv = ["resume", "--inventory", self.inventory, "--yes"]
                continue
            if status in (2, 3):
                # Refused: was it right to? A fault made the cluster unhealthy before anything changed.
                if any(kind == "service-down" for kind, _ in self.injected) and "changed" not in output.lower():
                    outcome = "refused"
                else:
                    self.heal_broken()
                    argv = ["upgrade", "--inventory", self.inventory, "--yes"]
                    continue
                break
            break
        return outcome

    def check(self, outcome):
        with open(os.path.join(self.directory, "state.json")) as file:
            state = json.load(file)
        violations = []
        if state.get("outages"):
            violations.append(f"leader upgraded in place: {state['outages']}")
        phase = {node["name"]: "synced" for node in state["nodes"]}
        for transition in state.get("transitions", []):
            name, new = transition["node"], transition["to"]
            if new.startswith("leader:") or name not in phase:
                continue
            phase[name] = new
            out = sorted(node for node, now in phase.items() if now != "synced")
            if len(out) > 1:
                violations.append(f"two nodes out at once: {out} at {transition['time']}")
                break
        # Now, read through the simulator (its state advances on every update).
        self.sandbox("status")
        with open(os.path.join(self.directory, "state.json")) as file:
            state = json.load(file)
        down = [n["name"] for n in state["nodes"]
                if list((n.get("phase") or {"?": 0}).keys())[0] != "synced" or n.get("unreachable") or n.get("servicesDown")]
        if outcome == "done":
            versions = {n["name"]: n["runningVersion"] for n in state["nodes"]}
            if any(v != TARGET for v in versions.values()):
                violations.append(f"done but versions {versions}")
            if not state.get("clusterFailover"):
                violations.append("done but cluster failover left off")
            if down:
                violations.append(f"done but nodes not synced: {down}")
        unexplained = []
        if down and outcome != "done":
            diagnosis = subprocess.run([self.args.drover, "diagnose", "--inventory", self.inventory], capture_output=True, text=True,
                                       env=self.drover_env()).stdout
            unexplained = [node for node in down if node not in diagnosis]
            if unexplained:
                violations.append(f"nodes left down that diagnose does not name: {unexplained}")
        return violations, down

    def tear_down(self):
        self.sandbox("down")
        if not self.args.keep:
            shutil.rmtree(self.base, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drover", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("CHAOS_RUNS", "30")))
    parser.add_argument("--seed", default=os.environ.get("CHAOS_SEED", "1"))
    parser.add_argument("--keep", action="store_true", help="keep each run's sandbox files and drover output")
    args = parser.parse_args()
    injected = {kind: 0 for kind in KINDS}
    outcomes = {}
    violations = []
    left_down = []
    commands = 0
    started = time.monotonic()
    for number in range(1, args.runs + 1):
        run = Run(number, args.seed, args)
        try:
            outcome = run.play()
            problems, down = run.check(outcome)
        except Exception as error:  # a harness failure is a failed run, reported as such
            outcome, problems, down = "harness-error", [str(error)], []
        finally:
            run.tear_down()
        for kind, _ in run.injected:
            injected[kind] += 1
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        commands += run.commands
        left_down += [f"run {number}: {node}" for node in down]
        violations += [f"run {number} (faults {[f'{k}@{n}' for k, n in run.injected]}): {p}" for p in problems]
        print(f"run {number:3}: {outcome:13} faults {', '.join(f'{k}@{n}' for k, n in run.injected) or 'none'}; "
              f"{run.commands} drover command(s){'; VIOLATION' if problems else ''}", flush=True)
    print()
    print(f"Chaos campaign: seed {args.seed}, {args.runs} runs, {commands} drover commands, {time.monotonic() - started:.0f} s")
    print("| runs | " + " | ".join(KINDS) + " | done | refused | other | violations | nodes left down |")
    print("|" + " --- |" * (len(KINDS) + 6))
    other = sum(count for outcome, count in outcomes.items() if outcome not in ("done", "refused"))
    print(f"| {args.runs} | " + " | ".join(str(injected[k]) for k in KINDS)
          + f" | {outcomes.get('done', 0)} | {outcomes.get('refused', 0)} | {other} | {len(violations)} | {len(left_down)} |")
    for line in violations:
        print("VIOLATION " + line)
    for line in left_down:
        print("left down (named by diagnose): " + line)
    print(f"{args.runs - len({v.split(' ')[1] for v in violations})} passed, {len({v.split(' ')[1] for v in violations})} failed")
    return 1 if violations or other else 0


if __name__ == "__main__":
    sys.exit(main())
