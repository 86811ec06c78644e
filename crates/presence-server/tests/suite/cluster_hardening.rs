//! Cluster hardening, against the real binary and a real Redis: facts
//! signed with `--cluster-secret` (a forged `leaving` erases nobody and is counted), a
//! replayed `leaving` heals, a Redis ACL user in the URL, and `rediss://` with a
//! certificate that is really verified.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use presence_core::{Fact, NodeId};
use presence_protocol::RoomName;
use presence_server::backend::redis::{node_channel, room_channel};
use presence_server::backend::FactCodec;
use serde_json::{json, Value};
use sha2::Sha256;

use presence_testkit::free_port;

use crate::support::{redis, run_to_exit, Client, TestServer, PATIENCE};

const SECRET: &str = "a cluster secret of at least 32 bytes!";
const GRACE: Duration = Duration::from_millis(1500);
const TTL: Duration = Duration::from_millis(1000);

async fn node_with(url: &str, prefix: &str, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
    let mut args = vec![
        "--redis",
        url,
        "--redis-prefix",
        prefix,
        "--node-ttl",
        "1s",
        "--reconnect-grace",
        "1500ms",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with_env(&args, env).await
}

/// The room the stories happen in.
fn doc() -> RoomName {
    RoomName::new("doc").expect("room")
}

fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}{nanos}:")
}

/// The value of `presenced_facts_rejected_total{reason=...}` on `server`, if listed.
async fn rejected(server: &TestServer, reason: &str) -> Option<u64> {
    server
        .counter("presenced_facts_rejected_total", reason)
        .await
}

async fn rejected_becomes(server: &TestServer, reason: &str, expected: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count = rejected(server, reason).await;
        if count == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{reason}: {count:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `client` is told of no leave for the whole of `period` (a grace and a
/// TTL: what a forged `leaving` would need to erase someone).
async fn no_leave_within(client: &mut Client, period: Duration) {
    if let Ok(left) = tokio::time::timeout(period, client.until("presence:userLeft")).await {
        panic!("someone was erased: {left}");
    }
}

/// The JSON inside a payload from the channel, signed or not.
fn payload_json(payload: &[u8]) -> Option<Value> {
    let json = match payload.strip_prefix(b"v1,") {
        Some(signed) => &signed[signed.iter().position(|&b| b == b'.')? + 1..],
        None => payload,
    };
    serde_json::from_slice(json).ok()
}

/// Joins `user` on `server` while listening on the room's channel, and learns that node's
/// id from the `session` fact it publishes (ids are random and not shown anywhere else).
async fn join_and_learn_node_id(
    redis_url: &str,
    channel: &str,
    server: &TestServer,
    user: &str,
) -> (Client, NodeId) {
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut pubsub = client.get_async_pubsub().await.expect("subscribe");
    pubsub.subscribe(channel).await.expect("subscribe");
    let joined = server.joined("doc", user).await;
    let mut messages = pubsub.on_message();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let message = tokio::time::timeout_at(deadline, messages.next())
            .await
            .expect("a session fact in time")
            .expect("subscription open");
        let Some(fact) = payload_json(message.get_payload_bytes()) else {
            continue;
        };
        if fact["kind"] == "session" && fact["record"]["user"]["id"] == user {
            let id = fact["node"].as_u64().expect("node id");
            return (joined, NodeId(id));
        }
    }
}

async fn publish(redis_url: &str, channel: &str, payload: Vec<u8>) {
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async(&mut connection)
        .await
        .expect("publish");
}

#[tokio::test]
async fn a_forged_unsigned_leaving_erases_nobody_and_is_counted() {
    let Some(redis) = redis("cluster_hardening").await else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix("signed");
    let channel = node_channel(&prefix);
    let room_channel = room_channel(&prefix, &doc());
    let secret = ["--cluster-secret", SECRET];
    let mut nodes = [
        node_with(&url, &prefix, &secret, &[]).await,
        node_with(&url, &prefix, &[], &[("PRESENCED_CLUSTER_SECRET", SECRET)]).await,
    ];
    for node in &mut nodes {
        node.ready().await;
    }
    let (_alice, victim) = join_and_learn_node_id(&url, &room_channel, &nodes[0], "alice").await;
    let mut bob = nodes[1].joined("doc", "bob").await;
    nodes[0].roster_becomes("doc", &["alice", "bob"]).await;
    for node in &nodes {
        assert_eq!(
            rejected(node, "unsigned").await,
            Some(0),
            "listed from the start"
        );
    }

    // Anyone who can reach Redis: the node's real id, but no secret.
    let forged = serde_json::to_vec(&Fact::Leaving { node: victim }).expect("json");
    publish(&url, &channel, forged.clone()).await;
    let badly_signed = FactCodec::new(Some("a guess at the secret"))
        .encode(&Fact::Leaving { node: victim })
        .expect("encode");
    publish(&url, &channel, badly_signed).await;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(b"not a fact");
    let tag = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        mac.finalize().into_bytes(),
    );
    publish(&url, &channel, format!("v1,{tag}.not a fact").into_bytes()).await;

    for node in &nodes {
        rejected_becomes(node, "unsigned", 1).await;
        rejected_becomes(node, "bad_signature", 1).await;
        rejected_becomes(node, "undecodable", 1).await;
    }
    no_leave_within(&mut bob, GRACE + TTL * 2).await;
    nodes[1].roster_becomes("doc", &["alice", "bob"]).await;
}

#[tokio::test]
async fn a_remote_color_off_the_palette_is_listed_as_a_palette_color() {
    let Some(redis) = redis("cluster_hardening").await else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix("colors");
    // Facts about a room go on the room's channel.
    let channel = room_channel(&prefix, &doc());
    let mut node = node_with(&url, &prefix, &["--cluster-secret", SECRET], &[]).await;
    node.ready().await;
    let _olga = node.joined("doc", "olga").await;

    // Another node's word, signed, listing its user in yellow: 1.07:1 against white.
    let record: presence_core::SessionRecord = serde_json::from_value(json!({
        "room": "doc",
        "sessionId": "s-1",
        "user": {"id": "yellow", "name": "Yellow", "color": "#FFFF00", "joinedAt": 1,
                 "lastSeen": 1, "cursor": {"x": 0.0, "y": 0.0, "visible": false},
                 "state": {}, "sessions": 1},
        "away": false,
        "stamp": {"unix_ms": 1, "node": 4242},
        "claim": {"unix_ms": 1, "node": 4242},
    }))
    .expect("a session record");
    let fact = Fact::Session {
        node: NodeId(4242),
        record,
    };
    let signed = FactCodec::new(Some(SECRET)).encode(&fact).expect("encode");
    publish(&url, &channel, signed).await;
    // Listed in joinedAt order: yellow's is the earlier.
    node.roster_becomes("doc", &["yellow", "olga"]).await;

    let (_, body) = node.get("/api/rooms/doc", &[]).await;
    let listed: Value = serde_json::from_str(&body).expect("json");
    let color = listed["users"][0]["color"].as_str().expect("a color");
    assert!(
        presence_core::PALETTE.contains(&color),
        "listed as {color}, not a palette color"
    );
}

#[tokio::test]
async fn a_replayed_signed_leaving_for_a_live_node_erases_nobody() {
    let Some(redis) = redis("cluster_hardening").await else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix("replay");
    let channel = node_channel(&prefix);
    let room_channel = room_channel(&prefix, &doc());
    let secret = ["--cluster-secret", SECRET];
    let mut nodes = [
        node_with(&url, &prefix, &secret, &[]).await,
        node_with(&url, &prefix, &secret, &[]).await,
    ];
    for node in &mut nodes {
        node.ready().await;
    }
    let (_alice, victim) = join_and_learn_node_id(&url, &room_channel, &nodes[0], "alice").await;
    let mut bob = nodes[1].joined("doc", "bob").await;
    nodes[0].roster_becomes("doc", &["alice", "bob"]).await;

    // A correctly signed `leaving` (say, recorded and replayed): node 1 orphans alice,
    // node 0 hears it in its own name; the resync revives her within the grace.
    let replayed = FactCodec::new(Some(SECRET))
        .encode(&Fact::Leaving { node: victim })
        .expect("encode");
    publish(&url, &channel, replayed).await;
    no_leave_within(&mut bob, GRACE + TTL * 2).await;
    nodes[1].roster_becomes("doc", &["alice", "bob"]).await;
    for node in &nodes {
        assert_eq!(rejected(node, "unsigned").await, Some(0));
        assert_eq!(rejected(node, "bad_signature").await, Some(0));
    }
}

#[test]
fn an_empty_cluster_secret_is_refused_from_the_flag_and_from_the_environment() {
    for (args, env) in [
        (&["--cluster-secret", ""][..], &[][..]),
        (&[][..], &[("PRESENCED_CLUSTER_SECRET", "")][..]),
    ] {
        let stderr = fails_to_start(args, env);
        assert!(stderr.contains("cluster-secret"), "named: {stderr}");
    }
}

/// Runs `presenced ARGS` that must fail at start, before its `listening on` line; its
/// standard error.
fn fails_to_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, stdout, stderr) = run_to_exit(args, env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    stderr
}

#[tokio::test]
async fn nodes_share_rooms_as_an_acl_user_with_only_the_rights_they_need() {
    let Some(redis) = redis("cluster_hardening").await else {
        return;
    };
    let prefix = unique_prefix("acl");
    let admin = redis::Client::open(redis.url()).expect("url");
    let mut connection = admin
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    // The rights the Redis backend documents, and no more; then the default user needs a
    // password too, so a node that ignored the URL's user could not connect at all.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("presenced")
        .arg("on")
        .arg(">acl-pass-4f1b")
        .arg("resetkeys")
        .arg(format!("~{prefix}*"))
        .arg("resetchannels")
        .arg(format!("&{prefix}*"))
        .arg("-@all")
        .arg(&[
            "+publish",
            "+subscribe",
            "+unsubscribe",
            "+set",
            "+info",
            "+exists",
            "+del",
            "+pexpire",
            "+pttl",
            "+hset",
            "+hdel",
            "+hgetall",
            "+sadd",
            "+srem",
            "+smembers",
        ])
        .query_async(&mut connection)
        .await
        .expect("ACL SETUSER");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("resetpass")
        .arg(">admin-pass-9c2e")
        .query_async(&mut connection)
        .await
        .expect("lock the default user");

    let url = format!(
        "redis://presenced:acl-pass-4f1b@127.0.0.1:{}/",
        redis.port()
    );
    let secret = ["--cluster-secret", SECRET];
    let mut nodes = [
        node_with(&url, &prefix, &secret, &[]).await,
        node_with(&url, &prefix, &secret, &[]).await,
    ];
    for node in &mut nodes {
        node.ready().await;
    }
    let _alice = nodes[0].joined("doc", "alice").await;
    let _bob = nodes[1].joined("doc", "bob").await;
    nodes[0].roster_becomes("doc", &["alice", "bob"]).await;
    // Every command a node uses is allowed: publishing, following rooms, its liveness key,
    // its records, and listing the nodes (SCAN, whose failure would not count as a
    // backend error).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, metrics) = nodes[0].get("/metrics", &[]).await;
        if metrics.contains("presenced_cluster_nodes 2") {
            assert!(
                metrics.contains("presenced_backend_errors_total 0"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "nodes never listed:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A wrong password stops the start, and the error never shows the password.
    let wrong = format!(
        "redis://presenced:wrong-pass-77d0@127.0.0.1:{}/",
        redis.port()
    );
    let stderr = fails_to_start(&["--redis", &wrong, "--redis-prefix", &prefix], &[]);
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("wrong-pass-77d0"), "{stderr}");
}

/// A `redis-server` that speaks only TLS, with a certificate from a private CA.
struct TlsRedis {
    child: Child,
    port: u16,
    ca_file: PathBuf,
    dir: PathBuf,
}

impl TlsRedis {
    /// Starts one, or returns `None` (printing "skipped") when this `redis-server` was
    /// built without TLS. Under `CI=true` that is a failure, never a skip.
    fn start() -> Option<Self> {
        let dir = std::env::temp_dir().join(unique_prefix("presenced-tls-").replace(':', ""));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "presenced test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let server_key = rcgen::KeyPair::generate().expect("key");
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        let write = |name: &str, pem: String| -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write pem");
            path
        };
        let ca_file = write("ca.pem", ca.pem());
        let cert_file = write("server.pem", server_cert.pem());
        let key_file = write("server-key.pem", server_key.serialize_pem());

        let port = free_port().expect("a free port");
        let path = |p: &Path| p.to_str().expect("utf8").to_owned();
        let spawned = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &path(&cert_file)])
            .args(["--tls-key-file", &path(&key_file)])
            .args(["--tls-ca-cert-file", &path(&ca_file)])
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let under_ci = std::env::var("CI").as_deref() == Ok("true");
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                assert!(!under_ci, "redis-server is required under CI=true: {error}");
                eprintln!("skipped: redis-server not found ({error})");
                return None;
            }
        };
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(!under_ci, "redis-server cannot serve TLS here ({status})");
                eprintln!("skipped: this redis-server has no TLS support ({status})");
                return None;
            }
            assert!(Instant::now() < deadline, "TLS redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(TlsRedis {
            child,
            port,
            ca_file,
            dir,
        })
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn nodes_share_rooms_over_rediss_and_check_the_certificate() {
    let Some(redis) = TlsRedis::start() else {
        return;
    };
    let prefix = unique_prefix("tls");
    let url = format!("rediss://127.0.0.1:{}/", redis.port);
    let ca = redis.ca_file.to_str().expect("utf8");
    let trust_the_ca = [("SSL_CERT_FILE", ca)];
    let secret = ["--cluster-secret", SECRET];
    let mut nodes = [
        node_with(&url, &prefix, &secret, &trust_the_ca).await,
        node_with(&url, &prefix, &secret, &trust_the_ca).await,
    ];
    for node in &mut nodes {
        node.ready().await;
    }
    let _alice = nodes[0].joined("doc", "alice").await;
    let mut bob = nodes[1].joined("doc", "bob").await;
    nodes[0].roster_becomes("doc", &["alice", "bob"]).await;
    bob.send(json!({"type": "presence:update", "room": "doc", "state": {"over": "tls"}}))
        .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, body) = nodes[0].get("/api/rooms/doc", &[]).await;
        if body.contains(r#""over":"tls""#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update never crossed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Without the CA the certificate cannot be verified, and the node does not start.
    let empty = redis.dir.join("no-roots.pem");
    std::fs::write(&empty, "").expect("write");
    let stderr = fails_to_start(
        &["--redis", &url, "--redis-prefix", &prefix],
        &[("SSL_CERT_FILE", empty.to_str().expect("utf8"))],
    );
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}
