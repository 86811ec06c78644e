//! What leaves the tracker for clients: replies to one connection, and roster events to
//! the room's connections that see the change, each through its view.
//!
//! A full-view session gets every event (or, with batches, the room's next diff, see
//! `flush.rs`). A list-view session gets only what enters, leaves or changes inside its
//! window (`view.rs`), with batches folded into its own next diff.

use std::collections::HashMap;

use presence_protocol::{
    ErrorCode, Reference, RoomName, SelfInfo, ServerMessage, User, UserId, View,
};

use crate::effect::Effect;
use crate::input::{ConnId, Now};
use crate::roster::Change;
use crate::session::{Session, SessionKey};
use crate::tracker::Tracker;
use crate::view::{viewers_of, window, Order, Viewer};

/// One list session's news about one user.
type Delivery = (SessionKey, Change, UserId);

/// The list sessions that saw a user who is about to leave, with what to tell them once
/// it is gone.
pub(crate) struct Departure {
    user_id: UserId,
    rank: usize,
    viewers: Vec<Viewer>,
}

impl Tracker {
    pub(crate) fn user(&self, room: &RoomName, user_id: &UserId) -> Option<User> {
        Some(self.rosters.get(room)?.member(user_id)?.user.clone())
    }

    /// A user is listed now (already in the roster and its order): tells whoever sees it.
    pub(crate) fn user_entered(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        except: Option<ConnId>,
        now: Now,
    ) {
        self.record(room, user_id, Change::Joined, now);
        if let Some(user) = self.user(room, user_id) {
            let message = ServerMessage::UserJoined {
                room: room.clone(),
                user,
            };
            self.push_full(room, except, message);
        }
        self.entered_windows(room, user_id, now);
    }

    /// The list sessions that see `user_id` now that it is listed: it enters their window,
    /// and the user it pushes past their last place leaves it.
    fn entered_windows(&mut self, room: &RoomName, user_id: &UserId, now: Now) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let Some(rank) = roster.rank(user_id) else {
            return;
        };
        let viewers = viewers_of(&roster.views, &roster.order, &self.sessions, user_id, rank);
        let mut deliveries = Vec::with_capacity(viewers.len() * 2);
        for viewer in viewers {
            deliveries.push((viewer.key, Change::Joined, user_id.clone()));
            if let Some(pushed_out) = roster.order.at(viewer.first_unseen_rank()) {
                deliveries.push((viewer.key, Change::Left, pushed_out.clone()));
            }
        }
        self.deliver(room, deliveries, None, now);
    }

    /// Before a user is unlisted: who sees it now.
    pub(crate) fn departure(&self, room: &RoomName, user_id: &UserId) -> Option<Departure> {
        let roster = self.rosters.get(room)?;
        let rank = roster.rank(user_id)?;
        let viewers = viewers_of(&roster.views, &roster.order, &self.sessions, user_id, rank);
        Some(Departure {
            user_id: user_id.clone(),
            rank,
            viewers,
        })
    }

    /// After a user is unlisted: tells whoever saw it, and lets the next user into each
    /// window it left.
    pub(crate) fn user_exited(&mut self, room: &RoomName, departure: Departure, now: Now) {
        let Departure {
            user_id,
            rank,
            viewers,
        } = departure;
        self.record(room, &user_id, Change::Left, now);
        let message = ServerMessage::UserLeft {
            room: room.clone(),
            user_id: user_id.clone(),
        };
        self.push_full(room, None, message);
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let deliveries = departure_news(&roster.order, &user_id, rank, viewers);
        self.deliver(room, deliveries, None, now);
    }

    /// Tells whoever sees the user (or their next diff) what it looks like now.
    pub(crate) fn user_updated(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        from: impl Into<Option<ConnId>>,
        now: Now,
    ) {
        let from = from.into();
        self.record(room, user_id, Change::Updated, now);
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let Some(member) = roster.member(user_id) else {
            return;
        };
        let user = member.user.clone();
        let rank = roster.order.rank(user.joined_at, user_id);
        let mut deliveries: Vec<Delivery> =
            viewers_of(&roster.views, &roster.order, &self.sessions, user_id, rank)
                .into_iter()
                .map(|viewer| (viewer.key, Change::Updated, user_id.clone()))
                .collect();
        // The user's own list sessions always see it.
        for &key in member.sessions() {
            let own_list = self
                .sessions
                .get(key)
                .is_some_and(|s| s.is_local() && matches!(s.view, View::List(_)));
            if own_list {
                deliveries.push((key, Change::Updated, user_id.clone()));
            }
        }
        let message = ServerMessage::UserUpdated {
            room: room.clone(),
            user,
        };
        self.push_full(room, from, message);
        self.deliver(room, deliveries, from, now);
    }

    /// A user's `joinedAt` changed (two nodes listed it first during a partition): it
    /// moves in the order, out of some list windows and into others. The order still
    /// holds it at `old_joined_at`.
    pub(crate) fn user_reordered(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        old_joined_at: u64,
        now: Now,
    ) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let Some(new_joined_at) = roster.member(user_id).map(|m| m.user.joined_at) else {
            return;
        };
        let rank = roster.order.rank(old_joined_at, user_id);
        let viewers = viewers_of(&roster.views, &roster.order, &self.sessions, user_id, rank);
        let Some(roster) = self.rosters.get_mut(room) else {
            return;
        };
        roster.order.remove(old_joined_at, user_id);
        let deliveries = departure_news(&roster.order, user_id, rank, viewers);
        roster.order.insert(new_joined_at, user_id);
        self.deliver(room, deliveries, None, now);
        self.entered_windows(room, user_id, now);
    }

    /// Sends list sessions their news: at once for those without batches (one frame per
    /// distinct message), folded into their own next diff for the others.
    fn deliver(
        &mut self,
        room: &RoomName,
        deliveries: Vec<Delivery>,
        except: Option<ConnId>,
        now: Now,
    ) {
        if deliveries.is_empty() {
            return;
        }
        let mut frames: HashMap<(Change, UserId), Vec<ConnId>> = HashMap::new();
        let mut order: Vec<(Change, UserId)> = Vec::new();
        let mut folded = false;
        for (key, change, user_id) in deliveries {
            let Some(session) = self.sessions.get(key) else {
                continue;
            };
            let Some(conn) = session.conn() else {
                continue;
            };
            if Some(conn) == except {
                continue;
            }
            if session.batch {
                if let Some(roster) = self.rosters.get_mut(room) {
                    roster
                        .session_diffs
                        .entry(key)
                        .or_default()
                        .record(&user_id, change);
                    folded = true;
                }
                continue;
            }
            let entry = frames.entry((change, user_id));
            if matches!(entry, std::collections::hash_map::Entry::Vacant(_)) {
                order.push(entry.key().clone());
            }
            entry.or_default().push(conn);
        }
        if folded {
            self.arm_flush(room, now);
        }
        for (change, user_id) in order {
            let Some(recipients) = frames.remove(&(change, user_id.clone())) else {
                continue;
            };
            let message = match change {
                Change::Left => ServerMessage::UserLeft {
                    room: room.clone(),
                    user_id,
                },
                Change::Joined | Change::Rejoined => match self.user(room, &user_id) {
                    Some(user) => ServerMessage::UserJoined {
                        room: room.clone(),
                        user,
                    },
                    None => continue,
                },
                Change::Updated => match self.user(room, &user_id) {
                    Some(user) => ServerMessage::UserUpdated {
                        room: room.clone(),
                        user,
                    },
                    None => continue,
                },
            };
            self.effects.push_back(Effect::Broadcast {
                recipients,
                message,
            });
        }
    }

    /// Sends a roster event to every full-view connection of the room without batches but
    /// `except`. Batch connections get it folded into the room's next diff.
    fn push_full(&mut self, room: &RoomName, except: Option<ConnId>, message: ServerMessage) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let recipients: Vec<ConnId> = roster
            .views
            .full
            .iter()
            .filter_map(|&key| self.sessions.get(key))
            .filter(|session| !session.batch)
            .filter_map(Session::conn)
            .filter(|&conn| Some(conn) != except)
            .collect();
        if !recipients.is_empty() {
            self.effects.push_back(Effect::Broadcast {
                recipients,
                message,
            });
        }
    }

    pub(crate) fn send(&mut self, conn: ConnId, message: ServerMessage) {
        self.effects.push_back(Effect::Send { conn, message });
    }

    /// The session's window of the room, with the room's numbers.
    pub(crate) fn send_current_users(&mut self, conn: ConnId, room: &RoomName, key: SessionKey) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let me = SelfInfo {
            id: session.user_id.clone(),
            session_id: session.id.clone(),
        };
        let (users, (count, spectators)) = match self.rosters.get(room) {
            None => (Vec::new(), (0, 0)),
            Some(roster) => {
                let users = match session.view {
                    View::Full => roster.snapshot(),
                    View::List(k) => {
                        let own = (!session.spectator)
                            .then_some(&session.user_id)
                            .filter(|id| roster.members.contains_key(*id));
                        window(&roster.order, own, usize::from(k))
                            .into_iter()
                            .filter_map(|id| roster.member(id))
                            .map(|m| m.user.clone())
                            .collect()
                    }
                };
                (users, roster.counts())
            }
        };
        self.send(
            conn,
            ServerMessage::CurrentUsers {
                room: room.clone(),
                users,
                me,
                count,
                spectators,
            },
        );
    }

    pub(crate) fn not_joined(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        reference: Option<Reference>,
    ) {
        let message = format!("this connection has not joined room {room}");
        self.send(
            conn,
            ServerMessage::error(ErrorCode::NotJoined, message, reference),
        );
    }
}

/// What the viewers of a user who was at `rank` hear once it is out of the order: it left,
/// and the next user in order comes into each window it left.
fn departure_news(
    order: &Order,
    user_id: &UserId,
    rank: usize,
    viewers: Vec<Viewer>,
) -> Vec<Delivery> {
    let mut deliveries = Vec::with_capacity(viewers.len() * 2);
    for mut viewer in viewers {
        deliveries.push((viewer.key, Change::Left, user_id.clone()));
        // Ranks after the departure: everyone behind it moved up one.
        viewer.own_rank = viewer.own_rank.map(|m| if m > rank { m - 1 } else { m });
        if let Some(entrant) = viewer.last_seen_rank().and_then(|last| order.at(last)) {
            deliveries.push((viewer.key, Change::Joined, entrant.clone()));
        }
    }
    deliveries
}
