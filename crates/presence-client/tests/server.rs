//! Proves the client against the real `presenced` binary: rosters, cursors, updates,
//! leaves, diffs, and restoring sessions after a server restart or a dropped socket.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use presence_client::{
    Backoff, Client, ClientConfig, ConnectOptions, Connection, Disconnect, Event, Events,
    JoinOptions,
};
use presence_protocol::{
    ClientMessage, Cursor, Join, JoinUser, RoomName, ServerMessage, State, User, UserId,
};
use presence_testkit::{Presenced, Signal};
use support::{start_server, wait_for, WAIT};

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("room")
}

fn id(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

fn state(json: &str) -> State {
    serde_json::from_str(json).expect("state")
}

fn ids(users: &[User]) -> Vec<&str> {
    users.iter().map(|user| user.id.as_str()).collect()
}

/// A raw `presence:join` of `room` as `user`, with nothing else set.
fn join_as(room: &RoomName, user: &str) -> ClientMessage {
    ClientMessage::Join(Join {
        room: room.clone(),
        user: JoinUser {
            id: Some(id(user)),
            ..JoinUser::default()
        },
        state: None,
        token: None,
        batch: false,
        view: None,
        spectator: false,
    })
}

async fn client(server: &Presenced) -> (Client, Events) {
    let config = ClientConfig {
        // Quick retries, so a restarted server is found again fast.
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        ..ClientConfig::new(server.ws_url())
    };
    Client::connect(config).await.expect("connect")
}

/// A client joined to `room` as `user`, with the join's own events consumed.
async fn joined(server: &Presenced, room: &RoomName, user: &str) -> (Client, Events) {
    let (client, mut events) = client(server).await;
    let options = JoinOptions::user(id(user), user.to_uppercase());
    tokio::time::timeout(WAIT, client.join(room, options))
        .await
        .expect("join timed out")
        .expect("join");
    wait_for(&mut events, "own currentUsers", |e| {
        matches!(e, Event::Message(ServerMessage::CurrentUsers { .. }))
    })
    .await;
    (client, events)
}

fn is_user_joined(event: &Event, who: &str) -> bool {
    matches!(event, Event::Message(ServerMessage::UserJoined { user, .. }) if user.id.as_str() == who)
}

fn is_user_left(event: &Event, who: &str) -> bool {
    matches!(event, Event::Message(ServerMessage::UserLeft { user_id, .. }) if user_id.as_str() == who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_one_roster() {
    let server = start_server(&[]).await;
    let lobby = room("lobby");
    let (alice, mut alice_events) = joined(&server, &lobby, "alice").await;

    let (bob, _bob_events) = client(&server).await;
    let answer = bob
        .join(&lobby, JoinOptions::user(id("bob"), "Bob"))
        .await
        .expect("join");
    assert_eq!(answer.me.id.as_str(), "bob");
    let mut seen = ids(&answer.users);
    seen.sort_unstable();
    assert_eq!(seen, ["alice", "bob"]);
    assert_eq!(ids(&bob.roster(&lobby)), ["alice", "bob"]);

    wait_for(&mut alice_events, "userJoined bob", |e| {
        is_user_joined(e, "bob")
    })
    .await;
    let roster = alice.roster(&lobby);
    assert_eq!(ids(&roster), ["alice", "bob"]);
    assert_eq!(roster[1].name, "Bob");
    assert_ne!(
        roster[0].color, roster[1].color,
        "two users in a room get two colors"
    );
    assert_eq!(
        alice.me(&lobby).map(|me| me.id.to_string()).as_deref(),
        Some("alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_reach_the_others_and_never_echo() {
    let server = start_server(&["--cursor-interval", "20ms"]).await;
    let board = room("board");
    let (alice, mut alice_events) = joined(&server, &board, "alice").await;
    let (bob, mut bob_events) = joined(&server, &board, "bob").await;

    alice.move_cursor(&board, 0.25, 0.75, true).expect("cursor");
    wait_for(&mut bob_events, "alice's cursor", |e| {
        matches!(e, Event::Message(ServerMessage::Cursors { cursors, .. })
            if cursors.iter().any(|c| c.user_id.as_str() == "alice" && c.x == 0.25 && c.y == 0.75))
    })
    .await;
    let cursor = bob
        .roster(&board)
        .into_iter()
        .find(|u| u.id.as_str() == "alice")
        .expect("alice")
        .cursor;
    assert_eq!((cursor.x, cursor.y, cursor.visible), (0.25, 0.75, true));

    // Anything echoed to alice was queued before a message bob sends only now.
    bob.update(&board, state(r#"{"seen":true}"#))
        .expect("update");
    let (_, before) = wait_for(&mut alice_events, "bob's update", |e| {
        matches!(e, Event::Message(ServerMessage::UserUpdated { user, .. }) if user.id.as_str() == "bob")
    })
    .await;
    let echoes: Vec<&Event> = before
        .iter()
        .filter(|e| {
            matches!(e, Event::Message(ServerMessage::Cursors { cursors, .. })
                if cursors.iter().any(|c| c.user_id.as_str() == "alice"))
        })
        .collect();
    assert!(
        echoes.is_empty(),
        "alice got her own cursor back: {echoes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_leaves_reach_the_others() {
    let server = start_server(&[]).await;
    let doc = room("doc-1");
    let (alice, mut alice_events) = joined(&server, &doc, "alice").await;
    let (bob, mut bob_events) = joined(&server, &doc, "bob").await;

    alice
        .update(&doc, state(r#"{"typing":true,"tool":"pen"}"#))
        .expect("update");
    wait_for(&mut bob_events, "alice's update", |e| {
        matches!(e, Event::Message(ServerMessage::UserUpdated { user, .. })
            if user.id.as_str() == "alice" && user.state.get("typing") == Some(&true.into()))
    })
    .await;
    alice
        .update(&doc, state(r#"{"typing":null}"#))
        .expect("update");
    wait_for(&mut bob_events, "alice's key deletion", |e| {
        matches!(e, Event::Message(ServerMessage::UserUpdated { user, .. })
            if user.id.as_str() == "alice" && !user.state.contains_key("typing"))
    })
    .await;
    let held = bob
        .roster(&doc)
        .into_iter()
        .find(|u| u.id.as_str() == "alice")
        .expect("alice");
    assert_eq!(held.state, state(r#"{"tool":"pen"}"#));

    bob.leave(&doc).expect("leave");
    wait_for(&mut alice_events, "bob's leave", |e| is_user_left(e, "bob")).await;
    assert_eq!(ids(&alice.roster(&doc)), ["alice"]);
    assert!(bob.roster(&doc).is_empty());
    assert!(bob.rooms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_clients_follow_the_roster_through_diffs() {
    let server = start_server(&["--cursor-interval", "20ms"]).await;
    let hall = room("hall");
    let (watcher, mut events) = client(&server).await;
    let options = JoinOptions {
        batch: true,
        ..JoinOptions::user(id("watcher"), "W")
    };
    watcher.join(&hall, options).await.expect("join");

    let (carol, _carol_events) = joined(&server, &hall, "carol").await;
    carol
        .update(&hall, state(r#"{"mood":"ok"}"#))
        .expect("update");
    let (_, skipped) = wait_for(&mut events, "a diff with carol's mood", |e| {
        matches!(e, Event::Message(ServerMessage::Diff { joined, updated, .. })
            if joined.iter().chain(updated).any(|u| u.id.as_str() == "carol" && u.state.contains_key("mood")))
    })
    .await;
    assert!(
        !skipped.iter().any(|e| is_user_joined(e, "carol")),
        "a batch client got a single userJoined: {skipped:?}"
    );
    let roster = watcher.roster(&hall);
    assert_eq!(ids(&roster), ["watcher", "carol"]);
    assert_eq!(roster[1].state, state(r#"{"mood":"ok"}"#));

    carol.leave(&hall).expect("leave");
    wait_for(&mut events, "a diff with carol's leave", |e| {
        matches!(e, Event::Message(ServerMessage::Diff { left, .. }) if left.iter().any(|u| u.as_str() == "carol"))
    })
    .await;
    assert_eq!(ids(&watcher.roster(&hall)), ["watcher"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_is_restored_and_nobody_sees_a_leave() {
    let server = start_server(&["--reconnect-grace", "10s"]).await;
    let board = room("board");
    let (alice, mut alice_events) = joined(&server, &board, "alice").await;
    let (_bob, mut bob_events) = joined(&server, &board, "bob").await;
    alice
        .update(&board, state(r#"{"tool":"pen"}"#))
        .expect("update");
    wait_for(&mut bob_events, "alice's update", |e| {
        matches!(e, Event::Message(ServerMessage::UserUpdated { .. }))
    })
    .await;
    let before = alice
        .roster(&board)
        .into_iter()
        .find(|u| u.id.as_str() == "alice")
        .expect("alice");
    let session = alice.me(&board).expect("me").session_id;

    alice.drop_connection().expect("drop");
    let (restored, _) = wait_for(&mut alice_events, "presence:restored", |e| {
        matches!(e, Event::Message(ServerMessage::Restored { .. }))
    })
    .await;
    let Event::Message(ServerMessage::Restored {
        user, session_id, ..
    }) = restored
    else {
        unreachable!()
    };
    assert_eq!(session_id, session);
    assert_eq!(
        (&user.color, user.joined_at, &user.state),
        (&before.color, before.joined_at, &before.state)
    );
    wait_for(&mut alice_events, "currentUsers after the restore", |e| {
        matches!(e, Event::Message(ServerMessage::CurrentUsers { .. }))
    })
    .await;
    assert_eq!(alice.me(&board).expect("me").session_id, session);
    assert_eq!(ids(&alice.roster(&board)), ["alice", "bob"]);

    // Bob hears of alice again only through this update: no leave, no join in between.
    alice
        .update(&board, state(r#"{"back":true}"#))
        .expect("update");
    let (_, skipped) = wait_for(&mut bob_events, "alice's update after the restore", |e| {
        matches!(e, Event::Message(ServerMessage::UserUpdated { user, .. }) if user.state.contains_key("back"))
    })
    .await;
    assert!(
        !skipped
            .iter()
            .any(|e| is_user_left(e, "alice") || is_user_joined(e, "alice")),
        "bob saw alice leave or join: {skipped:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_survived_without_anyone_leaving() {
    let mut server = start_server(&["--reconnect-grace", "10s"]).await;
    let board = room("board");
    let (alice, mut alice_events) = joined(&server, &board, "alice").await;
    let (bob, mut bob_events) = joined(&server, &board, "bob").await;

    server.signal(Signal::Term).expect("SIGTERM");
    server
        .wait_exit(WAIT)
        .await
        .expect("presenced exits after SIGTERM");
    for events in [&mut alice_events, &mut bob_events] {
        let (event, _) = wait_for(events, "the restart close", |e| {
            matches!(e, Event::Disconnected(_))
        })
        .await;
        assert!(
            matches!(
                event,
                Event::Disconnected(Disconnect::ClosedByServer { code: 1012, .. })
            ),
            "a shutdown closes with 1012, got {event:?}"
        );
    }
    server
        .restart()
        .await
        .expect("presenced starts again on its address");

    // Both rejoin by themselves. A server with an in-memory backend has lost the sessions,
    // so each client may see the other join again; nobody may see anyone leave.
    for (client, events, other) in [
        (&alice, &mut alice_events, "bob"),
        (&bob, &mut bob_events, "alice"),
    ] {
        let (_, skipped) = wait_for(events, "reconnected", |e| *e == Event::Connected).await;
        assert!(
            !skipped.iter().any(|e| is_user_left(e, other)),
            "{skipped:#?}"
        );
        // The roster still holds what the client knew before; the snapshot replaces it.
        let (_, mut skipped) = wait_for(events, "the snapshot after the rejoin", |e| {
            matches!(e, Event::Message(ServerMessage::CurrentUsers { .. }))
        })
        .await;
        while ids(&client.roster(&board)).len() < 2 {
            let (event, more) = wait_for(events, "the full roster", |e| {
                matches!(e, Event::Message(_))
            })
            .await;
            skipped.extend(more);
            skipped.push(event);
        }
        // A fresh server orders by the new joinedAt: whoever came back first.
        let roster = client.roster(&board);
        let mut now = ids(&roster);
        now.sort_unstable();
        assert_eq!(now, ["alice", "bob"]);
        assert!(
            !skipped.iter().any(|e| is_user_left(e, other)),
            "{skipped:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_connections_bind_other_loopback_addresses() {
    let server = start_server(&[]).await;
    let bind: SocketAddr = "127.0.0.2:0".parse().expect("addr");
    let options = ConnectOptions {
        bind: Some(bind),
        timeout: Some(WAIT),
        ..ConnectOptions::default()
    };
    let mut raw = Connection::connect(&server.ws_url(), &options)
        .await
        .expect("connect");
    assert_eq!(raw.local_addr().expect("local").ip(), bind.ip());

    let lobby = room("lobby");
    raw.send(&join_as(&lobby, "raw")).await.expect("send");
    let answer = tokio::time::timeout(WAIT, raw.recv())
        .await
        .expect("no answer")
        .expect("recv");
    let ServerMessage::CurrentUsers { users, me, .. } = answer else {
        panic!("got {answer:?}")
    };
    assert_eq!((ids(&users), me.id.as_str()), (vec!["raw"], "raw"));

    // A cursor for a room it is not in: an error names the problem, the connection stays.
    let stray = ClientMessage::Cursor(Cursor {
        room: room("elsewhere"),
        x: 1.0,
        y: 1.0,
        visible: true,
    });
    raw.send(&stray).await.expect("send");
    let answer = tokio::time::timeout(WAIT, raw.recv())
        .await
        .expect("no answer")
        .expect("recv");
    assert!(
        matches!(
            answer,
            ServerMessage::Error {
                code: presence_protocol::ErrorCode::NotJoined,
                ..
            }
        ),
        "{answer:?}"
    );
    raw.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_larger_than_the_read_buffer_arrives_whole() {
    let server = start_server(&[]).await;
    let notes = room("notes");
    let long = "x".repeat(3000);
    let (author, _events) = joined(&server, &notes, "author").await;
    author
        .update(&notes, state(&format!(r#"{{"draft":"{long}"}}"#)))
        .expect("update");

    // 64 bytes a read: the roster below takes well over a hundred reads.
    let options = ConnectOptions {
        read_buffer_bytes: Some(64),
        timeout: Some(WAIT),
        ..ConnectOptions::default()
    };
    let mut reader = Connection::connect(&server.ws_url(), &options)
        .await
        .expect("connect");
    let join = join_as(&notes, "reader");
    // The update may still be on its way: join again until the snapshot shows it.
    let draft = loop {
        reader.send(&join).await.expect("send");
        let answer = tokio::time::timeout(WAIT, reader.recv())
            .await
            .expect("no answer")
            .expect("recv");
        let ServerMessage::CurrentUsers { users, .. } = answer else {
            continue;
        };
        let author = users.iter().find(|user| user.id.as_str() == "author");
        if let Some(draft) = author.and_then(|user| user.state.get("draft")) {
            break draft.clone();
        }
    };
    assert_eq!(draft, serde_json::Value::String(long));
    reader.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_headers_are_sent_and_a_refusal_names_its_status() {
    let server = start_server(&["--allowed-origins", "https://app.example"]).await;
    let with_origin = |origin: &str| ConnectOptions {
        headers: vec![("Origin".to_owned(), origin.to_owned())],
        timeout: Some(WAIT),
        ..ConnectOptions::default()
    };
    let refused = Connection::connect(&server.ws_url(), &with_origin("https://evil.example"))
        .await
        .expect_err("a foreign origin is refused");
    assert_eq!(refused.refused_status(), Some(403), "{refused}");

    let mut allowed = Connection::connect(&server.ws_url(), &with_origin("https://app.example"))
        .await
        .expect("the allowed origin connects");
    allowed.close().await.expect("close");

    let config = ClientConfig {
        headers: vec![("Origin".to_owned(), "https://evil.example".to_owned())],
        ..ClientConfig::new(server.ws_url())
    };
    let refused = Client::connect(config).await.expect_err("refused");
    assert_eq!(refused.refused_status(), Some(403), "{refused}");
}
