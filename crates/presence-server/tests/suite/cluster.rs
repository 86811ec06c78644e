//! Three nodes sharing rooms through a real Redis: cross-node rosters (whole at a node's
//! first join), a node killed with SIGKILL, restore on another node, drain with SIGTERM,
//! Redis killed and restarted, and a node that holds nothing of the rooms it does not
//! serve. All but the Redis restart run on one Redis and on a three-master Redis Cluster.

use std::time::{Duration, Instant};

use presence_testkit::{Redis, Signal};
use serde_json::json;

use crate::support::{self, Client, Ended, TestServer, PATIENCE};

const TTL: Duration = Duration::from_millis(1000);
const GRACE: Duration = Duration::from_millis(1500);

async fn node(url: &str, prefix: &str) -> TestServer {
    TestServer::start(&[
        "--redis",
        url,
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

/// What the nodes share: one Redis, or a three-master Redis Cluster.
#[derive(Clone, Copy)]
enum Tier {
    Single,
    Cluster,
}

/// The Redis processes of a test, killed on drop.
enum Shared {
    Single(Redis),
    Cluster(presence_testkit::RedisCluster),
}

impl Shared {
    /// What `--redis` is given: the URL, or the seed URLs.
    fn url(&self) -> String {
        match self {
            Shared::Single(redis) => redis.url(),
            Shared::Cluster(cluster) => cluster.urls().join(","),
        }
    }
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

async fn cluster(count: usize, tier: Tier) -> Option<(Shared, Vec<TestServer>)> {
    let shared = match tier {
        Tier::Single => Shared::Single(support::redis("cluster tests").await?),
        Tier::Cluster => {
            Shared::Cluster(support::redis_cluster("cluster tests on a Redis Cluster").await?)
        }
    };
    let url = shared.url();
    let prefix = format!("t{}:", rand_suffix());
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(node(&url, &prefix).await);
    }
    for n in &mut nodes {
        n.ready().await;
    }
    Some((shared, nodes))
}

/// Runs a test on one Redis and on a Redis Cluster.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn one_redis() {
                super::$name(super::Tier::Single).await;
            }

            #[tokio::test]
            async fn redis_cluster() {
                super::$name(super::Tier::Cluster).await;
            }
        }
    )*};
}

on_both!(
    three_nodes_share_one_roster,
    a_killed_nodes_users_leave_for_everyone_within_ttl_plus_grace,
    a_client_of_a_killed_node_restores_on_another_node_unseen,
    sigterm_drains_a_node_and_its_clients_restore_elsewhere_unseen,
    a_node_holds_nothing_of_the_rooms_it_does_not_serve,
    large_rooms_read_the_same_on_every_node,
);

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn three_nodes_share_one_roster(tier: Tier) {
    let Some((_redis, nodes)) = cluster(3, tier).await else {
        return;
    };
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    // Node 1 serves nobody in doc yet: its first joiner's roster is read from the records.
    let (mut bob, current) = join_as(&nodes[1], "doc", "bob", "b1").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "bob"]);
    assert_eq!(
        alice.until("presence:userJoined").await["user"]["id"],
        "bob"
    );
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
    nodes[0].roster_becomes("doc", &["alice", "carol"]).await;
    nodes[2].roster_becomes("doc", &["alice", "carol"]).await;
    // Bob was node 1's only session in doc: node 1 let the room go, and answers for it
    // from the records.
    nodes[1].rooms_become(&[]).await;
    nodes[1].roster_becomes("doc", &["alice", "carol"]).await;
    let (_, metrics) = nodes[0].get("/metrics", &[]).await;
    assert!(
        metrics.lines().any(|l| l == "presenced_backend_up 1"),
        "{metrics}"
    );
}

async fn a_killed_nodes_users_leave_for_everyone_within_ttl_plus_grace(tier: Tier) {
    let Some((_redis, mut nodes)) = cluster(3, tier).await else {
        return;
    };
    let (_alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    let (mut bob, current) = join_as(&nodes[1], "doc", "bob", "b1").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "bob"]);
    let (mut carol, current) = join_as(&nodes[2], "doc", "carol", "c1").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "bob", "carol"]);
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

async fn a_client_of_a_killed_node_restores_on_another_node_unseen(tier: Tier) {
    let Some((_redis, mut nodes)) = cluster(3, tier).await else {
        return;
    };
    let (mut alice, first) = join_as(&nodes[0], "doc", "alice", "tab-1").await;
    alice
        .send(json!({"type": "presence:update", "room": "doc", "state": {"tool": "pen"}}))
        .await;
    nodes[0].roster_becomes("doc", &["alice"]).await;
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

async fn sigterm_drains_a_node_and_its_clients_restore_elsewhere_unseen(tier: Tier) {
    let Some((_redis, mut nodes)) = cluster(2, tier).await else {
        return;
    };
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "tab-1").await;
    let (mut bob, current) = join_as(&nodes[1], "doc", "bob", "b1").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "bob"]);
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
    let Some((Shared::Single(mut redis), mut nodes)) = cluster(2, Tier::Single).await else {
        return;
    };
    let port = redis.port();
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    let (mut bob, current) = join_as(&nodes[1], "doc", "bob", "b1").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "bob"]);
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
    // The restarted Redis holds no records until the nodes write theirs again; nobody
    // takes a missing record for a leave until the writer said so, or a node TTL passed.
    nodes[1].roster_becomes("doc", &["bob", "carol"]).await;
    let mut news = Vec::new();
    while news.len() < 2 {
        let message = bob.recv().await;
        match message["type"].as_str() {
            Some("presence:userLeft") => news.push(format!("left {}", message["userId"])),
            Some("presence:userJoined") => news.push(format!("joined {}", message["user"]["id"])),
            _ => {}
        }
    }
    news.sort();
    assert_eq!(news, [r#"joined "carol""#, r#"left "alice""#]);
}

async fn a_node_holds_nothing_of_the_rooms_it_does_not_serve(tier: Tier) {
    let Some((_redis, nodes)) = cluster(2, tier).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut alice, _) = join_as(a, "busy-1", "alice", "a1").await;
    alice
        .send(json!({"type": "presence:update", "room": "busy-1", "state": {"tool": "pen"}}))
        .await;
    let (mut ann, _) = join_as(a, "busy-1", "ann", "n1").await;
    let (_ben, _) = join_as(a, "busy-2", "ben", "b1").await;
    for i in 0..20 {
        let x = f64::from(i) / 20.0;
        alice
            .send(json!({"type": "presence:cursor", "room": "busy-1", "x": x, "y": 0.5}))
            .await;
        ann.until("presence:cursors").await;
    }
    assert!(a.metric("presenced_facts_published_total").await > 3);

    // Node B has never served these rooms: no roster, no channel, no fact applied; asked
    // about one, it answers from the records.
    b.rooms_become(&[]).await;
    assert_eq!(b.metric("presenced_rooms").await, 0);
    b.roster_becomes("busy-1", &["alice", "ann"]).await;
    assert_eq!(
        b.metric("presenced_rooms").await,
        0,
        "answering from the records holds nothing"
    );
    assert_eq!(b.metric("presenced_cluster_rooms_followed").await, 0);
    assert_eq!(b.metric("presenced_facts_applied_total").await, 0);

    // B starts serving busy-1: its first joiner sees the room as A's clients do.
    let on_a = a.get("/api/rooms/busy-1", &[]).await.1;
    let on_a: serde_json::Value = serde_json::from_str(&on_a).expect("json");
    let (mut carol, current) = join_as(b, "busy-1", "carol", "c1").await;
    let users = current["users"].as_array().expect("users");
    let listed_on_a = on_a["users"].as_array().expect("users");
    for (seen, truth) in users.iter().zip(listed_on_a) {
        for key in ["id", "name", "color", "joinedAt", "state", "sessions"] {
            assert_eq!(seen[key], truth[key], "{key} of {}", truth["id"]);
        }
    }
    assert_eq!(support::ids(&current["users"]), ["alice", "ann", "carol"]);
    assert_eq!(b.metric("presenced_cluster_rooms_followed").await, 1);
    alice
        .send(json!({"type": "presence:cursor", "room": "busy-1", "x": 0.9, "y": 0.9}))
        .await;
    assert_eq!(
        carol.until("presence:cursors").await["cursors"][0]["userId"],
        "alice"
    );

    // Carol leaves: B lets the room go, and A's traffic no longer reaches it.
    carol
        .send(json!({"type": "presence:leave", "room": "busy-1"}))
        .await;
    alice.until("presence:userLeft").await;
    let deadline = Instant::now() + PATIENCE;
    while b.metric("presenced_cluster_rooms_followed").await != 0 {
        assert!(Instant::now() < deadline, "B still follows busy-1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.rooms_become(&[]).await;
    let applied = b.metric("presenced_facts_applied_total").await;
    let published = a.metric("presenced_facts_published_total").await;
    for i in 0..20 {
        let x = f64::from(i) / 20.0;
        alice
            .send(json!({"type": "presence:cursor", "room": "busy-1", "x": x, "y": 0.1}))
            .await;
        ann.until("presence:cursors").await;
    }
    let deadline = Instant::now() + PATIENCE;
    while a.metric("presenced_facts_published_total").await < published + 3 {
        assert!(Instant::now() < deadline, "A published nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // B's own beat is published on its node-wide channel, never applied to a room.
    b.rooms_become(&[]).await;
    assert_eq!(b.metric("presenced_facts_applied_total").await, applied);
}

/// Reads `presence:count` until it says `count` and `spectators`.
async fn counts_become(client: &mut Client, count: u64, spectators: u64) {
    loop {
        let frame = client.until("presence:count").await;
        if (frame["count"].as_u64(), frame["spectators"].as_u64())
            == (Some(count), Some(spectators))
        {
            return;
        }
    }
}

async fn large_rooms_read_the_same_on_every_node(tier: Tier) {
    let Some((_redis, nodes)) = cluster(3, tier).await else {
        return;
    };
    let (mut alice, _) = join_as(&nodes[0], "doc", "alice", "a1").await;
    let (_bob, _) = join_as(&nodes[0], "doc", "bob", "b1").await;
    // A spectator on another node: its window and numbers come from node 0's records.
    let mut eve = nodes[1].client().await;
    eve.send(
        json!({"type": "presence:join", "room": "doc", "user": {"id": "eve", "sessionId": "e1"},
                    "spectator": true, "view": {"list": 1}}),
    )
    .await;
    let current = eve.until("presence:currentUsers").await;
    assert_eq!(support::ids(&current["users"]), ["alice"]);
    assert_eq!(
        (current["count"].as_u64(), current["spectators"].as_u64()),
        (Some(2), Some(1))
    );

    // A list view on node 0 counts node 1's spectator.
    let mut vic = nodes[0].client().await;
    vic.send(
        json!({"type": "presence:join", "room": "doc", "user": {"id": "vic", "sessionId": "v1"},
                    "view": {"list": 1}}),
    )
    .await;
    let current = vic.until("presence:currentUsers").await;
    assert_eq!(support::ids(&current["users"]), ["alice", "vic"]);
    assert_eq!(
        (current["count"].as_u64(), current["spectators"].as_u64()),
        (Some(3), Some(1))
    );
    nodes[1]
        .roster_becomes("doc", &["alice", "bob", "vic"])
        .await;

    // A listed user leaves on node 0: node 1's window lets the next one in.
    alice.send(json!({"type": "presence:leave"})).await;
    assert_eq!(eve.until("presence:userLeft").await["userId"], "alice");
    assert_eq!(eve.until("presence:userJoined").await["user"]["id"], "bob");
    counts_become(&mut vic, 2, 1).await;

    // The spectator leaves on node 1: node 0 hears the numbers change.
    eve.send(json!({"type": "presence:leave"})).await;
    counts_become(&mut vic, 2, 0).await;

    // A node that serves nobody there answers from the records, paged and counted.
    let (_, body) = nodes[2].get("/api/rooms/doc?limit=1", &[]).await;
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(support::ids(&page["users"]), ["bob"]);
    assert_eq!(
        (page["count"].as_u64(), page["spectators"].as_u64()),
        (Some(2), Some(0))
    );
}
