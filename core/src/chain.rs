//! Talking to a chain: providers (built here once), sending transactions with reverts decoded,
//! and deploying the contracts.

use crate::contracts::{FederatedLearning, IdentityRegistry, JobMarket, NameRegistry, ReceiptAnchor, Reputation};
use crate::{AddressBook, Error, Result, revert};
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, Log, TransactionReceipt};
use alloy::signers::local::PrivateKeySigner;

/// A read-only provider.
pub fn reader(rpc_url: &str) -> Result<DynProvider> {
    Ok(ProviderBuilder::new().connect_http(parse_url(rpc_url)?).erased())
}

/// A provider that signs and sends transactions from `signer`. Nonces are the account's pending
/// transaction count, asked for each transaction: alloy's default cached nonces run ahead after a
/// failed submission (out of gas money, an RPC hiccup) and never come back, and the next
/// transaction then waits forever behind the gap.
pub fn writer(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = parse_url(rpc_url)?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

fn parse_url(rpc_url: &str) -> Result<alloy::transports::http::reqwest::Url> {
    rpc_url
        .parse::<alloy::transports::http::reqwest::Url>()
        .map_err(|e| Error::RpcUrl { url: rpc_url.to_string(), source: Box::new(e) })
}

/// Longest wait for a sent transaction's receipt; after it the caller may look again or re-send.
pub const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The chain id of the endpoint (also a connectivity check).
pub async fn chain_id(provider: &DynProvider) -> Result<u64> {
    provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))
}

/// Maps a contract error: reverts to their decoded custom error, everything else to `Rpc`.
pub fn contract_error(err: alloy::contract::Error) -> Error {
    match err.as_revert_data() {
        Some(data) => Error::Reverted { reason: revert::decode(&data).to_string() },
        None => Error::Rpc { what: "a contract call", source: Box::new(err) },
    }
}

/// Sends a transaction, waits for its receipt, and fails unless it succeeded.
pub async fn send<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> Result<TransactionReceipt> {
    let pending = call.send().await.map_err(contract_error)?;
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|e| Error::Rpc { what: "waiting for the receipt", source: Box::new(e) })?;
    if !receipt.status() {
        return Err(Error::Reverted { reason: format!("transaction {} failed on chain", receipt.transaction_hash) });
    }
    Ok(receipt)
}

/// Makes a read-only call, decoding reverts.
pub async fn call<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> Result<D::CallOutput> {
    call.call().await.map_err(contract_error)
}

/// Most blocks asked for in one `eth_getLogs` (public endpoints cap the range of a query).
pub const LOG_PAGE: u64 = 5_000;

/// Every log matching `filter` (its address and topics; its block range is ignored) in blocks
/// `from..=to`, in chain order, asked for [`LOG_PAGE`] blocks at a time.
pub async fn logs(provider: &DynProvider, filter: &Filter, from: u64, to: u64) -> Result<Vec<Log>> {
    let mut all = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start.saturating_add(LOG_PAGE - 1));
        let page = filter.clone().from_block(start).to_block(end);
        all.extend(provider.get_logs(&page).await.map_err(Error::rpc("eth_getLogs"))?);
        start = end + 1;
    }
    Ok(all)
}

/// The latest block's timestamp (unix seconds): "now" as the contracts see it.
pub async fn latest_timestamp(provider: &DynProvider) -> Result<u64> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(Error::rpc("eth_getBlockByNumber"))?
        .ok_or(Error::NoLatestBlock)?;
    Ok(block.header.timestamp)
}

/// The latest block number.
pub async fn latest_block(provider: &DynProvider) -> Result<u64> {
    provider.get_block_number().await.map_err(Error::rpc("eth_blockNumber"))
}

/// The conventional burn address, the default penalty sink: credits to it can never be withdrawn.
pub const BURN: Address = alloy::primitives::address!("0x000000000000000000000000000000000000dEaD");

/// Deployment parameters (the CLI's defaults match `contracts/script/Deploy.s.sol`).
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// Appoints and dismisses notaries and CAs (an EOA for local work, a multisig in production).
    pub governance: Address,
    /// Receives slashed stakes and struck deposits ([`BURN`] burns them).
    pub penalty_sink: Address,
    /// QuasiCentralized (only CAs submit names) instead of Decentralized.
    pub quasi_centralized: bool,
    /// Deposit per reputation vote, wei.
    pub vote_deposit: U256,
    /// Voting period, seconds.
    pub vote_period: u64,
    /// Dispute window for notaries, seconds.
    pub dispute_window: u64,
    /// Half-life of vote weights, seconds.
    pub half_life: u64,
    /// The job market's windows (docs/market.md).
    pub market: MarketWindows,
    /// Federated learning: time the service has to close a training after its final scoring,
    /// seconds (0 < g < 2^32); past it the reward is split equally (docs/learning.md).
    pub fl_close_grace: u64,
}

/// Seven days, as `contracts/script/Deploy.s.sol`.
pub const DEFAULT_FL_CLOSE_GRACE: u64 = 7 * 86_400;

/// The job market's time rules, in seconds (each 0 < w < 2^32; docs/market.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketWindows {
    /// Time the service has for its verdict after a report; past it the worker is paid.
    pub review: u64,
    /// Time the worker has to dispute a Failed verdict; past it the verdict is final.
    pub dispute: u64,
    /// Time a notary has to rule on a dispute; past it the disputant loses.
    pub ruling: u64,
}

impl Default for MarketWindows {
    /// Three days to review, three to dispute, seven to rule (as `contracts/script/Deploy.s.sol`).
    fn default() -> Self {
        Self { review: 3 * 86_400, dispute: 3 * 86_400, ruling: 7 * 86_400 }
    }
}

/// Deploys IdentityRegistry, NameRegistry, Reputation, ReceiptAnchor, JobMarket and
/// FederatedLearning from the provider's wallet.
pub async fn deploy(provider: &DynProvider, params: &DeployParams) -> Result<AddressBook> {
    let chain_id = chain_id(provider).await?;
    let block = latest_block(provider).await?;
    let identity: Address = *IdentityRegistry::deploy(provider, params.governance, params.penalty_sink)
        .await
        .map_err(contract_error)?
        .address();
    let mode = u8::from(!params.quasi_centralized); // 0 = QuasiCentralized, 1 = Decentralized
    let names = *NameRegistry::deploy(provider, identity, mode).await.map_err(contract_error)?.address();
    let reputation = *Reputation::deploy(
        provider,
        identity,
        names,
        params.vote_deposit,
        U256::from(params.vote_period),
        U256::from(params.dispute_window),
        U256::from(params.half_life),
    )
    .await
    .map_err(contract_error)?
    .address();
    let receipt_anchor = *ReceiptAnchor::deploy(provider, identity).await.map_err(contract_error)?.address();
    let w = params.market;
    let job_market =
        *JobMarket::deploy(provider, identity, U256::from(w.review), U256::from(w.dispute), U256::from(w.ruling))
            .await
            .map_err(contract_error)?
            .address();
    let learning = *FederatedLearning::deploy(provider, identity, U256::from(params.fl_close_grace))
        .await
        .map_err(contract_error)?
        .address();
    // In the manifest's deployment order (contracts/manifest.json).
    const _: () = assert!(crate::contracts::CONTRACTS.len() == 6, "wire every contract of the manifest here");
    let addresses = [identity, names, reputation, receipt_anchor, job_market, learning];
    Ok(AddressBook {
        chain_id,
        name_mode: if params.quasi_centralized { "quasi-centralized" } else { "decentralized" }.into(),
        deployed_block: block,
        governance: params.governance,
        penalty_sink: params.penalty_sink,
        contracts: crate::contracts::CONTRACTS.iter().map(|(_, key)| key.to_string()).zip(addresses).collect(),
    })
}
