//! The backend contract, written once and run on every implementation (ripgrep's
//! `rgtest!`, centrifuge's factory): delivery in order to every subscription that follows
//! a fact's room (node-wide facts to all), records written by facts and read back, and
//! node liveness and records that expire by themselves. Each runs on the memory backend,
//! on one Redis and on a three-master Redis Cluster. Redis runs against
//! `PRESENCED_TEST_REDIS_URL` if set, else a private `redis-server`, with a fresh key
//! prefix per test; without Redis the Redis half prints "skipped", except under `CI=true`.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use presence_core::{Fact, NodeId, SessionRecord, Stamp};
use presence_protocol::{CursorPosition, RoomName, SessionId, State, User, UserId};
use presence_server::backend::{Backend, Channels, FactStream, RedisBackend};
use presence_testkit::Redis;

const PATIENCE: Duration = Duration::from_secs(10);

async fn next(stream: &mut FactStream) -> Fact {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("a fact in time")
        .expect("stream open")
        .expect("a fact the backend accepts")
}

fn cursor_fact(node: u64, n: u64) -> Fact {
    Fact::Cursors {
        node: NodeId(node),
        room: RoomName::new("contract").expect("room"),
        cursors: vec![presence_protocol::CursorEntry {
            user_id: presence_protocol::UserId::new("u").expect("id"),
            x: n as f64,
            y: 0.0,
            visible: true,
        }],
    }
}

const RECORD_TTL: Duration = Duration::from_secs(1);

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("room")
}

/// A subscription that follows `rooms`.
async fn subscribed<B: Backend>(backend: &B, rooms: &[&str]) -> (FactStream, B::Channels) {
    let (stream, mut channels) = backend.subscribe().await.expect("subscribe");
    let rooms: Vec<RoomName> = rooms.iter().map(|r| room(r)).collect();
    channels.follow(&rooms).await.expect("follow");
    (stream, channels)
}

fn record(room_name: &str, user: &str, session: &str, unix_ms: u64) -> SessionRecord {
    let stamp = Stamp { unix_ms, node: 1 };
    SessionRecord {
        room: room(room_name),
        session_id: SessionId::new(session).expect("id"),
        user: User {
            id: UserId::new(user).expect("id"),
            name: user.to_owned(),
            color: "#5E35B1".to_owned(),
            joined_at: unix_ms,
            last_seen: unix_ms,
            cursor: CursorPosition::default(),
            state: State::default(),
            sessions: 1,
        },
        away: false,
        stamp,
        claim: stamp,
        spectator: false,
    }
}

/// The (node, user, session) of every record of `room`, sorted.
async fn held<B: Backend>(backend: &B, room_name: &str) -> Vec<(u64, String, String)> {
    let found = backend.records(&room(room_name)).await.expect("records");
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    let mut held: Vec<_> = found
        .records
        .iter()
        .map(|(node, r)| (node.0, r.user.id.to_string(), r.session_id.to_string()))
        .collect();
    held.sort();
    held
}

fn entry(node: u64, user: &str, session: &str) -> (u64, String, String) {
    (node, user.to_owned(), session.to_owned())
}

async fn every_subscriber_gets_every_fact_in_order<B: Backend>(backend: B) {
    let (mut first, _a) = subscribed(&backend, &["contract"]).await;
    let (mut second, _b) = subscribed(&backend, &["contract"]).await;
    for n in 0..50 {
        backend.publish(&cursor_fact(1, n)).await.expect("publish");
    }
    for stream in [&mut first, &mut second] {
        for n in 0..50 {
            assert_eq!(
                next(stream).await,
                cursor_fact(1, n),
                "fact {n} out of order"
            );
        }
    }
}

async fn a_room_fact_reaches_only_the_subscriptions_that_follow_the_room<B: Backend>(backend: B) {
    let (mut following, mut channels) = subscribed(&backend, &["contract"]).await;
    let (mut elsewhere, _other) = subscribed(&backend, &["another-room"]).await;
    let alive = Fact::Alive { node: NodeId(1) };
    backend.publish(&cursor_fact(1, 1)).await.expect("publish");
    backend.publish(&alive).await.expect("publish");
    // Two channels, which on a cluster live on two shards: no order between them.
    let mut heard = [next(&mut following).await, next(&mut following).await];
    heard.sort_by_key(|fact| matches!(fact, Fact::Alive { .. }));
    assert_eq!(heard, [cursor_fact(1, 1), alive.clone()]);
    assert_eq!(
        next(&mut elsewhere).await,
        alive,
        "a node-wide fact reaches everyone, a room's only its followers"
    );

    channels
        .unfollow(&[room("contract")])
        .await
        .expect("unfollow");
    backend.publish(&cursor_fact(1, 2)).await.expect("publish");
    backend.publish(&alive).await.expect("publish");
    assert_eq!(
        next(&mut following).await,
        alive,
        "an unfollowed room's facts no longer arrive"
    );
}

async fn facts_write_the_records_a_reader_finds<B: Backend>(backend: B) {
    let session = |node: u64, user: &str, id: &str| Fact::Session {
        node: NodeId(node),
        record: record("doc", user, id, 1_700_000_000_000),
    };
    backend
        .publish_all(&[
            session(1, "ann", "a1"),
            session(1, "ann", "a2"),
            session(2, "ben", "b1"),
            session(2, "ben", "elsewhere").clone(),
        ])
        .await
        .expect("publish");
    backend
        .publish(&Fact::SessionEnded {
            node: NodeId(2),
            room: room("doc"),
            user_id: UserId::new("ben").expect("id"),
            session_id: SessionId::new("elsewhere").expect("id"),
        })
        .await
        .expect("publish");
    assert_eq!(
        held(&backend, "doc").await,
        [
            entry(1, "ann", "a1"),
            entry(1, "ann", "a2"),
            entry(2, "ben", "b1")
        ]
    );
    assert!(held(&backend, "other").await.is_empty());
    let found = backend.records(&room("doc")).await.expect("records");
    let ann = found
        .records
        .iter()
        .find(|(_, r)| r.session_id.as_str() == "a1")
        .map(|(_, r)| r.clone());
    assert_eq!(
        ann,
        Some(record("doc", "ann", "a1", 1_700_000_000_000)),
        "records come back whole"
    );

    // Node 1 stops serving doc; node 2 writes all its records again, with one session.
    backend
        .vacate(NodeId(1), &room("doc"))
        .await
        .expect("vacate");
    backend
        .reassert(
            NodeId(2),
            &[record("doc", "ben", "b9", 1_700_000_000_001)],
            &[],
        )
        .await
        .expect("reassert");
    assert_eq!(held(&backend, "doc").await, [entry(2, "ben", "b9")]);
    backend
        .reassert(NodeId(2), &[], &[room("doc")])
        .await
        .expect("reassert");
    assert!(held(&backend, "doc").await.is_empty());
}

async fn liveness_expires_without_refresh<B: Backend>(backend: B) {
    let ttl = Duration::from_millis(300);
    backend.refresh(NodeId(7), ttl, &[]).await.expect("refresh");
    backend
        .refresh(NodeId(8), Duration::from_secs(30), &[])
        .await
        .expect("refresh");
    let nodes = backend.nodes().await.expect("nodes");
    assert!(
        nodes.contains(&NodeId(7)) && nodes.contains(&NodeId(8)),
        "{nodes:?}"
    );
    // Node 7 stops refreshing: it must drop out by itself.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let nodes = backend.nodes().await.expect("nodes");
        if !nodes.contains(&NodeId(7)) {
            assert!(nodes.contains(&NodeId(8)), "the refreshed node stays");
            break;
        }
        assert!(Instant::now() < deadline, "node 7 never expired");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn a_silent_nodes_records_are_named_gone_then_expire<B: Backend>(backend: B) {
    let doc = [room("doc")];
    for (node, user) in [(7, "gone"), (8, "stays")] {
        backend
            .publish(&Fact::Session {
                node: NodeId(node),
                record: record("doc", user, "s", 1_700_000_000_000),
            })
            .await
            .expect("publish");
    }
    assert!(
        !backend
            .refresh(NodeId(9), Duration::from_secs(30), &doc)
            .await
            .expect("refresh"),
        "a node with no records of the room learns they are missing"
    );
    backend
        .refresh(NodeId(7), Duration::from_millis(300), &doc)
        .await
        .expect("refresh");
    let mut named_gone = false;
    let deadline = Instant::now() + PATIENCE;
    loop {
        // Node 8 keeps refreshing its liveness and its records; node 7 stopped.
        let kept = backend
            .refresh(NodeId(8), Duration::from_secs(30), &doc)
            .await
            .expect("refresh");
        assert!(kept, "node 8's records are there");
        let found = backend.records(&room("doc")).await.expect("records");
        let has_7 = found.records.iter().any(|(node, _)| *node == NodeId(7));
        if let Some((_, left)) = found.gone.iter().find(|(node, _)| *node == NodeId(7)) {
            assert!(*left <= RECORD_TTL, "{left:?}");
            named_gone = true;
        }
        assert!(
            found.gone.iter().all(|(node, _)| *node == NodeId(7)),
            "only the silent node is gone: {:?}",
            found.gone
        );
        if !has_7 {
            break;
        }
        assert!(Instant::now() < deadline, "node 7's records never expired");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        named_gone,
        "node 7 was named gone before its records expired"
    );
    assert_eq!(held(&backend, "doc").await, [entry(8, "stays", "s")]);
}

async fn facts_survive_the_wire_unchanged<B: Backend>(backend: B) {
    let (mut stream, _channels) = subscribed(&backend, &["a/b:c"]).await;
    let facts = [
        Fact::Alive {
            node: NodeId(u64::MAX),
        },
        Fact::Leaving { node: NodeId(3) },
        Fact::Reasserted { node: NodeId(4) },
        Fact::SessionEnded {
            node: NodeId(5),
            room: RoomName::new("a/b:c").expect("room"),
            user_id: presence_protocol::UserId::new("u-1").expect("id"),
            session_id: presence_protocol::SessionId::new("s-1").expect("id"),
        },
        Fact::Session {
            node: NodeId(6),
            record: record("a/b:c", "u \"2\"", "s\n2", 1_700_000_000_000),
        },
    ];
    for fact in &facts {
        backend.publish(fact).await.expect("publish");
    }
    for fact in facts {
        assert_eq!(next(&mut stream).await, fact);
    }
}

async fn redis_backend() -> Option<(RedisBackend, Option<Redis>)> {
    let prefix = format!(
        "contract{}:",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    if let Ok(url) = std::env::var("PRESENCED_TEST_REDIS_URL") {
        return Some((
            RedisBackend::connect(&url, &prefix)
                .await
                .expect("PRESENCED_TEST_REDIS_URL reachable")
                .with_record_ttl(RECORD_TTL),
            None,
        ));
    }
    let server = support::redis("the redis backend contract").await?;
    let backend = RedisBackend::connect(&server.url(), &prefix)
        .await
        .expect("private redis reachable")
        .with_record_ttl(RECORD_TTL);
    Some((backend, Some(server)))
}

async fn redis_cluster_backend() -> Option<(RedisBackend, presence_testkit::RedisCluster)> {
    let cluster = support::redis_cluster("the redis cluster backend contract").await?;
    let backend = RedisBackend::connect(&cluster.urls().join(","), "contract:")
        .await
        .expect("private redis cluster reachable")
        .with_record_ttl(RECORD_TTL);
    assert!(
        backend.is_cluster(),
        "seed URLs of a cluster make a cluster backend"
    );
    Some((backend, cluster))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                let backend = presence_server::backend::MemoryBackend::default()
                    .with_record_ttl(super::RECORD_TTL);
                super::$name(backend).await;
            }

            #[tokio::test]
            async fn redis() {
                let Some((backend, _server)) = super::redis_backend().await else { return };
                super::$name(backend).await;
            }

            #[tokio::test]
            async fn redis_cluster() {
                let Some((backend, _cluster)) = super::redis_cluster_backend().await else {
                    return;
                };
                super::$name(backend).await;
            }
        }
    )*};
}

contract!(
    every_subscriber_gets_every_fact_in_order,
    a_room_fact_reaches_only_the_subscriptions_that_follow_the_room,
    facts_write_the_records_a_reader_finds,
    liveness_expires_without_refresh,
    a_silent_nodes_records_are_named_gone_then_expire,
    facts_survive_the_wire_unchanged
);

async fn a_batch_arrives_whole_and_in_order<B: Backend>(backend: B) {
    let (mut stream, _channels) = subscribed(&backend, &["contract"]).await;
    let batch: Vec<Fact> = (0..300).map(|n| cursor_fact(2, n)).collect();
    backend.publish_all(&batch).await.expect("publish_all");
    backend
        .publish(&cursor_fact(2, 300))
        .await
        .expect("publish");
    for n in 0..=300 {
        assert_eq!(
            next(&mut stream).await,
            cursor_fact(2, n),
            "fact {n} out of order"
        );
    }
}

contract!(a_batch_arrives_whole_and_in_order);
