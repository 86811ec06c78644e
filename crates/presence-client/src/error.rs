//! What can go wrong, named for the operation that failed.

use presence_protocol::ErrorCode;
use tokio_tungstenite::tungstenite;

/// Opening a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL could not be read (no scheme, no host, bad characters).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A header given in [`crate::ConnectOptions::headers`] is not valid HTTP.
    #[error("invalid header {0}")]
    InvalidHeader(String),
    /// The scheme is not `ws` or `http`; TLS is not supported by this client.
    #[error("unsupported URL scheme {0:?}: use ws:// (TLS is not supported)")]
    UnsupportedScheme(String),
    /// The host name resolved to no address.
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// Resolving, binding the local address or the TCP connect failed.
    #[error("TCP connect failed: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket upgrade failed (refused with an HTTP status, or a broken handshake).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[source] tungstenite::Error),
    /// The connect did not finish within the configured timeout.
    #[error("connect timed out")]
    Timeout,
}

impl ConnectError {
    /// The HTTP status the server refused the upgrade with (401 without a valid token,
    /// 403 for an origin it does not allow, 503 when it is full), if that is what
    /// happened.
    pub fn refused_status(&self) -> Option<u16> {
        match self {
            ConnectError::Handshake(tungstenite::Error::Http(response)) => {
                Some(response.status().as_u16())
            }
            _ => None,
        }
    }
}

/// Sending a message failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The client was closed, or its task has ended; nothing more can be sent.
    #[error("the client is closed")]
    Closed,
    /// The connection broke while writing (raw [`crate::Connection`] only).
    #[error("connection failed while sending: {0}")]
    Network(#[source] tungstenite::Error),
}

/// Receiving on a raw [`crate::Connection`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The server closed the connection with this close code (1005 when it gave none).
    #[error("closed by the server: {code} {reason}")]
    Closed {
        /// The WebSocket close code, e.g. 1012 for a server restart.
        code: u16,
        /// The close reason the server gave, often empty.
        reason: String,
    },
    /// The connection broke (reset, EOF without a close frame, protocol violation).
    #[error("connection failed: {0}")]
    Network(#[source] tungstenite::Error),
    /// A text frame that is not a server message this crate knows; the connection stays usable.
    #[error("undecodable server frame: {error}")]
    Decode {
        /// Why decoding failed.
        #[source]
        error: serde_json::Error,
        /// The frame as received.
        text: String,
    },
    /// A binary frame, which the contract never sends; the connection stays usable.
    #[error("unexpected binary frame")]
    Binary,
}

impl RecvError {
    /// Whether the connection is gone (as opposed to one bad frame on a usable connection).
    pub fn is_fatal(&self) -> bool {
        matches!(self, RecvError::Closed { .. } | RecvError::Network(_))
    }
}

/// Joining a room through [`crate::Client::join`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JoinError {
    /// The server refused the join (`unauthorized`, `forbidden`, `room_full`, ...).
    #[error("join refused: {code:?}: {message}")]
    Refused {
        /// The contract's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The room was left, or the client closed, before the server answered.
    #[error("join cancelled before the server answered")]
    Cancelled,
}
