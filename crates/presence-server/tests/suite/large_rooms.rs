//! Large rooms over real sockets (protocol 1.1): list views, counts, spectators and the
//! rooms API's pages and numbers.

use serde_json::{json, Value};

use crate::support::{ids, Client, TestServer};

/// Reads `presence:count` frames until one says `count` and `spectators` (the first may
/// be the joiner's own arrival, which its `currentUsers` already said).
async fn counts_become(client: &mut Client, count: u64, spectators: u64) {
    loop {
        let frame = client.until("presence:count").await;
        if (frame["count"].clone(), frame["spectators"].clone())
            == (json!(count), json!(spectators))
        {
            return;
        }
    }
}

async fn join(server: &TestServer, user: &str, extra: Value) -> (Client, Value) {
    let mut client = server.client().await;
    let mut join = json!({"type": "presence:join", "room": "hall", "user": {"id": user}});
    if let (Some(join), Some(extra)) = (join.as_object_mut(), extra.as_object()) {
        join.extend(extra.clone());
    }
    client.send(join).await;
    let current = client.until("presence:currentUsers").await;
    (client, current)
}

#[tokio::test]
async fn a_list_view_gets_its_window_the_numbers_and_the_next_user_when_one_leaves() {
    let server = TestServer::start(&[]).await;
    let mut first = server.joined("hall", "ann").await;
    let _second = server.joined("hall", "bea").await;
    let _third = server.joined("hall", "cid").await;
    let (mut viewer, current) = join(&server, "vic", json!({"view": {"list": 1}})).await;
    assert_eq!(ids(&current["users"]), ["ann", "vic"]);
    assert_eq!(
        (current["count"].clone(), current["spectators"].clone()),
        (json!(4), json!(0))
    );

    // A join beyond the window is only a number for it.
    let _late = server.joined("hall", "dan").await;
    counts_become(&mut viewer, 5, 0).await;

    // The listed user leaves: gone, and the next in joinedAt order comes in.
    first.send(json!({"type": "presence:leave"})).await;
    assert_eq!(viewer.expect("presence:userLeft").await["userId"], "ann");
    assert_eq!(
        viewer.expect("presence:userJoined").await["user"]["id"],
        "bea"
    );
    assert_eq!(viewer.expect("presence:count").await["count"], 4);
}

#[tokio::test]
async fn a_full_view_client_sees_the_numbers_only_in_its_current_users() {
    let server = TestServer::start(&[]).await;
    let mut old = server.joined("hall", "ann").await;
    let (_watcher, _) = join(&server, "eve", json!({"spectator": true})).await;
    let (_bea, current) = join(&server, "bea", json!({})).await;
    assert_eq!(
        (current["count"].clone(), current["spectators"].clone()),
        (json!(2), json!(1))
    );
    // What a 1.0 client receives is unchanged: the join, and no presence:count.
    let before = old.sync("hall", "ann").await;
    let kinds: Vec<&str> = before.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(kinds, ["presence:userJoined"]);
}

#[tokio::test]
async fn spectators_are_counted_unlisted_and_cannot_update_or_point() {
    let server = TestServer::start(&[]).await;
    let mut ann = server.joined("hall", "ann").await;
    let (mut viewer, _) = join(&server, "vic", json!({"view": {"list": 5}})).await;
    let (mut watcher, current) = join(
        &server,
        "eve",
        json!({"spectator": true, "view": {"list": 5}, "user": {"id": "eve", "sessionId": "w-1"}}),
    )
    .await;
    assert_eq!(ids(&current["users"]), ["ann", "vic"]);
    assert_eq!(current["spectators"], 1);
    assert_eq!(server.roster("hall").await, ["ann", "vic"]);
    counts_become(&mut viewer, 2, 1).await;

    watcher
        .send(json!({"type": "presence:update", "room": "hall", "state": {"x": 1}, "ref": 1}))
        .await;
    assert_eq!(watcher.until("presence:error").await["code"], "forbidden");
    watcher
        .send(json!({"type": "presence:cursor", "room": "hall", "x": 0.5, "y": 0.5, "ref": 2}))
        .await;
    assert_eq!(watcher.until("presence:error").await["code"], "forbidden");

    let (_, body) = server.get("/api/rooms", &[]).await;
    let rooms: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(rooms["rooms"][0]["spectators"], 1);
    assert_eq!(rooms["rooms"][0]["users"], 2);

    // A restore keeps it a spectator, whatever the join says.
    watcher.drop_abruptly();
    let (_back, current) = join(
        &server,
        "eve",
        json!({"user": {"id": "eve", "sessionId": "w-1"}}),
    )
    .await;
    assert_eq!(current["spectators"], 1);
    assert_eq!(server.roster("hall").await, ["ann", "vic"]);
    let before = ann.sync("hall", "ann").await;
    assert!(
        before
            .iter()
            .all(|f| f["user"]["id"] != "eve" && f["userId"] != "eve"),
        "a spectator is no news for the listed: {before:?}"
    );
}

#[tokio::test]
async fn cursors_from_outside_a_window_never_reach_it() {
    let server = TestServer::start(&[]).await;
    let mut ann = server.joined("hall", "ann").await;
    let mut bea = server.joined("hall", "bea").await;
    let (mut viewer, _) = join(&server, "vic", json!({"view": {"list": 1}})).await;
    bea.send(json!({"type": "presence:cursor", "room": "hall", "x": 0.2, "y": 0.2}))
        .await;
    // bea's move is flushed before ann's is made: if it reached the viewer, it would come first.
    bea.sync("hall", "bea").await;
    ann.send(json!({"type": "presence:cursor", "room": "hall", "x": 0.1, "y": 0.1}))
        .await;
    let cursors = viewer.until("presence:cursors").await;
    let movers: Vec<&str> = cursors["cursors"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|c| c["userId"].as_str())
        .collect();
    assert_eq!(movers, ["ann"]);
}

#[tokio::test]
async fn the_rooms_api_pages_a_room_and_gives_its_numbers() {
    let server = TestServer::start(&[]).await;
    let mut clients = Vec::new();
    for user in ["u1", "u2", "u3", "u4"] {
        clients.push(server.joined("hall", user).await);
    }
    let _watcher = join(&server, "eve", json!({"spectator": true})).await;
    let (status, body) = server.get("/api/rooms/hall?limit=2", &[]).await;
    assert_eq!(status, 200);
    let page: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ids(&page["users"]), ["u1", "u2"]);
    assert_eq!(
        (page["count"].clone(), page["spectators"].clone()),
        (json!(4), json!(1))
    );
    let (_, body) = server.get("/api/rooms/hall", &[]).await;
    let all: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ids(&all["users"]), ["u1", "u2", "u3", "u4"]);
    let (status, _) = server.get("/api/rooms/hall?limit=many", &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_bad_view_is_refused_with_invalid_message() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "presence:join", "room": "hall", "view": {"list": 1001}, "ref": 7}))
        .await;
    let error = client.expect("presence:error").await;
    assert_eq!(
        (error["code"].clone(), error["ref"].clone()),
        (json!("invalid_message"), json!(7))
    );
    // The connection stays usable.
    client
        .send(json!({"type": "presence:join", "room": "hall", "user": {"id": "ann"}}))
        .await;
    client.expect("presence:currentUsers").await;
}
