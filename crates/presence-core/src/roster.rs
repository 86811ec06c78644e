//! The per-room list of users, and what changed in it since the room's last flush.

use std::collections::HashMap;
use std::time::Instant;

use presence_protocol::{SessionId, User, UserId};

/// A session is named by its user and its id together: two users may pick the same id
/// (on two nodes at once, even) without ever touching each other's session.
pub(crate) type SessionName = (UserId, SessionId);

use crate::color::ColorUse;
use crate::fact::Stamp;
use crate::session::SessionKey;

/// One user in one room: the wire `User` kept ready to clone, plus bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) user: User,
    pub(crate) color_index: usize,
    pub(crate) sessions: Vec<SessionKey>,
    /// Where this user's entry sits in the room's pending cursor batch, if it moved.
    pub(crate) cursor_slot: Option<usize>,
    /// Orders snapshots by arrival.
    pub(crate) arrival: u64,
    /// When the name or state last changed, for last-writer-wins across nodes.
    pub(crate) stamp: Stamp,
    /// Whether the pending cursor move came from this node's own clients (to announce).
    pub(crate) moved_here: bool,
}

/// How a user changed since the last `presence:diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Joined,
    Left,
    /// Left and came back within one interval: the diff carries both.
    Rejoined,
    Updated,
}

#[derive(Debug, Default)]
pub(crate) struct Roster {
    pub(crate) members: HashMap<UserId, Member>,
    pub(crate) sessions: HashMap<SessionName, SessionKey>,
    pub(crate) colors: ColorUse,
    /// Users whose cursor moved since the last flush, in order of first move.
    pub(crate) moved: Vec<UserId>,
    /// Roster changes since the last flush, in order of first change (only while some
    /// session of the room wants batches).
    pub(crate) changes: Vec<UserId>,
    pub(crate) change_of: HashMap<UserId, Change>,
    pub(crate) batch_sessions: usize,
    pub(crate) last_flush_at: Option<Instant>,
    pub(crate) flush_armed: bool,
}

impl Roster {
    /// Folds one more change of `user_id` into what the next diff will say.
    pub(crate) fn record(&mut self, user_id: &UserId, change: Change) {
        if self.batch_sessions == 0 {
            return;
        }
        let previous = self.change_of.get(user_id).copied();
        let next = match (previous, change) {
            (None, change) => Some(change),
            (Some(Change::Joined), Change::Left) => None,
            (Some(Change::Joined), _) => Some(Change::Joined),
            (Some(Change::Left), Change::Joined) => Some(Change::Rejoined),
            (Some(Change::Left), other) => Some(other),
            (Some(Change::Rejoined), Change::Left) => Some(Change::Left),
            (Some(Change::Rejoined), _) => Some(Change::Rejoined),
            (Some(Change::Updated), Change::Left) => Some(Change::Left),
            (Some(Change::Updated), Change::Joined) => Some(Change::Rejoined),
            (Some(Change::Updated), _) => Some(Change::Updated),
        };
        match next {
            Some(change) => {
                if previous.is_none() {
                    self.changes.push(user_id.clone());
                }
                self.change_of.insert(user_id.clone(), change);
            }
            None => {
                self.change_of.remove(user_id);
                self.changes.retain(|id| id != user_id);
            }
        }
    }

    pub(crate) fn has_pending_flush_work(&self) -> bool {
        !self.moved.is_empty() || !self.changes.is_empty()
    }

    /// Everyone, ordered by arrival so snapshots read the same on every call.
    pub(crate) fn snapshot(&self) -> Vec<User> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_unstable_by_key(|m| m.arrival);
        members.into_iter().map(|m| m.user.clone()).collect()
    }
}
