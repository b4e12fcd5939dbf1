#!/usr/bin/env bash
# Local chain for iotegrity: start/stop a native Anvil on 127.0.0.1 (chain 31337, Anvil's standard
# test mnemonic), and deploy the contracts with forge, writing anvil/deployments/<chainId>.json.
# The chain's state persists in .local/anvil/state.json (dumped every 10 s and at stop, loaded at
# start), so `make down` / `make up` resume the same chain — as the database beside it does.
#
#   anvil/chain.sh up        # start + deploy (deploys only if the address book's contracts are not on the chain)
#   anvil/chain.sh start     # idempotent; pid, log and state in .local/anvil/
#   anvil/chain.sh deploy    # or: RPC_URL=https://… PRIVATE_KEY=0x… anvil/chain.sh deploy
#   anvil/chain.sh stop      # dumps the state
#   anvil/chain.sh reset     # stop and forget the chain's state (`make down` then `make reset`)
#   anvil/chain.sh status
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
state="$root/.local/anvil"
port="${ANVIL_PORT:-8545}"
rpc="${RPC_URL:-http://127.0.0.1:$port}"

running() { [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "anvil already running (pid $(cat "$state/pid")) on $rpc"; exit 0; fi
    mkdir -p "$state"
    "$anvil" --host 127.0.0.1 --port "$port" --chain-id 31337 --mnemonic "$anvil_mnemonic" \
      --state "$state/state.json" --state-interval 10 >"$state/anvil.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 50); do
      "$cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && { echo "anvil up on $rpc (pid $(cat "$state/pid"))"; exit 0; }
      sleep 0.1
    done
    echo "anvil did not come up; see $state/anvil.log" >&2; exit 1 ;;
  up)
    "$0" start
    book="$root/anvil/deployments/31337.json"
    registry=$( [[ -f "$book" ]] && json identityRegistry "$book" || true)
    if [[ -n "$registry" && "$("$cast" code --rpc-url "$rpc" "$registry")" != "0x" ]]; then
      echo "contracts already deployed (anvil/deployments/31337.json)"
    else
      "$0" deploy
    fi ;;
  stop)
    if running; then
      pid="$(cat "$state/pid")"; kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done # let it dump its state
      echo "anvil stopped (state kept in .local/anvil/state.json)"
    else echo "anvil not running"; fi
    rm -f "$state/pid" ;;
  reset)
    "$0" stop; rm -f "$state/state.json"; echo "chain state forgotten" ;;
  status)
    if running; then echo "anvil running (pid $(cat "$state/pid")) on $rpc"; else echo "anvil not running"; exit 1; fi ;;
  deploy)
    cd "$root"
    mkdir -p anvil/deployments # git keeps no empty directory: a fresh clone has none
    "$forge" script contracts/script/Deploy.s.sol --rpc-url "$rpc" --broadcast --slow -q
    id="$("$cast" chain-id --rpc-url "$rpc")"
    echo "address book: anvil/deployments/$id.json"; cat "anvil/deployments/$id.json"; echo ;;
  *)
    echo "usage: $0 up|start|stop|reset|status|deploy" >&2; exit 2 ;;
esac
