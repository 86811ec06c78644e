//! A test bench for the tracker: virtual time, numbered connections, and per-connection
//! inboxes that receive exactly what the shell would deliver.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use presence_core::{
    CloseReason, Cluster, Config, ConnId, Effect, Fact, Input, JoinRequest, NodeId, Now, Tracker,
};
use presence_protocol::{RoomName, ServerMessage, SessionId, State, User, UserId};

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid room")
}

pub fn user_id(id: &str) -> UserId {
    UserId::new(id).expect("valid user id")
}

pub fn state(json: &str) -> State {
    serde_json::from_str(json).expect("state object")
}

pub struct Harness {
    pub tracker: Tracker,
    pub now: Now,
    start: Instant,
    inbox: HashMap<ConnId, Vec<ServerMessage>>,
    pub subscriptions: HashMap<ConnId, BTreeSet<RoomName>>,
    pub closed_by_server: Vec<(ConnId, CloseReason)>,
    /// Facts announced for other nodes (cluster mode), in order.
    pub published: Vec<Fact>,
    next_conn: u64,
    next_session: u64,
    /// Server-made session ids start with this (distinct per node in cluster tests).
    pub session_prefix: String,
}

/// How a test describes a join; `Default` is a plain join by `user`.
#[derive(Default, Clone)]
pub struct JoinSpec {
    pub name: Option<String>,
    pub session_id: Option<String>,
    pub state: Option<State>,
    pub batch: bool,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let start = Instant::now();
        let now = Now {
            instant: start,
            unix_ms: 1_700_000_000_000,
        };
        Harness {
            tracker: Tracker::new(config),
            now,
            start,
            inbox: HashMap::new(),
            subscriptions: HashMap::new(),
            closed_by_server: Vec::new(),
            published: Vec::new(),
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
                node: NodeId(i as u64 + 1),
                node_ttl,
            }),
            ..Config::default()
        });
        node.session_prefix = format!("n{i}-");
        node
    }

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

    pub fn join_on(&mut self, conn: ConnId, room_name: &str, user: &str, spec: JoinSpec) {
        self.next_session += 1;
        let request = JoinRequest {
            room: room(room_name),
            user_id: user_id(user),
            name: spec.name,
            session_id: SessionId::new(
                &spec
                    .session_id
                    .unwrap_or_else(|| format!("{}{}", self.session_prefix, self.next_session)),
            )
            .expect("session id"),
            state: spec.state,
            batch: spec.batch,
        };
        self.input(Input::Join {
            conn,
            request,
            reference: None,
        });
    }

    pub fn input(&mut self, input: Input) {
        self.tracker.handle(input, self.now);
        // The shell runs due work right after every input, as the driver does.
        self.tracker.handle_timeout(self.now);
        self.collect();
    }

    pub fn leave(&mut self, conn: ConnId, room_name: Option<&str>) {
        self.input(Input::Leave {
            conn,
            room: room_name.map(room),
            reference: None,
        });
    }

    pub fn update(&mut self, conn: ConnId, room_name: &str, json: &str) {
        self.input(Input::Update {
            conn,
            room: room(room_name),
            state: state(json),
            reference: None,
        });
    }

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

    pub fn close(&mut self, conn: ConnId) {
        self.input(Input::Closed { conn });
    }

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

    fn set_time(&mut self, instant: Instant) {
        let elapsed = instant.duration_since(self.start);
        self.now = Now {
            instant,
            unix_ms: 1_700_000_000_000 + elapsed.as_millis() as u64,
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
                Effect::Publish(fact) => self.published.push(fact),
            }
        }
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

    /// The user ids listed in the room, in arrival order.
    pub fn roster(&self, room_name: &str) -> Vec<String> {
        self.tracker
            .roster(room_name)
            .unwrap_or_default()
            .into_iter()
            .map(|user| user.id.to_string())
            .collect()
    }

    pub fn user(&self, room_name: &str, id: &str) -> Option<User> {
        self.tracker
            .roster(room_name)?
            .into_iter()
            .find(|user| user.id.as_str() == id)
    }
}

/// What a client knows of one room, rebuilt only from the frames it received.
#[derive(Debug, Default, Clone)]
pub struct ClientView {
    pub users: HashMap<UserId, User>,
    pub me: Option<UserId>,
}

impl ClientView {
    pub fn apply(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::CurrentUsers { users, me, .. } => {
                self.users = users.iter().map(|u| (u.id.clone(), u.clone())).collect();
                self.me = Some(me.id.clone());
            }
            ServerMessage::UserJoined { user, .. } | ServerMessage::UserUpdated { user, .. } => {
                self.users.insert(user.id.clone(), user.clone());
            }
            ServerMessage::UserLeft { user_id, .. } => {
                self.users.remove(user_id);
            }
            ServerMessage::Diff {
                joined,
                left,
                updated,
                ..
            } => {
                for id in left {
                    self.users.remove(id);
                }
                for user in joined.iter().chain(updated) {
                    self.users.insert(user.id.clone(), user.clone());
                }
            }
            ServerMessage::Cursors { cursors, .. } => {
                for entry in cursors {
                    if let Some(user) = self.users.get_mut(&entry.user_id) {
                        user.cursor.x = entry.x;
                        user.cursor.y = entry.y;
                        user.cursor.visible = entry.visible;
                    }
                }
            }
            ServerMessage::Restored { .. } | ServerMessage::Error { .. } => {}
        }
    }
}
