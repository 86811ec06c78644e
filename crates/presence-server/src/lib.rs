//! `presenced`, the server: a thin tokio/axum shell around `presence-core`.
//!
//! It accepts WebSocket connections at `/ws`, decodes each frame once, settles who a
//! joiner is (JWT or trust), and hands inputs to shard drivers that each own a sans-I/O
//! `Tracker` for a share of the rooms. Drivers encode every broadcast once and push the
//! shared bytes into bounded per-connection outboxes, which connection tasks drain in one
//! socket write per wake-up. Around that sit the HTTP endpoints (`/healthz`, `/metrics`,
//! `/api/rooms`), the embedded demo page, and shutdown with close code 1012.
//! See docs/architecture.md for the picture and a concept → file map.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod assets;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod disconnect;
pub mod driver;
pub mod http;
mod identity;
pub mod listener;
pub mod metrics;
pub mod outbox;
pub mod pacing;
mod rate_limit;
pub mod state_file;
pub mod tls;
pub mod webhook;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::auth::Verifier;
use crate::backend::{Backend, BackendError, MemoryBackend, RedisBackend};
use crate::cluster::ClusterLink;
use crate::config::MIN_SECRET_BYTES;
use crate::driver::Shards;
use crate::metrics::Metrics;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The JWT public key could not be loaded.
    #[error(transparent)]
    Key(#[from] auth::KeyError),
    /// The cluster backend could not be reached at start.
    #[error("cannot reach the cluster backend: {0}")]
    Backend(#[from] BackendError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The webhook settings cannot work.
    #[error("webhooks: {0}")]
    Webhook(String),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler and connection task shares.
pub struct AppState {
    /// The settings.
    pub config: Config,
    /// Where room inputs go.
    pub shards: Shards,
    /// JWT verification, when configured.
    pub verifier: Option<Verifier>,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// Connection ids; never reused within a run.
    pub next_conn: AtomicU64,
    /// Cancelled on SIGTERM/SIGINT: connections close with 1012.
    pub shutdown: CancellationToken,
    /// Connection tasks, awaited on shutdown.
    pub connections: TaskTracker,
    /// Whether the node can serve: always on a single node; in cluster mode, while the
    /// backend subscription is up.
    pub ready: Arc<AtomicBool>,
    /// Cluster mode: reads a room's records, to answer for a room this node does not serve.
    pub records: Option<RecordsReader>,
}

/// Reads one room's records from the cluster backend.
pub type RecordsReader = Arc<
    dyn Fn(
            presence_protocol::RoomName,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = Result<backend::RoomRecords, BackendError>> + Send>,
        > + Send
        + Sync,
>;

/// Serves until `shutdown` resolves, then closes every connection with 1012. With
/// `--redis` the node joins the cluster that shares that Redis. `serving` is called with
/// the listening address once nothing can fail at start any more (keys loaded, backend
/// reached), so whoever waits for the server learns it is up only when it is.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    serving: impl FnOnce(SocketAddr) + Send,
) -> Result<(), ServerError> {
    match config.redis.clone() {
        Some(url) => {
            let backend = RedisBackend::connect(&url, &config.redis_prefix)
                .await?
                .with_cluster_secret(config.cluster_secret.as_deref())
                .with_record_ttl(config.node_ttl + config.reconnect_grace);
            tracing::info!(prefix = %config.redis_prefix, "cluster mode through Redis");
            serve(listener, config, Some(backend), shutdown, serving).await
        }
        None => serve::<MemoryBackend>(listener, config, None, shutdown, serving).await,
    }
}

/// Starts webhook delivery if `--webhook-url` is set; in cluster mode the backend settles
/// which node reports an event every node saw.
fn start_webhooks<B: Backend + Clone>(
    config: &Config,
    backend: Option<&B>,
    metrics: &Arc<Metrics>,
) -> Result<Option<webhook::Webhooks>, ServerError> {
    let (url, secret) = match (&config.webhook_url, &config.webhook_secret) {
        (Some(url), Some(secret)) => (url.clone(), secret.clone()),
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ServerError::Webhook(
                "--webhook-url needs --webhook-secret: receivers must be able to tell our events from forgeries".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(ServerError::Webhook(
                "--webhook-secret is given without --webhook-url".into(),
            ))
        }
    };
    if secret.len() < MIN_SECRET_BYTES {
        tracing::warn!("--webhook-secret is shorter than {MIN_SECRET_BYTES} bytes: signatures made with it can be forged by brute force");
    }
    let claimer = backend.cloned().map(|backend| -> webhook::Claimer {
        Arc::new(move |claim| {
            let backend = backend.clone();
            Box::pin(async move {
                let settled = match claim {
                    webhook::Claim::Departure { room, key } => {
                        // Long enough for every node's copy of the event to meet it.
                        backend.claim(&room, &key, Duration::from_secs(3600)).await
                    }
                    webhook::Claim::Occupy(room) => backend.mark_occupied(&room, true).await,
                    webhook::Claim::Vacate(room) => backend.mark_occupied(&room, false).await,
                };
                settled.map_err(|error| error.to_string())
            })
        })
    });
    let settings = webhook::Settings {
        url: url.clone(),
        secret,
        batch: config.webhook_batch,
        retry_for: config.webhook_retry_for,
    };
    let webhooks = webhook::Webhooks::start(settings, claimer, metrics.clone())
        .map_err(|error| ServerError::Webhook(format!("no HTTP client: {error}")))?;
    tracing::info!("room events are sent as webhooks");
    Ok(Some(webhooks))
}

/// [`run`] with the backend given: `None` is a single node; `Some` shares rooms with every
/// node on the same backend (a [`MemoryBackend`] for several nodes in one process).
pub async fn serve<B: Backend + Clone>(
    listener: TcpListener,
    config: Config,
    backend: Option<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    serving: impl FnOnce(SocketAddr) + Send,
) -> Result<(), ServerError> {
    // Read before anything can fail later: a bad certificate stops the start.
    let certificates = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let certificates = tls::Certificates::load(cert, key)?;
            certificates.reload_on_sighup()?;
            tracing::info!(cert = %cert.display(), "serving HTTPS and WSS; SIGHUP reads the certificate again");
            Some(certificates)
        }
        (Some(_), None) => return Err(tls::TlsError::Incomplete { missing: "tls-key" }.into()),
        (None, Some(_)) => {
            return Err(tls::TlsError::Incomplete {
                missing: "tls-cert",
            }
            .into())
        }
        (None, None) => None,
    };
    let verifier = match (&config.jwt_secret, &config.jwt_public_key) {
        (Some(secret), _) => Some(Verifier::from_secret(secret)),
        (None, Some(path)) => Some(Verifier::from_public_key_file(path)?),
        (None, None) => None,
    };
    if let Some(verifier) = &verifier {
        tracing::info!(algorithm = ?verifier.algorithm(), "joins require a JWT");
    }
    if config
        .jwt_secret
        .as_ref()
        .is_some_and(|secret| secret.len() < MIN_SECRET_BYTES)
    {
        tracing::warn!(
            "--jwt-secret is shorter than {MIN_SECRET_BYTES} bytes: HS256 tokens signed with it can be brute-forced"
        );
    }
    if verifier.is_none() {
        tracing::warn!(
            "no --jwt-secret or --jwt-public-key: trusting the user ids clients send (fine for development)"
        );
    }
    let shard_count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let metrics = Arc::new(Metrics::new(shard_count));
    let core_config = presence_core::Config {
        reconnect_grace: config.reconnect_grace,
        unload_grace: config.unload_grace,
        heartbeat_timeout: config.heartbeat_timeout,
        cursor_interval: config.cursor_interval,
        max_state_bytes: config.max_state_bytes,
        max_members_per_room: config.max_members_per_room,
        cluster: None,
    };
    let max_rooms = u32::try_from(config.max_rooms_per_connection).unwrap_or(u32::MAX);
    let webhooks = start_webhooks(&config, backend.as_ref(), &metrics)?;
    let ready = Arc::new(AtomicBool::new(backend.is_none()));
    let cluster_stop = CancellationToken::new();
    let (shards, link) = match &backend {
        None => (
            Shards::start(
                shard_count,
                core_config,
                max_rooms,
                metrics.clone(),
                None,
                webhooks.clone(),
            ),
            None,
        ),
        Some(backend) => {
            let node = presence_core::NodeId(rand::random());
            let core_config = presence_core::Config {
                cluster: Some(presence_core::Cluster {
                    node,
                    node_ttl: config.node_ttl,
                }),
                ..core_config
            };
            let (outgoing_tx, outgoing_rx) = tokio::sync::mpsc::channel(65_536);
            let (interest_tx, interest_rx) = tokio::sync::mpsc::unbounded_channel();
            let link = ClusterLink {
                node,
                ready: ready.clone(),
                outgoing: outgoing_tx,
                interest: interest_tx,
                departure: Arc::default(),
                followed: Arc::default(),
                records_in_doubt: Arc::default(),
            };
            let shards = Shards::start(
                shard_count,
                core_config,
                max_rooms,
                metrics.clone(),
                Some(link.ports()),
                webhooks.clone(),
            );
            tracing::info!(%node, "this node's id");
            cluster::start(
                backend.clone(),
                link.clone(),
                outgoing_rx,
                interest_rx,
                config.node_ttl,
                shards.clone(),
                metrics.clone(),
                cluster_stop.clone(),
            );
            (shards, Some(link))
        }
    };
    let state = Arc::new(AppState {
        config,
        shards,
        verifier,
        metrics: metrics.clone(),
        next_conn: AtomicU64::new(1),
        shutdown: CancellationToken::new(),
        connections: TaskTracker::new(),
        ready,
        records: backend.clone().map(|backend| -> RecordsReader {
            Arc::new(move |room| {
                let backend = backend.clone();
                Box::pin(async move { backend.records(&room).await })
            })
        }),
    });

    if let Some(path) = &state.config.state_file {
        let sessions = state_file::read(path, state.config.reconnect_grace, clock::now().unix_ms);
        state.shards.hold_restored(sessions).await;
    }
    let app = http::router(state.clone());
    serving(listener.local_addr()?);
    let listener = listener::ResilientListener::new(
        listener,
        metrics,
        state.config.handshake_timeout,
        state.config.max_pending_connections,
    )
    .with_tls(certificates);
    let stop = state.shutdown.clone();
    let leaving = backend.clone().zip(link);
    let app = app.into_make_service_with_connect_info::<listener::Handshake>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            if let Some((backend, link)) = leaving {
                // Others start the grace now; our clients restore on them within it.
                cluster::announce_leaving(&backend, &link).await;
            }
            tracing::info!("shutting down: closing connections with 1012");
            stop.cancel();
        })
        .await?;

    state.connections.close();
    if tokio::time::timeout(Duration::from_secs(5), state.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close within 5s");
    }
    if let Some(path) = state.config.state_file.clone() {
        // Every connection has closed: its sessions wait out their grace, detached, and
        // are what the next start holds for the clients to restore.
        let sessions = state.shards.local_records().await;
        let count = sessions.len();
        let written = tokio::task::spawn_blocking(move || {
            state_file::write(&path, sessions, clock::now().unix_ms).map(|()| path)
        })
        .await;
        match written {
            Ok(Ok(path)) => {
                tracing::info!(sessions = count, path = %path.display(), "wrote the state file")
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot write the state file; a restart will show leaves")
            }
            Err(error) => {
                tracing::warn!(%error, "cannot write the state file; a restart will show leaves")
            }
        }
    }
    cluster_stop.cancel();
    Ok(())
}
