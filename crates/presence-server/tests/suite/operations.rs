//! Running the binary: configuration sources, the listening line, and shutdown.

use std::process::Command;
use std::time::{Duration, Instant};

use presence_testkit::Signal;
use serde_json::json;

use crate::support::{Ended, TestServer};

#[tokio::test]
async fn sigterm_closes_connections_with_1012_and_exits_promptly() {
    let mut server = TestServer::start(&[]).await;
    let mut alice = server.joined("doc", "alice").await;
    let mut bob = server.joined("doc", "bob").await;
    let started = Instant::now();
    server.signal(Signal::Term).expect("SIGTERM");
    assert_eq!(alice.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(bob.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let mut server = TestServer::start(&[]).await;
    let mut alice = server.joined("doc", "alice").await;
    server.signal(Signal::Int).expect("SIGINT");
    assert_eq!(alice.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, Some(0));
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
    )
    .await;
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

#[tokio::test]
async fn the_listening_line_carries_the_real_port() {
    let server = TestServer::start(&[]).await;
    assert_ne!(server.addr().port(), 0);
}

#[test]
fn logs_go_to_standard_error_as_text_or_json() {
    for (format, looks_right) in [
        (
            "json",
            (|line: &str| {
                serde_json::from_str::<serde_json::Value>(line)
                    .is_ok_and(|v| v["level"].is_string())
            }) as fn(&str) -> bool,
        ),
        ("text", |line: &str| {
            line.contains("INFO") && !line.starts_with('{')
        }),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_presenced"))
            .args(["--listen", "127.0.0.1:0", "--log-format", format])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("listening line");
        assert!(
            line.starts_with("listening on http://"),
            "stdout carries only the listening line: {line}"
        );
        let _ = Command::new("kill")
            .args(["-15", &child.id().to_string()])
            .status();
        let output = child.wait_with_output().expect("exit");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.lines().any(looks_right),
            "{format} logs on stderr:\n{stderr}"
        );
        // stderr is a pipe here, as under systemd or docker: no terminal colour codes.
        assert!(
            !stderr.contains('\u{1b}'),
            "{format} logs to a pipe carry ANSI escapes:\n{stderr}"
        );
        let rest = String::from_utf8_lossy(&output.stdout);
        assert!(rest.trim().is_empty(), "nothing else on stdout: {rest}");
    }
}
