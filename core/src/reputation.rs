//! Reputation as the chain keeps it (paper §3.2.2 step 9, `Reputation`): the subjects votes are
//! cast on — a name's and an identity's, computed here as the contract computes them — and the
//! score in points. Used by the worker, the learner and the service to judge each other before
//! they deal (paper steps 5 and 7), and by the explorer to list the votes behind a score.

use crate::contracts::Reputation;
use alloy::primitives::{Address, B256, I256, keccak256};
use alloy::sol_types::SolValue;

/// `Reputation.domainSubject(name)`: keccak256(abi.encode(keccak256("iotegrity.reputation.domain"), keccak256(name))).
pub fn domain_subject(name: &str) -> B256 {
    keccak256((keccak256("iotegrity.reputation.domain"), keccak256(name)).abi_encode())
}

/// `Reputation.accountSubject(offline)`: keccak256(abi.encode(keccak256("iotegrity.reputation.account"), offline)).
pub fn account_subject(offline: Address) -> B256 {
    keccak256((keccak256("iotegrity.reputation.account"), offline).abi_encode())
}

/// A 1e18-scaled score in points (−100..100), to four decimals.
pub fn points(score: I256) -> f64 {
    let scaled = score / I256::try_from(10i64.pow(14)).expect("fits");
    f64::from(i32::try_from(scaled).unwrap_or(i32::MAX)) / 1e4
}

/// An identity's reputation score in points (−100..100; no votes: 0) and its vote count, as
/// `Reputation.getReputation(address)` gives it: what a worker checks of a service before it
/// proposes and a service of a worker before it accepts (paper steps 5 and 7).
pub async fn score_of(
    provider: &alloy::providers::DynProvider,
    book: &crate::AddressBook,
    who: Address,
) -> crate::Result<(f64, u64)> {
    let r = Reputation::new(book.reputation(), provider);
    let ret = crate::chain::call(r.getReputation_1(who)).await?;
    Ok((points(ret.score), ret.votes.to::<u64>()))
}

/// A name's reputation score in points and its vote count (`Reputation.getReputation(name)`).
pub async fn score_of_name(
    provider: &alloy::providers::DynProvider,
    book: &crate::AddressBook,
    name: &str,
) -> crate::Result<(f64, u64)> {
    let r = Reputation::new(book.reputation(), provider);
    let ret = crate::chain::call(r.getReputation_0(name.to_string())).await?;
    Ok((points(ret.score), ret.votes.to::<u64>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_tagged_so_a_name_and_an_account_never_share_one() {
        let a = Address::repeat_byte(7);
        assert_ne!(domain_subject("svc.iot"), domain_subject("svc2.iot"));
        assert_ne!(account_subject(a), account_subject(Address::repeat_byte(8)));
        // abi.encode of two words: 64 bytes, the tag first.
        let mut encoded = keccak256("iotegrity.reputation.domain").to_vec();
        encoded.extend_from_slice(keccak256("svc.iot").as_slice());
        assert_eq!(domain_subject("svc.iot"), keccak256(&encoded));
        let mut encoded = keccak256("iotegrity.reputation.account").to_vec();
        encoded.extend_from_slice(&[0u8; 12]);
        encoded.extend_from_slice(a.as_slice());
        assert_eq!(account_subject(a), keccak256(&encoded));
        assert_eq!(points(I256::try_from(90i64).unwrap() * I256::try_from(10i64.pow(18)).unwrap()), 90.0);
        assert_eq!(points(I256::ZERO - I256::try_from(12_345_600_000_000_000i64).unwrap()), -0.0123);
    }
}
