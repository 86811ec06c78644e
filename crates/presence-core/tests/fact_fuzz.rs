//! Randomized cluster facts: a node decodes whatever arrives on the cluster
//! channel without panicking, the way the Redis backend does (`serde_json::from_slice`),
//! and every fact a node publishes decodes to itself.
//!
//! Each property runs a quick, fixed number of cases by default. Set
//! `PRESENCED_FUZZ_CASES=N` to run N cases per property instead, for a longer search:
//! `PRESENCED_FUZZ_CASES=100000 cargo test -p presence-core --test fact_fuzz`.

use presence_core::{Fact, NodeId, SessionRecord, Stamp};
use presence_protocol::{CursorEntry, CursorPosition, RoomName, SessionId, State, User, UserId};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Cases per property: `default`, or `PRESENCED_FUZZ_CASES` when it is set.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PRESENCED_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// What a node does with a payload from the channel.
fn receive(bytes: &[u8]) -> Option<Fact> {
    serde_json::from_slice::<Fact>(bytes).ok()
}

fn publish(fact: &Fact) -> String {
    serde_json::to_string(fact).expect("a fact always encodes")
}

/// Whatever a node accepts, it would publish again as the same fact. Floats are compared
/// through their text: serde_json parses a long float to within one unit in the last
/// place, so a mutated one may move by that much on each trip.
fn check_accepted(fact: &Fact) -> Result<(), TestCaseError> {
    let text = publish(fact);
    let again = receive(text.as_bytes());
    prop_assert!(again.is_some(), "{text} does not decode");
    let again = again.map(|fact| publish(&fact)).unwrap_or_default();
    let meaning = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
    prop_assert!(
        same_json(&meaning(&again), &meaning(&text)),
        "{again} != {text}"
    );
    Ok(())
}

fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("(?s).{{0,{max}}}")).expect("regex")
}

/// A float that JSON text carries exactly.
fn exact_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(|n| f64::from(n) / 256.0),
        Just(0.0),
        Just(1e300),
    ]
}

fn exact_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        exact_float().prop_map(|f| json!(f)),
        any_text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any_text(8), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn state() -> impl Strategy<Value = State> {
    prop::collection::btree_map(any_text(10), exact_json(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn room() -> impl Strategy<Value = RoomName> {
    "[A-Za-z0-9._:/-]{1,128}".prop_map(|name| RoomName::new(&name).expect("valid room"))
}

fn user_id() -> impl Strategy<Value = UserId> {
    "(?s).{1,128}".prop_map(|id| UserId::new(&id).expect("valid id"))
}

fn session_id() -> impl Strategy<Value = SessionId> {
    "(?s).{1,128}".prop_map(|id| SessionId::new(&id).expect("valid id"))
}

fn node() -> impl Strategy<Value = NodeId> {
    any::<u64>().prop_map(NodeId)
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (any::<u64>(), any::<u64>()).prop_map(|(unix_ms, node)| Stamp { unix_ms, node })
}

fn user() -> impl Strategy<Value = User> {
    let cursor = (exact_float(), exact_float(), any::<bool>())
        .prop_map(|(x, y, visible)| CursorPosition { x, y, visible });
    (
        user_id(),
        any_text(32),
        "#[0-9a-f]{6}",
        (any::<u64>(), any::<u64>()),
        cursor,
        state(),
        any::<u32>(),
    )
        .prop_map(
            |(id, name, color, (joined_at, last_seen), cursor, state, sessions)| User {
                id,
                name,
                color,
                joined_at,
                last_seen,
                cursor,
                state,
                sessions,
            },
        )
}

fn record() -> impl Strategy<Value = SessionRecord> {
    (
        room(),
        session_id(),
        user(),
        any::<bool>(),
        stamp(),
        stamp(),
    )
        .prop_map(
            |(room, session_id, user, away, stamp, claim)| SessionRecord {
                room,
                session_id,
                user,
                away,
                stamp,
                claim,
            },
        )
}

fn cursor_entry() -> impl Strategy<Value = CursorEntry> {
    (user_id(), exact_float(), exact_float(), any::<bool>()).prop_map(|(user_id, x, y, visible)| {
        CursorEntry {
            user_id,
            x,
            y,
            visible,
        }
    })
}

fn fact() -> impl Strategy<Value = Fact> {
    prop_oneof![
        node().prop_map(|node| Fact::Alive { node }),
        (node(), record()).prop_map(|(node, record)| Fact::Session { node, record }),
        (node(), room(), user_id(), session_id()).prop_map(|(node, room, user_id, session_id)| {
            Fact::SessionEnded {
                node,
                room,
                user_id,
                session_id,
            }
        }),
        (node(), room(), prop::collection::vec(cursor_entry(), 0..4)).prop_map(
            |(node, room, cursors)| Fact::Cursors {
                node,
                room,
                cursors
            }
        ),
        node().prop_map(|node| Fact::Leaving { node }),
        (node(), prop::collection::vec(record(), 0..3))
            .prop_map(|(node, sessions)| Fact::Snapshot { node, sessions }),
        node().prop_map(|node| Fact::Resync { node }),
    ]
}

/// One edit of a published fact: what a corrupted, truncated or hostile payload holds.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove `len` bytes at `at`.
    Delete { at: prop::sample::Index, len: usize },
    /// Insert bytes at `at`.
    Insert {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
    /// Flip one bit.
    Flip { at: prop::sample::Index, bit: u8 },
    /// Cut the payload short.
    Truncate { at: prop::sample::Index },
    /// Open `depth` nested arrays before the first `{` after `at`.
    Nest {
        at: prop::sample::Index,
        depth: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    let json_bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..6),
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            "\"",
            ",",
            ":",
            "null",
            "\"kind\":\"alive\",",
            "\\ud800",
            "1e999",
            "-1",
            "18446744073709551616",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop_oneof![
        (index(), 1..8usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (index(), json_bytes).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (index(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        index().prop_map(|at| Mutation::Truncate { at }),
        (index(), prop_oneof![1..200usize, 9_000..10_001usize])
            .prop_map(|(at, depth)| Mutation::Nest { at, depth }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let len = bytes.len();
    match mutation {
        Mutation::Delete { at, len: count } => {
            let start = at.index(len + 1).min(len);
            let end = (start + count).min(len);
            bytes.drain(start..end);
        }
        Mutation::Insert {
            at,
            bytes: inserted,
        } => {
            let at = at.index(len + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::Flip { at, bit } => {
            if len > 0 {
                bytes[at.index(len)] ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at.index(len + 1)),
        Mutation::Nest { at, depth } => {
            let from = at.index(len + 1);
            if let Some(offset) = bytes[from..].iter().position(|&b| b == b'{') {
                let at = from + offset;
                let open = vec![b'['; *depth];
                let close = vec![b']'; *depth];
                bytes.splice(at..at, open);
                // Closed at the end: a whole fact when the object was the outermost one,
                // otherwise text that breaks only after the nesting has been read.
                bytes.extend_from_slice(&close);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            "[{}\\[\\]\":,a-z0-9 .eE+\\\\-]{0,96}".prop_map(String::into_bytes),
        ],
    ) {
        if let Some(fact) = receive(&bytes) {
            check_accepted(&fact)?;
        }
    }

    #[test]
    fn published_facts_decode_to_themselves(fact in fact()) {
        let text = publish(&fact);
        prop_assert_eq!(receive(text.as_bytes()), Some(fact), "{}", text);
    }

    #[test]
    fn corrupted_facts_never_panic(
        fact in fact(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = publish(&fact).into_bytes();
        for mutation in &mutations {
            bytes = apply(bytes, mutation);
        }
        if let Some(fact) = receive(&bytes) {
            check_accepted(&fact)?;
        }
    }
}

#[test]
fn deeply_nested_state_is_refused_without_exhausting_the_stack() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let text = format!(
        r##"{{"kind":"session","node":1,"record":{{"room":"r","sessionId":"s","user":{{"id":"u","name":"U","color":"#000000","joinedAt":0,"lastSeen":0,"cursor":{{"x":0,"y":0,"visible":false}},"state":{{"deep":{deep}}},"sessions":1}},"away":false,"stamp":{{"unix_ms":0,"node":1}},"claim":{{"unix_ms":0,"node":1}}}}}}"##
    );
    assert_eq!(receive(text.as_bytes()), None);
    let shallow = text.replace(&deep, "[[1]]");
    assert!(
        matches!(receive(shallow.as_bytes()), Some(Fact::Session { .. })),
        "the same fact with shallow state decodes"
    );
}
