#!/usr/bin/env bash
# make demo: start the simulated cluster with two frontends, run Drover's whole upgrade against it with
# live progress (plan first, then the run: the backends rolling, then the frontends one at a time), show
# the final state, and tear everything down, also on failure, Ctrl-C or SIGTERM.
set -euo pipefail

# DROVER: the drover binary to demonstrate (make demo: the release binary that make install installs).
drover_bin=${DROVER:-.build/debug/drover}
sandbox_bin=${DROVER_SANDBOX:-.build/debug/drover-sandbox}
dir=$(mktemp -d /tmp/drover-demo.XXXXXX)/sandbox
scale=${DEMO_DELAY_SCALE:-1}
sandbox() { "$sandbox_bin" "$@" --dir "$dir"; }
drover() { local command=$1; shift; "$drover_bin" "$command" --inventory "$dir/inventory.yml" "$@"; }

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
step() { echo; echo "${bold}== $*${reset}"; }

step "Starting a simulated 3-node cluster (chef-backend 2.3.15, package 2.3.16 on every node) and two frontends (chef-server-core 14.0.65, package 15.9.38 on each)"
sandbox up --delay-scale "$scale" --frontends 2

step "drover status"
drover status

step "drover plan upgrade+upgrade-frontends (read-only: discovery, pre-flight, the ordered steps)"
drover plan upgrade+upgrade-frontends

step "drover upgrade --all --yes (the backends, then the frontends, in one run)"
drover upgrade --all --yes

step "Final state"
drover status
ssh -F "$dir/ssh_config" be1 chef-backend-ctl cluster-status
