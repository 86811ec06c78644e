//! presence-bench: a load generator and reporter for presenced.
//!
//! It answers what a presence server costs the people who run it: server memory per
//! joined idle connection, server CPU per delivered cursor entry, end-to-end latency,
//! how long a whole room takes to see itself when everyone arrives at once, and whether
//! the server forgets every user and gives its memory back after a long churn. It
//! starts `presenced` itself (or attaches to a running one by URL and pid, or starts a
//! cluster of N nodes on its own `redis-server`, whose nodes it reports one by one: see
//! [`cluster`]), drives it with `presence-client`'s raw
//! [`presence_client::Connection`]s spread over several 127.0.0.x source addresses
//! (reading each frame only as far as it counts: see [`clients`]), and reads the
//! server's RSS and CPU time from `/proc`. The cursor scenario can also measure its
//! traffic's [`floor`] (bare tokio TCP, no presence work) in the same run, so its CPU
//! figure comes with a ratio that survives a busy machine. The binary
//! (`src/main.rs`) turns a [`Report`] into a table or JSON; `docs/performance.md`
//! records the method and the numbers.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod clients;
pub mod cluster;
pub mod floor;
pub mod http;
pub mod limits;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod webhooks;

pub use report::Report;
pub use scenario::{Scenario, Settings};
pub use server::Server;

/// Why a benchmark could not run (as opposed to a run that measured something bad).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The server binary could not be started or never said it was listening.
    #[error("cannot start presenced ({path}): {reason}")]
    ServerStart {
        /// The binary tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The `redis-server` for a cluster run (`--nodes N` > 1) could not be started.
    #[error("cannot start redis-server: {reason}")]
    RedisStart {
        /// What went wrong.
        reason: String,
    },
    /// The server's `/proc` entries could not be read (wrong pid, or not on Linux).
    #[error("cannot read /proc/{pid}: {source}")]
    Proc {
        /// The server's pid.
        pid: u32,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An HTTP request to the server failed.
    #[error("HTTP {what} failed: {reason}")]
    Http {
        /// The request.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// Too many clients failed to connect or join for the run to mean anything.
    #[error("{0}")]
    Clients(String),
    /// Any other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
