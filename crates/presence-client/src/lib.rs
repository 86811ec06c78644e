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
//!   the user leave. Only [`Client::close`] stops it. `config.rs` and `event.rs` hold
//!   what goes in and what comes out, `client.rs` the handle, `task.rs` the task, and
//!   `room.rs` what the task keeps per room to get back in.
//! - [`Connection`]: one raw WebSocket that sends `ClientMessage`s and yields
//!   `ServerMessage`s, with no task, no state and no reconnect; a benchmark holds
//!   thousands of them, from chosen local addresses ([`ConnectOptions::bind`]).
//!
//! `wss://` (and the `https://` address a TLS server prints) goes through rustls, trusting
//! the system's roots, or the roots of [`ClientConfig::tls`] / [`ConnectOptions::tls`].
//!
//! ```no_run
//! use presence_client::protocol::{RoomName, ServerMessage, UserId};
//! use presence_client::{Client, ClientConfig, Event, JoinOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The address presenced prints when it starts.
//! let (client, mut events) = Client::connect(ClientConfig::new("http://127.0.0.1:8080")).await?;
//! let room = RoomName::new("my-doc")?;
//! let joined = client.join(&room, JoinOptions::user(UserId::new("u-42")?, "Ada")).await?;
//! println!("{} online", joined.users.len());
//! client.move_cursor(&room, 120.0, 48.0, true)?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(ServerMessage::UserJoined { user, .. }) = event {
//!         println!("{} arrived; {} online", user.name, client.roster(&room).len());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod backoff;
mod client;
mod config;
mod connection;
mod error;
mod event;
mod room;
mod roster;
mod task;
mod url;

pub use backoff::Backoff;
pub use client::{Client, Joined};
pub use config::{ClientConfig, JoinOptions, TokenPlacement};
pub use connection::{ConnectOptions, Connection, DEFAULT_READ_BUFFER_BYTES};
pub use error::{ConnectError, JoinError, RecvError, SendError};
pub use event::{Disconnect, Event, Events};
/// The wire types the client speaks (`presence-protocol`), so an application needs no
/// second dependency for room names, user ids and messages.
pub use presence_protocol as protocol;
pub use roster::Roster;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
pub use url::websocket_url;
