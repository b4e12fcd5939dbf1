#!/usr/bin/env bash
# `make up` / `make down`: the demo's local stack, kept running for interactive use —
# Anvil on 127.0.0.1:8545 with the contracts deployed (anvil/chain.sh), PostgreSQL on
# 127.0.0.1:5433 (data in .local/pg), a registered service identity (keys in .local/up/service,
# password in .local/up/pw.txt), and `iotegrityd service` watching iot.readings with its ingest
# API on 127.0.0.1:8080 and metrics on 127.0.0.1:9187 (config and log in .local/up/).
#
#   scripts/up.sh up      # idempotent: starts what is not running
#   scripts/up.sh down    # stops the daemon, PostgreSQL and Anvil
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
up="$root/.local/up"
rpc="http://127.0.0.1:8545"
db="postgres://postgres@127.0.0.1:5433/postgres"
book="$root/anvil/deployments/31337.json"
iot="$root/target/debug/iotegrity"
cast="$root/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
funder=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 # Anvil dev account 0
daemon_running() { [[ -f "$up/iotegrityd.pid" ]] && kill -0 "$(cat "$up/iotegrityd.pid")" 2>/dev/null; }

case "${1:-}" in
  up)
    anvil/chain.sh up
    scripts/postgres.sh start .local/pg 5433
    mkdir -p "$up"
    [[ -f "$up/pw.txt" ]] || echo "local dev password" >"$up/pw.txt"
    # A fresh chain (new Anvil process) needs the service registered again.
    if [[ "$(cat "$up/registered" 2>/dev/null)" != "$(cat .local/anvil/pid)" ]]; then
      rm -rf "$up/service"
      keys=$("$iot" --json identity keygen --dir "$up/service" --password-file "$up/pw.txt")
      offline=$(sed -E 's/.*"offline":"([^"]+)".*/\1/' <<<"$keys")
      online=$(sed -E 's/.*"online":"([^"]+)".*/\1/' <<<"$keys")
      for who in "$offline" "$online"; do # the online key pays for anchoring
        "$cast" send --rpc-url "$rpc" --private-key "$funder" "$who" --value 10ether >/dev/null
      done
      "$iot" identity register --rpc-url "$rpc" --deployments "$book" --role service \
        --online-keystore "$up/service/online.json" --keystore "$up/service/offline.json" \
        --password-file "$up/pw.txt"
      cat .local/anvil/pid >"$up/registered"
      daemon_running && kill "$(cat "$up/iotegrityd.pid")" # its key was for the old chain
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
    if daemon_running; then
      echo "iotegrityd service already running (pid $(cat "$up/iotegrityd.pid"))"
    else
      nohup "$root/target/debug/iotegrityd" service --config "$up/iotegrityd.toml" \
        </dev/null >/dev/null 2>"$up/iotegrityd.log" &
      echo $! >"$up/iotegrityd.pid"
      for _ in $(seq 100); do grep -q "active: watching" "$up/iotegrityd.log" && break; sleep 0.1; done
      grep -q "active: watching" "$up/iotegrityd.log" || { tail "$up/iotegrityd.log" >&2; exit 1; }
      echo "iotegrityd service up (pid $(cat "$up/iotegrityd.pid")): ingest http://127.0.0.1:8080, metrics :9187"
    fi
    cat <<EOT

The stack is up. Service online key: $up/service/online.json (password in $up/pw.txt).
  export ETH_RPC_URL=$rpc IOTEGRITY_DEPLOYMENTS=$book IOTEGRITY_DATABASE_URL=$db
  iotegrity identity keygen --dir keys/dev --password-file pw.txt      # then register a device and a gateway
  iotegrityd gateway --config gateway.toml                              # service.url = http://127.0.0.1:8080
  iotegrity audit --table iot.readings
Logs: $up/iotegrityd.log. Stop everything: make down
EOT
    ;;
  down)
    if daemon_running; then kill "$(cat "$up/iotegrityd.pid")" && echo "iotegrityd stopped"; fi
    rm -f "$up/iotegrityd.pid"
    scripts/postgres.sh stop .local/pg || true
    anvil/chain.sh stop ;;
  *)
    echo "usage: $0 up|down" >&2; exit 2 ;;
esac
