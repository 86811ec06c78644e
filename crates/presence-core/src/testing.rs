//! A harness that drives a [`Tracker`] the way the server does, in virtual time: numbered
//! connections, joins built from plain strings, and per-connection inboxes that receive
//! exactly what the shell would deliver.
//!
//! The core's own tests and the criterion benches in `presence-bench` share it, so it
//! lives here behind the `testing` feature rather than being copied into each. Production
//! builds never enable the feature. [`Harness::new`] reads the clock once, only to anchor
//! virtual time: `Instant` has no other constructor.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use presence_protocol::{RoomName, ServerMessage, SessionId, State, User, UserId};

use crate::{
    Authority, CloseReason, Cluster, Config, ConnId, Effect, Fact, Input, JoinRequest, NodeId, Now,
    RoomEvent, Tracker,
};

/// The wall-clock time every harness starts at, in Unix milliseconds.
const START_UNIX_MS: u64 = 1_700_000_000_000;

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A room name the test knows to be valid.
pub fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid room")
}

/// A user id the test knows to be valid.
pub fn user_id(id: &str) -> UserId {
    UserId::new(id).expect("valid user id")
}

/// A state object from JSON the test knows to be one.
pub fn state(json: &str) -> State {
    serde_json::from_str(json).expect("state object")
}

/// The id of node `index` of a test cluster: ids start at 1.
pub fn node_id(index: usize) -> NodeId {
    NodeId(index as u64 + 1)
}

/// One tracker with the shell's duties done by the test: time, connections and delivery.
pub struct Harness {
    /// The tracker under test.
    pub tracker: Tracker,
    /// The current virtual time.
    pub now: Now,
    start: Instant,
    inbox: HashMap<ConnId, Vec<ServerMessage>>,
    /// The rooms each connection is subscribed to, as the tracker said.
    pub subscriptions: HashMap<ConnId, BTreeSet<RoomName>>,
    /// Connections the tracker closed, in order, with the reason.
    pub closed_by_server: Vec<(ConnId, CloseReason)>,
    /// Everything asked of the cluster backend (cluster mode), in order: the facts
    /// announced and the rooms to follow, drop or read.
    pub backend: Vec<BackendCall>,
    /// The rooms the tracker follows (cluster mode), as it said.
    pub watching: BTreeSet<RoomName>,
    /// Webhook events, in order.
    pub notified: Vec<RoomEvent>,
    next_conn: u64,
    next_session: u64,
    /// Server-made session ids start with this (distinct per node in cluster tests).
    pub session_prefix: String,
}

/// One thing a tracker asked of the cluster backend.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendCall {
    /// Announce this fact (and keep the node's records up to date with it).
    Publish(Fact),
    /// Follow the room's channel, then answer with its records.
    Watch(RoomName),
    /// Stop following the room, and delete this node's records of it.
    Unwatch(RoomName),
    /// Answer with the room's records again.
    Load(RoomName, Authority),
}

/// How a test describes a join; `Default` is a plain join by `user`.
#[derive(Debug, Default, Clone)]
pub struct JoinSpec {
    /// The display name, if the join gives one.
    pub name: Option<String>,
    /// The session to restore, if any.
    pub session_id: Option<String>,
    /// The initial state, if any.
    pub state: Option<State>,
    /// Whether the connection asks for batched roster events.
    pub batch: bool,
    /// The view asked for, if any.
    pub view: Option<presence_protocol::View>,
    /// Whether the session only watches.
    pub spectator: bool,
}

impl Harness {
    /// A tracker with `config`, at the start of virtual time.
    pub fn new(config: Config) -> Self {
        let start = Instant::now();
        let now = Now {
            instant: start,
            unix_ms: START_UNIX_MS,
        };
        Harness {
            tracker: Tracker::new(config),
            now,
            start,
            inbox: HashMap::new(),
            subscriptions: HashMap::new(),
            closed_by_server: Vec::new(),
            backend: Vec::new(),
            watching: BTreeSet::new(),
            notified: Vec::new(),
            next_conn: 0,
            next_session: 0,
            session_prefix: "fresh-".to_owned(),
        }
    }

    /// Node `i` of a test cluster (node id `i + 1`), with server-made session ids of its
    /// own so nodes never hand out the same one.
    pub fn cluster_node(i: usize, node_ttl: Duration, reconnect_grace: Duration) -> Self {
        let mut node = Harness::new(Config {
            reconnect_grace,
            cluster: Some(Cluster {
                node: node_id(i),
                node_ttl,
            }),
            ..Config::default()
        });
        node.session_prefix = format!("n{i}-");
        node
    }

    /// A new connection (nothing is sent to the tracker until it joins).
    pub fn connect(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Connects and joins; returns the connection.
    pub fn join(&mut self, room_name: &str, user: &str) -> ConnId {
        let conn = self.connect();
        self.join_on(conn, room_name, user, JoinSpec::default());
        conn
    }

    /// Joins `room_name` as `user` on an existing connection.
    pub fn join_on(&mut self, conn: ConnId, room_name: &str, user: &str, spec: JoinSpec) {
        let request = self.join_request(room(room_name), user_id(user), spec);
        self.input(Input::Join {
            conn,
            request,
            reference: None,
        });
    }

    /// The request a join by `user` makes, with the next server-made session id; for
    /// callers that hand the input to the tracker themselves, as a bench does.
    pub fn join_request(&mut self, room: RoomName, user: UserId, spec: JoinSpec) -> JoinRequest {
        self.next_session += 1;
        JoinRequest {
            room,
            user_id: user,
            name: spec.name,
            // The shell makes an id only when the client named none.
            session_id: SessionId::new(
                &spec
                    .session_id
                    .unwrap_or_else(|| format!("{}{}", self.session_prefix, self.next_session)),
            )
            .expect("session id"),
            state: spec.state,
            batch: spec.batch,
            view: spec.view,
            spectator: spec.spectator,
        }
    }

    /// Hands `input` to the tracker, runs what is due, and delivers the effects.
    pub fn input(&mut self, input: Input) {
        self.tracker.handle(input, self.now);
        // The shell runs due work right after every input, as the driver does.
        self.tracker.handle_timeout(self.now);
        self.collect();
    }

    /// `presence:leave` of one room, or of all with `None`.
    pub fn leave(&mut self, conn: ConnId, room_name: Option<&str>) {
        self.input(Input::Leave {
            conn,
            room: room_name.map(room),
            unload: false,
            reference: None,
        });
    }

    /// `presence:leave` with `reason: "unload"`, of every room, as a page sends on `pagehide`.
    pub fn unload(&mut self, conn: ConnId) {
        self.input(Input::Leave {
            conn,
            room: None,
            unload: true,
            reference: None,
        });
    }

    /// `presence:update` with the state object `json`.
    pub fn update(&mut self, conn: ConnId, room_name: &str, json: &str) {
        self.input(Input::Update {
            conn,
            room: room(room_name),
            state: state(json),
            reference: None,
        });
    }

    /// A visible cursor at (`x`, `y`).
    pub fn cursor(&mut self, conn: ConnId, room_name: &str, x: f64, y: f64) {
        let room = room(room_name);
        self.input(Input::Cursor {
            conn,
            room,
            x,
            y,
            visible: true,
            reference: None,
        });
    }

    /// The socket is gone, without a leave.
    pub fn close(&mut self, conn: ConnId) {
        self.input(Input::Closed { conn });
    }

    /// The connection showed it is alive (a pong or any frame).
    pub fn activity(&mut self, conn: ConnId) {
        self.input(Input::Activity { conn });
    }

    /// Moves virtual time forward, running every deadline at its own instant.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now.instant + by;
        while let Some(deadline) = self.tracker.next_deadline() {
            if deadline > target {
                break;
            }
            self.set_time(deadline.max(self.now.instant));
            self.tracker.handle_timeout(self.now);
            self.collect();
        }
        self.set_time(target);
        self.tracker.handle_timeout(self.now);
        self.collect();
    }

    /// Moves virtual time forward and runs nothing: the caller calls `handle_timeout`
    /// and drains the effects itself (a bench times exactly that).
    pub fn move_clock(&mut self, by: Duration) {
        self.set_time(self.now.instant + by);
    }

    fn set_time(&mut self, instant: Instant) {
        let elapsed = instant.duration_since(self.start);
        self.now = Now {
            instant,
            unix_ms: START_UNIX_MS + elapsed.as_millis() as u64,
        };
    }

    fn collect(&mut self) {
        while let Some(effect) = self.tracker.poll_effect() {
            match effect {
                Effect::Send { conn, message } => self.inbox.entry(conn).or_default().push(message),
                Effect::Broadcast {
                    recipients,
                    message,
                } => {
                    let mut seen = BTreeSet::new();
                    for conn in recipients {
                        assert!(
                            seen.insert(conn),
                            "{conn:?} is listed twice in one broadcast"
                        );
                        self.inbox.entry(conn).or_default().push(message.clone());
                    }
                }
                Effect::Subscribed { conn, room } => {
                    let fresh = self
                        .subscriptions
                        .entry(conn)
                        .or_default()
                        .insert(room.clone());
                    assert!(fresh, "{conn:?} subscribed twice to {room}");
                }
                Effect::Unsubscribed { conn, room } => {
                    let was = self.subscriptions.entry(conn).or_default().remove(&room);
                    assert!(was, "{conn:?} unsubscribed from {room} without subscribing");
                }
                Effect::Cursors {
                    room,
                    cursors,
                    recipients,
                } => {
                    let mut seen = BTreeSet::new();
                    for (conn, own) in recipients {
                        assert!(
                            seen.insert(conn),
                            "{conn:?} is listed twice in one cursor batch"
                        );
                        let mut cursors = cursors.clone();
                        if let Some(index) = own {
                            cursors.remove(index);
                        }
                        let message = ServerMessage::Cursors {
                            room: room.clone(),
                            cursors,
                        };
                        self.inbox.entry(conn).or_default().push(message);
                    }
                }
                Effect::Close { conn, reason } => self.closed_by_server.push((conn, reason)),
                Effect::Notify(event) => self.notified.push(event),
                Effect::Publish(fact) => self.backend.push(BackendCall::Publish(fact)),
                Effect::Watch { room } => {
                    assert!(self.watching.insert(room.clone()), "{room} watched twice");
                    self.backend.push(BackendCall::Watch(room));
                }
                Effect::Unwatch { room } => {
                    assert!(
                        self.watching.remove(&room),
                        "{room} unwatched without being watched"
                    );
                    self.backend.push(BackendCall::Unwatch(room));
                }
                Effect::Load { room, authority } => {
                    assert!(
                        self.watching.contains(&room),
                        "{room} read again without being watched"
                    );
                    self.backend.push(BackendCall::Load(room, authority));
                }
            }
        }
    }

    /// The facts announced for other nodes (cluster mode) and not yet carried off, in
    /// order: the `Publish` calls of [`Harness::backend`].
    pub fn published(&self) -> Vec<Fact> {
        self.backend
            .iter()
            .filter_map(|call| match call {
                BackendCall::Publish(fact) => Some(fact.clone()),
                _ => None,
            })
            .collect()
    }

    /// Everything delivered to `conn` since the last call.
    pub fn take(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Forgets everything delivered so far (for tests that only check end states).
    pub fn take_all(&mut self) {
        self.inbox.clear();
    }

    /// The message types delivered to `conn` since the last call.
    pub fn kinds(&mut self, conn: ConnId) -> Vec<&'static str> {
        self.take(conn)
            .iter()
            .map(ServerMessage::type_name)
            .collect()
    }

    /// The user ids listed in the room, in `joinedAt` order.
    pub fn roster(&self, room_name: &str) -> Vec<String> {
        self.tracker
            .roster(room_name)
            .unwrap_or_default()
            .into_iter()
            .map(|user| user.id.to_string())
            .collect()
    }

    /// The user `id` as the room lists it, if it does.
    pub fn user(&self, room_name: &str, id: &str) -> Option<User> {
        self.tracker
            .roster(room_name)?
            .into_iter()
            .find(|user| user.id.as_str() == id)
    }
}
