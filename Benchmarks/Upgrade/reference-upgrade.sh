#!/usr/bin/env bash
# The reference of `make bench-upgrade`: Chef's documented rolling upgrade of a Chef Backend cluster
# (shared/seeds/000) as an engineer would script it by hand, over OpenSSH with ControlMaster (one
# multiplexed connection per node), with the same checks Drover makes before it calls a node done:
# follower again; leaderl leader 1, waiting 0, follower 2; postgresql offline 0, syncing 0, synced 2;
# etcd 3/3; elasticsearch 3/3 online (yellow allowed while versions are mixed); no unsynced sentinel;
# at the target version. Each check is the command one runs by hand (cluster-status, status, test -e of
# the sentinel, cat of the version manifest), one ssh call each, polled every POLL_INTERVAL seconds
# (default: the inventory's poll_interval) until it holds.
#
#   Benchmarks/Upgrade/reference-upgrade.sh SANDBOX_DIR     # a `drover-sandbox up` directory
set -euo pipefail
dir=${1:?usage: reference-upgrade.sh SANDBOX_DIR}
inventory=$dir/inventory.yml
package=$(awk '/^package:/ {p = 1} p && /^  path:/ {print $2; exit}' "$inventory")
target=$(awk '/^package:/ {p = 1} p && /^  version:/ {print $2; exit}' "$inventory")
interval=$(awk '/^  poll_interval:/ {print $2; exit}' "$inventory")
case "$interval" in *ms) interval=$(awk -v v="${interval%ms}" 'BEGIN {print v / 1000}') ;; *s) interval=${interval%s} ;; esac
poll=${POLL_INTERVAL:-${interval:-1}}
timeout=${TIMEOUT:-60}
control=$(mktemp -d /tmp/reference-upgrade.XXXXXX)
nodes=(be1 be2 be3)

on() {
    local node=$1
    shift
    ssh -F "$dir/ssh_config" -o ControlMaster=auto -o ControlPath="$control/%n" -o ControlPersist=120 "$node" "$@"
}
cleanup() {
    for node in "${nodes[@]}"; do
        ssh -F "$dir/ssh_config" -o ControlPath="$control/$node" -O exit "$node" 2>/dev/null || true
    done
    rm -rf "$control"
}
trap cleanup EXIT
say() { printf '[reference] %s\n' "$*" >&2; }

# The leader, from cluster-status (Name IP GUID Role PG ES).
leader_seen_by() { on "$1" chef-backend-ctl cluster-status | awk 'NR > 1 && $4 == "leader" {print $1}'; }

# NODE rejoined: each check is the command an engineer runs by hand, one ssh call each.
rejoined() {
    local node=$1 roles status
    roles=$(on "$node" chef-backend-ctl cluster-status) || return 1
    awk -v node="$node" '$1 == node && $4 == "follower" {ok = 1} END {exit !ok}' <<<"$roles" || return 1
    # status exits non-zero while the cluster is degraded; the table says why.
    status=$(on "$node" chef-backend-ctl status) || true
    grep -q 'leader: 1; waiting: 0; follower: 2' <<<"$status" || return 1
    grep -q 'leader: 1; offline: 0; syncing: 0; synced: 2' <<<"$status" || return 1
    grep -q 'healthy nodes: 3/3' <<<"$status" || return 1
    grep -Eq 'state: (green|yellow); nodes online: 3/3' <<<"$status" || return 1
    ! on "$node" test -e /var/opt/chef-backend/leaderl/data/unsynced || return 1
    on "$node" cat /opt/chef-backend/version-manifest.json | grep -Eq "\"build_version\": *\"$target\"" || return 1
}

wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || { say "timed out waiting for $what"; exit 1; }
        sleep "$poll"
    done
    say "$what"
}

leader=$(leader_seen_by be1)
[ -n "$leader" ] || { say "no leader"; exit 1; }
followers=()
for node in "${nodes[@]}"; do [ "$node" = "$leader" ] || followers+=("$node"); done
say "leader $leader, followers ${followers[*]}"

on "$leader" chef-backend-ctl set-cluster-failover off
for node in "${followers[@]}"; do
    on "$node" dpkg -i "$package" >/dev/null
    on "$node" chef-backend-ctl upgrade >/dev/null
    wait_for "$node rejoined" rejoined "$node"
done
on "$leader" chef-backend-ctl set-cluster-failover on
on "$leader" dpkg -i "$package" >/dev/null
on "$leader" chef-backend-ctl upgrade --failover >/dev/null
moved() { local now; now=$(leader_seen_by "${followers[0]}") && [ -n "$now" ] && [ "$now" != "$leader" ]; }
wait_for "leader moved from $leader" moved
wait_for "$leader rejoined" rejoined "$leader"
new_leader=$(leader_seen_by "${followers[0]}")
on "$new_leader" chef-backend-ctl set-cluster-failover off
on "$new_leader" chef-backend-ctl set-cluster-failover on
on "$new_leader" chef-backend-ctl status >/dev/null
say "upgraded to $target; leader $new_leader"
