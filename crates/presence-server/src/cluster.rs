//! Cluster mode: the tasks that connect this node's shards to the other nodes through a
//! [`Backend`].
//!
//! - The publisher sends the facts the shards produce in the order they happened here,
//!   in batches of up to 256: whatever queued while one batch was in flight goes out
//!   in the next, which the Redis backend sends as one pipeline (one round trip). Batches
//!   go one after another, so the channel carries the facts in their order.
//! - The subscriber routes arriving facts to the shard that owns their room. Each time it
//!   (re)subscribes it asks every node for a snapshot (`Resync`), and answers every
//!   `Resync` with this node's own snapshot; that is how a Redis restart or a lost
//!   subscription heals without anyone seeing a leave.
//! - The beat publishes `Alive` and refreshes this node's key every third of the node TTL.
//! - Arriving payloads the backend refused (unsigned, badly signed, undecodable) are
//!   counted by reason in `presenced_facts_rejected_total` and never reach a shard.
//! - Once this node has announced `Leaving` it publishes nothing more: the others take a
//!   node heard from after its `Leaving` for one that never left, and resync. A `Leaving`
//!   in this node's own name that it did not send goes to a shard, which asks for a resync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use presence_core::{Fact, Input, NodeId, SessionRecord};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, RejectedFact};
use crate::driver::{ShardMessage, Shards};
use crate::metrics::Metrics;

/// What the rest of the server needs to know about the cluster link.
#[derive(Clone)]
pub struct ClusterLink {
    /// This node.
    pub node: NodeId,
    /// Whether the backend subscription is up (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// Facts to publish, in order.
    pub outbox: mpsc::Sender<Fact>,
    /// Whether this node has announced that it leaves.
    pub departure: Arc<Departure>,
}

/// Whether this node has said it leaves, and the lock that orders that `Leaving` after
/// every batch already on its way.
#[derive(Debug, Default)]
pub struct Departure {
    announced: AtomicBool,
    /// Held while a batch is published, so the `Leaving` never overtakes one.
    publishing: tokio::sync::Mutex<()>,
}

impl Departure {
    /// Whether `Leaving` was announced (or is being announced) by this node.
    pub fn is_announced(&self) -> bool {
        self.announced.load(Ordering::Acquire)
    }
}

/// Starts the publisher, subscriber and beat tasks.
pub fn start<B: Backend + Clone>(
    backend: B,
    link: ClusterLink,
    facts: mpsc::Receiver<Fact>,
    node_ttl: Duration,
    shards: Shards,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    tokio::spawn(publish(
        backend.clone(),
        facts,
        link.departure.clone(),
        metrics.clone(),
    ));
    tokio::spawn(subscribe(
        backend.clone(),
        link.clone(),
        shards.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    tokio::spawn(beat(backend, link, node_ttl, metrics, stop));
}

async fn publish<B: Backend>(
    backend: B,
    mut facts: mpsc::Receiver<Fact>,
    departure: Arc<Departure>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(256);
    // Whatever piled up while the last batch was in flight goes in the next one.
    while facts.recv_many(&mut batch, 256).await > 0 {
        let _publishing = departure.publishing.lock().await;
        if departure.is_announced() {
            // Said to be gone: a word more would look like a forged `Leaving` to the others.
            batch.clear();
            continue;
        }
        match backend.publish_all(&batch).await {
            Ok(()) => {
                metrics.cluster.facts_published.inc_by(batch.len() as u64);
            }
            Err(error) => {
                // Lost facts are healed by the resync that follows the reconnection.
                if metrics.cluster.backend_errors.inc() % 100 == 0 {
                    tracing::warn!(%error, "cannot publish to the backend");
                }
            }
        };
        batch.clear();
    }
}

async fn subscribe<B: Backend>(
    backend: B,
    link: ClusterLink,
    shards: Shards,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match backend.subscribe().await {
            Ok(mut stream) => {
                backoff = Duration::from_millis(100);
                link.ready.store(true, Ordering::Relaxed);
                metrics.cluster.backend_up.set(1);
                tracing::info!(node = %link.node, "cluster channel subscribed; asking every node for a snapshot");
                to_all(&shards, Input::BackendUp).await;
                let _ = link.outbox.send(Fact::Resync { node: link.node }).await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        fact = stream.next() => match fact {
                            Some(Ok(fact)) => route(fact, &link, &shards, &metrics).await,
                            Some(Err(rejected)) => count_rejected(rejected, &metrics),
                            None => break,
                        },
                    }
                }
                link.ready.store(false, Ordering::Relaxed);
                metrics.cluster.backend_up.set(0);
                to_all(&shards, Input::BackendDown).await;
                tracing::warn!("cluster channel lost; serving local rooms and retrying");
            }
            Err(error) => {
                metrics.cluster.backend_errors.inc();
                tracing::warn!(%error, ?backoff, "cannot subscribe to the cluster channel");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Counts a refused payload; says so in the log for the first and every hundredth.
fn count_rejected(rejected: RejectedFact, metrics: &Metrics) {
    let before = metrics.fact_rejected(rejected);
    if before % 100 == 0 {
        tracing::warn!(
            reason = rejected.label(),
            total = before + 1,
            "dropped a cluster fact: is another cluster, or someone without the secret, publishing on this channel?"
        );
    }
}

async fn route(fact: Fact, link: &ClusterLink, shards: &Shards, metrics: &Metrics) {
    metrics.cluster.facts_received.inc();
    match fact {
        Fact::Resync { .. } => {
            let sessions = local_records(shards).await;
            let _ = link
                .outbox
                .send(Fact::Snapshot {
                    node: link.node,
                    sessions,
                })
                .await;
        }
        Fact::Snapshot { node, sessions } => {
            if node == link.node {
                return;
            }
            // Each shard gets the part for its rooms, even an empty one: absence is news.
            let mut parts: Vec<Vec<SessionRecord>> = vec![Vec::new(); shards.len()];
            for record in sessions {
                parts[shards.index_for_room(&record.room)].push(record);
            }
            for (index, part) in parts.into_iter().enumerate() {
                let input = Input::Remote(Fact::Snapshot {
                    node,
                    sessions: part,
                });
                shards.send_to(index, ShardMessage::Remote(input)).await;
            }
        }
        fact => {
            if fact.node() == link.node {
                // Our own facts come back; the shards applied them already. A `Leaving` in
                // our name that we did not send is forged or replayed, and the others are
                // orphaning our sessions: one shard is enough to ask for a node-wide resync.
                if matches!(fact, Fact::Leaving { .. }) && !link.departure.is_announced() {
                    tracing::warn!(
                        "heard a Leaving in this node's name that it did not send; resyncing"
                    );
                    shards
                        .send_to(0, ShardMessage::Remote(Input::Remote(fact)))
                        .await;
                }
                return;
            }
            match fact.room().map(|room| shards.index_for_room(room)) {
                Some(index) => {
                    shards
                        .send_to(index, ShardMessage::Remote(Input::Remote(fact)))
                        .await
                }
                None => to_all(shards, Input::Remote(fact)).await,
            }
        }
    }
}

async fn local_records(shards: &Shards) -> Vec<SessionRecord> {
    let mut records = Vec::new();
    for index in 0..shards.len() {
        let (reply, answer) = oneshot::channel();
        shards
            .send_to(index, ShardMessage::LocalRecords(reply))
            .await;
        if let Ok(part) = answer.await {
            records.extend(part);
        }
    }
    records
}

async fn to_all(shards: &Shards, input: Input) {
    for index in 0..shards.len() {
        shards
            .send_to(index, ShardMessage::Remote(input.clone()))
            .await;
    }
}

async fn beat<B: Backend>(
    backend: B,
    link: ClusterLink,
    node_ttl: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(node_ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let _ = link.outbox.send(Fact::Alive { node: link.node }).await;
        if backend.refresh(link.node, node_ttl).await.is_err() {
            metrics.cluster.backend_errors.inc();
            continue;
        }
        if let Ok(nodes) = backend.nodes().await {
            metrics.cluster.nodes.set(nodes.len() as i64);
        }
    }
}

/// Tells the other nodes this one is draining, so its sessions' grace starts now. Nothing
/// is published after it: a batch in flight goes first, later facts are dropped.
pub async fn announce_leaving<B: Backend>(backend: &B, link: &ClusterLink) {
    link.departure.announced.store(true, Ordering::Release);
    let fact = Fact::Leaving { node: link.node };
    let announce = async {
        let _publishing = link.departure.publishing.lock().await;
        backend.publish(&fact).await
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(1), announce).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("could not announce leaving; other nodes will notice after the node TTL");
    }
}
