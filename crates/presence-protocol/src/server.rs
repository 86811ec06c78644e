//! Messages from server to client.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::client::Reference;
use crate::error::ErrorCode;
use crate::names::{RoomName, SessionId, UserId};
use crate::State;

/// A user as every client sees it: one entry per room however many sessions it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The display name (the id when the user gave none).
    pub name: String,
    /// `#RRGGBB`, assigned by the server, readable behind white initials.
    pub color: String,
    /// When the user's first current session arrived, Unix milliseconds.
    pub joined_at: u64,
    /// The last sign of life from any of the user's sessions, Unix milliseconds.
    pub last_seen: u64,
    /// The latest cursor position.
    pub cursor: CursorPosition,
    /// The custom state.
    pub state: State,
    /// How many sessions (tabs, devices) the user has in this room.
    pub sessions: u32,
}

/// A cursor position inside [`User`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CursorPosition {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Whether the pointer is over the board.
    pub visible: bool,
}

impl Default for CursorPosition {
    fn default() -> Self {
        // Nobody has pointed anywhere yet: hidden at the origin, as the seed's client assumes.
        CursorPosition {
            x: 0.0,
            y: 0.0,
            visible: false,
        }
    }
}

/// One entry of `presence:cursors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorEntry {
    /// Whose cursor.
    pub user_id: UserId,
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Whether the pointer is over the board.
    pub visible: bool,
}

/// The joiner's own identity, in `presence:currentUsers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfInfo {
    /// The user id the server settled on (generated `anon-…`, or the token's `sub`).
    pub id: UserId,
    /// The session to name when reconnecting, to restore instead of rejoining.
    pub session_id: SessionId,
}

/// A message from server to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// The whole roster, to the joiner after every successful join or restore.
    #[serde(rename = "presence:currentUsers")]
    CurrentUsers {
        /// The room joined.
        room: RoomName,
        /// Everyone in the room, the joiner included.
        users: Vec<User>,
        /// Who the joiner is.
        #[serde(rename = "self")]
        me: SelfInfo,
        /// Distinct users listed in the room, the joiner included (protocol 1.1).
        #[serde(default)]
        count: u64,
        /// Sessions in the room that joined as spectators (protocol 1.1).
        #[serde(default)]
        spectators: u64,
    },
    /// How many are in the room, for list views and spectators (protocol 1.1): at most
    /// once per cursor interval, when either number changed.
    #[serde(rename = "presence:count")]
    Count {
        /// The room.
        room: RoomName,
        /// Distinct users listed in the room.
        count: u64,
        /// Sessions that joined as spectators.
        spectators: u64,
    },
    /// A user's first session arrived.
    #[serde(rename = "presence:userJoined")]
    UserJoined {
        /// The room.
        room: RoomName,
        /// The new user.
        user: User,
    },
    /// A user's last session is gone.
    #[serde(rename = "presence:userLeft")]
    UserLeft {
        /// The room.
        room: RoomName,
        /// Who left.
        #[serde(rename = "userId")]
        user_id: UserId,
    },
    /// The rejoining client's held session was restored; `currentUsers` follows.
    #[serde(rename = "presence:restored")]
    Restored {
        /// The room.
        room: RoomName,
        /// The user as held: same color, joinedAt, state and cursor.
        user: User,
        /// The restored session.
        #[serde(rename = "sessionId")]
        session_id: SessionId,
    },
    /// A user's state, name or away flag changed.
    #[serde(rename = "presence:userUpdated")]
    UserUpdated {
        /// The room.
        room: RoomName,
        /// The user after the change.
        user: User,
    },
    /// The latest cursor positions of the users who moved during one interval.
    #[serde(rename = "presence:cursors")]
    Cursors {
        /// The room.
        room: RoomName,
        /// One entry per user that moved.
        cursors: Vec<CursorEntry>,
    },
    /// Roster changes during one interval, for clients that joined with `batch: true`.
    #[serde(rename = "presence:diff")]
    Diff {
        /// The room.
        room: RoomName,
        /// Users who arrived (apply after `left`).
        joined: Vec<User>,
        /// Users who are gone (apply first).
        left: Vec<UserId>,
        /// Users whose data changed (apply last).
        updated: Vec<User>,
    },
    /// The client's message failed; the connection stays usable.
    #[serde(rename = "presence:error")]
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A sentence for the developer.
        message: String,
        /// The failing message's `ref`.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none", default)]
        reference: Option<Reference>,
    },
}

impl ServerMessage {
    /// Serializes the message once; the server shares the text among all recipients.
    pub fn encode(&self) -> String {
        // Every field is a string, number, bool or string-keyed map, so serde_json cannot
        // fail here; the fallback exists only so no panic path is compiled in.
        serde_json::to_string(self).unwrap_or_else(|error| {
            format!(
                r#"{{"type":"presence:error","code":"invalid_message","message":"encode failed: {}"}}"#,
                error.to_string().replace('"', "'")
            )
        })
    }

    /// Reads a server frame (used by clients and tests).
    pub fn decode(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The wire `type`, for logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::CurrentUsers { .. } => "presence:currentUsers",
            ServerMessage::UserJoined { .. } => "presence:userJoined",
            ServerMessage::UserLeft { .. } => "presence:userLeft",
            ServerMessage::Restored { .. } => "presence:restored",
            ServerMessage::UserUpdated { .. } => "presence:userUpdated",
            ServerMessage::Count { .. } => "presence:count",
            ServerMessage::Cursors { .. } => "presence:cursors",
            ServerMessage::Diff { .. } => "presence:diff",
            ServerMessage::Error { .. } => "presence:error",
        }
    }

    /// A `presence:error` frame.
    pub fn error(
        code: ErrorCode,
        message: impl Into<String>,
        reference: Option<Reference>,
    ) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            reference,
        }
    }
}

/// The `presence:cursors` frame of one room for one interval, encoded once with every
/// entry, and where each entry sits in it.
///
/// A mover never receives its own entry, so its frame is the shared one with a hole: the
/// bytes of [`CursorFrames::hole`] left out. A server writes the two sides of the hole
/// straight from the shared buffer (`writev`), so N recipients cost one encoding and no
/// copies.
#[derive(Debug, Clone)]
pub struct CursorFrames {
    text: String,
    /// For each entry, the bytes to leave out: the entry and the comma after it, or the
    /// comma before it for the last one.
    holes: Vec<Range<usize>>,
}

impl CursorFrames {
    /// Encodes the frame with every entry.
    pub fn new(room: &RoomName, cursors: &[CursorEntry]) -> Self {
        let room = serde_json::to_string(room).unwrap_or_else(|_| String::from("\"\""));
        // Entries are written straight into the frame's buffer, which serde_json fills
        // with UTF-8 only.
        let mut text: Vec<u8> = Vec::with_capacity(48 + room.len() + cursors.len() * 72);
        text.extend_from_slice(br#"{"type":"presence:cursors","room":"#);
        text.extend_from_slice(room.as_bytes());
        text.extend_from_slice(br#","cursors":["#);
        let mut spans = Vec::with_capacity(cursors.len());
        for (index, entry) in cursors.iter().enumerate() {
            if index > 0 {
                text.push(b',');
            }
            let start = text.len();
            if serde_json::to_writer(&mut text, entry).is_err() {
                // Cannot happen for plain data; leave an empty object rather than a gap.
                text.truncate(start);
                text.extend_from_slice(b"{}");
            }
            spans.push(start..text.len());
        }
        text.extend_from_slice(b"]}");
        let text = String::from_utf8(text).unwrap_or_default();
        let holes = spans
            .iter()
            .enumerate()
            .map(|(index, span)| match spans.get(index + 1) {
                Some(next) => span.start..next.start,
                // The last entry takes the comma before it, if it has a neighbour.
                None if index > 0 => spans[index - 1].end..span.end,
                None => span.clone(),
            })
            .collect();
        CursorFrames { text, holes }
    }

    /// The frame with every entry.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The bytes of [`CursorFrames::text`] to leave out for a recipient whose own entry is
    /// the one at `index`; the two sides of it are valid UTF-8 on their own.
    pub fn hole(&self, index: usize) -> Option<Range<usize>> {
        self.holes.get(index).cloned()
    }

    /// The frame with every entry, and each entry's hole (as [`CursorFrames::hole`]).
    pub fn into_parts(self) -> (String, Vec<Range<usize>>) {
        (self.text, self.holes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_cursor_frames_equal_encoded_messages() {
        let room = RoomName::new("board/1").expect("room");
        let entry = |id: &str, x: f64| CursorEntry {
            user_id: UserId::new(id).expect("id"),
            x,
            y: 0.5,
            visible: true,
        };
        let all = [entry("a", 1.0), entry("b\"q", 2.5), entry("c", -3.0)];
        for count in 0..=all.len() {
            let cursors = &all[..count];
            let frames = CursorFrames::new(&room, cursors);
            let whole = ServerMessage::Cursors {
                room: room.clone(),
                cursors: cursors.to_vec(),
            };
            assert_eq!(frames.text(), whole.encode());
            for skip in 0..count {
                let mut expected = cursors.to_vec();
                expected.remove(skip);
                let message = ServerMessage::Cursors {
                    room: room.clone(),
                    cursors: expected,
                }
                .encode();
                let hole = frames.hole(skip).expect("every entry has a hole");
                let text = frames.text();
                assert_eq!(
                    format!("{}{}", &text[..hole.start], &text[hole.end..]),
                    message,
                    "{count} entries, skip {skip}"
                );
            }
            assert_eq!(frames.hole(count), None);
        }
    }
}
