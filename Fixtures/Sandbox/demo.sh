#!/usr/bin/env bash
# make demo: start the simulated cluster, walk it through the documented zero-downtime upgrade
# (shared/seeds/000: failover off, followers one at a time with the rejoin verified, the leader with
# --failover, failover on, status), show the final state, and tear everything down, also on failure
# or Ctrl-C.
#
# Until `drover upgrade` exists this walks the steps by hand over ssh, as a person would.
set -euo pipefail

bin=${DROVER_BIN:-.build/debug}
dir=$(mktemp -d /tmp/drover-demo.XXXXXX)/sandbox
scale=${DEMO_DELAY_SCALE:-1}
sandbox() { "$bin/drover-sandbox" "$@" --dir "$dir"; }

cleanup() {
    status=$?
    trap - EXIT INT TERM
    echo
    echo "== Tearing the sandbox down"
    sandbox down || true
    rm -rf "$(dirname "$dir")"
    exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "Interrupted."; exit 130' INT TERM

bold=""; reset=""
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$(printf '\033[1m'); reset=$(printf '\033[0m'); fi
started=$(date +%s)
step() { echo; echo "${bold}== [$(( $(date +%s) - started ))s] $*${reset}"; }
on() { local node=$1; shift; echo "   $node\$ $*"; ssh -F "$dir/ssh_config" "$node" "$@" | sed "s/^/   $node| /"; }

# Polls until node's rejoin holds: follower, leaderl 0 waiting, PostgreSQL all synced, ES 3/3.
wait_rejoined() {
    local node=$1 deadline=$(( $(date +%s) + 120 )) last=""
    while :; do
        out=$(ssh -F "$dir/ssh_config" "$node" chef-backend-ctl status 2>/dev/null || true)
        pg=$(echo "$out" | awk '$1=="postgresql"' | sed 's/.*  //')
        le=$(echo "$out" | awk '$1=="leaderl"' | sed 's/.*  //')
        es=$(echo "$out" | awk '$1=="elasticsearch"' | sed 's/.*  //')
        now="$le | $pg | $es"
        [ "$now" != "$last" ] && echo "   waiting for $node: $now" && last=$now
        if [[ $le == *"waiting: 0; follower: 2"* && $pg == *"offline: 0; syncing: 0; synced: 2"* && $es == *"nodes online: 3/3"* ]]; then
            echo "   $node has rejoined"
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { echo "   $node did not rejoin in time" >&2; return 1; }
        sleep 0.5
    done
}

step "Starting a simulated 3-node cluster (chef-backend 2.3.15, package 2.3.16 on every node)"
sandbox up --delay-scale "$scale"
package=$(awk '/^  path:/ {print $2}' "$dir/inventory.yml")

step "Cluster status before the upgrade"
on be1 chef-backend-ctl cluster-status
leader=$(ssh -F "$dir/ssh_config" be1 chef-backend-ctl cluster-status | awk '$4=="leader" {print $1}')
followers=$(ssh -F "$dir/ssh_config" be1 chef-backend-ctl cluster-status | awk '$4=="follower" {print $1}')
echo "   leader: $leader; followers: $(echo $followers)"

step "Step 1: block failover"
on "$leader" chef-backend-ctl set-cluster-failover off

for node in $followers; do
    step "Step 2: upgrade follower $node"
    on "$node" dpkg -i "$package"
    on "$node" chef-backend-ctl upgrade
    wait_rejoined "$node"
done

step "Step 3: upgrade the leader $leader with failover"
on "$leader" dpkg -i "$package"
on "$leader" chef-backend-ctl set-cluster-failover on
on "$leader" chef-backend-ctl upgrade --failover
on "$leader" chef-backend-ctl set-cluster-failover off
wait_rejoined "$leader"

step "Step 4: re-enable failover"
on "$leader" chef-backend-ctl set-cluster-failover on

step "Step 5: verify the cluster is stable"
on "$leader" chef-backend-ctl status
on "$leader" chef-backend-ctl cluster-status
sandbox status
echo
echo "${bold}Done: every node runs 2.3.16, failover is on, and the cluster never lost its leader for longer than an election.${reset}"
