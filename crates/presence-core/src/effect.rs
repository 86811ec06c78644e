//! What the state machine asks the shell to do.

use presence_protocol::{CursorEntry, RoomName, ServerMessage, SessionId, User};

use crate::fact::Fact;
use crate::input::{Authority, ConnId};

/// Why the core wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No sign of life for the heartbeat timeout: the peer is presumed gone.
    HeartbeatTimeout,
}

/// Something an app's backend hears of through webhooks: users entering and really
/// leaving a room (after any grace, never for a reload, a restore or a move to another
/// node), and rooms becoming occupied or empty.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// A user's first session in the room, opened on this node.
    UserJoined {
        /// The room.
        room: RoomName,
        /// The user as listed.
        user: User,
    },
    /// A user's last session in the room ended.
    UserLeft {
        /// The room.
        room: RoomName,
        /// The user as last listed.
        user: User,
        /// The session whose end removed the user: with `shared`, the name under which
        /// the nodes that all saw it end agree on one sender.
        session_id: SessionId,
        /// Every node serving the room ended the session on its own (its owner died or
        /// drained), so one of them must claim the event; otherwise this node owned it.
        shared: bool,
    },
    /// The room had nobody, and now has someone (cluster mode: as far as this node could
    /// read; the shell claims the change in the backend so one node reports it).
    RoomOccupied {
        /// The room.
        room: RoomName,
    },
    /// The room's last user left.
    RoomVacated {
        /// The room.
        room: RoomName,
    },
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
    /// Tell the app's backend (webhooks), if the shell is configured to.
    Notify(RoomEvent),
    /// Close the connection; its sessions are already dealt with.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}
