#!/usr/bin/python3
"""A real Chef Backend data layer on loopback addresses: an etcd member and a PostgreSQL 15 instance per
node (the primary on the first, streaming standbys on the others), started and stopped by pid, and a write
load whose ledger says which acknowledged writes were lost and how long writes failed.

Debian's postgresql-15, etcd-server, etcd-client and python3-psycopg2; run as root (PostgreSQL runs as the
`postgres` user). Everything lives under --dir; `down` stops every process `up` started, by pid, and removes
it. Measured facts it relies on: shared/reference/real-services.md.

    datalayer.py up --dir DIR --nodes be1=127.0.50.1,be2=127.0.50.2,be3=127.0.50.3
    datalayer.py status --dir DIR            (JSON: each node's role, LSNs, streaming; etcd health)
    datalayer.py switchover --dir DIR --to be2
    datalayer.py kill --dir DIR --node be1   (kill -9 the node's postmaster)
    datalayer.py load --dir DIR --seconds 10 --rate 50   (JSON: attempted, acknowledged, lost, outage)
    datalayer.py down --dir DIR
"""

import argparse
import json
import os
import pwd
import signal
import subprocess
import sys
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
STATE = "state.json"


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


def up(args):
    directory = os.path.abspath(args.dir)
    nodes = dict(part.split("=", 1) for part in args.nodes.split(","))
    names = list(nodes)
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    state = {"dir": directory, "nodes": nodes, "primary": names[0], "pids": {}}
    save_state(directory, state)
    # etcd: one member per node, on the node's address.
    cluster = ",".join(f"{name}=http://{address}:2380" for name, address in nodes.items())
    for name, address in nodes.items():
        data = os.path.join(directory, "etcd", name)
        os.makedirs(data, mode=0o700, exist_ok=True)
        state["pids"][f"etcd-{name}"] = start_detached([
            "etcd", "--name", name, "--data-dir", data, "--listen-client-urls", f"http://{address}:2379",
            "--advertise-client-urls", f"http://{address}:2379", "--listen-peer-urls", f"http://{address}:2380",
            "--initial-advertise-peer-urls", f"http://{address}:2380", "--initial-cluster", cluster,
            "--initial-cluster-state", "new", "--initial-cluster-token", os.path.basename(directory),
        ], os.path.join(directory, "etcd", f"{name}.log"))
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
    wait_for("every standby streaming", lambda: query(
        nodes[primary], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0] == len(names) - 1)
    wait_for("etcd healthy", lambda: subprocess.run(
        ["etcdctl", "--endpoints", ",".join(f"http://{a}:2379" for a in nodes.values()), "endpoint", "health"],
        capture_output=True, env=dict(os.environ, ETCDCTL_API="3")).returncode == 0)
    print(json.dumps({"up": names, "primary": primary}))


def node_status(address):
    try:
        recovery = query(address, "SELECT pg_is_in_recovery()")[0][0]
        if recovery:
            receive, replay, streaming = query(
                address, "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                "(SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')")[0]
            return {"role": "standby", "receive_lsn": receive, "replay_lsn": replay, "streaming": streaming == 1}
        current, = query(address, "SELECT pg_current_wal_lsn()::text")[0]
        return {"role": "primary", "current_lsn": current}
    except Exception as error:
        return {"role": "down", "error": str(error).strip().splitlines()[0] if str(error).strip() else "down"}


def status(args):
    state = load_state(args.dir)
    result = {name: node_status(address) for name, address in state["nodes"].items()}
    endpoints = ",".join(f"http://{a}:2379" for a in state["nodes"].values())
    health = subprocess.run(["etcdctl", "--endpoints", endpoints, "endpoint", "health"], capture_output=True,
                            text=True, env=dict(os.environ, ETCDCTL_API="3"))
    result["etcd_healthy"] = health.returncode == 0
    print(json.dumps(result))


def stop_postgres(state, name, mode="fast"):
    as_postgres([f"{PG_BIN}/pg_ctl", "stop", "-w", "-m", mode, "-D", node_paths(state["dir"], name)["data"]])
    state["pids"].pop(f"postgres-{name}", None)


def switchover(args):
    """A planned switchover: the old primary stopped cleanly, the target promoted, the other standbys re-pointed,
    the old primary rewound and started as a standby of the new one."""
    state = load_state(args.dir)
    old, new, nodes = state["primary"], args.to, state["nodes"]
    stop_postgres(state, old)
    as_postgres([f"{PG_BIN}/pg_ctl", "promote", "-w", "-D", node_paths(state["dir"], new)["data"]])
    state["primary"] = new
    save_state(args.dir, state)
    conninfo = f"host={nodes[new]} port=5432 user=postgres application_name=%s"
    for name in nodes:
        if name in (old, new):
            continue
        query(nodes[name], f"ALTER SYSTEM SET primary_conninfo = '{conninfo % name}'")
        query(nodes[name], "SELECT pg_reload_conf()")
    # pg_rewind finds nothing to rewind unless the new timeline's checkpoint is written first.
    query(nodes[new], "CHECKPOINT")
    as_postgres([f"{PG_BIN}/pg_rewind", "-D", node_paths(state["dir"], old)["data"], "-R",
                 f"--source-server={dsn(nodes[new])}"])
    start_postgres(state, old)
    save_state(args.dir, state)
    print(json.dumps({"primary": new}))


def kill(args):
    state = load_state(args.dir)
    pid = state["pids"].get(f"postgres-{args.node}")
    if pid:
        os.kill(pid, signal.SIGKILL)
    print(json.dumps({"killed": args.node, "pid": pid}))


def load(args):
    """Writes numbered rows at a steady rate through a multi-host connection (as the frontends reach the
    backends), counting every acknowledged commit; then reads the table back from the primary."""
    import psycopg2
    state = load_state(args.dir)
    hosts = ",".join(state["nodes"].values())
    target = f"host={hosts} port=5432 user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=1"
    connection = psycopg2.connect(target)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
    attempted, acknowledged, failed = 0, set(), 0
    last_success = start = time.monotonic()
    longest_outage = 0.0
    interval = 1.0 / args.rate
    deadline = start + args.seconds
    next_write = start
    while time.monotonic() < deadline:
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
    present = set()
    wait_for("the primary to read the ledger back", lambda: present.update(
        row for (row,) in query_primary(state, "SELECT id FROM ledger")) is None)
    lost = sorted(acknowledged - present)
    print(json.dumps({"attempted": attempted, "acknowledged": len(acknowledged), "lost": len(lost),
                      "lost_ids": lost[:20], "failed": failed, "longest_outage_s": round(longest_outage, 3)}))


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
    """Stops every process `up` started, by pid (TERM, then KILL after 10 s), and removes the directory."""
    directory = os.path.abspath(args.dir)
    try:
        state = load_state(directory)
    except FileNotFoundError:
        return
    pids = list(state["pids"].values())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["rm", "-rf", "--one-file-system", directory], check=True)
    print(json.dumps({"down": list(state["nodes"])}))


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
    for name in ("up", "status", "switchover", "kill", "load", "down"):
        command = commands.add_parser(name)
        command.add_argument("--dir", required=True)
        if name == "up":
            command.add_argument("--nodes", required=True)
        if name == "switchover":
            command.add_argument("--to", required=True)
        if name == "kill":
            command.add_argument("--node", required=True)
        if name == "load":
            command.add_argument("--seconds", type=float, default=10)
            command.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("datalayer: run it as root (PostgreSQL runs as the postgres user)")
    {"up": up, "status": status, "switchover": switchover, "kill": kill, "load": load, "down": down}[args.command](args)


if __name__ == "__main__":
    main()
