//! What a [`Client`](crate::Client) tells its caller, in order: server messages,
//! connection changes and the end.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use presence_protocol::ServerMessage;
use tokio::sync::mpsc;

/// Something the client observed, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message from the server, already applied to the client's rosters.
    Message(ServerMessage),
    /// A (re)connection succeeded; restoring joins for the held rooms are on their way.
    Connected,
    /// The connection was lost; the client will reconnect.
    Disconnected(Disconnect),
    /// The client waits `delay` before reconnect attempt `attempt` (from 1).
    Reconnecting {
        /// Which attempt since the connection was lost.
        attempt: u32,
        /// How long the client waits before trying.
        delay: Duration,
        /// Why the previous attempt failed (`None` before the first).
        last_error: Option<String>,
    },
    /// The client was closed with [`Client::close`](crate::Client::close), or every
    /// [`Client`](crate::Client) handle was dropped. No more events follow.
    Closed,
}

/// Why a connection was lost.
#[derive(Debug, Clone, PartialEq)]
pub enum Disconnect {
    /// The server sent a close frame: 1012 when it restarts, 1013 when this client
    /// could not keep up, 1008 or 1009 when it broke a limit.
    ClosedByServer {
        /// The WebSocket close code.
        code: u16,
        /// The close reason, often empty.
        reason: String,
    },
    /// The connection broke without a close frame (reset, EOF, I/O error).
    Network(String),
    /// [`Client::drop_connection`](crate::Client::drop_connection) was called.
    Dropped,
}

/// The events of one [`Client`](crate::Client): `recv` them, or use them as a [`Stream`].
#[derive(Debug)]
pub struct Events {
    receiver: mpsc::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(receiver: mpsc::Receiver<Event>) -> Self {
        Events { receiver }
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}
