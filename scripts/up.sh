#!/usr/bin/env bash
# `make up` / `make down`: the demo's local stack, kept running for interactive use —
# Anvil on 127.0.0.1:8545 with the contracts deployed (anvil/chain.sh), PostgreSQL on
# 127.0.0.1:5433 (data in .local/pg), a registered service identity (keys in .local/up/service,
# password in .local/up/pw.txt), and `iotegrityd service` watching iot.readings with its ingest
# API on 127.0.0.1:8080 and metrics on 127.0.0.1:9187, and `iotegrityd explorer` (the auditor's
# web page) on http://127.0.0.1:8090/ (configs and logs in .local/up/).
#
# The chain and the database are kept together: `down` stops both and keeps both (Anvil's state is
# dumped to .local/anvil/state.json and loaded again by `up`), `reset` forgets both. (A fresh chain
# beside an old database would make every stored reading look forged: its keys would be on no chain.)
#
#   scripts/up.sh up      # idempotent: starts what is not running
#   scripts/up.sh down    # stops the daemon, PostgreSQL and Anvil; keeps their data
#   scripts/up.sh reset   # down, then forgets the chain, the database and the service's keys
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$root"
up="$root/.local/up"
rpc="http://127.0.0.1:8545"
db="postgres://postgres@127.0.0.1:5433/postgres"
book="$root/anvil/deployments/31337.json"
running() { [[ -f "$up/$1.pid" ]] && kill -0 "$(cat "$up/$1.pid")" 2>/dev/null; }
daemon_running() { running iotegrityd; }
# start NAME ROLE READY WHERE: runs `iotegrityd ROLE --config $up/NAME.toml` in the background
# (log $up/NAME.log, pid $up/NAME.pid) unless it runs already, and waits for READY in its log.
start() {
  local name=$1 role=$2 ready=$3 where=$4
  if running "$name"; then
    echo "iotegrityd $role already running (pid $(cat "$up/$name.pid"))"
    return
  fi
  nohup "$root/target/debug/iotegrityd" "$role" --config "$up/$name.toml" </dev/null >/dev/null 2>"$up/$name.log" &
  echo $! >"$up/$name.pid"
  for _ in $(seq 100); do grep -q "$ready" "$up/$name.log" && break; sleep 0.1; done
  grep -q "$ready" "$up/$name.log" || { tail "$up/$name.log" >&2; exit 1; }
  echo "iotegrityd $role up (pid $(cat "$up/$name.pid")): $where"
}

case "${1:-}" in
  up)
    anvil/chain.sh up
    scripts/postgres.sh start .local/pg 5433
    mkdir -p "$up"
    [[ -f "$up/pw.txt" ]] || echo "local dev password" >"$up/pw.txt"
    # The service identity is registered once per chain: again only if its key is not active on it.
    registry=$(json identityRegistry <"$book")
    online=$(cat "$up/service/online.addr" 2>/dev/null || true)
    if [[ -z "$online" || "$("$cast" call --rpc-url "$rpc" "$registry" "isActive(address)(bool)" "$online")" != "true" ]]; then
      rm -rf "$up/service"
      keys=$("$iot" --json identity keygen --dir "$up/service" --password-file "$up/pw.txt")
      offline=$(json offline <<<"$keys")
      online=$(json online <<<"$keys")
      for who in "$offline" "$online"; do # the online key pays for anchoring
        "$cast" send --rpc-url "$rpc" --private-key "$anvil_dev_key" "$who" --value 10ether >/dev/null
      done
      "$iot" identity register --rpc-url "$rpc" --deployments "$book" --role service \
        --online-keystore "$up/service/online.json" --keystore "$up/service/offline.json" \
        --password-file "$up/pw.txt"
      echo "$online" >"$up/service/online.addr"
      echo "$offline" >"$up/service/offline.addr"
      daemon_running && kill "$(cat "$up/iotegrityd.pid")" # its key was for another chain
      running explorer && kill "$(cat "$up/explorer.pid")"  # its index was of another chain
    fi
    cat >"$up/iotegrityd.toml" <<TOML
[database]
url = "$db"
[chain]
rpc_url = "$rpc"
deployments = "$book"
keystore = "$up/service/online.json"
password_file = "$up/pw.txt"
[ingest]
listen = "127.0.0.1:8080"
[metrics]
listen = "127.0.0.1:9187"
[[tables]]
name = "iot.readings"
m = 100
n = 4
max_wait_secs = 10
TOML
    start iotegrityd service "active: watching" "ingest http://127.0.0.1:8080, metrics :9187"
    cat >"$up/explorer.toml" <<TOML
[explorer]
listen = "127.0.0.1:8090"
state_dir = "$up/explorer-state"
[chain]
rpc_url = "$rpc"
deployments = "$book"
[database]
url = "$db"
[[tables]]
name = "iot.readings"
TOML
    start explorer explorer "explorer serving" "http://127.0.0.1:8090/"
    cat <<EOT

The stack is up. The explorer: http://127.0.0.1:8090/
Service online key: $up/service/online.json (password in $up/pw.txt).
  export ETH_RPC_URL=$rpc IOTEGRITY_DEPLOYMENTS=$book IOTEGRITY_DATABASE_URL=$db
  iotegrity identity keygen --dir keys/dev --password-file pw.txt      # then register a device and a gateway
  iotegrityd gateway --config gateway.toml                              # service.url = http://127.0.0.1:8080
  iotegrity audit --table iot.readings --anchorer $(cat "$up/service/offline.addr")
Logs: $up/iotegrityd.log, $up/explorer.log. Stop everything (keeping chain and database): make down; forget both: make reset
EOT
    ;;
  down)
    if running explorer; then kill "$(cat "$up/explorer.pid")" && echo "iotegrityd explorer stopped"; fi
    if daemon_running; then kill "$(cat "$up/iotegrityd.pid")" && echo "iotegrityd stopped"; fi
    rm -f "$up/iotegrityd.pid" "$up/explorer.pid"
    scripts/postgres.sh stop .local/pg || true
    anvil/chain.sh stop ;;
  reset)
    "$0" down
    anvil/chain.sh reset
    rm -rf .local/pg "$up" anvil/deployments/31337.json
    echo "chain, database and service keys forgotten: the next make up starts afresh" ;;
  *)
    echo "usage: $0 up|down|reset" >&2; exit 2 ;;
esac
