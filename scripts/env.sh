# Sourced by the project's scripts (demo, up, anvil/chain.sh): where the tools are, the Anvil dev
# key, and a JSON reader — in one place. Sets $root to the checkout and nothing else global.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
foundry="$root/node_modules/@foundry-rs"
anvil="$foundry/anvil-linux-amd64/bin/anvil"
forge="$foundry/forge-linux-amd64/bin/forge"
cast="$foundry/cast-linux-amd64/bin/cast"
iot="$root/target/debug/iotegrity"
iotegrityd="$root/target/debug/iotegrityd"
# Anvil's standard test mnemonic and its account 0 (the deployer and the funder of local keys;
# contracts/script/Deploy.s.sol has the same key as its default). Never use these off a local chain.
anvil_mnemonic="test test test test test test test test test test test junk"
anvil_dev_key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

# json FIELD [FILE]: the top-level FIELD of the JSON object in FILE or on stdin ("" if absent).
json() {
  node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[2] || 0, "utf8"));
           const f = v[process.argv[1]]; console.log(f === undefined || f === null ? "" : f)' "$@"
}
