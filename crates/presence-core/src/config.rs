//! The settings the state machine obeys.

use std::time::Duration;

use crate::fact::NodeId;

/// Timings and limits of one [`crate::Tracker`]. Sizes the shell enforces on its own
/// (frame bytes, rooms per connection, message rate) are not here.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a closed connection's sessions stay visible, waiting for a restore.
    pub reconnect_grace: Duration,
    /// How long sessions left with `reason: "unload"` wait for the reload that restores them.
    pub unload_grace: Duration,
    /// How long a connection may show no sign of life before its sessions are dropped.
    pub heartbeat_timeout: Duration,
    /// At most one `presence:cursors` and one `presence:diff` per room per interval.
    pub cursor_interval: Duration,
    /// The largest a user's serialized `state` may grow.
    pub max_state_bytes: usize,
    /// The most users one room may hold; `None` is no limit.
    pub max_members_per_room: Option<usize>,
    /// Cluster mode: this node's id and how long other nodes may stay silent.
    pub cluster: Option<Cluster>,
}

/// How a tracker takes part in a cluster.
#[derive(Debug, Clone, Copy)]
pub struct Cluster {
    /// This node.
    pub node: NodeId,
    /// A node silent this long is presumed dead: its sessions start their grace.
    pub node_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reconnect_grace: Duration::from_secs(10),
            unload_grace: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(60),
            cursor_interval: Duration::from_millis(50),
            max_state_bytes: 4096,
            max_members_per_room: None,
            cluster: None,
        }
    }
}
