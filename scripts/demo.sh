#!/usr/bin/env bash
# The iotegrity demo, end to end on a throwaway local chain and database:
# deploy (the deployer is the governance) → register a device, a gateway and a service (two keys
# each) → the governance appoints a notary and a CA, which register; a self-declared notary is
# refused → names for the gateway and the service → pin the gateway's TLS certificate on chain
# with its key's proof of possession and verify it → the service vouches for the gateway → data at rest: the gateway daemon reads a simulated P1 smart meter (real DSMR 5
# telegrams, CRC-checked) and two room sensors, signs as device and countersigns, journals, and
# delivers to service.iot, known by name only: an ingest-only daemon serving TLS 1.3 pinned on
# chain, which lets in only the gateway's pinned certificate (mutual TLS) — also across a service
# outage (store-and-forward) → the service commands the meter through the gateway → an ingest-only
# plain daemon refuses a hostile body with its path → the gateway votes on service.iot with a
# handshake proof of a pinned channel → the daemon anchors receipts → audit (clean) →
# a stored reading edited in Postgres → audit names it → the editor covers up (deletes the
# receipts and batches, moves the watermark back) → the daemon refuses to anchor the edited rows
# again, and the audit, trusting only the chain, names the range. Data in process: the service
# offers a job on the anchored diabetes table, a worker proposes, fetches its batches, refuses a
# tampered one, trains, reports; the service evaluates on held-out rows, ends the job, the worker
# is paid; then iotegrityd worker takes a second job hands off, the service daemon judges it, both
# vote. Federated learning: three participants, three rounds, models on IPFS, a poisoned model
# scored down and left out, the reward split. Everything lives in .local/demo/
# and is stopped at exit.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$root"
demo="$root/.local/demo"
rm -rf "$demo"; mkdir -p "$demo"
port="${DEMO_PORT:-8546}"
pg_port="${DEMO_PG_PORT:-5544}"
api_port="${DEMO_API_PORT:-8547}"
gw_port="${DEMO_GATEWAY_PORT:-8548}"
ipfs_port="${DEMO_IPFS_PORT:-8551}"
explorer_port="${DEMO_EXPLORER_PORT:-8554}"
db="postgres://postgres@127.0.0.1:$pg_port/postgres"
export ETH_RPC_URL="http://127.0.0.1:$port"
export IOTEGRITY_DEPLOYMENTS="$demo/deployment.json"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "local chain on $ETH_RPC_URL"
"$anvil" --host 127.0.0.1 --port "$port" --silent >"$demo/anvil.log" 2>&1 &
anvil_pid=$!
daemon_pid=""
gateway_pid=""
worker_pid=""
front_pid=""
tls_pid=""
explorer_pid=""
cleanup() {
  [[ -n "$explorer_pid" ]] && kill "$explorer_pid" 2>/dev/null && wait "$explorer_pid" 2>/dev/null
  [[ -n "$gateway_pid" ]] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  [[ -n "$worker_pid" ]] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [[ -n "$front_pid" ]] && kill "$front_pid" 2>/dev/null && wait "$front_pid" 2>/dev/null
  [[ -n "$tls_pid" ]] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
  "$root/scripts/postgres.sh" stop "$demo/pg" >/dev/null || true
  "$root/scripts/ipfs.sh" stop "$demo/ipfs" >/dev/null 2>&1 || true
  kill $anvil_pid 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do "$cast" chain-id >/dev/null 2>&1 && break; sleep 0.1; done

step "deploy (forge script contracts/script/Deploy.s.sol)"
mkdir -p anvil/deployments # where Deploy.s.sol may write; a fresh clone has none
# Its own file name there, so a `make up` stack's address book (31337.json) is left alone.
ADDRESS_BOOK=anvil/deployments/demo.json "$forge" script contracts/script/Deploy.s.sol --rpc-url "$ETH_RPC_URL" --broadcast -q
mv anvil/deployments/demo.json "$IOTEGRITY_DEPLOYMENTS"
cat "$IOTEGRITY_DEPLOYMENTS"

echo "demo password" >"$demo/pw.txt"
wallet() { echo --keystore "$demo/$1/offline.json" --password-file "$demo/pw.txt"; }
online_wallet() { echo --keystore "$demo/$1/online.json" --password-file "$demo/pw.txt"; }
declare -A offline online
for who in device gateway service room1 room2 worker; do
  role=$who; [[ $who == room* ]] && role=device
  step "$who: two keys (offline controls, online signs), funded, registered as $role"
  keys=$("$iot" --json identity keygen --dir "$demo/$who" --password-file "$demo/pw.txt")
  offline[$who]=$(json offline <<<"$keys")
  online[$who]=$(json online <<<"$keys")
  "$cast" send --private-key "$anvil_dev_key" "${offline[$who]}" --value 1ether >/dev/null
  # shellcheck disable=SC2046
  "$iot" identity register --role "$role" --online-keystore "$demo/$who/online.json" $(wallet "$who")
done

step "the governance (the deploying key here; a multisig in production) appoints a notary and a CA"
for who in notary ca; do
  keys=$("$iot" --json identity keygen --dir "$demo/$who" --password-file "$demo/pw.txt")
  offline[$who]=$(json offline <<<"$keys")
  online[$who]=$(json online <<<"$keys")
  "$cast" send --private-key "$anvil_dev_key" "${offline[$who]}" --value 1ether >/dev/null
done
echo "a notary that appoints itself is refused:"
# shellcheck disable=SC2046
"$iot" identity register --role notary --online-keystore "$demo/notary/online.json" $(wallet notary) 2>&1 | sed 's/^/  /' || true
"$iot" identity appoint "${offline[notary]}" --role notary --private-key "$anvil_dev_key"
"$iot" identity appoint "${offline[ca]}" --role ca --private-key "$anvil_dev_key"
for who in notary ca; do
  # shellcheck disable=SC2046
  "$iot" identity register --role "$who" --online-keystore "$demo/$who/online.json" $(wallet "$who")
done
"$iot" identity show "${offline[notary]}" | grep role

step "names on chain"
# shellcheck disable=SC2046
"$iot" name register gateway.iot --ip 192.168.1.20 $(wallet gateway)
# shellcheck disable=SC2046
"$iot" name register service.iot --ip 2001:db8::5 $(wallet service)
echo "gateway.iot resolves to $("$iot" name resolve gateway.iot)"

step "the gateway's TLS certificate, pinned on chain (its key proves possession: nobody can pin a key they do not hold)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -keyout "$demo/gateway/tls.key" -out "$demo/gateway/tls.pem" -subj /CN=gateway.iot 2>/dev/null
# Its notBefore is this second; Anvil's clock may lag the wall clock by up to one: let the block
# that pins it be past notBefore, so that the verify below holds.
sleep 1
# shellcheck disable=SC2046
"$iot" cert add gateway.iot --cert "$demo/gateway/tls.pem" --key "$demo/gateway/tls.key" $(wallet gateway)
"$iot" cert verify gateway.iot --cert "$demo/gateway/tls.pem"

step "the service vouches for the gateway"
# shellcheck disable=SC2046
"$iot" identity vouch "${online[gateway]}" --value 0.1ether $(wallet service)
"$iot" identity show "${online[gateway]}"

step "data at rest: PostgreSQL and the service daemon (iotegrityd service, ingest API on :$api_port)"
"$root/scripts/postgres.sh" start "$demo/pg" "$pg_port"
psql() { "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql" -X -q -At -v ON_ERROR_STOP=1 "$db" -c "$1"; }
"$cast" send --private-key "$anvil_dev_key" "${online[service]}" --value 1ether >/dev/null # the online key pays for anchors
echo "a public data set for the job market: the diabetes table (Efron et al. 2004), anchored like any other"
"$iot" dataset load --db "$db" --table public.diabetes
echo "an IPFS node (js-ipfs, offline, on :$ipfs_port): the service daemon pins its federated trainings' models there"
"$root/scripts/ipfs.sh" start "$demo/ipfs" "$ipfs_port"
export IOTEGRITY_IPFS="http://127.0.0.1:$ipfs_port"
cat >"$demo/iotegrityd.toml" <<TOML
[database]
url = "$db"
[chain]
rpc_url = "$ETH_RPC_URL"
deployments = "$IOTEGRITY_DEPLOYMENTS"
keystore = "$demo/service/online.json"
password_file = "$demo/pw.txt"
[receipts]
poll_interval_ms = 200
[ingest]
listen = "127.0.0.1:$api_port"
[market]
accept_proposals = true
evaluate_results = true
[[tables]]
name = "iot.readings"
m = 50
n = 4
max_wait_secs = 2
[[tables]]
name = "public.diabetes"
m = 40
n = 4
max_wait_secs = 2
[learning]
ipfs = "$IOTEGRITY_IPFS"
poll_interval_ms = 200
TOML
"$root/target/debug/iotegrityd" service --config "$demo/iotegrityd.toml" 2>"$demo/iotegrityd.log" &
daemon_pid=$!
for _ in $(seq 100); do grep -q "active: watching" "$demo/iotegrityd.log" && break; sleep 0.1; done

step "the auditor's explorer (iotegrityd explorer, read only) on http://127.0.0.1:$explorer_port/"
cat >"$demo/explorer.toml" <<TOML
[explorer]
listen = "127.0.0.1:$explorer_port"
poll_interval_ms = 300
state_dir = "$demo/explorer-state"
anchorer = "${offline[service]}"
[chain]
rpc_url = "$ETH_RPC_URL"
deployments = "$IOTEGRITY_DEPLOYMENTS"
[database]
url = "$db"
[[tables]]
name = "iot.readings"
[[tables]]
name = "public.diabetes"
TOML
"$root/target/debug/iotegrityd" explorer --config "$demo/explorer.toml" 2>"$demo/explorer.log" &
explorer_pid=$!
for _ in $(seq 100); do grep -q "explorer serving" "$demo/explorer.log" && break; sleep 0.1; done
echo "it indexes every event of the deployment and shows each anchor as the chain records it"
# The explorer's JSON routes, for the demo's printouts: explore GET PATH EXPRESSION.
explore() {
  python3 -c "import json,sys,urllib.request,urllib.error
try: d=json.load(urllib.request.urlopen('http://127.0.0.1:$explorer_port'+sys.argv[1]))
except urllib.error.HTTPError as e: d=json.load(e)
print($2)" "$1"
}

step "the secure channel (docs/secure-channel.md): an ingest-only iotegrityd serves the API over TLS 1.3 as service.iot"
tls_port="${DEMO_TLS_PORT:-8552}"
# shellcheck disable=SC2046
"$iot" name update-ip service.iot --ip 127.0.0.1 $(wallet service) >/dev/null
"$iot" cert issue service.iot --cert-out "$demo/service/tls.pem" --key-out "$demo/service/tls.key" --days 30
# shellcheck disable=SC2046
"$iot" cert add service.iot --cert "$demo/service/tls.pem" --key "$demo/service/tls.key" $(wallet service)
echo "mutual TLS: it lets in only clients whose certificate is pinned now under gateway.iot"
sed -e "s/127.0.0.1:$api_port/127.0.0.1:$tls_port/" -e '/^\[\[tables\]\]/,$d' \
  -e "/^\[ingest\]/a tls_cert = \"$demo/service/tls.pem\"\ntls_key = \"$demo/service/tls.key\"\nclient_names = [\"gateway.iot\"]" \
  "$demo/iotegrityd.toml" >"$demo/tls.toml"
start_tls() {
  "$root/target/debug/iotegrityd" service --config "$demo/tls.toml" 2>>"$demo/tls.log" &
  tls_pid=$!
  for _ in $(seq 100); do grep -q "ingest only" "$demo/tls.log" && break; sleep 0.1; done
}
start_tls
grep -m1 "over TLS 1.3" "$demo/tls.log" | sed -E 's/^.*INFO [^ ]+ /  /' | cut -c1-160

step "the gateway daemon (iotegrityd gateway): a simulated P1 meter and two room sensors"
cat >"$demo/gateway.toml" <<TOML
[gateway]
keystore = "$demo/gateway/online.json"
password_file = "$demo/pw.txt"
state_dir = "$demo/gateway-state"
[chain]
deployments = "$IOTEGRITY_DEPLOYMENTS"
rpc_url = "$ETH_RPC_URL"
[service]
# Known by name only: resolved on chain, the server's key checked against the chain's pins at
# every connection; the gateway presents its own pinned certificate (mutual TLS).
name = "service.iot"
port = $tls_port
tls_cert = "$demo/gateway/tls.pem"
tls_key = "$demo/gateway/tls.key"
retry_max_ms = 1000
[api]
listen = "127.0.0.1:$gw_port"
[[aggregates]]
group = "room-1"
devices = ["room1", "room2"]
size = 5

[[devices]]
name = "meter"
keystore = "$demo/device/online.json"
interval_ms = 100
# Every 25th telegram is corrupted "on the wire": the CRC check must refuse it.
sensor = { kind = "simulated-p1", seed = 42, corrupt_every = 25 }

[[devices]]
name = "room1"
keystore = "$demo/room1/online.json"
interval_ms = 400
sensor = { kind = "simulated", seed = 1 }

[[devices]]
name = "room2"
keystore = "$demo/room2/online.json"
interval_ms = 400
sensor = { kind = "simulated", seed = 2 }
TOML
"$root/target/debug/iotegrityd" gateway --config "$demo/gateway.toml" --check-config
"$root/target/debug/iotegrityd" gateway --config "$demo/gateway.toml" 2>"$demo/gateway.log" &
gateway_pid=$!
status() {
  python3 -c "import json,sys,urllib.request; s=json.load(urllib.request.urlopen('http://127.0.0.1:$gw_port/v1/status')); print($1)"
}
for _ in $(seq 100); do status 1 >/dev/null 2>&1 && break; sleep 0.1; done
sleep 3
status '"\n".join("  %-6s %s  next sequence %d" % (d["name"], d["address"], d["nextSequence"]) for d in s["devices"]) + "\n  journal: %(next)d records, %(backlog)d not yet delivered" % s["journal"]'
echo "a meter reading as signed:"
psql "SELECT '  ' || convert_from(payload, 'UTF8') FROM iot.readings WHERE device = decode('${online[device]#0x}', 'hex') ORDER BY id DESC LIMIT 1"
grep -m1 "sample refused" "$demo/gateway.log" | sed -E 's/^.*WARN [^ ]+ /  /' || true
grep -m1 "delivering to the service" "$demo/gateway.log" | sed -E 's/^.*INFO [^ ]+ /  /' || true

step "store-and-forward: service.iot goes away for 4 s; the gateway keeps signing into its journal"
kill "$tls_pid"; wait "$tls_pid" 2>/dev/null || true
sleep 4
status '"  backlog while the service is away: %d records" % s["journal"]["backlog"]'
start_tls
for _ in $(seq 100); do [[ "$(status 's["journal"]["backlog"]' 2>/dev/null)" -lt 5 ]] && break; sleep 0.2; done
status '"  the service is back: backlog %d, delivered in order, each reading once" % s["journal"]["backlog"]'

step "the service commands the meter (sample every 1 s); the device's signed feedback comes back"
"$iot" command --online-keystore "$demo/service/online.json" --password-file "$demo/pw.txt" \
  --device "${online[device]}" --sequence 1 --payload '{"interval_ms":1000}' --out "$demo/command-1.json" \
  --to "http://127.0.0.1:$gw_port"
echo "the same command again is a replay:"
"$iot" command --online-keystore "$demo/service/online.json" --password-file "$demo/pw.txt" \
  --device "${online[device]}" --sequence 1 --payload '{"interval_ms":1000}' --out "$demo/command-1b.json" \
  --to "http://127.0.0.1:$gw_port" 2>&1 | sed 's/^/  /' || true
echo "a reading replayed by someone else (the meter's sequence 1, re-signed) is refused by the service:"
"$iot" simulate --url "http://127.0.0.1:$api_port" --device-keystore "$demo/device/online.json" \
  --gateway-keystore "$demo/gateway/online.json" --password-file "$demo/pw.txt" --count 1 2>&1 | sed 's/^/  /' || true

step "scale out: a second iotegrityd with no [[tables]] serves ingest only (behind a load balancer)"
front_port="${DEMO_FRONT_PORT:-8549}"
sed -e "s/127.0.0.1:$api_port/127.0.0.1:$front_port/" -e '/^\[\[tables\]\]/,$d' "$demo/iotegrityd.toml" >"$demo/front.toml"
"$root/target/debug/iotegrityd" service --config "$demo/front.toml" 2>"$demo/front.log" &
front_pid=$!
for _ in $(seq 100); do grep -q "ingest only" "$demo/front.log" && break; sleep 0.1; done
echo "it takes no table lock; the watcher holds iot.readings' (advisory locks held: $(psql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))"
echo "a hostile body — an unknown field deep inside the reading — is refused with its path, nothing stored:"
python3 - "http://127.0.0.1:$front_port/v1/readings" <<'PY'
import json, sys, urllib.request, urllib.error
body = {"reading": {"device": "0x" + "00" * 19 + "01", "sequence": 1, "timestamp": 1, "payloadHash": "0x" + "00" * 32,
                    "note": [[[1]]]}, "signatures": [], "payload": "0x"}
req = urllib.request.Request(sys.argv[1], json.dumps(body).encode(), {"content-type": "application/json"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    print("  %d %s" % (e.code, json.load(e)["error"]))
PY
kill "$front_pid"; wait "$front_pid" 2>/dev/null || true
front_pid=""

step "a handshake proof (docs/secure-channel.md): a vote on service.iot counts only after a pinned channel to it"
echo "the gateway knows only the name: resolved on chain, the presented key must be one the chain accepts now,"
echo "and the service signs a proof of this very session (tls-exporter), which the gateway countersigns:"
# shellcheck disable=SC2046
"$iot" tls probe service.iot --port "$tls_port" --proof-out "$demo/handshake.json" \
  --tls-cert "$demo/gateway/tls.pem" --tls-key "$demo/gateway/tls.key" $(online_wallet gateway) | sed 's/^/  /'
step "the gateway votes on service.iot, backed by that proof (checked on chain: signers, session, freshness, once)"
# shellcheck disable=SC2046
"$iot" reputation vote --name service.iot --score 90 --proof "$demo/handshake.json" $(wallet gateway)
"$iot" reputation show --name service.iot
echo "a replayed proof is refused by its contract error:"
# shellcheck disable=SC2046
"$iot" reputation vote --name service.iot --score 90 --proof "$demo/handshake.json" $(wallet gateway) 2>&1 | sed 's/^/  /' || true

step "the gateway stops (SIGTERM) once everything is delivered; the daemon anchors the rest"
for _ in $(seq 100); do [[ "$(status 's["journal"]["backlog"]' 2>/dev/null)" == 0 ]] && break; sleep 0.2; done
kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
gateway_pid=""
kill "$tls_pid"; wait "$tls_pid" 2>/dev/null || true
tls_pid=""
rows=$(psql "SELECT count(*) FROM iot.readings")
echo "$rows signed readings stored ($(psql "SELECT count(*) FROM iot.aggregates") aggregates); waiting for their receipts"
for _ in $(seq 150); do
  [[ "$(psql "SELECT coalesce(sum(length(rows) / 40), 0) FROM iotegrity.receipts" 2>/dev/null)" == "$rows" ]] && break
  sleep 0.2
done
grep -E "batch cut|anchor confirmed" "$demo/iotegrityd.log" | tail -4 | sed -E 's/^[^ ]+ +INFO iotegrity_daemon::service: //' | cut -c1-120

step "audit: every row against its receipt and the chain's anchors, every chain of signatures, every sequence"
echo "(the auditor pins the service identity it trusts: --anchorer ${offline[service]})"
"$iot" audit --db "$db" --table iot.readings --anchorer "${offline[service]}"
"$iot" receipt show --db "$db" --table iot.readings --row 42 >"$demo/receipt-42.json"
"$iot" receipt verify "$demo/receipt-42.json" --anchorer "${offline[service]}"

step "data in process: the service offers a job on the anchored diabetes rows (keys 1..=360; 361..=441 held out)"
for _ in $(seq 150); do
  [[ "$(psql "SELECT coalesce(sum(length(rows) / 40), 0) FROM iotegrity.receipts WHERE table_name = 'public.diabetes'")" == 441 ]] && break
  sleep 0.2
done
"$iot" dataset spec --db "$db" --table public.diabetes --owner "${offline[service]}" \
  --train 1..=360 --holdout 361..=441 --target 0.3 --out "$demo/spec.json"
"$iot" dataset verify --db "$db" --spec "$demo/spec.json"
# shellcheck disable=SC2046
job=$("$iot" --json market create --spec "$demo/spec.json" --reward 0.2ether --deadline 2h --db "$db" $(online_wallet service) | json job)
"$iot" market list
step "the worker (iotegrity market …; its online key acts) checks the spec and the service's score, proposes; the service accepts"
"$cast" send --private-key "$anvil_dev_key" "${online[worker]}" --value 1ether >/dev/null
# shellcheck disable=SC2046
"$iot" market propose "$job" --spec "$demo/spec.json" --out "$demo/proposal.json" --min-service-score 0 $(online_wallet worker)
# shellcheck disable=SC2046
"$iot" market accept "$job" --proposal "$demo/proposal.json" $(online_wallet service)
step "the worker fetches its batches from the service's API (signed requests; anyone else gets 403)"
# shellcheck disable=SC2046
"$iot" market fetch "$job" --spec "$demo/spec.json" --service "http://127.0.0.1:$api_port" --out "$demo/batches" $(online_wallet worker)
echo "someone else asking for them:"
# shellcheck disable=SC2046
"$iot" market fetch "$job" --spec "$demo/spec.json" --service "http://127.0.0.1:$api_port" --out "$demo/stolen" $(online_wallet gateway) 2>&1 | sed 's/^/  /' || true
echo "a batch altered on the way (one value of row 35) is refused, and nothing is trained:"
cp -r "$demo/batches" "$demo/tampered"
python3 - "$demo/tampered/batch-00003.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
fields = b["rows"][4]["line"].split("\t"); fields[3] = fields[3][:-1] + ("1" if fields[3][-1] != "1" else "2")
b["rows"][4]["line"] = "\t".join(fields)
json.dump(b, open(sys.argv[1], "w"))
PY
"$iot" market train --spec "$demo/spec.json" --batches "$demo/tampered" --out "$demo/no-model.safetensors" 2>&1 | sed 's/^/  /' || true
step "the worker verifies every batch (rows → receipt → h_S → the chain's anchors), trains OLS, reports h_W"
"$iot" market train --spec "$demo/spec.json" --batches "$demo/batches" --out "$demo/model.safetensors"
# shellcheck disable=SC2046
"$iot" market report "$job" --model "$demo/model.safetensors" $(online_wallet worker)
step "the service checks the delivery (signature, hash = report) and scores it on its held-out rows, verified the same way"
# shellcheck disable=SC2046
"$iot" market evaluate "$job" --spec "$demo/spec.json" --model "$demo/model.safetensors" --db "$db" --end $(online_wallet service)
# shellcheck disable=SC2046
"$iot" market claim "$job" $(online_wallet worker)

step "the same, hands off: iotegrityd worker takes a second job, the service daemon accepts and judges"
cat >"$demo/worker.toml" <<TOML
[worker]
keystore = "$demo/worker/online.json"
password_file = "$demo/pw.txt"
state_dir = "$demo/worker-state"
poll_interval_ms = 200
min_service_score = 0
[chain]
rpc_url = "$ETH_RPC_URL"
deployments = "$IOTEGRITY_DEPLOYMENTS"
[[services]]
identity = "${offline[service]}"
url = "http://127.0.0.1:$api_port"
TOML
"$root/target/debug/iotegrityd" worker --config "$demo/worker.toml" 2>"$demo/worker.log" &
worker_pid=$!
# shellcheck disable=SC2046
job2=$("$iot" --json market create --spec "$demo/spec.json" --reward 0.2ether --deadline 2h --db "$db" $(online_wallet service) | json job)
for _ in $(seq 300); do
  [[ "$("$iot" --json market show "$job2" | json claimed)" == true ]] && break
  sleep 0.2
done
echo "the worker's log (its state: $demo/worker-state/jobs/$job2.json):"
grep -E "proposal accepted|model trained|result reported|delivered and judged|reward claimed" "$demo/worker.log" |
  sed -E 's/^[^ ]+ +//; s/^/  /' | cut -c1-200
grep -m1 "job ended" "$demo/iotegrityd.log" | sed -E 's/^[^ ]+ +//; s/^/  service: /' | cut -c1-200
kill "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
worker_pid=""
[[ "$("$iot" --json market show "$job2" | json status)" == Success ]] || { echo "job $job2 did not end Success" >&2; exit 1; }
step "both vote on each other"
# shellcheck disable=SC2046
"$iot" market vote "$job2" --score 80 $(wallet worker)
# shellcheck disable=SC2046
"$iot" market vote "$job2" --score 90 $(wallet service)
"$iot" market show "$job2"
"$iot" reputation show --address "${offline[worker]}"

step "data in process II: federated learning — three participants, three rounds, models on IPFS (js-ipfs on :$ipfs_port)"
parts=(room1 room2 gateway)
for who in "${parts[@]}"; do "$cast" send --private-key "$anvil_dev_key" "${online[$who]}" --value 1ether >/dev/null; done
"$iot" fl train --zero --out "$demo/fl-initial.safetensors"
# shellcheck disable=SC2046
fl=$("$iot" --json fl create --model "$demo/fl-initial.safetensors" --rounds 3 --round-secs 120 --reward 0.3ether $(online_wallet service) | json training)
echo "training $fl offered: 3 rounds of 120 s, 0.3 ETH escrowed, the zero model signed by the service and pinned;"
echo "room1, room2 and the gateway register (each model they submit is signed by the key that stores it)"
# shellcheck disable=SC2046
for who in "${parts[@]}"; do "$iot" fl register "$fl" $(online_wallet "$who"); done
# The chain's clock is moved on (anvil), not waited for: each step lands in its window.
warp_to() {
  local now; now=$("$cast" block latest -f timestamp)
  if (( $1 > now )); then "$cast" rpc evm_increaseTime $(( $1 - now )) >/dev/null; "$cast" rpc evm_mine >/dev/null; fi
}
show() { "$iot" --json fl show "$fl" | json "$1"; }
for round in 1 2 3; do
  warp_to "$(show roundEnds)"   # round $round begins: its scoring window
  if (( round == 3 )); then
    echo "round 2's gateway model was poisoned (weights × 50): the rooms score it down"
    # shellcheck disable=SC2046
    for who in room1 room2; do "$iot" fl vote "$fl" --author "${offline[gateway]}" --score -100 $(online_wallet "$who"); done
  fi
  warp_to "$(show scoringEnds)" # its submission window
  "$iot" fl model "$fl" --round $((round - 1)) --out "$demo/fl-global-$((round - 1)).safetensors" --score-diabetes
  for i in 0 1 2; do
    who=${parts[$i]}
    "$iot" fl train --global "$demo/fl-global-$((round - 1)).safetensors" --shard $((i + 1))/3 --out "$demo/fl-$who-$round.safetensors" >/dev/null
    (( round == 2 )) && [[ $who == gateway ]] && python3 "$root/scripts/poison.py" "$demo/fl-$who-$round.safetensors" 50
    # shellcheck disable=SC2046
    "$iot" fl submit "$fl" --model "$demo/fl-$who-$round.safetensors" $(online_wallet "$who")
  done
done
warp_to "$(show roundEnds)"
warp_to "$(show scoringEnds)"
step "the final global model, derived alone by every participant (one CID), pinned by the service; the reward split"
for who in "${parts[@]}"; do
  echo "  $who derives it: $("$iot" --json fl model "$fl" --round 3 --out "$demo/fl-final-$who.safetensors" | json cid)"
done
"$iot" fl model "$fl" --round 3 --out "$demo/fl-final.safetensors" --score-diabetes
for _ in $(seq 150); do grep -q "final global model pinned" "$demo/iotegrityd.log" && break; sleep 0.2; done
echo "the service daemon pinned each round's models and global model, the final one last:"
grep -E "global model pinned" "$demo/iotegrityd.log" | sed -E 's/^.*learning: /  /' | cut -c1-180
# shellcheck disable=SC2046
"$iot" fl close "$fl" --scores 1,1,-2 $(online_wallet service)
# shellcheck disable=SC2046
for who in "${parts[@]}"; do "$iot" fl claim "$fl" $(online_wallet "$who"); done
"$iot" fl show "$fl"

step "someone edits a stored reading in Postgres…"
echo "UPDATE iot.readings SET payload = convert_to('{\"kind\":\"dsmr\",\"delivered_wh\":[0,0]}', 'UTF8') WHERE id = 42"
psql "UPDATE iot.readings SET payload = convert_to('{\"kind\":\"dsmr\",\"delivered_wh\":[0,0]}', 'UTF8') WHERE id = 42"
step "…and the audit names the row, twice over: its anchored hash and its signed payload hash"
"$iot" audit --db "$db" --table iot.readings --anchorer "${offline[service]}" || true
echo "the explorer's receipt page of row 42 (http://127.0.0.1:$explorer_port/receipt/iot.readings/42) marks it too:"
explore /api/receipt/iot.readings/42 \
  '"  " + ("verified" if d["valid"] else "NOT verified") + "\n" + "\n".join("  %-13s %s  %s" % (s["what"], "holds" if s["ok"] else "FAILS", s["detail"][:90]) for s in d["steps"])'

step "the editor covers up: deletes the receipts and batches from row 42's on, moves the watermark back"
first=$(psql "SELECT first_key FROM iotegrity.batches WHERE table_name = 'iot.readings' AND 42 BETWEEN first_key AND last_key")
echo "  so that the running service would cut keys $first.. again and anchor the edited rows with its own key"
psql "BEGIN; DELETE FROM iotegrity.receipts WHERE table_name = 'iot.readings' AND first_key >= $first;
      DELETE FROM iotegrity.batches WHERE table_name = 'iot.readings' AND first_key >= $first;
      UPDATE iotegrity.watermarks SET last_key = $first - 1 WHERE table_name = 'iot.readings'; COMMIT"
for _ in $(seq 100); do grep -q "the chain already holds anchors" "$demo/iotegrityd.log" && break; sleep 0.1; done
echo "the service refuses (the chain's history is append-only, and it reads it before cutting):"
grep -m1 "the chain already holds anchors" "$demo/iotegrityd.log" | sed -E 's/^.*error=/  /' | cut -c1-160
step "the audit trusts only the chain: the anchored batches without receipts are named, and row 42's no longer gives its root"
"$iot" audit --db "$db" --table iot.readings --anchorer "${offline[service]}" | grep -v "not anchored yet" || true
echo "the same audit, run from the explorer's table page (http://127.0.0.1:$explorer_port/table/iot.readings):"
python3 -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$explorer_port/api/table/iot.readings/audit', method='POST'))"
for _ in $(seq 300); do [[ "$(explore /api/table/iot.readings 'd["audit"]["state"]')" != running ]] && break; sleep 0.2; done
explore /api/table/iot.readings \
  '"  %s: %d finding(s)" % ("clean" if not [f for f in d["audit"]["report"]["findings"] if f["kind"] in ("altered","deleted","inserted","receipt-missing","receipt-tampered","root-not-on-chain")] else "NOT clean", len(d["audit"]["report"]["findings"]))'
explore /api/home '"  the explorer indexed %d events up to block %d: %d identities, %d names, %d anchored batches, %d jobs, %d trainings" % (d["events"], d["syncedTo"], d["counts"]["identities"], d["counts"]["names"], d["counts"]["anchors"], d["counts"]["jobs"], d["counts"]["trainings"])'

cat <<EOT

Done. The devices, gateway and service are registered; gateway.iot resolves and its certificate
verifies on chain; the gateway daemon signed $rows readings from a simulated P1 meter and two
room sensors, kept them through a service outage and delivered each once; the service's command
was applied and answered with signed feedback; everything was anchored, the edit of row 42 was
caught, and so was the attempt to cover it up by rewriting the receipts store. A worker trained
a linear model on the anchored diabetes rows for an escrowed reward — after verifying every batch
against the job's root and the chain, and refusing one altered on the way — and the service scored
it on its held-out rows and ended the job Success; then iotegrityd worker took a second job on its
own, the service daemon accepted, judged and ended it, the worker was paid and both parties voted.
Three participants trained a model together over three rounds with their models on IPFS, each
deriving the same global model alone; the poisoned one was scored down and left out by all.
With a chain and database of your own (make up), try:
  iotegrity identity update --online-keystore NEW.json ...   rotate a leaked online key
  iotegrity cert revoke gateway.iot --cert tls.pem ...        revoke a certificate
  iotegrity identity close --yes ...                          close an identity for good
  iotegrity --json name show gateway.iot                      scriptable output
  iotegrity audit --db postgres://… --table public.mytable    audit any table the daemon watches
Everything of this run is in .local/demo/ (receipt-42.json, iotegrityd.log, gateway.log,
gateway-state/, worker.log, worker-state/, explorer.log).
EOT
if [[ -t 0 && -t 1 ]]; then
  echo
  echo "The explorer is at http://127.0.0.1:$explorer_port/ — search gateway.iot, iot.readings:42, job:1 or a"
  echo "training id; press Enter to stop the chain, the database and every daemon."
  read -r _
else
  echo "(The explorer was at http://127.0.0.1:$explorer_port/; run make demo in a terminal to keep it open.)"
fi
echo "chain, database and daemons stopped."
