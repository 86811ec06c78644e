//! The four scenarios. Each takes the server under test and its options, drives clients,
//! and returns a [`Report`]; none asserts a timing, they only measure.

mod churn;
mod cursor;
mod idle;
mod storm;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::time::Instant;

pub use churn::ChurnOptions;
pub use cursor::CursorOptions;
pub use idle::IdleOptions;
pub use storm::StormOptions;

use crate::clients::Sources;
use crate::report::Report;
use crate::server::Server;
use crate::BenchError;

/// What every scenario needs besides its own options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source addresses for client connections.
    pub sources: Sources,
    /// Connects (TCP + upgrade + join) in flight at once while ramping up.
    pub concurrency: usize,
    /// Shows progress on long runs; `ProgressBar::hidden()` for none.
    pub progress: ProgressBar,
}

/// A scenario and its options.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// N connections joined to rooms of K, then idle.
    Idle(IdleOptions),
    /// Rooms whose members move their cursors at a fixed rate.
    Cursor(CursorOptions),
    /// K clients join one room at once.
    Storm(StormOptions),
    /// Connect, move, leave or drop and restore, at a steady rate.
    Churn(ChurnOptions),
}

/// Runs `scenario` against `server`.
pub async fn run(
    scenario: &Scenario,
    server: &mut Server,
    settings: &Settings,
) -> Result<Report, BenchError> {
    Ok(match scenario {
        Scenario::Idle(options) => Report::Idle(idle::run(server, options, settings).await?),
        Scenario::Cursor(options) => Report::Cursor(cursor::run(server, options, settings).await?),
        Scenario::Storm(options) => Report::Storm(storm::run(server, options, settings).await?),
        Scenario::Churn(options) => Report::Churn(churn::run(server, options, settings).await?),
    })
}

/// Waits until `done() >= target` or `limit` passes, polling every 20 ms and keeping the
/// progress bar current. Returns whether the target was reached.
async fn wait_for(
    done: impl Fn() -> usize,
    target: usize,
    limit: Duration,
    progress: &ProgressBar,
) -> bool {
    let until = Instant::now() + limit;
    loop {
        let now = done();
        progress.set_position(now as u64);
        if now >= target {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::Relaxed)
}

/// Fails the run when so many clients failed that its numbers would mislead.
fn check_failures(failed: usize, total: usize, what: &str) -> Result<(), BenchError> {
    if total > 0 && failed * 100 > total {
        return Err(BenchError::Clients(format!(
            "{failed} of {total} clients failed to {what}; the run would not mean anything \
             (check the open-file limits of both processes and the server's log)"
        )));
    }
    Ok(())
}
