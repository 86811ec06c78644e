//! Carries presence facts between nodes (cluster mode, `--redis`).
//!
//! The contract every implementation keeps, checked by one test suite run against each
//! (`tests/backend_contract.rs`):
//! - `publish` delivers a fact to every subscriber, the publisher included, and all
//!   subscribers see all facts in one order (per publisher at least, FIFO);
//! - `refresh(node, ttl)` keeps `node` in `nodes()` for `ttl`; a node that stops
//!   refreshing drops out by itself, so a killed node leaves no ghosts behind;
//! - a subscription's stream ends when the subscription is lost, so the caller knows to
//!   resubscribe and resynchronise instead of silently missing facts;
//! - a payload that arrives but cannot be trusted or read is reported, not applied, and
//!   does not end the stream (see [`signing`] for the wire shape and the cluster secret).

pub mod memory;
pub mod redis;
pub mod signing;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use presence_core::{Fact, NodeId};

pub use self::memory::MemoryBackend;
pub use self::redis::RedisBackend;
pub use self::signing::{FactCodec, RejectedFact};

/// Facts as they arrive, each one or why it was dropped, until the subscription is lost.
pub type FactStream = Pin<Box<dyn Stream<Item = Result<Fact, RejectedFact>> + Send>>;

/// Why a backend call failed; the caller retries with backoff and resynchronises.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend could not be reached or answered with an error.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A fact could not be encoded or decoded.
    #[error("bad fact encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Carries presence facts between nodes. Implementations must drop a node's entries once
/// it stops refreshing them for `ttl`, so a killed node leaves no ghosts.
pub trait Backend: Send + Sync + 'static {
    /// Sends `fact` to every subscribed node, this one included.
    fn publish(&self, fact: &Fact) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Sends several facts, in order, in as few round trips as the backend allows.
    fn publish_all(&self, facts: &[Fact]) -> impl Future<Output = Result<(), BackendError>> + Send {
        async move {
            for fact in facts {
                self.publish(fact).await?;
            }
            Ok(())
        }
    }
    /// Marks `node` alive for `ttl`.
    fn refresh(
        &self,
        node: NodeId,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// The nodes whose liveness has not expired.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeId>, BackendError>> + Send;
    /// Starts receiving facts.
    fn subscribe(&self) -> impl Future<Output = Result<FactStream, BackendError>> + Send;
}
