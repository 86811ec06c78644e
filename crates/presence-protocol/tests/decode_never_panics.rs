//! Whatever a client sends, decoding answers with a message or a classified error and
//! never panics: arbitrary text, arbitrary JSON, and protocol-shaped JSON with every field
//! replaced by a value of any kind.

use presence_protocol::{decode, ErrorCode};
use proptest::prelude::*;
use serde_json::{json, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "type", "ref", "room", "user", "state", "token", "batch", "x", "y", "visible", "extra",
    ])
}

fn message_type() -> impl Strategy<Value = Value> {
    prop_oneof![
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
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = decode(&text);
    }

    #[test]
    fn arbitrary_json_is_either_a_message_or_a_json_shape_error(value in any_json()) {
        if let Err(error) = decode(&value.to_string()) {
            prop_assert_ne!(error.code, ErrorCode::InvalidJson, "valid JSON is never invalid_json");
        }
    }

    #[test]
    fn protocol_shaped_json_with_any_field_values_never_panics(
        kind in message_type(),
        fields in prop::collection::vec((field_name(), any_json()), 0..8),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), kind);
        for (name, value) in fields {
            object.insert(name.into(), value);
        }
        let _ = decode(&Value::Object(object).to_string());
    }
}
