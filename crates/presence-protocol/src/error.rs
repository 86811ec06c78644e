//! Error codes of `presence:error` and the error a frame fails to decode with.

use serde::{Deserialize, Serialize};

use crate::client::Reference;

/// The `code` of a `presence:error`, exactly the contract's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text frame is not JSON.
    InvalidJson,
    /// JSON of the wrong shape: not an object, no string `type`, a field of the wrong kind,
    /// or a binary frame.
    InvalidMessage,
    /// A string `type` this protocol does not know.
    UnknownType,
    /// A room-scoped message for a room this connection has not joined.
    NotJoined,
    /// No valid token, or a `user.id` that differs from the token's subject.
    Unauthorized,
    /// A valid token whose `rooms` claim does not include the room.
    Forbidden,
    /// The room already has `--max-members-per-room` users.
    RoomFull,
    /// A `state` over `--max-state-bytes`.
    TooLarge,
    /// More messages per second than the connection may send.
    RateLimited,
    /// The connection would be in more than `--max-rooms-per-connection` rooms.
    TooManyRooms,
}

impl ErrorCode {
    /// Every code, in the contract's order (for metrics and tests).
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::NotJoined,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RoomFull,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::TooManyRooms,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyRooms => "too_many_rooms",
        }
    }
}

/// A frame that could not be turned into a [`crate::Request`].
///
/// It carries everything the `presence:error` reply needs, including the client's
/// `ref` whenever the frame was readable enough to find one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct DecodeError {
    /// The contract's error code.
    pub code: ErrorCode,
    /// A sentence for the developer reading the error.
    pub message: String,
    /// The frame's `ref`, to echo back.
    pub reference: Option<Reference>,
}
