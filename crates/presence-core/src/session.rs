//! One tab's or device's presence in one room, and the connection that carries it.

use std::time::Instant;

use presence_protocol::{RoomName, SessionId, UserId};

use crate::fact::{NodeId, Stamp};
use crate::input::ConnId;

slotmap::new_key_type! {
    /// A session's slot; stale keys (of removed sessions) never match a new session.
    pub(crate) struct SessionKey;
}

/// Whether a session has a connection right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attachment {
    /// Carried by a connection.
    Live(ConnId),
    /// Its connection closed; it stays visible until the grace ends or it is restored.
    Detached { grace_ends_at: Instant },
    /// Owned by another node, which announces its changes.
    Remote(NodeId),
    /// Owned by a node that died or is draining; visible until the grace ends or a client
    /// restores it on some node. Its end is not announced: every node ends it on its own.
    Orphaned { grace_ends_at: Instant },
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) room: RoomName,
    pub(crate) user_id: UserId,
    pub(crate) attachment: Attachment,
    pub(crate) batch: bool,
    /// This session's own `away` report; the user is away only when all sessions are.
    pub(crate) away: bool,
    /// When and where the session was last created or restored: of two nodes that both
    /// believe they own it, the later claim wins (cluster mode).
    pub(crate) claim: Stamp,
}

impl Session {
    pub(crate) fn conn(&self) -> Option<ConnId> {
        match self.attachment {
            Attachment::Live(conn) => Some(conn),
            _ => None,
        }
    }

    /// Whether this node owns the session (and so announces its changes).
    pub(crate) fn is_local(&self) -> bool {
        matches!(
            self.attachment,
            Attachment::Live(_) | Attachment::Detached { .. }
        )
    }
}

/// What one tracker knows of a connection: only what it needs for liveness and routing.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) last_seen_at: Instant,
    /// Distinguishes this registration from an earlier one of the same id, so a silence
    /// timer armed for the earlier one is recognised as stale.
    pub(crate) epoch: u64,
    /// At most one per room.
    pub(crate) sessions: Vec<SessionKey>,
}
