//! Which rooms a node serves (cluster mode), and how it starts and stops serving one.
//!
//! A node serves a room while it holds a session there: a live one, one in its grace, or
//! one a join is restoring. It keeps no roster, color, cursor or timer for any other room,
//! so a node's cost follows its own clients, not the cluster's.
//!
//! - **Starting.** The first join into a room the node does not serve asks the shell to
//!   follow the room's channel and read its records ([`Effect::Watch`]). Until the records
//!   arrive ([`Input::Records`]) the room is *loading*: every input about it (that join,
//!   later ones, the facts now arriving on its channel) waits in arrival order. Then the
//!   records become remote sessions and the waiting inputs run. The first joiner's
//!   `presence:currentUsers` is therefore already the whole cluster's roster.
//!   Facts that arrived while loading may be older than the records (they were published
//!   before the read and are in it too) or newer; both are whole records or ends, so
//!   applying them after the read is right either way.
//! - **Stopping.** When the room's last local session goes, the node drops the roster and
//!   every remote session in it, silently (nobody here is left to tell), and asks the
//!   shell to stop following it ([`Effect::Unwatch`]).
//! - **Reading again.** When the channel comes back after an outage the node reads every
//!   room it serves again ([`Effect::Load`]): at once without trusting absences (owners may
//!   not have rewritten what a Redis restart lost yet), and once more a node TTL later,
//!   when every live node has. When another node says it rewrote its records
//!   ([`Fact::Reasserted`]), or is heard from after being presumed gone, its records are
//!   read again and taken as the whole truth about it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use presence_protocol::{RoomName, SessionId, User, UserId, AWAY_KEY};

use crate::color::{color_for, PALETTE};
use crate::effect::Effect;
use crate::fact::{Fact, NodeId, SessionRecord, Stamp};
use crate::input::{Authority, Input, Now};
use crate::session::{arrival, Attachment};
use crate::timers::Timer;
use crate::tracker::RoomPage;
use crate::tracker::Tracker;

impl Tracker {
    /// Whether the node serves `room` (cluster mode): it holds its roster.
    pub(crate) fn serves(&self, room: &RoomName) -> bool {
        self.rosters.contains_key(room)
    }

    /// Whether `room`'s records are being read, with its inputs waiting.
    pub fn is_loading(&self, room: &RoomName) -> bool {
        self.loading.contains_key(room)
    }

    /// Routes a cluster-mode input by interest. Returns the input when it is to be
    /// handled now; `None` when it waits for its room's records, was ignored, or was dealt
    /// with here.
    pub(crate) fn by_interest(&mut self, input: Input, now: Now) -> Option<Input> {
        match input {
            Input::Records {
                room,
                records,
                gone,
                authority,
            } => {
                self.records(room, records, &gone, authority, now);
                None
            }
            Input::Closed { conn }
            | Input::Leave {
                conn, room: None, ..
            } => {
                // A connection gone, or leaving everywhere, before its join was answered:
                // what it asked of a loading room is void.
                for waiting in self.loading.values_mut() {
                    waiting.retain(|queued| queued.conn() != Some(conn));
                }
                Some(input)
            }
            Input::Remote(fact) => {
                let Some(room) = fact.room().cloned() else {
                    return Some(Input::Remote(fact));
                };
                if let Some(waiting) = self.loading.get_mut(&room) {
                    waiting.push(Input::Remote(fact));
                    return None;
                }
                if !self.serves(&room) {
                    // Our subscription ended, or the fact crossed our unwatch.
                    self.interest_stats.ignored_facts += 1;
                    return None;
                }
                self.interest_stats.applied_facts += 1;
                Some(Input::Remote(fact))
            }
            input => {
                let Some(room) = input.room().cloned() else {
                    return Some(input);
                };
                if let Some(waiting) = self.loading.get_mut(&room) {
                    waiting.push(input);
                    return None;
                }
                if matches!(input, Input::Join { .. }) && !self.serves(&room) {
                    self.loading.insert(room.clone(), vec![input]);
                    self.effects.push_back(Effect::Watch { room });
                    return None;
                }
                Some(input)
            }
        }
    }

    /// A room's records, read after following its channel (first load) or again.
    fn records(
        &mut self,
        room: RoomName,
        records: Vec<(NodeId, SessionRecord)>,
        gone: &[(NodeId, Duration)],
        authority: Authority,
        now: Now,
    ) {
        let waiting = self.loading.remove(&room);
        if waiting.is_none() && !self.serves(&room) {
            // An answer for a room dropped since the read was asked for.
            return;
        }
        if waiting.is_some() {
            // Served from now on, even while it lists nobody yet.
            self.rosters.entry(room.clone()).or_default();
        }
        self.apply_records(&room, records, gone, authority, now);
        if let Some(waiting) = waiting {
            for input in waiting {
                self.handle(input, now);
            }
            // Every join that waited may have failed or been withdrawn.
            self.release_if_unserved(&room);
        }
    }

    /// Upserts every other node's records for `room`, then drops the remote sessions of the
    /// nodes `authority` speaks for that the records no longer list.
    fn apply_records(
        &mut self,
        room: &RoomName,
        records: Vec<(NodeId, SessionRecord)>,
        gone: &[(NodeId, Duration)],
        authority: Authority,
        now: Now,
    ) {
        let me = self.node_id();
        // An owner that stopped refreshing its liveness is gone, and so is one this node
        // presumed dead: its sessions are orphans. One this node already holds keeps its
        // grace; one it did not hold yet gets a grace that ends when the owner's records
        // expire, which is about when every node that served the room all along ends it.
        let gone: HashMap<NodeId, Duration> = gone
            .iter()
            .filter(|(node, _)| !self.nodes.contains_key(node))
            .copied()
            .collect();
        let mut listed: HashSet<(NodeId, UserId, SessionId)> = HashSet::new();
        // Users are listed in the order they arrived, which the records tell by `joinedAt`
        // (the backend returns them in no particular order).
        let mut records = records;
        records.sort_by(|(_, a), (_, b)| arrival(a).cmp(&arrival(b)));
        for (node, record) in records {
            // Our own records are our past. A record may also end our interest (it claims
            // our last session here), and then the rest concern a room we dropped.
            if node == me || &record.room != room || !self.serves(room) {
                continue;
            }
            let name = (record.user.id.clone(), record.session_id.clone());
            listed.insert((node, name.0.clone(), name.1.clone()));
            if gone.contains_key(&node) || self.dead_nodes.contains(&node) {
                let held = self.rosters.get(room).and_then(|r| r.session(&name));
                if held.is_none() {
                    let left = gone
                        .get(&node)
                        .copied()
                        .unwrap_or(self.config.reconnect_grace);
                    self.remote_session(node, record, now);
                    self.orphan_session(room, &name, now.instant + left);
                }
                continue;
            }
            if !self.nodes.contains_key(&node) {
                // Never heard from yet: its silence is timed from now.
                self.heard_from(node, now);
            }
            self.remote_session(node, record, now);
        }
        self.dead_nodes.extend(gone.keys());
        let covers = |node: NodeId| match authority {
            Authority::Complete => true,
            Authority::Node(only) => only == node,
            Authority::Partial => false,
        };
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let stale: Vec<_> = roster
            .sessions
            .values()
            .copied()
            .filter(|&key| {
                self.sessions.get(key).is_some_and(|s| match s.attachment {
                    Attachment::Remote(owner) => {
                        covers(owner) && !listed.contains(&(owner, s.user_id.clone(), s.id.clone()))
                    }
                    _ => false,
                })
            })
            .collect();
        for key in stale {
            self.remove_session(key, now);
        }
    }

    /// Lists a remote session as an orphan whose grace ends at `grace_ends_at`.
    fn orphan_session(
        &mut self,
        room: &RoomName,
        name: &(UserId, SessionId),
        grace_ends_at: Instant,
    ) {
        let Some(key) = self.rosters.get(room).and_then(|r| r.session(name)) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if matches!(session.attachment, Attachment::Remote(_)) {
            session.attachment = Attachment::Orphaned { grace_ends_at };
            self.timers.push(grace_ends_at, Timer::GraceEnd(key));
        }
    }

    /// Drops `room` if no session of this node is left in it (cluster mode).
    pub(crate) fn release_if_unserved(&mut self, room: &RoomName) {
        if self.config.cluster.is_none() || self.pinned.as_ref() == Some(room) {
            return;
        }
        if self.rosters.get(room).is_some_and(|r| r.local_sessions > 0) {
            return;
        }
        if let Some(roster) = self.rosters.remove(room) {
            for key in roster.sessions.values() {
                self.sessions.remove(*key);
            }
            self.users = self.users.saturating_sub(roster.members.len());
        }
        self.effects
            .push_back(Effect::Unwatch { room: room.clone() });
    }

    /// Asks for every served room's records again, with `authority`.
    pub(crate) fn reload_all(&mut self, authority: Authority) {
        let mut rooms: Vec<RoomName> = self.rosters.keys().cloned().collect();
        // Sorted, so runs with one seed replay alike.
        rooms.sort();
        for room in rooms {
            self.effects.push_back(Effect::Load { room, authority });
        }
    }

    /// The channel is back: read everything again now without trusting absences, and once
    /// more when every live node has had a node TTL to write its records again.
    pub(crate) fn reload_after_outage(&mut self, now: Now) {
        let Some(cluster) = self.config.cluster else {
            return;
        };
        self.reload_all(Authority::Partial);
        self.timers
            .push(now.instant + cluster.node_ttl, Timer::Reload);
    }

    /// Another node rewrote its records: take them as the whole truth about it.
    pub(crate) fn reasserted(&mut self, node: NodeId) {
        self.reload_all(Authority::Node(node));
    }

    /// A fact this node publishes when it must make the others read its records again.
    pub(crate) fn reassert(&mut self) {
        let node = self.node_id();
        self.publish(Fact::Reasserted { node });
    }
}

/// Counts of the interest rules at work, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterestStats {
    /// Room facts applied to a served room.
    pub applied_facts: u64,
    /// Room facts dropped because this node does not serve their room.
    pub ignored_facts: u64,
}

/// The users of a room as its records list them, for a node that does not serve the room
/// (the HTTP API's answer). One entry per user, with as many `sessions` as records, the
/// data of the newest stamp, `away` when every session is away, a palette color, and the
/// users in `joinedAt` order.
pub fn roster_from_records(records: &[(NodeId, SessionRecord)]) -> Vec<User> {
    let mut users: HashMap<&UserId, (User, Stamp, bool)> = HashMap::new();
    let records: Vec<&(NodeId, SessionRecord)> =
        records.iter().filter(|(_, r)| !r.spectator).collect();
    for (_, record) in records.iter().copied() {
        let entry = users
            .entry(&record.user.id)
            .or_insert_with(|| (record.user.clone(), record.stamp, true));
        let (user, stamp, all_away) = entry;
        if record.stamp > *stamp {
            let sessions = user.sessions;
            *user = record.user.clone();
            user.sessions = sessions;
            *stamp = record.stamp;
        }
        user.last_seen = user.last_seen.max(record.user.last_seen);
        *all_away &= record.away;
    }
    let counts = records.iter().fold(HashMap::new(), |mut counts, (_, r)| {
        *counts.entry(&r.user.id).or_insert(0u32) += 1;
        counts
    });
    let mut listed: Vec<User> = users
        .into_values()
        .map(|(mut user, _, all_away)| {
            user.sessions = counts.get(&user.id).copied().unwrap_or(1);
            user.state.remove(AWAY_KEY);
            if all_away {
                user.state
                    .insert(AWAY_KEY.to_owned(), serde_json::Value::Bool(true));
            }
            if !PALETTE.contains(&user.color.as_str()) {
                user.color = PALETTE[color_for(user.id.as_str())].to_owned();
            }
            user
        })
        .collect();
    listed.sort_by(|a, b| (a.joined_at, &a.id).cmp(&(b.joined_at, &b.id)));
    listed
}

/// A room's first `limit` users and its numbers as its records tell them (see
/// [`roster_from_records`]).
pub fn page_from_records(records: &[(NodeId, SessionRecord)], limit: usize) -> RoomPage {
    let mut users = roster_from_records(records);
    let count = users.len();
    users.truncate(limit);
    RoomPage {
        users,
        count,
        spectators: records.iter().filter(|(_, r)| r.spectator).count(),
    }
}

#[cfg(test)]
mod tests {
    use presence_protocol::{CursorPosition, SessionId, State, User, UserId, AWAY_KEY};

    use super::roster_from_records;
    use crate::color::PALETTE;
    use crate::fact::{NodeId, SessionRecord, Stamp};

    fn record(user: &str, session: &str, joined_at: u64, stamp: u64, state: &str) -> SessionRecord {
        SessionRecord {
            room: presence_protocol::RoomName::new("doc").expect("room"),
            session_id: SessionId::new(session).expect("id"),
            user: User {
                id: UserId::new(user).expect("id"),
                name: user.to_owned(),
                color: PALETTE[3].to_owned(),
                joined_at,
                last_seen: stamp,
                cursor: CursorPosition::default(),
                state: serde_json::from_str::<State>(state).expect("state"),
                sessions: 1,
            },
            away: false,
            stamp: Stamp {
                unix_ms: stamp,
                node: 1,
            },
            claim: Stamp::default(),
            spectator: false,
        }
    }

    #[test]
    fn records_make_one_entry_per_user_with_the_newest_data() {
        let mut older = record("ann", "a1", 20, 100, r#"{"k":1}"#);
        older.away = true;
        let mut newer = record("ann", "a2", 20, 200, r#"{"k":2}"#);
        newer.away = true;
        let mut ben = record("ben", "b1", 10, 50, "{}");
        ben.user.color = "#FFFF00".to_owned();
        let listed =
            roster_from_records(&[(NodeId(1), older), (NodeId(2), ben), (NodeId(2), newer)]);
        let ids: Vec<&str> = listed.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["ben", "ann"], "in joinedAt order");
        let ann = &listed[1];
        assert_eq!(ann.sessions, 2);
        assert_eq!(ann.state["k"], 2, "the newest stamp's data");
        assert_eq!(ann.state[AWAY_KEY], true, "away when every session is");
        assert_eq!(ann.last_seen, 200);
        assert!(
            PALETTE.contains(&listed[0].color.as_str()),
            "{}",
            listed[0].color
        );
        assert!(!listed[0].state.contains_key(AWAY_KEY));
    }
}
