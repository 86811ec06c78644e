//! Randomized bytes from a WebSocket client: the frame decoder the server runs,
//! a server-side tokio-tungstenite `WebSocketStream` with the limits `presenced` sets in
//! `http.rs`, never panics, never hands over a message above the limit, and stops as soon
//! as a frame declares more than the limit, before reading it. Well-formed frames come
//! out as the messages that went in.
//!
//! Each property runs a quick, fixed number of cases by default. Set
//! `PRESENCED_FUZZ_CASES=N` to run N cases per property instead, for a longer search:
//! `PRESENCED_FUZZ_CASES=100000 cargo test -p presence-server --test frame_fuzz`.

use std::time::Duration;

use futures_util::StreamExt;
use presence_protocol::arbitrary::config;
use presence_server::Config;
use proptest::prelude::*;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

/// The smallest `--max-message-bytes` the server accepts: random frames cross it often.
const SMALL_LIMIT: usize = 256;

/// What the server's read loop saw.
#[derive(Debug)]
struct Outcome {
    messages: Vec<Message>,
    /// Why reading stopped: `None` for a close frame or the end of the stream.
    error: Option<Error>,
}

/// Feeds `bytes` to a server-side stream in pieces of the given sizes, and reads as
/// `ws.rs` does: on until a close frame, the end of the stream or the first error.
fn serve(bytes: &[u8], pieces: &[usize], max: usize) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, server) = tokio::io::duplex(4096);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let write = async move {
            let mut rest = bytes;
            let mut sizes = pieces.iter().cycle();
            while !rest.is_empty() {
                let size = sizes
                    .next()
                    .copied()
                    .unwrap_or(rest.len())
                    .clamp(1, rest.len());
                let (piece, after) = rest.split_at(size);
                // The server may stop reading at any point; what it left unread is moot.
                if client_write.write_all(piece).await.is_err() {
                    return;
                }
                rest = after;
            }
            let _shutdown = client_write.shutdown().await;
        };
        // Whatever the server writes back (pongs, its close frame) is read and dropped.
        let mut sink = tokio::io::sink();
        let drain = tokio::io::copy(&mut client_read, &mut sink);
        let read = read_like_the_server(server, max);
        let (_, _, outcome) = tokio::join!(write, drain, async {
            // A guard against a hang, not a pause: the input is finite and in memory.
            tokio::time::timeout(Duration::from_secs(20), read)
                .await
                .expect("the server stops reading once the input ends")
        });
        outcome
    })
}

async fn read_like_the_server(server: DuplexStream, max: usize) -> Outcome {
    let mut socket = WebSocketStream::from_raw_socket(
        server,
        Role::Server,
        Some(presence_server::http::websocket_config(max)),
    )
    .await;
    let mut messages = Vec::new();
    let error = loop {
        match socket.next().await {
            Some(Ok(Message::Close(_))) | None => break None,
            Some(Ok(message)) => messages.push(message),
            Some(Err(error)) => break Some(error),
        }
    };
    Outcome { messages, error }
}

fn check(outcome: &Outcome, max: usize) -> Result<(), TestCaseError> {
    for message in &outcome.messages {
        prop_assert!(message.len() <= max, "{} bytes over {max}", message.len());
        prop_assert!(
            !matches!(message, Message::Frame(_)),
            "raw frames never reach the server"
        );
    }
    Ok(())
}

/// How a frame states its payload length.
#[derive(Debug, Clone)]
enum Length {
    /// The true length, in its shortest form.
    Honest,
    /// The true length in the 64-bit form, which the RFC forbids for short payloads.
    LongForm,
    /// Any number, true or not.
    Claimed(u64),
}

/// One frame as a client might write it, valid or not.
#[derive(Debug, Clone)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    length: Length,
    payload: Vec<u8>,
}

impl Frame {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0xf));
        let masked = u8::from(self.mask.is_some()) << 7;
        let length = self.payload.len() as u64;
        match self.length {
            Length::Honest if length < 126 => out.push(masked | length as u8),
            Length::Honest if length <= 0xffff => {
                out.push(masked | 126);
                out.extend_from_slice(&(length as u16).to_be_bytes());
            }
            Length::Honest | Length::LongForm => {
                out.push(masked | 127);
                out.extend_from_slice(&length.to_be_bytes());
            }
            Length::Claimed(claimed) => {
                out.push(masked | 127);
                out.extend_from_slice(&claimed.to_be_bytes());
            }
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(
                    self.payload
                        .iter()
                        .zip(key.iter().cycle())
                        .map(|(b, k)| b ^ k),
                );
            }
            None => out.extend_from_slice(&self.payload),
        }
    }
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "(?s).{0,40}".prop_map(String::into_bytes),
        // A close payload: a code, valid or not, and a reason.
        (any::<u16>(), "(?s).{0,20}").prop_map(|(code, reason)| {
            let mut bytes = code.to_be_bytes().to_vec();
            bytes.extend_from_slice(reason.as_bytes());
            bytes
        }),
        prop::collection::vec(any::<u8>(), 100..400),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        prop::bool::weighted(0.8),
        prop_oneof![8 => Just(0u8), 1 => 1..8u8],
        prop_oneof![
            6 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
            1 => 0..16u8,
        ],
        prop_oneof![9 => any::<[u8; 4]>().prop_map(Some), 1 => Just(None)],
        prop_oneof![
            8 => Just(Length::Honest),
            1 => Just(Length::LongForm),
            1 => prop_oneof![
                any::<u64>(),
                0..1024u64,
                Just(u64::MAX),
                Just(1 << 63),
            ]
            .prop_map(Length::Claimed),
        ],
        payload(),
    )
        .prop_map(|(fin, rsv, opcode, mask, length, payload)| Frame {
            fin,
            rsv,
            opcode,
            mask,
            length,
            payload,
        })
}

/// A data or control message a well-behaved client sends, and how it is split into
/// frames: data messages at the given cut points, control messages always whole.
#[derive(Debug, Clone)]
enum Sent {
    Text(String, Vec<prop::sample::Index>),
    Binary(Vec<u8>, Vec<prop::sample::Index>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn sent(max: usize) -> impl Strategy<Value = Sent> {
    let cuts = || prop::collection::vec(any::<prop::sample::Index>(), 0..4);
    prop_oneof![
        (
            prop::string::string_regex(&format!("(?s).{{0,{}}}", max / 4)).expect("regex"),
            cuts()
        )
            .prop_map(|(text, cuts)| Sent::Text(text, cuts)),
        (prop::collection::vec(any::<u8>(), 0..max), cuts())
            .prop_map(|(bytes, cuts)| Sent::Binary(bytes, cuts)),
        prop::collection::vec(any::<u8>(), 0..126).prop_map(Sent::Ping),
        prop::collection::vec(any::<u8>(), 0..126).prop_map(Sent::Pong),
    ]
}

impl Sent {
    fn frames(&self, key: [u8; 4]) -> Vec<Frame> {
        let frame = |fin: bool, opcode: u8, payload: &[u8]| Frame {
            fin,
            rsv: 0,
            opcode,
            mask: Some(key),
            length: Length::Honest,
            payload: payload.to_vec(),
        };
        let fragmented = |opcode: u8, payload: &[u8], cuts: &[prop::sample::Index]| {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
            points.push(payload.len());
            points.sort_unstable();
            points.dedup();
            let mut frames = Vec::new();
            let mut start = 0;
            for (i, &end) in points.iter().enumerate() {
                let last = i + 1 == points.len();
                let opcode = if i == 0 { opcode } else { 0 };
                frames.push(frame(last, opcode, &payload[start..end]));
                start = end;
            }
            frames
        };
        match self {
            // Fragments may split a character: only the whole message must be UTF-8.
            Sent::Text(text, cuts) => fragmented(1, text.as_bytes(), cuts),
            Sent::Binary(bytes, cuts) => fragmented(2, bytes, cuts),
            Sent::Ping(payload) => vec![frame(true, 9, payload)],
            Sent::Pong(payload) => vec![frame(true, 10, payload)],
        }
    }

    fn is_received_as(&self, message: &Message) -> bool {
        match (self, message) {
            (Sent::Text(sent, _), Message::Text(got)) => sent.as_str() == got.as_str(),
            (Sent::Binary(sent, _), Message::Binary(got))
            | (Sent::Ping(sent), Message::Ping(got))
            | (Sent::Pong(sent), Message::Pong(got)) => sent[..] == got[..],
            _ => false,
        }
    }
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![usize::MAX]),
        prop::collection::vec(1..32usize, 1..8),
        Just(vec![1]),
    ]
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![Just(SMALL_LIMIT), Just(Config::default().max_message_bytes)]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        pieces in pieces(),
        max in limit(),
    ) {
        check(&serve(&bytes, &pieces, max), max)?;
    }

    #[test]
    fn random_frames_never_panic(
        frames in prop::collection::vec(frame(), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        pieces in pieces(),
        max in limit(),
    ) {
        let mut bytes = Vec::new();
        for frame in &frames {
            frame.write(&mut bytes);
        }
        for (at, value) in flips {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] ^= value;
            }
        }
        check(&serve(&bytes, &pieces, max), max)?;
    }

    #[test]
    fn well_formed_frames_arrive_as_the_messages_sent(
        messages in prop::collection::vec(sent(SMALL_LIMIT), 0..6),
        key in any::<[u8; 4]>(),
        pieces in pieces(),
    ) {
        let mut bytes = Vec::new();
        for message in &messages {
            for frame in message.frames(key) {
                frame.write(&mut bytes);
            }
        }
        // A closing handshake ends the session; without one the end of the stream is an
        // error (`ResetWithoutClosingHandshake`).
        Frame {
            fin: true,
            rsv: 0,
            opcode: 8,
            mask: Some(key),
            length: Length::Honest,
            payload: 1000u16.to_be_bytes().to_vec(),
        }
        .write(&mut bytes);
        let outcome = serve(&bytes, &pieces, SMALL_LIMIT);
        prop_assert!(outcome.error.is_none(), "{:?}", outcome.error);
        prop_assert_eq!(outcome.messages.len(), messages.len());
        for (sent, received) in messages.iter().zip(&outcome.messages) {
            prop_assert!(sent.is_received_as(received), "{sent:?} arrived as {received:?}");
        }
    }
}

#[test]
fn a_frame_declaring_more_than_the_limit_stops_the_read_before_its_payload() {
    // Only the header is sent: the server must refuse on the declared length alone,
    // not wait for (or make room for) the payload, and with the error ws.rs answers
    // with close code 1009.
    for (declared, max) in [
        (SMALL_LIMIT as u64 + 1, SMALL_LIMIT),
        (1 << 30, Config::default().max_message_bytes),
        (u64::MAX >> 1, Config::default().max_message_bytes),
        (u64::MAX, SMALL_LIMIT),
    ] {
        let mut bytes = Vec::new();
        Frame {
            fin: true,
            rsv: 0,
            opcode: 1,
            mask: Some([1, 2, 3, 4]),
            length: Length::Claimed(declared),
            payload: Vec::new(),
        }
        .write(&mut bytes);
        let outcome = serve(&bytes, &[usize::MAX], max);
        assert!(outcome.messages.is_empty());
        assert!(
            matches!(outcome.error, Some(Error::Capacity(_))),
            "{declared} bytes declared: {:?}",
            outcome.error
        );
    }
}

#[test]
fn a_message_over_the_limit_in_small_fragments_is_a_capacity_error() {
    // Each fragment is within the frame limit; together they are over the message limit,
    // which ws.rs answers with close code 1009.
    let mut bytes = Vec::new();
    let chunk = vec![b'a'; SMALL_LIMIT / 4];
    for i in 0..5 {
        Frame {
            fin: i == 4,
            rsv: 0,
            opcode: if i == 0 { 1 } else { 0 },
            mask: Some([9, 8, 7, 6]),
            length: Length::Honest,
            payload: chunk.clone(),
        }
        .write(&mut bytes);
    }
    let outcome = serve(&bytes, &[usize::MAX], SMALL_LIMIT);
    assert!(outcome.messages.is_empty());
    assert!(
        matches!(outcome.error, Some(Error::Capacity(_))),
        "{:?}",
        outcome.error
    );
}
