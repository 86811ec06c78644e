//! [`Tracker`]: one shard's rooms, their sessions and the deadlines that govern them.
//!
//! This file tells the story of each input: joins, restores, leaves, updates, cursor
//! moves and closed sockets. The life of a session and its connection's liveness are in
//! `session.rs`, the per-room bookkeeping in `roster.rs`, names and custom state in
//! `state.rs`, what is sent to clients in `outgoing.rs`, the once-per-interval frames in
//! `flush.rs`, and everything that only happens in cluster mode in `remote.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use presence_protocol::{
    CursorPosition, ErrorCode, Reference, RoomName, ServerMessage, State, User, UserId,
};
use slotmap::SlotMap;

use crate::color::PALETTE;
use crate::config::Config;
use crate::effect::{Effect, RoomEvent};
use crate::fact::{NodeId, Stamp};
use crate::input::{Authority, ConnId, Input, JoinRequest, Now};
use crate::interest::InterestStats;
use crate::remote::{next_stamp, NodeBeat};
use crate::roster::{Member, Roster};
use crate::session::{Attachment, ConnState, Session, SessionKey};
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
    /// Room facts applied, and room facts ignored as not this node's concern.
    pub interest: InterestStats,
}

/// The first users of a room and its numbers, for the HTTP API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomPage {
    /// The first users in `joinedAt` order.
    pub users: Vec<User>,
    /// Users listed in the room.
    pub count: usize,
    /// Spectator sessions in the room.
    pub spectators: usize,
}

/// One node's (or one shard's) presence state. Reads no clock; call
/// [`Tracker::poll_effect`] until `None` after every call that takes a [`Now`].
#[derive(Debug)]
pub struct Tracker {
    pub(crate) config: Config,
    pub(crate) rosters: HashMap<RoomName, Roster>,
    pub(crate) sessions: SlotMap<SessionKey, Session>,
    pub(crate) connections: HashMap<ConnId, ConnState>,
    pub(crate) timers: Timers,
    pub(crate) effects: VecDeque<Effect>,
    pub(crate) next_epoch: u64,
    pub(crate) users: usize,
    /// Other nodes heard from (cluster mode), for presuming the silent ones dead.
    pub(crate) nodes: HashMap<NodeId, NodeBeat>,
    /// Whether the cluster channel is reachable; silence proves nothing while it is not.
    pub(crate) backend_up: bool,
    /// Nodes presumed dead, or that said they leave; hearing from one again means our view
    /// of it is stale.
    pub(crate) dead_nodes: HashSet<NodeId>,
    /// Rooms whose records are being read, with the inputs about them that wait.
    pub(crate) loading: HashMap<RoomName, Vec<Input>>,
    pub(crate) interest_stats: InterestStats,
    /// A room that must stay served though its local sessions dip to none: a connection's
    /// session being replaced by another user's within one join.
    pub(crate) pinned: Option<RoomName>,
}

impl Tracker {
    /// An empty tracker. No clock is read here either: a tracker holds no time of its own,
    /// every call that needs one is given its [`Now`].
    pub fn new(config: Config) -> Self {
        Tracker {
            config,
            rosters: HashMap::new(),
            sessions: SlotMap::with_key(),
            connections: HashMap::new(),
            timers: Timers::default(),
            effects: VecDeque::new(),
            next_epoch: 0,
            users: 0,
            nodes: HashMap::new(),
            backend_up: true,
            dead_nodes: HashSet::new(),
            loading: HashMap::new(),
            interest_stats: InterestStats::default(),
            pinned: None,
        }
    }

    /// Applies one input. Room flushes that fall due at `now` are left for
    /// [`Tracker::handle_timeout`], so call it when [`Tracker::next_deadline`] says so.
    pub fn handle(&mut self, input: Input, now: Now) {
        // The server's own requests about a connection are no sign of its life.
        let from_client = !matches!(input, Input::Closed { .. } | Input::Resync { .. });
        if let (Some(conn), true) = (input.conn(), from_client) {
            self.touch(conn, now);
        }
        let input = if self.config.cluster.is_some() {
            match self.by_interest(input, now) {
                Some(input) => input,
                None => return,
            }
        } else {
            input
        };
        match input {
            Input::Join {
                conn,
                request,
                reference,
            } => self.join(conn, request, reference, now),
            Input::Leave {
                conn,
                room,
                unload,
                reference,
            } => self.leave(conn, room, unload, reference, now),
            Input::Update {
                conn,
                room,
                state,
                reference,
            } => self.update(conn, &room, state, reference, now),
            Input::Cursor {
                conn,
                room,
                x,
                y,
                visible,
                reference,
            } => self.cursor(
                conn,
                &room,
                CursorPosition { x, y, visible },
                reference,
                now,
            ),
            Input::Activity { .. } => {}
            Input::Resync { conn } => self.resync(conn),
            Input::Closed { conn } => self.closed(conn, now),
            Input::Remote(fact) => self.remote(fact, now),
            Input::BackendDown => self.backend_up = false,
            Input::BackendUp => {
                self.backend_reachable(now);
                self.reload_after_outage(now);
            }
            // Only cluster mode reads records, and it handled them above.
            Input::Records { .. } => {}
        }
    }

    /// Does whatever has come due by `now`: grace ends, silent connections, room flushes.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some(timer) = self.timers.pop_due(now.instant) {
            match timer {
                Timer::GraceEnd(key) => {
                    let ended = matches!(
                        self.sessions.get(key).map(|s| s.attachment),
                        Some(Attachment::Detached { grace_ends_at } | Attachment::Orphaned { grace_ends_at })
                            if grace_ends_at <= now.instant
                    );
                    if ended {
                        self.remove_session(key, now);
                    }
                }
                Timer::Silence { conn, epoch } => self.check_silence(conn, epoch, now),
                Timer::Flush(room) => self.flush(&room, now),
                Timer::NodeSilence { node, epoch } => self.check_node(node, epoch, now),
                Timer::Reload => self.reload_all(Authority::Complete),
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
            interest: self.interest_stats,
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
            Timer::Reload => true,
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

    /// Every room, its number of users and its number of spectator sessions.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, usize, usize)> {
        self.rosters
            .iter()
            .map(|(room, roster)| (room, roster.members.len(), roster.spectators))
    }

    /// A room's users in `joinedAt` order; `None` if nobody is in it.
    pub fn roster(&self, room: &str) -> Option<Vec<User>> {
        self.rosters.get(room).map(Roster::snapshot)
    }

    /// The first `limit` users of a room in `joinedAt` order, with its numbers; `None` if
    /// nobody is in it. O(limit + log n) however large the room.
    pub fn room_page(&self, room: &str, limit: usize) -> Option<RoomPage> {
        let roster = self.rosters.get(room)?;
        Some(RoomPage {
            users: roster.page(limit),
            count: roster.members.len(),
            spectators: roster.spectators,
        })
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
                self.set_view(&room, key, request.view, request.batch);
                let spectator = self.sessions.get(key).is_some_and(|s| s.spectator);
                if spectator {
                    return self.send_current_users(conn, &room, key);
                }
                let renamed = self.set_name(&room, &request.user_id, request.name.as_deref(), now);
                if renamed {
                    self.user_updated(&room, &request.user_id, conn, now);
                    self.announce_user(&room, &request.user_id);
                }
                if shared.is_some() || away.is_some() {
                    if let Err(refusal) = self.apply_state(key, shared, away, conn, now) {
                        self.send(conn, refusal.reply(&reference));
                    }
                }
                return self.send_current_users(conn, &room, key);
            }
            // The room stays served: the new user's session is about to take the slot.
            self.pinned = Some(room.clone());
            self.remove_session(key, now);
            self.pinned = None;
        }

        // Restore: the named session is held for this very user. Sessions are named by
        // user and id together, so another user's session can never be found this way.
        let name = (request.user_id.clone(), request.session_id.clone());
        if let Some(key) = self.rosters.get(&room).and_then(|r| r.session(&name)) {
            return self.restore(conn, key, &request, now);
        }

        let is_new_user = !request.spectator
            && !self
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
            id: request.session_id.clone(),
            room: room.clone(),
            user_id: request.user_id.clone(),
            attachment: Attachment::Live(conn),
            batch: request.batch,
            view: request.view.unwrap_or_default(),
            spectator: request.spectator,
            away: away.unwrap_or(false),
            claim: next_stamp(Stamp::default(), now, self.config.cluster.map(|c| c.node)),
        });
        self.attach(conn, key, &room, now);
        let roster = self.rosters.entry(room.clone()).or_default();
        roster.sessions.insert(name, key);
        roster.local_sessions += 1;
        self.enlist(&room, key);

        if request.spectator {
            if let Some(roster) = self.rosters.get_mut(&room) {
                roster.count_spectator(true);
            }
            self.arm_flush(&room, now);
            self.announce(key);
            return self.send_current_users(conn, &room, key);
        }
        let Some(roster) = self.rosters.get_mut(&room) else {
            return;
        };
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
            self.add_member(&room, user, color_index, key, stamp, Some(conn), now);
        } else {
            if let Some(member) = roster.member_mut(&request.user_id) {
                member.add_session(key);
                member.user.last_seen = now.unix_ms;
            }
            self.take_authority(&room, &request.user_id, now);
            // One more session is news too: `sessions` is part of what others see.
            self.refresh_away(&room, &request.user_id);
            self.set_name(&room, &request.user_id, request.name.as_deref(), now);
            self.user_updated(&room, &request.user_id, conn, now);
            if shared.is_some() {
                if let Err(refusal) = self.apply_state(key, shared, None, conn, now) {
                    self.send(conn, refusal.reply(&reference));
                }
            }
        }
        self.announce_user(&room, &request.user_id);
        self.send_current_users(conn, &room, key);
    }

    /// Lists a user who was not in the room: tells everyone else (or the next diff).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_member(
        &mut self,
        room: &RoomName,
        user: User,
        color_index: usize,
        key: SessionKey,
        stamp: Stamp,
        except: Option<ConnId>,
        now: Now,
    ) {
        let user_id = user.id.clone();
        let member = Member::new(user, color_index, key, stamp);
        let roster = self.rosters.entry(room.clone()).or_default();
        let was_empty = roster.members.is_empty();
        roster.insert_member(member);
        // Only a join on this node is news for the webhooks here: a remote user is the
        // news of its own node, and a restart's restored sessions are no news at all.
        let joined_here = except.is_some();
        if joined_here && was_empty {
            self.notify(RoomEvent::RoomOccupied { room: room.clone() });
        }
        self.users += 1;
        self.refresh_away(room, &user_id);
        if joined_here {
            if let Some(user) = self.user(room, &user_id) {
                self.notify(RoomEvent::UserJoined {
                    room: room.clone(),
                    user,
                });
            }
        }
        self.user_entered(room, &user_id, except, now);
    }

    /// Queues a webhook event (the shell drops it when no webhook is configured).
    pub(crate) fn notify(&mut self, event: RoomEvent) {
        self.effects.push_back(Effect::Notify(event));
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
            let mut was_local = true;
            if let Some(session) = self.sessions.get_mut(key) {
                was_local = session.is_local();
                session.attachment = Attachment::Live(conn);
                session.claim = next_stamp(session.claim, now, node);
            }
            if !was_local {
                // Restored from another node (or from one that died): ours now.
                if let Some(roster) = self.rosters.get_mut(&room) {
                    roster.local_sessions += 1;
                }
                self.enlist(&room, key);
                // Only a listed session vouches for the user's data.
                if self.sessions.get(key).is_some_and(|s| !s.spectator) {
                    self.take_authority(&room, &request.user_id, now);
                }
            }
            self.attach(conn, key, &room, now);
        }
        // A restore keeps what the session is (listed or spectating); the view and batches
        // are the client's to change.
        self.set_view(&room, key, request.view, request.batch);
        if let Some(member) = self.member_mut(&room, &request.user_id) {
            member.user.last_seen = now.unix_ms;
        }
        if self.set_name(&room, &request.user_id, request.name.as_deref(), now) {
            self.user_updated(&room, &request.user_id, conn, now);
        }
        let Some((session_id, spectator)) =
            self.sessions.get(key).map(|s| (s.id.clone(), s.spectator))
        else {
            return;
        };
        if spectator {
            self.announce(key);
        } else {
            self.announce_user(&room, &request.user_id);
        }
        let user = match spectator {
            false => self.user(&room, &request.user_id),
            true => Some(spectator_user(
                &request.user_id,
                request.name.as_deref(),
                now,
            )),
        };
        if let Some(user) = user {
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

    fn leave(
        &mut self,
        conn: ConnId,
        room: Option<RoomName>,
        unload: bool,
        reference: Option<Reference>,
        now: Now,
    ) {
        let keys = match room {
            Some(room) => match self.session_of(conn, &room) {
                Some(key) => vec![key],
                None => return self.not_joined(conn, &room, reference),
            },
            None => self
                .connections
                .get(&conn)
                .map(|c| c.sessions.clone())
                .unwrap_or_default(),
        };
        for key in keys {
            if unload {
                self.hold_for_reload(conn, key, now);
            } else {
                self.remove_session(key, now);
            }
        }
    }

    fn update(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        state: State,
        reference: Option<Reference>,
        now: Now,
    ) {
        let Some(key) = self.session_of(conn, room) else {
            return self.not_joined(conn, room, reference);
        };
        if self.sessions.get(key).is_some_and(|s| s.spectator) {
            return self.spectating(conn, room, "update its state", reference);
        }
        let (shared, away) = match self.split_state(Some(state)) {
            Ok(split) => split,
            Err(refusal) => return self.send(conn, refusal.reply(&reference)),
        };
        if let Err(refusal) = self.apply_state(key, shared, away, conn, now) {
            self.send(conn, refusal.reply(&reference));
        }
    }

    fn cursor(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        position: CursorPosition,
        reference: Option<Reference>,
        now: Now,
    ) {
        let Some(key) = self.session_of(conn, room) else {
            return self.not_joined(conn, room, reference);
        };
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        if session.spectator {
            return self.spectating(conn, room, "move a cursor", reference);
        }
        let moved = self
            .rosters
            .get_mut(room)
            .is_some_and(|r| r.move_cursor(&session.user_id, position, true));
        if moved {
            self.arm_flush(room, now);
        }
    }

    fn resync(&mut self, conn: ConnId) {
        let keys = self
            .connections
            .get(&conn)
            .map(|c| c.sessions.clone())
            .unwrap_or_default();
        for key in keys {
            let Some(room) = self.sessions.get(key).map(|s| s.room.clone()) else {
                continue;
            };
            // The snapshot says what a pending diff would.
            if let Some(roster) = self.rosters.get_mut(&room) {
                roster.session_diffs.remove(&key);
            }
            self.send_current_users(conn, &room, key);
        }
    }

    fn spectating(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        what: &str,
        reference: Option<Reference>,
    ) {
        let message = format!("a spectator of room {room} cannot {what}");
        self.send(
            conn,
            ServerMessage::error(ErrorCode::Forbidden, message, reference),
        );
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
}

/// How a spectator, who is not listed, is named in its `presence:restored`: no color, no
/// sessions counted.
pub(crate) fn spectator_user(user_id: &UserId, name: Option<&str>, now: Now) -> User {
    User {
        id: user_id.clone(),
        name: name.map_or_else(|| user_id.to_string(), str::to_owned),
        color: String::new(),
        joined_at: now.unix_ms,
        last_seen: now.unix_ms,
        cursor: CursorPosition::default(),
        state: State::new(),
        sessions: 0,
    }
}

/// Shrinks a map that uses less than a quarter of its capacity.
pub(crate) fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}
