//! Webhooks against a real receiver (a small HTTP server in the test): the events of a
//! room in order and signed, nothing for a reload or a reconnect, retries until the
//! receiver accepts, a drop once the retry window is over, and one event per happening
//! in a cluster where a node dies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use presence_testkit::Redis;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{self, TestServer, PATIENCE};

const SECRET: &str = "webhook-secret-for-the-tests-0123456789";

/// What the receiver got: each request's headers and body.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// How many requests to refuse with 500 before accepting (`u32::MAX`: never accept).
    refuse: Arc<Mutex<u32>>,
}

impl Received {
    /// The events accepted so far, flattened from single and batched bodies.
    fn events(&self) -> Vec<Value> {
        let requests = self.requests.lock().expect("lock");
        requests
            .iter()
            .filter(|(headers, _)| headers.get("x-test-accepted").is_some())
            .flat_map(|(_, body)| match serde_json::from_str::<Value>(body) {
                Ok(Value::Array(events)) => events,
                Ok(event) => vec![event],
                Err(_) => Vec::new(),
            })
            .collect()
    }

    /// Waits until `count` events were accepted; their `type` and user id.
    async fn become_(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let events = self.events();
            if events.len() >= count {
                return events.iter().map(summary).collect();
            }
            assert!(
                Instant::now() < deadline,
                "only {:?}",
                events.iter().map(summary).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn summary(event: &Value) -> String {
    match event["data"]["user"]["id"].as_str() {
        Some(user) => format!("{} {user}", event["type"].as_str().unwrap_or("?")),
        None => event["type"].as_str().unwrap_or("?").to_owned(),
    }
}

/// The Standard Webhooks signature, written here from the specification rather than
/// taken from the server: HMAC-SHA256 keyed with the secret's bytes over
/// `{webhook-id}.{webhook-timestamp}.{body}`, base64, after `v1,`.
fn expected_signature(id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Starts the receiver on a free port; its URL.
async fn receiver(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_on(listener, received)
}

/// Serves the receiver on `listener`; its URL.
fn serve_on(listener: tokio::net::TcpListener, received: Received) -> String {
    let app = Router::new().route(
        "/hooks",
        post(move |mut headers: HeaderMap, body: String| {
            let received = received.clone();
            async move {
                let accept = {
                    let mut refuse = received.refuse.lock().expect("lock");
                    if *refuse == 0 {
                        true
                    } else {
                        *refuse = refuse.saturating_sub(if *refuse == u32::MAX { 0 } else { 1 });
                        false
                    }
                };
                if accept {
                    headers.insert("x-test-accepted", "1".parse().expect("header"));
                }
                received
                    .requests
                    .lock()
                    .expect("lock")
                    .push((headers, body));
                if accept {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A count of `presenced_webhook_events_total{outcome}`.
async fn outcome(server: &TestServer, outcome: &str) -> Option<u64> {
    let (_, metrics) = server.get("/metrics", &[]).await;
    let series = format!("presenced_webhook_events_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
}

fn join(user: &str, tab: &str) -> Value {
    json!({"type": "presence:join", "room": "doc", "user": {"id": user, "name": user, "sessionId": tab}})
}

#[tokio::test]
async fn a_rooms_events_arrive_in_order_signed_and_only_for_real_arrivals_and_departures() {
    let received = Received::default();
    let url = receiver(received.clone()).await;
    let server = TestServer::start(&[
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--reconnect-grace",
        "500ms",
    ])
    .await;
    let mut ada = server.client().await;
    ada.send(join("ada", "tab-a")).await;
    ada.expect("presence:currentUsers").await;
    let mut bob = server.client().await;
    bob.send(join("bob", "tab-b")).await;
    bob.expect("presence:currentUsers").await;
    received.become_(3).await;

    // Bob reloads (unload, then the same tab joins again): no event.
    bob.send(json!({"type": "presence:leave", "reason": "unload"}))
        .await;
    let mut bob = server.client().await;
    bob.send(join("bob", "tab-b")).await;
    bob.expect("presence:restored").await;
    // Ada's network drops; she is gone once the grace ends.
    ada.drop_abruptly();
    assert_eq!(bob.until("presence:userLeft").await["userId"], "ada");
    bob.send(json!({"type": "presence:leave", "room": "doc"}))
        .await;

    let events = received.become_(6).await;
    assert_eq!(
        events,
        [
            "room.occupied",
            "user.joined ada",
            "user.joined bob",
            "user.left ada",
            "user.left bob",
            "room.vacated"
        ]
    );
    let requests = received.requests.lock().expect("lock").clone();
    for (headers, body) in &requests {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).expect(name);
        let id = header("webhook-id");
        let timestamp = header("webhook-timestamp");
        assert!(
            timestamp.parse::<u64>().is_ok(),
            "Unix seconds: {timestamp}"
        );
        assert_eq!(
            header("webhook-signature"),
            expected_signature(id, timestamp, body),
            "signed as the Standard Webhooks scheme says"
        );
        let event: Value = serde_json::from_str(body).expect("json");
        assert_eq!(event["id"], id);
        assert_eq!(event["room"], "doc");
        assert!(event["timestamp"].as_u64().is_some());
    }
    assert_eq!(outcome(&server, "delivered").await, Some(6));
}

#[tokio::test]
async fn a_refused_event_is_retried_until_accepted_and_dropped_after_the_retry_window() {
    let received = Received::default();
    *received.refuse.lock().expect("lock") = 3;
    let url = receiver(received.clone()).await;
    let server = TestServer::start(&["--webhook-url", &url, "--webhook-secret", SECRET]).await;
    let mut ada = server.joined("doc", "ada").await;
    ada.send(json!({"type": "presence:leave", "room": "doc"}))
        .await;
    assert_eq!(
        received.become_(4).await,
        [
            "room.occupied",
            "user.joined ada",
            "user.left ada",
            "room.vacated"
        ],
        "everything once, in order"
    );
    assert_eq!(
        received.requests.lock().expect("lock").len(),
        7,
        "three refusals, then four"
    );
    assert_eq!(outcome(&server, "retried").await, Some(3));

    // A receiver that never accepts: the events go after --webhook-retry-for.
    let refusing = Received::default();
    *refusing.refuse.lock().expect("lock") = u32::MAX;
    let url = receiver(refusing.clone()).await;
    let server = TestServer::start(&[
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--webhook-retry-for",
        "1500ms",
        "--webhook-batch",
        "10",
    ])
    .await;
    let _ada = server.joined("doc", "ada").await;
    let deadline = Instant::now() + PATIENCE;
    while outcome(&server, "dropped_expired").await != Some(2) {
        assert!(Instant::now() < deadline, "never dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tries = refusing.requests.lock().expect("lock").len();
    assert!(tries >= 2, "retried before dropping: {tries}");
}

#[tokio::test]
async fn in_a_cluster_each_happening_is_reported_once_even_when_a_node_dies() {
    let Some(redis) = support::redis("webhooks in a cluster").await else {
        return;
    };
    let received = Received::default();
    let url = receiver(received.clone()).await;
    let prefix = format!("wh{}:", std::process::id());
    let node = |redis: &Redis| {
        let redis = redis.url();
        let url = url.clone();
        let prefix = prefix.clone();
        async move {
            let mut node = TestServer::start(&[
                "--redis",
                &redis,
                "--redis-prefix",
                &prefix,
                "--node-ttl",
                "1s",
                "--reconnect-grace",
                "1500ms",
                "--webhook-url",
                &url,
                "--webhook-secret",
                SECRET,
            ])
            .await;
            node.ready().await;
            node
        }
    };
    let mut nodes = vec![node(&redis).await, node(&redis).await, node(&redis).await];
    let _ada = nodes[0].joined("doc", "ada").await;
    let _bob = nodes[1].joined("doc", "bob").await;
    let mut cy = nodes[2].joined("doc", "cy").await;
    received.become_(4).await;

    drop(nodes.remove(0)); // SIGKILL: both survivors end ada's orphaned session
    assert_eq!(cy.until("presence:userLeft").await["userId"], "ada");
    received.become_(5).await;
    // Both survivors saw ada go: one sent it, the other found it claimed.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut claimed = 0;
        for node in &nodes {
            claimed += outcome(node, "claimed_elsewhere").await.unwrap_or(0);
        }
        if claimed == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "claimed elsewhere: {claimed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events: Vec<String> = received.events().iter().map(summary).collect();
    events.sort();
    assert_eq!(
        events,
        [
            "room.occupied",
            "user.joined ada",
            "user.joined bob",
            "user.joined cy",
            "user.left ada"
        ],
        "each happening once"
    );
}

#[tokio::test]
async fn a_receiver_down_for_thirty_seconds_gets_everything_afterwards() {
    // A port nobody listens on, until the receiver comes up there.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let server = TestServer::start(&["--webhook-url", &url, "--webhook-secret", SECRET]).await;
    let mut ada = server.joined("doc", "ada").await;
    let _bob = server.joined("doc", "bob").await;
    ada.send(json!({"type": "presence:leave", "room": "doc"}))
        .await;
    let deadline = Instant::now() + PATIENCE;
    while outcome(&server, "retried").await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The receiver's outage lasts 30 s.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    serve_on(listener, received.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    while received.events().len() < 4 {
        assert!(Instant::now() < deadline, "got {:?}", received.events());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Vec<String> = received.events().iter().map(summary).collect();
    assert_eq!(
        events,
        [
            "room.occupied",
            "user.joined ada",
            "user.joined bob",
            "user.left ada"
        ]
    );
}
