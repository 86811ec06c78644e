//! What the state machine asks the shell to do.

use presence_protocol::{CursorEntry, RoomName, ServerMessage};

use crate::fact::Fact;
use crate::input::{Authority, ConnId};

/// Why the core wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No sign of life for the heartbeat timeout: the peer is presumed gone.
    HeartbeatTimeout,
}

/// One thing for the shell to carry out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a message to one connection.
    Send {
        /// The recipient.
        conn: ConnId,
        /// The message.
        message: ServerMessage,
    },
    /// Send one message to many connections: encode it once, share the bytes.
    Broadcast {
        /// The recipients, each once.
        recipients: Vec<ConnId>,
        /// The message.
        message: ServerMessage,
    },
    /// One room's `presence:cursors` for one interval. Every recipient gets `cursors`,
    /// except that a recipient whose own user moved gets them without its own entry (the
    /// index given), so nobody sees their own cursor echoed. The shell encodes each entry
    /// once and splices the frames.
    Cursors {
        /// The room.
        room: RoomName,
        /// Latest position of every user that moved, each once.
        cursors: Vec<CursorEntry>,
        /// Each recipient once, with the index of its own user's entry to leave out.
        recipients: Vec<(ConnId, Option<usize>)>,
    },
    /// The connection now holds a session in `room` (routing and per-connection limits).
    Subscribed {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: RoomName,
    },
    /// The connection no longer holds a session in `room`.
    Unsubscribed {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: RoomName,
    },
    /// Announce a fact to the other nodes (cluster mode only).
    Publish(Fact),
    /// This node starts serving `room` (cluster mode): follow the room's channel, then read
    /// its records and hand them back as [`crate::Input::Records`] with
    /// [`Authority::Complete`]. Until then, everything about the room waits in the core.
    Watch {
        /// The room.
        room: RoomName,
    },
    /// This node no longer holds any session in `room` and has dropped it: stop following
    /// its channel, and delete this node's records of it.
    Unwatch {
        /// The room.
        room: RoomName,
    },
    /// Read `room`'s records again and hand them back as [`crate::Input::Records`] with
    /// this authority (after the channel was lost, or another node reasserted).
    Load {
        /// The room.
        room: RoomName,
        /// What the answer speaks for.
        authority: Authority,
    },
    /// Close the connection; its sessions are already dealt with.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}
