//! Starts the real `presenced` binary on port 0 and speaks to it over real sockets,
//! through `presence-client`'s [`Connection`].
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_client::{ConnectOptions, Connection, RecvError};
use presence_protocol::ServerMessage;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long any single expected event may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    child: Child,
    pub addr: String,
    _stdout: std::thread::JoinHandle<()>,
}

impl TestServer {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Spawns `presenced --listen 127.0.0.1:0 ARGS` and waits for its `listening on` line.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_presenced"));
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        Self::spawn(command)
    }

    pub fn spawn(mut command: Command) -> Self {
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("spawn presenced");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("presenced printed no `listening on` line");
        let addr = line
            .strip_prefix("listening on http://")
            .expect("the listening line")
            .to_owned();
        TestServer {
            child,
            addr,
            _stdout: reader,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// A client that joins `room` as `user` and reads its `currentUsers`.
    pub async fn joined(&self, room: &str, user: &str) -> Client {
        let mut client = self.client().await;
        client
            .send(
                json!({"type": "presence:join", "room": room, "user": {"id": user, "name": user}}),
            )
            .await;
        client.expect("presence:currentUsers").await;
        client
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY-free: libc::kill on our own child's pid.
        let pid = self.child.id() as i32;
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` with optional headers; returns status and body.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        http_get(&self.addr, path, headers).await
    }

    pub async fn roster(&self, room: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/api/rooms/{room}"), &[]).await;
        assert_eq!(status, 200, "{body}");
        let value: Value = serde_json::from_str(&body).expect("json");
        value["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("http timeout")
        .expect("read");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // Bodies may be chunked; tests only look for substrings or parse small JSON.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// A test's WebSocket: a `presence-client` [`Connection`] that reads frames as JSON, so
/// a test can look at exactly what the server wrote, and checks on the way that every
/// frame also decodes as the typed `ServerMessage` the Rust client relies on.
pub struct Client {
    connection: Connection,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

/// The close code a close frame without a body is reported as (RFC 6455 §7.1.5).
const NO_STATUS: u16 = 1005;

impl Client {
    pub async fn connect(url: &str) -> Self {
        let options = ConnectOptions {
            timeout: Some(PATIENCE),
            ..ConnectOptions::default()
        };
        let connection = Connection::connect(url, &options)
            .await
            .expect("websocket connect");
        Client { connection }
    }

    /// Connects with extra request headers; returns the HTTP status on refusal.
    pub async fn connect_with_headers(
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, u16> {
        let options = ConnectOptions {
            timeout: Some(PATIENCE),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..ConnectOptions::default()
        };
        match Connection::connect(url, &options).await {
            Ok(connection) => Ok(Client { connection }),
            Err(error) => Err(error
                .refused_status()
                .unwrap_or_else(|| panic!("unexpected connect error {error}"))),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.connection.send_text(text).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.connection
            .websocket_mut()
            .send(Message::binary(bytes))
            .await
            .expect("send");
    }

    /// The next text frame as JSON (pings are answered by the library meanwhile).
    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Ok(value) => value,
            Err(ended) => panic!("connection ended while waiting for a frame: {ended:?}"),
        }
    }

    async fn next_event(&mut self) -> Result<Value, Ended> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.connection.recv_text())
                .await
                .expect("no frame in time");
            match frame {
                Ok(text) => {
                    if let Err(error) = ServerMessage::decode(text.as_str()) {
                        panic!("the typed client cannot read {text}: {error}");
                    }
                    return Ok(serde_json::from_str(text.as_str()).expect("server sent JSON"));
                }
                Err(RecvError::Closed { code, .. }) => {
                    return Err(Ended::Closed((code != NO_STATUS).then_some(code)))
                }
                Err(error) if !error.is_fatal() => continue,
                Err(_) => return Err(Ended::Dropped),
            }
        }
    }

    /// The next frame, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let value = self.recv().await;
        assert_eq!(value["type"], kind, "expected {kind}, got {value}");
        value
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn until(&mut self, kind: &str) -> Value {
        loop {
            let value = self.recv().await;
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// The next error's code.
    pub async fn error_code(&mut self) -> String {
        let value = self.expect("presence:error").await;
        assert!(
            value["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors explain themselves"
        );
        value["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Ended {
        loop {
            match self.next_event().await {
                Ok(_) => continue,
                Err(ended) => return ended,
            }
        }
    }

    /// Round-trips a refresh join to `room` as `user`: everything the server queued for
    /// this connection before it is read first, so the returned frames are "all so far".
    pub async fn sync(&mut self, room: &str, user: &str) -> Vec<Value> {
        self.send(json!({"type": "presence:join", "room": room, "user": {"id": user}}))
            .await;
        let mut before = Vec::new();
        loop {
            let value = self.recv().await;
            if value["type"] == "presence:currentUsers" {
                return before;
            }
            before.push(value);
        }
    }

    /// Reads for `period` without sending anything of its own; the library answers the
    /// server's pings meanwhile, as a browser does. Returns how many pings arrived.
    pub async fn read_only_for(&mut self, period: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + period;
        let ws = self.connection.websocket_mut();
        let mut pings = 0;
        while let Ok(frame) = tokio::time::timeout_at(deadline, ws.next()).await {
            match frame {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Close(_)) | Err(_)) | None => panic!("closed while quiet"),
                Some(Ok(_)) => {}
            }
        }
        pings
    }

    /// Vanishes without a close frame, as a killed tab or a lost network does.
    pub fn drop_abruptly(self) {
        drop(self.connection);
    }

    /// Closes with 1000 and waits briefly for the server's close reply.
    pub async fn close(mut self) {
        let _ = self.connection.close().await;
    }

    /// Stops reading (and so stops answering pings) while keeping the socket open.
    pub fn go_silent(self) -> WebSocketStream<TcpStream> {
        self.connection.into_inner()
    }
}

pub fn ids(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A private `redis-server` on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one, or returns `None` (printing "skipped") when `redis-server` is not
    /// installed. Under `CI=true` a missing Redis is a failure, never a skip.
    pub fn start() -> Option<Self> {
        let port = free_port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Option<Self> {
        let spawned = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is required under CI=true: {error}"
                );
                eprintln!(
                    "skipped: redis-server not found ({error}); install it to run cluster tests"
                );
                return None;
            }
        };
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(RedisServer { child, port })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
