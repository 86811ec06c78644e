//! Webhooks (`--webhook-url`, `--webhook-secret`): the room events the core reports
//! ([`RoomEvent`]), POSTed as JSON to the app's backend and signed with the Standard
//! Webhooks scheme.
//!
//! - **What and when.** `user.joined` when a user's first session opens, `user.left` once
//!   the user is really gone (after any grace: a reload, a restore or a move to another
//!   node sends nothing), `room.occupied` and `room.vacated` when a room gains its first
//!   user or loses its last. The core decides all of that; this module only delivers.
//! - **Once per event in a cluster.** A user's arrival is reported by the node its session
//!   opened on, and its departure by the node that owned its last session. When a node
//!   dies, every node serving the room ends its orphaned sessions on its own: the first to
//!   claim the departure in Redis (`SET NX`) sends it. A room's occupancy is a flag in
//!   Redis: the node that sets it reports `room.occupied`, the node that deletes it
//!   `room.vacated`. If Redis cannot be reached for a claim, the event is sent anyway: a
//!   receiver can drop a repeat, but not recover a loss.
//! - **Delivery.** One request at a time, in the order the events were made, so the
//!   events of a room arrive in order. A request that gets no 2xx within 5 s is retried
//!   with exponential backoff (1 s doubling to 60 s, with jitter) for `--webhook-retry-for`
//!   (10 minutes), then its events are dropped and counted. Events wait in a queue of
//!   [`QUEUE_CAPACITY`]; beyond it new events are dropped and counted. A node that dies
//!   loses what it had queued: at most that many events.
//! - **Signature.** Headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the
//!   secret's bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use presence_core::RoomEvent;
use presence_protocol::RoomName;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::clock;
use crate::metrics::Metrics;

/// The most events waiting for delivery; later ones are dropped and counted.
pub const QUEUE_CAPACITY: usize = 10_000;

/// How long the receiver has to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the cluster backend settles so that one node reports an event.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Report a departure every serving node saw, if no other node claimed it.
    Departure {
        /// The room.
        room: RoomName,
        /// Names the departure the same on every node.
        key: String,
    },
    /// Mark the room occupied; report it if it was not.
    Occupy(RoomName),
    /// Mark the room vacant; report it if it was occupied.
    Vacate(RoomName),
}

/// Settles a [`Claim`]: true when this node is the one to report the event.
pub type Claimer =
    Arc<dyn Fn(Claim) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send>> + Send + Sync>;

/// Where events are queued for delivery.
#[derive(Clone)]
pub struct Webhooks {
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
}

struct Queued {
    event: RoomEvent,
    unix_ms: u64,
    at: Instant,
}

/// The delivery settings.
pub struct Settings {
    /// Where to POST.
    pub url: String,
    /// What the signature is keyed with.
    pub secret: String,
    /// Most events per request.
    pub batch: usize,
    /// How long an event is retried.
    pub retry_for: Duration,
}

impl Webhooks {
    /// Starts the delivery task. `claimer` is the cluster's (`None` on a single node).
    pub fn start(
        settings: Settings,
        claimer: Option<Claimer>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let client = client()?;
        let (queue, events) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(deliver(settings, client, claimer, events, metrics.clone()));
        Ok(Webhooks { queue, metrics })
    }

    /// Queues an event; a full queue drops it, counted.
    pub fn notify(&self, event: RoomEvent) {
        let queued = Queued {
            event,
            unix_ms: clock::now().unix_ms,
            at: Instant::now(),
        };
        if self.queue.try_send(queued).is_ok() {
            self.metrics.webhook("queued", 1);
        } else {
            self.metrics.webhook("dropped_queue_full", 1);
        }
        self.metrics
            .webhook_queue
            .set((QUEUE_CAPACITY - self.queue.capacity()) as i64);
    }
}

/// An HTTP client on rustls and ring that trusts the system's roots, like `rediss://`.
fn client() -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system root certificate could not be read for webhooks");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, "system roots trusted for webhooks");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("presenced/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|error| error.to_string())
}

/// The claim that settles who reports `event`, if one is needed.
fn claim_for(event: &RoomEvent) -> Option<Claim> {
    match event {
        RoomEvent::UserLeft {
            room,
            user,
            session_id,
            shared: true,
        } => Some(Claim::Departure {
            room: room.clone(),
            key: format!("{}/{}", user.id, session_id),
        }),
        RoomEvent::RoomOccupied { room } => Some(Claim::Occupy(room.clone())),
        RoomEvent::RoomVacated { room } => Some(Claim::Vacate(room.clone())),
        RoomEvent::UserJoined { .. } | RoomEvent::UserLeft { .. } => None,
    }
}

/// The JSON body of one event.
fn body(event: &RoomEvent, id: &str, unix_ms: u64) -> Value {
    let (kind, room, data) = match event {
        RoomEvent::UserJoined { room, user } => ("user.joined", room, json!({ "user": user })),
        RoomEvent::UserLeft { room, user, .. } => ("user.left", room, json!({ "user": user })),
        RoomEvent::RoomOccupied { room } => ("room.occupied", room, json!({})),
        RoomEvent::RoomVacated { room } => ("room.vacated", room, json!({})),
    };
    json!({ "id": id, "type": kind, "room": room, "timestamp": unix_ms, "data": data })
}

fn new_id() -> String {
    format!("evt_{:032x}", rand::random::<u128>())
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the secret's bytes.
pub fn signature(secret: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    // An HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{tag}")
}

async fn deliver(
    settings: Settings,
    client: reqwest::Client,
    claimer: Option<Claimer>,
    mut events: mpsc::Receiver<Queued>,
    metrics: Arc<Metrics>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(settings.batch);
    loop {
        if events.recv_many(&mut batch, settings.batch).await == 0 {
            return;
        }
        metrics.webhook_queue.set(events.len() as i64);
        let mut ready = Vec::with_capacity(batch.len());
        for queued in batch.drain(..) {
            if let (Some(claim), Some(claimer)) = (claim_for(&queued.event), &claimer) {
                match claimer(claim).await {
                    Ok(true) => {}
                    Ok(false) => {
                        metrics.webhook("claimed_elsewhere", 1);
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot claim a webhook event; sending it anyway");
                    }
                }
            }
            ready.push(queued);
        }
        if !ready.is_empty() {
            send(&settings, &client, ready, &metrics).await;
        }
    }
}

/// Sends one request's worth of events until it is accepted or its time is up.
async fn send(
    settings: &Settings,
    client: &reqwest::Client,
    events: Vec<Queued>,
    metrics: &Metrics,
) {
    let bodies: Vec<(String, Value)> = events
        .iter()
        .map(|queued| {
            let id = new_id();
            let body = body(&queued.event, &id, queued.unix_ms);
            (id, body)
        })
        .collect();
    let (id, payload) = if bodies.len() == 1 {
        (bodies[0].0.clone(), bodies[0].1.clone())
    } else {
        (
            new_id(),
            Value::Array(bodies.iter().map(|(_, body)| body.clone()).collect()),
        )
    };
    let payload = payload.to_string();
    let first_try = Instant::now();
    let mut backoff = Duration::from_secs(1);
    loop {
        let timestamp = clock::now().unix_ms / 1000;
        let signed = signature(
            settings.secret.as_bytes(),
            &id,
            timestamp,
            payload.as_bytes(),
        );
        let answer = client
            .post(&settings.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(payload.clone())
            .send()
            .await;
        let failure = match answer {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("answered {}", response.status())),
            Err(error) => Some(error.to_string()),
        };
        let Some(failure) = failure else {
            metrics.webhook("delivered", events.len() as u64);
            for queued in &events {
                metrics
                    .webhook_latency
                    .observe(queued.at.elapsed().as_secs_f64());
            }
            return;
        };
        if first_try.elapsed() + backoff > settings.retry_for {
            tracing::warn!(%failure, events = events.len(), "webhook undeliverable for --webhook-retry-for; dropped");
            metrics.webhook("dropped_expired", events.len() as u64);
            return;
        }
        metrics.webhook("retried", events.len() as u64);
        tracing::debug!(%failure, ?backoff, "webhook not accepted; retrying");
        // Full jitter between half and all of the backoff, so nodes do not retry in step.
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        tokio::time::sleep(jittered).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn the_signature_is_the_standard_webhooks_composition() {
        // The example of the Standard Webhooks specification, with its secret's bytes.
        let secret = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .expect("base64");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
