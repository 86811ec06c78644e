//! Frames from a black-box attack run: each one gets a clean,
//! classified error that names what is wrong and echoes the `ref` whenever the frame let
//! one be read, and none of them can panic, overflow the stack or make decoding work hard.

use presence_protocol::{
    decode, ClientMessage, DecodeError, ErrorCode, Reference, Request, ServerMessage,
};

fn refused(text: &str) -> DecodeError {
    match decode(text) {
        Ok(request) => panic!("{text:.120} was accepted as {request:?}"),
        Err(error) => {
            assert!(!error.message.is_empty(), "{text:.120}: empty message");
            // Whatever went wrong, the reply is a well-formed presence:error.
            let reply = ServerMessage::error(error.code, &error.message, error.reference.clone());
            let sent = ServerMessage::decode(&reply.encode()).expect("the reply decodes");
            assert_eq!(sent, reply, "{text:.120}");
            error
        }
    }
}

fn text_ref(text: &str) -> Option<Reference> {
    Some(Reference::Text(text.to_owned()))
}

fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn a_top_level_array_is_not_read_as_a_message() {
    // serde's derive reads a sequence into a struct by position, so this joined room-x.
    for text in [
        r#"["presence:join","ref","room-x"]"#,
        r#"["presence:heartbeat"]"#,
        r#"[]"#,
    ] {
        let error = refused(text);
        assert_eq!(error.code, ErrorCode::InvalidMessage, "{text}");
        assert!(error.message.contains("object"), "{}", error.message);
        assert!(error.message.contains("array"), "{}", error.message);
        assert_eq!(error.reference, None);
    }
}

#[test]
fn an_array_where_a_nested_object_belongs_is_invalid_message_with_the_ref() {
    let cases = [
        (
            r#"{"type":"presence:join","ref":"j","user":["id","name","sid"]}"#,
            "user",
        ),
        (
            r#"{"type":"presence:join","ref":"j","user":{"id":"a"},"state":["x"]}"#,
            "state",
        ),
        (
            r#"{"type":"presence:update","ref":"j","state":[1,2]}"#,
            "state",
        ),
        (
            r#"{"type":"presence:update","ref":"j","state":[]}"#,
            "state",
        ),
        (
            r#"{"type":"presence:join","ref":"j","user":{"id":["a"]}}"#,
            "user.id",
        ),
        (
            r#"{"type":"presence:join","ref":"j","user":{"sessionId":["s"]}}"#,
            "user.sessionId",
        ),
        (
            r#"{"type":"presence:join","ref":"j","user":{"name":[]}}"#,
            "user.name",
        ),
        (
            r#"{"type":"presence:join","ref":"j","token":["t"]}"#,
            "token",
        ),
        (r#"{"type":"presence:join","ref":"j","room":["r"]}"#, "room"),
        (r#"{"type":"presence:cursor","ref":"j","x":[1],"y":2}"#, "x"),
        (
            r#"{"type":"presence:cursor","ref":"j","x":1,"y":2,"visible":[]}"#,
            "visible",
        ),
    ];
    for (text, field) in cases {
        let error = refused(text);
        assert_eq!(error.code, ErrorCode::InvalidMessage, "{text}");
        assert_eq!(error.reference, text_ref("j"), "{text}");
        assert!(
            error.message.contains(&format!("\"{field}\"")),
            "{text}: {}",
            error.message
        );
    }
    let error = refused(r#"{"type":"presence:join","ref":"j","user":["id","name","sid"]}"#);
    assert_eq!(error.message, "\"user\" must be an object, not an array");
}

#[test]
fn a_duplicate_key_is_invalid_message_and_keeps_the_ref() {
    let cases = [
        (r#"{"ref":"r","type":"x","type":"x"}"#, "type"),
        (
            r#"{"type":"presence:heartbeat","type":"presence:heartbeat","ref":"r"}"#,
            "type",
        ),
        (
            r#"{"ref":"r","type":"presence:join","room":"a","room":"b"}"#,
            "room",
        ),
        (
            r#"{"ref":"r","type":"presence:join","user":{"id":"a","id":"b"}}"#,
            "user.id",
        ),
        (
            r#"{"ref":"r","type":"presence:update","state":{"away":true,"away":false}}"#,
            "state.away",
        ),
        (
            r#"{"ref":"r","type":"presence:cursor","x":1,"x":2,"y":3}"#,
            "x",
        ),
        // The first `ref` is the one echoed.
        (
            r#"{"ref":"r","type":"presence:heartbeat","ref":"q"}"#,
            "ref",
        ),
    ];
    for (text, key) in cases {
        let error = refused(text);
        assert_eq!(error.code, ErrorCode::InvalidMessage, "{text}");
        assert_eq!(error.reference, text_ref("r"), "{text}");
        assert_eq!(error.message, format!("duplicate key \"{key}\""), "{text}");
    }
}

#[test]
fn unknown_keys_stay_ignored_even_when_repeated() {
    let request = decode(r#"{"type":"presence:heartbeat","extra":1,"extra":{"a":[]}}"#)
        .expect("unknown keys are ignored");
    assert_eq!(request.message, ClientMessage::Heartbeat);
}

#[test]
fn deep_nesting_is_refused_cleanly_wherever_it_is() {
    let deep_array = nested(10_000, "[", "]", "");
    let deep_object = nested(10_000, r#"{"a":"#, "}", "1");

    let error = refused(&deep_array);
    assert_eq!(error.code, ErrorCode::InvalidMessage);
    assert!(error.message.contains("not an array"), "{}", error.message);
    let error = refused(&deep_object);
    assert_eq!(error.code, ErrorCode::InvalidMessage);
    assert!(error.message.contains("\"type\""), "{}", error.message);

    for value in [&deep_array, &deep_object] {
        let frames = [
            format!(r#"{{"type":"presence:update","ref":"d","state":{{"a":{value}}}}}"#),
            format!(r#"{{"type":"presence:join","ref":"d","state":{{"a":{value}}}}}"#),
            format!(r#"{{"type":"presence:update","ref":"d","state":{value}}}"#),
            format!(r#"{{"type":"presence:join","ref":"d","user":{{"name":{value}}}}}"#),
            format!(r#"{{"type":"presence:join","ref":"d","user":{{"id":{value}}}}}"#),
            format!(r#"{{"type":"presence:cursor","ref":"d","x":{value},"y":1}}"#),
        ];
        for text in frames {
            let error = refused(&text);
            assert_eq!(error.code, ErrorCode::InvalidMessage, "{text:.80}");
            assert_eq!(error.reference, text_ref("d"), "{text:.80}");
        }
        let error = refused(&format!(r#"{{"type":"presence:heartbeat","ref":{value}}}"#));
        assert_eq!(error.code, ErrorCode::InvalidMessage);
        assert_eq!(error.reference, None);

        // An unknown field is skipped without being built, however deep it is.
        let request = decode(&format!(
            r#"{{"type":"presence:heartbeat","extra":{value}}}"#
        ))
        .expect("unknown fields are ignored");
        assert_eq!(request.message, ClientMessage::Heartbeat);
    }

    let error = refused(&format!(
        r#"{{"type":"presence:join","ref":"d","user":{deep_array}}}"#
    ));
    assert_eq!(error.message, "\"user\" must be an object, not an array");
    let error = refused(&format!(
        r#"{{"type":"presence:update","ref":"d","state":{{"a":{deep_array}}}}}"#
    ));
    assert_eq!(
        error.message,
        "\"state\" cannot be read: it nests deeper than 128 levels"
    );

    // Unclosed nesting is not JSON.
    let error = refused(&format!(r#"{{"ref":"d","x":{}"#, "[".repeat(10_000)));
    assert_eq!(error.code, ErrorCode::InvalidJson);

    // State nested as deep as anyone needs is fine.
    let request = decode(&format!(
        r#"{{"type":"presence:update","state":{{"a":{}}}}}"#,
        nested(100, "[", "]", "")
    ))
    .expect("100 levels");
    assert!(matches!(request.message, ClientMessage::Update(_)));
}

#[test]
fn lone_surrogates_are_invalid_message_with_the_ref() {
    for text in [
        r#"{"type":"presence:join","ref":"s","user":{"name":"\ud800"}}"#,
        r#"{"type":"presence:join","ref":"s","user":{"id":"a\udc00b"}}"#,
        r#"{"type":"presence:join","ref":"s","token":"\ud800"}"#,
        r#"{"type":"presence:join","ref":"s","room":"\ud800"}"#,
        r#"{"type":"presence:update","ref":"s","state":{"k":"\ud800"}}"#,
        r#"{"type":"presence:update","ref":"s","state":{"\ud800":1}}"#,
        r#"{"type":"\ud800","ref":"s"}"#,
    ] {
        let error = refused(text);
        assert_eq!(error.code, ErrorCode::InvalidMessage, "{text}");
        assert_eq!(error.reference, text_ref("s"), "{text}");
        assert!(
            error.message.contains("surrogate"),
            "{text}: {}",
            error.message
        );
    }
    let error = refused(r#"{"type":"presence:heartbeat","ref":"\ud800"}"#);
    assert_eq!(error.code, ErrorCode::InvalidMessage);
    assert_eq!(error.reference, None);
    let error = refused(r#""\ud800""#);
    assert_eq!(error.code, ErrorCode::InvalidMessage);

    // A key no field can have is an unknown field like any other.
    let request = decode(r#"{"type":"presence:heartbeat","\ud800":1}"#).expect("ignored");
    assert_eq!(request.message, ClientMessage::Heartbeat);
    // A proper pair is just a character.
    let request =
        decode(r#"{"type":"presence:join","user":{"name":"\ud83d\ude00"}}"#).expect("a pair");
    let ClientMessage::Join(join) = request.message else {
        panic!("a join")
    };
    assert_eq!(join.user.name.as_deref(), Some("\u{1f600}"));
}

#[test]
fn huge_numbers_are_refused_or_read_never_trusted_blindly() {
    let huge = format!("1{}", "0".repeat(400));
    for text in [
        r#"{"type":"presence:cursor","ref":"n","x":1e999,"y":1}"#.to_owned(),
        r#"{"type":"presence:cursor","ref":"n","x":1,"y":-1e400}"#.to_owned(),
        format!(r#"{{"type":"presence:cursor","ref":"n","x":{huge},"y":1}}"#),
        r#"{"type":"presence:update","ref":"n","state":{"big":1e999}}"#.to_owned(),
        format!(r#"{{"type":"presence:join","ref":"n","state":{{"big":{huge}}}}}"#),
    ] {
        let error = refused(&text);
        assert_eq!(error.code, ErrorCode::InvalidMessage, "{text:.80}");
        assert_eq!(error.reference, text_ref("n"), "{text:.80}");
        assert!(
            error.message.contains("finite") || error.message.contains("range"),
            "{text:.80}: {}",
            error.message
        );
    }
    let error = refused(r#"{"type":"presence:heartbeat","ref":1e999}"#);
    assert_eq!(error.code, ErrorCode::InvalidMessage);
    assert_eq!(error.reference, None);

    // Large but finite numbers are numbers.
    let request = decode(
        r#"{"type":"presence:cursor","ref":123456789012345678901234567890,"x":1e308,"y":-0}"#,
    )
    .expect("finite");
    assert!(matches!(request.reference, Some(Reference::Number(_))));
}

#[test]
fn nan_like_tokens_are_not_json_and_keep_a_ref_read_before_them() {
    for token in [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "+1",
        "0x10",
        ".5",
        "01",
    ] {
        let text = format!(r#"{{"type":"presence:cursor","ref":"t","x":{token},"y":1}}"#);
        let error = refused(&text);
        assert_eq!(error.code, ErrorCode::InvalidJson, "{text}");
        assert_eq!(error.reference, text_ref("t"), "{text}");
        let error = refused(token);
        assert_eq!(error.code, ErrorCode::InvalidJson, "{token}");
    }
    // A ref after the fault was never reached.
    let error = refused(r#"{"type":"presence:cursor","x":NaN,"y":1,"ref":"t"}"#);
    assert_eq!(error.reference, None);
}

#[test]
fn empty_text_and_a_byte_order_mark_are_not_json() {
    for text in [
        "",
        " ",
        "\n\t\r ",
        "\u{feff}",
        "\u{feff}{\"type\":\"presence:heartbeat\"}",
    ] {
        let error = refused(text);
        assert_eq!(error.code, ErrorCode::InvalidJson, "{text:?}");
    }
    assert!(
        refused("").message.contains("empty"),
        "{}",
        refused("").message
    );
    let bom = refused("\u{feff}{\"type\":\"presence:heartbeat\"}");
    assert!(bom.message.contains("byte order mark"), "{}", bom.message);
}

#[test]
fn trailing_text_after_the_object_is_not_json() {
    let error = refused(r#"{"type":"presence:heartbeat","ref":"t"} {}"#);
    assert_eq!(error.code, ErrorCode::InvalidJson);
    assert_eq!(error.reference, text_ref("t"));
    let error = refused("[1,2");
    assert_eq!(error.code, ErrorCode::InvalidJson);
    assert!(error.message.contains("EOF"), "{}", error.message);
}

#[test]
fn valid_frames_still_decode_as_before() {
    let text = r#"{"type":"presence:join","ref":7,"room":"doc-1","user":{"id":"u","name":"U","sessionId":"s"},"state":{"a":{"b":[1,{"c":null}]}},"token":"t","batch":true}"#;
    let request = decode(text).expect("valid join");
    let encoded: serde_json::Value =
        serde_json::from_str(&request.encode()).expect("encodes as JSON");
    let original: serde_json::Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(encoded, original);
    assert_eq!(
        decode(&Request::encode(&request)).expect("round trip"),
        request
    );
}
