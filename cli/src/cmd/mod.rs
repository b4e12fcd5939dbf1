//! One module per subcommand.

pub mod audit;
pub mod bundle;
pub mod cert;
pub mod command;
pub mod dataset;
pub mod deploy;
pub mod fl;
pub mod identity;
pub mod market;
pub mod name;
pub mod reading;
pub mod receipt;
pub mod reputation;
pub mod simulate;
pub mod tls;
