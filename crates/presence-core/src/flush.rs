//! Once-per-interval frames: coalesced cursors and roster diffs.
//!
//! Cursor moves and (for sessions that asked for batches) roster changes are folded into
//! the room as they happen and leave in one flush per `cursor_interval`: at once if the
//! room was quiet for a whole interval, else when the interval since its last flush ends.
//! However many moves or joins happen, a room sends at most one `presence:cursors` and one
//! `presence:diff` per interval, and in cluster mode publishes at most one `Cursors` fact.

use std::collections::HashMap;

use presence_protocol::{CursorEntry, RoomName, ServerMessage, UserId};

use crate::effect::Effect;
use crate::fact::Fact;
use crate::input::{ConnId, Now};
use crate::roster::{Change, Fold, Roster};
use crate::session::Session;
use crate::timers::Timer;
use crate::tracker::Tracker;

impl Tracker {
    /// Folds a change into the room's next diff and makes sure a flush will carry it.
    pub(crate) fn record(&mut self, room: &RoomName, user_id: &UserId, change: Change, now: Now) {
        if let Some(roster) = self.rosters.get_mut(room) {
            roster.record(user_id, change);
        }
        self.arm_flush(room, now);
    }

    /// Schedules the room's flush: at once if it has been quiet for a whole interval,
    /// else when the interval since its last flush ends.
    pub(crate) fn arm_flush(&mut self, room: &RoomName, now: Now) {
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

    pub(crate) fn flush(&mut self, room: &RoomName, now: Now) {
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
            if let Some(member) = roster.member_mut(user_id) {
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
        if !entries.is_empty() {
            self.flush_cursors(room, entries, &slot_of_user);
        }

        // Roster changes for the full-view batch sessions, in one diff.
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        let diff = std::mem::take(&mut roster.diff);
        let session_diffs = std::mem::take(&mut roster.session_diffs);
        let roster = &*roster;
        if let Some(message) = diff_message(room, roster, diff) {
            let recipients: Vec<ConnId> = roster
                .views
                .full
                .iter()
                .filter_map(|&key| self.sessions.get(key))
                .filter(|session| session.batch)
                .filter_map(Session::conn)
                .collect();
            if !recipients.is_empty() {
                self.effects.push_back(Effect::Broadcast {
                    recipients,
                    message,
                });
            }
        }
        // Each list-view batch session's own diff of its window.
        let mut sends = Vec::new();
        for (key, fold) in session_diffs {
            let Some(conn) = self.sessions.get(key).and_then(Session::conn) else {
                continue;
            };
            if let Some(message) = diff_message(room, roster, fold) {
                sends.push(Effect::Send { conn, message });
            }
        }
        self.effects.extend(sends);

        // The numbers, for list views and spectators, when they changed.
        let counts = roster.counts();
        if roster.counts_changed && roster.views.want_counts() {
            let recipients: Vec<ConnId> = roster
                .views
                .count_recipients()
                .filter_map(|key| self.sessions.get(key))
                .filter_map(Session::conn)
                .collect();
            if let Some(roster) = self.rosters.get_mut(room) {
                roster.counts_changed = false;
            }
            if !recipients.is_empty() {
                let (count, spectators) = counts;
                self.effects.push_back(Effect::Broadcast {
                    recipients,
                    message: ServerMessage::Count {
                        room: room.clone(),
                        count,
                        spectators,
                    },
                });
            }
        }
    }

    /// One interval's cursor moves: full views get every entry, list views those of the
    /// users in their window; nobody gets their own.
    fn flush_cursors(
        &mut self,
        room: &RoomName,
        entries: Vec<CursorEntry>,
        slot_of_user: &HashMap<&UserId, usize>,
    ) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let only_one = entries.len() == 1;
        let recipients: Vec<(ConnId, Option<usize>)> = roster
            .views
            .full
            .iter()
            .filter_map(|&key| self.sessions.get(key))
            .filter_map(|session| {
                let conn = session.conn()?;
                let own = slot_of_user.get(&session.user_id).copied();
                // A lone mover would get an empty frame: skip it.
                (!(only_one && own.is_some())).then_some((conn, own))
            })
            .collect();

        let mut frames = Vec::new();
        if let Some((&k_max, _)) = roster.views.lists.iter().next_back() {
            // The movers by rank: a list view of K sees those ranked below K, and the one
            // ranked K too when its own user is ahead of it.
            let mut ranked: Vec<(usize, usize)> = entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((roster.rank(&e.user_id)?, i)))
                .filter(|&(rank, _)| rank <= usize::from(k_max))
                .collect();
            ranked.sort_unstable();
            let near: HashMap<&UserId, usize> = roster
                .order
                .first(usize::from(k_max))
                .enumerate()
                .map(|(rank, id)| (id, rank))
                .collect();
            for (&k, keys) in &roster.views.lists {
                let k = usize::from(k);
                let below = ranked.partition_point(|&(rank, _)| rank < k);
                let with_edge = ranked.partition_point(|&(rank, _)| rank <= k);
                if with_edge == 0 {
                    continue;
                }
                // Most see the movers ranked below K; those whose own user is ahead of
                // rank K see the one ranked K too.
                let mut plain = Vec::new();
                let mut ahead = Vec::new();
                for &key in keys {
                    let Some(session) = self.sessions.get(key) else {
                        continue;
                    };
                    let Some(conn) = session.conn() else {
                        continue;
                    };
                    let own_rank = (!session.spectator)
                        .then(|| near.get(&session.user_id).copied())
                        .flatten();
                    match own_rank {
                        Some(m) if m < k => ahead.push((conn, &session.user_id)),
                        _ => plain.push((conn, &session.user_id)),
                    }
                }
                for (seen, viewers) in [(&ranked[..below], plain), (&ranked[..with_edge], ahead)] {
                    let cursors: Vec<CursorEntry> =
                        seen.iter().map(|&(_, i)| entries[i].clone()).collect();
                    // Never its own cursor (a spectator's own user may be among them too),
                    // and nothing at all when its own move is the only one.
                    let recipients: Vec<(ConnId, Option<usize>)> = viewers
                        .into_iter()
                        .filter_map(|(conn, user_id)| {
                            let own = cursors.iter().position(|c| &c.user_id == user_id);
                            (cursors.len() > usize::from(own.is_some())).then_some((conn, own))
                        })
                        .collect();
                    if !recipients.is_empty() {
                        frames.push((cursors, recipients));
                    }
                }
            }
        }
        if !recipients.is_empty() {
            self.effects.push_back(Effect::Cursors {
                room: room.clone(),
                cursors: entries,
                recipients,
            });
        }
        for (cursors, recipients) in frames {
            self.effects.push_back(Effect::Cursors {
                room: room.clone(),
                cursors,
                recipients,
            });
        }
    }
}

/// The `presence:diff` a fold of changes makes, with users as they are now; `None` if it
/// says nothing.
fn diff_message(room: &RoomName, roster: &Roster, fold: Fold) -> Option<ServerMessage> {
    if fold.is_empty() {
        return None;
    }
    let Fold {
        order,
        mut change_of,
    } = fold;
    let (mut joined, mut left, mut updated) = (Vec::new(), Vec::new(), Vec::new());
    for user_id in order {
        let current = roster.member(&user_id).map(|m| m.user.clone());
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
    Some(ServerMessage::Diff {
        room: room.clone(),
        joined,
        left,
        updated,
    })
}
