//! Randomized tokens against `auth::Verifier`: whatever a client puts in
//! `token` or `?token=`, verification answers without panicking, and a token that was
//! tampered with in any way (truncated, one bit flipped, re-signed with `alg: none` or
//! another algorithm, claims swapped under the old signature) is never accepted.
//!
//! Each property runs a quick, fixed number of cases by default. Set
//! `PRESENCED_FUZZ_CASES=N` to run N cases per property instead, for a longer search:
//! `PRESENCED_FUZZ_CASES=100000 cargo test -p presence-server --test jwt_fuzz`.

use std::sync::OnceLock;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use presence_protocol::arbitrary::{any_json, any_text, config};
use presence_server::auth::Verifier;
use proptest::prelude::*;
use serde_json::{json, Value};

const SECRET: &str = "jwt-fuzz-secret";
/// Far enough ahead that no test run sees these tokens expire (2096).
const EXP: u64 = 4_000_000_000;

fn keys_dir() -> String {
    format!("{}/tests/fixtures/keys", env!("CARGO_MANIFEST_DIR"))
}

fn pem(file: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{file}", keys_dir())).expect("fixture key")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

fn sign(algorithm: Algorithm, claims: &Value, key: &EncodingKey) -> String {
    encode(&Header::new(algorithm), claims, key).expect("sign")
}

/// base64url without padding, as JWT segments are written.
fn segment(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |group, (i, &b)| group | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let index = (group >> (18 - 6 * i)) & 0x3f;
            text.push(char::from(ALPHABET[index as usize]));
        }
    }
    text
}

/// One verifier per kind of key the server can be configured with, and a valid token for
/// each, made once: signing with a private key is slow in a debug build.
struct KeyedVerifier {
    verifier: Verifier,
    token: String,
}

fn public_key_verifiers() -> &'static [KeyedVerifier] {
    static VERIFIERS: OnceLock<Vec<KeyedVerifier>> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let claims = json!({"sub": "alice", "name": "Alice", "exp": EXP});
        [
            (Algorithm::RS256, "rsa"),
            (Algorithm::ES256, "ec"),
            (Algorithm::EdDSA, "ed25519"),
        ]
        .into_iter()
        .map(|(algorithm, name)| {
            let private = pem(&format!("{name}-private.pem"));
            let key = match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&private),
                Algorithm::ES256 => EncodingKey::from_ec_pem(&private),
                _ => EncodingKey::from_ed_pem(&private),
            }
            .expect("private key");
            let verifier = Verifier::from_public_key_pem(&pem(&format!("{name}-public.pem")))
                .expect("public key");
            let token = sign(algorithm, &claims, &key);
            assert!(
                verifier.verify(&token).is_ok(),
                "{name}: the untouched token"
            );
            KeyedVerifier { verifier, token }
        })
        .collect()
    })
}

/// Claims of a token the server would accept.
fn valid_claims() -> impl Strategy<Value = Value> {
    (
        "(?s).{1,128}",
        prop::option::of(any_text(32)),
        prop::option::of(prop::collection::vec("[a-z:*-]{1,12}", 0..3)),
    )
        .prop_map(|(sub, name, rooms)| {
            let mut claims = json!({"sub": sub, "exp": EXP});
            if let Some(name) = name {
                claims["name"] = json!(name);
            }
            if let Some(rooms) = rooms {
                claims["rooms"] = json!(rooms);
            }
            claims
        })
}

/// Claims of any shape: the `sub`, `name`, `rooms` and `exp` the verifier reads, each
/// with a value of any kind, and anything else.
fn any_claims() -> impl Strategy<Value = Value> {
    let claim = prop::sample::select(vec!["sub", "name", "rooms", "exp", "nbf", "aud", "x"]);
    prop::collection::vec((claim, any_json()), 0..6).prop_map(|claims| {
        Value::Object(
            claims
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    })
}

/// A header naming an algorithm other than the verifier's, or none at all.
fn foreign_header() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "none", "None", "NONE", "nOnE", "HS384", "HS512", "RS256", "ES256", "EdDSA", "",
            "hs256", "HS256 ",
        ])
        .prop_map(|alg| json!({"alg": alg, "typ": "JWT"})),
        Just(json!({"typ": "JWT"})),
        any_json().prop_map(|alg| json!({"alg": alg})),
    ]
}

fn refused(verifier: &Verifier, token: &str) -> Result<(), TestCaseError> {
    let verified = verifier.verify(token);
    prop_assert!(
        verified.is_err(),
        "accepted {token:?} as {:?}",
        verified.ok()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_tokens_are_refused(
        token in prop_oneof![
            any_text(300),
            "[A-Za-z0-9_.=+/-]{0,300}",
            (any_json(), any_json(), prop::collection::vec(any::<u8>(), 0..80)).prop_map(
                |(header, claims, signature)| format!(
                    "{}.{}.{}",
                    segment(header.to_string().as_bytes()),
                    segment(claims.to_string().as_bytes()),
                    segment(&signature)
                )
            ),
        ],
    ) {
        let verifier = Verifier::from_secret(SECRET);
        refused(&verifier, &token)?;
        for keyed in public_key_verifiers() {
            refused(&keyed.verifier, &token)?;
        }
    }

    #[test]
    fn valid_tokens_are_read_and_any_truncation_is_refused(
        claims in valid_claims(),
        cut in any::<prop::sample::Index>(),
    ) {
        let verifier = Verifier::from_secret(SECRET);
        let token = hs256(&claims);
        let identity = verifier.verify(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(identity.user_id.as_str(), claims["sub"].as_str().unwrap_or_default());
        prop_assert_eq!(identity.name.as_deref(), claims["name"].as_str());
        refused(&verifier, &token[..cut.index(token.len())])?;
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused(
        claims in valid_claims(),
        at in any::<prop::sample::Index>(),
        // Bit 7 would leave ASCII, and a token is text.
        bit in 0..7u8,
    ) {
        let verifier = Verifier::from_secret(SECRET);
        let mut bytes = hs256(&claims).into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let token = String::from_utf8(bytes).expect("still ASCII");
        refused(&verifier, &token)?;
    }

    #[test]
    fn a_flipped_bit_in_a_public_key_token_is_refused(
        which in 0..3usize,
        at in any::<prop::sample::Index>(),
        bit in 0..7u8,
    ) {
        let keyed = &public_key_verifiers()[which];
        let mut bytes = keyed.token.clone().into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let token = String::from_utf8(bytes).expect("still ASCII");
        refused(&keyed.verifier, &token)?;
    }

    #[test]
    fn another_header_or_other_claims_under_a_valid_signature_are_refused(
        claims in valid_claims(),
        other_claims in any_claims(),
        header in foreign_header(),
    ) {
        let verifier = Verifier::from_secret(SECRET);
        let token = hs256(&claims);
        let mut parts = token.split('.');
        let (original_header, original_claims, signature) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let header = segment(header.to_string().as_bytes());
        let other_claims = segment(other_claims.to_string().as_bytes());
        // `alg: none` and its spellings, with the signature kept or dropped.
        refused(&verifier, &format!("{header}.{original_claims}.{signature}"))?;
        refused(&verifier, &format!("{header}.{original_claims}."))?;
        refused(&verifier, &format!("{header}.{original_claims}"))?;
        // Claims swapped under the signature of others.
        if other_claims != original_claims {
            refused(&verifier, &format!("{original_header}.{other_claims}.{signature}"))?;
        }
        // Signed properly, but with an algorithm other than the configured one.
        for algorithm in [Algorithm::HS384, Algorithm::HS512] {
            let key = EncodingKey::from_secret(SECRET.as_bytes());
            refused(&verifier, &sign(algorithm, &claims, &key))?;
        }
    }

    #[test]
    fn signed_claims_of_any_shape_are_judged_without_panicking(claims in any_claims()) {
        // Tokens signed with the real secret, so the claims parser sees every shape:
        // whatever it accepts names the `sub` it was given.
        let verifier = Verifier::from_secret(SECRET);
        if let Ok(identity) = verifier.verify(&hs256(&claims)) {
            prop_assert_eq!(Some(identity.user_id.as_str()), claims["sub"].as_str());
        }
    }
}

#[test]
fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    // Algorithm confusion: the public key is no secret, so an HS256 token "signed" with
    // it must not pass a verifier configured with that key.
    for (public, expected) in [
        ("rsa-public.pem", Algorithm::RS256),
        ("ec-public.pem", Algorithm::ES256),
        ("ed25519-public.pem", Algorithm::EdDSA),
    ] {
        let public = pem(public);
        let verifier = Verifier::from_public_key_pem(&public).expect("public key");
        assert_eq!(verifier.algorithm(), expected);
        let token = sign(
            Algorithm::HS256,
            &json!({"sub": "mallory", "exp": EXP}),
            &EncodingKey::from_secret(&public),
        );
        assert!(verifier.verify(&token).is_err(), "{expected:?}");
    }
}

#[test]
fn deeply_nested_signed_claims_do_not_exhaust_the_stack() {
    let verifier = Verifier::from_secret(SECRET);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let payload = format!(r#"{{"sub":"alice","exp":{EXP},"deep":{deep}}}"#);
    let header = segment(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Signed as jsonwebtoken would, over the header and payload segments.
    let unsigned = format!("{header}.{}", segment(payload.as_bytes()));
    let signature = jsonwebtoken::crypto::sign(
        unsigned.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    // Unknown claims are skipped, so the token may pass; it must only not crash.
    let verified = verifier.verify(&format!("{unsigned}.{signature}"));
    if let Ok(identity) = verified {
        assert_eq!(identity.user_id.as_str(), "alice");
    }
}

#[test]
fn the_segment_encoder_writes_what_jsonwebtoken_writes() {
    let claims = json!({"sub": "alice", "exp": EXP});
    let token = hs256(&claims);
    let header = segment(
        serde_json::to_string(&Header::new(Algorithm::HS256))
            .expect("header")
            .as_bytes(),
    );
    let payload = segment(claims.to_string().as_bytes());
    assert!(
        token.starts_with(&format!("{header}.{payload}.")),
        "{token}"
    );
}
