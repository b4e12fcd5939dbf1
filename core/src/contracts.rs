//! alloy bindings for the iotegrity contracts, generated from the forge artifacts that
//! `make artifacts` copies into `core/artifacts/` (ABI + bytecode, so `deploy` works too).

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    IdentityRegistry,
    "artifacts/IdentityRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    NameRegistry,
    "artifacts/NameRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Reputation,
    "artifacts/Reputation.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ReceiptAnchor,
    "artifacts/ReceiptAnchor.json"
);

/// The ABI JSON of every contract, for decoding reverts and logs dynamically.
pub const ABIS: &[(&str, &str)] = &[
    ("IdentityRegistry", include_str!("../artifacts/IdentityRegistry.json")),
    ("NameRegistry", include_str!("../artifacts/NameRegistry.json")),
    ("Reputation", include_str!("../artifacts/Reputation.json")),
    ("ReceiptAnchor", include_str!("../artifacts/ReceiptAnchor.json")),
];

/// `@notice` text of every custom error, by error name (from the interface sources).
pub const ERROR_NOTICES: &str = include_str!("../artifacts/errors.json");
