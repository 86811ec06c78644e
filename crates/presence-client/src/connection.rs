//! The raw connection: one WebSocket, typed frames, no reconnect and no state.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_protocol::{ClientMessage, ServerMessage};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{ConnectError, RecvError, SendError};
use crate::url::websocket_url;

/// How many bytes a [`Connection`] reads from its socket at a time, unless
/// [`ConnectOptions::read_buffer_bytes`] says otherwise.
///
/// tungstenite's default is 128 KiB, zero-filled before every read: a benchmark doing
/// tens of thousands of reads a second would spend more on that than on the frames.
/// Presence frames are a few hundred bytes; a frame larger than this still arrives
/// whole, over several reads.
pub const DEFAULT_READ_BUFFER_BYTES: usize = 16 * 1024;

/// How to open a [`Connection`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Sent as `?token=` on the URL, for servers that take the JWT at the upgrade.
    pub token: Option<String>,
    /// The local address to connect from, e.g. `127.0.0.2:0`. A benchmark opening many
    /// thousands of connections spreads them over several loopback addresses this way,
    /// since each source address has only ~28 000 ephemeral ports.
    pub bind: Option<SocketAddr>,
    /// Give up when TCP connect plus handshake take longer (no limit when `None`).
    pub timeout: Option<Duration>,
    /// Bytes read from the socket at a time ([`DEFAULT_READ_BUFFER_BYTES`] when `None`).
    pub read_buffer_bytes: Option<usize>,
    /// Extra headers on the upgrade request, e.g. the `Origin` a server checks against
    /// its `--allowed-origins`.
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://` (a private CA's roots, say); the system's roots when
    /// `None`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// One WebSocket to a presenced server that sends [`ClientMessage`]s and yields
/// [`ServerMessage`]s, and nothing more: no reconnect, no roster, no background task.
///
/// This is the building block of [`crate::Client`], and what a benchmark holding
/// thousands of connections uses directly. WebSocket pings are answered while
/// [`Connection::recv`] is being polled, so keep receiving (or the server's heartbeat
/// timeout will close the connection).
#[derive(Debug)]
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Connection {
    /// Connects to `url` (`ws://host:port/ws`, or the server's `http://ADDR`).
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Connection, ConnectError> {
        let url = websocket_url(url, options.token.as_deref())?;
        let opening = Self::open(&url, options);
        match options.timeout {
            None => opening.await,
            Some(limit) => tokio::time::timeout(limit, opening)
                .await
                .map_err(|_| ConnectError::Timeout)?,
        }
    }

    /// Connects to a URL already in its final form (see [`crate::websocket_url`]).
    pub(crate) async fn open(
        url: &str,
        options: &ConnectOptions,
    ) -> Result<Connection, ConnectError> {
        let bind = options.bind;
        let mut request = url
            .into_client_request()
            .map_err(|error| ConnectError::InvalidUrl(format!("{url}: {error}")))?;
        for (name, value) in &options.headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|error| ConnectError::InvalidHeader(format!("{name}: {error}")))?;
            let value = tungstenite::http::HeaderValue::from_str(value)
                .map_err(|error| ConnectError::InvalidHeader(format!("{name}: {error}")))?;
            request.headers_mut().insert(name, value);
        }
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or_else(|| ConnectError::InvalidUrl(format!("{url}: no host")))?;
        let default_port = if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        };
        let authority = format!("{}:{}", host, uri.port_u16().unwrap_or(default_port));
        let mut addresses = tokio::net::lookup_host(authority.clone()).await?;
        let Some(remote) =
            addresses.find(|addr| bind.is_none_or(|local| local.is_ipv4() == addr.is_ipv4()))
        else {
            return Err(ConnectError::NoAddress(authority));
        };

        let socket = if remote.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(local) = bind {
            socket.bind(local)?;
        }
        let stream = socket.connect(remote).await?;
        // Cursor frames are small and latency-sensitive: do not wait to coalesce them.
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(
            options
                .read_buffer_bytes
                .unwrap_or(DEFAULT_READ_BUFFER_BYTES),
        );
        let connector = options.tls.clone().map(Connector::Rustls);
        let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(config),
            connector,
        )
        .await
        .map_err(ConnectError::Handshake)?;
        Ok(Connection { ws })
    }

    /// Sends one message and flushes it.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SendError> {
        self.send_text(message.encode()).await
    }

    /// Sends an already encoded frame and flushes it. A benchmark encodes a frame once
    /// and clones the [`Utf8Bytes`] (a reference count) for every connection.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(SendError::Network)
    }

    /// Queues a frame without flushing; call [`Connection::flush`] after a batch.
    pub async fn feed_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .map_err(SendError::Network)
    }

    /// Writes out every queued frame.
    pub async fn flush(&mut self) -> Result<(), SendError> {
        self.ws.flush().await.map_err(SendError::Network)
    }

    /// The next server message. Pings and pongs are handled here and never returned.
    ///
    /// Cancel-safe, so it can sit in a `tokio::select!` next to a send path.
    /// [`RecvError::Decode`] and [`RecvError::Binary`] leave the connection usable;
    /// after [`RecvError::Closed`] or [`RecvError::Network`] ([`RecvError::is_fatal`])
    /// every further call fails.
    pub async fn recv(&mut self) -> Result<ServerMessage, RecvError> {
        let text = self.recv_text().await?;
        ServerMessage::decode(text.as_str()).map_err(|error| RecvError::Decode {
            error,
            text: text.as_str().to_owned(),
        })
    }

    /// The next text frame, undecoded: for a reader that needs only part of each
    /// message (a benchmark counting cursor entries) or the exact JSON (a test of the
    /// wire format). Pings and pongs are handled as in [`Connection::recv`], and it is
    /// cancel-safe too; it fails with [`RecvError::Binary`] on a binary frame.
    pub async fn recv_text(&mut self) -> Result<Utf8Bytes, RecvError> {
        loop {
            let frame = match self.ws.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Err(RecvError::Network(error)),
                None => return Err(RecvError::Network(tungstenite::Error::ConnectionClosed)),
            };
            match frame {
                Message::Text(text) => return Ok(text),
                Message::Binary(_) => return Err(RecvError::Binary),
                Message::Close(frame) => {
                    let (code, reason) = match frame {
                        Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
                        None => (u16::from(CloseCode::Status), String::new()),
                    };
                    return Err(RecvError::Closed { code, reason });
                }
                // tungstenite queues the pong itself; it goes out with the next read or write.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Closes with 1000 (normal closure) and waits briefly for the server's close reply.
    /// This is not a `presence:leave`: the server holds the sessions for its grace.
    pub async fn close(&mut self) -> Result<(), SendError> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::default(),
        };
        self.ws
            .close(Some(frame))
            .await
            .map_err(SendError::Network)?;
        // Wait for the server's close frame so the TCP connection ends cleanly, but do not
        // let a server that never answers hold the caller.
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        Ok(())
    }

    /// The WebSocket itself, borrowed: for a test that must step outside the protocol
    /// (send a binary frame, watch the server's pings).
    pub fn websocket_mut(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }

    /// The local address of the TCP connection.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// The TCP connection under the WebSocket (and under TLS, for `wss://`).
    fn tcp(&self) -> &TcpStream {
        self.ws.get_ref().get_ref()
    }

    /// The WebSocket itself, e.g. to `split` it into a sink and a stream that two tasks
    /// drive (frames are then tungstenite `Message`s, to decode with
    /// `ServerMessage::decode`).
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    /// The server's address.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}
