#!/usr/bin/env node
// Copies what the Rust side needs from forge's `out/` into `core/artifacts/` (committed, so
// `cargo build` works without forge): ABI and bytecode per contract, plus `errors.json`, a map from
// each custom error's name to the `@notice` sentence above it in the interface sources. The CLI
// uses that map to explain reverts in words. `make artifacts` runs this; `make test` checks the
// committed copy is current.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const contracts = ['IdentityRegistry', 'NameRegistry', 'Reputation', 'ReceiptAnchor'];
const outDir = path.join(root, 'core', 'artifacts');
fs.mkdirSync(outDir, { recursive: true });

for (const name of contracts) {
  const art = JSON.parse(fs.readFileSync(path.join(root, 'out', `${name}.sol`, `${name}.json`), 'utf8'));
  const trimmed = {
    abi: art.abi,
    bytecode: { object: art.bytecode.object },
    deployedBytecode: { object: art.deployedBytecode.object },
  };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(trimmed, null, 1) + '\n');
}

const errors = {};
const srcDir = path.join(root, 'contracts', 'src', 'interfaces');
for (const file of fs.readdirSync(srcDir).sort()) {
  const lines = fs.readFileSync(path.join(srcDir, file), 'utf8').split('\n');
  let notice = [];
  for (const line of lines) {
    const t = line.trim();
    const doc = t.match(/^\/\/\/\s?(?:@notice\s+)?(.*)$/);
    const err = t.match(/^error\s+(\w+)\s*\(/);
    if (doc) notice.push(doc[1]);
    else if (err) { errors[err[1]] = notice.join(' ').trim(); notice = []; }
    else notice = [];
  }
}
fs.writeFileSync(path.join(outDir, 'errors.json'), JSON.stringify(errors, null, 1) + '\n');
console.log(`artifacts: ${contracts.length} contracts, ${Object.keys(errors).length} error notices -> core/artifacts/`);
