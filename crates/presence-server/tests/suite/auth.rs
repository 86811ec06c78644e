//! JWT identity: HS256 and public keys, the rooms claim, and the attacks that must fail.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{Client, TestServer};

const SECRET: &str = "test-secret-please-change";

fn keys_dir() -> String {
    format!("{}/tests/fixtures/keys", env!("CARGO_MANIFEST_DIR"))
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

fn signed(algorithm: Algorithm, private_pem: &str, claims: Value) -> String {
    let pem = std::fs::read(format!("{}/{private_pem}", keys_dir())).expect("key");
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .expect("private key");
    encode(&Header::new(algorithm), &claims, &key).expect("sign")
}

fn later() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600
}

async fn join_code(client: &mut Client, message: Value) -> String {
    client.send(message).await;
    let reply = client.recv().await;
    match reply["type"].as_str() {
        Some("presence:currentUsers") => "ok".to_owned(),
        _ => reply["code"].as_str().unwrap_or("?").to_owned(),
    }
}

#[tokio::test]
async fn hs256_tokens_name_the_user_and_bad_ones_are_refused() {
    let server = TestServer::start(&["--jwt-secret", SECRET]).await;
    let mut client = server.client().await;
    let token = hs256(
        json!({"sub": "alice", "name": "Alice A.", "exp": later(), "rooms": ["doc-1", "team:*"]}),
    );

    assert_eq!(
        join_code(
            &mut client,
            json!({"type": "presence:join", "room": "doc-1"})
        )
        .await,
        "unauthorized"
    );
    let wrong = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice"}),
        &EncodingKey::from_secret(b"nope"),
    )
    .expect("sign");
    assert_eq!(
        join_code(
            &mut client,
            json!({"type": "presence:join", "room": "doc-1", "token": wrong})
        )
        .await,
        "unauthorized"
    );
    let expired = hs256(json!({"sub": "alice", "exp": 1_000_000}));
    assert_eq!(
        join_code(
            &mut client,
            json!({"type": "presence:join", "room": "doc-1", "token": expired})
        )
        .await,
        "unauthorized"
    );
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.";
    assert_eq!(
        join_code(
            &mut client,
            json!({"type": "presence:join", "room": "doc-1", "token": none})
        )
        .await,
        "unauthorized"
    );
    let impostor =
        json!({"type": "presence:join", "room": "doc-1", "token": token, "user": {"id": "bob"}});
    assert_eq!(join_code(&mut client, impostor).await, "unauthorized");
    let elsewhere = json!({"type": "presence:join", "room": "doc-2", "token": token});
    assert_eq!(join_code(&mut client, elsewhere).await, "forbidden");

    client.send(json!({"type": "presence:join", "room": "team:design", "token": token, "user": {"name": "ignored"}})).await;
    let current = client.expect("presence:currentUsers").await;
    assert_eq!(current["self"]["id"], "alice");
    assert_eq!(current["users"][0]["name"], "Alice A.");
}

#[tokio::test]
async fn the_token_may_come_in_the_url() {
    let server = TestServer::start(&["--jwt-secret", SECRET]).await;
    let token = hs256(json!({"sub": "carol"}));
    let mut client = Client::connect(&format!("{}?token={token}", server.ws_url())).await;
    client.send(json!({"type": "presence:join"})).await;
    assert_eq!(
        client.expect("presence:currentUsers").await["self"]["id"],
        "carol"
    );
}

#[tokio::test]
async fn public_keys_accept_their_own_algorithm_only() {
    for (public, private, algorithm) in [
        ("rsa-public.pem", "rsa-private.pem", Algorithm::RS256),
        ("ec-public.pem", "ec-private.pem", Algorithm::ES256),
        (
            "ed25519-public.pem",
            "ed25519-private.pem",
            Algorithm::EdDSA,
        ),
    ] {
        let key_path = format!("{}/{public}", keys_dir());
        let server = TestServer::start(&["--jwt-public-key", &key_path]).await;
        let mut client = server.client().await;
        let good = signed(algorithm, private, json!({"sub": "dora", "exp": later()}));
        assert_eq!(
            join_code(&mut client, json!({"type": "presence:join", "token": good})).await,
            "ok",
            "{algorithm:?}"
        );

        // Algorithm confusion: an HS256 token whose "secret" is the public key file.
        let public_pem = std::fs::read(&key_path).expect("public key");
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "eve"}),
            &EncodingKey::from_secret(&public_pem),
        )
        .expect("sign");
        let mut other = server.client().await;
        assert_eq!(
            join_code(
                &mut other,
                json!({"type": "presence:join", "token": forged})
            )
            .await,
            "unauthorized"
        );
    }
}

#[tokio::test]
async fn disallowed_origins_are_refused_at_the_upgrade() {
    let server = TestServer::start(&[
        "--allowed-origins",
        "https://app.example,http://localhost:3000",
    ])
    .await;
    let url = server.ws_url();
    assert_eq!(
        Client::connect_with_headers(&url, &[("origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    assert!(
        Client::connect_with_headers(&url, &[("origin", "http://localhost:3000")])
            .await
            .is_ok()
    );
    assert!(
        Client::connect_with_headers(&url, &[]).await.is_ok(),
        "non-browser clients send no Origin"
    );
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let server = TestServer::start(&["--jwt-secret", SECRET]).await;
    let mut client = server.client().await;
    let now = later() - 3600;
    let early = hs256(json!({"sub": "nina", "nbf": later(), "exp": later() + 60}));
    let join = |token: String| json!({"type": "presence:join", "room": "doc", "user": {"name": "Nina"}, "token": token});
    assert_eq!(join_code(&mut client, join(early)).await, "unauthorized");
    // Within the same leeway as `exp`: a few seconds of clock skew are forgiven.
    let skewed = hs256(json!({"sub": "nina", "nbf": now + 5, "exp": later()}));
    assert_eq!(join_code(&mut client, join(skewed)).await, "ok");
}
