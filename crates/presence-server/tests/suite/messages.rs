//! Joins, rosters, updates, cursors and batches, as clients see them.

use serde_json::json;

use crate::support::{ids, TestServer};

#[tokio::test]
async fn the_seed_documents_client_flow_works_unchanged() {
    let server = TestServer::start(&[]).await;
    // The seed's join: no room, a client-made sessionId.
    let mut alice = server.client().await;
    alice
        .send(json!({"type": "presence:join", "user": {"id": "user-123", "name": "Alice", "sessionId": "sess-a"}}))
        .await;
    let current = alice.expect("presence:currentUsers").await;
    assert_eq!(current["room"], "default");
    assert_eq!(ids(&current["users"]), ["user-123"]);
    assert_eq!(
        current["self"],
        json!({"id": "user-123", "sessionId": "sess-a"})
    );
    let me = &current["users"][0];
    for field in [
        "id", "name", "color", "joinedAt", "lastSeen", "cursor", "state", "sessions",
    ] {
        assert!(me.get(field).is_some(), "User lacks {field}: {me}");
    }
    assert_eq!(me["cursor"], json!({"x": 0.0, "y": 0.0, "visible": false}));
    let color = me["color"].as_str().expect("color");
    assert!(color.len() == 7 && color.starts_with('#'), "{color}");

    let mut bob = server.client().await;
    bob.send(json!({"type": "presence:join", "user": {"id": "user-456", "name": "Bob"}}))
        .await;
    let current = bob.expect("presence:currentUsers").await;
    assert_eq!(ids(&current["users"]), ["user-123", "user-456"]);
    let joined = alice.expect("presence:userJoined").await;
    assert_eq!(joined["user"]["id"], "user-456");
    assert_eq!(joined["user"]["name"], "Bob");

    // The seed's heartbeat every 30 s: accepted silently.
    bob.send(json!({"type": "presence:heartbeat"})).await;
    // The seed's explicit leave on beforeunload: no room.
    bob.send(json!({"type": "presence:leave"})).await;
    let left = alice.expect("presence:userLeft").await;
    assert_eq!(
        left,
        json!({"type": "presence:userLeft", "room": "default", "userId": "user-456"})
    );
    assert_eq!(server.roster("default").await, ["user-123"]);
}

#[tokio::test]
async fn a_user_with_two_tabs_is_listed_once_with_two_sessions() {
    let server = TestServer::start(&[]).await;
    let mut olga = server.joined("doc", "olga").await;
    let _tab1 = server.joined("doc", "alice").await;
    olga.expect("presence:userJoined").await;
    let mut tab2 = server.client().await;
    tab2.send(json!({"type": "presence:join", "room": "doc", "user": {"id": "alice"}}))
        .await;
    let current = tab2.expect("presence:currentUsers").await;
    assert_eq!(ids(&current["users"]), ["olga", "alice"]);
    assert_eq!(current["users"][1]["sessions"], 2);
    // Olga sees no second join, only alice's new session count.
    let told = olga.sync("doc", "olga").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "presence:userUpdated");
    assert_eq!(told[0]["user"]["sessions"], 2);
}

#[tokio::test]
async fn updates_merge_shallowly_and_delete_with_null() {
    let server = TestServer::start(&[]).await;
    let mut olga = server.joined("doc", "olga").await;
    let mut alice = server.client().await;
    alice
        .send(json!({"type": "presence:join", "room": "doc", "user": {"id": "alice"}, "state": {"tool": "pen", "typing": false}}))
        .await;
    alice.expect("presence:currentUsers").await;
    assert_eq!(
        olga.expect("presence:userJoined").await["user"]["state"],
        json!({"tool": "pen", "typing": false})
    );

    alice.send(json!({"type": "presence:update", "room": "doc", "state": {"typing": true, "tool": null}})).await;
    let updated = olga.expect("presence:userUpdated").await;
    assert_eq!(updated["room"], "doc");
    assert_eq!(updated["user"]["state"], json!({"typing": true}));
    // Never echoed to the sender.
    assert!(alice.sync("doc", "alice").await.is_empty());
}

#[tokio::test]
async fn cursors_are_batched_per_room_and_never_echoed() {
    let server = TestServer::start(&["--cursor-interval", "100ms"]).await;
    let mut alice = server.joined("board", "alice").await;
    let mut bob = server.joined("board", "bob").await;
    alice.expect("presence:userJoined").await;
    for i in 0..20 {
        alice
            .send(json!({"type": "presence:cursor", "room": "board", "x": i, "y": 0.5}))
            .await;
    }
    // However the moves fall into intervals, bob ends at the latest position, in few frames.
    let mut frames = 0;
    loop {
        let frame = bob.expect("presence:cursors").await;
        frames += 1;
        let entries = frame["cursors"].as_array().expect("cursors");
        assert_eq!(entries.len(), 1, "one entry per user per frame: {frame}");
        assert_eq!(entries[0]["userId"], "alice");
        if entries[0]["x"].as_f64() == Some(19.0) {
            assert_eq!(entries[0]["visible"], true);
            break;
        }
    }
    assert!(
        frames < 20,
        "moves were coalesced ({frames} frames for 20 moves)"
    );
    assert!(
        alice.sync("board", "alice").await.is_empty(),
        "alice never sees her own cursor"
    );
}

#[tokio::test]
async fn every_mover_sees_everyone_else_and_never_itself() {
    movers_see_everyone_else_and_never_themselves(&["--cursor-interval", "100ms"]).await;
}

#[tokio::test]
async fn one_paced_thread_delivers_every_cursor_too() {
    // A single worker thread runs the current-thread runtime and paces its wake-ups.
    movers_see_everyone_else_and_never_themselves(&[
        "--cursor-interval",
        "100ms",
        "--worker-threads",
        "1",
        "--min-wake-interval",
        "20ms",
    ])
    .await;
}

async fn movers_see_everyone_else_and_never_themselves(args: &[&str]) {
    // Movers' frames are the room's shared frame written around their own entry: the
    // first, a middle and the last entry each leave a well-formed frame behind.
    let server = TestServer::start(args).await;
    let names = ["ann", "ben", "cat", "wes"];
    let mut clients = Vec::new();
    for name in names {
        clients.push(server.joined("board", name).await);
    }
    for (client, name) in clients.iter_mut().zip(names) {
        client.sync("board", name).await;
    }
    let movers = &names[..3];
    for (index, client) in clients.iter_mut().take(movers.len()).enumerate() {
        client
            .send(json!({"type": "presence:cursor", "room": "board", "x": index + 1, "y": 0}))
            .await;
    }
    for (client, name) in clients.iter_mut().zip(names) {
        let expected: std::collections::BTreeMap<String, f64> = movers
            .iter()
            .enumerate()
            .filter(|(_, mover)| **mover != name)
            .map(|(index, mover)| ((*mover).to_owned(), (index + 1) as f64))
            .collect();
        let mut seen = std::collections::BTreeMap::new();
        while seen != expected {
            let frame = client.until("presence:cursors").await;
            let mut ids = Vec::new();
            for entry in frame["cursors"].as_array().expect("cursors") {
                let id = entry["userId"].as_str().expect("userId").to_owned();
                assert_ne!(id, name, "{name} got its own cursor: {frame}");
                seen.insert(id.clone(), entry["x"].as_f64().expect("x"));
                ids.push(id);
            }
            let count = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), count, "one entry per user: {frame}");
        }
    }
}

#[tokio::test]
async fn batch_clients_get_diffs_instead_of_single_events() {
    let server = TestServer::start(&["--cursor-interval", "50ms"]).await;
    let mut watcher = server.client().await;
    watcher
        .send(
            json!({"type": "presence:join", "room": "doc", "user": {"id": "wendy"}, "batch": true}),
        )
        .await;
    watcher.expect("presence:currentUsers").await;
    let _alice = server.joined("doc", "alice").await;
    loop {
        let diff = watcher.expect("presence:diff").await;
        let joined = ids(&diff["joined"]);
        assert!(diff["left"].is_array() && diff["updated"].is_array());
        if joined.contains(&"alice".to_owned()) {
            break;
        }
    }
}

#[tokio::test]
async fn rooms_are_separate() {
    // Also proves the server runs on a single worker thread.
    let server = TestServer::start(&["--worker-threads", "1"]).await;
    let mut a = server.joined("room-a", "alice").await;
    let _b = server.joined("room-b", "bob").await;
    assert!(
        a.sync("room-a", "alice").await.is_empty(),
        "room-a hears nothing of room-b"
    );
    assert_eq!(server.roster("room-b").await, ["bob"]);
}

#[tokio::test]
async fn a_roster_larger_than_the_socket_buffers_arrives_whole() {
    // Ten users with 500 KB of state each: a 5 MB snapshot, which takes a 64-bit length
    // in its frame header and many writes to get through the socket's buffers.
    let server = TestServer::start(&[
        "--max-state-bytes",
        "600000",
        "--max-message-bytes",
        "1000000",
    ])
    .await;
    let note = "n".repeat(500_000);
    // The members below never read again, so the server's writes to them stall, and a
    // connection the server is writing to is not read either. The update at the end
    // comes from an editor that keeps reading, as an open tab does.
    let mut editor = server.joined("big", "editor").await;
    let editing = tokio::spawn(async move {
        loop {
            let joined = editor.until("presence:userJoined").await;
            if joined["user"]["id"] == "late" {
                break;
            }
        }
        editor
            .send(json!({"type": "presence:update", "room": "big", "state": {"note": "short"}}))
            .await;
        editor
    });
    let mut members = Vec::new();
    for i in 0..10 {
        let mut member = server.client().await;
        member
            .send(json!({"type": "presence:join", "room": "big", "user": {"id": format!("u{i}")}, "state": {"note": note}}))
            .await;
        member.expect("presence:currentUsers").await;
        members.push(member);
    }
    let mut late = server.client().await;
    late.send(json!({"type": "presence:join", "room": "big", "user": {"id": "late"}}))
        .await;
    let current = late.expect("presence:currentUsers").await;
    let users = current["users"].as_array().expect("users");
    assert_eq!(users.len(), 12);
    let with_note = users
        .iter()
        .filter(|user| user["state"]["note"].as_str() == Some(note.as_str()))
        .count();
    assert_eq!(with_note, 10, "every member's state arrives intact");
    // The connection still works after the big frame: the next event comes through.
    let updated = late.until("presence:userUpdated").await;
    assert_eq!(updated["user"]["id"], "editor");
    assert_eq!(updated["user"]["state"]["note"], "short");
    let _editor = editing
        .await
        .expect("the editor saw the late joiner and updated");
}

#[tokio::test]
async fn every_message_is_one_whole_text_frame() {
    // PROTOCOL.md: "One JSON object per text frame." An 80 KB roster must come as a single
    // final text frame, not as fragments, so this reads raw frames, not messages.
    let server = TestServer::start(&[
        "--max-state-bytes",
        "100000",
        "--max-message-bytes",
        "200000",
    ])
    .await;
    let addr = server.addr();
    // Blocking sockets read the frames exactly as they arrive; they run off the runtime.
    tokio::task::spawn_blocking(move || read_one_whole_frame(addr))
        .await
        .expect("the frame reader finished");
}

fn read_one_whole_frame(addr: std::net::SocketAddr) {
    use std::io::{BufRead, Write};
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::{Frame, FrameSocket};

    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(crate::support::PATIENCE))
        .expect("timeout");
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr
    )
    .expect("handshake");
    // Read the response head byte by byte, so no frame byte is taken with it.
    let mut reader = std::io::BufReader::with_capacity(1, stream.try_clone().expect("clone"));
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).expect("header line");
    }

    let note = "n".repeat(80_000);
    let join = json!({"type": "presence:join", "room": "raw", "user": {"id": "raw"}, "state": {"note": note}});
    let mut frame = Frame::message(join.to_string(), OpCode::Data(Data::Text), true);
    // Client frames are masked (RFC 6455 §5.3).
    frame.header_mut().mask = Some([1, 2, 3, 4]);
    let mut socket = FrameSocket::new(stream);
    socket.send(frame).expect("send the join");

    let frame = socket
        .read(None)
        .expect("read a frame")
        .expect("a frame before the socket closed");
    assert!(frame.header().is_final, "a fragment, not a whole message");
    assert_eq!(frame.header().opcode, OpCode::Data(Data::Text));
    let message: serde_json::Value =
        serde_json::from_slice(frame.payload()).expect("one whole JSON object");
    assert_eq!(message["type"], "presence:currentUsers");
    assert_eq!(message["users"][0]["state"]["note"], note.as_str());
}
