//! proptest strategies for the protocol's types, shared by the randomized tests of every
//! crate (enabled by the `arbitrary` feature; nothing outside tests turns it on). Numbers
//! come in two kinds: "exact" ones that survive a trip through JSON text unchanged, for
//! round-trip properties, and any at all, for robustness properties.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{CursorEntry, CursorPosition, RoomName, SessionId, State, User, UserId};

/// Cases per property: `default`, or `PRESENCED_FUZZ_CASES` when it is set.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PRESENCED_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// A float that JSON text carries exactly (serde_json's default parsing is correct to
/// within one unit in the last place, not always exact).
pub fn exact_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(|n| f64::from(n) / 256.0),
        Just(0.0),
        Just(1e300),
        Just(-2.5e-300),
    ]
}

/// Text of up to `max` characters, any of them.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("(?s).{{0,{max}}}")).expect("regex")
}

/// JSON whose numbers survive a trip through text unchanged.
pub fn exact_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        exact_float().prop_map(|f| json!(f)),
        any_text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any_text(8), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any JSON at all, floats of every kind included.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any_text(20).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any_text(8), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `state` object.
pub fn state() -> impl Strategy<Value = State> {
    prop::collection::btree_map(any_text(10), exact_json(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// A valid room name.
pub fn room() -> impl Strategy<Value = RoomName> {
    "[A-Za-z0-9._:/-]{1,128}".prop_map(|name| RoomName::new(&name).expect("valid room"))
}

/// A valid user id.
pub fn user_id() -> impl Strategy<Value = UserId> {
    "(?s).{1,128}".prop_map(|id| UserId::new(&id).expect("valid id"))
}

/// A valid session id.
pub fn session_id() -> impl Strategy<Value = SessionId> {
    "(?s).{1,128}".prop_map(|id| SessionId::new(&id).expect("valid id"))
}

/// A `User` whose numbers survive a trip through JSON text.
pub fn user() -> impl Strategy<Value = User> {
    let cursor = (exact_float(), exact_float(), any::<bool>())
        .prop_map(|(x, y, visible)| CursorPosition { x, y, visible });
    (
        user_id(),
        any_text(32),
        "#[0-9a-f]{6}",
        any::<u64>(),
        any::<u64>(),
        cursor,
        state(),
        any::<u32>(),
    )
        .prop_map(
            |(id, name, color, joined_at, last_seen, cursor, state, sessions)| User {
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

/// A cursor entry whose numbers survive a trip through JSON text.
pub fn cursor_entry() -> impl Strategy<Value = CursorEntry> {
    (user_id(), exact_float(), exact_float(), any::<bool>()).prop_map(|(user_id, x, y, visible)| {
        CursorEntry {
            user_id,
            x,
            y,
            visible,
        }
    })
}

/// JSON equality, except that floats may differ in the last place: without its
/// `float_roundtrip` feature serde_json parses a float to within one unit in the last
/// place, so a float that is not short (a mutated `ref` or `x`) may move on each trip.
pub fn same_json(a: &Value, b: &Value) -> bool {
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
