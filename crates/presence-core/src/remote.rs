//! How a tracker applies other nodes' facts and decides that a silent node is gone.
//!
//! Remote sessions live in the same rosters as local ones, so every roster rule (one entry
//! per user, `userJoined` on the first session, `userLeft` on the last, colors, diffs) holds
//! across nodes without a second code path. Three rules keep the replica true:
//! - a session belongs to exactly one node at a time, and the newest `Session` fact names it
//!   (a restore on another node is a claim, never a leave and a join);
//! - a node silent for the node TTL, or announcing that it leaves, orphans its sessions:
//!   they stay visible for the reconnect grace, then leave on every node. A node heard
//!   from again after either was never gone (it was slow, cut off, or the `Leaving` was
//!   forged or replayed): the node that hears it reads its records again, which revives
//!   its sessions. A node that hears a `Leaving` in its own name says `Reasserted`, so
//!   every node reads its records again;
//! - a remote user's color obeys the palette rule as a local one does (see
//!   [`Tracker::settle_shared_color`]);
//! - records read from the backend replace what is held for the nodes they speak for,
//!   which heals whatever facts were lost while the channel was down (`interest.rs`).

use std::time::Instant;

use presence_protocol::{CursorPosition, RoomName, UserId, AWAY_KEY};

use crate::color::PALETTE;
use crate::effect::Effect;
use crate::fact::{Fact, NodeId, SessionRecord, Stamp};
use crate::input::{Authority, Now};
use crate::session::{Attachment, Session, SessionKey};
use crate::timers::Timer;
use crate::tracker::Tracker;

/// The last word from another node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeBeat {
    pub(crate) last_heard_at: Instant,
    pub(crate) epoch: u64,
}

/// A spectator's record names only its user: it is not listed, so it has no data to share.
fn spectator_user_record(user_id: &UserId) -> presence_protocol::User {
    presence_protocol::User {
        id: user_id.clone(),
        name: user_id.to_string(),
        color: String::new(),
        joined_at: 0,
        last_seen: 0,
        cursor: CursorPosition::default(),
        state: presence_protocol::State::new(),
        sessions: 0,
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

impl Tracker {
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
        if session.spectator {
            return Some(SessionRecord {
                room: session.room.clone(),
                session_id: session.id.clone(),
                user: spectator_user_record(&session.user_id),
                away: false,
                stamp: Stamp::default(),
                claim: session.claim,
                spectator: true,
            });
        }
        let member = self.rosters.get(&session.room)?.member(&session.user_id)?;
        let mut user = member.user.clone();
        user.state.remove(AWAY_KEY);
        Some(SessionRecord {
            room: session.room.clone(),
            session_id: session.id.clone(),
            user,
            away: session.away,
            stamp: member.stamp,
            claim: session.claim,
            spectator: false,
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

    /// Announces every record this node owns of the user: each holds the user's data,
    /// and a node reading the records later must find the newest in whichever survives.
    pub(crate) fn announce_user(&mut self, room: &RoomName, user_id: &UserId) {
        if self.config.cluster.is_none() {
            return;
        }
        let Some(member) = self.rosters.get(room).and_then(|r| r.member(user_id)) else {
            return;
        };
        let keys: Vec<SessionKey> = member.sessions().to_vec();
        for key in keys {
            self.announce(key);
        }
    }

    /// Every session this node owns, for rewriting its records.
    pub fn local_records(&self) -> Vec<SessionRecord> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_local())
            .filter_map(|(key, _)| self.session_record(key))
            .collect()
    }

    pub(crate) fn remote(&mut self, fact: Fact, now: Now) {
        let Some(cluster) = self.config.cluster else {
            return;
        };
        let from = fact.node();
        if from == cluster.node {
            // Our own facts come back on the channels; we applied them already. But a
            // `Leaving` in our name while we run is forged or replayed (the server keeps
            // its own real one from us), and every other node has just orphaned our
            // sessions: have them read our records, which revives them within their grace.
            if matches!(fact, Fact::Leaving { .. }) {
                self.reassert();
            }
            return;
        }
        if self.dead_nodes.contains(&from) && fact.room().is_some() {
            // Only the node-wide channel proves a presumed-dead node alive: on a Redis
            // Cluster a room's channel and the node-wide one live on different shards, so
            // a draining node's last room facts may arrive after its `Leaving`. Its word
            // that a session ended still counts; news of a session waits for its next
            // `Alive`, which has its records read again.
            if matches!(fact, Fact::SessionEnded { .. }) {
                self.ended_remotely(fact, now);
            }
            return;
        }
        self.heard_from(from, now);
        match fact {
            Fact::Alive { .. } => {}
            Fact::Reasserted { node } => self.reasserted(node),
            Fact::Session { node, record } => self.remote_session(node, record, now),
            fact @ Fact::SessionEnded { .. } => self.ended_remotely(fact, now),
            Fact::Cursors { room, cursors, .. } => {
                let Some(roster) = self.rosters.get_mut(&room) else {
                    return;
                };
                for entry in cursors {
                    let position = CursorPosition {
                        x: entry.x,
                        y: entry.y,
                        visible: entry.visible,
                    };
                    roster.move_cursor(&entry.user_id, position, false);
                }
                self.arm_flush(&room, now);
            }
            Fact::Leaving { node } => {
                self.nodes.remove(&node);
                // A node that really leaves says nothing more. If this one speaks again,
                // the `Leaving` was forged or replayed: `heard_from` then resyncs, as for
                // a node presumed dead, so nobody's users stay erased.
                self.dead_nodes.insert(node);
                self.orphan(node, now);
            }
        }
    }

    /// A `SessionEnded` from another node: only the owner's word ends a session (a node
    /// that lost it to a later claim may still report its end).
    fn ended_remotely(&mut self, fact: Fact, now: Now) {
        let Fact::SessionEnded {
            node,
            room,
            user_id,
            session_id,
        } = fact
        else {
            return;
        };
        let key = self
            .rosters
            .get(&room)
            .and_then(|r| r.session(&(user_id, session_id)));
        let owned_by_sender = key.and_then(|k| self.sessions.get(k)).is_some_and(|s| {
            matches!(s.attachment, Attachment::Remote(owner) if owner == node)
                || matches!(s.attachment, Attachment::Orphaned { .. })
        });
        if let (Some(key), true) = (key, owned_by_sender) {
            self.remove_session(key, now);
        }
    }

    /// Upserts a session `node` owns: a new session, a change, or a claim of one we held.
    pub(crate) fn remote_session(&mut self, node: NodeId, record: SessionRecord, now: Now) {
        let room = record.room.clone();
        let name = (record.user.id.clone(), record.session_id.clone());
        let existing = self.rosters.get(&room).and_then(|r| r.session(&name));
        match existing {
            Some(key) => {
                let Some(session) = self.sessions.get(key) else {
                    return;
                };
                if record.claim < session.claim {
                    // An older claim (a replayed snapshot, or a node that restored it
                    // before we did): ours stands. If we own it, say so again so the
                    // other node yields too.
                    if session.is_local() {
                        self.announce(key);
                    }
                    if !record.spectator {
                        self.apply_user_data(&record, false, now);
                    }
                    return;
                }
                let was_local = session.is_local();
                let attachment = session.attachment;
                if was_local {
                    // Frames for it go out from its new owner now.
                    self.delist(&room, key);
                }
                if let Attachment::Live(conn) = attachment {
                    // Restored on another node: this connection no longer carries it.
                    self.detach_from(conn, key, &room);
                }
                if let Some(session) = self.sessions.get_mut(key) {
                    session.attachment = Attachment::Remote(node);
                    session.away = record.away;
                    session.claim = record.claim;
                }
                if was_local {
                    if let Some(roster) = self.rosters.get_mut(&room) {
                        roster.local_sessions = roster.local_sessions.saturating_sub(1);
                    }
                    // Our record of it is stale now; the others ignore this end, as the
                    // session is no longer ours, but the backend drops our record.
                    let node = self.node_id();
                    self.publish(Fact::SessionEnded {
                        node,
                        room: room.clone(),
                        user_id: record.user.id.clone(),
                        session_id: record.session_id.clone(),
                    });
                    self.relinquish_if_unowned(&room, &record.user.id);
                    // Our last session here moved away: so does our interest in the room.
                    self.release_if_unserved(&room);
                    if !self.serves(&room) {
                        return;
                    }
                } else {
                    self.relinquish_if_unowned(&room, &record.user.id);
                }
            }
            None => {
                let (_, new_member) = self.insert_recorded(&record, Attachment::Remote(node), now);
                if record.spectator {
                    return;
                }
                if new_member {
                    self.settle_shared_color(&room, &record.user.id, now);
                } else {
                    // One more session is news: `sessions` is part of what others see.
                    self.apply_user_data(&record, true, now);
                }
                return;
            }
        }

        let kind_changed = existing
            .and_then(|key| self.sessions.get(key))
            .is_some_and(|s| s.spectator != record.spectator);
        if let (Some(key), true) = (existing, kind_changed) {
            // Two nodes each made a session of this name, one listed and one spectating
            // (one of them could not read the other's records): the later claim says what
            // it is. Listed and spectating sessions are kept apart, so it goes and comes
            // back as the record says.
            self.remove_session(key, now);
            if self.serves(&room) || self.config.cluster.is_none() {
                let (_, new_member) = self.insert_recorded(&record, Attachment::Remote(node), now);
                if new_member {
                    self.settle_shared_color(&room, &record.user.id, now);
                }
            }
            return;
        }
        if !record.spectator {
            self.apply_user_data(&record, false, now);
        }
    }

    /// Newer user data wins everywhere, so two nodes' concurrent changes converge.
    fn apply_user_data(&mut self, record: &SessionRecord, count_changed: bool, now: Now) {
        let room = &record.room;
        let mut changed = false;
        let mut recolored = false;
        let mut adopted = false;
        let mut moved_from = None;
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        // Fields, not `member_mut`: the palette and the member are changed together.
        if let Some(member) = roster.members.get_mut(&record.user.id) {
            if record.stamp > member.stamp {
                adopted = member.stamp != Stamp::default();
                let away = member.user.state.get(AWAY_KEY).cloned();
                let mut state = record.user.state.clone();
                if let Some(away) = away {
                    state.insert(AWAY_KEY.to_owned(), away);
                }
                changed |= member.user.name != record.user.name || member.user.state != state;
                member.user.name = record.user.name.clone();
                member.user.state = state;
                member.stamp = record.stamp;
                // Two nodes that each listed the user first (during a partition, say) gave
                // it a joinedAt and a color each; the newest data wins those too.
                if (member.user.joined_at, &member.user.color)
                    != (record.user.joined_at, &record.user.color)
                {
                    roster.colors.release(member.color_index);
                    member.color_index = roster
                        .colors
                        .adopt(record.user.id.as_str(), &record.user.color);
                    member.user.color = PALETTE[member.color_index].to_owned();
                    if member.user.joined_at != record.user.joined_at {
                        // The order moves it in `user_reordered`, which tells the windows.
                        moved_from = Some(member.user.joined_at);
                    }
                    member.user.joined_at = record.user.joined_at;
                    changed = true;
                    recolored = true;
                }
            }
            member.user.last_seen = member.user.last_seen.max(record.user.last_seen);
        }
        if let Some(old_joined_at) = moved_from {
            self.user_reordered(room, &record.user.id, old_joined_at, now);
        }
        let away_changed = self.refresh_away(room, &record.user.id);
        if changed || away_changed || count_changed {
            self.user_updated(room, &record.user.id, None, now);
        }
        if recolored {
            self.settle_shared_color(room, &record.user.id, now);
        }
        // A node that owns a session of this user and knows newer data says so, so the
        // sender (and everyone) converges without waiting for the next change.
        let newer_here = self
            .rosters
            .get(room)
            .and_then(|r| r.member(&record.user.id))
            .is_some_and(|m| m.stamp > record.stamp);
        // And one that took newer data rewrites its own record, so that a node reading the
        // records later finds the newest data even after the changer's sessions are gone.
        if newer_here || adopted {
            self.announce_user(room, &record.user.id);
        }
    }

    /// Two users of a room hold one color while the palette has a free one. That happens
    /// only when two nodes colored them at once (or a partition healed): each node gave
    /// the color that was free in its own view. Every node lists what the owners said, so
    /// all nodes agree; the node owning a session of the later arrival (earlier `joinedAt`
    /// keeps the color, then the smaller user id) moves it to a free color and announces
    /// that, and the newer stamp carries the move to every node. A user no live node owns
    /// keeps what it was given: nothing could tell the others of a move.
    pub(crate) fn settle_shared_color(&mut self, room: &RoomName, user_id: &UserId, now: Now) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let Some(index) = roster.member(user_id).map(|m| m.color_index) else {
            return;
        };
        if !roster.colors.is_shared(index) || !roster.colors.has_free() {
            return;
        }
        let mut holders: Vec<(u64, UserId)> = roster
            .members
            .iter()
            .filter(|(_, member)| member.color_index == index)
            .map(|(id, member)| (member.user.joined_at, id.clone()))
            .collect();
        holders.sort();
        for (_, later) in holders.into_iter().skip(1) {
            if self.local_session_of(room, &later).is_some() {
                self.recolor(room, &later, now);
            }
        }
    }

    /// Moves one of this node's users to a free color, tells its room and the other nodes.
    fn recolor(&mut self, room: &RoomName, user_id: &UserId, now: Now) {
        let node = self.config.cluster.map(|c| c.node);
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        let Some(member) = roster.members.get_mut(user_id) else {
            return;
        };
        roster.colors.release(member.color_index);
        member.color_index = roster.colors.assign(user_id.as_str());
        member.user.color = PALETTE[member.color_index].to_owned();
        member.stamp = next_stamp(member.stamp, now, node);
        self.user_updated(room, user_id, None, now);
        self.announce_user(room, user_id);
    }

    /// One of this node's own sessions of the user, if any.
    pub(crate) fn local_session_of(&self, room: &RoomName, user_id: &UserId) -> Option<SessionKey> {
        let member = self.rosters.get(room)?.member(user_id)?;
        member
            .sessions()
            .iter()
            .copied()
            .find(|&k| self.sessions.get(k).is_some_and(Session::is_local))
    }

    /// A node with no session of the user left is no authority on its data any more: the
    /// owners' next word wins, whatever its stamp (it may be older than what we saw last).
    pub(crate) fn relinquish_if_unowned(&mut self, room: &RoomName, user_id: &UserId) {
        if self.config.cluster.is_none() || self.local_session_of(room, user_id).is_some() {
            return;
        }
        if let Some(member) = self.member_mut(room, user_id) {
            member.stamp = Stamp::default();
        }
    }

    /// This node owns a session of the user again after it had none: the data it holds is
    /// the owners' latest word, and it stands behind it now with a stamp of its own, so
    /// that its records never carry data nobody vouches for (two such records, from two
    /// nodes that each listed the user first during a partition, would never converge).
    pub(crate) fn take_authority(&mut self, room: &RoomName, user_id: &UserId, now: Now) {
        let node = self.config.cluster.map(|c| c.node);
        if node.is_none() {
            return;
        }
        if let Some(member) = self.member_mut(room, user_id) {
            if member.stamp == Stamp::default() {
                member.stamp = next_stamp(Stamp::default(), now, node);
            }
        }
    }

    /// Notes a sign of life from `node`, arming its silence timer the first time.
    pub(crate) fn heard_from(&mut self, node: NodeId, now: Now) {
        let now = now.instant;
        let Some(cluster) = self.config.cluster else {
            return;
        };
        match self.nodes.get_mut(&node) {
            Some(beat) => beat.last_heard_at = now,
            None => {
                self.next_epoch += 1;
                let epoch = self.next_epoch;
                self.nodes.insert(
                    node,
                    NodeBeat {
                        last_heard_at: now,
                        epoch,
                    },
                );
                self.timers
                    .push(now + cluster.node_ttl, Timer::NodeSilence { node, epoch });
                if self.dead_nodes.remove(&node) {
                    // It was only slow, or cut off: its sessions here are orphaned and would
                    // leave. Its records revive them.
                    self.reload_all(Authority::Node(node));
                }
            }
        }
    }

    pub(crate) fn check_node(&mut self, node: NodeId, epoch: u64, now: Now) {
        let Some(cluster) = self.config.cluster else {
            return;
        };
        let Some(beat) = self.nodes.get(&node).copied() else {
            return;
        };
        if beat.epoch != epoch {
            return;
        }
        let due = beat.last_heard_at + cluster.node_ttl;
        if !self.backend_up {
            // We cannot hear anyone: their silence is ours. Check again later.
            self.timers.push(
                now.instant + cluster.node_ttl,
                Timer::NodeSilence { node, epoch },
            );
            return;
        }
        if due > now.instant {
            self.timers.push(due, Timer::NodeSilence { node, epoch });
            return;
        }
        self.nodes.remove(&node);
        self.dead_nodes.insert(node);
        self.orphan(node, now);
    }

    /// A node is gone: its sessions stay visible for the grace, waiting for a restore.
    fn orphan(&mut self, node: NodeId, now: Now) {
        let grace_ends_at = now.instant + self.config.reconnect_grace;
        let keys: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.attachment == Attachment::Remote(node))
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            if let Some(session) = self.sessions.get_mut(key) {
                session.attachment = Attachment::Orphaned { grace_ends_at };
            }
            self.timers.push(grace_ends_at, Timer::GraceEnd(key));
        }
    }

    /// The channel is back: give every node a fresh TTL to be heard again.
    pub(crate) fn backend_reachable(&mut self, now: Now) {
        self.backend_up = true;
        for beat in self.nodes.values_mut() {
            beat.last_heard_at = now.instant;
        }
    }
}
