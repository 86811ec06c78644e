//! Benchmark clients: `presence-client` connections from many loopback source
//! addresses, frames encoded once, and a light decoder that reads only what the bench
//! counts.
//!
//! The bench shares two cores with the server, so its own work per frame matters: it
//! reads raw text ([`presence_client::Connection::recv_text`]) and decodes only the
//! fields it needs (ids, cursor `x`), skipping the rest of each `User`.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use presence_client::{ConnectOptions, Connection, Utf8Bytes};
use presence_protocol::{
    ClientMessage, Cursor, Join, JoinUser, Leave, RoomName, SessionId, UserId, View,
};
use serde::Deserialize;

pub use presence_client::ConnectError;

/// One benchmark connection.
pub type Ws = Connection;

/// How long one connect (TCP + WebSocket handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Spreads connections over `count` loopback source addresses, 127.0.0.2 onwards, so no
/// run is limited by one address's ~28 000 ephemeral ports.
#[derive(Debug, Clone, Copy)]
pub struct Sources {
    count: u8,
}

impl Sources {
    /// `count` addresses (1 to 250).
    pub fn new(count: u8) -> Self {
        Sources {
            count: count.clamp(1, 250),
        }
    }

    /// How many addresses.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// The source address of connection `index`.
    pub fn bind_for(&self, index: usize) -> SocketAddr {
        let last = 2 + (index % usize::from(self.count)) as u8;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0)
    }
}

/// Opens connection number `index` to `url` (`http://ADDR` or `ws://ADDR/ws`), with
/// `presence-client`'s small default read buffer (see
/// [`presence_client::DEFAULT_READ_BUFFER_BYTES`]).
pub async fn connect(url: &str, sources: Sources, index: usize) -> Result<Ws, ConnectError> {
    let options = ConnectOptions {
        bind: Some(sources.bind_for(index)),
        timeout: Some(CONNECT_TIMEOUT),
        ..ConnectOptions::default()
    };
    Connection::connect(url, &options).await
}

/// A room name the bench made; they are all valid.
pub fn room(name: &str) -> RoomName {
    RoomName::new(name).unwrap_or_else(|_| RoomName::default_room())
}

/// A user id the bench made; they are all valid.
pub fn user_id(id: &str) -> UserId {
    UserId::new(id).unwrap_or_else(|_| UserId::generated("bench-", 0))
}

/// A session id the bench made.
pub fn session_id(id: &str) -> SessionId {
    SessionId::new(id).unwrap_or_else(|_| SessionId::generated("bench-", 0))
}

/// An encoded `presence:join`. A full view is left out of the frame (the protocol's
/// default), so full-view joins are the frames of protocol 1.0.
pub fn join_frame(
    room: &RoomName,
    user: &str,
    session: Option<&str>,
    batch: bool,
    view: View,
) -> Utf8Bytes {
    let message = ClientMessage::Join(Join {
        room: room.clone(),
        user: JoinUser {
            id: Some(user_id(user)),
            name: Some(user.to_owned()),
            session_id: session.map(session_id),
        },
        state: None,
        token: None,
        batch,
        view: (!view.is_full()).then_some(view),
        spectator: false,
    });
    Utf8Bytes::from(message.encode())
}

/// Reads a `--view` flag: `full`, or `list:K` with `K` up to [`View::MAX_LIST`].
pub fn parse_view(text: &str) -> Result<View, String> {
    if text == "full" {
        return Ok(View::Full);
    }
    let k = text
        .strip_prefix("list:")
        .and_then(|k| k.parse::<u16>().ok())
        .filter(|&k| k <= View::MAX_LIST)
        .ok_or_else(|| format!("expected `full` or `list:K` with K ≤ {}", View::MAX_LIST))?;
    Ok(View::List(k))
}

/// A view as the `--view` flag spells it.
pub fn view_label(view: View) -> String {
    match view {
        View::Full => "full".to_owned(),
        View::List(k) => format!("list:{k}"),
    }
}

/// The `userId`s of a `presence:cursors` frame, read straight from its text: the bench
/// reads every frame of a large room, and ids are all it needs of most of them. Bench
/// ids need no escapes, so an id ends at the next quote.
pub fn cursor_user_ids(text: &str) -> impl Iterator<Item = &str> {
    const KEY: &str = r#""userId":""#;
    text.match_indices(KEY).filter_map(|(at, _)| {
        let rest = &text[at + KEY.len()..];
        rest.split('"').next()
    })
}

/// An encoded `presence:cursor`.
pub fn cursor_frame(room: &RoomName, x: f64, y: f64) -> Utf8Bytes {
    let message = ClientMessage::Cursor(Cursor {
        room: room.clone(),
        x,
        y,
        visible: true,
    });
    Utf8Bytes::from(message.encode())
}

/// An encoded `presence:leave` of one room.
pub fn leave_frame(room: &RoomName) -> Utf8Bytes {
    let message = ClientMessage::Leave(Leave {
        room: Some(room.clone()),
        reason: None,
    });
    Utf8Bytes::from(message.encode())
}

/// The next text frame; pings are answered on the way. `None` when the connection is
/// gone (closed, reset, or a protocol error).
pub async fn next_text(ws: &mut Ws) -> Option<Utf8Bytes> {
    loop {
        match ws.recv_text().await {
            Ok(text) => return Some(text),
            Err(error) if error.is_fatal() => return None,
            Err(_) => {}
        }
    }
}

/// A server frame, reduced to what the bench tracks.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `presence:currentUsers`: the ids in the snapshot (a list view's window), and the
    /// room's `count` of listed users.
    CurrentUsers {
        /// The users listed in the snapshot.
        ids: Vec<String>,
        /// Distinct users listed in the room (0 from a server older than 1.1).
        count: u64,
    },
    /// `presence:count`: the room's listed users (list views and spectators only).
    Count(u64),
    /// `presence:userJoined`.
    UserJoined(String),
    /// `presence:userLeft`.
    UserLeft(String),
    /// `presence:restored`.
    Restored,
    /// `presence:cursors`: the entries' `x` (the bench sends its clock there).
    Cursors(Vec<f64>),
    /// `presence:diff`: joined ids, left ids.
    Diff {
        /// Users who arrived.
        joined: Vec<String>,
        /// Users who left.
        left: Vec<String>,
    },
    /// `presence:error`, with its code.
    Error(String),
    /// Anything else (`userUpdated`).
    Other,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct XOnly {
    x: f64,
}

#[derive(Deserialize)]
struct Light<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    users: Option<Vec<IdOnly<'a>>>,
    #[serde(default, borrow)]
    user: Option<IdOnly<'a>>,
    #[serde(default, rename = "userId", borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default)]
    cursors: Option<Vec<XOnly>>,
    #[serde(default, borrow)]
    joined: Option<Vec<IdOnly<'a>>>,
    #[serde(default, borrow)]
    left: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default)]
    count: Option<u64>,
}

/// Decodes the parts of a server frame the bench needs; `None` if it is not a frame of
/// the protocol.
pub fn decode(text: &str) -> Option<Incoming> {
    let light: Light<'_> = serde_json::from_str(text).ok()?;
    let ids = |users: Option<Vec<IdOnly<'_>>>| -> Vec<String> {
        users
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.id.into_owned())
            .collect()
    };
    Some(match light.kind.as_ref() {
        "presence:currentUsers" => Incoming::CurrentUsers {
            ids: ids(light.users),
            count: light.count.unwrap_or(0),
        },
        "presence:count" => Incoming::Count(light.count?),
        "presence:userJoined" => Incoming::UserJoined(light.user?.id.into_owned()),
        "presence:userLeft" => Incoming::UserLeft(light.user_id?.into_owned()),
        "presence:restored" => Incoming::Restored,
        "presence:cursors" => Incoming::Cursors(light.cursors?.into_iter().map(|c| c.x).collect()),
        "presence:diff" => Incoming::Diff {
            joined: ids(light.joined),
            left: light
                .left
                .unwrap_or_default()
                .into_iter()
                .map(Cow::into_owned)
                .collect(),
        },
        "presence:error" => Incoming::Error(light.code.map(Cow::into_owned).unwrap_or_default()),
        _ => Incoming::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_bench_tracks_and_skips_the_rest() {
        let text = r##"{"type":"presence:currentUsers","room":"r","users":[{"id":"a","name":"A","color":"#112233","joinedAt":1,"lastSeen":2,"cursor":{"x":0,"y":0,"visible":false},"state":{"k":[1,{"z":null}]},"sessions":1}],"self":{"id":"a","sessionId":"s"},"count":7,"spectators":0}"##;
        assert_eq!(
            decode(text),
            Some(Incoming::CurrentUsers {
                ids: vec!["a".into()],
                count: 7
            })
        );
        let text = r#"{"type":"presence:count","room":"r","count":12,"spectators":1}"#;
        assert_eq!(decode(text), Some(Incoming::Count(12)));
        let text = r#"{"type":"presence:cursors","room":"r","cursors":[{"userId":"b","x":12.5,"y":1,"visible":true}]}"#;
        assert_eq!(decode(text), Some(Incoming::Cursors(vec![12.5])));
        let text = r#"{"type":"presence:userLeft","room":"r","userId":"b"}"#;
        assert_eq!(decode(text), Some(Incoming::UserLeft("b".into())));
        let text = r#"{"type":"presence:diff","room":"r","joined":[],"left":["x"],"updated":[]}"#;
        assert_eq!(
            decode(text),
            Some(Incoming::Diff {
                joined: vec![],
                left: vec!["x".into()]
            })
        );
    }

    #[test]
    fn frames_encode_as_the_protocol_says() {
        let text = join_frame(&room("lobby"), "u1", Some("s1"), true, View::Full);
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        assert_eq!(value["type"], "presence:join");
        assert_eq!(value["user"]["sessionId"], "s1");
        assert_eq!(value["batch"], true);
        assert!(value.get("view").is_none(), "{value}");
        let text = join_frame(&room("lobby"), "u1", None, false, View::List(20));
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        assert_eq!(value["view"], serde_json::json!({ "list": 20 }));
        let text = cursor_frame(&room("lobby"), 1.5, 2.0);
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        assert_eq!(value["x"], 1.5);
    }

    #[test]
    fn views_read_as_the_flag_spells_them() {
        assert_eq!(parse_view("full"), Ok(View::Full));
        assert_eq!(parse_view("list:20"), Ok(View::List(20)));
        assert_eq!(parse_view("list:0"), Ok(View::List(0)));
        assert!(parse_view("list:1001").is_err());
        assert!(parse_view("list").is_err());
        assert_eq!(view_label(View::List(20)), "list:20");
    }

    #[test]
    fn cursor_frames_give_their_user_ids() {
        let text = r#"{"type":"presence:cursors","room":"r","cursors":[{"userId":"u1","x":1,"y":2,"visible":true},{"userId":"u17","x":1,"y":2,"visible":false}]}"#;
        assert_eq!(cursor_user_ids(text).collect::<Vec<_>>(), ["u1", "u17"]);
    }

    #[test]
    fn sources_rotate_over_loopback_addresses() {
        let sources = Sources::new(3);
        assert_eq!(sources.bind_for(0).to_string(), "127.0.0.2:0");
        assert_eq!(sources.bind_for(4).to_string(), "127.0.0.3:0");
    }
}
