//! The per-room list of users, and what changed in it since the room's last flush.
//!
//! A [`Roster`] keeps its own invariants: a member's `sessions` count always matches the
//! sessions listed for it, the room knows how many of its sessions want batches, and a
//! moved cursor takes one slot in the room's pending batch however often it moves. The
//! tracker tells the story of each input; the roster does the bookkeeping.

use std::collections::HashMap;
use std::time::Instant;

use presence_protocol::{CursorPosition, SessionId, User, UserId};
use slotmap::SlotMap;

use crate::color::ColorUse;
use crate::fact::Stamp;
use crate::session::{Session, SessionKey};

/// A session is named by its user and its id together: two users may pick the same id
/// (on two nodes at once, even) without ever touching each other's session.
pub(crate) type SessionName = (UserId, SessionId);

/// One user in one room: the wire `User` kept ready to clone, plus bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) user: User,
    pub(crate) color_index: usize,
    /// Read through [`Member::sessions`]; changed only through the methods below, which
    /// keep `user.sessions` equal to its length.
    sessions: Vec<SessionKey>,
    /// Where this user's entry sits in the room's pending cursor batch, if it moved.
    pub(crate) cursor_slot: Option<usize>,
    /// Orders snapshots by arrival.
    pub(crate) arrival: u64,
    /// When the name or state last changed, for last-writer-wins across nodes.
    pub(crate) stamp: Stamp,
    /// Whether the pending cursor move came from this node's own clients (to announce).
    pub(crate) moved_here: bool,
}

impl Member {
    /// A member with one session.
    pub(crate) fn new(
        mut user: User,
        color_index: usize,
        key: SessionKey,
        arrival: u64,
        stamp: Stamp,
    ) -> Self {
        user.sessions = 1;
        Member {
            user,
            color_index,
            sessions: vec![key],
            cursor_slot: None,
            arrival,
            stamp,
            moved_here: false,
        }
    }

    /// The member's sessions, in the order they came.
    pub(crate) fn sessions(&self) -> &[SessionKey] {
        &self.sessions
    }

    /// One more session of this user: `sessions` is part of what others see.
    pub(crate) fn add_session(&mut self, key: SessionKey) {
        self.sessions.push(key);
        self.user.sessions = self.sessions.len() as u32;
    }

    /// One session fewer; true when none is left.
    pub(crate) fn remove_session(&mut self, key: SessionKey) -> bool {
        self.sessions.retain(|&k| k != key);
        self.user.sessions = self.sessions.len() as u32;
        self.sessions.is_empty()
    }
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
    batch_sessions: usize,
    pub(crate) last_flush_at: Option<Instant>,
    pub(crate) flush_armed: bool,
    /// Sessions this node owns here (live or in grace); the room is served while any is.
    pub(crate) local_sessions: usize,
}

impl Roster {
    pub(crate) fn member(&self, user_id: &UserId) -> Option<&Member> {
        self.members.get(user_id)
    }

    pub(crate) fn member_mut(&mut self, user_id: &UserId) -> Option<&mut Member> {
        self.members.get_mut(user_id)
    }

    /// The session `name` names in this room, if it is held here.
    pub(crate) fn session(&self, name: &SessionName) -> Option<SessionKey> {
        self.sessions.get(name).copied()
    }

    /// Lists a session under its name; batch sessions make the room keep diffs.
    pub(crate) fn add_session(&mut self, name: SessionName, key: SessionKey, batch: bool) {
        self.sessions.insert(name, key);
        if batch {
            self.batch_sessions += 1;
        }
    }

    /// Forgets a session's name (its member is the caller's business).
    pub(crate) fn remove_session(&mut self, name: &SessionName, batch: bool) {
        self.sessions.remove(name);
        if batch {
            self.set_batch(false);
        }
    }

    /// One session of the room starts (`true`) or stops wanting batches.
    pub(crate) fn set_batch(&mut self, batch: bool) {
        if batch {
            self.batch_sessions += 1;
        } else {
            self.batch_sessions = self.batch_sessions.saturating_sub(1);
        }
    }

    /// The room's sessions that have a connection right now: whoever a frame can reach.
    pub(crate) fn recipients<'a>(
        &'a self,
        sessions: &'a SlotMap<SessionKey, Session>,
    ) -> impl Iterator<Item = &'a Session> + 'a {
        self.sessions
            .values()
            .filter_map(|&key| sessions.get(key))
            .filter(|session| session.conn().is_some())
    }

    /// Moves a user's cursor and gives it a slot in the pending batch, once per flush.
    /// `here` says whether this node's own client moved it (and so must announce it).
    /// False if the user is not in the room.
    pub(crate) fn move_cursor(
        &mut self,
        user_id: &UserId,
        position: CursorPosition,
        here: bool,
    ) -> bool {
        let Some(member) = self.members.get_mut(user_id) else {
            return false;
        };
        member.user.cursor = position;
        member.moved_here |= here;
        if member.cursor_slot.is_none() {
            member.cursor_slot = Some(self.moved.len());
            self.moved.push(user_id.clone());
        }
        true
    }

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
