//! Randomized cluster facts: a node decodes whatever arrives on the cluster
//! channel without panicking, the way the Redis backend does (`serde_json::from_slice`),
//! and every fact a node publishes decodes to itself.
//!
//! Each property runs a quick, fixed number of cases by default. Set
//! `PRESENCED_FUZZ_CASES=N` to run N cases per property instead, for a longer search:
//! `PRESENCED_FUZZ_CASES=100000 cargo test -p presence-core --test fact_fuzz`.

use presence_core::{Fact, NodeId, SessionRecord, Stamp};
use presence_protocol::arbitrary::{
    config, cursor_entry, room, same_json, session_id, user, user_id,
};
use proptest::prelude::*;
use serde_json::Value;

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

fn node() -> impl Strategy<Value = NodeId> {
    any::<u64>().prop_map(NodeId)
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (any::<u64>(), any::<u64>()).prop_map(|(unix_ms, node)| Stamp { unix_ms, node })
}

fn record() -> impl Strategy<Value = SessionRecord> {
    (
        room(),
        session_id(),
        user(),
        any::<bool>(),
        stamp(),
        stamp(),
        any::<bool>(),
    )
        .prop_map(
            |(room, session_id, user, away, stamp, claim, spectator)| SessionRecord {
                room,
                session_id,
                user,
                away,
                stamp,
                claim,
                spectator,
            },
        )
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
        node().prop_map(|node| Fact::Reasserted { node }),
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
