# iotegrity — one entry point for every routine. Each target installs what it needs (idempotent).
#   make demo    the end-to-end demo on a local chain
#   make test    every test: contracts (unit, fuzz, invariant, gas), Rust unit and end-to-end
#   make bench   gas, hot paths, ingest and slow-client figures (docs/benchmarks.md)
#   make lint    formatters, forge lint, clippy, slither
#   make up / make down / make reset   the local stack for interactive use (down keeps its chain and database, reset forgets them)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

NM      := node_modules/@foundry-rs
FORGE   := $(NM)/forge-linux-amd64/bin/forge
ANVIL   := $(NM)/anvil-linux-amd64/bin/anvil
CARGO   ?= cargo
STAMP   := .local/stamps

.PHONY: help deps contracts artifacts check-artifacts build build-slim check-slim fmt-check clippy test test-contracts test-rust bench lint demo up down reset clean

help:
	@sed -n '2,7p' Makefile | sed 's/^# //'

# ---------------------------------------------------------------- installs

# System packages from Debian: openssl (test certificates), PostgreSQL (the receipts daemon's
# database in tests and the demo; servers are started per test, never as a system service),
# Chromium and its WebDriver (the explorer's browser test, headless).
$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@if ! command -v openssl >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing openssl, postgresql, chromium and chromium-driver"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl postgresql chromium chromium-driver >/dev/null; fi
	@touch $@

# Foundry, solc and OpenZeppelin from the npm registry, pinned by package-lock.json.
$(STAMP)/npm: package.json package-lock.json
	@mkdir -p $(STAMP)
	npm install --no-audit --no-fund --loglevel=error
	@test -x $(FORGE) && test -x $(ANVIL) || { echo "native foundry binaries missing after npm ci" >&2; exit 1; }
	@touch $@

# js-ipfs, the IPFS node of the tests and the demo (offline, Kubo's RPC API; ~3 min, ~290 MB).
$(STAMP)/ipfs: tools/ipfs/package.json tools/ipfs/package-lock.json
	@mkdir -p $(STAMP)
	npm install --prefix tools/ipfs --no-audit --no-fund --loglevel=error
	@test -x tools/ipfs/node_modules/.bin/jsipfs || { echo "jsipfs missing after npm install in tools/ipfs" >&2; exit 1; }
	@touch $@

deps: $(STAMP)/apt $(STAMP)/npm $(STAMP)/ipfs

# ---------------------------------------------------------------- build

contracts: deps
	$(FORGE) build

# Regenerates the ABI/bytecode copies the Rust bindings are built from.
artifacts: contracts
	node tools/artifacts.js

# Fails if the committed core/artifacts/ do not match the contracts (run `make artifacts`).
check-artifacts: artifacts
	@git diff --quiet -- core/artifacts core/src/contracts.rs || { git --no-pager diff --stat -- core/artifacts core/src/contracts.rs; \
	  echo "core/artifacts/ or core/src/contracts.rs is stale: run 'make artifacts' and commit" >&2; exit 1; }

build: deps
	$(CARGO) build --workspace --locked

# The slim Raspberry Pi binary: the gateway role alone (copied to target/slim/iotegrityd).
# The full binary is put back in target/debug afterwards.
build-slim: deps check-slim
	$(CARGO) build --locked -p iotegrity-daemon --no-default-features --features gateway
	@mkdir -p target/slim && cp target/debug/iotegrityd target/slim/iotegrityd
	$(CARGO) build --locked -p iotegrity-daemon

# What `make test` needs of the slim build: it compiles and lints clean (reusing clippy's
# dependency artifacts, so it costs little), and no Postgres crate creeps into it.
check-slim: deps
	$(CARGO) clippy --locked -p iotegrity-daemon --no-default-features --features gateway -- -D warnings
	@if $(CARGO) tree --locked -p iotegrity-daemon --no-default-features --features gateway -e normal \
	    | grep -E "sqlx|postgres"; then echo "the slim gateway build depends on Postgres crates" >&2; exit 1; fi
	@echo "slim gateway build ok: no Postgres or IPFS dependencies"

# ---------------------------------------------------------------- tests

test-contracts: contracts
	$(FORGE) test
	$(FORGE) snapshot --check

# nextest when present (the machine image has it; its summary closes the run), else cargo test.
test-rust: build
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else $(CARGO) test --workspace --locked; fi

fmt-check: deps
	$(FORGE) fmt --check
	$(CARGO) fmt --all --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: fmt-check clippy check-slim check-artifacts test-contracts test-rust

# ---------------------------------------------------------------- benchmarks, lint

bench: contracts
	@mkdir -p .local
	$(FORGE) test --match-contract "GasTest|ReceiptAnchorTest" --gas-report | tee .local/gas-report.txt
	@echo "gas per call (contracts/snapshots/):"; cat contracts/snapshots/*.json
	$(CARGO) bench -p iotegrity-core --bench hot_paths --locked
	$(CARGO) bench -p iotegrity-core --features postgres,learning --bench market --locked
	$(CARGO) bench -p iotegrity-core --features learning --bench learning --locked
	$(CARGO) bench -p iotegrity-daemon --bench gateway --locked
	$(CARGO) build --release --locked -p iotegrity-daemon -p iotegrity-cli
	IOTEGRITY_BIN_DIR=$(CURDIR)/target/release $(CARGO) bench -p iotegrity-e2e --bench service --locked
	IOTEGRITY_BIN_DIR=$(CURDIR)/target/release $(CARGO) bench -p iotegrity-e2e --bench hostile --locked
	IOTEGRITY_BIN_DIR=$(CURDIR)/target/release $(CARGO) bench -p iotegrity-e2e --bench tls --locked
	IOTEGRITY_BIN_DIR=$(CURDIR)/target/release $(CARGO) bench -p iotegrity-e2e --bench explorer --locked

lint: fmt-check clippy
	$(FORGE) lint
	@command -v slither >/dev/null || pip install -q slither-analyzer
	PATH="$(CURDIR)/$(NM)/forge-linux-amd64/bin:$$PATH" slither . --config-file slither.config.json

# ---------------------------------------------------------------- local stack and demo

# The demo's stack, kept running: Anvil on :8545 with the contracts, PostgreSQL on :5433, a
# registered service identity and `iotegrityd service` with its ingest API on :8080 (scripts/up.sh).
up: deps contracts build
	scripts/up.sh up

down:
	scripts/up.sh down

reset:
	scripts/up.sh reset

demo: deps build
	scripts/demo.sh

clean:
	rm -rf out cache target .local
