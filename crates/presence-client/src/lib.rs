//! A typed async Rust client for presenced, the real-time presence server.
//!
//! It sits beside the browser SDK (`clients/js`) as the other consumer of the wire
//! contract (`shared/PROTOCOL.md`), and speaks it through the types of
//! `presence-protocol`, never through JSON of its own. The server's integration tests
//! and the `presence-bench` benchmarks drive the server with it. Two layers:
//!
//! - [`Client`]: what an application wants. One tokio task per client owns the
//!   WebSocket; it keeps a [`Roster`] per joined room, yields [`Event`]s, reconnects
//!   with capped, fully jittered exponential [`Backoff`] when the server restarts (close
//!   1012) or the network fails, and rejoins every room naming the session the server
//!   told it in `presence:currentUsers.self.sessionId`, so the server restores the
//!   session (`presence:restored`, then `presence:currentUsers`) and nobody else sees
//!   the user leave. Only [`Client::close`] stops it.
//! - [`Connection`]: one raw WebSocket that sends `ClientMessage`s and yields
//!   `ServerMessage`s, with no task, no state and no reconnect; a benchmark holds
//!   thousands of them, from chosen local addresses ([`ConnectOptions::bind`]).
//!
//! The client does not do TLS: it is meant for the loopback, the data centre, and tests.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod backoff;
mod client;
mod connection;
mod error;
mod roster;
mod url;

pub use backoff::Backoff;
pub use client::{
    Client, ClientConfig, Disconnect, Event, Events, JoinOptions, Joined, TokenPlacement,
};
pub use connection::{ConnectOptions, Connection, DEFAULT_READ_BUFFER_BYTES};
pub use error::{ConnectError, JoinError, RecvError, SendError};
pub use roster::Roster;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
pub use url::websocket_url;
