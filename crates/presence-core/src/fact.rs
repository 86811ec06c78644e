//! Facts: what one node tells the others about the sessions it owns (cluster mode).
//!
//! Every node owns the sessions of its own connections and announces each change as a
//! [`Fact`]. A fact about a room goes on that room's channel, which only the nodes serving
//! the room follow; the backend also keeps each node's current [`SessionRecord`]s per room,
//! so a node that starts serving a room reads everyone's records before its first joiner
//! is answered. Node liveness goes on one small channel every node follows. Facts carry
//! whole records, never patches, so applying one twice is harmless, and user data carries
//! a [`Stamp`] so concurrent changes from two nodes converge on the same winner everywhere.

use presence_protocol::{CursorEntry, RoomName, SessionId, User, UserId};
use serde::{Deserialize, Serialize};

/// Names one `presenced` process for as long as it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Orders changes to a user's data: later wall-clock time wins, the node id breaks ties.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// When the change was made, Unix milliseconds (never less than the stamp it replaced).
    pub unix_ms: u64,
    /// Which node made it.
    pub node: u64,
}

/// Everything another node needs to list one session and its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The room.
    pub room: RoomName,
    /// The session.
    pub session_id: SessionId,
    /// The user as the owner sees it (without the derived `away` key).
    pub user: User,
    /// This session's own away report.
    pub away: bool,
    /// When the user data in `user` was last changed.
    pub stamp: Stamp,
    /// When and where the session was last created or restored; the later claim owns it.
    pub claim: Stamp,
    /// A spectator session: counted, never listed (its `user` carries only the id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spectator: bool,
}

/// One announcement on the cluster channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fact {
    /// The node is alive (sent every third of the node TTL).
    Alive {
        /// Who.
        node: NodeId,
    },
    /// A session exists on `node`: created, restored there, or changed.
    Session {
        /// The owner.
        node: NodeId,
        /// The session.
        record: SessionRecord,
    },
    /// A session of `node` is gone for good (leave, grace end, heartbeat timeout).
    SessionEnded {
        /// The owner.
        node: NodeId,
        /// The room.
        room: RoomName,
        /// Whose session.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// The latest cursor positions of `node`'s users that moved in one interval.
    Cursors {
        /// The sender.
        node: NodeId,
        /// The room.
        room: RoomName,
        /// One entry per user that moved.
        cursors: Vec<CursorEntry>,
    },
    /// The node is draining: its sessions wait out the grace for their clients to restore
    /// elsewhere, starting now rather than after the node TTL. A node that really leaves
    /// says nothing after it, so one heard from again (or one that hears this in its own
    /// name) never left: the `Leaving` was forged or replayed, and reading its records again heals it.
    Leaving {
        /// Who.
        node: NodeId,
    },
    /// `node` has just written all its records to the backend again (after it reconnected,
    /// or found them expired, or heard itself declared gone): whoever serves a room reads
    /// that room's records again and takes `node`'s as the whole truth about `node`.
    Reasserted {
        /// Who.
        node: NodeId,
    },
}

impl Fact {
    /// The node the fact is from.
    pub fn node(&self) -> NodeId {
        match self {
            Fact::Alive { node }
            | Fact::Session { node, .. }
            | Fact::SessionEnded { node, .. }
            | Fact::Cursors { node, .. }
            | Fact::Leaving { node }
            | Fact::Reasserted { node } => *node,
        }
    }

    /// The room a fact is about, if it is about one room.
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Fact::Session { record, .. } => Some(&record.room),
            Fact::SessionEnded { room, .. } | Fact::Cursors { room, .. } => Some(room),
            Fact::Alive { .. } | Fact::Leaving { .. } | Fact::Reasserted { .. } => None,
        }
    }
}
