//! The per-room list of users, and what changed in it since the room's last flush.
//!
//! A [`Roster`] keeps its own invariants: a member's `sessions` count always matches the
//! sessions listed for it, the room knows how many of its sessions want batches, and a
//! moved cursor takes one slot in the room's pending batch however often it moves. The
//! tracker tells the story of each input; the roster does the bookkeeping.

use std::collections::HashMap;
use std::time::Instant;

use presence_protocol::{CursorPosition, SessionId, User, UserId};

use crate::color::ColorUse;
use crate::fact::Stamp;
use crate::session::SessionKey;
use crate::view::{Order, Views};

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
    /// When the name or state last changed, for last-writer-wins across nodes.
    pub(crate) stamp: Stamp,
    /// Whether the pending cursor move came from this node's own clients (to announce).
    pub(crate) moved_here: bool,
}

impl Member {
    /// A member with one session.
    pub(crate) fn new(mut user: User, color_index: usize, key: SessionKey, stamp: Stamp) -> Self {
        user.sessions = 1;
        Member {
            user,
            color_index,
            sessions: vec![key],
            cursor_slot: None,
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

/// How a user changed since the last `presence:diff` (or, for a list view, how it entered,
/// left or changed inside the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Change {
    Joined,
    Left,
    /// Left and came back within one interval: the diff carries both.
    Rejoined,
    Updated,
}

/// Changes folded into one `presence:diff`: each user once, in order of first change.
#[derive(Debug, Default)]
pub(crate) struct Fold {
    pub(crate) order: Vec<UserId>,
    pub(crate) change_of: HashMap<UserId, Change>,
}

impl Fold {
    /// Folds one more change of `user_id` into what the diff will say.
    pub(crate) fn record(&mut self, user_id: &UserId, change: Change) {
        let previous = self.change_of.get(user_id).copied();
        let next = match (previous, change) {
            (None, change) => change,
            // Not nothing: a session that joined in between listed the user in its
            // snapshot, and must hear it left (for the others, an unknown id is a no-op).
            (Some(Change::Joined), Change::Left) => Change::Left,
            (Some(Change::Joined), _) => Change::Joined,
            (Some(Change::Left), Change::Joined) => Change::Rejoined,
            (Some(Change::Left), other) => other,
            (Some(Change::Rejoined), Change::Left) => Change::Left,
            (Some(Change::Rejoined), _) => Change::Rejoined,
            (Some(Change::Updated), Change::Left) => Change::Left,
            (Some(Change::Updated), Change::Joined) => Change::Rejoined,
            (Some(Change::Updated), _) => Change::Updated,
        };
        if previous.is_none() {
            self.order.push(user_id.clone());
        }
        self.change_of.insert(user_id.clone(), next);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Roster {
    /// The listed users (spectators are not).
    pub(crate) members: HashMap<UserId, Member>,
    /// The members by `joinedAt`: snapshots, list windows, pages of the HTTP API.
    pub(crate) order: Order,
    /// Every session held in the room, listed or spectating, by name.
    pub(crate) sessions: HashMap<SessionName, SessionKey>,
    /// This node's sessions by what they see.
    pub(crate) views: Views,
    /// Spectator sessions, on every node.
    pub(crate) spectators: usize,
    /// Whether the numbers changed since the last flush (even back to what it said).
    pub(crate) counts_changed: bool,
    pub(crate) colors: ColorUse,
    /// Users whose cursor moved since the last flush, in order of first move.
    pub(crate) moved: Vec<UserId>,
    /// Roster changes since the last flush, for full-view batch sessions (kept only while
    /// there are any).
    pub(crate) diff: Fold,
    /// What each list-view batch session's next diff says, for those that have one.
    pub(crate) session_diffs: HashMap<SessionKey, Fold>,
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

    /// The user's rank in `joinedAt` order, if listed.
    pub(crate) fn rank(&self, user_id: &UserId) -> Option<usize> {
        let member = self.members.get(user_id)?;
        Some(self.order.rank(member.user.joined_at, user_id))
    }

    /// Lists a new user.
    pub(crate) fn insert_member(&mut self, member: Member) {
        self.counts_changed = true;
        self.order.insert(member.user.joined_at, &member.user.id);
        self.members.insert(member.user.id.clone(), member);
    }

    /// Unlists a user.
    pub(crate) fn remove_member(&mut self, user_id: &UserId) -> Option<Member> {
        let member = self.members.remove(user_id)?;
        self.counts_changed = true;
        self.order.remove(member.user.joined_at, user_id);
        Some(member)
    }

    /// One spectator session more (`true`) or fewer.
    pub(crate) fn count_spectator(&mut self, more: bool) {
        self.counts_changed = true;
        if more {
            self.spectators += 1;
        } else {
            self.spectators = self.spectators.saturating_sub(1);
        }
    }

    /// The numbers `presence:count` carries: listed users, spectator sessions.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.members.len() as u64, self.spectators as u64)
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

    /// Folds one more change of `user_id` into the full-view batch sessions' next diff.
    pub(crate) fn record(&mut self, user_id: &UserId, change: Change) {
        if self.views.full_batch > 0 {
            self.diff.record(user_id, change);
        }
    }

    pub(crate) fn has_pending_flush_work(&self) -> bool {
        !self.moved.is_empty()
            || !self.diff.is_empty()
            || !self.session_diffs.is_empty()
            || (self.counts_changed && self.views.want_counts())
    }

    /// Everyone, in `joinedAt` order.
    pub(crate) fn snapshot(&self) -> Vec<User> {
        self.page(usize::MAX)
    }

    /// The first `limit` users in `joinedAt` order.
    pub(crate) fn page(&self, limit: usize) -> Vec<User> {
        self.order
            .first(limit)
            .filter_map(|id| self.members.get(id))
            .map(|m| m.user.clone())
            .collect()
    }
}
