//! `iotegrity reputation`: deposit-backed votes on names and identities, their age-weighted scores
//! (formula in IReputation.sol and the README), and notaries' strikes of false votes.

use crate::Report;
use crate::opts::{ChainOpts, Conn, WalletOpts, parse_reason};
use crate::output::ether;
use alloy::primitives::{Address, B256, I256, U256};
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail};
use iotegrity_core::chain;
use iotegrity_core::contracts::Reputation;
use iotegrity_core::names::validate_name;
use serde_json::json;
use std::path::PathBuf;

/// Reputation commands. Votes are sent by the voter's OFFLINE key, which must be an active identity.
#[derive(Debug, Subcommand)]
pub enum ReputationCmd {
    /// Vote on a name (after a secure channel) or an online address (after a job or model).
    Vote(VoteArgs),
    /// Show the score of a name or an identity (by any of its online keys, or its offline address).
    Show(ShowArgs),
    /// (Notary) strike a false vote within its dispute window, with a reason; its deposit goes to
    /// the penalty sink, never to the notary.
    Strike(StrikeArgs),
}

/// The subject of a vote.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Subject {
    /// A domain name.
    #[arg(long)]
    pub name: Option<String>,
    /// An identity: one of its online keys (or its offline address). Its score is the identity's,
    /// whichever key it uses now.
    #[arg(long)]
    pub address: Option<Address>,
}

/// `reputation vote`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity tls probe gateway.bit --port 8443 --proof-out handshake.json --online-keystore keys/svc/online.json ...\n  iotegrity reputation vote --name gateway.bit --score 80 --proof handshake.json \\\n    \
    --keystore keys/svc/offline.json --password-file pw.txt\nThe deposit (VOTE_DEPOSIT) is sent automatically and can be reclaimed after the dispute window."
)]
pub struct VoteArgs {
    /// What the vote is about.
    #[command(flatten)]
    pub subject: Subject,
    /// Score from -100 to 100, not 0.
    #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i8).range(-100..=100))]
    pub score: i8,
    /// The handshake proof of a TLS channel to the name, countersigned (`iotegrity tls probe NAME
    /// --proof-out FILE`): a name vote counts only with one (docs/secure-channel.md).
    #[arg(long, value_name = "FILE", conflicts_with = "address", required_unless_present = "address")]
    pub proof: Option<PathBuf>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `reputation show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// What the vote is about.
    #[command(flatten)]
    pub subject: Subject,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `reputation strike`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity reputation strike --name gateway.bit --voter 0x<voter offline> --reason \"no channel was ever opened\" \\\n        --keystore keys/notary/offline.json --password-file pw.txt"
)]
pub struct StrikeArgs {
    /// What the vote was about.
    #[command(flatten)]
    pub subject: Subject,
    /// The voter (its offline address).
    #[arg(long)]
    pub voter: Address,
    /// The voting period of the vote [default: the current one].
    #[arg(long)]
    pub period: Option<u64>,
    /// Why: text (its keccak256 is recorded on chain; keep the text) or a 0x 32-byte evidence hash.
    #[arg(long)]
    pub reason: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction (an appointed notary's offline key).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

fn contract(conn: &Conn) -> Reputation::ReputationInstance<&alloy::providers::DynProvider> {
    Reputation::new(conn.book.reputation(), &conn.provider)
}

impl Subject {
    fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.address.map(|a| a.to_string()).unwrap_or_default())
    }
}

/// Formats a 1e18-scaled signed score with two decimals.
fn format_score(score: I256) -> String {
    let neg = score.is_negative();
    let abs = score.unsigned_abs();
    let hundredths = (abs + U256::from(5_000_000_000_000_000u64)) / U256::from(10_000_000_000_000_000u64);
    let (int, frac) = (hundredths / U256::from(100), hundredths % U256::from(100));
    format!("{}{int}.{frac:0>2}", if neg && !hundredths.is_zero() { "-" } else { "" })
}

impl ReputationCmd {
    /// Runs the reputation subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Vote(a) => {
                if a.score == 0 {
                    bail!("a score of 0 says nothing: give -100..-1 or 1..100");
                }
                if let Some(n) = &a.subject.name {
                    validate_name(n)?;
                }
                let proof = match &a.proof {
                    Some(p) => {
                        let text =
                            std::fs::read_to_string(p).wrap_err_with(|| format!("cannot read {}", p.display()))?;
                        let file: iotegrity_core::tls::ProofFile = serde_json::from_str(&text).wrap_err_with(|| {
                            format!("{} is not a handshake proof (tls probe --proof-out)", p.display())
                        })?;
                        if file.client_sig.is_empty() {
                            bail!("{}: the proof is not countersigned by the client", p.display());
                        }
                        Some(file)
                    }
                    None => None,
                };
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let r = contract(&conn);
                let deposit: U256 = chain::call(r.VOTE_DEPOSIT()).await?;
                let mut proof_hash = B256::ZERO;
                let receipt = match (&a.subject.name, a.subject.address, &proof) {
                    (Some(name), _, Some(f)) => {
                        proof_hash = f.digest(&iotegrity_core::signatures::domain_of(&conn.book));
                        let call =
                            r.voteDomain(name.clone(), a.score, f.proof(), f.server_sig.clone(), f.client_sig.clone());
                        chain::send(call.value(deposit)).await?
                    }
                    (None, Some(addr), _) => chain::send(r.voteReputation(addr, a.score).value(deposit)).await?,
                    _ => bail!("pass --name with --proof, or --address"),
                };
                Ok(Report::tx(
                    format!(
                        "voted {} on {} (deposit {} ETH, reclaimable after the dispute window)",
                        a.score,
                        a.subject.label(),
                        ether(deposit)
                    ),
                    &receipt,
                    json!({ "subject": a.subject.label(), "score": a.score, "proofHash": proof_hash, "deposit": deposit.to_string() }),
                ))
            }
            Self::Strike(a) => {
                let reason = parse_reason(&a.reason)?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let r = contract(&conn);
                let subject = match (&a.subject.name, a.subject.address) {
                    (Some(name), _) => {
                        validate_name(name)?;
                        iotegrity_core::reputation::domain_subject(name)
                    }
                    (None, Some(addr)) => {
                        iotegrity_core::reputation::account_subject(chain::call(r.identityOf(addr)).await?)
                    }
                    (None, None) => bail!("pass --name or --address"),
                };
                let period = match a.period {
                    Some(p) => p,
                    None => {
                        let now = chain::latest_timestamp(&conn.provider).await?;
                        chain::call(r.periodOf(U256::from(now))).await?
                    }
                };
                let receipt = chain::send(r.strikeVote(subject, a.voter, period, reason)).await?;
                Ok(Report::tx(
                    format!(
                        "struck {}'s vote on {} (period {period}, reason {reason}); its deposit went to the penalty sink {}",
                        a.voter,
                        a.subject.label(),
                        conn.book.penalty_sink
                    ),
                    &receipt,
                    json!({ "subject": a.subject.label(), "voter": a.voter, "period": period, "reason": reason,
                            "sink": conn.book.penalty_sink }),
                ))
            }
            Self::Show(a) => {
                let conn = a.chain.connect().await?;
                let r = contract(&conn);
                let (score, votes) = match (&a.subject.name, a.subject.address) {
                    (Some(name), _) => {
                        validate_name(name)?;
                        let ret = chain::call(r.getReputation_0(name.clone())).await?;
                        (ret.score, ret.votes)
                    }
                    (None, Some(addr)) => {
                        let ret = chain::call(r.getReputation_1(addr)).await?;
                        (ret.score, ret.votes)
                    }
                    (None, None) => bail!("pass --name or --address"),
                };
                Ok(Report::new(
                    format!(
                        "{}: score {} from {} vote(s) (newer votes weigh more)",
                        a.subject.label(),
                        format_score(score),
                        votes
                    ),
                    json!({ "subject": a.subject.label(), "score": format_score(score), "scoreWad": score.to_string(),
                            "votes": votes.to::<u64>() }),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_with_two_decimals() {
        let wad = |x: i128| I256::try_from(x).unwrap() * I256::try_from(10i128.pow(16)).unwrap();
        assert_eq!(format_score(wad(8000)), "80.00");
        assert_eq!(format_score(wad(-3333)), "-33.33");
        assert_eq!(format_score(I256::ZERO), "0.00");
        assert_eq!(format_score(wad(5)), "0.05");
    }
}
