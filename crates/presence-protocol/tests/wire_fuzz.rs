//! Randomized frames: decoding a client frame never panics and answers with a
//! message or a classified error, whatever the text; every valid request and every server
//! message survives encode → decode unchanged.
//!
//! Each property runs a quick, fixed number of cases by default. Set
//! `PRESENCED_FUZZ_CASES=N` to run N cases per property instead, for a longer search:
//! `PRESENCED_FUZZ_CASES=100000 cargo test -p presence-protocol --test wire_fuzz`.

use presence_protocol::arbitrary::{
    any_json, any_text, config, cursor_entry, exact_float, room, same_json, session_id, state,
    user, user_id,
};
use presence_protocol::{
    decode, ClientMessage, Cursor, CursorFrames, DecodeError, ErrorCode, Join, JoinUser, Leave,
    LeaveReason, Reference, Request, SelfInfo, ServerMessage, Update, View,
};
use std::fmt;

use proptest::prelude::*;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The keys a client message may carry; anything else is an unknown field.
const KNOWN_KEYS: [&str; 16] = [
    "type",
    "ref",
    "room",
    "user",
    "state",
    "token",
    "batch",
    "x",
    "y",
    "visible",
    "reason",
    "view",
    "spectator",
    "id",
    "name",
    "sessionId",
];

fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// What every refusal must look like: one of the codes decoding gives, a message, and
/// `invalid_json` exactly when the text is not JSON.
fn check_refusal(text: &str, error: &DecodeError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            error.code,
            ErrorCode::InvalidJson | ErrorCode::InvalidMessage | ErrorCode::UnknownType
        ),
        "{:?} is not a decoding error",
        error.code
    );
    prop_assert!(!error.message.trim().is_empty(), "no message for {text:?}");
    prop_assert_eq!(
        error.code == ErrorCode::InvalidJson,
        !is_json(text),
        "{:?} for {:?}",
        error,
        text
    );
    Ok(())
}

/// Any frame the decoder accepts is a JSON object, and reads back the same after the
/// client encodes it.
fn check_accepted(text: &str, request: &Request) -> Result<(), TestCaseError> {
    prop_assert!(
        text.trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{'),
        "accepted a frame that is not an object: {text:?} as {request:?}"
    );
    let again = decode(&request.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let json = |request: &Request| -> Value {
        serde_json::from_str(&request.encode()).expect("encodes as JSON")
    };
    prop_assert!(
        same_json(&json(&again), &json(request)),
        "{again:?} != {request:?}"
    );
    Ok(())
}

/// A JSON object's members in order, raw, repeated keys included (serde_json's `Value`
/// keeps only the last of them, and refuses a key with a lone surrogate).
struct Members(Vec<(Box<RawValue>, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The `ref` a refusal of `text` must echo: the first `ref` member, if `text` is an
/// object and that member is a string or a number that can be read.
fn readable_ref(text: &str) -> Option<Value> {
    let Members(members) = serde_json::from_str(text).ok()?;
    let (_, raw) = members
        .into_iter()
        .find(|(key, _)| serde_json::from_str::<String>(key.get()).is_ok_and(|key| key == "ref"))?;
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    (value.is_string() || value.is_number()).then_some(value)
}

fn check_ref(text: &str, error: &DecodeError) -> Result<(), TestCaseError> {
    let echoed = error
        .reference
        .as_ref()
        .map(|r| serde_json::to_value(r).expect("ref"));
    prop_assert_eq!(echoed, readable_ref(text), "{:?} for {:?}", error, text);
    Ok(())
}

fn reference() -> impl Strategy<Value = Reference> {
    prop_oneof![
        any_text(16).prop_map(Reference::Text),
        any::<i64>().prop_map(|n| Reference::Number(n.into())),
        any::<u64>().prop_map(|n| Reference::Number(n.into())),
        exact_float()
            .prop_map(|f| Reference::Number(serde_json::Number::from_f64(f).expect("finite"))),
    ]
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let join_user = (
        prop::option::of(user_id()),
        prop::option::of("(?s).{0,128}"),
        prop::option::of(session_id()),
    )
        .prop_map(|(id, name, session_id)| JoinUser {
            id,
            name,
            session_id,
        });
    let join = (
        room(),
        join_user,
        prop::option::of(state()),
        prop::option::of(any_text(64)),
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just(View::Full),
            (0..=View::MAX_LIST).prop_map(View::List)
        ]),
        any::<bool>(),
    )
        .prop_map(|(room, user, state, token, batch, view, spectator)| {
            ClientMessage::Join(Join {
                room,
                user,
                state,
                token,
                batch,
                view,
                spectator,
            })
        });
    let cursor =
        (room(), exact_float(), exact_float(), any::<bool>()).prop_map(|(room, x, y, visible)| {
            ClientMessage::Cursor(Cursor {
                room,
                x,
                y,
                visible,
            })
        });
    prop_oneof![
        join,
        (prop::option::of(room()), any::<bool>()).prop_map(|(room, unload)| {
            ClientMessage::Leave(Leave {
                room,
                reason: unload.then_some(LeaveReason::Unload),
            })
        }),
        Just(ClientMessage::Heartbeat),
        (room(), state()).prop_map(|(room, state)| ClientMessage::Update(Update { room, state })),
        cursor,
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (client_message(), prop::option::of(reference()))
        .prop_map(|(message, reference)| Request { message, reference })
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let users = || prop::collection::vec(user(), 0..3);
    prop_oneof![
        (
            room(),
            users(),
            user_id(),
            session_id(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(room, users, id, session_id, count, spectators)| {
                ServerMessage::CurrentUsers {
                    room,
                    users,
                    me: SelfInfo { id, session_id },
                    count: count.into(),
                    spectators: spectators.into(),
                }
            }),
        (room(), any::<u32>(), any::<u32>()).prop_map(|(room, count, spectators)| {
            ServerMessage::Count {
                room,
                count: count.into(),
                spectators: spectators.into(),
            }
        }),
        (room(), user()).prop_map(|(room, user)| ServerMessage::UserJoined { room, user }),
        (room(), user_id()).prop_map(|(room, user_id)| ServerMessage::UserLeft { room, user_id }),
        (room(), user(), session_id()).prop_map(|(room, user, session_id)| {
            ServerMessage::Restored {
                room,
                user,
                session_id,
            }
        }),
        (room(), user()).prop_map(|(room, user)| ServerMessage::UserUpdated { room, user }),
        (room(), prop::collection::vec(cursor_entry(), 0..4))
            .prop_map(|(room, cursors)| ServerMessage::Cursors { room, cursors }),
        (
            room(),
            users(),
            prop::collection::vec(user_id(), 0..3),
            users()
        )
            .prop_map(|(room, joined, left, updated)| ServerMessage::Diff {
                room,
                joined,
                left,
                updated,
            }),
        (
            prop::sample::select(ErrorCode::ALL.to_vec()),
            any_text(64),
            prop::option::of(reference())
        )
            .prop_map(|(code, message, reference)| ServerMessage::Error {
                code,
                message,
                reference,
            }),
    ]
}

/// One small edit of a frame's text, of the kinds a broken or hostile client makes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove `len` characters at `at`.
    Delete { at: prop::sample::Index, len: usize },
    /// Insert a JSON-ish fragment at `at`.
    Insert {
        at: prop::sample::Index,
        fragment: String,
    },
    /// Cut the frame short at `at`.
    Truncate { at: prop::sample::Index },
    /// Repeat a key the protocol defines, right after the opening brace.
    RepeatKey { key: &'static str, value: Value },
    /// Replace the value of a key the protocol defines (added if absent).
    Replace { key: &'static str, value: Value },
    /// Wrap the value of a key the protocol defines in an array.
    WrapInArray { key: &'static str },
    /// Nest the value of a key the protocol defines `depth` arrays deep.
    Nest { key: &'static str, depth: usize },
    /// Turn the object into the array of its values, as serde's derive would read it.
    ObjectToArray,
    /// Prefix a byte order mark.
    ByteOrderMark,
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            "\"",
            ",",
            ":",
            "\\",
            "\\u",
            "\\ud800",
            "\\udc00",
            "null",
            "true",
            "NaN",
            "-",
            "1e999",
            "0",
            "\u{feff}",
            "\u{0}",
            " ",
            "\"type\":",
            "\"ref\":\"r\",",
            "\"room\":",
        ])
        .prop_map(str::to_owned),
        "[{}\\[\\]\":,a-z0-9 .eE+\\\\-]{1,6}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = || prop::sample::select(KNOWN_KEYS[..10].to_vec());
    prop_oneof![
        (any::<prop::sample::Index>(), 1..8usize)
            .prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<prop::sample::Index>(), fragment())
            .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        any::<prop::sample::Index>().prop_map(|at| Mutation::Truncate { at }),
        (key(), any_json()).prop_map(|(key, value)| Mutation::RepeatKey { key, value }),
        (key(), any_json()).prop_map(|(key, value)| Mutation::Replace { key, value }),
        key().prop_map(|key| Mutation::WrapInArray { key }),
        (key(), prop_oneof![1..200usize, 9_000..10_001usize])
            .prop_map(|(key, depth)| Mutation::Nest { key, depth }),
        Just(Mutation::ObjectToArray),
        Just(Mutation::ByteOrderMark),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let position = |at: &prop::sample::Index| at.index(chars.len() + 1);
    let joined = |parts: &[&[char]]| parts.iter().flat_map(|p| p.iter()).collect::<String>();
    // The structural edits work on the parsed object; on text that is no longer an
    // object they leave it as it is.
    let edit_object = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut object)) => {
                edit(&mut object);
                Value::Object(object).to_string()
            }
            _ => text.to_owned(),
        }
    };
    match mutation {
        Mutation::Delete { at, len } => {
            let start = position(at).min(chars.len());
            let end = (start + len).min(chars.len());
            joined(&[&chars[..start], &chars[end..]])
        }
        Mutation::Insert { at, fragment } => {
            let at = position(at);
            let inserted: Vec<char> = fragment.chars().collect();
            joined(&[&chars[..at], &inserted, &chars[at..]])
        }
        Mutation::Truncate { at } => chars[..position(at)].iter().collect(),
        Mutation::RepeatKey { key, value } => match text.strip_prefix('{') {
            Some(rest) => format!("{{{}:{value},{rest}", json!(key)),
            None => text.to_owned(),
        },
        Mutation::Replace { key, value } => edit_object(&|object| {
            object.insert((*key).to_owned(), value.clone());
        }),
        Mutation::WrapInArray { key } => edit_object(&|object| {
            if let Some(value) = object.get_mut(*key) {
                *value = Value::Array(vec![value.take()]);
            }
        }),
        Mutation::Nest { key, depth } => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut object)) => {
                // Written by hand: serde_json would refuse to build this deep a value.
                let inner = object.remove(*key).unwrap_or(Value::Null);
                object.insert((*key).to_owned(), json!("\u{0}nest"));
                let nested = format!("{}{inner}{}", "[".repeat(*depth), "]".repeat(*depth));
                Value::Object(object)
                    .to_string()
                    .replace("\"\\u0000nest\"", &nested)
            }
            _ => text.to_owned(),
        },
        Mutation::ObjectToArray => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => {
                Value::Array(object.into_iter().map(|(_, v)| v).collect()).to_string()
            }
            _ => text.to_owned(),
        },
        Mutation::ByteOrderMark => format!("\u{feff}{text}"),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_is_refused_cleanly(
        text in prop_oneof![any_text(200), "[{}\\[\\]\":,a-z0-9 .eE+\\\\-]{0,64}"],
    ) {
        match decode(&text) {
            Ok(request) => check_accepted(&text, &request)?,
            Err(error) => check_refusal(&text, &error)?,
        }
    }

    #[test]
    fn arbitrary_json_is_a_message_or_a_shape_error(value in any_json()) {
        let text = value.to_string();
        match decode(&text) {
            Ok(request) => check_accepted(&text, &request)?,
            Err(error) => {
                check_refusal(&text, &error)?;
                prop_assert_ne!(error.code, ErrorCode::InvalidJson);
            }
        }
    }

    #[test]
    fn protocol_shaped_json_is_judged_and_echoes_a_readable_ref(
        kind in prop_oneof![
            prop::sample::select(vec![
                "presence:join",
                "presence:leave",
                "presence:heartbeat",
                "presence:update",
                "presence:cursor",
                "presence:nope",
            ])
            .prop_map(|t| json!(t)),
            any_json(),
        ],
        fields in prop::collection::vec((prop::sample::select(KNOWN_KEYS.to_vec()), any_json()), 0..8),
        user_fields in prop::collection::vec((prop::sample::select(KNOWN_KEYS[13..].to_vec()), any_json()), 0..4),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), kind);
        for (name, value) in fields {
            object.insert(name.into(), value);
        }
        if !user_fields.is_empty() {
            let user = user_fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.insert("user".into(), Value::Object(user));
        }
        let text = Value::Object(object).to_string();
        match decode(&text) {
            Ok(request) => check_accepted(&text, &request)?,
            Err(error) => {
                check_refusal(&text, &error)?;
                check_ref(&text, &error)?;
            }
        }
    }

    #[test]
    fn valid_requests_round_trip(request in request()) {
        let text = request.encode();
        prop_assert_eq!(decode(&text), Ok(request), "{}", text);
    }

    #[test]
    fn reformatted_requests_mean_the_same(
        request in request(),
        unknown in prop::collection::vec(
            (any_text(8).prop_filter("unknown", |k| !KNOWN_KEYS.contains(&k.as_str())), any_json()),
            0..4,
        ),
        null_ref in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        // Other key order, extra fields, an explicit `"ref": null`, other whitespace:
        // decode reads the same request, and encoding it gives back the frame's meaning.
        let meaning: Value = serde_json::from_str(&request.encode()).expect("JSON");
        let mut frame = meaning.clone();
        let object = frame.as_object_mut().expect("an object");
        for (key, value) in unknown {
            object.insert(key, value);
        }
        if null_ref && request.reference.is_none() {
            object.insert("ref".into(), Value::Null);
        }
        let text = if pretty {
            serde_json::to_string_pretty(&frame).expect("JSON")
        } else {
            frame.to_string()
        };
        let decoded = decode(&text);
        prop_assert_eq!(decoded.as_ref(), Ok(&request), "{}", text);
        let encoded: Value = serde_json::from_str(&request.encode()).expect("JSON");
        prop_assert_eq!(encoded, meaning);
    }

    #[test]
    fn mutated_valid_frames_are_judged_cleanly(
        request in request(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = request.encode();
        for mutation in &mutations {
            text = apply(&text, mutation);
        }
        match decode(&text) {
            Ok(request) => check_accepted(&text, &request)?,
            Err(error) => {
                check_refusal(&text, &error)?;
                // Text that is JSON throughout always lets its ref be read.
                if is_json(&text) {
                    check_ref(&text, &error)?;
                }
            }
        }
    }

    #[test]
    fn server_messages_round_trip(message in server_message()) {
        let text = message.encode();
        let decoded = ServerMessage::decode(&text).map_err(|e| e.to_string());
        prop_assert_eq!(decoded, Ok(message), "{}", text);
    }

    #[test]
    fn a_cursor_frame_without_one_entry_is_that_message(
        room in room(),
        cursors in prop::collection::vec(cursor_entry(), 0..6),
    ) {
        let frames = CursorFrames::new(&room, &cursors);
        let whole = ServerMessage::Cursors { room: room.clone(), cursors: cursors.clone() };
        prop_assert_eq!(frames.text(), whole.encode());
        for skip in 0..cursors.len() {
            let hole = frames.hole(skip).expect("a hole per entry");
            let text = format!("{}{}", &frames.text()[..hole.start], &frames.text()[hole.end..]);
            let mut rest = cursors.clone();
            rest.remove(skip);
            let decoded = ServerMessage::decode(&text).map_err(|e| e.to_string());
            prop_assert_eq!(decoded, Ok(ServerMessage::Cursors { room: room.clone(), cursors: rest }));
        }
    }

    #[test]
    fn arbitrary_text_never_decodes_as_a_server_message_by_accident(text in any_text(200)) {
        // A client reads server frames with this; whatever arrives, it answers, and what
        // it accepts encodes and reads back the same.
        if let Ok(message) = ServerMessage::decode(&text) {
            let again = ServerMessage::decode(&message.encode()).map_err(|e| e.to_string());
            prop_assert_eq!(again, Ok(message));
        }
    }
}
