//! Leave, grace, heartbeat timeout and restore, with killed clients, and a restart with
//! a state file.

use std::time::{Duration, Instant};

use serde_json::json;

use presence_testkit::Signal;

use crate::support::{ids, Ended, TestServer, PATIENCE};

#[tokio::test]
async fn explicit_leave_is_immediate() {
    let server = TestServer::start(&["--reconnect-grace", "30s"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let mut alice = server.joined("doc", "alice").await;
    olga.expect("presence:userJoined").await;
    alice
        .send(json!({"type": "presence:leave", "room": "doc"}))
        .await;
    assert_eq!(olga.expect("presence:userLeft").await["userId"], "alice");
}

#[tokio::test]
async fn a_killed_client_stays_listed_for_the_grace_then_leaves() {
    let grace = Duration::from_millis(600);
    let server = TestServer::start(&["--reconnect-grace", "600ms"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let alice = server.joined("doc", "alice").await;
    olga.expect("presence:userJoined").await;

    let killed_at = Instant::now();
    alice.drop_abruptly();
    // Still there for the others while the grace runs.
    assert_eq!(server.roster("doc").await, ["olga", "alice"]);
    let left = olga.expect("presence:userLeft").await;
    assert_eq!(left["userId"], "alice");
    assert!(
        killed_at.elapsed() >= grace - Duration::from_millis(50),
        "left before the grace ended"
    );
    assert_eq!(server.roster("doc").await, ["olga"]);
}

#[tokio::test]
async fn a_reconnect_within_the_grace_restores_without_a_leave_or_join() {
    let server = TestServer::start(&["--reconnect-grace", "5s"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let mut alice = server.client().await;
    let join = json!({"type": "presence:join", "room": "doc",
        "user": {"id": "alice", "name": "Alice", "sessionId": "tab-1"}, "state": {"tool": "pen"}});
    alice.send(join.clone()).await;
    let first = alice.expect("presence:currentUsers").await;
    let before = first["users"].as_array().expect("users")[1].clone();
    olga.expect("presence:userJoined").await;
    alice
        .send(json!({"type": "presence:cursor", "room": "doc", "x": 0.25, "y": 0.75}))
        .await;
    olga.expect("presence:cursors").await;

    alice.drop_abruptly();
    let mut again = server.client().await;
    again.send(join).await;
    let restored = again.expect("presence:restored").await;
    assert_eq!(restored["sessionId"], "tab-1");
    for field in ["color", "joinedAt", "state"] {
        assert_eq!(
            restored["user"][field], before[field],
            "{field} changed on restore"
        );
    }
    assert_eq!(
        restored["user"]["cursor"],
        json!({"x": 0.25, "y": 0.75, "visible": true})
    );
    let current = again.expect("presence:currentUsers").await;
    assert_eq!(current["self"]["sessionId"], "tab-1");
    assert_eq!(ids(&current["users"]), ["olga", "alice"]);
    // Olga saw neither a leave nor a join.
    assert!(olga.sync("doc", "olga").await.is_empty());
}

#[tokio::test]
async fn another_user_cannot_restore_someone_elses_session() {
    let server = TestServer::start(&["--reconnect-grace", "5s"]).await;
    let mut alice = server.client().await;
    alice.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "alice", "sessionId": "tab-1"}})).await;
    alice.expect("presence:currentUsers").await;
    alice.drop_abruptly();
    let mut mallory = server.client().await;
    mallory.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "mallory", "sessionId": "tab-1"}})).await;
    // No presence:restored: the first frame is a plain currentUsers for mallory's own session.
    let current = mallory.expect("presence:currentUsers").await;
    assert_eq!(current["self"]["id"], "mallory");
    assert_eq!(ids(&current["users"]), ["alice", "mallory"]);
    assert_eq!(
        current["users"][0]["sessions"], 1,
        "alice's held session is untouched"
    );
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_heartbeat_timeout() {
    let server =
        TestServer::start(&["--heartbeat-timeout", "900ms", "--reconnect-grace", "30s"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let alice = server.joined("doc", "alice").await;
    olga.expect("presence:userJoined").await;
    // Alice's socket stays open but nobody reads it, so the server's pings go unanswered,
    // as with a half-open TCP connection.
    let _silent = alice.go_silent();
    let started = Instant::now();
    let left = olga.expect("presence:userLeft").await;
    assert_eq!(left["userId"], "alice");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "dropped at the timeout, not after the 30 s grace"
    );
    // Olga read her frames (and so answered pings) all along: she is still here.
    assert_eq!(server.roster("doc").await, ["olga"]);
}

#[tokio::test]
async fn answering_pings_keeps_a_quiet_client_alive() {
    let server = TestServer::start(&["--heartbeat-timeout", "600ms"]).await;
    let mut alice = server.joined("doc", "alice").await;
    let mut olga = server.joined("doc", "olga").await;
    // Both only read (the library answers pings) across three timeouts, sending nothing.
    let (pings_a, pings_b) = tokio::join!(
        alice.read_only_for(Duration::from_millis(1800)),
        olga.read_only_for(Duration::from_millis(1800))
    );
    assert!(
        pings_a >= 2 && pings_b >= 2,
        "the server pinged every timeout/3 ({pings_a}, {pings_b})"
    );
    assert_eq!(server.roster("doc").await, ["alice", "olga"]);
}

#[tokio::test]
async fn an_unloading_page_is_restored_by_its_reload_and_a_closed_tab_leaves_in_seconds() {
    // The reconnect grace is far longer than the test waits: only the unload grace can end
    // the closed tab's session in time.
    let server = TestServer::start(&["--reconnect-grace", "60s", "--unload-grace", "1s"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let join = json!({"type": "presence:join", "room": "doc",
        "user": {"id": "alice", "sessionId": "tab-1"}});
    let unload = json!({"type": "presence:leave", "reason": "unload"});

    // A reload: the old page unloads, the new one restores within the unload grace.
    let mut page = server.client().await;
    page.send(join.clone()).await;
    page.expect("presence:currentUsers").await;
    olga.expect("presence:userJoined").await;
    page.send(unload.clone()).await;
    page.drop_abruptly();
    let mut reloaded = server.client().await;
    reloaded.send(join).await;
    reloaded.expect("presence:restored").await;
    reloaded.expect("presence:currentUsers").await;
    assert!(
        olga.sync("doc", "olga").await.is_empty(),
        "olga saw nothing"
    );

    // A closed tab: nobody restores it, and it leaves after the unload grace.
    reloaded.send(unload).await;
    reloaded.drop_abruptly();
    let left = olga.until("presence:userLeft").await;
    assert_eq!(left["userId"], "alice");
    assert_eq!(server.roster("doc").await, ["olga"]);
}

/// A scratch path for one test's state file.
fn state_path(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("presenced-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("state.json")
}

#[tokio::test]
async fn a_single_node_restarted_with_a_state_file_is_invisible_to_its_clients() {
    let path = state_path("restart");
    let file = path.to_str().expect("utf-8 path");
    let args = ["--state-file", file, "--reconnect-grace", "30s"];
    let mut first = TestServer::start(&args).await;
    let join = |user: &str, tab: &str| json!({"type": "presence:join", "room": "doc", "user": {"id": user, "name": user, "sessionId": tab}});
    let mut ada = first.client().await;
    ada.send(join("ada", "tab-a")).await;
    ada.expect("presence:currentUsers").await;
    ada.send(json!({"type": "presence:update", "room": "doc", "state": {"tool": "pen"}}))
        .await;
    let mut bob = first.client().await;
    bob.send(join("bob", "tab-b")).await;
    let before = bob.expect("presence:currentUsers").await;

    first.signal(Signal::Term).expect("SIGTERM");
    assert_eq!(ada.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(first.exit_code(PATIENCE).await, Some(0));
    assert!(path.exists(), "the sessions were written down");

    let second = TestServer::start(&args).await;
    assert!(!path.exists(), "the file is used once");
    let mut bob = second.client().await;
    bob.send(join("bob", "tab-b")).await;
    bob.expect("presence:restored").await;
    let after = bob.expect("presence:currentUsers").await;
    for key in ["id", "color", "joinedAt", "state"] {
        let pick = |v: &serde_json::Value| -> Vec<serde_json::Value> {
            v["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| u[key].clone())
                .collect()
        };
        assert_eq!(
            pick(&after),
            pick(&before),
            "{key}: the same users, in the same order"
        );
    }
    let mut ada = second.client().await;
    ada.send(join("ada", "tab-a")).await;
    let restored = ada.expect("presence:restored").await;
    assert_eq!(restored["user"]["state"]["tool"], "pen");
    ada.expect("presence:currentUsers").await;
    assert!(
        bob.sync("doc", "bob").await.is_empty(),
        "bob saw nobody leave or join"
    );
}

#[tokio::test]
async fn a_corrupt_state_file_is_ignored_and_the_node_starts_empty() {
    let path = state_path("corrupt");
    std::fs::write(&path, b"{\"version\": 1, \"sessions\": [").expect("write");
    let file = path.to_str().expect("utf-8 path");
    let server = TestServer::start(&["--state-file", file]).await;
    server.rooms_become(&[]).await;
    let mut ada = server.client().await;
    ada.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "ada", "sessionId": "tab-a"}}))
        .await;
    let current = ada.expect("presence:currentUsers").await;
    assert_eq!(ids(&current["users"]), ["ada"]);
}
