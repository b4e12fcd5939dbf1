#!/usr/bin/env bash
# Local chain for iotegrity: start/stop a native Anvil on 127.0.0.1 (chain 31337, Anvil's standard
# test mnemonic), and deploy the contracts with forge, writing anvil/deployments/<chainId>.json.
#
#   anvil/chain.sh up        # start + deploy (deploys only when it starts a fresh chain)
#   anvil/chain.sh start     # idempotent; pid and log in .local/anvil/
#   anvil/chain.sh deploy    # or: RPC_URL=https://… PRIVATE_KEY=0x… anvil/chain.sh deploy
#   anvil/chain.sh stop
#   anvil/chain.sh status
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.local/anvil"
port="${ANVIL_PORT:-8545}"
rpc="${RPC_URL:-http://127.0.0.1:$port}"
anvil="$root/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
forge="$root/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
cast="$root/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
mnemonic="test test test test test test test test test test test junk"

running() { [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "anvil already running (pid $(cat "$state/pid")) on $rpc"; exit 0; fi
    mkdir -p "$state"
    "$anvil" --host 127.0.0.1 --port "$port" --chain-id 31337 --mnemonic "$mnemonic" \
      >"$state/anvil.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 50); do
      "$cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && { echo "anvil up on $rpc (pid $(cat "$state/pid"))"; exit 0; }
      sleep 0.1
    done
    echo "anvil did not come up; see $state/anvil.log" >&2; exit 1 ;;
  up)
    if running; then "$0" status; else "$0" start && "$0" deploy; fi ;;
  stop)
    if running; then kill "$(cat "$state/pid")"; echo "anvil stopped"; else echo "anvil not running"; fi
    rm -f "$state/pid" ;;
  status)
    if running; then echo "anvil running (pid $(cat "$state/pid")) on $rpc"; else echo "anvil not running"; exit 1; fi ;;
  deploy)
    cd "$root"
    mkdir -p anvil/deployments # git keeps no empty directory: a fresh clone has none
    "$forge" script contracts/script/Deploy.s.sol --rpc-url "$rpc" --broadcast --slow -q
    id="$("$cast" chain-id --rpc-url "$rpc")"
    echo "address book: anvil/deployments/$id.json"; cat "anvil/deployments/$id.json"; echo ;;
  *)
    echo "usage: $0 up|start|stop|status|deploy" >&2; exit 2 ;;
esac
