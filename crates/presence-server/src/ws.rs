//! One task per WebSocket connection: it reads frames, enforces sizes and rates
//! (`rate_limit.rs`), settles who a joiner is (`identity.rs`), turns messages into core
//! inputs for the right shard, pings, and
//! writes whatever the shards queued in the connection's outbox in one write per wake-up.
//!
//! A single task (not a reader and a writer) keeps an idle connection to one small
//! future; reading pauses while a write is in progress, which a presence client never
//! notices because writes are small and bounded by a timeout.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use presence_core::{ConnId, Input};
use presence_protocol::{decode, ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::disconnect::Disconnect;
use crate::driver::ShardMessage;
use crate::identity::Identity;
use crate::outbox::{Condemned, Frame, Outbox};
use crate::rate_limit::{Admission, RateLimiter};
use crate::AppState;

/// tungstenite's write buffer, which only ever holds control frames (pings, pongs, the
/// close): data frames bypass it (see `write_frames`).
pub const CONTROL_BUFFER_BYTES: usize = 256;

/// An upgraded WebSocket connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Serves one upgraded connection until it closes.
pub async fn serve(
    mut socket: Socket,
    state: Arc<AppState>,
    conn: ConnId,
    url_token: Option<String>,
) {
    state.metrics.connections.inc();
    let outbox = Arc::new(Outbox::new(state.config.outbox_frames));
    let mut connection = Connection {
        conn,
        outbox: outbox.clone(),
        state: state.clone(),
        identity: Identity::new(url_token),
        limiter: RateLimiter::new(state.config.max_messages_per_second),
    };
    // One task drives the socket both ways without `split`: `select!` drops the read
    // future before a branch runs, so a branch may write. That saves the shared lock
    // and its allocation on every connection.
    let ping_period = (state.config.heartbeat_timeout / 3).max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_period, ping_period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // An idle connection is this future parked on the `select!`, so every byte of its
    // state is paid by every connection. Work that only happens when a message or a
    // write comes (decode, shard send, write) runs in boxed futures that exist only
    // while they run, keeping the parked task small.
    //
    // The shutdown and outbox waits live across iterations: made afresh in the `select!`,
    // each would join and leave a waiter list under a lock on every message read.
    let shutdown = state.shutdown.cancelled();
    tokio::pin!(shutdown);
    let queued = outbox.wait();
    tokio::pin!(queued);
    // Any frame is a sign of life. The core watches the connections that hold a session;
    // here the others are closed when silent for the heartbeat timeout, and any that has
    // joined no room within it.
    let opened_at = Instant::now();
    let mut heard_at = opened_at;
    let disconnect: Disconnect = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Disconnect::Shutdown,
            () = &mut queued => {
                queued.set(outbox.wait());
                // The queue's own buffer, freed after the write: nothing is kept idle.
                let (frames, condemned) = outbox.drain();
                if outbox.take_behind() {
                    // Roster events were dropped for this slow reader: a fresh window of
                    // each of its rooms says what they said, instead of a close. Until a
                    // shard sends its own, its roster events say nothing more.
                    state.metrics.slow_client_catch_ups.inc();
                    outbox.await_snapshots(state.shards.len());
                    Box::pin(connection.to_all_shards(Input::Resync { conn })).await;
                }
                if !frames.is_empty() {
                    let written = Box::pin(write_frames(&mut socket, &frames, state.config.write_timeout)).await;
                    match written {
                        Ok(()) => {}
                        Err(WriteError::Failed) => break Disconnect::WriteFailed,
                        Err(WriteError::Stalled) => break Disconnect::WriteTimeout,
                    }
                }
                match condemned {
                    None => {}
                    Some(Condemned::TooSlow) => break Disconnect::TooSlow,
                    Some(Condemned::Silent) => break Disconnect::HeartbeatTimeout,
                }
            }
            message = socket.next() => {
                if matches!(message, Some(Ok(_))) {
                    heard_at = Instant::now();
                }
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(disconnect) = Box::pin(connection.on_text(&text)).await {
                            break disconnect;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        state.metrics.received("invalid");
                        let message = "binary frames are not part of the protocol; send JSON text";
                        connection.reply(ServerMessage::error(ErrorCode::InvalidMessage, message, None));
                    }
                    Some(Ok(Message::Pong(_) | Message::Ping(_))) => Box::pin(connection.to_all_shards(Input::Activity { conn })).await,
                    // Reads never yield raw frames: tungstenite reassembles fragments itself.
                    Some(Ok(Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) => break Disconnect::ClientClosed,
                    None => break Disconnect::Gone,
                    Some(Err(error)) => break read_error(error),
                }
            }
            _ = ping.tick() => {
                // A connection holding sessions is the core's to judge: it ends them with
                // no grace and has this socket closed. This catches the ones it never sees.
                let timeout = state.config.heartbeat_timeout;
                if outbox.rooms() == 0 && heard_at.elapsed() >= timeout {
                    break Disconnect::HeartbeatTimeout;
                }
                if !outbox.has_joined() && opened_at.elapsed() >= timeout {
                    break Disconnect::NoJoin;
                }
                let sent = Box::pin(tokio::time::timeout(state.config.write_timeout, socket.send(Message::Ping(Default::default())))).await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break Disconnect::WriteFailed,
                    Err(_) => break Disconnect::WriteTimeout,
                }
            }
        }
    };

    state.metrics.disconnected(disconnect);
    let told = Box::pin(send_close(&mut socket, disconnect)).await;
    // Not a leave: the core keeps the sessions for the reconnect grace. On shutdown the
    // shards may already be gone, which is fine: so is everything they held. The core
    // hears of it before the linger, which only concerns the socket.
    Box::pin(connection.to_all_shards(Input::Closed { conn })).await;
    // A draining node does not linger: it must be gone before the grace it started on
    // the other nodes ends, or it would end, and announce the end of, the very sessions
    // its clients are restoring elsewhere. Its clients read the 1012 and are not writing.
    if told && disconnect != Disconnect::Shutdown {
        Box::pin(linger(&mut socket)).await;
    }
    state.metrics.connections.dec();
}

/// How long a closing connection keeps reading (and discarding) what the client still
/// sends, so that its unread input does not turn the close into a TCP reset.
const LINGER: Duration = Duration::from_secs(2);

/// Tells the client why the connection ends: the close frame, or the answer to the
/// client's own. False when nothing could be sent.
async fn send_close(socket: &mut Socket, disconnect: Disconnect) -> bool {
    match disconnect.close_frame() {
        Some((code, reason)) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from_static(reason),
            };
            tokio::time::timeout(
                Duration::from_secs(1),
                socket.send(Message::Close(Some(frame))),
            )
            .await
            .is_ok()
        }
        // tungstenite queued the answer to a client's close when it read it; this writes it.
        None if disconnect == Disconnect::ClientClosed => {
            tokio::time::timeout(Duration::from_secs(1), socket.flush())
                .await
                .is_ok()
        }
        None => false,
    }
}

/// A lingering close. Closing a socket with unread input makes the kernel send a reset,
/// which browsers report as 1006 whatever close frame came before it; so the write side is
/// shut first and the input drained until the client closes too, or for [`LINGER`].
async fn linger(socket: &mut Socket) {
    let io = socket.get_mut();
    let _ = tokio::time::timeout(LINGER, async {
        let _ = io.shutdown().await;
        let mut scratch = [0u8; 512];
        while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// What a read error means for the connection.
fn read_error(error: tungstenite::Error) -> Disconnect {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Capacity(_) => Disconnect::TooBig,
        tungstenite::Error::Utf8(_) => Disconnect::InvalidUtf8,
        tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake | ProtocolError::ReceivedAfterClosing,
        ) => Disconnect::Gone,
        tungstenite::Error::Protocol(_) => Disconnect::ProtocolError,
        _ => Disconnect::Gone,
    }
}

/// Writes queued text frames straight to the socket: each frame's header, then its
/// payload, gathered into as few `writev` calls as the kernel takes (usually one).
///
/// Frames bypass tungstenite's write buffer: that buffer is per connection and keeps
/// the capacity of the largest message it ever held, which cost every idle connection
/// 1–2 KB (docs/performance.md). The payloads written here are the very bytes the shard
/// encoded once and shares among recipients, so they are not copied either.
///
/// A client that reads slowly is not cut off for it: only a write that makes no progress
/// at all for `stall` (the write timeout: the client reads nothing) ends the connection.
async fn write_frames(
    socket: &mut Socket,
    frames: &VecDeque<Frame>,
    stall: Duration,
) -> Result<(), WriteError> {
    // A control frame tungstenite queued (a pong) goes out first and whole, so the raw
    // frames below never land inside one. With nothing queued this is no syscall.
    match tokio::time::timeout(stall, socket.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(WriteError::Failed),
        Err(_) => return Err(WriteError::Stalled),
    }
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    // Server frames are unmasked, so a header is at most 10 bytes.
    let mut headers = Vec::with_capacity(frames.len() * 10);
    let mut header_ends = Vec::with_capacity(frames.len());
    for frame in frames {
        header
            .format(frame.payload_len() as u64, &mut headers)
            .map_err(|_| WriteError::Failed)?;
        header_ends.push(headers.len());
    }
    // A cursor frame without the recipient's own entry is the room's shared frame
    // written around that entry: two slices, no copy.
    let mut slices = Vec::with_capacity(frames.len() * 3);
    let mut start = 0;
    for (frame, &end) in frames.iter().zip(&header_ends) {
        slices.push(IoSlice::new(&headers[start..end]));
        let (before, after) = frame.payload();
        slices.push(IoSlice::new(before));
        if !after.is_empty() {
            slices.push(IoSlice::new(after));
        }
        start = end;
    }
    let io = socket.get_mut();
    let mut remaining = slices.as_mut_slice();
    while !remaining.is_empty() {
        let written = match tokio::time::timeout(stall, io.write_vectored(remaining)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(WriteError::Failed),
            Ok(Ok(written)) => written,
            Err(_) => return Err(WriteError::Stalled),
        };
        IoSlice::advance_slices(&mut remaining, written);
    }
    Ok(())
}

/// Why [`write_frames`] stopped.
enum WriteError {
    /// The socket failed.
    Failed,
    /// Nothing could be written for the write timeout.
    Stalled,
}

struct Connection {
    conn: ConnId,
    outbox: Arc<Outbox>,
    state: Arc<AppState>,
    identity: Identity,
    limiter: RateLimiter,
}

impl Connection {
    /// Handles one text frame; returns why the connection must end, if it must.
    async fn on_text(&mut self, text: &str) -> Option<Disconnect> {
        match self.limiter.admit(Instant::now()) {
            Admission::Pass => {}
            Admission::Refuse { tell } => {
                if tell {
                    let message = format!(
                        "more than {} messages per second; messages are being dropped",
                        self.state.config.max_messages_per_second
                    );
                    // The contract echoes the `ref` of the message that caused an error;
                    // read it only for the one refusal a second that is answered.
                    let reference = match decode(text) {
                        Ok(request) => request.reference,
                        Err(error) => error.reference,
                    };
                    self.reply(ServerMessage::error(
                        ErrorCode::RateLimited,
                        message,
                        reference,
                    ));
                }
                return None;
            }
            Admission::Abuse => return Some(Disconnect::RateAbuse),
        }
        let request = match decode(text) {
            Ok(request) => request,
            Err(error) => {
                self.state.metrics.received("invalid");
                self.reply(ServerMessage::error(
                    error.code,
                    error.message,
                    error.reference,
                ));
                return None;
            }
        };
        self.state.metrics.received(request.message.type_name());
        let conn = self.conn;
        let reference = request.reference;
        match request.message {
            ClientMessage::Join(join) => {
                let room = join.room.clone();
                match self.identity.settle(self.state.verifier.as_ref(), join) {
                    Ok(request) => {
                        self.to_room(
                            &room,
                            Input::Join {
                                conn,
                                request,
                                reference,
                            },
                        )
                        .await;
                    }
                    Err((code, message)) => {
                        self.reply(ServerMessage::error(code, message, reference))
                    }
                }
            }
            ClientMessage::Leave(leave) => {
                let unload = leave.reason == Some(LeaveReason::Unload);
                match leave.room {
                    Some(room) => {
                        self.to_room(
                            &room.clone(),
                            Input::Leave {
                                conn,
                                room: Some(room),
                                unload,
                                reference,
                            },
                        )
                        .await
                    }
                    None => {
                        self.to_all_shards(Input::Leave {
                            conn,
                            room: None,
                            unload,
                            reference,
                        })
                        .await
                    }
                }
            }
            ClientMessage::Heartbeat => self.to_all_shards(Input::Activity { conn }).await,
            ClientMessage::Update(update) => {
                let room = update.room.clone();
                self.to_room(
                    &room,
                    Input::Update {
                        conn,
                        room: update.room,
                        state: update.state,
                        reference,
                    },
                )
                .await
            }
            ClientMessage::Cursor(cursor) => {
                let room = cursor.room.clone();
                let input = Input::Cursor {
                    conn,
                    room: cursor.room,
                    x: cursor.x,
                    y: cursor.y,
                    visible: cursor.visible,
                    reference,
                };
                self.to_room(&room, input).await
            }
        }
        None
    }

    fn reply(&self, message: ServerMessage) {
        self.outbox.reply(&message, &self.state.metrics);
    }

    async fn to_room(&self, room: &presence_protocol::RoomName, input: Input) {
        let message = ShardMessage::Input {
            input,
            outbox: self.outbox.clone(),
            received_at: Instant::now(),
        };
        let _ = self.state.shards.for_room(room).send(message).await;
    }

    async fn to_all_shards(&self, input: Input) {
        let received_at = Instant::now();
        for shard in self.state.shards.all() {
            let message = ShardMessage::Input {
                input: input.clone(),
                outbox: self.outbox.clone(),
                received_at,
            };
            let _ = shard.send(message).await;
        }
    }
}
