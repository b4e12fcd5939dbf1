//! The polling loop of the roles that act on what the chain says (worker, learner, the service's
//! pinner): one tick, then a pause, until shutdown — a failed tick is counted, logged and retried
//! on the next; a shutdown interrupts a tick or a pause alike (what a tick does is safe to cut
//! short: each role reads back from the chain what it has done).

use crate::metrics::Counter;
use std::future::Future;
use std::time::Duration;
use tracing::{info, warn};

/// A role that does its work in ticks.
pub trait Ticks {
    /// One pass over the work the chain shows.
    fn tick(&mut self) -> impl Future<Output = eyre::Result<()>>;
}

/// Ticks `role` every `every` until `shutdown` resolves; counts failed ticks in `errors`.
pub async fn run(
    role: &mut impl Ticks,
    name: &str,
    every: Duration,
    errors: &Counter,
    shutdown: impl Future<Output = ()>,
) -> eyre::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = shutdown.as_mut() => break,
            result = role.tick() => if let Err(e) = result {
                errors.inc();
                warn!(error = %format!("{e:#}"), "{name} tick failed; retrying");
            },
        }
        tokio::select! {
            _ = shutdown.as_mut() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    info!("shut down");
    Ok(())
}
