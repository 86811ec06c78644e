//! Every close explained, no idle socket kept: the findings of the attack run, each checked
//! against the real binary over raw TCP, so that a reset (which a WebSocket library would
//! report as 1006) shows as the error it is. Clients keep writing while the server closes:
//! that is what turns a careless close into a reset.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use presence_testkit::PresencedCommand;

use crate::support::TestServer;

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// How long a test waits for the server to do what it must before failing.
const PATIENCE: Duration = Duration::from_secs(10);

/// A WebSocket spoken by hand, to send what no library would.
struct RawSocket {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    buffer: Vec<u8>,
}

/// A client frame: masked (unless told otherwise), with the given first-byte bits.
fn frame(first_byte: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn text(payload: &str) -> Vec<u8> {
    frame(0x80 | TEXT, payload.as_bytes(), true)
}

impl RawSocket {
    async fn connect(server: &TestServer) -> Self {
        Self::connect_with_receive_buffer(server, None).await
    }

    /// With a small receive buffer the server's writes block after a few frames unread.
    async fn connect_with_receive_buffer(server: &TestServer, bytes: Option<u32>) -> Self {
        let address = server.addr();
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(bytes) = bytes {
            socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        }
        let mut stream = socket.connect(address).await.expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr()
        );
        stream.write_all(request.as_bytes()).await.expect("upgrade");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
                .await
                .expect("upgrade answered")
                .expect("read");
            assert_eq!(n, 1, "closed during the upgrade");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (read, write) = stream.into_split();
        RawSocket {
            read,
            write,
            buffer: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
    }

    /// The next whole server frame: its opcode and payload; an I/O error (a reset) as is.
    async fn next_frame(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((opcode, payload, used)) = parse(&self.buffer) {
                self.buffer.drain(..used);
                return Ok(Some((opcode, payload)));
            }
            let mut chunk = [0u8; 4096];
            let n = self.read.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server's close frame; its code. Fails on a reset or a bare EOF.
    async fn close_code(&mut self) -> u16 {
        tokio::time::timeout(PATIENCE, async {
            loop {
                match self.next_frame().await {
                    Ok(Some((CLOSE, payload))) => {
                        assert!(payload.len() >= 2, "a close frame with a code");
                        return u16::from_be_bytes([payload[0], payload[1]]);
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the server closed without a close frame"),
                    Err(error) => panic!("the close was lost to a reset: {error}"),
                }
            }
        })
        .await
        .expect("the server closed in time")
    }

    /// After the close frame: the server ends the TCP stream cleanly (EOF, not a reset).
    async fn ends_cleanly(&mut self) {
        let mut rest = [0u8; 4096];
        loop {
            match tokio::time::timeout(PATIENCE, self.read.read(&mut rest)).await {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => panic!("reset after the close frame: {error}"),
                Err(_) => panic!("the server kept the socket open after its close frame"),
            }
        }
    }
}

/// One unmasked server frame from the front of `bytes`, if whole.
fn parse(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let opcode = *bytes.first()? & 0x0f;
    let length = *bytes.get(1)? & 0x7f;
    let (length, start) = match length {
        126 => (
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(raw) as usize, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = bytes.get(start..start + length)?.to_vec();
    Some((opcode, payload, start + length))
}

async fn joined_raw(server: &TestServer, user: &str) -> RawSocket {
    join_raw(RawSocket::connect(server).await, user).await
}

async fn join_raw(mut socket: RawSocket, user: &str) -> RawSocket {
    let join = json!({"type": "presence:join", "room": "doc", "user": {"id": user}});
    socket.send(&text(&join.to_string())).await;
    loop {
        let (opcode, payload) = socket
            .next_frame()
            .await
            .expect("read")
            .expect("joined before the end");
        if opcode == TEXT && String::from_utf8_lossy(&payload).contains("presence:currentUsers") {
            return socket;
        }
    }
}

/// The value of the counter `name{reason="REASON"}` in `/metrics`.
async fn counted(server: &TestServer, name: &str, reason: &str) -> u64 {
    server
        .counter(name, reason)
        .await
        .unwrap_or_else(|| panic!("no {name}{{reason=\"{reason}\"}} in /metrics"))
}

async fn disconnects(server: &TestServer, reason: &str) -> u64 {
    counted(server, "presenced_disconnects_total", reason).await
}

#[tokio::test]
async fn a_frame_far_over_the_limit_closes_with_1009_while_the_client_keeps_writing() {
    let server = TestServer::start(&[]).await;
    let mut socket = joined_raw(&server, "big").await;
    // 2 MiB against the 64 KiB limit, written in full while the server refuses it.
    let payload = vec![b'x'; 2 << 20];
    let big = frame(0x80 | TEXT, &payload, true);
    let RawSocket {
        read,
        write,
        buffer,
    } = socket;
    let writer = tokio::spawn(async move {
        let mut write = write;
        let _ = write.write_all(&big).await;
        write
    });
    socket = RawSocket {
        read,
        write: writer.await.expect("writer"),
        buffer,
    };
    assert_eq!(socket.close_code().await, 1009);
    socket.ends_cleanly().await;
    assert_eq!(disconnects(&server, "too_big").await, 1);
}

#[tokio::test]
async fn sustained_rate_abuse_closes_with_1008_while_the_client_keeps_writing() {
    let server = TestServer::start(&["--max-messages-per-second", "5"]).await;
    let mut socket = joined_raw(&server, "flood").await;
    // Far more than ten seconds' worth of excess, sent in one go.
    let heartbeat = text(r#"{"type":"presence:heartbeat"}"#);
    let flood: Vec<u8> = std::iter::repeat_n(heartbeat, 2000).flatten().collect();
    socket.send(&flood).await;
    assert_eq!(socket.close_code().await, 1008);
    socket.ends_cleanly().await;
    assert_eq!(disconnects(&server, "rate_abuse").await, 1);
}

#[tokio::test]
async fn a_clients_close_is_answered_with_a_close_frame() {
    let server = TestServer::start(&[]).await;
    let mut socket = joined_raw(&server, "polite").await;
    socket
        .send(&frame(0x80 | CLOSE, &1000u16.to_be_bytes(), true))
        .await;
    assert_eq!(socket.close_code().await, 1000, "the client's code, echoed");
    socket.ends_cleanly().await;
    assert_eq!(disconnects(&server, "client_closed").await, 1);
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = TestServer::start(&[]).await;
    let cases: [(&str, Vec<u8>, u16); 6] = [
        (
            "invalid UTF-8",
            frame(0x80 | TEXT, b"{\"a\":\"\xff\xfe\"}", true),
            1007,
        ),
        ("unmasked", frame(0x80 | TEXT, b"{}", false), 1002),
        ("RSV bits", frame(0x80 | 0x40 | TEXT, b"{}", true), 1002),
        ("reserved opcode", frame(0x80 | 0x3, b"{}", true), 1002),
        (
            "stray continuation",
            frame(0x80 | CONTINUATION, b"{}", true),
            1002,
        ),
        ("fragmented ping", frame(PING, b"hi", true), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut socket = joined_raw(&server, "rude").await;
        socket.send(&bytes).await;
        assert_eq!(socket.close_code().await, code, "{what}");
        socket.ends_cleanly().await;
    }
    assert_eq!(disconnects(&server, "invalid_utf8").await, 1);
    assert_eq!(disconnects(&server, "protocol_error").await, 5);
}

#[tokio::test]
async fn a_heartbeat_timeout_closes_the_silent_socket_with_1001() {
    // Olga reads (and so answers pings) only while she waits below: a second keeps her
    // safe while Alice joins on a loaded machine.
    let server = TestServer::start(&["--heartbeat-timeout", "1s"]).await;
    let mut olga = server.joined("doc", "olga").await;
    // Alice joins, then neither reads nor answers pings.
    let mut alice = joined_raw(&server, "alice").await;
    olga.expect("presence:userJoined").await;
    let left = olga.expect("presence:userLeft").await;
    assert_eq!(left["userId"], "alice");
    // Her socket was closed with a code, not left open and pinged while she thinks she is here.
    assert_eq!(alice.close_code().await, 1001);
    alice.ends_cleanly().await;
    assert_eq!(disconnects(&server, "heartbeat_timeout").await, 1);
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed_whether_it_answers_pings_or_not() {
    let server = TestServer::start(&["--heartbeat-timeout", "600ms"]).await;
    // One answers every ping, but joins nothing.
    let mut lurker = RawSocket::connect(&server).await;
    let code = tokio::time::timeout(PATIENCE, async {
        loop {
            match lurker.next_frame().await.expect("no reset") {
                Some((PING, payload)) => lurker.send(&frame(0x8a, &payload, true)).await,
                Some((CLOSE, payload)) => return u16::from_be_bytes([payload[0], payload[1]]),
                Some(_) => {}
                None => panic!("closed without a close frame"),
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(code, 1008);
    // The other says nothing at all, or drips a byte now and then that never makes a frame.
    let mut silent = RawSocket::connect(&server).await;
    silent.send(&[0x81]).await;
    assert_eq!(silent.close_code().await, 1001);
    assert_eq!(disconnects(&server, "no_join").await, 1);
    assert_eq!(disconnects(&server, "heartbeat_timeout").await, 1);
}

async fn handshake_closes(server: &TestServer, reason: &str) -> u64 {
    counted(server, "presenced_handshake_closes_total", reason).await
}

#[tokio::test]
async fn half_sent_requests_are_closed_at_the_handshake_timeout() {
    let server = TestServer::start(&["--handshake-timeout", "300ms"]).await;
    let mut slow = TcpStream::connect(server.addr()).await.expect("connect");
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a request");
    let mut rest = [0u8; 256];
    let read = tokio::time::timeout(PATIENCE, slow.read(&mut rest))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert_eq!(handshake_closes(&server, "timeout").await, 1);
}

#[tokio::test]
async fn five_hundred_half_sent_requests_do_not_lock_out_a_new_client() {
    // With 300 file descriptors, 500 held connections would exhaust the node. The timeout is
    // far longer than the test waits: only the cap, closing the oldest pending connection
    // to make room, can let the new client in.
    let command = PresencedCommand::new("prlimit")
        .args(["--nofile=300:300", env!("CARGO_BIN_EXE_presenced")])
        .args([
            "--handshake-timeout",
            "60s",
            "--max-pending-connections",
            "100",
        ]);
    let server = TestServer::start_command(command).await;
    let mut held = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        stream
            .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            .await
            .expect("half a request");
        held.push(stream);
    }
    let mut client = tokio::time::timeout(PATIENCE, server.joined("doc", "newcomer"))
        .await
        .expect("a new client joins while 500 half-sent requests are held");
    client.send(json!({"type": "presence:heartbeat"})).await;
    assert!(handshake_closes(&server, "evicted").await >= 400);
    assert_eq!(server.roster("doc").await, ["newcomer"]);
}

/// Sends raw bytes on a fresh TCP connection and reads until the server closes it.
async fn http_exchange(server: &TestServer, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream.write_all(request).await.expect("request");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closed in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn http_smuggling_pipelining_and_header_floods_are_handled() {
    let server = TestServer::start(&[]).await;
    // Content-Length and Transfer-Encoding together: refused and closed, so the request
    // hidden in the body is never served.
    let smuggled = http_exchange(
        &server,
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(smuggled.matches("HTTP/1.1 ").count(), 1, "{smuggled}");
    assert!(!smuggled.contains("presenced_"), "{smuggled}");
    // Two pipelined requests: both answered, in order.
    let pipelined = http_exchange(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(pipelined.matches("HTTP/1.1 200").count(), 2, "{pipelined}");
    // A flood of headers: 431.
    let mut flood = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for n in 0..500 {
        flood.extend_from_slice(format!("X-Flood-{n}: y\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let answer = http_exchange(&server, &flood).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(server.get("/healthz", &[]).await.0, 200, "still serving");
}

#[tokio::test]
async fn origin_tricks_are_refused() {
    let server = TestServer::start(&["--allowed-origins", "https://app.example"]).await;
    let upgrade = |origin: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Origin: {origin}\r\nConnection: close\r\n\r\n"
        )
    };
    for trick in [
        "null",
        "https://app.example.evil",
        "https://evil-app.example",
        "http://app.example",
        "https://app.exampl",
        "https://APP.example.evil",
    ] {
        let answer = http_exchange(&server, upgrade(trick).as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{trick}: {answer}");
    }
    let mut allowed = TcpStream::connect(server.addr()).await.expect("connect");
    allowed
        .write_all(upgrade("https://app.example").as_bytes())
        .await
        .expect("request");
    let mut head = [0u8; 12];
    allowed.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[tokio::test]
async fn hostile_messages_get_an_error_and_the_connection_goes_on() {
    let server = TestServer::start(&[]).await;
    let mut socket = joined_raw(&server, "mallory").await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_state = format!(
        r#"{{"type":"presence:update","room":"doc","state":{{"x":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: [Vec<u8>; 7] = [
        text(&deep),
        text(&deep_state),
        text(r#"{"type":"presence:update","room":"doc","state":{"name":"\ud800"}}"#),
        text(""),
        frame(0x80 | 0x2, b"\x00\x01binary", true),
        text(r#"["presence:join","r","room-x",{"id":"eve"}]"#),
        // A user read by position would join room-x as eve.
        text(r#"{"type":"presence:join","room":"room-x","user":["eve","Eve","s-1"]}"#),
    ];
    for case in cases {
        socket.send(&case).await;
        let (opcode, payload) = tokio::time::timeout(PATIENCE, socket.next_frame())
            .await
            .expect("answered in time")
            .expect("no reset")
            .expect("still open");
        assert_eq!(opcode, TEXT);
        let reply: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        assert_eq!(reply["type"], "presence:error", "{reply}");
        assert!(reply["code"].is_string(), "{reply}");
    }
    // A repeated key: refused, and the ref still echoed.
    socket
        .send(&text(
            r#"{"ref":"r-9","type":"presence:heartbeat","type":"presence:heartbeat"}"#,
        ))
        .await;
    let (_, payload) = tokio::time::timeout(PATIENCE, socket.next_frame())
        .await
        .expect("answered in time")
        .expect("no reset")
        .expect("still open");
    let reply: serde_json::Value = serde_json::from_slice(&payload).expect("json");
    assert_eq!(
        (&reply["type"], &reply["code"], &reply["ref"]),
        (
            &json!("presence:error"),
            &json!("invalid_message"),
            &json!("r-9")
        ),
        "{reply}"
    );
    // Still joined, still heard, and nobody entered room-x.
    assert_eq!(server.roster("doc").await, ["mallory"]);
    let (_, rooms) = server.get("/api/rooms", &[]).await;
    assert!(!rooms.contains("room-x"), "{rooms}");
    socket
        .send(&text(
            r#"{"type":"presence:update","room":"doc","state":{"ok":true}}"#,
        ))
        .await;
    assert_eq!(server.roster("doc").await, ["mallory"]);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_at_the_write_timeout_and_counted() {
    let server = TestServer::start(&[
        "--write-timeout",
        "500ms",
        "--max-state-bytes",
        "60000",
        "--max-messages-per-second",
        "1000",
    ])
    .await;
    // The sleeper joins, then never reads again: its small buffers fill and writes block.
    let sleeper = RawSocket::connect_with_receive_buffer(&server, Some(4096)).await;
    let _sleeper = join_raw(sleeper, "sleeper").await;
    let mut writer = server.joined("doc", "writer").await;
    let blob = "x".repeat(50_000);
    for n in 0..150 {
        writer
            .send(
                json!({"type": "presence:update", "room": "doc", "state": {"n": n, "blob": blob}}),
            )
            .await;
    }
    // The writer's own connection is untouched; the sleeper is cut and counted as slow.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while disconnects(&server, "write_timeout").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no write timeout");
        writer.sync("doc", "writer").await;
    }
    let (_, metrics) = server.get("/metrics", &[]).await;
    assert!(
        metrics.contains("presenced_slow_client_disconnects_total 1"),
        "{metrics}"
    );
}
