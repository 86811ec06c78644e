//! Three nodes sharing rooms through a real Redis: cross-node rosters, a node killed with
//! SIGKILL, restore on another node, drain with SIGTERM, and Redis killed and restarted.

use std::time::{Duration, Instant};

use presence_testkit::{Redis, Signal};
use serde_json::json;

use crate::support::{self, Client, Ended, TestServer, PATIENCE};

const TTL: Duration = Duration::from_millis(1000);
const GRACE: Duration = Duration::from_millis(1500);

async fn node(redis: &Redis, prefix: &str) -> TestServer {
    let url = redis.url();
    TestServer::start(&[
        "--redis",
        &url,
        "--redis-prefix",
        prefix,
        "--node-ttl",
        "1s",
        "--reconnect-grace",
        "1500ms",
        "--cursor-interval",
        "20ms",
    ])
    .await
}

async fn join_as(
    server: &TestServer,
    room: &str,
    user: &str,
    session: &str,
) -> (Client, serde_json::Value) {
    let mut client = server.client().await;
    client.send(json!({"type": "presence:join", "room": room, "user": {"id": user, "name": user, "sessionId": session}})).await;
    let current = client.until("presence:currentUsers").await;
    (client, current)
}

async fn cluster(count: usize) -> Option<(Redis, Vec<TestServer>)> {
    let redis = support::redis("cluster tests").await?;
    let prefix = format!("t{}:", rand_suffix());
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(node(&redis, &prefix).await);
    }
    for n in &mut nodes {
        n.ready().await;
    }
    Some((redis, nodes))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[tokio::test]
async fn three_nodes_share_one_roster() {
    let Some((_redis, nodes)) = cluster(3).await else {
        return;
    };
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    nodes[1].roster_becomes("doc", &["alice"]).await;
    let (mut bob, _) = join_as(&nodes[1], "doc", "bob", "b1").await;
    assert_eq!(
        alice.until("presence:userJoined").await["user"]["id"],
        "bob"
    );
    nodes[2].roster_becomes("doc", &["alice", "bob"]).await;
    let (mut carol, current) = join_as(&nodes[2], "doc", "carol", "c1").await;
    let listed: Vec<&str> = current["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(
        listed,
        ["alice", "bob", "carol"],
        "currentUsers on any node lists everyone"
    );
    assert_eq!(
        alice.until("presence:userJoined").await["user"]["id"],
        "carol"
    );

    carol
        .send(json!({"type": "presence:update", "room": "doc", "state": {"typing": true}}))
        .await;
    let updated = alice.until("presence:userUpdated").await;
    assert_eq!(
        (
            updated["user"]["id"].as_str(),
            updated["user"]["state"]["typing"].as_bool()
        ),
        (Some("carol"), Some(true))
    );

    bob.send(json!({"type": "presence:cursor", "room": "doc", "x": 0.5, "y": 0.25}))
        .await;
    let cursors = carol.until("presence:cursors").await;
    assert_eq!(cursors["cursors"][0]["userId"], "bob");

    bob.send(json!({"type": "presence:leave", "room": "doc"}))
        .await;
    assert_eq!(alice.until("presence:userLeft").await["userId"], "bob");
    for n in &nodes {
        n.roster_becomes("doc", &["alice", "carol"]).await;
    }
    let (_, metrics) = nodes[0].get("/metrics", &[]).await;
    assert!(
        metrics.lines().any(|l| l == "presenced_backend_up 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_killed_nodes_users_leave_for_everyone_within_ttl_plus_grace() {
    let Some((_redis, mut nodes)) = cluster(3).await else {
        return;
    };
    let (_alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    nodes[1].roster_becomes("doc", &["alice"]).await;
    let (mut bob, _) = join_as(&nodes[1], "doc", "bob", "b1").await;
    nodes[2].roster_becomes("doc", &["alice", "bob"]).await;
    let (mut carol, _) = join_as(&nodes[2], "doc", "carol", "c1").await;
    bob.until("presence:userJoined").await;

    let killed_at = Instant::now();
    let dead = nodes.remove(0);
    drop(dead); // SIGKILL
    assert_eq!(bob.until("presence:userLeft").await["userId"], "alice");
    assert_eq!(carol.until("presence:userLeft").await["userId"], "alice");
    let took = killed_at.elapsed();
    assert!(took >= GRACE, "left before the grace ran out ({took:?})");
    assert!(
        took < TTL + GRACE + Duration::from_secs(5),
        "the bound is ttl + grace ({took:?})"
    );
    nodes[0].roster_becomes("doc", &["bob", "carol"]).await;
}

#[tokio::test]
async fn a_client_of_a_killed_node_restores_on_another_node_unseen() {
    let Some((_redis, mut nodes)) = cluster(3).await else {
        return;
    };
    let (mut alice, first) = join_as(&nodes[0], "doc", "alice", "tab-1").await;
    alice
        .send(json!({"type": "presence:update", "room": "doc", "state": {"tool": "pen"}}))
        .await;
    nodes[2].roster_becomes("doc", &["alice"]).await;
    let (mut carol, current) = join_as(&nodes[2], "doc", "carol", "c1").await;
    // Carol's view must already hold alice's update, or its late arrival would look like
    // news after the restore.
    if current["users"][0]["state"]["tool"] != "pen" {
        let updated = carol.until("presence:userUpdated").await;
        assert_eq!(updated["user"]["state"]["tool"], "pen");
    }
    let color = first["users"][0]["color"].clone();

    drop(nodes.remove(0)); // SIGKILL alice's node
    let (mut again, _) = {
        let mut client = nodes[0].client().await;
        client
            .send(json!({"type": "presence:join", "room": "doc", "user": {"id": "alice", "name": "alice", "sessionId": "tab-1"}}))
            .await;
        let restored = client.expect("presence:restored").await;
        assert_eq!(restored["user"]["color"], color);
        assert_eq!(restored["user"]["state"]["tool"], "pen");
        let current = client.expect("presence:currentUsers").await;
        (client, current)
    };
    // Past the node TTL and the grace: carol never saw alice leave or join.
    tokio::time::sleep(TTL + GRACE + Duration::from_millis(500)).await;
    let seen = carol.sync("doc", "carol").await;
    assert!(seen.is_empty(), "carol saw {seen:?}");
    nodes[1].roster_becomes("doc", &["alice", "carol"]).await;
    again.send(json!({"type": "presence:heartbeat"})).await;
}

#[tokio::test]
async fn sigterm_drains_a_node_and_its_clients_restore_elsewhere_unseen() {
    let Some((_redis, mut nodes)) = cluster(2).await else {
        return;
    };
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "tab-1").await;
    nodes[1].roster_becomes("doc", &["alice"]).await;
    let (mut bob, _) = join_as(&nodes[1], "doc", "bob", "b1").await;
    alice.until("presence:userJoined").await;

    nodes[0].signal(Signal::Term).expect("SIGTERM");
    assert_eq!(alice.closed().await, Ended::Closed(Some(1012)));
    assert_eq!(nodes[0].exit_code(PATIENCE).await, Some(0));
    let mut again = nodes[1].client().await;
    again.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "alice", "sessionId": "tab-1"}})).await;
    again.expect("presence:restored").await;
    again.expect("presence:currentUsers").await;
    tokio::time::sleep(TTL + GRACE + Duration::from_millis(500)).await;
    assert!(
        bob.sync("doc", "bob").await.is_empty(),
        "bob saw no leave and no join"
    );
    nodes[1].roster_becomes("doc", &["alice", "bob"]).await;
}

#[tokio::test]
async fn redis_restarting_mid_session_heals_the_shared_roster() {
    let Some((mut redis, mut nodes)) = cluster(2).await else {
        return;
    };
    let port = redis.port();
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    nodes[1].roster_becomes("doc", &["alice"]).await;
    let (mut bob, _) = join_as(&nodes[1], "doc", "bob", "b1").await;
    alice.until("presence:userJoined").await;

    redis.kill().await;
    let deadline = Instant::now() + PATIENCE;
    while nodes[0].get("/readyz", &[]).await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "readyz never said the backend is gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Local rooms keep working while Redis is away.
    let (_carol, current) = join_as(&nodes[0], "doc", "carol", "c1").await;
    assert_eq!(current["users"].as_array().map(Vec::len), Some(3));
    alice
        .send(json!({"type": "presence:leave", "room": "doc"}))
        .await;
    nodes[0].roster_becomes("doc", &["bob", "carol"]).await;
    // Longer than the node TTL: silence during an outage must not orphan anyone.
    tokio::time::sleep(TTL * 2).await;
    nodes[1].roster_becomes("doc", &["alice", "bob"]).await;

    let _redis = Redis::start_on(port).await.expect("restart redis");
    nodes[0].ready().await;
    nodes[1].ready().await;
    nodes[1].roster_becomes("doc", &["bob", "carol"]).await;
    assert_eq!(bob.until("presence:userLeft").await["userId"], "alice");
    assert_eq!(
        bob.until("presence:userJoined").await["user"]["id"],
        "carol"
    );
}
