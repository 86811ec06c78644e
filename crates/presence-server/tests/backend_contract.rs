//! The backend contract, written once and run on every implementation (ripgrep's
//! `rgtest!`, centrifuge's factory): delivery to every subscriber in order, the publisher
//! included, and node liveness that expires by itself. Redis runs against
//! `PRESENCED_TEST_REDIS_URL` if set, else a private `redis-server`, with a fresh key
//! prefix per test; without Redis the Redis half prints "skipped", except under `CI=true`.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use presence_core::{Fact, NodeId};
use presence_protocol::RoomName;
use presence_server::backend::{Backend, FactStream, RedisBackend};
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

async fn every_subscriber_gets_every_fact_in_order<B: Backend>(backend: B) {
    let mut first = backend.subscribe().await.expect("subscribe");
    let mut second = backend.subscribe().await.expect("subscribe");
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

async fn liveness_expires_without_refresh<B: Backend>(backend: B) {
    let ttl = Duration::from_millis(300);
    backend.refresh(NodeId(7), ttl).await.expect("refresh");
    backend
        .refresh(NodeId(8), Duration::from_secs(30))
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

async fn facts_survive_the_wire_unchanged<B: Backend>(backend: B) {
    let mut stream = backend.subscribe().await.expect("subscribe");
    let facts = [
        Fact::Alive {
            node: NodeId(u64::MAX),
        },
        Fact::Leaving { node: NodeId(3) },
        Fact::Resync { node: NodeId(4) },
        Fact::SessionEnded {
            node: NodeId(5),
            room: RoomName::new("a/b:c").expect("room"),
            user_id: presence_protocol::UserId::new("u-1").expect("id"),
            session_id: presence_protocol::SessionId::new("s-1").expect("id"),
        },
        Fact::Snapshot {
            node: NodeId(6),
            sessions: Vec::new(),
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
                .expect("PRESENCED_TEST_REDIS_URL reachable"),
            None,
        ));
    }
    let server = support::redis("the redis backend contract").await?;
    let backend = RedisBackend::connect(&server.url(), &prefix)
        .await
        .expect("private redis reachable");
    Some((backend, Some(server)))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(presence_server::backend::MemoryBackend::default()).await;
            }

            #[tokio::test]
            async fn redis() {
                let Some((backend, _server)) = super::redis_backend().await else { return };
                super::$name(backend).await;
            }
        }
    )*};
}

contract!(
    every_subscriber_gets_every_fact_in_order,
    liveness_expires_without_refresh,
    facts_survive_the_wire_unchanged
);

async fn a_batch_arrives_whole_and_in_order<B: Backend>(backend: B) {
    let mut stream = backend.subscribe().await.expect("subscribe");
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
