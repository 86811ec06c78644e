//! List views: which users each session sees, kept cheap in rooms of any size.
//!
//! A session with a list view of `K` sees its own user plus the first `K` other users of
//! the room in `joinedAt` order (ties by user id). Two structures make that cheap:
//!
//! - [`Order`], the room's users by `(joinedAt, id)` in an order-statistics B-tree
//!   (`indexset`, a B-tree whose node sizes are indexed by a Fenwick tree): rank of a user
//!   and the user at a rank in O(log n), the first `K` in O(K).
//! - [`Views`], this node's sessions grouped by view: the full-view ones in one set, the
//!   list-view ones in one set per `K`.
//!
//! A change to user `x` at rank `r` concerns a list session of `K` only if `K >= r`: with
//! `m` the rank of the session's own user, `x` is in its window when `r - [m < r] < K`. So
//! a join at the end of a room of `N` (the usual case: a new user's `joinedAt` is the
//! latest) reaches no list session of `K < N - 1` at all, and an event costs O(log N) plus
//! the sessions that really see it plus the first `K + 2` users (whose own rank decides the
//! boundary case). The user pushed out of a window when `x` enters, or let in when `x`
//! leaves, is one of two ranks per `K`, found by `select`. See docs/architecture.md.

use std::collections::{BTreeMap, HashMap, HashSet};

use presence_protocol::{UserId, View};
use slotmap::SlotMap;

use crate::session::{Session, SessionKey};

/// A room's listed users in `(joinedAt, id)` order, with rank and select.
#[derive(Default)]
pub(crate) struct Order {
    users: indexset::BTreeSet<(u64, UserId)>,
}

impl std::fmt::Debug for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Order")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Order {
    pub(crate) fn insert(&mut self, joined_at: u64, user_id: &UserId) {
        self.users.insert((joined_at, user_id.clone()));
    }

    pub(crate) fn remove(&mut self, joined_at: u64, user_id: &UserId) {
        self.users.remove(&(joined_at, user_id.clone()));
    }

    /// How many users come before this one.
    pub(crate) fn rank(&self, joined_at: u64, user_id: &UserId) -> usize {
        self.users.rank(&(joined_at, user_id.clone()))
    }

    /// The user at `rank`, if the room has that many.
    pub(crate) fn at(&self, rank: usize) -> Option<&UserId> {
        self.users.get_index(rank).map(|(_, id)| id)
    }

    /// The first `n` users, in order.
    pub(crate) fn first(&self, n: usize) -> impl Iterator<Item = &UserId> {
        self.users.iter().take(n).map(|(_, id)| id)
    }
}

/// This node's sessions of a room by what they see. Remote sessions are not here: frames
/// reach only this node's connections.
#[derive(Debug, Default)]
pub(crate) struct Views {
    /// Sessions that see the whole roster.
    pub(crate) full: HashSet<SessionKey>,
    /// Sessions with a list view, by `K`.
    pub(crate) lists: BTreeMap<u16, HashSet<SessionKey>>,
    /// Full-view spectators: with the list views, whoever gets `presence:count`.
    pub(crate) full_spectators: HashSet<SessionKey>,
    /// Full-view sessions that want batches: the room keeps a diff while there are any.
    pub(crate) full_batch: usize,
}

impl Views {
    pub(crate) fn enlist(&mut self, key: SessionKey, session: &Session) {
        match session.view {
            View::Full => {
                self.full.insert(key);
                if session.batch {
                    self.full_batch += 1;
                }
                if session.spectator {
                    self.full_spectators.insert(key);
                }
            }
            View::List(k) => {
                self.lists.entry(k).or_default().insert(key);
            }
        }
    }

    pub(crate) fn delist(&mut self, key: SessionKey, session: &Session) {
        match session.view {
            View::Full => {
                if self.full.remove(&key) && session.batch {
                    self.full_batch = self.full_batch.saturating_sub(1);
                }
                self.full_spectators.remove(&key);
            }
            View::List(k) => {
                if let Some(bucket) = self.lists.get_mut(&k) {
                    bucket.remove(&key);
                    if bucket.is_empty() {
                        self.lists.remove(&k);
                    }
                }
            }
        }
    }

    /// Whether any session here wants `presence:count`.
    pub(crate) fn want_counts(&self) -> bool {
        !self.lists.is_empty() || !self.full_spectators.is_empty()
    }

    /// The sessions that get `presence:count`.
    pub(crate) fn count_recipients(&self) -> impl Iterator<Item = SessionKey> + '_ {
        self.lists
            .values()
            .flatten()
            .chain(self.full_spectators.iter())
            .copied()
    }
}

/// A list session that sees a change, with `K` and the rank of its own user when that
/// user is among the first few (`None`: further down, or a spectator, which has no own
/// entry in its window).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Viewer {
    pub(crate) key: SessionKey,
    pub(crate) k: usize,
    pub(crate) own_rank: Option<usize>,
}

impl Viewer {
    /// The rank, in the order as it is, of the `K`-th other user: the last one this
    /// session sees.
    pub(crate) fn last_seen_rank(&self) -> Option<usize> {
        let k = self.k.checked_sub(1)?;
        Some(match self.own_rank {
            Some(m) if m <= k => k + 1,
            _ => k,
        })
    }

    /// The rank of the first other user this session does not see.
    pub(crate) fn first_unseen_rank(&self) -> usize {
        match self.own_rank {
            Some(m) if m <= self.k => self.k + 1,
            _ => self.k,
        }
    }
}

/// The list sessions of `views` whose window holds the user `x` at rank `r`, leaving out
/// listed sessions of `x` itself (they always see their own user).
pub(crate) fn viewers_of(
    views: &Views,
    order: &Order,
    sessions: &SlotMap<SessionKey, Session>,
    x: &UserId,
    r: usize,
) -> Vec<Viewer> {
    let Ok(from) = u16::try_from(r) else {
        return Vec::new();
    };
    let Some((&k_max, _)) = views.lists.range(from..).next_back() else {
        return Vec::new();
    };
    // Only a session whose own user is among the first K + 1 has a window that differs
    // from "the first K": their ranks decide the boundary case.
    let near: HashMap<&UserId, usize> = order
        .first(usize::from(k_max) + 2)
        .enumerate()
        .map(|(rank, id)| (id, rank))
        .collect();
    let mut viewers = Vec::new();
    for (&k, keys) in views.lists.range(from..) {
        let k = usize::from(k);
        for &key in keys {
            let Some(session) = sessions.get(key) else {
                continue;
            };
            if !session.spectator && &session.user_id == x {
                continue;
            }
            let own_rank = if session.spectator {
                None
            } else {
                near.get(&session.user_id).copied()
            };
            if k > r || own_rank.is_some_and(|m| m < r) {
                viewers.push(Viewer { key, k, own_rank });
            }
        }
    }
    viewers
}

/// The first `k` users a session sees besides its own, plus its own if listed, in order.
pub(crate) fn window<'a>(order: &'a Order, own: Option<&'a UserId>, k: usize) -> Vec<&'a UserId> {
    let mut others = 0;
    let mut users = Vec::with_capacity(k + 1);
    for id in order.first(k + 1) {
        if Some(id) == own {
            users.push(id);
        } else if others < k {
            others += 1;
            users.push(id);
        }
    }
    if let Some(own) = own {
        if !users.contains(&own) {
            users.push(own);
        }
    }
    users
}
