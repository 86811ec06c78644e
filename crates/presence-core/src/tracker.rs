//! [`Tracker`]: one shard's rooms, their sessions and the deadlines that govern them.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::time::Instant;

use presence_protocol::{
    CursorEntry, CursorPosition, ErrorCode, Reference, RoomName, SelfInfo, ServerMessage, State,
    User, UserId, AWAY_KEY,
};
use serde_json::Value;
use slotmap::SlotMap;

use crate::color::PALETTE;
use crate::config::Config;
use crate::effect::{CloseReason, Effect};
use crate::fact::{Fact, NodeId, SessionRecord, Stamp};
use crate::input::{ConnId, Input, JoinRequest, Now};
use crate::roster::{Change, Member, Roster};
use crate::session::{Attachment, Connection, Session, SessionKey};
use crate::timers::{Timer, Timers};

/// Counts for `/metrics`, kept up to date on every change (O(1) to read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rooms with at least one user.
    pub rooms: usize,
    /// Users summed over rooms (a user in two rooms counts twice).
    pub users: usize,
    /// Sessions, live or within grace.
    pub sessions: usize,
}

/// One node's (or one shard's) presence state. Reads no clock; call
/// [`Tracker::poll_effect`] until `None` after every call that takes a [`Now`].
#[derive(Debug)]
pub struct Tracker {
    pub(crate) config: Config,
    pub(crate) rosters: HashMap<RoomName, Roster>,
    pub(crate) sessions: SlotMap<SessionKey, Session>,
    pub(crate) connections: HashMap<ConnId, Connection>,
    pub(crate) timers: Timers,
    pub(crate) effects: VecDeque<Effect>,
    pub(crate) next_epoch: u64,
    pub(crate) users: usize,
    /// Counts users' arrivals, so snapshots list users in the order they came.
    pub(crate) arrivals: u64,
    /// The time of the call being handled; set at every entry point, read nowhere else.
    pub(crate) now: Now,
    /// Other nodes heard from (cluster mode), for presuming the silent ones dead.
    pub(crate) nodes: HashMap<NodeId, NodeBeat>,
    /// Whether the cluster channel is reachable; silence proves nothing while it is not.
    pub(crate) backend_up: bool,
    /// Nodes presumed dead; hearing from one again means our view of it is stale.
    pub(crate) dead_nodes: std::collections::HashSet<NodeId>,
}

/// The last word from another node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeBeat {
    pub(crate) last_heard_at: Instant,
    pub(crate) epoch: u64,
}

/// A request the core turns down, before the client's `ref` is attached.
struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn reply(self, reference: &Option<Reference>) -> ServerMessage {
        ServerMessage::error(self.code, self.message, reference.clone())
    }
}

impl Tracker {
    /// An empty tracker. `start` is the time of creation (no clock is read here either).
    pub fn new(config: Config, start: Now) -> Self {
        Tracker {
            config,
            rosters: HashMap::new(),
            sessions: SlotMap::with_key(),
            connections: HashMap::new(),
            timers: Timers::default(),
            effects: VecDeque::new(),
            next_epoch: 0,
            users: 0,
            arrivals: 0,
            now: start,
            nodes: HashMap::new(),
            backend_up: true,
            dead_nodes: std::collections::HashSet::new(),
        }
    }

    /// Applies one input. Room flushes that fall due at `now` are left for
    /// [`Tracker::handle_timeout`], so call it when [`Tracker::next_deadline`] says so.
    pub fn handle(&mut self, input: Input, now: Now) {
        self.now = now;
        if let (Some(conn), false) = (input.conn(), matches!(input, Input::Closed { .. })) {
            self.touch(conn, now);
        }
        match input {
            Input::Join {
                conn,
                request,
                reference,
            } => self.join(conn, request, reference, now),
            Input::Leave {
                conn,
                room,
                reference,
            } => self.leave(conn, room, reference),
            Input::Update {
                conn,
                room,
                state,
                reference,
            } => self.update(conn, &room, state, reference),
            Input::Cursor {
                conn,
                room,
                x,
                y,
                visible,
                reference,
            } => self.cursor(conn, &room, CursorPosition { x, y, visible }, reference),
            Input::Activity { .. } => {}
            Input::Closed { conn } => self.closed(conn, now),
            Input::Remote(fact) => self.remote(fact),
            Input::BackendDown => self.backend_up = false,
            Input::BackendUp => self.backend_reachable(),
        }
    }

    /// Does whatever has come due by `now`: grace ends, silent connections, room flushes.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        while let Some(timer) = self.timers.pop_due(now.instant) {
            match timer {
                Timer::GraceEnd(key) => {
                    let ended = matches!(
                        self.sessions.get(key).map(|s| s.attachment),
                        Some(Attachment::Detached { grace_ends_at } | Attachment::Orphaned { grace_ends_at })
                            if grace_ends_at <= now.instant
                    );
                    if ended {
                        self.remove_session(key);
                    }
                }
                Timer::Silence { conn, epoch } => self.check_silence(conn, epoch, now),
                Timer::Flush(room) => self.flush(&room, now),
                Timer::NodeSilence { node, epoch } => self.check_node(node, epoch),
            }
        }
    }

    /// When [`Tracker::handle_timeout`] next has work, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The next effect to carry out, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Counts for metrics.
    pub fn stats(&self) -> Stats {
        Stats {
            rooms: self.rosters.len(),
            users: self.users,
            sessions: self.sessions.len(),
        }
    }

    /// Gives back memory a burst left behind: deadline entries that no longer matter (a
    /// stale one per connection that came and went within the heartbeat timeout) and map
    /// capacity far beyond what is in use. O(size); the server calls it every few seconds,
    /// never per input.
    pub fn compact(&mut self) {
        let sessions = &self.sessions;
        let connections = &self.connections;
        let rosters = &self.rosters;
        let nodes = &self.nodes;
        self.timers.retain(|timer| match timer {
            Timer::GraceEnd(key) => sessions.get(*key).is_some_and(|s| {
                matches!(
                    s.attachment,
                    Attachment::Detached { .. } | Attachment::Orphaned { .. }
                )
            }),
            Timer::Silence { conn, epoch } => {
                connections.get(conn).is_some_and(|c| c.epoch == *epoch)
            }
            Timer::Flush(room) => rosters.get(room).is_some_and(|r| r.flush_armed),
            Timer::NodeSilence { node, epoch } => {
                nodes.get(node).is_some_and(|b| b.epoch == *epoch)
            }
        });
        shrink(&mut self.rosters);
        shrink(&mut self.connections);
        for roster in self.rosters.values_mut() {
            shrink(&mut roster.members);
            shrink(&mut roster.sessions);
        }
    }

    /// Pending deadline entries (live and stale), for tests of expiry cost.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Whether the connection holds a session in `room`.
    pub fn holds(&self, conn: ConnId, room: &RoomName) -> bool {
        self.session_of(conn, room).is_some()
    }

    /// Every room and its number of users.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, usize)> {
        self.rosters
            .iter()
            .map(|(room, roster)| (room, roster.members.len()))
    }

    /// A room's users, ordered by arrival; `None` if nobody is in it.
    pub fn roster(&self, room: &str) -> Option<Vec<User>> {
        self.rosters.get(room).map(Roster::snapshot)
    }

    // ----- inputs -------------------------------------------------------------------------

    fn join(
        &mut self,
        conn: ConnId,
        mut request: JoinRequest,
        reference: Option<Reference>,
        now: Now,
    ) {
        let room = request.room.clone();
        let (shared, away) = match self.split_state(request.state.take()) {
            Ok(split) => split,
            Err(refusal) => return self.send(conn, refusal.reply(&reference)),
        };

        // A connection holds one session per room: a second join by the same user is a
        // refresh, by another user it replaces the first.
        if let Some(key) = self.session_of(conn, &room) {
            let same_user = self
                .sessions
                .get(key)
                .is_some_and(|s| s.user_id == request.user_id);
            if same_user {
                self.set_batch(&room, key, request.batch);
                let renamed = self.set_name(&room, &request.user_id, request.name.as_deref());
                if renamed {
                    self.user_updated(&room, &request.user_id, conn);
                    self.announce(key);
                }
                if shared.is_some() || away.is_some() {
                    if let Err(refusal) = self.apply_state(key, shared, away, conn) {
                        self.send(conn, refusal.reply(&reference));
                    }
                }
                return self.send_current_users(conn, &room, key);
            }
            self.remove_session(key);
        }

        // Restore: the named session is held for this very user. Sessions are named by
        // user and id together, so another user's session can never be found this way.
        let held = request.session_id.as_ref().and_then(|id| {
            let name = (request.user_id.clone(), id.clone());
            self.rosters.get(&room)?.sessions.get(&name).copied()
        });
        if let Some(key) = held {
            return self.restore(conn, key, &request, now);
        }
        let session_id = request
            .session_id
            .clone()
            .unwrap_or_else(|| request.fresh_session_id.clone());

        let is_new_user = !self
            .rosters
            .get(&room)
            .is_some_and(|r| r.members.contains_key(&request.user_id));
        if is_new_user {
            let members = self.rosters.get(&room).map_or(0, |r| r.members.len());
            if self
                .config
                .max_members_per_room
                .is_some_and(|max| members >= max)
            {
                let message = format!("room {room} is full");
                return self.send(
                    conn,
                    ServerMessage::error(ErrorCode::RoomFull, message, reference),
                );
            }
        }

        let key = self.sessions.insert(Session {
            id: session_id.clone(),
            room: room.clone(),
            user_id: request.user_id.clone(),
            attachment: Attachment::Live(conn),
            batch: request.batch,
            away: away.unwrap_or(false),
            claim: next_stamp(Stamp::default(), now, self.config.cluster.map(|c| c.node)),
        });
        self.attach(conn, key, &room, now);
        let roster = self.rosters.entry(room.clone()).or_default();
        roster
            .sessions
            .insert((request.user_id.clone(), session_id), key);
        if request.batch {
            roster.batch_sessions += 1;
        }

        if is_new_user {
            let color_index = roster.colors.assign(request.user_id.as_str());
            let mut state = shared.unwrap_or_default();
            state.retain(|_, value| !value.is_null());
            let user = User {
                id: request.user_id.clone(),
                name: request
                    .name
                    .clone()
                    .unwrap_or_else(|| request.user_id.to_string()),
                color: PALETTE[color_index].to_owned(),
                joined_at: now.unix_ms,
                last_seen: now.unix_ms,
                cursor: CursorPosition::default(),
                state,
                sessions: 1,
            };
            let stamp = Stamp {
                unix_ms: now.unix_ms,
                node: self.node_id().0,
            };
            self.add_member(&room, user, color_index, key, stamp, Some(conn));
        } else {
            if let Some(member) = roster.members.get_mut(&request.user_id) {
                member.sessions.push(key);
                member.user.sessions = member.sessions.len() as u32;
                member.user.last_seen = now.unix_ms;
            }
            // One more session is news too: `sessions` is part of what others see.
            self.refresh_away(&room, &request.user_id);
            self.set_name(&room, &request.user_id, request.name.as_deref());
            self.user_updated(&room, &request.user_id, conn);
            if shared.is_some() {
                if let Err(refusal) = self.apply_state(key, shared, None, conn) {
                    self.send(conn, refusal.reply(&reference));
                }
            }
        }
        self.announce(key);
        self.send_current_users(conn, &room, key);
    }

    /// Lists a user who was not in the room: tells everyone else (or the next diff).
    pub(crate) fn add_member(
        &mut self,
        room: &RoomName,
        user: User,
        color_index: usize,
        key: SessionKey,
        stamp: Stamp,
        except: Option<ConnId>,
    ) {
        self.arrivals += 1;
        let user_id = user.id.clone();
        let member = Member {
            user,
            color_index,
            sessions: vec![key],
            cursor_slot: None,
            arrival: self.arrivals,
            stamp,
            moved_here: false,
        };
        let roster = self.rosters.entry(room.clone()).or_default();
        roster.members.insert(user_id.clone(), member);
        self.users += 1;
        self.refresh_away(room, &user_id);
        self.record(room, &user_id, Change::Joined);
        if let Some(user) = self.user(room, &user_id) {
            self.push_event(
                room,
                except,
                ServerMessage::UserJoined {
                    room: room.clone(),
                    user,
                },
            );
        }
    }

    fn restore(&mut self, conn: ConnId, key: SessionKey, request: &JoinRequest, now: Now) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let room = session.room.clone();
        let previous = session.attachment;
        if let Attachment::Live(old) = previous {
            if old != conn {
                self.detach_from(old, key, &room);
            }
        }
        if previous != Attachment::Live(conn) {
            let node = self.config.cluster.map(|c| c.node);
            if let Some(session) = self.sessions.get_mut(key) {
                session.attachment = Attachment::Live(conn);
                session.claim = next_stamp(session.claim, now, node);
            }
            self.attach(conn, key, &room, now);
        }
        self.set_batch(&room, key, request.batch);
        if let Some(member) = self
            .rosters
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&request.user_id))
        {
            member.user.last_seen = now.unix_ms;
        }
        if self.set_name(&room, &request.user_id, request.name.as_deref()) {
            self.user_updated(&room, &request.user_id, conn);
        }
        let Some(session_id) = self.sessions.get(key).map(|s| s.id.clone()) else {
            return;
        };
        self.announce(key);
        if let Some(user) = self.user(&room, &request.user_id) {
            self.send(
                conn,
                ServerMessage::Restored {
                    room: room.clone(),
                    user,
                    session_id,
                },
            );
        }
        self.send_current_users(conn, &room, key);
    }

    fn leave(&mut self, conn: ConnId, room: Option<RoomName>, reference: Option<Reference>) {
        match room {
            Some(room) => match self.session_of(conn, &room) {
                Some(key) => self.remove_session(key),
                None => self.not_joined(conn, &room, reference),
            },
            None => {
                let keys = self
                    .connections
                    .get(&conn)
                    .map(|c| c.sessions.clone())
                    .unwrap_or_default();
                for key in keys {
                    self.remove_session(key);
                }
            }
        }
    }

    fn update(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        state: State,
        reference: Option<Reference>,
    ) {
        let Some(key) = self.session_of(conn, room) else {
            return self.not_joined(conn, room, reference);
        };
        let (shared, away) = match self.split_state(Some(state)) {
            Ok(split) => split,
            Err(refusal) => return self.send(conn, refusal.reply(&reference)),
        };
        if let Err(refusal) = self.apply_state(key, shared, away, conn) {
            self.send(conn, refusal.reply(&reference));
        }
    }

    fn cursor(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        position: CursorPosition,
        reference: Option<Reference>,
    ) {
        let Some(key) = self.session_of(conn, room) else {
            return self.not_joined(conn, room, reference);
        };
        let Some(user_id) = self.sessions.get(key).map(|s| s.user_id.clone()) else {
            return;
        };
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        let Some(member) = roster.members.get_mut(&user_id) else {
            return;
        };
        member.user.cursor = position;
        member.moved_here = true;
        if member.cursor_slot.is_none() {
            member.cursor_slot = Some(roster.moved.len());
            roster.moved.push(user_id);
        }
        self.arm_flush(room);
    }

    fn closed(&mut self, conn: ConnId, now: Now) {
        let Some(connection) = self.connections.remove(&conn) else {
            return;
        };
        // A closed socket is not a leave: phones drop networks mid-sentence. Keep the
        // session, visible to others, until the grace ends; only a leave removes it at once.
        let grace_ends_at = now.instant + self.config.reconnect_grace;
        for key in connection.sessions {
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            session.attachment = Attachment::Detached { grace_ends_at };
            let room = session.room.clone();
            self.effects.push_back(Effect::Unsubscribed { conn, room });
            self.timers.push(grace_ends_at, Timer::GraceEnd(key));
        }
        // A zero grace ends now; let the timer path remove them so there is one way out.
        if self.config.reconnect_grace.is_zero() {
            self.handle_timeout(now);
        }
    }

    // ----- liveness ----------------------------------------------------------------------

    fn touch(&mut self, conn: ConnId, now: Now) {
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        connection.last_seen_at = now.instant;
        for &key in &connection.sessions {
            let Some(session) = self.sessions.get(key) else {
                continue;
            };
            if let Some(member) = self
                .rosters
                .get_mut(&session.room)
                .and_then(|r| r.members.get_mut(&session.user_id))
            {
                member.user.last_seen = now.unix_ms;
            }
        }
    }

    fn check_silence(&mut self, conn: ConnId, epoch: u64, now: Now) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        if connection.epoch != epoch {
            return;
        }
        let due = connection.last_seen_at + self.config.heartbeat_timeout;
        if due > now.instant {
            // It spoke since this timer was armed: re-arm for its new deadline. Each live
            // connection costs one pop per timeout period, however chatty it is.
            self.timers.push(due, Timer::Silence { conn, epoch });
            return;
        }
        let keys = connection.sessions.clone();
        for key in keys {
            self.remove_session(key);
        }
        self.connections.remove(&conn);
        self.effects.push_back(Effect::Close {
            conn,
            reason: CloseReason::HeartbeatTimeout,
        });
    }

    // ----- sessions ----------------------------------------------------------------------

    fn attach(&mut self, conn: ConnId, key: SessionKey, room: &RoomName, now: Now) {
        let timeout = self.config.heartbeat_timeout;
        let connection = self.connections.entry(conn).or_insert_with(|| {
            self.next_epoch += 1;
            let epoch = self.next_epoch;
            self.timers
                .push(now.instant + timeout, Timer::Silence { conn, epoch });
            Connection {
                last_seen_at: now.instant,
                epoch,
                sessions: Vec::new(),
            }
        });
        connection.sessions.push(key);
        self.effects.push_back(Effect::Subscribed {
            conn,
            room: room.clone(),
        });
    }

    pub(crate) fn detach_from(&mut self, conn: ConnId, key: SessionKey, room: &RoomName) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.sessions.retain(|&k| k != key);
            if connection.sessions.is_empty() {
                self.connections.remove(&conn);
            }
        }
        self.effects.push_back(Effect::Unsubscribed {
            conn,
            room: room.clone(),
        });
    }

    pub(crate) fn remove_session(&mut self, key: SessionKey) {
        let Some(session) = self.sessions.remove(key) else {
            return;
        };
        let room = session.room.clone();
        if session.is_local() {
            let node = self.node_id();
            let (user_id, session_id) = (session.user_id.clone(), session.id.clone());
            self.publish(Fact::SessionEnded {
                node,
                room: room.clone(),
                user_id,
                session_id,
            });
        }
        if let Some(conn) = session.conn() {
            self.detach_from(conn, key, &room);
        }
        let Some(roster) = self.rosters.get_mut(&room) else {
            return;
        };
        roster
            .sessions
            .remove(&(session.user_id.clone(), session.id.clone()));
        if session.batch {
            roster.batch_sessions = roster.batch_sessions.saturating_sub(1);
        }
        let Some(member) = roster.members.get_mut(&session.user_id) else {
            return;
        };
        member.sessions.retain(|&k| k != key);
        member.user.sessions = member.sessions.len() as u32;

        if member.sessions.is_empty() {
            let color_index = member.color_index;
            roster.members.remove(&session.user_id);
            roster.colors.release(color_index);
            self.users = self.users.saturating_sub(1);
            let empty = roster.members.is_empty();
            if empty {
                // Nobody is left to tell; pending cursors and diffs go with the room.
                self.rosters.remove(&room);
                return;
            }
            self.record(&room, &session.user_id, Change::Left);
            let message = ServerMessage::UserLeft {
                room: room.clone(),
                user_id: session.user_id,
            };
            self.push_event(&room, None, message);
        } else {
            // The user stays with one session fewer (and perhaps now all-away).
            self.relinquish_if_unowned(&room, &session.user_id);
            self.refresh_away(&room, &session.user_id);
            self.user_updated(&room, &session.user_id, session.conn());
        }
    }

    fn session_of(&self, conn: ConnId, room: &RoomName) -> Option<SessionKey> {
        let connection = self.connections.get(&conn)?;
        connection
            .sessions
            .iter()
            .copied()
            .find(|&key| self.sessions.get(key).is_some_and(|s| &s.room == room))
    }

    fn set_batch(&mut self, room: &RoomName, key: SessionKey, batch: bool) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if session.batch == batch {
            return;
        }
        session.batch = batch;
        if let Some(roster) = self.rosters.get_mut(room) {
            if batch {
                roster.batch_sessions += 1;
            } else {
                roster.batch_sessions = roster.batch_sessions.saturating_sub(1);
            }
        }
    }

    // ----- state -------------------------------------------------------------------------

    /// Splits a client's state into the shared part and this session's own `away` report.
    #[allow(clippy::type_complexity)]
    fn split_state(&self, state: Option<State>) -> Result<(Option<State>, Option<bool>), Refusal> {
        let Some(mut state) = state else {
            return Ok((None, None));
        };
        self.check_state_size(&state)?;
        let away = match state.remove(AWAY_KEY) {
            None => None,
            Some(Value::Null) => Some(false),
            Some(Value::Bool(away)) => Some(away),
            Some(_) => {
                let message = "state.away is reserved and must be true, false or null".to_owned();
                return Err(Refusal {
                    code: ErrorCode::InvalidMessage,
                    message,
                });
            }
        };
        Ok((Some(state), away))
    }

    fn check_state_size(&self, state: &State) -> Result<(), Refusal> {
        let bytes = serialized_len(state);
        if bytes > self.config.max_state_bytes {
            let message = format!(
                "state is {bytes} bytes, more than the limit of {}",
                self.config.max_state_bytes
            );
            return Err(Refusal {
                code: ErrorCode::TooLarge,
                message,
            });
        }
        Ok(())
    }

    /// Merges `shared` into the user's state and records this session's `away`; tells the
    /// others if what they see changed. Nothing is applied when the result is too large.
    fn apply_state(
        &mut self,
        key: SessionKey,
        shared: Option<State>,
        away: Option<bool>,
        from: ConnId,
    ) -> Result<(), Refusal> {
        let Some(session) = self.sessions.get(key) else {
            return Ok(());
        };
        let (room, user_id) = (session.room.clone(), session.user_id.clone());
        let Some(member) = self
            .rosters
            .get(&room)
            .and_then(|r| r.members.get(&user_id))
        else {
            return Ok(());
        };
        let mut merged = member.user.state.clone();
        merged.remove(AWAY_KEY);
        for (name, value) in shared.unwrap_or_default() {
            if value.is_null() {
                merged.remove(&name);
            } else {
                merged.insert(name, value);
            }
        }
        self.check_state_size(&merged)?;
        if let Some(away) = away {
            if let Some(session) = self.sessions.get_mut(key) {
                session.away = away;
            }
        }
        let Some(member) = self
            .rosters
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&user_id))
        else {
            return Ok(());
        };
        let was_away = member.user.state.get(AWAY_KEY).cloned();
        if let Some(flag) = was_away {
            merged.insert(AWAY_KEY.to_owned(), flag);
        }
        let state_changed = member.user.state != merged;
        member.user.state = merged;
        if state_changed {
            member.stamp = next_stamp(member.stamp, self.now, self.config.cluster.map(|c| c.node));
        }
        let away_changed = self.refresh_away(&room, &user_id);
        if state_changed || away_changed {
            self.announce(key);
            // Only a change others can see is broadcast.
            self.user_updated(&room, &user_id, Some(from));
        }
        Ok(())
    }

    /// Recomputes the user's visible `away` from their sessions; true if it changed.
    pub(crate) fn refresh_away(&mut self, room: &RoomName, user_id: &UserId) -> bool {
        let Some(member) = self.rosters.get(room).and_then(|r| r.members.get(user_id)) else {
            return false;
        };
        let all_away = !member.sessions.is_empty()
            && member
                .sessions
                .iter()
                .all(|&k| self.sessions.get(k).is_some_and(|s| s.away));
        let Some(member) = self
            .rosters
            .get_mut(room)
            .and_then(|r| r.members.get_mut(user_id))
        else {
            return false;
        };
        let was_away = member.user.state.get(AWAY_KEY) == Some(&Value::Bool(true));
        if all_away == was_away {
            return false;
        }
        if all_away {
            member
                .user
                .state
                .insert(AWAY_KEY.to_owned(), Value::Bool(true));
        } else {
            member.user.state.remove(AWAY_KEY);
        }
        true
    }

    fn set_name(&mut self, room: &RoomName, user_id: &UserId, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        let Some(member) = self
            .rosters
            .get_mut(room)
            .and_then(|r| r.members.get_mut(user_id))
        else {
            return false;
        };
        if member.user.name == name {
            return false;
        }
        member.user.name = name.to_owned();
        member.stamp = next_stamp(member.stamp, self.now, self.config.cluster.map(|c| c.node));
        true
    }

    // ----- cluster -----------------------------------------------------------------------

    pub(crate) fn node_id(&self) -> NodeId {
        self.config.cluster.map_or(NodeId(0), |c| c.node)
    }

    /// Queues a fact for the other nodes; single-node trackers announce nothing.
    pub(crate) fn publish(&mut self, fact: Fact) {
        if self.config.cluster.is_some() {
            self.effects.push_back(Effect::Publish(fact));
        }
    }

    /// What other nodes need to list the session.
    pub(crate) fn session_record(&self, key: SessionKey) -> Option<SessionRecord> {
        let session = self.sessions.get(key)?;
        let member = self
            .rosters
            .get(&session.room)?
            .members
            .get(&session.user_id)?;
        let mut user = member.user.clone();
        user.state.remove(AWAY_KEY);
        Some(SessionRecord {
            room: session.room.clone(),
            session_id: session.id.clone(),
            user,
            away: session.away,
            stamp: member.stamp,
            claim: session.claim,
        })
    }

    /// Announces a local session's current record.
    pub(crate) fn announce(&mut self, key: SessionKey) {
        if self.config.cluster.is_none() || !self.sessions.get(key).is_some_and(Session::is_local) {
            return;
        }
        if let Some(record) = self.session_record(key) {
            let node = self.node_id();
            self.publish(Fact::Session { node, record });
        }
    }

    /// Every session this node owns, for a `Snapshot`.
    pub fn local_records(&self) -> Vec<SessionRecord> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_local())
            .filter_map(|(key, _)| self.session_record(key))
            .collect()
    }

    // ----- outgoing ----------------------------------------------------------------------

    pub(crate) fn user(&self, room: &RoomName, user_id: &UserId) -> Option<User> {
        self.rosters
            .get(room)?
            .members
            .get(user_id)
            .map(|m| m.user.clone())
    }

    pub(crate) fn user_updated(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        from: impl Into<Option<ConnId>>,
    ) {
        self.record(room, user_id, Change::Updated);
        if let Some(user) = self.user(room, user_id) {
            let message = ServerMessage::UserUpdated {
                room: room.clone(),
                user,
            };
            self.push_event(room, from.into(), message);
        }
    }

    /// Sends a roster event to every non-batch connection of the room but `except`. Batch
    /// connections get it folded into the room's next diff (see [`Tracker::record`]).
    pub(crate) fn push_event(
        &mut self,
        room: &RoomName,
        except: Option<ConnId>,
        message: ServerMessage,
    ) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let recipients: Vec<ConnId> = roster
            .sessions
            .values()
            .filter_map(|&key| self.sessions.get(key))
            .filter(|session| !session.batch)
            .filter_map(Session::conn)
            .filter(|&conn| Some(conn) != except)
            .collect();
        if !recipients.is_empty() {
            self.effects.push_back(Effect::Broadcast {
                recipients,
                message,
            });
        }
    }

    /// Folds a change into the room's next diff and makes sure a flush will carry it.
    pub(crate) fn record(&mut self, room: &RoomName, user_id: &UserId, change: Change) {
        if let Some(roster) = self.rosters.get_mut(room) {
            roster.record(user_id, change);
        }
        self.arm_flush(room);
    }

    fn send(&mut self, conn: ConnId, message: ServerMessage) {
        self.effects.push_back(Effect::Send { conn, message });
    }

    fn send_current_users(&mut self, conn: ConnId, room: &RoomName, key: SessionKey) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let me = SelfInfo {
            id: session.user_id.clone(),
            session_id: session.id.clone(),
        };
        let users = self
            .rosters
            .get(room)
            .map(Roster::snapshot)
            .unwrap_or_default();
        self.send(
            conn,
            ServerMessage::CurrentUsers {
                room: room.clone(),
                users,
                me,
            },
        );
    }

    fn not_joined(&mut self, conn: ConnId, room: &RoomName, reference: Option<Reference>) {
        let message = format!("this connection has not joined room {room}");
        self.send(
            conn,
            ServerMessage::error(ErrorCode::NotJoined, message, reference),
        );
    }

    // ----- flushes -----------------------------------------------------------------------

    /// Schedules the room's flush: at once if it has been quiet for a whole interval,
    /// else when the interval since its last flush ends.
    pub(crate) fn arm_flush(&mut self, room: &RoomName) {
        let now = self.now;
        let interval = self.config.cursor_interval;
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        if roster.flush_armed || !roster.has_pending_flush_work() {
            return;
        }
        roster.flush_armed = true;
        let at = match roster.last_flush_at {
            Some(last) if last + interval > now.instant => last + interval,
            _ => now.instant,
        };
        self.timers.push(at, Timer::Flush(room.clone()));
    }

    fn flush(&mut self, room: &RoomName, now: Now) {
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        roster.flush_armed = false;
        roster.last_flush_at = Some(now.instant);

        // Cursors: one frame for everyone whose user did not move, and for each mover a
        // frame without their own entry, so nobody ever sees their own cursor echoed.
        let moved = std::mem::take(&mut roster.moved);
        let mut entries = Vec::with_capacity(moved.len());
        let mut moved_here = Vec::new();
        let mut slot_of_user: HashMap<&UserId, usize> = HashMap::new();
        for user_id in &moved {
            if let Some(member) = roster.members.get_mut(user_id) {
                member.cursor_slot = None;
                if std::mem::take(&mut member.moved_here) {
                    moved_here.push(entries.len());
                }
                slot_of_user.insert(user_id, entries.len());
                let cursor = member.user.cursor;
                entries.push(CursorEntry {
                    user_id: user_id.clone(),
                    x: cursor.x,
                    y: cursor.y,
                    visible: cursor.visible,
                });
            }
        }
        if !moved_here.is_empty() && self.config.cluster.is_some() {
            // One announcement per room per interval, whatever the number of moves.
            let cursors = moved_here.iter().map(|&i| entries[i].clone()).collect();
            let node = self.node_id();
            self.publish(Fact::Cursors {
                node,
                room: room.clone(),
                cursors,
            });
        }
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        if !entries.is_empty() {
            let only_one = entries.len() == 1;
            let recipients: Vec<(ConnId, Option<usize>)> = roster
                .sessions
                .values()
                .filter_map(|&key| self.sessions.get(key))
                .filter_map(|session| {
                    let conn = session.conn()?;
                    let own = slot_of_user.get(&session.user_id).copied();
                    // A lone mover would get an empty frame: skip it.
                    (!(only_one && own.is_some())).then_some((conn, own))
                })
                .collect();
            if !recipients.is_empty() {
                let room = room.clone();
                self.effects.push_back(Effect::Cursors {
                    room,
                    cursors: entries,
                    recipients,
                });
            }
        }

        // Roster changes for the batch sessions, in one diff.
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        let changes = std::mem::take(&mut roster.changes);
        let mut change_of = std::mem::take(&mut roster.change_of);
        if changes.is_empty() {
            return;
        }
        let (mut joined, mut left, mut updated) = (Vec::new(), Vec::new(), Vec::new());
        for user_id in changes {
            let current = roster.members.get(&user_id).map(|m| m.user.clone());
            match (change_of.remove(&user_id), current) {
                (Some(Change::Left), _)
                | (Some(Change::Joined | Change::Rejoined | Change::Updated), None) => {
                    left.push(user_id)
                }
                (Some(Change::Joined), Some(user)) => joined.push(user),
                (Some(Change::Rejoined), Some(user)) => {
                    left.push(user_id);
                    joined.push(user);
                }
                (Some(Change::Updated), Some(user)) => updated.push(user),
                (None, _) => {}
            }
        }
        let recipients: Vec<ConnId> = roster
            .sessions
            .values()
            .filter_map(|&key| self.sessions.get(key))
            .filter(|session| session.batch)
            .filter_map(Session::conn)
            .collect();
        if !recipients.is_empty() {
            let message = ServerMessage::Diff {
                room: room.clone(),
                joined,
                left,
                updated,
            };
            self.effects.push_back(Effect::Broadcast {
                recipients,
                message,
            });
        }
    }
}

/// Shrinks a map that uses less than a quarter of its capacity.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}

/// A stamp later than `previous`, from this node, at `now` (or just after `previous` when a
/// faster clock elsewhere made it).
pub(crate) fn next_stamp(previous: Stamp, now: Now, node: Option<NodeId>) -> Stamp {
    Stamp {
        unix_ms: now.unix_ms.max(previous.unix_ms + 1),
        node: node.map_or(0, |n| n.0),
    }
}

fn serialized_len(state: &State) -> usize {
    struct Counter(usize);
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, state) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}
