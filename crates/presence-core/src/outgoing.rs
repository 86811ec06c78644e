//! What leaves the tracker for clients: replies to one connection, roster events to a
//! room's connections, and what batch sessions get instead (a change folded into the
//! room's next `presence:diff`, see `flush.rs`).

use presence_protocol::{ErrorCode, Reference, RoomName, SelfInfo, ServerMessage, User, UserId};

use crate::effect::Effect;
use crate::input::{ConnId, Now};
use crate::roster::{Change, Roster};
use crate::session::{Session, SessionKey};
use crate::tracker::Tracker;

impl Tracker {
    pub(crate) fn user(&self, room: &RoomName, user_id: &UserId) -> Option<User> {
        Some(self.rosters.get(room)?.member(user_id)?.user.clone())
    }

    /// Tells the room's other connections (or its next diff) what the user looks like now.
    pub(crate) fn user_updated(
        &mut self,
        room: &RoomName,
        user_id: &UserId,
        from: impl Into<Option<ConnId>>,
        now: Now,
    ) {
        self.record(room, user_id, Change::Updated, now);
        if let Some(user) = self.user(room, user_id) {
            let message = ServerMessage::UserUpdated {
                room: room.clone(),
                user,
            };
            self.push_event(room, from.into(), message);
        }
    }

    /// Sends a roster event to every non-batch connection of the room but `except`. Batch
    /// connections get it folded into the room's next diff (see [`Tracker::record`]).
    pub(crate) fn push_event(
        &mut self,
        room: &RoomName,
        except: Option<ConnId>,
        message: ServerMessage,
    ) {
        let Some(roster) = self.rosters.get(room) else {
            return;
        };
        let recipients: Vec<ConnId> = roster
            .recipients(&self.sessions)
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

    pub(crate) fn send_current_users(&mut self, conn: ConnId, room: &RoomName, key: SessionKey) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let me = SelfInfo {
            id: session.user_id.clone(),
            session_id: session.id.clone(),
        };
        let users = self
            .rosters
            .get(room)
            .map(Roster::snapshot)
            .unwrap_or_default();
        self.send(
            conn,
            ServerMessage::CurrentUsers {
                room: room.clone(),
                users,
                me,
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
