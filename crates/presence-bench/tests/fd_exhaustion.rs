//! presenced survives running out of file descriptors: started with a hard limit of 128
//! open files (so it cannot raise its own soft limit past it), it is flooded with more
//! connections than it can hold. The clients it already has keep being served, the
//! failed accepts are counted in `/metrics`, and once the flood ends it accepts again.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use presence_bench::clients::{self, Incoming, Sources, Ws};
use presence_bench::{http, Server};
use tokio::net::TcpStream;

const FILE_LIMIT: u32 = 128;

fn presenced() -> PathBuf {
    let sibling = PathBuf::from(env!("CARGO_BIN_EXE_presence-bench")).with_file_name("presenced");
    if !sibling.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "presence-server", "--bin", "presenced"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building presenced failed");
    }
    sibling
}

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits for the next `presence:cursors` frame, skipping roster events.
async fn next_cursors(ws: &mut Ws) -> Option<Vec<f64>> {
    let wait = async {
        while let Some(text) = clients::next_text(ws).await {
            if let Some(Incoming::Cursors(xs)) = clients::decode(&text) {
                return Some(xs);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .ok()
        .flatten()
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
    // prlimit sets soft and hard limits for the command it runs; presenced then raises
    // its soft limit to the hard one, which is this same low number.
    let wrapper = std::env::temp_dir().join(format!("presenced-lowfd-{}.sh", std::process::id()));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec prlimit --nofile={FILE_LIMIT}:{FILE_LIMIT} {} \"$@\"\n",
            presenced().display()
        ),
    )
    .expect("write wrapper");
    let mut permissions = std::fs::metadata(&wrapper).expect("wrapper").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wrapper, permissions).expect("chmod wrapper");
    let mut server = Server::start(&wrapper, &[])
        .await
        .expect("presenced starts");
    let sources = Sources::new(2);
    let room = clients::room("fd");

    // Ten members who joined before the flood.
    let mut members = Vec::new();
    for i in 0..10 {
        let mut ws = clients::connect(&server.url, sources, i)
            .await
            .expect("connect");
        ws.send_text(clients::join_frame(&room, &format!("m{i}"), None, false))
            .await
            .expect("join");
        loop {
            let text = clients::next_text(&mut ws).await.expect("join answer");
            if let Some(Incoming::CurrentUsers(_)) = clients::decode(&text) {
                break;
            }
        }
        members.push(ws);
    }

    // Flood: far more TCP connections than the server has descriptors left. The kernel
    // completes each handshake into the listen backlog; accept() is what fails.
    let mut flood = Vec::new();
    for _ in 0..(FILE_LIMIT as usize * 2) {
        match tokio::time::timeout(
            Duration::from_secs(2),
            TcpStream::connect(server.url.trim_start_matches("http://")),
        )
        .await
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
    let open_files = server.sample().expect("proc").open_files;
    assert!(
        open_files >= u64::from(FILE_LIMIT) - 2,
        "the server should be out of descriptors, but holds {open_files}"
    );
    // Give the accept loop time to hit the limit and back off a few times.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.is_alive(),
        "presenced died when it ran out of descriptors"
    );

    // The members are still served: a cursor move reaches the others.
    let (mover, watchers) = members.split_first_mut().expect("members");
    mover
        .send_text(clients::cursor_frame(&room, 42.0, 7.0))
        .await
        .expect("a member can still send");
    for watcher in watchers.iter_mut().take(3) {
        let xs = next_cursors(watcher)
            .await
            .expect("a member still receives cursors");
        assert_eq!(xs, [42.0]);
    }

    // The flood ends; the node accepts again and has counted the failures.
    drop(flood);
    let mut accept_errors = None;
    for _ in 0..50 {
        if let Ok(Some(value)) = http::metric(&server.url, "presenced_accept_errors_total").await {
            accept_errors = Some(value);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accept_errors = accept_errors.expect("/metrics answers once descriptors are free again");
    assert!(accept_errors > 0.0, "accept errors were not counted");

    // And it takes new members again.
    let mut late = clients::connect(&server.url, sources, 99)
        .await
        .expect("connect after the flood");
    late.send_text(clients::join_frame(&room, "late", None, false))
        .await
        .expect("join after the flood");
    let text = tokio::time::timeout(Duration::from_secs(10), clients::next_text(&mut late))
        .await
        .expect("answer in time")
        .expect("answer");
    assert!(
        matches!(clients::decode(&text), Some(Incoming::CurrentUsers(users)) if users.len() == 11)
    );
    server.stop().await;
    let _ = std::fs::remove_file(&wrapper);
}
