//! Running the binary: configuration sources, the listening line, and shutdown.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Ended, TestServer};

#[tokio::test]
async fn sigterm_closes_connections_with_1012_and_exits_promptly() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.joined("doc", "alice").await;
    let mut bob = server.joined("doc", "bob").await;
    let started = Instant::now();
    server.signal(15);
    assert_eq!(alice.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(bob.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.joined("doc", "alice").await;
    server.signal(2);
    assert_eq!(alice.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn settings_come_from_the_environment_and_a_toml_file() {
    let dir = std::env::temp_dir().join(format!("presenced-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("presenced.toml");
    std::fs::write(&file, "max-members-per-room = 1\n").expect("write");
    let server = TestServer::start_with_env(
        &["--config", file.to_str().expect("utf8")],
        &[("PRESENCED_MAX_STATE_BYTES", "32")],
    );
    let mut alice = server.joined("doc", "alice").await;
    alice
        .send(json!({"type": "presence:update", "room": "doc", "state": {"k": "x".repeat(40)}}))
        .await;
    assert_eq!(
        alice.error_code().await,
        "too_large",
        "PRESENCED_MAX_STATE_BYTES applies"
    );
    let mut bob = server.client().await;
    bob.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "bob"}}))
        .await;
    assert_eq!(bob.error_code().await, "room_full", "the TOML file applies");
}

#[test]
fn bad_settings_fail_fast_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_presenced"))
        .args(["--listen", "127.0.0.1:0", "--reconnect-grace", "soon"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("reconnect-grace") && stderr.contains("10s"),
        "{stderr}"
    );
}

#[test]
fn the_listening_line_carries_the_real_port() {
    let server = TestServer::start(&[]);
    let port: u16 = server
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_ne!(port, 0);
}
