//! The golden frames in `tests/fixtures` (shared with the JavaScript SDK's tests) decode,
//! and encode back to exactly the same JSON: the wire shape cannot drift unnoticed.

use std::path::PathBuf;

use presence_protocol::{decode, ServerMessage};
use serde_json::Value;

fn frames(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "expected golden frames in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            (path.display().to_string(), text)
        })
        .collect()
}

#[test]
fn client_frames_decode_and_encode_back_unchanged() {
    for (name, text) in frames("client") {
        let request = decode(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected: Value = serde_json::from_str(&text).expect("json");
        // `ref` travels beside the message, and a room-less frame means "default".
        let reference = expected.as_object_mut().and_then(|o| o.remove("ref"));
        assert_eq!(
            reference.is_some(),
            request.reference.is_some(),
            "{name}: ref"
        );
        let encoded: Value = serde_json::from_str(&request.message.encode()).expect("json");
        if expected.get("room").is_none() && encoded.get("room").is_some() {
            assert_eq!(encoded["room"], "default", "{name}");
            expected["room"] = encoded["room"].clone();
        }
        assert_eq!(encoded, expected, "{name}");
    }
}

#[test]
fn server_frames_decode_and_encode_back_unchanged() {
    for (name, text) in frames("server") {
        let message = ServerMessage::decode(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoded: Value = serde_json::from_str(&message.encode()).expect("json");
        let expected: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(encoded, expected, "{name}");
    }
}
