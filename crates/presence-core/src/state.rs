//! Names and custom state: what a user shows besides presence itself.
//!
//! A user's `state` is shared by all of their sessions in a room and merged key by key;
//! `away` is the exception. Each session reports its own, and the user shows as away only
//! while every session is. Changes carry a [`Stamp`](crate::Stamp) so that in cluster mode
//! the newest write wins on every node.

use std::io::Write;

use presence_protocol::{ErrorCode, Reference, RoomName, ServerMessage, State, UserId, AWAY_KEY};
use serde_json::Value;

use crate::input::{ConnId, Now};
use crate::remote::next_stamp;
use crate::session::SessionKey;
use crate::tracker::Tracker;

/// A request the core turns down, before the client's `ref` is attached.
pub(crate) struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    pub(crate) fn reply(self, reference: &Option<Reference>) -> ServerMessage {
        ServerMessage::error(self.code, self.message, reference.clone())
    }
}

impl Tracker {
    /// Splits a client's state into the shared part and this session's own `away` report.
    #[allow(clippy::type_complexity)]
    pub(crate) fn split_state(
        &self,
        state: Option<State>,
    ) -> Result<(Option<State>, Option<bool>), Refusal> {
        let Some(mut state) = state else {
            return Ok((None, None));
        };
        self.check_state_size(&state)?;
        let away = match state.remove(AWAY_KEY) {
            None => None,
            Some(Value::Null) => Some(false),
            Some(Value::Bool(away)) => Some(away),
            Some(_) => {
                let message = "state.away is reserved and must be true, false or null".to_owned();
                return Err(Refusal {
                    code: ErrorCode::InvalidMessage,
                    message,
                });
            }
        };
        Ok((Some(state), away))
    }

    fn check_state_size(&self, state: &State) -> Result<(), Refusal> {
        let bytes = serialized_len(state);
        if bytes > self.config.max_state_bytes {
            let message = format!(
                "state is {bytes} bytes, more than the limit of {}",
                self.config.max_state_bytes
            );
            return Err(Refusal {
                code: ErrorCode::TooLarge,
                message,
            });
        }
        Ok(())
    }

    /// Merges `shared` into the user's state and records this session's `away`; tells the
    /// others if what they see changed. Nothing is applied when the result is too large.
    pub(crate) fn apply_state(
        &mut self,
        key: SessionKey,
        shared: Option<State>,
        away: Option<bool>,
        from: ConnId,
        now: Now,
    ) -> Result<(), Refusal> {
        let Some(session) = self.sessions.get(key) else {
            return Ok(());
        };
        let (room, user_id) = (session.room.clone(), session.user_id.clone());
        let Some(member) = self.rosters.get(&room).and_then(|r| r.member(&user_id)) else {
            return Ok(());
        };
        let mut merged = member.user.state.clone();
        merged.remove(AWAY_KEY);
        for (name, value) in shared.unwrap_or_default() {
            if value.is_null() {
                merged.remove(&name);
            } else {
                merged.insert(name, value);
            }
        }
        self.check_state_size(&merged)?;
        if let Some(away) = away {
            if let Some(session) = self.sessions.get_mut(key) {
                session.away = away;
            }
        }
        let node = self.config.cluster.map(|c| c.node);
        let Some(member) = self.member_mut(&room, &user_id) else {
            return Ok(());
        };
        let was_away = member.user.state.get(AWAY_KEY).cloned();
        if let Some(flag) = was_away {
            merged.insert(AWAY_KEY.to_owned(), flag);
        }
        let state_changed = member.user.state != merged;
        member.user.state = merged;
        if state_changed {
            member.stamp = next_stamp(member.stamp, now, node);
        }
        let away_changed = self.refresh_away(&room, &user_id);
        if state_changed || away_changed {
            self.announce_user(&room, &user_id);
            // Only a change others can see is broadcast.
            self.user_updated(&room, &user_id, Some(from), now);
        }
        Ok(())
    }

    /// Recomputes the user's visible `away` from their sessions; true if it changed.
    pub(crate) fn refresh_away(&mut self, room: &RoomName, user_id: &UserId) -> bool {
        let Some(roster) = self.rosters.get_mut(room) else {
            return false;
        };
        let Some(member) = roster.member_mut(user_id) else {
            return false;
        };
        let sessions = &self.sessions;
        let all_away = !member.sessions().is_empty()
            && member
                .sessions()
                .iter()
                .all(|&k| sessions.get(k).is_some_and(|s| s.away));
        let was_away = member.user.state.get(AWAY_KEY) == Some(&Value::Bool(true));
        if all_away == was_away {
            return false;
        }
        if all_away {
            member
                .user
                .state
                .insert(AWAY_KEY.to_owned(), Value::Bool(true));
        } else {
            member.user.state.remove(AWAY_KEY);
        }
        true
    }

    /// Renames the user if `name` is given and differs; true if it did.
    pub(crate) fn set_name(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        name: Option<&str>,
        now: Now,
    ) -> bool {
        let Some(name) = name else { return false };
        let node = self.config.cluster.map(|c| c.node);
        let Some(member) = self.member_mut(room, user_id) else {
            return false;
        };
        if member.user.name == name {
            return false;
        }
        member.user.name = name.to_owned();
        member.stamp = next_stamp(member.stamp, now, node);
        true
    }
}

/// The size of `state` as JSON, without writing it anywhere.
fn serialized_len(state: &State) -> usize {
    struct Counter(usize);
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, state) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}
