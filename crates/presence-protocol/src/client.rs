//! Messages from client to server, and how a text frame becomes one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{DecodeError, ErrorCode};
use crate::names::{RoomName, SessionId, UserId, MAX_NAME_CHARS};
use crate::State;

/// A client's `ref`: echoed on any `presence:error` its message causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reference {
    /// `"ref": "abc"`
    Text(String),
    /// `"ref": 7`
    Number(serde_json::Number),
}

/// One client frame: the message and its `ref`.
///
/// It encodes as the message's own object with `ref` as one more key (absent when
/// `None`), which is the frame [`decode`] reads back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// What the client asked for.
    #[serde(flatten)]
    pub message: ClientMessage,
    /// Echoed on errors.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

/// A message from client to server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// `presence:join`: enter a room, or restore a held session.
    #[serde(rename = "presence:join")]
    Join(Join),
    /// `presence:leave`: leave one room, or every room of this connection.
    #[serde(rename = "presence:leave")]
    Leave(Leave),
    /// `presence:heartbeat`: a sign of life for every session of this connection.
    #[serde(rename = "presence:heartbeat")]
    Heartbeat,
    /// `presence:update`: shallow-merge into the user's state.
    #[serde(rename = "presence:update")]
    Update(Update),
    /// `presence:cursor`: the latest pointer position.
    #[serde(rename = "presence:cursor")]
    Cursor(Cursor),
}

impl ClientMessage {
    /// Encodes the message as a frame without a `ref` (used by the Rust client and
    /// tests). With a `ref`, encode a [`Request`].
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// The wire `type`, for logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join(_) => "presence:join",
            ClientMessage::Leave(_) => "presence:leave",
            ClientMessage::Heartbeat => "presence:heartbeat",
            ClientMessage::Update(_) => "presence:update",
            ClientMessage::Cursor(_) => "presence:cursor",
        }
    }

    /// The room a room-scoped message addresses (`None` for heartbeat and leave-all).
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            ClientMessage::Join(m) => Some(&m.room),
            ClientMessage::Leave(m) => m.room.as_ref(),
            ClientMessage::Heartbeat => None,
            ClientMessage::Update(m) => Some(&m.room),
            ClientMessage::Cursor(m) => Some(&m.room),
        }
    }
}

/// `presence:join`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Join {
    /// The room to enter (`"default"` when absent).
    pub room: RoomName,
    /// Who is joining, as the client claims it.
    pub user: JoinUser,
    /// The initial custom state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// A JWT, when the server requires one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Receive `presence:diff` batches instead of single roster events.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// The `user` object of a join.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinUser {
    /// The user's id; without auth the server trusts it, absent gets an `anon-…` id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<UserId>,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// This tab's session; reuse it on reconnect to restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
}

/// `presence:leave`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leave {
    /// The room to leave; `None` leaves every room this connection joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
}

/// `presence:update`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    /// The room whose state changes.
    pub room: RoomName,
    /// Keys to set; a `null` value deletes the key.
    pub state: State,
}

/// `presence:cursor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cursor {
    /// The room the cursor moves in.
    pub room: RoomName,
    /// Horizontal position, any finite number (the SDK sends fractions of the board).
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Whether the pointer is over the board.
    pub visible: bool,
}

/// Every field any client message may carry, each left raw until its `type` says what it
/// must be. Unknown fields are ignored, as JSON protocols conventionally do.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(rename = "ref", borrow)]
    reference: Option<&'a RawValue>,
    #[serde(borrow)]
    room: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    #[serde(borrow)]
    state: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<&'a RawValue>,
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
    #[serde(borrow)]
    x: Option<&'a RawValue>,
    #[serde(borrow)]
    y: Option<&'a RawValue>,
    #[serde(borrow)]
    visible: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJoinUser<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    session_id: Option<&'a RawValue>,
}

/// Reads one text frame.
///
/// Text that is not JSON is `invalid_json`; JSON that is not an object with a string
/// `type`, or has a field of the wrong kind, is `invalid_message`; an unknown `type` is
/// `unknown_type`. A `null` optional field counts as absent.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|error| {
        let (code, message) = match error.classify() {
            serde_json::error::Category::Data => (
                ErrorCode::InvalidMessage,
                "a message must be a JSON object with a string \"type\"".to_owned(),
            ),
            _ => (ErrorCode::InvalidJson, format!("not valid JSON: {error}")),
        };
        DecodeError {
            code,
            message,
            reference: None,
        }
    })?;

    let reference = match present(envelope.reference) {
        None => None,
        Some(raw) => Some(field::<Reference>(
            raw,
            "ref",
            "a string or a number",
            None,
        )?),
    };
    let fail = |message: String| DecodeError {
        code: ErrorCode::InvalidMessage,
        message,
        reference: reference.clone(),
    };

    let kind = match present(envelope.kind) {
        None => return Err(fail("a message needs a string \"type\"".to_owned())),
        Some(raw) => text_field(raw, "type", reference.clone())?,
    };
    let room = |r: Option<&RawValue>| -> Result<Option<RoomName>, DecodeError> {
        match present(r) {
            None => Ok(None),
            Some(raw) => {
                let name = text_field(raw, "room", reference.clone())?;
                RoomName::new(&name)
                    .map(Some)
                    .map_err(|e| fail(e.to_string()))
            }
        }
    };
    let room_or_default =
        |r: Option<&RawValue>| room(r).map(|r| r.unwrap_or_else(RoomName::default_room));

    let message = match kind.as_ref() {
        "presence:join" => {
            let user = match present(envelope.user) {
                None => JoinUser::default(),
                Some(raw) => {
                    let raw_user: RawJoinUser<'_> =
                        field(raw, "user", "an object", reference.clone())?;
                    join_user(raw_user, reference.clone())?
                }
            };
            let state = match present(envelope.state) {
                None => None,
                Some(raw) => Some(field::<State>(
                    raw,
                    "state",
                    "an object",
                    reference.clone(),
                )?),
            };
            let token = match present(envelope.token) {
                None => None,
                Some(raw) => Some(field::<String>(
                    raw,
                    "token",
                    "a string",
                    reference.clone(),
                )?),
            };
            let batch = match present(envelope.batch) {
                None => false,
                Some(raw) => field::<bool>(raw, "batch", "a boolean", reference.clone())?,
            };
            ClientMessage::Join(Join {
                room: room_or_default(envelope.room)?,
                user,
                state,
                token,
                batch,
            })
        }
        "presence:leave" => ClientMessage::Leave(Leave {
            room: room(envelope.room)?,
        }),
        "presence:heartbeat" => ClientMessage::Heartbeat,
        "presence:update" => {
            let state = match present(envelope.state) {
                None => return Err(fail("presence:update needs a \"state\" object".to_owned())),
                Some(raw) => field::<State>(raw, "state", "an object", reference.clone())?,
            };
            ClientMessage::Update(Update {
                room: room_or_default(envelope.room)?,
                state,
            })
        }
        "presence:cursor" => {
            // The message is formatted only on failure: this runs for every cursor move.
            let coordinate = |raw: Option<&RawValue>, name: &str| -> Result<f64, DecodeError> {
                let value =
                    present(raw).and_then(|raw| serde_json::from_str::<f64>(raw.get()).ok());
                match value {
                    Some(value) if value.is_finite() => Ok(value),
                    _ => Err(fail(format!(
                        "presence:cursor needs a finite number \"{name}\""
                    ))),
                }
            };
            let x = coordinate(envelope.x, "x")?;
            let y = coordinate(envelope.y, "y")?;
            let visible = match present(envelope.visible) {
                None => true,
                Some(raw) => field::<bool>(raw, "visible", "a boolean", reference.clone())?,
            };
            ClientMessage::Cursor(Cursor {
                room: room_or_default(envelope.room)?,
                x,
                y,
                visible,
            })
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(DecodeError {
                code: ErrorCode::UnknownType,
                message: format!("unknown message type {shown:?}"),
                reference,
            });
        }
    };
    Ok(Request { message, reference })
}

fn join_user(raw: RawJoinUser<'_>, reference: Option<Reference>) -> Result<JoinUser, DecodeError> {
    let fail = |message: String| DecodeError {
        code: ErrorCode::InvalidMessage,
        message,
        reference: reference.clone(),
    };
    let id = match present(raw.id) {
        None => None,
        Some(raw) => {
            let id: String = field(raw, "user.id", "a string", reference.clone())?;
            Some(UserId::new(&id).map_err(|e| fail(e.to_string()))?)
        }
    };
    let name = match present(raw.name) {
        None => None,
        Some(raw) => {
            let name: String = field(raw, "user.name", "a string", reference.clone())?;
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(fail(format!(
                    "user.name must be at most {MAX_NAME_CHARS} characters"
                )));
            }
            Some(name)
        }
    };
    let session_id = match present(raw.session_id) {
        None => None,
        Some(raw) => {
            let id: String = field(raw, "user.sessionId", "a string", reference.clone())?;
            Some(SessionId::new(&id).map_err(|e| fail(e.to_string()))?)
        }
    };
    Ok(JoinUser {
        id,
        name,
        session_id,
    })
}

/// A field that is absent or `null` is treated alike: not given.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get() != "null")
}

fn field<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    name: &str,
    kind: &str,
    reference: Option<Reference>,
) -> Result<T, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|_| DecodeError {
        code: ErrorCode::InvalidMessage,
        message: format!("\"{name}\" must be {kind}"),
        reference,
    })
}

/// A string field, borrowed from the frame unless it has escapes: `type` and `room` are
/// read from every message, cursor moves included, and need no allocation of their own.
fn text_field<'a>(
    raw: &'a RawValue,
    name: &str,
    reference: Option<Reference>,
) -> Result<Cow<'a, str>, DecodeError> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => field::<String>(raw, name, "a string", reference).map(Cow::Owned),
    }
}

impl Request {
    /// Encodes the frame the way a client sends it: the message's keys, then `ref` if
    /// there is one, so a `presence:error` it causes names it.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        decode(text).expect_err("should fail").code
    }

    #[test]
    fn the_seeds_room_less_join_addresses_the_default_room() {
        let request = decode(
            r#"{"type":"presence:join","user":{"id":"user-123","name":"Alice","sessionId":"s1"}}"#,
        )
        .expect("valid join");
        let ClientMessage::Join(join) = request.message else {
            panic!("not a join")
        };
        assert_eq!(join.room.as_str(), "default");
        assert_eq!(join.user.id.as_ref().map(UserId::as_str), Some("user-123"));
        assert_eq!(
            join.user.session_id.as_ref().map(SessionId::as_str),
            Some("s1")
        );
        assert!(!join.batch);
    }

    #[test]
    fn errors_are_classified_as_the_contract_says() {
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"type":"presence:join""#), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code("42"), ErrorCode::InvalidMessage);
        assert_eq!(code("{}"), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"presence:nope"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"presence:join","room":"bad room"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:join","user":"alice"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:join","state":[]}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:update"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:cursor","x":1}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:cursor","x":"1","y":2}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"presence:cursor","x":1e999,"y":2}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn ref_is_echoed_on_errors_once_it_could_be_read() {
        let error = decode(r#"{"type":"presence:what","ref":7}"#).expect_err("unknown");
        assert_eq!(error.reference, Some(Reference::Number(7.into())));
        let error =
            decode(r#"{"type":"presence:cursor","ref":"c1","x":true,"y":1}"#).expect_err("bad x");
        assert_eq!(error.reference, Some(Reference::Text("c1".into())));
        assert_eq!(error.code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn cursor_visibility_defaults_to_true_and_unknown_fields_are_ignored() {
        let request =
            decode(r#"{"type":"presence:cursor","x":0.5,"y":-3,"extra":{"a":1}}"#).expect("ok");
        let ClientMessage::Cursor(cursor) = request.message else {
            panic!("not a cursor")
        };
        assert_eq!((cursor.x, cursor.y, cursor.visible), (0.5, -3.0, true));
    }

    #[test]
    fn escaped_type_and_room_read_as_their_text() {
        let request = decode(r#"{"type":"presence:curs\u006fr","room":"d\u006fc\/1","x":1,"y":2}"#)
            .expect("escapes are plain JSON");
        let ClientMessage::Cursor(cursor) = request.message else {
            panic!("a cursor, got {:?}", request.message);
        };
        assert_eq!(cursor.room.as_str(), "doc/1");
        assert_eq!(
            code(r#"{"type":"presence:cursor","room":7,"x":1,"y":2}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":["presence:cursor"],"x":1,"y":2}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn encoded_messages_decode_to_themselves() {
        let message = ClientMessage::Update(Update {
            room: RoomName::new("r").expect("room"),
            state: serde_json::from_str(r#"{"typing":true,"gone":null}"#).expect("state"),
        });
        let decoded = decode(&message.encode()).expect("round trip");
        assert_eq!(decoded.message, message);
    }

    fn join_as(user: &str) -> ClientMessage {
        ClientMessage::Join(Join {
            room: RoomName::new("r").expect("room"),
            user: JoinUser {
                id: Some(UserId::new(user).expect("user id")),
                ..JoinUser::default()
            },
            state: None,
            token: None,
            batch: false,
        })
    }

    #[test]
    fn requests_round_trip_with_their_ref_and_without_one() {
        let requests = [
            (join_as("u"), Some(Reference::Number(42.into()))),
            (ClientMessage::Heartbeat, Some(Reference::Number(1.into()))),
            (
                ClientMessage::Heartbeat,
                Some(Reference::Text("beat-1".into())),
            ),
            (ClientMessage::Leave(Leave { room: None }), None),
        ];
        for (message, reference) in requests {
            let request = Request { message, reference };
            let text = request.encode();
            assert_eq!(decode(&text).expect("round trip"), request, "{text}");
            let object: serde_json::Value = serde_json::from_str(&text).expect("json");
            let has_ref = object.get("ref").is_some();
            assert_eq!(has_ref, request.reference.is_some(), "{text}");
        }
    }

    #[test]
    fn a_request_encodes_as_its_message_with_ref_last() {
        // The message's own bytes with `ref` last: the frames earlier clients sent, which
        // every server reads, stay byte for byte the same.
        let join = join_as("u");
        let without = Request {
            message: join.clone(),
            reference: None,
        };
        assert_eq!(without.encode(), join.encode());
        assert!(!without.encode().contains("\"ref\""));
        let with = Request {
            message: join,
            reference: Some(Reference::Number(42.into())),
        };
        assert_eq!(
            with.encode(),
            r#"{"type":"presence:join","room":"r","user":{"id":"u"},"ref":42}"#
        );
        let heartbeat = Request {
            message: ClientMessage::Heartbeat,
            reference: Some(Reference::Number(1.into())),
        };
        assert_eq!(
            heartbeat.encode(),
            r#"{"type":"presence:heartbeat","ref":1}"#
        );
    }
}
