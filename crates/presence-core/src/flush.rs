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
use crate::roster::Change;
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
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        if !entries.is_empty() {
            let only_one = entries.len() == 1;
            let recipients: Vec<(ConnId, Option<usize>)> = roster
                .recipients(&self.sessions)
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
        let recipients: Vec<ConnId> = roster
            .recipients(&self.sessions)
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
