//! One module per subcommand.

pub mod cert;
pub mod deploy;
pub mod identity;
pub mod name;
pub mod reputation;
