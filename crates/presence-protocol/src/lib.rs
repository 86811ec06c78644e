//! Wire types of the presenced protocol, version 1 (`shared/PROTOCOL.md`).
//!
//! This crate is the vocabulary every other part of the system shares: the server's
//! core and shell speak it, the Rust client sends and receives it, and the golden
//! frames in `tests/fixtures` pin it for the JavaScript SDK too. It holds data and
//! the rules for reading a frame off the wire, nothing else: no I/O, no clock.
//!
//! Decoding is deliberately hand-guided ([`decode`]) rather than a plain
//! `#[serde(tag = "type")]` derive, because the contract tells apart text that is
//! not JSON (`invalid_json`), JSON of the wrong shape (`invalid_message`) and an
//! unknown `type` (`unknown_type`), and echoes the client's `ref` on every error.
//! It also walks each object itself: serde's derive would read an array into a struct
//! by position, and give up on a repeated key before the `ref` was known.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

#[cfg(feature = "arbitrary")]
pub mod arbitrary;
mod client;
mod error;
mod names;
mod server;

pub use client::{
    decode, ClientMessage, Cursor, Join, JoinUser, Leave, LeaveReason, Reference, Request, Update,
    View,
};
pub use error::{DecodeError, ErrorCode};
pub use names::{InvalidName, RoomName, SessionId, UserId, MAX_ID_CHARS, MAX_NAME_CHARS};
pub use server::{CursorEntry, CursorFrames, CursorPosition, SelfInfo, ServerMessage, User};

/// A user's custom presence state: a JSON object, shallow-merged by `presence:update`.
pub type State = serde_json::Map<String, serde_json::Value>;

/// The reserved `state` key that carries "away": see docs/protocol.md.
///
/// Each session reports its own value; the server shows `away: true` for a user only
/// while every one of that user's sessions in the room reports it.
pub const AWAY_KEY: &str = "away";
