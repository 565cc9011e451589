#!/usr/bin/python3
"""A real Chef Backend data layer on loopback addresses: an etcd member and a PostgreSQL 15 instance per
node (the primary on the first, streaming standbys on the others), started and stopped by pid, and a write
load whose ledger says which acknowledged writes were lost and how long writes failed.

Debian's postgresql-15, etcd-server, etcd-client and python3-psycopg2; run as root (PostgreSQL runs as the
`postgres` user). Everything lives under --dir; `down` stops every process `up` started, by pid, and removes
it. Measured facts it relies on: shared/reference/real-services.md.

    datalayer.py up --dir DIR --nodes be1=127.0.50.1,be2=127.0.50.2,be3=127.0.50.3
    datalayer.py status --dir DIR            (JSON: each node's role, LSNs, streaming; etcd health)
    datalayer.py switchover --dir DIR --to be2   (the leader hands the election over, and waits)
    datalayer.py failover --dir DIR --set on|off
    datalayer.py hold --dir DIR --node be2   (stop its PostgreSQL and keep it down; `release` lets it rejoin)
    datalayer.py kill --dir DIR --node be1   (kill -9 the node's postmaster)
    datalayer.py stop-etcd|start-etcd --dir DIR --node be1   (the node's etcd member, by pid)
    datalayer.py pause-replay|resume-replay --dir DIR --node be2   (a standby that lags)
    datalayer.py leaderl --dir DIR --node be1   (the node's leader-election stand-in; `up` starts one per node)
    datalayer.py load --dir DIR --seconds 10 --rate 50   (JSON: attempted, acknowledged, lost, outage)
    datalayer.py probe --dir DIR             (one write; exit 0 when acknowledged: Drover's inventory probe)
    datalayer.py down --dir DIR
"""

import argparse
import base64
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"
STATE = "state.json"
# The election leaderl holds in etcd (here a stand-in: `leaderl` below): the leader's name, on a lease of
# LEASE_TTL seconds its node keeps alive while its PostgreSQL answers.
LEADER_KEY = "/chef-backend/leader"
# "off" while cluster failover is disabled (`chef-backend-ctl set-cluster-failover off`): nobody campaigns.
FAILOVER_KEY = "/chef-backend/failover"
# A node's name while the leader hands over to it (`upgrade --failover`): only that node campaigns.
HANDOFF_KEY = "/chef-backend/handoff"
# 15 s: long enough that a busy 2-core machine (etcd's fsyncs behind a whole test suite's) does not fence a
# healthy leader; a planned switchover never waits for it (the leader revokes its lease).
LEASE_TTL = 15
# A leader whose lease went unrenewed this long before it could lapse stops its PostgreSQL.
FENCE_MARGIN = 5
# How often the lease is renewed, and how long a renewal may take.
RENEW_EVERY = 1.0
# The node that led last (no lease): the only one whose stopped primary data may start as primary again.
LAST_LEADER_KEY = "/chef-backend/last-leader"
# How long a standby may fail to stream from the leader before it is stopped and rejoined.
STREAM_GRACE = 10


def postgres_ids():
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def as_postgres(argv, **kwargs):
    uid, gid = postgres_ids()
    return subprocess.run(argv, user=uid, group=gid, extra_groups=[], check=True, capture_output=True, text=True,
                          **kwargs)


def start_detached(argv, log, user=None):
    """Starts a server in a session of its own, its output to `log`; returns its pid."""
    uid, gid = postgres_ids() if user == "postgres" else (None, None)
    with open(log, "ab") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                 user=uid, group=gid, extra_groups=[] if uid is not None else None)
    return child.pid


def load_state(directory):
    with open(os.path.join(directory, STATE)) as f:
        return json.load(f)


def save_state(directory, state):
    path = os.path.join(directory, STATE)
    with open(path + ".new", "w") as f:
        json.dump(state, f, indent=1)
    os.replace(path + ".new", path)


def dsn(address, dbname="postgres"):
    return f"host={address} port=5432 user=postgres dbname={dbname} connect_timeout=2"


def query(address, sql, autocommit=True):
    import psycopg2
    connection = psycopg2.connect(dsn(address))
    try:
        connection.autocommit = autocommit
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def wait_for(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except SystemExit:
            raise
        except Exception as error:  # a server still starting refuses connections
            last = error
        time.sleep(0.1)
    raise SystemExit(f"datalayer: timed out after {timeout:.0f} s waiting for {what} ({last})")


def node_paths(directory, name):
    base = os.path.join(directory, "pg", name)
    return {"base": base, "data": os.path.join(base, "data"), "conf": os.path.join(base, "postgresql.conf"),
            "hba": os.path.join(base, "pg_hba.conf"), "ident": os.path.join(base, "pg_ident.conf"), "socket": os.path.join(base, "socket"),
            "log": os.path.join(base, "postgres.log")}


def write_config(paths, name, address):
    """Per-node configuration outside the data directory (pg_basebackup and pg_rewind copy that one)."""
    with open(paths["conf"], "w") as f:
        f.write(f"""data_directory = '{paths["data"]}'
hba_file = '{paths["hba"]}'
ident_file = '{paths["ident"]}'
listen_addresses = '{address}'
port = 5432
unix_socket_directories = '{paths["socket"]}'
cluster_name = '{name}'
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
wal_log_hints = on
hot_standby = on
wal_retrieve_retry_interval = 1s
shared_buffers = 16MB
max_connections = 40
""")
    with open(paths["hba"], "w") as f:
        f.write("local all all trust\nhost all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n")
    open(paths["ident"], "w").close()
    uid, gid = postgres_ids()
    for path in (paths["conf"], paths["hba"], paths["ident"]):
        os.chown(path, uid, gid)


def start_postgres(state, name):
    paths = node_paths(state["dir"], name)
    pid = start_detached([f"{PG_BIN}/postgres", "-c", f"config_file={paths['conf']}"], paths["log"], user="postgres")
    state["pids"][f"postgres-{name}"] = pid
    address = state["nodes"][name]

    def ready():
        if not alive(pid):
            with open(paths["log"]) as log:
                raise SystemExit(f"datalayer: PostgreSQL on {name} exited: {log.read()[-600:]}")
        return query(address, "SELECT 1") is not None
    wait_for(f"PostgreSQL on {name} ({address})", ready)


def lsn(text):
    """A WAL position `X/Y` as a number (-1 when there is none): a standby has applied all it received when its
    replay position is at or past its receive position (which restarts at a segment's start when its WAL
    receiver does)."""
    try:
        high, low = text.split("/")
        return int(high, 16) << 32 | int(low, 16)
    except (AttributeError, ValueError):
        return -1


def etcd_call(address, path, body, timeout=1.0):
    """One request to etcd's v3 JSON gateway on the node's own member."""
    request = urllib.request.Request(f"http://{address}:2379/v3/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def etcd_get(address, key):
    """The key's value and lease, or (None, None)."""
    kvs = etcd_call(address, "kv/range", {"key": b64(key)}).get("kvs") or []
    if not kvs:
        return None, None
    return base64.b64decode(kvs[0].get("value", "")).decode(), kvs[0].get("lease")


def etcd_put(address, key, value):
    etcd_call(address, "kv/put", {"key": b64(key), "value": b64(value)})


def etcd_delete(address, key):
    etcd_call(address, "kv/deleterange", {"key": b64(key)})


def any_member(state):
    """The address of a member that answers (the CLI's commands work while one member is down)."""
    for address in state["nodes"].values():
        try:
            etcd_call(address, "kv/range", {"key": b64(LEADER_KEY)})
            return address
        except Exception:
            continue
    raise RuntimeError("no etcd member answers")


def leader_of(state):
    return etcd_get(any_member(state), LEADER_KEY)[0]


def postmaster_pid(state, name):
    """The pid of the node's running postmaster (its postmaster.pid), or None."""
    try:
        with open(os.path.join(node_paths(state["dir"], name)["data"], "postmaster.pid")) as f:
            pid = int(f.readline())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def held(state, name):
    return os.path.exists(os.path.join(node_paths(state["dir"], name)["base"], "held"))


def node_lock(state, name):
    """The node's lock: its leaderl holds it for each round, `hold` while it stops PostgreSQL."""
    import fcntl
    f = open(os.path.join(node_paths(state["dir"], name)["base"], "lock"), "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def spawn_postgres(state, name):
    paths = node_paths(state["dir"], name)
    pid = start_detached([f"{PG_BIN}/postgres", "-c", f"config_file={paths['conf']}"], paths["log"], user="postgres")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not alive(pid):
            raise RuntimeError(f"PostgreSQL on {name} exited")
        try:
            if query(state["nodes"][name], "SELECT 1") is not None:
                return pid
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL on {name} did not answer in 30 s")


def standby_files(state, name, leader):
    """standby.signal and the leader as primary_conninfo, written as the postgres user would."""
    paths = node_paths(state["dir"], name)
    uid, gid = postgres_ids()
    signal_path = os.path.join(paths["data"], "standby.signal")
    open(signal_path, "a").close()
    conninfo = f"host={state['nodes'][leader]} port=5432 user=postgres application_name={name}"
    auto = os.path.join(paths["data"], "postgresql.auto.conf")
    lines = []
    if os.path.exists(auto):
        with open(auto) as f:
            lines = [line for line in f if not line.startswith("primary_conninfo")]
    lines.append(f"primary_conninfo = '{conninfo}'\n")
    with open(auto, "w") as f:
        f.writelines(lines)
    for path in (signal_path, auto):
        os.chown(path, uid, gid)


def rejoin(state, name, leader, log):
    """Makes a stopped node a standby of the leader: pg_rewind after a CHECKPOINT on the leader (without it
    pg_rewind finds nothing to rewind), or a fresh pg_basebackup when there is nothing to rewind from."""
    import shutil
    paths = node_paths(state["dir"], name)
    source = state["nodes"][leader]
    rewound = False
    if os.path.exists(os.path.join(paths["data"], "PG_VERSION")):
        try:
            query(source, "CHECKPOINT")
            as_postgres([f"{PG_BIN}/pg_rewind", "-D", paths["data"], f"--source-server={dsn(source)}"])
            rewound = True
        except subprocess.CalledProcessError as error:
            log(f"pg_rewind failed ({error.stderr.strip()[-300:]}); a fresh base backup instead")
    if not rewound:
        shutil.rmtree(paths["data"], ignore_errors=True)
        as_postgres([f"{PG_BIN}/pg_basebackup", "-h", source, "-U", "postgres", "-D", paths["data"], "-X", "stream",
                     "-c", "fast"])
    standby_files(state, name, leader)
    spawn_postgres(state, name)
    log(f"rejoined as a standby of {leader} ({'pg_rewind' if rewound else 'pg_basebackup'})")


class Lease:
    """The election's lease as one node holds it, renewed by a thread of its own every RENEW_EVERY (a slow
    round of the loop, a PostgreSQL starting, never delays a renewal). Once no renewal has succeeded for
    LEASE_TTL - FENCE_MARGIN seconds, the lease may be about to lapse: the node's PostgreSQL is stopped at once
    (`-m immediate`), so a primary never outlives the election it holds."""

    def __init__(self, state, name, log):
        import threading
        self.state, self.name, self.log = state, name, log
        self.address = state["nodes"][name]
        self.lock = threading.Lock()
        self.id = None
        self.kept = 0.0
        threading.Thread(target=self.renew, daemon=True).start()

    def hold(self, lease_id):
        with self.lock:
            self.id, self.kept = lease_id, time.monotonic()

    def current(self):
        with self.lock:
            return self.id

    def drop(self, revoke=True):
        with self.lock:
            lease_id, self.id = self.id, None
        if revoke and lease_id is not None:
            try:
                etcd_call(self.address, "lease/revoke", {"ID": lease_id})
            except Exception:
                pass

    def renew(self):
        while True:
            time.sleep(RENEW_EVERY)
            lease_id = self.current()
            if lease_id is None:
                continue
            try:
                answer = etcd_call(self.address, "lease/keepalive", {"ID": lease_id}, timeout=2 * RENEW_EVERY)
                # A lease that lapsed answers with TTL 0 (or none), not an error.
                if int((answer.get("result") or answer).get("TTL", 0)) > 0:
                    with self.lock:
                        if self.id == lease_id:
                            self.kept = time.monotonic()
            except Exception:
                pass
            with self.lock:
                lapsing = self.id == lease_id and time.monotonic() - self.kept > LEASE_TTL - FENCE_MARGIN
                if lapsing:
                    self.id = None
            if lapsing:
                pid = postmaster_pid(self.state, self.name)
                if pid:
                    try:
                        stop_postgres(self.state, self.name, mode="immediate")
                    except Exception:
                        os.kill(pid, signal.SIGKILL)
                self.log("the lease could not be renewed in time: PostgreSQL stopped (fenced)")


def leaderl(args):
    """A stand-in for leaderl on one node: the leader holds LEADER_KEY on a lease (see ``Lease``) while its
    PostgreSQL runs; with failover on (or a handoff to it), a caught-up standby campaigns when there is no
    leader and promotes itself on winning; a node that loses the election stops a PostgreSQL that still runs as
    primary, and a stopped node that is not held down rejoins as a standby of the leader once the leader's
    PostgreSQL is the primary. A leader whose PostgreSQL stopped gives the election up with failover on, and
    starts it again in place with failover off; a primary's data starts as primary only once its node holds
    the election, and only on the node that led last (LAST_LEADER_KEY). A standby that does not stream from the
    leader for STREAM_GRACE seconds is rejoined. A node held down (`hold`: its services stopped for an upgrade)
    keeps no lease and runs nothing."""
    directory = os.path.abspath(args.dir)
    state = load_state(directory)
    name = args.node
    address = state["nodes"][name]
    log_path = os.path.join(directory, f"leaderl-{name}.log")

    def log(line):
        with open(log_path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    lease = Lease(state, name, log)
    adrift_since = None
    while True:
        # The PostgreSQL this leaderl started and that died is reaped, so pg_rewind does not find its pid alive.
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        lock = node_lock(state, name)
        try:
            if held(state, name):
                # Held down for an upgrade: its services are stopped, leaderl with them: no lease (a leader's
                # lapses after LEASE_TTL) and nothing started; a PostgreSQL still running is stopped.
                lease.drop(revoke=False)
                if postmaster_pid(state, name):
                    stop_postgres(state, name)
                continue
            running = postmaster_pid(state, name) is not None
            pg = node_status(address) if running else {"role": "down"}
            try:
                leader, leader_lease = etcd_get(address, LEADER_KEY)
                failover = etcd_get(address, FAILOVER_KEY)[0] != "off"
                handoff = etcd_get(address, HANDOFF_KEY)[0]
                last_leader = etcd_get(address, LAST_LEADER_KEY)[0]
                etcd_ok = True
            except Exception:
                leader = leader_lease = failover = handoff = last_leader = None
                etcd_ok = False
            data = node_paths(directory, name)["data"]
            has_data = os.path.exists(os.path.join(data, "PG_VERSION"))
            primary_data = has_data and not os.path.exists(os.path.join(data, "standby.signal"))
            held_lease = lease.current()
            if leader == name and held_lease is not None and leader_lease == held_lease:
                if handoff is not None and handoff != name:
                    if running:
                        stop_postgres(state, name)  # a clean stop sends the standbys every WAL record
                    lease.drop()
                    log(f"gave up the leadership (handoff to {handoff})")
                elif not running and failover:
                    lease.drop()
                    log("gave up the leadership (PostgreSQL stopped, failover on)")
                elif not running:
                    # Failover off: nobody may take over, so it is started again in place (as runit would).
                    spawn_postgres(state, name)
                    log("PostgreSQL started again in place (failover off)")
                elif pg["role"] == "standby":
                    as_postgres([f"{PG_BIN}/pg_ctl", "promote", "-w", "-D", data])
                    log("won the election: PostgreSQL promoted")
                elif handoff == name and pg["role"] == "primary":
                    etcd_delete(address, HANDOFF_KEY)
            elif etcd_ok and leader is None and handoff in (None, name) and (
                    pg["role"] == "primary" or (not running and primary_data and last_leader in (None, name)) or (
                        pg["role"] == "standby" and (
                            handoff == name or (failover and lsn(pg.get("replay_lsn")) >= lsn(pg.get("receive_lsn")))))):
                granted = etcd_call(address, "lease/grant", {"TTL": LEASE_TTL})["ID"]
                won = etcd_call(address, "kv/txn", {
                    "compare": [{"key": b64(LEADER_KEY), "target": "CREATE", "create_revision": "0"}],
                    "success": [{"requestPut": {"key": b64(LEADER_KEY), "value": b64(name), "lease": granted}}],
                }).get("succeeded", False)
                if not won:
                    etcd_call(address, "lease/revoke", {"ID": granted})
                    continue
                lease.hold(granted)
                etcd_put(address, LAST_LEADER_KEY, name)
                log(f"elected (PostgreSQL {pg['role']})")
                if not running:
                    # A primary's data starts as primary only once it holds the election: never two primaries.
                    spawn_postgres(state, name)
                    log("PostgreSQL started as the leader's primary")
                # A standby is promoted by the next round, once the election is confirmed.
            else:
                if leader != name:
                    lease.drop(revoke=False)
                if running and pg["role"] != "standby" and leader not in (None, name):
                    # Fenced: another node leads and this one's PostgreSQL is (or may be) a primary.
                    stop_postgres(state, name)
                    log(f"stopped PostgreSQL running as primary while {leader} leads")
                elif pg["role"] == "standby" and leader not in (None, name):
                    upstream = pg.get("upstream")
                    if upstream != state["nodes"][leader] or not pg.get("streaming"):
                        adrift_since = adrift_since or time.monotonic()
                    else:
                        adrift_since = None
                    conninfo, = query(address, "SHOW primary_conninfo")[0]
                    if f"host={state['nodes'][leader]} " not in conninfo + " ":
                        query(address, "ALTER SYSTEM SET primary_conninfo = "
                              f"'host={state['nodes'][leader]} port=5432 user=postgres application_name={name}'")
                        query(address, "SELECT pg_reload_conf()")
                        log(f"now follows {leader}")
                    elif adrift_since and time.monotonic() - adrift_since > STREAM_GRACE:
                        # It cannot follow the leader (its WAL forked off the leader's): rejoined with pg_rewind.
                        stop_postgres(state, name)
                        adrift_since = None
                        log(f"not streaming from {leader} for {STREAM_GRACE} s: stopped, to rejoin")
                elif not running and leader not in (None, name):
                    # Only from a primary: pg_rewind from a standby not yet promoted finds nothing to rewind.
                    if node_status(state["nodes"][leader]).get("role") == "primary":
                        rejoin(state, name, leader, log)
                elif not running and etcd_ok and leader is None and handoff is None and has_data and not primary_data:
                    # Nobody leads: a standby's PostgreSQL is started again as it was (as runit would); a
                    # primary's waits until it wins the election (above).
                    spawn_postgres(state, name)
                    log("PostgreSQL started again as a standby (no leader)")
        except Exception as error:
            log(f"round failed: {str(error).strip()[:300]}")
        finally:
            lock.close()
            time.sleep(0.3)


def start_etcd(state, name):
    """Starts the node's etcd member (a new cluster's, or again on its data directory)."""
    directory, nodes = state["dir"], state["nodes"]
    address = nodes[name]
    cluster = ",".join(f"{node}=http://{a}:2380" for node, a in nodes.items())
    data = os.path.join(directory, "etcd", name)
    os.makedirs(data, mode=0o700, exist_ok=True)
    state["pids"][f"etcd-{name}"] = start_detached([
        "etcd", "--name", name, "--data-dir", data, "--listen-client-urls", f"http://{address}:2379",
        "--advertise-client-urls", f"http://{address}:2379", "--listen-peer-urls", f"http://{address}:2380",
        "--initial-advertise-peer-urls", f"http://{address}:2380", "--initial-cluster", cluster,
        "--initial-cluster-state", "new", "--initial-cluster-token", os.path.basename(directory),
        # Ten times the defaults: a busy 2-core machine must not make the members elect among themselves.
        "--heartbeat-interval", "250", "--election-timeout", "2500",
    ], os.path.join(directory, "etcd", f"{name}.log"))


def etcd_member(args):
    """Stops (SIGTERM, by pid) or starts again the node's etcd member."""
    state = load_state(args.dir)
    key = f"etcd-{args.node}"
    if args.command == "stop-etcd":
        pid = state["pids"].get(key)
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(f"etcd on {args.node} to stop", lambda: not alive(pid))
    else:
        start_etcd(state, args.node)
        save_state(args.dir, state)
        wait_for(f"etcd on {args.node} to answer", lambda: etcd_call(
            state["nodes"][args.node], "kv/range", {"key": b64(LEADER_KEY)}) is not None)
    print(json.dumps({args.command: args.node}))


def replay(args):
    """Pauses (a lagging standby: it receives WAL but applies none) or resumes a standby's replay."""
    state = load_state(args.dir)
    call = "pg_wal_replay_pause()" if args.command == "pause-replay" else "pg_wal_replay_resume()"
    query(state["nodes"][args.node], f"SELECT {call}")
    print(json.dumps({args.command: args.node}))


def up(args):
    directory = os.path.abspath(args.dir)
    nodes = dict(part.split("=", 1) for part in args.nodes.split(","))
    names = list(nodes)
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    state = {"dir": directory, "nodes": nodes, "primary": names[0], "pids": {}}
    save_state(directory, state)
    # etcd: one member per node, on the node's address.
    for name in nodes:
        start_etcd(state, name)
    save_state(directory, state)
    uid, gid = postgres_ids()
    for name, address in nodes.items():
        paths = node_paths(directory, name)
        os.makedirs(paths["socket"], exist_ok=True)
        for path in (paths["base"], paths["socket"]):
            os.chown(path, uid, gid)
        write_config(paths, name, address)
    primary = names[0]
    as_postgres([f"{PG_BIN}/initdb", "-D", node_paths(directory, primary)["data"], "-U", "postgres",
                 "--auth", "trust"])
    start_postgres(state, primary)
    save_state(directory, state)
    for name in names[1:]:
        as_postgres([f"{PG_BIN}/pg_basebackup", "-h", nodes[primary], "-U", "postgres", "-D",
                     node_paths(directory, name)["data"], "-R", "-X", "stream", "-c", "fast"])
        start_postgres(state, name)
        save_state(directory, state)
    query(nodes[primary], "CREATE TABLE probe (at timestamptz DEFAULT now())")  # the write `probe` makes
    wait_for("every standby streaming", lambda: query(
        nodes[primary], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0] == len(names) - 1)
    wait_for("etcd healthy", lambda: subprocess.run(
        ["etcdctl", "--endpoints", ",".join(f"http://{a}:2379" for a in nodes.values()), "endpoint", "health"],
        capture_output=True, env=dict(os.environ, ETCDCTL_API="3")).returncode == 0)
    # The leader's leaderl first, so that it wins the first election; then the others.
    for name in names:
        state["pids"][f"leaderl-{name}"] = start_detached(
            [sys.executable, os.path.abspath(__file__), "leaderl", "--dir", directory, "--node", name],
            os.path.join(directory, f"leaderl-{name}.out"))
        save_state(directory, state)
        if name == primary:
            wait_for(f"{primary} to win the first election", lambda: leader_of(state) == primary)
    print(json.dumps({"up": names, "primary": primary}))


def node_status(address):
    """The instance's role and positions: a primary's flushed WAL position; a standby's received and replayed
    positions, whether it streams and from which host (`upstream`)."""
    try:
        recovery = query(address, "SELECT pg_is_in_recovery()")[0][0]
        if recovery:
            receive, replay, streaming, upstream = query(
                address, "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                "(SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'), "
                "(SELECT sender_host FROM pg_stat_wal_receiver LIMIT 1)")[0]
            return {"role": "standby", "receive_lsn": receive, "replay_lsn": replay, "streaming": streaming == 1,
                    "upstream": upstream}
        current, = query(address, "SELECT pg_current_wal_flush_lsn()::text")[0]
        return {"role": "primary", "current_lsn": current}
    except Exception as error:
        return {"role": "down", "error": str(error).strip().splitlines()[0] if str(error).strip() else "down"}


def status(args):
    state = load_state(args.dir)
    # The leader's PostgreSQL first: a standby read after it is caught up when its replay position reached the
    # primary's (read before it, under a write load the primary's position would already be ahead).
    try:
        first = etcd_get(any_member(state), LEADER_KEY)[0]
    except Exception:
        first = None
    names = sorted(state["nodes"], key=lambda name: name != first)
    result = {name: node_status(state["nodes"][name]) for name in names}
    result["etcd"] = {}
    for name, address in state["nodes"].items():
        try:
            etcd_call(address, "kv/range", {"key": b64(LEADER_KEY)})
            result["etcd"][name] = True
        except Exception:
            result["etcd"][name] = False
    result["etcd_healthy"] = all(result["etcd"].values())
    try:
        member = any_member(state)
        result["leader"] = etcd_get(member, LEADER_KEY)[0]
        result["failover"] = etcd_get(member, FAILOVER_KEY)[0] != "off"
    except Exception:
        result["leader"], result["failover"] = None, None
    print(json.dumps(result))


def stop_postgres(state, name, mode="fast"):
    as_postgres([f"{PG_BIN}/pg_ctl", "stop", "-w", "-m", mode, "-D", node_paths(state["dir"], name)["data"]])
    state["pids"].pop(f"postgres-{name}", None)


def switchover(args):
    """A planned switchover, as `upgrade --failover` asks leaderl for one: the leader stops its PostgreSQL
    cleanly and gives up the election, the target wins it and promotes, the other standby is re-pointed and
    the old leader rejoins with pg_rewind. Waits until every node streams from the new leader. The handoff is
    on a lease of the timeout, and withdrawn when the switchover fails: it never outlives it."""
    state = load_state(args.dir)
    if args.to not in state["nodes"]:
        raise SystemExit(f"datalayer: {args.to} is not a node ({', '.join(state['nodes'])})")
    target = node_status(state["nodes"][args.to])
    if target.get("role") != "standby" or not target.get("streaming"):
        raise SystemExit(f"datalayer: {args.to} is not a streaming standby ({target})")
    member = any_member(state)
    lease = etcd_call(member, "lease/grant", {"TTL": max(1, int(args.timeout))})["ID"]
    etcd_call(member, "kv/put", {"key": b64(HANDOFF_KEY), "value": b64(args.to), "lease": lease})
    try:
        wait_for(f"{args.to} to lead", lambda: leader_of(state) == args.to
                 and node_status(state["nodes"][args.to])["role"] == "primary", timeout=args.timeout)
        wait_streaming(state, args.to, args.timeout)
    finally:
        try:
            etcd_call(any_member(state), "lease/revoke", {"ID": lease})
        except Exception:
            pass
    print(json.dumps({"primary": args.to}))


def wait_streaming(state, leader, timeout):
    others = len(state["nodes"]) - 1
    wait_for(f"every standby streaming from {leader}", lambda: query(
        state["nodes"][leader], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0] == others,
        timeout=timeout)


def failover(args):
    etcd_put(any_member(load_state(args.dir)), FAILOVER_KEY, args.set)
    print(json.dumps({"failover": args.set}))


def hold(args):
    """Stops the node's PostgreSQL and keeps it down (its services stopped for an upgrade); a stop that fails
    leaves the node as it was."""
    state = load_state(args.dir)
    marker = os.path.join(node_paths(state["dir"], args.node)["base"], "held")
    lock = node_lock(state, args.node)
    try:
        open(marker, "w").close()
        if postmaster_pid(state, args.node):
            try:
                stop_postgres(state, args.node)
            except Exception:
                os.unlink(marker)
                raise
    finally:
        lock.close()
    print(json.dumps({"held": args.node}))


def release(args):
    """Lets the node's leaderl start its PostgreSQL again (as a standby of the leader), and waits for it."""
    state = load_state(args.dir)
    try:
        os.unlink(os.path.join(node_paths(state["dir"], args.node)["base"], "held"))
    except FileNotFoundError:
        pass
    if args.wait:
        wait_for(f"{args.node} streaming", lambda: node_status(state["nodes"][args.node]).get("streaming") is True,
                 timeout=args.timeout)
    print(json.dumps({"released": args.node}))


def kill(args):
    state = load_state(args.dir)
    pid = postmaster_pid(state, args.node)
    if pid and ours(pid, "postgres"):
        os.kill(pid, signal.SIGKILL)
    print(json.dumps({"killed": args.node, "pid": pid}))


def load(args):
    """Writes numbered rows at a steady rate through a multi-host connection (as the frontends reach the
    backends), counting every acknowledged commit; then reads the table back from the primary."""
    import psycopg2
    state = load_state(args.dir)
    hosts = ",".join(state["nodes"].values())
    target = f"host={hosts} port=5432 user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=1"

    def create():
        # The table, once a primary answers (a busy machine may be electing one when the load starts).
        connection = psycopg2.connect(target)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
        connection.close()
        return True
    wait_for("a primary to write the ledger to", create, timeout=60)
    connection = None
    attempted, acknowledged, failed = 0, set(), 0
    last_success = start = time.monotonic()
    longest_outage = 0.0
    interval = 1.0 / args.rate
    deadline = start + args.seconds
    next_write = start
    # SIGTERM ends the writing early (the rehearsal stops it when the procedure is over); the ledger follows.
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while time.monotonic() < deadline and not stopping:
        attempted += 1
        row = attempted
        try:
            if connection is None or connection.closed:
                connection = psycopg2.connect(target)
                connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO ledger (id) VALUES (%s)", (row,))
            acknowledged.add(row)
            now = time.monotonic()
            longest_outage = max(longest_outage, now - last_success)
            last_success = now
        except Exception:
            failed += 1
            try:
                connection.close()
            except Exception:
                pass
            connection = None
        next_write += interval
        time.sleep(max(0.0, next_write - time.monotonic()))
    # An outage still going on when the writing ends counts too.
    longest_outage = max(longest_outage, time.monotonic() - last_success)
    present = set()
    wait_for("the primary to read the ledger back", lambda: present.update(
        row for (row,) in query_primary(state, "SELECT id FROM ledger")) is None)
    lost = sorted(acknowledged - present)
    print(json.dumps({"attempted": attempted, "acknowledged": len(acknowledged), "lost": len(lost),
                      "lost_ids": lost[:20], "failed": failed, "longest_outage_s": round(longest_outage, 3)}))


def probe(args):
    """One write through the multi-host connection (Drover's `probe:`): exit 0 when it was acknowledged."""
    import psycopg2
    state = load_state(args.dir)
    hosts = ",".join(state["nodes"].values())
    try:
        connection = psycopg2.connect(f"host={hosts} port=5432 user=postgres dbname=postgres "
                                      "target_session_attrs=read-write connect_timeout=1")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO probe DEFAULT VALUES")
        finally:
            connection.close()
    except Exception as error:
        sys.exit(f"datalayer: the write failed: {str(error).strip()[:200]}")


def query_primary(state, sql):
    import psycopg2
    hosts = ",".join(state["nodes"].values())
    connection = psycopg2.connect(f"host={hosts} port=5432 user=postgres dbname=postgres "
                                  "target_session_attrs=read-write connect_timeout=2")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def down(args):
    """Stops every process `up` started, by pid (each leaderl with its process group, then every postmaster with
    a fast shutdown and every etcd member; KILL after 10 s), and removes the directory."""
    directory = os.path.abspath(args.dir)
    try:
        state = load_state(directory)
    except FileNotFoundError:
        return
    # The leaderls first (they would start PostgreSQL again), with what they run (pg_rewind, pg_basebackup).
    leaderls = [pid for key, pid in state["pids"].items() if key.startswith("leaderl-") and ours(pid, "leaderl")]
    for pid in leaderls:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(leaderls, 10)
    members = [pid for key, pid in state["pids"].items() if key.startswith("etcd-") and ours(pid, "etcd")]
    postmasters = [pid for pid in (postmaster_pid(state, name) for name in state["nodes"]) if pid and ours(pid, "postgres")]
    for pid, sig in [(pid, signal.SIGTERM) for pid in members] + [(pid, signal.SIGINT) for pid in postmasters]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    pids = members + postmasters
    wait_gone(pids, 10)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    wait_gone(pids, 10)
    subprocess.run(["rm", "-rf", "--one-file-system", directory], check=True)
    print(json.dumps({"down": list(state["nodes"])}))


def ours(pid, program):
    """The pid still runs `program` (its command line says so): a reused pid is never signalled."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return program.encode() in f.read()
    except OSError:
        return False


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "status", "switchover", "failover", "hold", "release", "kill", "stop-etcd", "start-etcd",
                 "pause-replay", "resume-replay", "leaderl", "load", "probe", "down"):
        command = commands.add_parser(name)
        command.add_argument("--dir", required=True)
        if name == "up":
            command.add_argument("--nodes", required=True)
        if name == "switchover":
            command.add_argument("--to", required=True)
        if name in ("switchover", "release"):
            command.add_argument("--timeout", type=float, default=60)
        if name == "release":
            command.add_argument("--wait", action="store_true")
        if name == "failover":
            command.add_argument("--set", choices=["on", "off"], required=True)
        if name in ("hold", "release", "kill", "stop-etcd", "start-etcd", "pause-replay", "resume-replay", "leaderl"):
            command.add_argument("--node", required=True)
        if name == "load":
            command.add_argument("--seconds", type=float, default=10)
            command.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("datalayer: run it as root (PostgreSQL runs as the postgres user)")
    {"up": up, "status": status, "switchover": switchover, "failover": failover, "hold": hold, "release": release,
     "kill": kill, "stop-etcd": etcd_member, "start-etcd": etcd_member, "pause-replay": replay,
     "resume-replay": replay, "leaderl": leaderl, "load": load, "probe": probe, "down": down}[args.command](args)


if __name__ == "__main__":
    main()
