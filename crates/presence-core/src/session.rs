//! One tab's or device's presence in one room, and the connection that carries it; then
//! the tracker's rules for a session's life (attached, detached for the grace, removed)
//! and for a connection's liveness (silent for the heartbeat timeout means gone).

use std::time::Instant;

use presence_protocol::{RoomName, SessionId, UserId, View};

use crate::effect::{CloseReason, Effect, RoomEvent};
use crate::fact::{Fact, NodeId, SessionRecord, Stamp};
use crate::input::{ConnId, Now};
use crate::roster::Member;
use crate::timers::Timer;
use crate::tracker::Tracker;

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
    /// What the session sees of the room (this node's sessions only; remote ones are
    /// never sent anything here).
    pub(crate) view: View,
    /// Watching without being listed: no entry, no color, no state, no cursor.
    pub(crate) spectator: bool,
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
pub(crate) struct ConnState {
    pub(crate) last_seen_at: Instant,
    /// Distinguishes this registration from an earlier one of the same id, so a silence
    /// timer armed for the earlier one is recognised as stale.
    pub(crate) epoch: u64,
    /// At most one per room.
    pub(crate) sessions: Vec<SessionKey>,
}

impl Tracker {
    // The life of a session: attached to a connection, detached for the grace, removed.

    pub(crate) fn attach(&mut self, conn: ConnId, key: SessionKey, room: &RoomName, now: Now) {
        let timeout = self.config.heartbeat_timeout;
        let connection = self.connections.entry(conn).or_insert_with(|| {
            self.next_epoch += 1;
            let epoch = self.next_epoch;
            self.timers
                .push(now.instant + timeout, Timer::Silence { conn, epoch });
            ConnState {
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

    /// A page unloads: the session lets go of its connection and waits out the unload
    /// grace, so that the reload's join restores it with no event for anyone, while a
    /// closed tab leaves within seconds rather than after the reconnect grace.
    pub(crate) fn hold_for_reload(&mut self, conn: ConnId, key: SessionKey, now: Now) {
        let grace_ends_at = now.instant + self.config.unload_grace;
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.attachment = Attachment::Detached { grace_ends_at };
        let room = session.room.clone();
        self.detach_from(conn, key, &room);
        self.timers.push(grace_ends_at, Timer::GraceEnd(key));
    }

    /// Holds sessions a previous run of this node wrote down as it stopped, detached for a
    /// fresh reconnect grace: each client that reconnects within it restores its session,
    /// and nobody sees a leave or a join. Users come back in `joinedAt` order, with their
    /// colors, state and `joinedAt`; a session already held is left as it is.
    pub fn hold_restored(&mut self, mut records: Vec<SessionRecord>, now: Now) {
        records.sort_by(|a, b| arrival(a).cmp(&arrival(b)));
        let grace_ends_at = now.instant + self.config.reconnect_grace;
        for record in records {
            let name = (record.user.id.clone(), record.session_id.clone());
            if self
                .rosters
                .get(&record.room)
                .and_then(|r| r.session(&name))
                .is_some()
            {
                continue;
            }
            let attachment = Attachment::Detached { grace_ends_at };
            let (key, new_member) = self.insert_recorded(&record, attachment, now);
            self.timers.push(grace_ends_at, Timer::GraceEnd(key));
            if !new_member {
                self.refresh_away(&record.room, &record.user.id);
            }
        }
        // Nobody is connected yet: what adding them queued for a room has no recipient.
        self.effects.clear();
    }

    /// Lists the session `record` describes, not held yet, with `attachment`: for a user
    /// already listed, one more session; for a new one, an entry with the record's data
    /// and its palette color (any other color in a record is replaced). True when the user
    /// is new to the room.
    pub(crate) fn insert_recorded(
        &mut self,
        record: &SessionRecord,
        attachment: Attachment,
        now: Now,
    ) -> (SessionKey, bool) {
        let room = &record.room;
        let session = Session {
            id: record.session_id.clone(),
            room: room.clone(),
            user_id: record.user.id.clone(),
            attachment,
            batch: false,
            view: View::Full,
            spectator: record.spectator,
            away: record.away,
            claim: record.claim,
        };
        let local = session.is_local();
        let spectator = session.spectator;
        let key = self.sessions.insert(session);
        let roster = self.rosters.entry(room.clone()).or_default();
        roster
            .sessions
            .insert((record.user.id.clone(), record.session_id.clone()), key);
        if local {
            roster.local_sessions += 1;
            if let Some(session) = self.sessions.get(key) {
                roster.views.enlist(key, session);
            }
        }
        if spectator {
            roster.count_spectator(true);
            self.arm_flush(room, now);
            return (key, false);
        }
        if let Some(member) = roster.member_mut(&record.user.id) {
            member.add_session(key);
            return (key, false);
        }
        let color_index = roster
            .colors
            .adopt(record.user.id.as_str(), &record.user.color);
        let mut user = record.user.clone();
        user.color = crate::color::PALETTE[color_index].to_owned();
        self.add_member(room, user, color_index, key, record.stamp, None, now);
        (key, true)
    }

    pub(crate) fn remove_session(&mut self, key: SessionKey, now: Now) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let (room, local) = (session.room.clone(), session.is_local());
        self.drop_session(key, now);
        if local {
            // The node's interest in the room may have ended with it.
            self.release_if_unserved(&room);
        }
    }

    fn drop_session(&mut self, key: SessionKey, now: Now) {
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
        let name = (session.user_id.clone(), session.id.clone());
        roster.sessions.remove(&name);
        roster.session_diffs.remove(&key);
        if session.is_local() {
            roster.local_sessions = roster.local_sessions.saturating_sub(1);
            roster.views.delist(key, &session);
        }
        if session.spectator {
            roster.count_spectator(false);
            if roster.members.is_empty() && roster.sessions.is_empty() {
                self.rosters.remove(&room);
            } else {
                self.arm_flush(&room, now);
            }
            return;
        }
        let Some(member) = roster.member_mut(&session.user_id) else {
            return;
        };
        if member.remove_session(key) {
            let departure = self.departure(&room, &session.user_id);
            let Some(roster) = self.rosters.get_mut(&room) else {
                return;
            };
            let gone = roster.remove_member(&session.user_id);
            if let Some(member) = &gone {
                roster.colors.release(member.color_index);
            }
            self.users = self.users.saturating_sub(1);
            let emptied = roster.members.is_empty();
            let deserted = roster.sessions.is_empty();
            // A user leaves for the webhooks when its owner ends its last session, or when
            // every serving node ends an orphan's; a remote owner's end is its own news.
            let orphan = matches!(session.attachment, Attachment::Orphaned { .. });
            if let (Some(member), true) = (gone, session.is_local() || orphan) {
                let mut user = member.user;
                user.sessions = 0;
                self.notify(RoomEvent::UserLeft {
                    room: room.clone(),
                    user,
                    session_id: session.id.clone(),
                    shared: orphan,
                });
                if emptied {
                    self.notify(RoomEvent::RoomVacated { room: room.clone() });
                }
            }
            if emptied && deserted {
                // Nobody is left to tell; pending cursors and diffs go with the room.
                self.rosters.remove(&room);
                return;
            }
            if let Some(departure) = departure {
                self.user_exited(&room, departure, now);
            }
        } else {
            // The user stays with one session fewer (and perhaps now all-away).
            self.relinquish_if_unowned(&room, &session.user_id);
            self.refresh_away(&room, &session.user_id);
            self.user_updated(&room, &session.user_id, session.conn(), now);
        }
    }

    pub(crate) fn session_of(&self, conn: ConnId, room: &RoomName) -> Option<SessionKey> {
        let connection = self.connections.get(&conn)?;
        connection
            .sessions
            .iter()
            .copied()
            .find(|&key| self.sessions.get(key).is_some_and(|s| &s.room == room))
    }

    /// Sets what a session sees and whether it wants batches (`view: None` keeps its view).
    pub(crate) fn set_view(
        &mut self,
        room: &RoomName,
        key: SessionKey,
        view: Option<View>,
        batch: bool,
    ) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let view = view.unwrap_or(session.view);
        if session.batch == batch && session.view == view {
            return;
        }
        let local = session.is_local();
        let Some(roster) = self.rosters.get_mut(room) else {
            session.batch = batch;
            session.view = view;
            return;
        };
        if local {
            roster.views.delist(key, session);
        }
        session.batch = batch;
        session.view = view;
        if local {
            roster.views.enlist(key, session);
        }
        // A diff folded for the old view would not describe the new one: currentUsers
        // follows every change of view.
        roster.session_diffs.remove(&key);
    }

    /// A session becomes this node's (created, restored, held from a file): it is sent
    /// frames from now on.
    pub(crate) fn enlist(&mut self, room: &RoomName, key: SessionKey) {
        if let (Some(session), Some(roster)) = (self.sessions.get(key), self.rosters.get_mut(room))
        {
            roster.views.enlist(key, session);
        }
    }

    /// A session stops being this node's (claimed by another node).
    pub(crate) fn delist(&mut self, room: &RoomName, key: SessionKey) {
        if let (Some(session), Some(roster)) = (self.sessions.get(key), self.rosters.get_mut(room))
        {
            roster.views.delist(key, session);
            roster.session_diffs.remove(&key);
        }
    }

    /// The user's entry in the room, if both exist.
    pub(crate) fn member_mut(&mut self, room: &RoomName, user_id: &UserId) -> Option<&mut Member> {
        self.rosters.get_mut(room)?.member_mut(user_id)
    }

    // ----- liveness ----------------------------------------------------------------------

    pub(crate) fn touch(&mut self, conn: ConnId, now: Now) {
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
                .and_then(|r| r.member_mut(&session.user_id))
            {
                member.user.last_seen = now.unix_ms;
            }
        }
    }

    pub(crate) fn check_silence(&mut self, conn: ConnId, epoch: u64, now: Now) {
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
        // The close goes first: removing the sessions unsubscribes the connection, after
        // which the shell no longer knows where its socket is.
        self.effects.push_back(Effect::Close {
            conn,
            reason: CloseReason::HeartbeatTimeout,
        });
        let keys = connection.sessions.clone();
        for key in keys {
            self.remove_session(key, now);
        }
        self.connections.remove(&conn);
    }
}

/// The order in which records list their users: by `joinedAt`, ties by user id. Records
/// come from the backend or a file in no particular order, and a roster lists its users in
/// the order they arrived.
pub(crate) fn arrival(record: &SessionRecord) -> (u64, &UserId) {
    (record.user.joined_at, &record.user.id)
}
