//! What arrives at the state machine.

use std::time::Instant;

use presence_protocol::{Reference, RoomName, SessionId, State, UserId, View};

use crate::fact::{Fact, NodeId, SessionRecord};

/// Names one WebSocket connection for as long as it lives; never reused by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Both clocks, read once by the shell per input (TigerBeetle's monotonic/realtime split):
/// `instant` drives deadlines, `unix_ms` is what users see in `joinedAt` and `lastSeen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for deadlines.
    pub instant: Instant,
    /// Wall-clock Unix milliseconds, for the wire.
    pub unix_ms: u64,
}

/// A `presence:join` after the shell has settled who the user is (token checked, a missing
/// session id generated), so the core needs no randomness and no keys.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// The room to enter.
    pub room: RoomName,
    /// The user, as trusted or as the token's `sub`.
    pub user_id: UserId,
    /// The display name, if the client or token gave one.
    pub name: Option<String>,
    /// The session to restore, if this user holds one of that id in the room, or else to
    /// create: the id the client named, or a fresh one the shell made when it named none.
    /// Sessions are named by user and id together, so naming another user's id restores
    /// nothing of theirs.
    pub session_id: SessionId,
    /// The initial state.
    pub state: Option<State>,
    /// Whether this session wants `presence:diff` batches.
    pub batch: bool,
    /// What the session sees; `None` keeps a restored session's view (full for a new one).
    pub view: Option<View>,
    /// Watch without being listed. A restore keeps what the session was.
    pub spectator: bool,
}

/// Something that happened, for [`crate::Tracker::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection asks to join (or rejoin, or restore).
    Join {
        /// Who asks.
        conn: ConnId,
        /// What, settled by the shell.
        request: JoinRequest,
        /// The message's `ref`, echoed on errors.
        reference: Option<Reference>,
    },
    /// `presence:leave`; `room: None` leaves every room this connection holds here.
    Leave {
        /// Who leaves.
        conn: ConnId,
        /// Which room, or all.
        room: Option<RoomName>,
        /// Sent as the page unloads: the sessions wait out the unload grace, so that a
        /// reload restores them unseen, instead of leaving at once.
        unload: bool,
        /// The message's `ref`.
        reference: Option<Reference>,
    },
    /// `presence:update`.
    Update {
        /// Who updates.
        conn: ConnId,
        /// In which room.
        room: RoomName,
        /// Keys to merge; `null` deletes.
        state: State,
        /// The message's `ref`.
        reference: Option<Reference>,
    },
    /// `presence:cursor`.
    Cursor {
        /// Whose pointer.
        conn: ConnId,
        /// In which room.
        room: RoomName,
        /// Horizontal position (finite).
        x: f64,
        /// Vertical position (finite).
        y: f64,
        /// Over the board or not.
        visible: bool,
        /// The message's `ref`.
        reference: Option<Reference>,
    },
    /// A sign of life that addresses no room: `presence:heartbeat` or a WebSocket pong.
    Activity {
        /// The living connection.
        conn: ConnId,
    },
    /// The connection fell behind and its queued roster events were dropped: send it a
    /// fresh `currentUsers` of each room it holds here, which says what they said.
    Resync {
        /// The connection that fell behind.
        conn: ConnId,
    },
    /// The connection is gone without a leave: its sessions wait out the grace.
    Closed {
        /// The closed connection.
        conn: ConnId,
    },
    /// A fact from the cluster channel.
    Remote(Fact),
    /// The cluster channel is unreachable: other nodes' silence proves nothing now.
    BackendDown,
    /// The cluster channel is back: every node gets a fresh node TTL to speak up.
    BackendUp,
    /// What the backend holds for a room, read after following its channel: the answer
    /// to an [`crate::Effect::Watch`] or an [`crate::Effect::Load`].
    Records {
        /// The room.
        room: RoomName,
        /// Every node's records for the room, each with its owner.
        records: Vec<(NodeId, SessionRecord)>,
        /// Owners among them that no longer refresh their liveness (dead, or cut off), each
        /// with how long its records still live: its sessions are orphans, and their grace
        /// ends when the records expire.
        gone: Vec<(NodeId, std::time::Duration)>,
        /// Whose absence from `records` means they hold nothing here.
        authority: Authority,
    },
}

/// Which nodes' records a read of a room's records speaks for in full: a node covered here
/// that is missing from the records holds no session in the room, so what is held for it
/// goes. Records are always applied; the authority only decides what absence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// Every node: the backend's data is known to be whole.
    Complete,
    /// Only this node, which has just written all its records again.
    Node(NodeId),
    /// No node: the backend may have lost data that its owners have not written again yet
    /// (a Redis restart), so absence proves nothing.
    Partial,
}

impl Input {
    /// The connection the input came from, if a connection sent it.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Input::Join { conn, .. }
            | Input::Leave { conn, .. }
            | Input::Update { conn, .. }
            | Input::Cursor { conn, .. }
            | Input::Activity { conn }
            | Input::Resync { conn }
            | Input::Closed { conn } => Some(*conn),
            Input::Remote(_) | Input::BackendDown | Input::BackendUp | Input::Records { .. } => {
                None
            }
        }
    }

    /// The one room the input is about, if it is about one.
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Input::Join { request, .. } => Some(&request.room),
            Input::Leave { room, .. } => room.as_ref(),
            Input::Update { room, .. }
            | Input::Cursor { room, .. }
            | Input::Records { room, .. } => Some(room),
            Input::Remote(fact) => fact.room(),
            Input::Activity { .. }
            | Input::Resync { .. }
            | Input::Closed { .. }
            | Input::BackendDown
            | Input::BackendUp => None,
        }
    }
}
