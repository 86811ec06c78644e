//! Carries presence facts between nodes (cluster mode, `--redis`), and keeps each node's
//! records of the sessions it owns, per room, for a node that starts serving a room.
//!
//! The contract every implementation keeps, checked by one test suite run against each
//! (`tests/backend_contract.rs`):
//! - a fact about a room reaches exactly the subscriptions that follow the room, the
//!   publisher's included; a node-wide fact (liveness) reaches every subscription; all
//!   subscribers see one publisher's facts on one channel in the order published (there
//!   is no order between channels: on a Redis Cluster they live on different shards);
//! - publishing a `Session` fact writes the sender's record of that session, a
//!   `SessionEnded` fact deletes it, before the fact is delivered; `records(room)` reads
//!   every node's records of the room, so a reader that subscribed first misses nothing;
//! - `refresh(node, ttl, rooms)` keeps `node` in `nodes()` for `ttl` and its records of
//!   `rooms` for the longer record TTL; a node that stops refreshing drops out by itself,
//!   and `records` names it as gone (with how long its records still live), so a killed
//!   node leaves no ghosts behind;
//! - a subscription's stream ends when the subscription is lost, so the caller knows to
//!   resubscribe and read again instead of silently missing facts;
//! - a payload that arrives but cannot be trusted or read is reported, not applied, and
//!   does not end the stream (see [`signing`] for the wire shape and the cluster secret).

pub mod memory;
pub mod redis;
pub mod signing;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use presence_core::{Fact, NodeId, SessionRecord};
use presence_protocol::RoomName;

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

/// What a read of one room's records found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomRecords {
    /// Every node's records of the room, each with its owner.
    pub records: Vec<(NodeId, SessionRecord)>,
    /// Owners whose liveness expired, each with how long its records still live.
    pub gone: Vec<(NodeId, Duration)>,
    /// Stored records that could not be trusted or read, skipped.
    pub rejected: Vec<RejectedFact>,
}

/// Which room channels a subscription follows, beside the node-wide one.
pub trait Channels: Send + 'static {
    /// Starts delivering the facts of `rooms` to the subscription.
    fn follow(
        &mut self,
        rooms: &[RoomName],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Stops delivering the facts of `rooms`.
    fn unfollow(
        &mut self,
        rooms: &[RoomName],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// Carries presence facts between nodes and keeps their records. Implementations must
/// drop a node's liveness once it stops refreshing for `ttl`, and its records a record TTL
/// later, so a killed node leaves no ghosts.
pub trait Backend: Send + Sync + 'static {
    /// What follows and unfollows rooms for one subscription.
    type Channels: Channels;

    /// Sends facts, in order, in as few round trips as the backend allows; `Session` and
    /// `SessionEnded` facts also write and delete their sender's records.
    fn publish_all(&self, facts: &[Fact]) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Sends one fact.
    fn publish(&self, fact: &Fact) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.publish_all(std::slice::from_ref(fact))
    }
    /// Deletes `node`'s records of `room` (the node stopped serving it).
    fn vacate(
        &self,
        node: NodeId,
        room: &RoomName,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Replaces `node`'s records of each room in `records` with those, and deletes its
    /// records of the rooms in `stale`.
    fn reassert(
        &self,
        node: NodeId,
        records: &[SessionRecord],
        stale: &[RoomName],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Marks `node` alive for `ttl` and keeps its records of `rooms`. Returns whether all
    /// those records were still there (false: some expired or were lost, so rewrite them).
    fn refresh(
        &self,
        node: NodeId,
        ttl: Duration,
        rooms: &[RoomName],
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// The nodes whose liveness has not expired.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeId>, BackendError>> + Send;
    /// Every node's records of `room`.
    fn records(
        &self,
        room: &RoomName,
    ) -> impl Future<Output = Result<RoomRecords, BackendError>> + Send;
    /// Claims `key` in `room` for this node for `ttl`: true if no node held it (webhooks:
    /// the one node to report an event every node saw).
    fn claim(
        &self,
        room: &RoomName,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Marks `room` occupied (or vacant): true if it was not already. The mark lives as
    /// long as records do, refreshed by the nodes serving the room.
    fn mark_occupied(
        &self,
        room: &RoomName,
        occupied: bool,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Starts receiving node-wide facts; rooms are followed through the [`Channels`].
    fn subscribe(
        &self,
    ) -> impl Future<Output = Result<(FactStream, Self::Channels), BackendError>> + Send;
}
