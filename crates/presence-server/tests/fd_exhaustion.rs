//! presenced survives running out of file descriptors: started with a hard limit of 128
//! open files (so it cannot raise its own soft limit past it), it is flooded with more
//! connections than it can hold. The clients it already has keep being served, the
//! failed accepts are counted in `/metrics`, and once the flood ends it accepts again.
//! A test binary of its own: the flood holds hundreds of sockets in this process, which
//! the rest of the suite should not have to share a descriptor limit with.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use presence_testkit::{http, PresencedCommand};
use serde_json::{json, Value};
use support::TestServer;
use tokio::net::TcpStream;

const FILE_LIMIT: u32 = 128;

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Open file descriptors of process `pid` (`/proc/PID/fd` entries).
fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count() as u64)
        .unwrap_or(0)
}

/// The value of the unlabelled metric `name` in a Prometheus text exposition.
fn metric(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn cursor_xs(frame: &Value) -> Vec<f64> {
    frame["cursors"]
        .as_array()
        .expect("cursors")
        .iter()
        .filter_map(|entry| entry["x"].as_f64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_clients_are_served_while_accept_runs_out_of_descriptors() {
    if !has_prlimit() {
        assert!(
            std::env::var("CI").is_err(),
            "prlimit (util-linux) is needed for this test"
        );
        eprintln!("skipped: no prlimit on this machine");
        return;
    }
    // prlimit sets soft and hard limits and then execs presenced (same pid), which raises
    // its soft limit to the hard one: this same low number.
    let command = PresencedCommand::new("prlimit").args([
        format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"),
        env!("CARGO_BIN_EXE_presenced").to_owned(),
    ]);
    let mut server = TestServer::start_command(command).await;

    // Ten members who joined before the flood.
    let mut members = Vec::new();
    for i in 0..10 {
        members.push(server.joined("fd", &format!("m{i}")).await);
    }

    // Flood: far more TCP connections than the server has descriptors left. The kernel
    // completes each handshake into the listen backlog; accept() is what fails.
    let mut flood = Vec::new();
    for _ in 0..(FILE_LIMIT as usize * 2) {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(server.addr())).await
        {
            Ok(Ok(stream)) => flood.push(stream),
            _ => break,
        }
    }
    assert!(
        flood.len() > FILE_LIMIT as usize,
        "the flood opened only {} connections",
        flood.len()
    );
    let open_files = open_files(server.pid());
    assert!(
        open_files >= u64::from(FILE_LIMIT) - 2,
        "the server should be out of descriptors, but holds {open_files}"
    );
    // Give the accept loop time to hit the limit and back off a few times: nothing it
    // does meanwhile can be observed from outside, since it cannot accept.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.is_running(),
        "presenced died when it ran out of descriptors"
    );

    // The members are still served: a cursor move reaches the others.
    let (mover, watchers) = members.split_first_mut().expect("members");
    mover
        .send(json!({"type": "presence:cursor", "room": "fd", "x": 42.0, "y": 7.0}))
        .await;
    for watcher in watchers.iter_mut().take(3) {
        let cursors = watcher.until("presence:cursors").await;
        assert_eq!(cursor_xs(&cursors), [42.0]);
    }

    // The flood ends; the node accepts again and has counted the failures.
    drop(flood);
    let mut accept_errors = None;
    for _ in 0..50 {
        // Early requests may still fail while descriptors are freed: retry, don't panic.
        if let Ok(response) = http::get(&server.url(), "/metrics", &[]).await {
            if let Some(value) = metric(&response.body, "presenced_accept_errors_total") {
                accept_errors = Some(value);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accept_errors = accept_errors.expect("/metrics answers once descriptors are free again");
    assert!(accept_errors > 0.0, "accept errors were not counted");

    // And it takes new members again.
    let mut late = server.client().await;
    late.send(json!({"type": "presence:join", "room": "fd", "user": {"id": "late"}}))
        .await;
    let current = late.expect("presence:currentUsers").await;
    assert_eq!(current["users"].as_array().map(Vec::len), Some(11));
}
