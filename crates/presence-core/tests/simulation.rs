//! A seeded simulation (a small VOPR): thousands of random joins (with full and list views,
//! listed and spectating), leaves, closes, restores, updates, cursor moves and time jumps,
//! checked after every step against a model of the contract and against what each client
//! could rebuild from the frames it received: its window of the room, and the numbers.
//! A failing seed replays with `PRESENCED_SEED=<n> cargo test -p presence-core --test simulation`.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use presence_core::testing::{ms, secs, Harness, JoinSpec};
use presence_core::{Config, ConnId, Input, PALETTE};
use presence_protocol::{RoomName, ServerMessage, UserId, View};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{for_each_seed, ClientView};

const USERS: [&str; 6] = ["ann", "ben", "cat", "dan", "eve", "fay"];
const ROOMS: [&str; 3] = ["r1", "r2", "r3"];
const GRACE: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(50);

/// What the contract says should be held, kept independently of the tracker.
#[derive(Clone)]
struct ModelSession {
    user: String,
    conn: Option<ConnId>,
    grace_ends_at: Option<Instant>,
    /// `Some(k)`: a list view of k; `None`: the whole roster.
    list: Option<u16>,
    spectator: bool,
}

struct Sim {
    h: Harness,
    rng: StdRng,
    /// (room, session id) → session, as the model believes.
    sessions: BTreeMap<(String, String), ModelSession>,
    /// Live connections: who they are and when they last spoke.
    conns: BTreeMap<ConnId, (String, Instant)>,
    views: HashMap<(ConnId, String), ClientView>,
    batch: HashSet<(ConnId, String)>,
    /// Session ids handed out, for restore attempts (room, session id, user).
    issued: Vec<(String, String, String)>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let config = Config {
            reconnect_grace: GRACE,
            heartbeat_timeout: TIMEOUT,
            cursor_interval: INTERVAL,
            ..Config::default()
        };
        Sim {
            h: Harness::new(config),
            rng: StdRng::seed_from_u64(seed),
            sessions: BTreeMap::new(),
            conns: BTreeMap::new(),
            views: HashMap::new(),
            batch: HashSet::new(),
            issued: Vec::new(),
        }
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn random_conn(&mut self) -> Option<ConnId> {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        (!conns.is_empty()).then(|| conns[self.rng.random_range(0..conns.len())])
    }

    fn step(&mut self) {
        match self.rng.random_range(0..100) {
            0..=24 => self.join(),
            25..=32 => {
                if let Some(conn) = self.random_conn() {
                    let room_name = if self.rng.random_bool(0.7) {
                        Some(self.pick(&ROOMS))
                    } else {
                        None
                    };
                    self.leave(conn, room_name);
                }
            }
            33..=42 => {
                if let Some(conn) = self.random_conn() {
                    self.close(conn);
                }
            }
            43..=57 => {
                if let Some(conn) = self.random_conn() {
                    let room_name = self.pick(&ROOMS);
                    let key = self.pick(&["a", "b", "away"]);
                    let value = match self.rng.random_range(0..3) {
                        0 => "null".to_owned(),
                        1 => "true".to_owned(),
                        _ if key == "away" => "false".to_owned(),
                        _ => self.rng.random_range(0..5).to_string(),
                    };
                    self.h
                        .update(conn, room_name, &format!(r#"{{"{key}":{value}}}"#));
                    self.spoke(conn);
                    self.apply_own_update(conn, room_name, key, &value);
                }
            }
            58..=79 => {
                if let Some(conn) = self.random_conn() {
                    let room_name = self.pick(&ROOMS);
                    let (x, y) = (
                        self.rng.random_range(0.0..1.0),
                        self.rng.random_range(0.0..1.0),
                    );
                    self.h.cursor(conn, room_name, x, y);
                    self.spoke(conn);
                }
            }
            80..=89 => {
                if let Some(conn) = self.random_conn() {
                    self.h.input(Input::Activity { conn });
                    self.spoke(conn);
                }
            }
            90..=97 => {
                let by = ms(self.rng.random_range(0..80));
                self.advance(by)
            }
            _ => {
                let by = secs(self.rng.random_range(1..25));
                self.advance(by)
            }
        }
        self.deliver();
        self.check();
        self.check_windows();
    }

    fn spoke(&mut self, conn: ConnId) {
        let now = self.h.now.instant;
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.1 = now;
        }
    }

    fn join(&mut self) {
        let reuse = self.rng.random_bool(0.3) && !self.conns.is_empty();
        let conn = if reuse {
            self.random_conn().unwrap_or_else(|| self.h.connect())
        } else {
            self.h.connect()
        };
        let user = match self.conns.get(&conn) {
            Some((user, _)) if self.rng.random_bool(0.9) => user.clone(),
            _ => self.pick(&USERS).to_owned(),
        };
        let room_name = self.pick(&ROOMS).to_owned();
        // Sometimes try to restore a session this or another user was given.
        let session_id = if !self.issued.is_empty() && self.rng.random_bool(0.4) {
            let (r, id, _) = self.issued[self.rng.random_range(0..self.issued.len())].clone();
            (r == room_name).then_some(id)
        } else {
            None
        };
        let batch = self.rng.random_bool(0.3);
        let view = match self.rng.random_range(0..10) {
            0..=3 => None,
            4..=5 => Some(View::Full),
            _ => Some(View::List(self.rng.random_range(0..4))),
        };
        let spectator = self.rng.random_bool(0.15);
        let spec = JoinSpec {
            session_id: session_id.clone(),
            batch,
            view,
            spectator,
            ..JoinSpec::default()
        };
        // What a held session becomes: the view asked for, if any; listed or not as it was.
        let list_of = |view: Option<View>, held: Option<u16>| match view {
            None => held,
            Some(View::Full) => None,
            Some(View::List(k)) => Some(k),
        };
        self.h.join_on(conn, &room_name, &user, spec);
        self.conns.insert(conn, (user.clone(), self.h.now.instant));

        // Model: one session per connection per room; the same user refreshes it.
        let own = self
            .sessions
            .iter()
            .find(|((r, _), s)| *r == room_name && s.conn == Some(conn))
            .map(|(k, s)| (k.clone(), s.user.clone()));
        if let Some((key, holder)) = own {
            if holder == user {
                if let Some(session) = self.sessions.get_mut(&key) {
                    session.list = list_of(view, session.list);
                }
                self.adopt(conn, &room_name, batch);
                return;
            }
            self.sessions.remove(&key);
        }
        // Sessions are named by user and id together: another user's id never restores.
        let named = |id: &str| format!("{user}/{id}");
        let held = session_id
            .as_ref()
            .and_then(|id| self.sessions.get(&(room_name.clone(), named(id))));
        if let Some(held) = held {
            if held.user == user {
                let key = (
                    room_name.clone(),
                    named(session_id.as_deref().unwrap_or_default()),
                );
                if let Some(session) = self.sessions.get_mut(&key) {
                    session.conn = Some(conn);
                    session.grace_ends_at = None;
                    session.list = list_of(view, session.list);
                }
                self.adopt(conn, &room_name, batch);
                return;
            }
        }
        // A new session: its id is whatever the server says in currentUsers.self.
        let id = self.adopt(conn, &room_name, batch);
        if let Some(id) = id {
            self.sessions.insert(
                (room_name.clone(), format!("{user}/{id}")),
                ModelSession {
                    user: user.clone(),
                    conn: Some(conn),
                    grace_ends_at: None,
                    list: list_of(view, None),
                    spectator,
                },
            );
            self.issued.push((room_name, id, user));
        }
    }

    /// A client knows its own change without an echo, as the SDK does: it merges locally.
    fn apply_own_update(&mut self, conn: ConnId, room_name: &str, key: &str, value: &str) {
        let spectating = self
            .sessions
            .iter()
            .any(|((r, _), s)| r == room_name && s.conn == Some(conn) && s.spectator);
        if spectating {
            // Refused with `forbidden`: a spectator has no state to change.
            return;
        }
        let Some(view) = self.views.get_mut(&(conn, room_name.to_owned())) else {
            return;
        };
        let Some(me) = view.me.clone() else { return };
        if key == "away" {
            return;
        }
        if let Some(user) = view.users.get_mut(&me) {
            match serde_json::from_str::<serde_json::Value>(value).expect("json") {
                serde_json::Value::Null => user.state.remove(key),
                other => user.state.insert(key.to_owned(), other),
            };
        }
    }

    /// Reads the join's reply into the connection's view; returns the session id.
    fn adopt(&mut self, conn: ConnId, room_name: &str, batch: bool) -> Option<String> {
        let frames = self.h.take(conn);
        let mut session = None;
        for frame in &frames {
            if let ServerMessage::CurrentUsers { room: r, me, .. } = frame {
                if r.as_str() == room_name {
                    session = Some(me.session_id.to_string());
                }
            }
            self.apply(conn, frame);
        }
        if batch {
            self.batch.insert((conn, room_name.to_owned()));
        } else {
            self.batch.remove(&(conn, room_name.to_owned()));
        }
        assert!(session.is_some(), "join got no currentUsers: {frames:?}");
        session
    }

    fn leave(&mut self, conn: ConnId, room_name: Option<&str>) {
        self.h.leave(conn, room_name);
        self.spoke(conn);
        self.sessions
            .retain(|(r, _), s| !(s.conn == Some(conn) && room_name.is_none_or(|n| n == r)));
        self.views
            .retain(|(c, r), _| !(*c == conn && room_name.is_none_or(|n| n == r)));
    }

    fn close(&mut self, conn: ConnId) {
        self.h.close(conn);
        self.conns.remove(&conn);
        let ends = self.h.now.instant + GRACE;
        for session in self.sessions.values_mut() {
            if session.conn == Some(conn) {
                session.conn = None;
                session.grace_ends_at = Some(ends);
            }
        }
        self.views.retain(|(c, _), _| *c != conn);
    }

    fn advance(&mut self, by: Duration) {
        // Step in small hops so the model expires things in the same order as the tracker.
        let target = self.h.now.instant + by;
        loop {
            let next_grace = self.sessions.values().filter_map(|s| s.grace_ends_at).min();
            let next_silence = self.conns.values().map(|(_, at)| *at + TIMEOUT).min();
            let next = [next_grace, next_silence].into_iter().flatten().min();
            match next {
                Some(at) if at <= target => {
                    let hop = at.saturating_duration_since(self.h.now.instant);
                    self.h.advance(hop);
                    self.expire();
                    self.deliver();
                }
                _ => break,
            }
        }
        let rest = target.saturating_duration_since(self.h.now.instant);
        self.h.advance(rest);
        self.expire();
    }

    fn expire(&mut self) {
        let now = self.h.now.instant;
        self.sessions
            .retain(|_, s| s.grace_ends_at.is_none_or(|at| at > now));
        let silent: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, (_, at))| *at + TIMEOUT <= now)
            .map(|(c, _)| *c)
            .collect();
        for conn in silent {
            self.conns.remove(&conn);
            self.sessions.retain(|_, s| s.conn != Some(conn));
            self.views.retain(|(c, _), _| *c != conn);
        }
    }

    fn apply(&mut self, conn: ConnId, frame: &ServerMessage) {
        let room_name = match frame {
            ServerMessage::CurrentUsers { room, .. }
            | ServerMessage::UserJoined { room, .. }
            | ServerMessage::UserLeft { room, .. }
            | ServerMessage::UserUpdated { room, .. }
            | ServerMessage::Restored { room, .. }
            | ServerMessage::Cursors { room, .. }
            | ServerMessage::Diff { room, .. }
            | ServerMessage::Count { room, .. } => room.to_string(),
            ServerMessage::Error { .. } => return,
        };
        let key = (conn, room_name);
        let batch = self.batch.contains(&key);
        let view = self.views.entry(key).or_default();
        if let (ServerMessage::Cursors { cursors, .. }, Some(me)) = (frame, &view.me) {
            assert!(
                cursors.iter().all(|c| &c.user_id != me),
                "{conn:?} got its own cursor echoed"
            );
        }
        if !batch {
            if let ServerMessage::Cursors { cursors, .. } = frame {
                for entry in cursors {
                    assert!(
                        view.users.contains_key(&entry.user_id),
                        "{conn:?} got the cursor of {}, outside its window",
                        entry.user_id
                    );
                }
            }
            match frame {
                ServerMessage::UserJoined { user, .. } => {
                    assert!(
                        !view.users.contains_key(&user.id),
                        "{conn:?} told twice that {} joined",
                        user.id
                    )
                }
                ServerMessage::UserLeft { user_id, .. } => {
                    assert!(
                        view.users.contains_key(user_id),
                        "{conn:?} told {user_id} left before joining"
                    )
                }
                _ => {}
            }
        }
        view.apply(frame);
    }

    fn deliver(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            for frame in self.h.take(conn) {
                self.apply(conn, &frame);
            }
        }
    }

    fn check(&mut self) {
        // Listed iff the model holds a live or in-grace session; each user once.
        for room_name in ROOMS {
            let listed: Vec<String> = self.h.roster(room_name);
            let unique: BTreeSet<&String> = listed.iter().collect();
            assert_eq!(
                unique.len(),
                listed.len(),
                "{room_name} lists a user twice: {listed:?}"
            );
            let expected: BTreeSet<String> = self
                .sessions
                .iter()
                .filter(|((r, _), s)| r == room_name && !s.spectator)
                .map(|(_, s)| s.user.clone())
                .collect();
            let listed: BTreeSet<String> = listed.into_iter().collect();
            assert_eq!(
                listed, expected,
                "roster of {room_name} at {:?}",
                self.h.now.unix_ms
            );

            // Colors distinct while the palette allows (six users, sixteen colors).
            let users = self.h.tracker.roster(room_name).unwrap_or_default();
            let colors: BTreeSet<&String> = users.iter().map(|u| &u.color).collect();
            assert!(
                users.len() > PALETTE.len() || colors.len() == users.len(),
                "colors repeat in {room_name}"
            );
        }
    }

    /// Every step: a client without batches holds exactly its window, at once.
    fn check_windows(&self) {
        for ((room_name, _), session) in &self.sessions {
            let Some(conn) = session.conn else { continue };
            let key = (conn, room_name.clone());
            if self.batch.contains(&key) {
                continue;
            }
            let server = self.h.tracker.roster(room_name).unwrap_or_default();
            let expected: BTreeSet<UserId> =
                window(server, session).into_iter().map(|u| u.id).collect();
            let held: BTreeSet<UserId> = self
                .views
                .get(&key)
                .map(|v| v.users.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(
                held, expected,
                "{conn:?}'s window of {room_name} (list {:?}, spectator {})",
                session.list, session.spectator
            );
        }
    }

    /// Lets every pending flush run, then compares each client's view with the server.
    fn checkpoint(&mut self) {
        // A session that expires during the wait changes the roster again, and its diff
        // waits for the next interval: wait until an interval passes with no expiry.
        loop {
            let held = (self.sessions.len(), self.conns.len());
            self.advance(INTERVAL + ms(1));
            if (self.sessions.len(), self.conns.len()) == held {
                break;
            }
        }
        self.deliver();
        self.check();
        let subscribed: Vec<(ConnId, RoomName)> = self
            .h
            .subscriptions
            .iter()
            .flat_map(|(conn, rooms)| rooms.iter().map(|r| (*conn, r.clone())))
            .collect();
        for (conn, room_name) in subscribed {
            let server = self
                .h
                .tracker
                .roster(room_name.as_str())
                .unwrap_or_default();
            let view = self
                .views
                .get(&(conn, room_name.to_string()))
                .cloned()
                .unwrap_or_default();
            let me: Option<UserId> = view.me.clone();
            let session = self
                .sessions
                .iter()
                .find(|((r, _), s)| s.conn == Some(conn) && r == room_name.as_str())
                .map(|(_, s)| s.clone());
            let Some(session) = session else {
                panic!("{conn:?} is subscribed to {room_name} without a session")
            };
            let spectators = self
                .sessions
                .iter()
                .filter(|((r, _), s)| r == room_name.as_str() && s.spectator)
                .count() as u64;
            if session.list.is_some() || session.spectator {
                assert_eq!(
                    view.counts,
                    Some((server.len() as u64, spectators)),
                    "{conn:?}'s numbers of {room_name}"
                );
            }
            let server = window(server, &session);
            let server_ids: BTreeSet<&UserId> = server.iter().map(|u| &u.id).collect();
            let view_ids: BTreeSet<&UserId> = view.users.keys().collect();
            assert_eq!(
                view_ids, server_ids,
                "{conn:?}'s view of {room_name} (list {:?}, spectator {}, user {})",
                session.list, session.spectator, session.user
            );
            for user in &server {
                let seen = &view.users[&user.id];
                assert_eq!(
                    (&seen.name, &seen.color, seen.joined_at, seen.sessions),
                    (&user.name, &user.color, user.joined_at, user.sessions),
                    "{conn:?}'s view of {} in {room_name} (list {:?}, spectator {}, batch {})",
                    user.id,
                    session.list,
                    session.spectator,
                    self.batch.contains(&(conn, room_name.to_string()))
                );
                if Some(&user.id) == me.as_ref() {
                    // Its own away flag is the server's aggregate over all its tabs.
                    let mine = |s: &presence_protocol::State| {
                        s.iter()
                            .filter(|(k, _)| *k != "away")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<BTreeMap<_, _>>()
                    };
                    assert_eq!(
                        mine(&seen.state),
                        mine(&user.state),
                        "{conn:?} lost its own state"
                    );
                } else {
                    assert_eq!(
                        seen.state, user.state,
                        "{conn:?} sees stale state of {}",
                        user.id
                    );
                    assert_eq!(
                        seen.cursor, user.cursor,
                        "{conn:?} sees a stale cursor of {}",
                        user.id
                    );
                }
            }
        }
    }
}

/// What a session sees of a room listed in `joinedAt` order: its own user (if listed, and
/// the session is) and the first k others, or everyone.
fn window(
    users: Vec<presence_protocol::User>,
    session: &ModelSession,
) -> Vec<presence_protocol::User> {
    let Some(k) = session.list else {
        return users;
    };
    let own = (!session.spectator).then_some(session.user.as_str());
    let mut others = 0;
    users
        .into_iter()
        .filter(|u| {
            if Some(u.id.as_str()) == own {
                return true;
            }
            others += 1;
            others <= usize::from(k)
        })
        .collect()
}

fn run(seed: u64, steps: usize) {
    let mut sim = Sim::new(seed);
    for step in 0..steps {
        sim.step();
        if step % 10 == 9 {
            sim.checkpoint();
        }
    }
    sim.checkpoint();
}

#[test]
fn random_histories_keep_every_invariant() {
    for_each_seed(60, |seed| run(seed, 500));
}
