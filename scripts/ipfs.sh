#!/usr/bin/env bash
# A local IPFS node for the tests and the demo: js-ipfs (tools/ipfs, npm `ipfs`), offline, on
# 127.0.0.1, speaking Kubo's RPC API (production runs Kubo; ../shared/TOOLCHAIN.md).
#
#   scripts/ipfs.sh start DIR API_PORT   # idempotent; repo in DIR/repo, log in DIR/ipfs.log
#   scripts/ipfs.sh stop DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jsipfs="$root/tools/ipfs/node_modules/.bin/jsipfs"
cmd="${1:-}"; dir="${2:?directory}"; port="${3:-5001}"
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
export IPFS_PATH="$dir/repo"
export NODE_OPTIONS="--require $root/tools/ipfs/polyfill.cjs"
up() { NODE_OPTIONS= node -e 'fetch(process.argv[1], { method: "POST", signal: AbortSignal.timeout(2000) })
  .then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://127.0.0.1:$port/api/v0/version"; }

case "$cmd" in
  start)
    [[ -x "$jsipfs" ]] || { echo "js-ipfs is not installed: run 'make deps' (npm install in tools/ipfs)" >&2; exit 1; }
    if [[ -f "$dir/daemon.pid" ]] && kill -0 "$(cat "$dir/daemon.pid")" 2>/dev/null; then
      echo "ipfs already running: http://127.0.0.1:$port"; exit 0
    fi
    if [[ ! -f "$IPFS_PATH/config" ]]; then
      "$jsipfs" init --empty-repo >"$dir/init.log" 2>&1
    fi
    grpc=$(NODE_OPTIONS= node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
      console.log(s.address().port); s.close(); })')   # a free port for the gRPC server
    node "$root/tools/ipfs/configure.cjs" "$IPFS_PATH" "$port" "$grpc"
    rm -f "$IPFS_PATH/api" "$IPFS_PATH/repo.lock"   # left by a node that was killed
    nohup "$jsipfs" daemon --offline --enable-preload=false >>"$dir/ipfs.log" 2>&1 &
    echo $! >"$dir/daemon.pid"
    for _ in $(seq 600); do
      up && { echo "ipfs up: http://127.0.0.1:$port"; exit 0; }
      kill -0 "$(cat "$dir/daemon.pid")" 2>/dev/null || { echo "ipfs exited; see $dir/ipfs.log" >&2; tail -20 "$dir/ipfs.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "ipfs did not answer on :$port within 60 s; see $dir/ipfs.log" >&2; exit 1 ;;
  stop)
    if [[ -f "$dir/daemon.pid" ]] && kill -0 "$(cat "$dir/daemon.pid")" 2>/dev/null; then
      pid=$(cat "$dir/daemon.pid"); kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/daemon.pid"; echo "ipfs stopped"
    else
      echo "ipfs not running"
    fi ;;
  *) echo "usage: $0 start DIR API_PORT | stop DIR" >&2; exit 2 ;;
esac
