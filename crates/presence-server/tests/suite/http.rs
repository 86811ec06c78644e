//! The HTTP endpoints: health, metrics, the rooms API and the demo page.

use serde_json::{json, Value};

use crate::support::TestServer;

#[tokio::test]
async fn health_and_the_demo_page_are_served() {
    let server = TestServer::start(&[]).await;
    assert_eq!(server.get("/healthz", &[]).await.0, 200);
    let (status, page) = server.get("/", &[]).await;
    assert_eq!(status, 200);
    assert!(
        page.to_lowercase().contains("<html") || page.to_lowercase().contains("<!doctype"),
        "{page}"
    );
    assert_eq!(server.get("/nope", &[]).await.0, 404);
}

#[tokio::test]
async fn the_sdk_may_be_imported_from_any_origin_and_the_api_may_not() {
    let server = TestServer::start(&[]).await;
    let origin = [("Origin", "https://app.example")];
    // Through `Deref`, the testkit's own GET, which keeps the headers.
    let sdk = presence_testkit::Presenced::get(&server, "/sdk/index.js", &origin)
        .await
        .expect("GET /sdk/index.js");
    assert_eq!(sdk.status, 200);
    let allowed = |response: &presence_testkit::http::Response| {
        response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("access-control-allow-origin"))
            .map(|(_, value)| value.clone())
    };
    assert_eq!(allowed(&sdk).as_deref(), Some("*"));
    let api = presence_testkit::Presenced::get(&server, "/api/rooms", &origin)
        .await
        .expect("GET /api/rooms");
    assert_eq!(allowed(&api), None, "the rooms API stays same-origin");
}

#[tokio::test]
async fn the_rooms_api_lists_rooms_and_rosters() {
    let server = TestServer::start(&[]).await;
    let _a = server.joined("alpha", "alice").await;
    let _b = server.joined("alpha", "bob").await;
    let _c = server.joined("beta", "carol").await;
    let (status, body) = server.get("/api/rooms", &[]).await;
    assert_eq!(status, 200);
    let rooms: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        rooms,
        json!({"rooms": [
            {"room": "alpha", "users": 2, "spectators": 0},
            {"room": "beta", "users": 1, "spectators": 0}
        ]})
    );
    let (_, body) = server.get("/api/rooms/alpha", &[]).await;
    let roster: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(roster["room"], "alpha");
    assert_eq!(roster["users"][1]["id"], "bob");
    assert!(roster["users"][1]["color"].is_string());
}

#[tokio::test]
async fn an_api_key_guards_the_api() {
    let server = TestServer::start(&["--api-key", "k3y"]).await;
    assert_eq!(server.get("/api/rooms", &[]).await.0, 401);
    assert_eq!(
        server
            .get("/api/rooms", &[("Authorization", "Bearer wrong")])
            .await
            .0,
        401
    );
    assert_eq!(
        server
            .get("/api/rooms", &[("Authorization", "Bearer k3y")])
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .get("/api/rooms/x", &[("Authorization", "Bearer k3y")])
            .await
            .0,
        200
    );
    assert_eq!(
        server.get("/healthz", &[]).await.0,
        200,
        "health needs no key"
    );
}

#[tokio::test]
async fn metrics_count_connections_messages_and_errors() {
    let server = TestServer::start(&[]).await;
    let mut alice = server.joined("doc", "alice").await;
    alice.send_text("nope").await;
    alice.error_code().await;
    let (status, text) = server.get("/metrics", &[]).await;
    assert_eq!(status, 200);
    for line in [
        "presenced_connections 1",
        "presenced_rooms 1",
        "presenced_users 1",
        "presenced_sessions 1",
        "presenced_messages_received_total{type=\"presence:join\"} 1",
        "presenced_messages_sent_total{type=\"presence:currentUsers\"} 1",
        "presenced_errors_total{code=\"invalid_json\"} 1",
        "presenced_dropped_cursor_batches_total 0",
        "presenced_accept_errors_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(text.contains("presenced_fanout_latency_seconds_bucket"));
}

#[tokio::test]
async fn the_api_keys_scheme_is_matched_without_regard_to_case() {
    let server = TestServer::start(&["--api-key", "k3y"]).await;
    for header in ["bearer k3y", "BEARER k3y", "Bearer  k3y"] {
        let status = server
            .get("/api/rooms", &[("Authorization", header)])
            .await
            .0;
        assert_eq!(status, 200, "{header}");
    }
    for header in ["Basic k3y", "Bearerk3y", "bearer k3", "bearer k3y4"] {
        let status = server
            .get("/api/rooms", &[("Authorization", header)])
            .await
            .0;
        assert_eq!(status, 401, "{header}");
    }
}
