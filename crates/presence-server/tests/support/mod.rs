//! Starts the real `presenced` binary on port 0 (through `presence-testkit`) and speaks
//! to it over real sockets, through `presence-client`'s [`Connection`].
#![allow(dead_code)] // Each test binary uses a different part of the support code.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_client::{ConnectOptions, Connection, RecvError};
use presence_protocol::ServerMessage;
use presence_testkit::{redis_server_available, Presenced, PresencedCommand, Redis};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long any single expected event may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A `presenced` started for one test (killed when dropped), with the requests the
/// suite makes of it. Process control (`addr`, `signal`, `pid`, …) comes from the
/// testkit's [`Presenced`].
pub struct TestServer {
    process: Presenced,
}

impl Deref for TestServer {
    type Target = Presenced;

    fn deref(&self) -> &Presenced {
        &self.process
    }
}

impl DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Presenced {
        &mut self.process
    }
}

impl TestServer {
    /// Starts `presenced ARGS --listen 127.0.0.1:0` and waits for its `listening on` line.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    /// [`TestServer::start`] with extra environment variables.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = PresencedCommand::new(env!("CARGO_BIN_EXE_presenced")).args(args);
        for (name, value) in env {
            command = command.env(name, value);
        }
        Self::start_command(command).await
    }

    /// Starts `command` (say, `presenced` under a wrapper) the way the suite does.
    pub async fn start_command(command: PresencedCommand) -> Self {
        let process = command
            .start_timeout(PATIENCE)
            .echo_stderr()
            .start()
            .await
            .expect("presenced starts");
        TestServer { process }
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

    /// Waits up to `within` for the process to exit; returns its exit code.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        self.process
            .wait_exit(within)
            .await
            .and_then(|status| status.code())
    }

    /// `GET path` with optional headers; returns status and body.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .process
            .get(path, headers)
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        (response.status, response.body)
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

    /// Waits until the node lists exactly `expected` in `room`.
    pub async fn roster_becomes(&self, room: &str, expected: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let roster = self.roster(room).await;
            if roster == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "roster stuck at {roster:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/api/rooms` lists exactly `expected`, the rooms this node holds.
    pub async fn rooms_become(&self, expected: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get("/api/rooms", &[]).await;
            assert_eq!(status, 200, "{body}");
            let value: Value = serde_json::from_str(&body).expect("json");
            let rooms: Vec<&str> = value["rooms"]
                .as_array()
                .expect("rooms")
                .iter()
                .filter_map(|r| r["room"].as_str())
                .collect();
            if rooms == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rooms stuck at {rooms:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of an unlabelled metric in `/metrics` (0 when it is not there).
    pub async fn metric(&self, name: &str) -> u64 {
        let (_, text) = self.get("/metrics", &[]).await;
        text.lines()
            .filter_map(|line| line.strip_prefix(name))
            .filter_map(|rest| rest.strip_prefix(' '))
            .find_map(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as u64)
    }

    /// Waits until `/readyz` answers 200 (in cluster mode: the backend is subscribed).
    pub async fn ready(&mut self) {
        self.process
            .wait_ready(PATIENCE)
            .await
            .expect("node becomes ready");
    }

    /// The value of the counter `name{reason="REASON"}` in `/metrics`, if listed.
    pub async fn counter(&self, name: &str, reason: &str) -> Option<u64> {
        let (_, metrics) = self.get("/metrics", &[]).await;
        let series = format!("{name}{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.trim().parse().ok())
    }
}

/// Runs `presenced --listen 127.0.0.1:0 ARGS` with `env` added until it exits at start;
/// its exit code, standard output and standard error.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_presenced"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("spawn presenced");
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = exited
        .recv_timeout(Duration::from_secs(20))
        .expect("presenced exited at start")
        .expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A private `redis-server` on a free port (killed on drop), or `None` when it is not
/// installed: then `test` prints "skipped", except under `CI=true`, where it fails.
pub async fn redis(test: &str) -> Option<Redis> {
    if !redis_server_available(test) {
        return None;
    }
    Some(Redis::start().await.expect("redis-server starts"))
}

/// A private three-master Redis Cluster on free ports (killed on drop), or `None` when
/// `redis-server` is not installed (a failure under `CI=true`, as for [`redis`]).
pub async fn redis_cluster(test: &str) -> Option<presence_testkit::RedisCluster> {
    if !redis_server_available(test) {
        return None;
    }
    Some(
        presence_testkit::RedisCluster::start(3)
            .await
            .expect("a local Redis Cluster starts"),
    )
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
    pub fn go_silent(self) -> WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
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
