//! Every error code, and that a bad message never breaks the connection or anyone else.

use serde_json::json;

use crate::support::{Ended, TestServer};

#[tokio::test]
async fn malformed_frames_get_the_contracts_codes_and_the_connection_stays_usable() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    client.send_text("this is not json").await;
    assert_eq!(client.error_code().await, "invalid_json");
    client.send_text("[1, 2, 3]").await;
    assert_eq!(client.error_code().await, "invalid_message");
    client.send_text("42").await;
    assert_eq!(client.error_code().await, "invalid_message");
    client.send(json!({"room": "x"})).await;
    assert_eq!(client.error_code().await, "invalid_message");
    client
        .send(json!({"type": "presence:join", "room": "no spaces allowed"}))
        .await;
    assert_eq!(client.error_code().await, "invalid_message");
    client
        .send(json!({"type": "presence:cursor", "x": "left", "y": 1}))
        .await;
    assert_eq!(client.error_code().await, "invalid_message");
    client.send_binary(vec![1, 2, 3]).await;
    assert_eq!(client.error_code().await, "invalid_message");
    client
        .send(json!({"type": "presence:teleport", "ref": "r-1"}))
        .await;
    let error = client.expect("presence:error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("unknown_type"), Some("r-1"))
    );
    client
        .send(json!({"type": "presence:update", "room": "elsewhere", "state": {}, "ref": 7}))
        .await;
    let error = client.expect("presence:error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_i64()),
        (Some("not_joined"), Some(7))
    );
    // Still usable.
    client
        .send(json!({"type": "presence:join", "user": {"id": "ok"}}))
        .await;
    client.expect("presence:currentUsers").await;
}

#[tokio::test]
async fn too_large_room_full_and_too_many_rooms() {
    let server = TestServer::start(&[
        "--max-state-bytes",
        "64",
        "--max-members-per-room",
        "2",
        "--max-rooms-per-connection",
        "2",
    ])
    .await;
    let mut alice = server.joined("r1", "alice").await;
    alice
        .send(json!({"type": "presence:update", "room": "r1", "state": {"blob": "x".repeat(100)}}))
        .await;
    assert_eq!(alice.error_code().await, "too_large");

    let _bob = server.joined("r1", "bob").await;
    alice.expect("presence:userJoined").await;
    let mut carol = server.client().await;
    carol
        .send(json!({"type": "presence:join", "room": "r1", "user": {"id": "carol"}}))
        .await;
    assert_eq!(carol.error_code().await, "room_full");

    alice
        .send(json!({"type": "presence:join", "room": "r2", "user": {"id": "alice"}}))
        .await;
    alice.expect("presence:currentUsers").await;
    alice
        .send(json!({"type": "presence:join", "room": "r3", "user": {"id": "alice"}}))
        .await;
    assert_eq!(alice.error_code().await, "too_many_rooms");
}

#[tokio::test]
async fn flooding_is_rate_limited_without_disturbing_others() {
    let server = TestServer::start(&["--max-messages-per-second", "20"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let mut flood = server.joined("doc", "flood").await;
    olga.expect("presence:userJoined").await;
    for n in 0..100 {
        flood
            .send(json!({"type": "presence:heartbeat", "ref": n}))
            .await;
    }
    let error = flood.until("presence:error").await;
    assert_eq!(error["code"], "rate_limited");
    assert!(
        error["ref"].is_u64(),
        "the refused message's ref is echoed: {error}"
    );
    // Olga's room still works.
    olga.send(json!({"type": "presence:update", "room": "doc", "state": {"ok": true}}))
        .await;
    assert!(olga.sync("doc", "olga").await.is_empty());
    assert_eq!(server.roster("doc").await, ["olga", "flood"]);
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009_and_nothing_else_breaks() {
    let server = TestServer::start(&["--max-message-bytes", "1024"]).await;
    let mut olga = server.joined("doc", "olga").await;
    let mut big = server.joined("doc", "big").await;
    olga.expect("presence:userJoined").await;
    big.send_text(&format!(
        r#"{{"type":"presence:update","state":{{"x":"{}"}}}}"#,
        "y".repeat(2000)
    ))
    .await;
    assert_eq!(big.closed().await, Ended::Closed(Some(1009)));
    olga.send(json!({"type": "presence:heartbeat"})).await;
    assert_eq!(server.get("/healthz", &[]).await.0, 200);
    assert_eq!(
        server.roster("doc").await,
        ["olga", "big"],
        "a closed connection still gets its grace"
    );
}

#[tokio::test]
async fn pipelined_joins_never_pass_the_rooms_per_connection_limit() {
    // Rooms hash over one shard per core: pipelined joins race on several shards at once.
    let server = TestServer::start(&[
        "--max-rooms-per-connection",
        "100",
        "--max-messages-per-second",
        "1000",
        "--max-members-per-room",
        "1",
    ])
    .await;
    let _owner = server.joined("full", "owner").await;
    let mut client = server.client().await;
    // A refused join (the room is full) must not keep the slot it reserved.
    client
        .send(json!({"type": "presence:join", "room": "full", "user": {"id": "pat"}}))
        .await;
    assert_eq!(client.error_code().await, "room_full");
    for n in 0..150 {
        client
            .send(json!({"type": "presence:join", "ref": n, "room": format!("room-{n}"), "user": {"id": "pat"}}))
            .await;
    }
    let (mut joined, mut refused) = (0, 0);
    while joined + refused < 150 {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("presence:currentUsers") => joined += 1,
            Some("presence:error") => {
                assert_eq!(message["code"], "too_many_rooms", "{message}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert_eq!((joined, refused), (100, 50));
    // Leaving gives the slot back (the same room again: one shard, so in order).
    client
        .send(json!({"type": "presence:leave", "room": "room-0"}))
        .await;
    client
        .send(json!({"type": "presence:join", "room": "room-0", "user": {"id": "pat"}}))
        .await;
    client.expect("presence:currentUsers").await;
}
