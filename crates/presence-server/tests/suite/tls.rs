//! HTTPS and WSS with `--tls-cert` and `--tls-key`: the listening line, a request and a
//! WebSocket session over TLS, a certificate replaced with SIGHUP while a session stays
//! open, and a half-given pair refused at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_testkit::Signal;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{run_to_exit, TestServer, PATIENCE};

/// A CA and a certificate it signed for 127.0.0.1, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    ca_der: CertificateDer<'static>,
}

impl Pki {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("presenced-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "presenced test CA");
        let ca =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
                .expect("CA");
        let ca_der = ca.der().clone();
        Pki { dir, ca, ca_der }
    }

    /// Writes a fresh server certificate and key to `cert.pem` and `key.pem`; returns the
    /// certificate's DER, to tell certificates apart.
    fn issue(&self, name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.ca).expect("certificate");
        // Written beside, then renamed, as a renewal tool does.
        for (file, pem) in [("cert.pem", cert.pem()), ("key.pem", key.serialize_pem())] {
            let temporary = self.dir.join(format!("{file}.new"));
            std::fs::write(&temporary, pem).expect("write pem");
            std::fs::rename(&temporary, self.dir.join(file)).expect("rename pem");
        }
        cert.der().clone()
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().expect("utf8").to_owned()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("trust the CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// A TLS connection to `server`, checked against the CA.
    async fn connect(&self, server: &TestServer) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(server.addr()).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        self.connector()
            .connect(name, tcp)
            .await
            .expect("a TLS handshake the CA vouches for")
    }
}

fn served_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a certificate")
        .clone()
        .into_owned()
}

async fn https_get(pki: &Pki, server: &TestServer, path: &str) -> String {
    let mut stream = pki.connect(server).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok();
    answer
}

async fn server(pki: &Pki) -> TestServer {
    TestServer::start(&[
        "--tls-cert",
        &pki.path("cert.pem"),
        "--tls-key",
        &pki.path("key.pem"),
    ])
    .await
}

#[tokio::test]
async fn https_and_wss_are_served_and_sighup_swaps_the_certificate_for_new_connections() {
    let pki = Pki::new("serve");
    let first = pki.issue("first");
    let mut server = server(&pki).await;
    assert!(server.is_tls(), "the line says https");
    assert!(server.ws_url().starts_with("wss://"));

    let health = https_get(&pki, &server, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // A presence session over WSS.
    let tls = pki.connect(&server).await;
    assert_eq!(served_certificate(&tls), first);
    let (mut ws, _) = tokio_tungstenite::client_async(server.ws_url(), tls)
        .await
        .expect("a WebSocket over TLS");
    let join =
        json!({"type": "presence:join", "room": "doc", "user": {"id": "ada", "name": "Ada"}});
    ws.send(Message::text(join.to_string()))
        .await
        .expect("send");
    let current = next_json(&mut ws).await;
    assert_eq!(current["type"], "presence:currentUsers");

    // The certificate is renewed on disk, and SIGHUP reads it: new connections get it.
    let second = pki.issue("second");
    assert_ne!(first, second);
    server.signal(Signal::Hup).expect("SIGHUP");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let fresh = pki.connect(&server).await;
        if served_certificate(&fresh) == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP never swapped the certificate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The session opened before it carries on, on the certificate it began with.
    let update = json!({"type": "presence:update", "room": "doc", "state": {"still": "here"}});
    ws.send(Message::text(update.to_string()))
        .await
        .expect("send");
    let bob = pki.connect(&server).await;
    let (mut bob, _) = tokio_tungstenite::client_async(server.ws_url(), bob)
        .await
        .expect("a second WebSocket");
    let join = json!({"type": "presence:join", "room": "doc", "user": {"id": "bob"}});
    bob.send(Message::text(join.to_string()))
        .await
        .expect("send");
    let seen = next_json(&mut bob).await;
    let ada = seen["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["id"] == "ada"))
        .cloned()
        .expect("ada listed");
    assert_eq!(ada["state"]["still"], "here");

    // A broken renewal keeps the certificate in use.
    std::fs::write(pki.dir.join("cert.pem"), "not a certificate").expect("write");
    server.signal(Signal::Hup).expect("SIGHUP");
    let health = https_get(&pki, &server, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(server.is_running());
}

async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("json");
        }
    }
}

#[tokio::test]
async fn the_rust_client_joins_over_wss_with_the_roots_it_is_given() {
    let pki = Pki::new("client");
    pki.issue("server");
    let server = server(&pki).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("trust the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The address the server printed, `https://…`, is enough.
    let mut config = presence_client::ClientConfig::new(server.url());
    config.tls = Some(Arc::new(tls));
    let (client, _events) = presence_client::Client::connect(config)
        .await
        .expect("connected over wss");
    let room = presence_protocol::RoomName::new("doc").expect("room");
    let user = presence_protocol::UserId::new("ada").expect("id");
    let joined = client
        .join(&room, presence_client::JoinOptions::user(user, "Ada"))
        .await
        .expect("joined");
    assert_eq!(joined.users.len(), 1);
    assert_eq!(joined.me.id.as_str(), "ada");

    // Without the CA the certificate cannot be verified: no connection.
    let untrusting = presence_client::Connection::connect(
        &server.url(),
        &presence_client::ConnectOptions {
            timeout: Some(PATIENCE),
            ..presence_client::ConnectOptions::default()
        },
    )
    .await;
    assert!(
        untrusting.is_err(),
        "a certificate no trusted root vouches for"
    );
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let (code, stdout, stderr) = run_to_exit(&["--tls-cert", "/etc/ssl/cert.pem"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("tls-key"),
        "the missing one is named: {stderr}"
    );
    assert!(!stdout.contains("listening on"), "{stdout}");
}

#[test]
fn an_unreadable_certificate_stops_the_start_before_the_listening_line() {
    let missing = Path::new("/nonexistent/cert.pem").to_str().expect("utf8");
    let (code, stdout, stderr) = run_to_exit(&["--tls-cert", missing, "--tls-key", missing], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cert.pem"), "the file is named: {stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
}
