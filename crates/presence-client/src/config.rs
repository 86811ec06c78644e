//! How a [`Client`](crate::Client) connects, reconnects and joins: the settings a caller
//! chooses before anything goes on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use presence_protocol::{SessionId, State, UserId, View};

use crate::backoff::Backoff;

/// Where the client puts its token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenPlacement {
    /// In every `presence:join` (the default: it stays out of proxy access logs).
    #[default]
    Join,
    /// As `?token=` on the `/ws` URL.
    Query,
    /// Both.
    Both,
}

/// How a [`Client`](crate::Client) connects and reconnects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port/ws`, or the `http://ADDR` the server prints when it starts.
    pub url: String,
    /// A JWT, for servers with authentication.
    pub token: Option<String>,
    /// Where [`ClientConfig::token`] goes.
    pub token_placement: TokenPlacement,
    /// The local address to connect from (e.g. `127.0.0.2:0`).
    pub bind: Option<SocketAddr>,
    /// Extra headers on every upgrade request, e.g. an `Origin` the server allows.
    pub headers: Vec<(String, String)>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// A limit on each connect attempt (TCP connect plus handshake).
    pub connect_timeout: Duration,
    /// How many events may wait in [`Events`](crate::Events). When it is full the client
    /// stops reading the socket until the caller catches up; drop [`Events`](crate::Events)
    /// if you only read rosters.
    pub event_capacity: usize,
    /// Seeds the backoff jitter (from the OS when `None`), so tests can replay delays.
    pub seed: Option<u64>,
    /// TLS settings for `wss://` (a private CA's roots, say); the system's roots when
    /// `None`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl ClientConfig {
    /// Defaults for `url`: no token, 250 ms to 30 s backoff, 10 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            token: None,
            token_placement: TokenPlacement::default(),
            bind: None,
            headers: Vec::new(),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            event_capacity: 1024,
            seed: None,
            tls: None,
        }
    }

    /// Sets the token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The token to put on the `/ws` URL, if it goes there.
    pub(crate) fn url_token(&self) -> Option<&str> {
        match self.token_placement {
            TokenPlacement::Query | TokenPlacement::Both => self.token.as_deref(),
            TokenPlacement::Join => None,
        }
    }

    /// The token to put in every `presence:join`, if it goes there.
    pub(crate) fn join_token(&self) -> Option<String> {
        match self.token_placement {
            TokenPlacement::Join | TokenPlacement::Both => self.token.clone(),
            TokenPlacement::Query => None,
        }
    }
}

/// What to join a room as. Everything is optional; see `presence:join` in the contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOptions {
    /// The user id (ignored by a server with authentication, which takes the token's `sub`).
    pub user_id: Option<UserId>,
    /// The display name.
    pub name: Option<String>,
    /// The initial custom state.
    pub state: Option<State>,
    /// A session to restore, e.g. one saved from an earlier process. The client fills
    /// this in by itself after the first join, to restore after reconnects.
    pub session_id: Option<SessionId>,
    /// Receive `presence:diff` batches instead of single roster events.
    pub batch: bool,
    /// How much of the roster to receive; `None` is the whole roster.
    pub view: Option<View>,
    /// Watch without being listed.
    pub spectator: bool,
}

impl JoinOptions {
    /// Join as `user_id`, shown as `name`.
    pub fn user(user_id: UserId, name: impl Into<String>) -> Self {
        JoinOptions {
            user_id: Some(user_id),
            name: Some(name.into()),
            ..JoinOptions::default()
        }
    }
}
