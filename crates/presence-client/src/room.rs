//! One room the client has joined, seen from both sides of the task: the [`RoomEntry`]
//! the task keeps to get back in after a reconnect, and the [`RoomView`] the handles read.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use presence_protocol::{
    ClientMessage, Cursor, CursorPosition, Join, JoinUser, RoomName, SelfInfo, State, AWAY_KEY,
};
use tokio::sync::oneshot;

use crate::client::Joined;
use crate::config::JoinOptions;
use crate::error::JoinError;
use crate::roster::Roster;

/// A room the client wants to be in, with what it takes to get back in.
#[derive(Debug)]
pub(crate) struct RoomEntry {
    /// The join to (re)send. After `currentUsers` it carries the server's user id and
    /// session id, so a rejoin restores; its `state` follows every update, so a rejoin
    /// after the grace ran out starts from the latest state instead of the first one.
    pub(crate) join: Join,
    /// The `ref` of the last join sent, to match a `presence:error` to this room.
    pub(crate) join_ref: u64,
    /// Callers of [`Client::join`](crate::Client::join) waiting for `currentUsers`.
    pub(crate) waiters: Vec<oneshot::Sender<Result<Joined, JoinError>>>,
    /// Updates made while disconnected, merged; sent after the rejoin.
    pub(crate) offline_update: Option<State>,
    /// The latest cursor position set while disconnected.
    pub(crate) offline_cursor: Option<Cursor>,
}

impl RoomEntry {
    /// A room not wanted before: its join names the room and carries the token.
    pub(crate) fn new(room: RoomName, token: Option<String>, join_ref: u64) -> Self {
        RoomEntry {
            join: Join {
                room,
                user: JoinUser::default(),
                state: None,
                token,
                batch: false,
                view: None,
                spectator: false,
            },
            join_ref,
            waiters: Vec::new(),
            offline_update: None,
            offline_cursor: None,
        }
    }

    /// Folds a caller's join into the one held, adds the caller to the waiters, and
    /// returns the join to send under `reference`.
    pub(crate) fn want(
        &mut self,
        options: JoinOptions,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
        reference: u64,
    ) -> Join {
        let join = &mut self.join;
        let JoinOptions {
            user_id,
            name,
            state,
            session_id,
            batch,
            view,
            spectator,
        } = options;
        if user_id.is_some() && user_id != join.user.id {
            // Another user in the same room: the held session is not theirs to restore.
            join.user.session_id = None;
            join.user.id = user_id;
        }
        if name.is_some() {
            join.user.name = name;
        }
        if session_id.is_some() {
            join.user.session_id = session_id;
        }
        if let Some(state) = state {
            merge(join.state.get_or_insert_with(State::new), &state);
        }
        join.batch = batch;
        join.view = view;
        join.spectator = spectator;
        self.join_ref = reference;
        self.waiters.push(reply);
        // A repeated join carries the whole state too: the server merges it into the
        // same values, and the client needs no second kind of join.
        self.join.clone()
    }
}

/// What callers can read without asking the task: one joined room.
#[derive(Debug)]
pub(crate) struct RoomView {
    pub(crate) roster: Roster,
    pub(crate) me: SelfInfo,
}

impl RoomView {
    /// Applies this client's own update or cursor to its own user in the roster: the
    /// server never sends a user's changes back to the connection that made them.
    /// `away` is left to the server, which shows it only when every session is away.
    pub(crate) fn apply_own(&mut self, message: &ClientMessage) {
        let me = self.me.id.clone();
        match message {
            ClientMessage::Update(update) => {
                self.roster.edit(me.as_str(), |user| {
                    for (key, value) in &update.state {
                        if key == AWAY_KEY {
                            continue;
                        }
                        if value.is_null() {
                            user.state.remove(key);
                        } else {
                            user.state.insert(key.clone(), value.clone());
                        }
                    }
                });
            }
            ClientMessage::Cursor(cursor) => {
                self.roster.edit(me.as_str(), |user| {
                    user.cursor = CursorPosition {
                        x: cursor.x,
                        y: cursor.y,
                        visible: cursor.visible,
                    };
                });
            }
            _ => {}
        }
    }
}

/// The joined rooms as the task last saw them, shared between the task and the handles.
pub(crate) type RoomViews = HashMap<RoomName, RoomView>;

/// Locks the shared views for a moment.
pub(crate) fn lock_views(shared: &Mutex<RoomViews>) -> MutexGuard<'_, RoomViews> {
    // The maps are replaced wholesale or by single upserts, so a panic elsewhere
    // cannot leave them half-written: a poisoned lock is still safe to read.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `presence:update`'s shallow merge: a `null` deletes the key.
pub(crate) fn merge(into: &mut State, update: &State) {
    for (key, value) in update {
        if value.is_null() {
            into.remove(key);
        } else {
            into.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_follows_the_update_rules() {
        let mut state: State = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        merge(
            &mut state,
            &serde_json::from_str(r#"{"b":null,"c":3}"#).unwrap(),
        );
        assert_eq!(
            state,
            serde_json::from_str::<State>(r#"{"a":1,"c":3}"#).unwrap()
        );
    }
}
