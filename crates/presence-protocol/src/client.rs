//! Messages from client to server, and how a text frame becomes one.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::map::Entry;
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
    /// How much of the roster to receive (protocol 1.1); absent is the whole roster for a
    /// new session, and what it had for a restored one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// Watch without being listed (protocol 1.1).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spectator: bool,
}

/// How much of a room's roster a session receives (protocol 1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum View {
    /// Everyone, as in protocol 1.0.
    #[default]
    Full,
    /// The session's own user plus the first `K` other users by `joinedAt`.
    List(u16),
}

impl View {
    /// The largest `K` a list view may ask for.
    pub const MAX_LIST: u16 = 1000;

    /// Whether this is the whole roster.
    pub fn is_full(&self) -> bool {
        matches!(self, View::Full)
    }
}

impl Serialize for View {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            View::Full => serializer.serialize_str("full"),
            View::List(k) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("list", k)?;
                map.end()
            }
        }
    }
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
    /// Why, when it matters to the server: `unload` holds the sessions for the unload grace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<LeaveReason>,
}

/// Why a client leaves (protocol 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveReason {
    /// Sent from `pagehide`: a reload may restore the sessions within the unload grace.
    Unload,
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
/// must be. Unknown fields are skipped unread, as JSON protocols conventionally do.
#[derive(Default)]
struct Envelope<'a> {
    kind: Option<&'a RawValue>,
    reference: Option<&'a RawValue>,
    room: Option<&'a RawValue>,
    user: Option<&'a RawValue>,
    state: Option<&'a RawValue>,
    token: Option<&'a RawValue>,
    batch: Option<&'a RawValue>,
    x: Option<&'a RawValue>,
    y: Option<&'a RawValue>,
    visible: Option<&'a RawValue>,
    reason: Option<&'a RawValue>,
    view: Option<&'a RawValue>,
    spectator: Option<&'a RawValue>,
}

impl<'a> Fields<'a> for Envelope<'a> {
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
        Some(match key {
            "type" => ("type", &mut self.kind),
            "ref" => ("ref", &mut self.reference),
            "room" => ("room", &mut self.room),
            "user" => ("user", &mut self.user),
            "state" => ("state", &mut self.state),
            "token" => ("token", &mut self.token),
            "batch" => ("batch", &mut self.batch),
            "x" => ("x", &mut self.x),
            "y" => ("y", &mut self.y),
            "visible" => ("visible", &mut self.visible),
            "reason" => ("reason", &mut self.reason),
            "view" => ("view", &mut self.view),
            "spectator" => ("spectator", &mut self.spectator),
            _ => return None,
        })
    }
}

/// The `user` object of a join, raw like the [`Envelope`].
#[derive(Default)]
struct RawJoinUser<'a> {
    id: Option<&'a RawValue>,
    name: Option<&'a RawValue>,
    session_id: Option<&'a RawValue>,
}

impl<'a> Fields<'a> for RawJoinUser<'a> {
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
        Some(match key {
            "id" => ("user.id", &mut self.id),
            "name" => ("user.name", &mut self.name),
            "sessionId" => ("user.sessionId", &mut self.session_id),
            _ => return None,
        })
    }
}

/// Reads one text frame.
///
/// Text that is not JSON is `invalid_json`; JSON that is not an object with a string
/// `type`, has a field of the wrong kind, or repeats a key the protocol defines is
/// `invalid_message`; an unknown `type` is `unknown_type`. A `null` optional field
/// counts as absent. Every error carries the frame's `ref` if it could be read, even
/// when the text breaks off after it.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    let mut envelope = Envelope::default();
    let mut duplicate = None;
    let read = read_object(text, &mut envelope, &mut duplicate);
    // The envelope keeps whatever was read before a fault, so the `ref` is known before
    // anything else is judged.
    let reference = present(envelope.reference).map(reference).transpose();
    if read.is_err() {
        return Err(unreadable(text, reference.ok().flatten()));
    }
    let reference = reference?;
    let fail = |message: String| invalid(message, &reference);
    if let Some(key) = duplicate {
        return Err(fail(format!("duplicate key \"{key}\"")));
    }

    let kind = match present(envelope.kind) {
        None => return Err(fail("a message needs a string \"type\"".to_owned())),
        Some(raw) => text_field(raw, "type", &reference)?,
    };
    let room = |r: Option<&RawValue>| -> Result<Option<RoomName>, DecodeError> {
        match present(r) {
            None => Ok(None),
            Some(raw) => {
                let name = text_field(raw, "room", &reference)?;
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
                Some(raw) => join_user(raw, &reference)?,
            };
            let state = match present(envelope.state) {
                None => None,
                Some(raw) => Some(state(raw, &reference)?),
            };
            let token = match present(envelope.token) {
                None => None,
                Some(raw) => Some(text_field(raw, "token", &reference)?.into_owned()),
            };
            let batch = match present(envelope.batch) {
                None => false,
                Some(raw) => field::<bool>(raw, "batch", JsonKind::Boolean, &reference)?,
            };
            let view = match present(envelope.view) {
                None => None,
                Some(raw) => Some(view(raw, &reference)?),
            };
            let spectator = match present(envelope.spectator) {
                None => false,
                Some(raw) => field::<bool>(raw, "spectator", JsonKind::Boolean, &reference)?,
            };
            ClientMessage::Join(Join {
                room: room_or_default(envelope.room)?,
                user,
                state,
                token,
                batch,
                view,
                spectator,
            })
        }
        "presence:leave" => {
            let reason = match present(envelope.reason) {
                None => None,
                // Reasons this server does not know leave at once, as a plain leave does.
                Some(raw) => match text_field(raw, "reason", &reference)?.as_ref() {
                    "unload" => Some(LeaveReason::Unload),
                    _ => None,
                },
            };
            ClientMessage::Leave(Leave {
                room: room(envelope.room)?,
                reason,
            })
        }
        "presence:heartbeat" => ClientMessage::Heartbeat,
        "presence:update" => {
            let state = match present(envelope.state) {
                None => return Err(fail("presence:update needs a \"state\" object".to_owned())),
                Some(raw) => state(raw, &reference)?,
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
                Some(raw) => field::<bool>(raw, "visible", JsonKind::Boolean, &reference)?,
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

/// The error for a frame that is not a readable JSON object.
fn unreadable(text: &str, reference: Option<Reference>) -> DecodeError {
    // A value of another kind is refused as soon as it starts, so only a pass over the
    // whole text tells "not an object" from "not JSON", and finds the real syntax fault.
    // This runs on failures alone, and skipping a value uses no recursion however deep
    // it nests.
    let error = match serde_json::from_str::<IgnoredAny>(text) {
        Ok(_) => {
            let found = JsonKind::of(text.trim_start_matches(JSON_WHITESPACE));
            return DecodeError {
                code: ErrorCode::InvalidMessage,
                message: format!(
                    "a message must be a JSON object with a string \"type\", not {}",
                    found.with_article()
                ),
                reference: None,
            };
        }
        Err(error) => error,
    };
    let message = if text.starts_with('\u{feff}') {
        "not valid JSON: the frame starts with a byte order mark (U+FEFF)".to_owned()
    } else if text.trim_matches(JSON_WHITESPACE).is_empty() {
        "not valid JSON: the frame is empty".to_owned()
    } else {
        format!("not valid JSON: {error}")
    };
    DecodeError {
        code: ErrorCode::InvalidJson,
        message,
        reference,
    }
}

fn join_user(raw: &RawValue, reference: &Option<Reference>) -> Result<JoinUser, DecodeError> {
    let fail = |message: String| invalid(message, reference);
    expect_kind(raw, "user", JsonKind::Object, reference)?;
    let mut user = RawJoinUser::default();
    let mut duplicate = None;
    read_object(raw.get(), &mut user, &mut duplicate)
        .map_err(|error| fail(format!("\"user\" cannot be read: {}", reason(&error))))?;
    if let Some(key) = duplicate {
        return Err(fail(format!("duplicate key \"{key}\"")));
    }
    let id = match present(user.id) {
        None => None,
        Some(raw) => {
            let id = text_field(raw, "user.id", reference)?;
            Some(UserId::new(&id).map_err(|e| fail(e.to_string()))?)
        }
    };
    let name = match present(user.name) {
        None => None,
        Some(raw) => {
            let name = text_field(raw, "user.name", reference)?;
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(fail(format!(
                    "user.name must be at most {MAX_NAME_CHARS} characters"
                )));
            }
            Some(name.into_owned())
        }
    };
    let session_id = match present(user.session_id) {
        None => None,
        Some(raw) => {
            let id = text_field(raw, "user.sessionId", reference)?;
            Some(SessionId::new(&id).map_err(|e| fail(e.to_string()))?)
        }
    };
    Ok(JoinUser {
        id,
        name,
        session_id,
    })
}

/// A join's `view`: `"full"` or `{"list": K}` with `0 <= K <= 1000`.
fn view(raw: &RawValue, reference: &Option<Reference>) -> Result<View, DecodeError> {
    let wrong = || {
        invalid(
            format!(
                "\"view\" must be \"full\" or {{\"list\": K}} with K from 0 to {}",
                View::MAX_LIST
            ),
            reference,
        )
    };
    match JsonKind::of(raw.get()) {
        JsonKind::String => match text_field(raw, "view", reference)?.as_ref() {
            "full" => Ok(View::Full),
            _ => Err(wrong()),
        },
        JsonKind::Object => {
            let mut list = ListView::default();
            let mut duplicate = None;
            read_object(raw.get(), &mut list, &mut duplicate).map_err(|_| wrong())?;
            if duplicate.is_some() {
                return Err(wrong());
            }
            let k = present(list.list)
                .and_then(|raw| serde_json::from_str::<u16>(raw.get()).ok())
                .filter(|&k| k <= View::MAX_LIST)
                .ok_or_else(wrong)?;
            Ok(View::List(k))
        }
        _ => Err(wrong()),
    }
}

/// The object form of a `view`, raw like the [`Envelope`].
#[derive(Default)]
struct ListView<'a> {
    list: Option<&'a RawValue>,
}

impl<'a> Fields<'a> for ListView<'a> {
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
        Some(match key {
            "list" => ("view.list", &mut self.list),
            _ => return None,
        })
    }
}

/// A `state` object. Its own keys are the ones the server merges and interprets (`away`),
/// so a repeated one is refused rather than silently resolved; the values below them are
/// the client's data and are read as serde_json reads any JSON, nesting limit included.
fn state(raw: &RawValue, reference: &Option<Reference>) -> Result<State, DecodeError> {
    expect_kind(raw, "state", JsonKind::Object, reference)?;
    let mut duplicate = None;
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let state = StateReader {
        duplicate: &mut duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|state| deserializer.end().map(|()| state))
    .map_err(|error| {
        invalid(
            format!("\"state\" cannot be read: {}", reason(&error)),
            reference,
        )
    })?;
    match duplicate {
        None => Ok(state),
        Some(key) => {
            let shown: String = key.chars().take(64).collect();
            Err(invalid(
                format!("duplicate key \"state.{shown}\""),
                reference,
            ))
        }
    }
}

/// A `ref`: a string or a number.
fn reference(raw: &RawValue) -> Result<Reference, DecodeError> {
    match JsonKind::of(raw.get()) {
        JsonKind::String => text_field(raw, "ref", &None).map(|text| Reference::Text(text.into())),
        JsonKind::Number => raw
            .get()
            .parse::<serde_json::Number>()
            .map(Reference::Number)
            .map_err(|error| invalid(format!("\"ref\" cannot be read: {}", reason(&error)), &None)),
        found => Err(invalid(
            format!(
                "\"ref\" must be a string or a number, not {}",
                found.with_article()
            ),
            &None,
        )),
    }
}

/// A field that is absent or `null` is treated alike: not given.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get() != "null")
}

fn invalid(message: String, reference: &Option<Reference>) -> DecodeError {
    DecodeError {
        code: ErrorCode::InvalidMessage,
        message,
        reference: reference.clone(),
    }
}

fn expect_kind(
    raw: &RawValue,
    name: &str,
    kind: JsonKind,
    reference: &Option<Reference>,
) -> Result<(), DecodeError> {
    let found = JsonKind::of(raw.get());
    if found == kind {
        return Ok(());
    }
    Err(invalid(
        format!(
            "\"{name}\" must be {}, not {}",
            kind.with_article(),
            found.with_article()
        ),
        reference,
    ))
}

fn field<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    name: &str,
    kind: JsonKind,
    reference: &Option<Reference>,
) -> Result<T, DecodeError> {
    expect_kind(raw, name, kind, reference)?;
    serde_json::from_str(raw.get()).map_err(|error| {
        invalid(
            format!("\"{name}\" cannot be read: {}", reason(&error)),
            reference,
        )
    })
}

/// A string field, borrowed from the frame unless it has escapes: `type` and `room` are
/// read from every message, cursor moves included, and need no allocation of their own.
fn text_field<'a>(
    raw: &'a RawValue,
    name: &str,
    reference: &Option<Reference>,
) -> Result<Cow<'a, str>, DecodeError> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => field::<String>(raw, name, JsonKind::String, reference).map(Cow::Owned),
    }
}

/// Why a field whose JSON is well formed still cannot be read, in the client's terms.
///
/// serde_json's own wording ("unexpected end of hex escape") is translated where it is
/// known, and its position dropped: it counts from the field's start, not the frame's.
fn reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let fault = text
        .rfind(" at line ")
        .map_or(text.as_str(), |end| &text[..end]);
    match fault {
        "recursion limit exceeded" => "it nests deeper than 128 levels".to_owned(),
        "number out of range" => "a number is beyond the range of a 64-bit float".to_owned(),
        "lone leading surrogate in hex escape"
        | "unexpected end of hex escape"
        | "invalid unicode code point" => {
            "a \\u escape is a lone UTF-16 surrogate, which is not a character".to_owned()
        }
        other => other.to_owned(),
    }
}

/// The whitespace JSON allows between tokens (RFC 8259); nothing else, not even a BOM.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// What kind of JSON value a piece of text starts with, to say what a client sent
/// instead of what a field needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    /// The kind of the value `text` starts with (no leading whitespace). Text that is not
    /// JSON never gets this far, so anything unexpected counts as a number.
    fn of(text: &str) -> JsonKind {
        match text.as_bytes().first() {
            Some(b'n') => JsonKind::Null,
            Some(b't' | b'f') => JsonKind::Boolean,
            Some(b'"') => JsonKind::String,
            Some(b'[') => JsonKind::Array,
            Some(b'{') => JsonKind::Object,
            _ => JsonKind::Number,
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Boolean => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        }
    }
}

/// The keys an object of the protocol defines, each with a place for its raw value.
trait Fields<'a> {
    /// Where `key`'s value goes, and the key's name in error messages; `None` for a key
    /// the protocol does not define, whose value is skipped unread.
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)>;
}

/// Reads `text`, which must be one JSON object and nothing more, into `fields`.
///
/// serde's derived `Deserialize` would also take an array and assign its items by
/// position, and stops at a repeated key before reading the rest of the frame, so the
/// object is walked here instead: only an object is accepted, the first value of a
/// repeated key is kept and the key noted in `duplicate`, and everything read before a
/// fault stays in `fields`.
fn read_object<'a, F: Fields<'a>>(
    text: &'a str,
    fields: &mut F,
    duplicate: &mut Option<&'static str>,
) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    ObjectReader { fields, duplicate }.deserialize(&mut deserializer)?;
    deserializer.end()
}

struct ObjectReader<'r, F> {
    fields: &'r mut F,
    duplicate: &'r mut Option<&'static str>,
}

impl<'de, F: Fields<'de>> DeserializeSeed<'de> for ObjectReader<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: Fields<'de>> Visitor<'de> for ObjectReader<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keys are taken raw: a key serde_json cannot turn into a string (a lone UTF-16
        // surrogate) is no key of ours, and is skipped like any other unknown key.
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            match key_text(key).and_then(|key| self.fields.slot(&key)) {
                Some((name, slot)) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    if slot.is_none() {
                        *slot = Some(value);
                    } else if self.duplicate.is_none() {
                        *self.duplicate = Some(name);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The text of a raw object key, borrowed when it has no escapes; `None` when it does
/// not decode to a string.
fn key_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let quoted = raw.get();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
}

/// Reads a `state` object like serde_json's own map, except that a repeated key is noted
/// in `duplicate` (first value kept) instead of the last value silently winning.
struct StateReader<'r> {
    duplicate: &'r mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for StateReader<'_> {
    type Value = State;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<State, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StateReader<'_> {
    type Value = State;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<State, A::Error> {
        let mut state = State::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<serde_json::Value>()?;
            match state.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                Entry::Occupied(entry) => {
                    if self.duplicate.is_none() {
                        *self.duplicate = Some(entry.key().clone());
                    }
                }
            }
        }
        Ok(state)
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
            view: None,
            spectator: false,
        })
    }

    fn join_view(text: &str) -> Result<(Option<View>, bool), DecodeError> {
        match decode(text)?.message {
            ClientMessage::Join(join) => Ok((join.view, join.spectator)),
            other => panic!("not a join: {other:?}"),
        }
    }

    #[test]
    fn views_read_as_full_or_a_list_of_at_most_a_thousand() {
        let ok = [
            (r#"{"type":"presence:join"}"#, None),
            (r#"{"type":"presence:join","view":null}"#, None),
            (
                r#"{"type":"presence:join","view":"full"}"#,
                Some(View::Full),
            ),
            (
                r#"{"type":"presence:join","view":{"list":0}}"#,
                Some(View::List(0)),
            ),
            (
                r#"{"type":"presence:join","view":{"list":20,"x":1}}"#,
                Some(View::List(20)),
            ),
            (
                r#"{"type":"presence:join","view":{"list":1000}}"#,
                Some(View::List(1000)),
            ),
        ];
        for (text, view) in ok {
            assert_eq!(join_view(text).expect(text), (view, false), "{text}");
        }
        let bad = [
            r#""view":"half""#,
            r#""view":{"list":1001}"#,
            r#""view":{"list":-1}"#,
            r#""view":{"list":2.5}"#,
            r#""view":{"list":"3"}"#,
            r#""view":{}"#,
            r#""view":{"list":1,"list":2}"#,
            r#""view":[20]"#,
            r#""view":20"#,
            r#""spectator":"yes""#,
        ];
        for fields in bad {
            let text = format!(r#"{{"type":"presence:join",{fields},"ref":9}}"#);
            let error = join_view(&text).expect_err(&text);
            assert_eq!(error.code, ErrorCode::InvalidMessage, "{text}");
            assert_eq!(error.reference, Some(Reference::Number(9.into())), "{text}");
        }
        let spectator = r#"{"type":"presence:join","view":{"list":5},"spectator":true}"#;
        assert_eq!(
            join_view(spectator).expect("spectator"),
            (Some(View::List(5)), true)
        );
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
            (
                ClientMessage::Leave(Leave {
                    room: None,
                    reason: None,
                }),
                None,
            ),
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
