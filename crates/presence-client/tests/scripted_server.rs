//! Proves the client's reconnect and restore logic against a scripted in-process server,
//! frame by frame: what it sends after a 1012 close, after a dropped socket, on a refused
//! join, and on close. (`server.rs` checks the same stories against the real binary.)

use std::sync::LazyLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_client::{
    Backoff, Client, ClientConfig, Disconnect, Event, Events, JoinError, JoinOptions,
};
use presence_protocol::{
    decode, ClientMessage, CursorPosition, ErrorCode, Reference, Request, RoomName, SelfInfo,
    ServerMessage, SessionId, State, User, UserId,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(5);

struct Scripted {
    listener: TcpListener,
}

impl Scripted {
    async fn start() -> Scripted {
        Scripted {
            listener: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.listener.local_addr().expect("addr"))
    }

    async fn accept(&self) -> Peer {
        let (stream, _) = timeout(WAIT, self.listener.accept())
            .await
            .expect("no connection")
            .expect("accept");
        Peer {
            ws: tokio_tungstenite::accept_async(stream)
                .await
                .expect("handshake"),
        }
    }
}

struct Peer {
    ws: WebSocketStream<TcpStream>,
}

impl Peer {
    async fn read(&mut self) -> Request {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("no frame")
                .expect("eof")
                .expect("frame");
            if let Message::Text(text) = frame {
                return decode(text.as_str()).expect("a valid client message");
            }
        }
    }

    async fn write(&mut self, message: &ServerMessage) {
        self.ws
            .send(Message::Text(message.encode().into()))
            .await
            .expect("send");
    }

    /// Answers a join as the server would: `currentUsers` with this session.
    async fn accept_join(&mut self, session: &str) -> Request {
        let request = self.read().await;
        let ClientMessage::Join(join) = &request.message else {
            panic!("expected a join, got {request:?}")
        };
        let id = join
            .user
            .id
            .clone()
            .unwrap_or_else(|| UserId::new("anon-1").expect("id"));
        self.write(&ServerMessage::CurrentUsers {
            room: join.room.clone(),
            users: vec![user(id.as_str())],
            me: SelfInfo {
                id,
                session_id: SessionId::new(session).expect("session"),
            },
            count: 1,
            spectators: 0,
        })
        .await;
        request
    }
}

fn user(id: &str) -> User {
    User {
        id: UserId::new(id).expect("id"),
        name: id.to_owned(),
        color: "#1F77B4".to_owned(),
        joined_at: 1,
        last_seen: 1,
        cursor: CursorPosition::default(),
        state: State::new(),
        sessions: 1,
    }
}

static ROOM: LazyLock<RoomName> = LazyLock::new(|| RoomName::new("board").expect("room"));

fn config(url: String) -> ClientConfig {
    ClientConfig {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        seed: Some(1),
        ..ClientConfig::new(url)
    }
}

/// The client's first connect waits for the handshake, so the server must accept meanwhile.
async fn connect(server: &Scripted) -> (Client, Events, Peer) {
    let (connected, peer) = tokio::join!(Client::connect(config(server.url())), server.accept());
    let (client, events) = connected.expect("connect");
    (client, events, peer)
}

async fn wait_for(events: &mut Events, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("events ended");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

#[tokio::test]
async fn after_a_restart_close_the_client_rejoins_naming_its_session() {
    let server = Scripted::start().await;
    let (client, mut events, mut peer) = connect(&server).await;

    let options = JoinOptions {
        name: Some("Alice".into()),
        ..JoinOptions::default()
    };
    let (joined, first) = tokio::join!(client.join(&ROOM, options), peer.accept_join("s-1"));
    let joined = joined.expect("joined");
    let ClientMessage::Join(first) = first.message else {
        unreachable!()
    };
    assert_eq!(first.user.session_id, None);
    assert_eq!(joined.me.session_id.as_str(), "s-1");
    assert_eq!(
        client.me(&ROOM).map(|me| me.id.to_string()),
        Some("anon-1".to_owned())
    );

    let frame = CloseFrame {
        code: CloseCode::Restart,
        reason: "restart".into(),
    };
    peer.ws.close(Some(frame)).await.expect("close");
    let event = wait_for(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    assert_eq!(
        event,
        Event::Disconnected(Disconnect::ClosedByServer {
            code: 1012,
            reason: "restart".into()
        })
    );
    // Made while the connection is down: must reach the server after the restore.
    client
        .update(
            &ROOM,
            serde_json::from_str(r#"{"typing":true}"#).expect("state"),
        )
        .expect("update");

    let mut peer = server.accept().await;
    let rejoin = peer.read().await;
    let ClientMessage::Join(join) = &rejoin.message else {
        panic!("expected a rejoin, got {rejoin:?}")
    };
    // The generated id and the session: exactly what the server needs to restore.
    assert_eq!(join.user.id.as_ref().map(UserId::as_str), Some("anon-1"));
    assert_eq!(
        join.user.session_id.as_ref().map(SessionId::as_str),
        Some("s-1")
    );
    assert_eq!(join.user.name.as_deref(), Some("Alice"));
    assert!(matches!(rejoin.reference, Some(Reference::Number(_))));
    assert_eq!(
        join.state.as_ref().and_then(|s| s.get("typing")),
        Some(&serde_json::Value::Bool(true))
    );
    let update = peer.read().await;
    assert!(
        matches!(&update.message, ClientMessage::Update(u) if u.state.contains_key("typing")),
        "{update:?}"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_restored_and_queued_cursors_collapse() {
    let server = Scripted::start().await;
    let (client, mut events, mut peer) = connect(&server).await;
    let alice = JoinOptions::user(UserId::new("alice").expect("id"), "Alice");
    let (joined, _) = tokio::join!(client.join(&ROOM, alice), peer.accept_join("s-a"));
    joined.expect("joined");

    client.drop_connection().expect("drop");
    wait_for(&mut events, |e| {
        *e == Event::Disconnected(Disconnect::Dropped)
    })
    .await;
    for i in 0..10 {
        client
            .move_cursor(&ROOM, f64::from(i), 0.0, true)
            .expect("cursor");
    }

    let mut peer = server.accept().await;
    let rejoin = peer.read().await;
    let ClientMessage::Join(join) = rejoin.message else {
        panic!("expected a rejoin")
    };
    assert_eq!(
        join.user.session_id.as_ref().map(SessionId::as_str),
        Some("s-a")
    );
    // The cursors may have been queued offline (only the last is kept) or sent after the
    // reconnect (all of them, in order): either way the last one the server sees is x = 9.
    let mut last_x = None;
    while last_x != Some(9.0) {
        match peer.read().await.message {
            ClientMessage::Cursor(cursor) => last_x = Some(cursor.x),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_refused_join_reports_the_servers_error() {
    let server = Scripted::start().await;
    let (client, _events, mut peer) = connect(&server).await;
    let answer = async {
        let request = peer.read().await;
        peer.write(&ServerMessage::error(
            ErrorCode::Forbidden,
            "not your room",
            request.reference,
        ))
        .await;
    };
    let (joined, ()) = tokio::join!(client.join(&ROOM, JoinOptions::default()), answer);
    assert_eq!(
        joined,
        Err(JoinError::Refused {
            code: ErrorCode::Forbidden,
            message: "not your room".into()
        })
    );
    assert!(client.roster(&ROOM).is_empty());
    assert!(client.rooms().is_empty());
}

#[tokio::test]
async fn close_leaves_every_room_and_does_not_reconnect() {
    let server = Scripted::start().await;
    let (client, mut events, mut peer) = connect(&server).await;
    let (joined, _) = tokio::join!(
        client.join(&ROOM, JoinOptions::default()),
        peer.accept_join("s")
    );
    joined.expect("joined");

    let read_leave = async {
        let leave = peer.read().await;
        assert!(
            matches!(leave.message, ClientMessage::Leave(ref l) if l.room.is_none()),
            "{leave:?}"
        );
        let next = timeout(WAIT, peer.ws.next()).await.expect("no close");
        assert!(matches!(next, Some(Ok(Message::Close(_)))), "{next:?}");
    };
    tokio::join!(client.close(), read_leave);
    wait_for(&mut events, |e| *e == Event::Closed).await;
    assert!(events.recv().await.is_none());
    assert!(client.is_closed());
    assert!(client.heartbeat().is_err());
    // Nobody comes back.
    assert!(
        timeout(Duration::from_millis(200), server.listener.accept())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn dropping_every_handle_closes_without_leaving() {
    let server = Scripted::start().await;
    let (client, events, mut peer) = connect(&server).await;
    // Nobody reads events here: the client must keep working for roster readers.
    drop(events);
    let (joined, _) = tokio::join!(
        client.join(&ROOM, JoinOptions::default()),
        peer.accept_join("s")
    );
    joined.expect("joined");
    peer.write(&ServerMessage::UserJoined {
        room: ROOM.clone(),
        user: user("bob"),
    })
    .await;
    // Frames are handled in order: once a join in another room is answered, bob is in.
    let other = RoomName::new("other").expect("room");
    let (again, _) = tokio::join!(
        client.join(&other, JoinOptions::default()),
        peer.accept_join("t")
    );
    again.expect("joined the other room");
    let names: Vec<String> = client
        .roster(&ROOM)
        .iter()
        .map(|u| u.id.to_string())
        .collect();
    assert_eq!(names, ["anon-1", "bob"]);

    let second = client.clone();
    drop(client);
    assert!(!second.is_closed(), "a clone keeps the client alive");
    drop(second);
    let next = timeout(WAIT, peer.ws.next()).await.expect("no close");
    assert!(
        matches!(next, Some(Ok(Message::Close(_)))),
        "expected a close frame and no leave, got {next:?}"
    );
}

#[tokio::test]
async fn closed_for_joining_no_room_the_client_waits_for_a_join_to_reconnect() {
    let server = Scripted::start().await;
    let (client, mut events, mut peer) = connect(&server).await;
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: "no room joined within the heartbeat timeout".into(),
    };
    peer.ws.close(Some(frame)).await.expect("close");
    wait_for(&mut events, |e| matches!(e, Event::Disconnected(_))).await;
    // Its backoff is 10–50 ms: a client that reconnected would have done so many times over.
    let reconnected = timeout(Duration::from_millis(500), server.listener.accept()).await;
    assert!(reconnected.is_err(), "reconnected to join nothing");

    let (joined, _) = tokio::join!(client.join(&ROOM, JoinOptions::default()), async {
        let mut peer = server.accept().await;
        peer.accept_join("s-2").await;
        peer
    });
    assert_eq!(joined.expect("joined").me.session_id.as_str(), "s-2");
}
