//! Cluster mode: the tasks that connect this node's shards to the other nodes through a
//! [`Backend`].
//!
//! - The publisher sends what the shards produce in the order it happened here: facts in
//!   batches of up to 256 (whatever queued while one batch was in flight goes out in the
//!   next, one pipeline, one round trip), the deletion of this node's records of a room it
//!   stopped serving, and, after the subscription comes back or records went missing, all
//!   of this node's records written again followed by `Reasserted`. One task does all of
//!   it, so a record is never rewritten from a view older than a fact already sent.
//! - The subscriber follows the node-wide channel and the channels of the rooms the
//!   shards serve. A shard that starts serving a room asks it to follow the room and then
//!   read the room's records ([`presence_core::Effect::Watch`]); the answer goes back to
//!   the shard as [`Input::Records`]. Arriving facts go to the shard that owns their room.
//!   When the subscription is lost, every shard hears `BackendDown`; when it is back, the
//!   subscriber follows every served room again and the shards hear `BackendUp`, after
//!   which they read their rooms again.
//! - The beat publishes `Alive`, refreshes this node's liveness and its records of the
//!   rooms it serves every third of the node TTL, and has the records rewritten when some
//!   were missing.
//! - Arriving payloads the backend refused (unsigned, badly signed, undecodable) are
//!   counted by reason in `presenced_facts_rejected_total` and never reach a shard.
//! - Once this node has announced `Leaving` it publishes nothing more: the others take a
//!   node heard from after its `Leaving` for one that never left, and read its records
//!   again. A `Leaving` in this node's own name that it did not send goes to a shard,
//!   which has this node say `Reasserted`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use presence_core::{Authority, Fact, Input, NodeId};
use presence_protocol::RoomName;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, Channels, RejectedFact};
use crate::driver::{ShardMessage, Shards};
use crate::metrics::Metrics;

/// What the publisher sends, in order.
#[derive(Debug)]
pub enum Outgoing {
    /// A fact for the other nodes (and the records it writes).
    Fact(Fact),
    /// This node stopped serving the room: delete its records of it.
    Vacate(RoomName),
    /// Write all of this node's records again, then say `Reasserted`.
    Reassert,
}

/// What the shards ask of the subscriber.
#[derive(Debug)]
pub enum Interest {
    /// Follow the room, then read its records for its shard.
    Watch(RoomName),
    /// Stop following the room.
    Unwatch(RoomName),
    /// Read the room's records again for its shard.
    Load(RoomName, Authority),
}

/// What the rest of the server needs to know about the cluster link.
#[derive(Clone)]
pub struct ClusterLink {
    /// This node.
    pub node: NodeId,
    /// Whether the backend subscription is up (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// What to publish, in order.
    pub outgoing: mpsc::Sender<Outgoing>,
    /// Rooms to follow, drop or read.
    pub interest: mpsc::UnboundedSender<Interest>,
    /// Whether this node has announced that it leaves.
    pub departure: Arc<Departure>,
    /// The rooms this node follows: those its shards serve or are loading.
    pub followed: Arc<Mutex<HashSet<RoomName>>>,
    /// Set when a publish failed, so records may be missing: the beat rewrites them.
    pub records_in_doubt: Arc<AtomicBool>,
}

/// The two queues a shard uses to reach the cluster tasks.
#[derive(Clone)]
pub struct ClusterPorts {
    /// To the publisher.
    pub outgoing: mpsc::Sender<Outgoing>,
    /// To the subscriber.
    pub interest: mpsc::UnboundedSender<Interest>,
}

impl ClusterLink {
    /// The queues the shards use.
    pub fn ports(&self) -> ClusterPorts {
        ClusterPorts {
            outgoing: self.outgoing.clone(),
            interest: self.interest.clone(),
        }
    }

    fn followed(&self) -> Vec<RoomName> {
        self.followed
            .lock()
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default()
    }
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
#[allow(clippy::too_many_arguments)]
pub fn start<B: Backend + Clone>(
    backend: B,
    link: ClusterLink,
    outgoing: mpsc::Receiver<Outgoing>,
    interest: mpsc::UnboundedReceiver<Interest>,
    node_ttl: Duration,
    shards: Shards,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    tokio::spawn(publish(
        backend.clone(),
        outgoing,
        link.clone(),
        shards.clone(),
        metrics.clone(),
    ));
    tokio::spawn(subscribe(
        backend.clone(),
        link.clone(),
        interest,
        shards.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    tokio::spawn(beat(backend, link, node_ttl, metrics, stop));
}

async fn publish<B: Backend>(
    backend: B,
    mut queue: mpsc::Receiver<Outgoing>,
    link: ClusterLink,
    shards: Shards,
    metrics: Arc<Metrics>,
) {
    let mut items = Vec::with_capacity(256);
    let mut batch = Vec::with_capacity(256);
    // Rooms whose records could not be deleted: deleted when the records are rewritten.
    let mut unvacated: HashSet<RoomName> = HashSet::new();
    // Whatever piled up while the last batch was in flight goes in the next one.
    while queue.recv_many(&mut items, 256).await > 0 {
        let _publishing = link.departure.publishing.lock().await;
        if link.departure.is_announced() {
            // Said to be gone: a word more would look like a forged `Leaving` to the others.
            items.clear();
            continue;
        }
        for item in items.drain(..) {
            match item {
                Outgoing::Fact(fact) => batch.push(fact),
                Outgoing::Vacate(room) => {
                    send(&backend, &mut batch, &link, &metrics).await;
                    match backend.vacate(link.node, &room).await {
                        Ok(()) => {
                            unvacated.remove(&room);
                        }
                        Err(_) => {
                            metrics.cluster.backend_errors.inc();
                            unvacated.insert(room);
                        }
                    }
                }
                Outgoing::Reassert => {
                    send(&backend, &mut batch, &link, &metrics).await;
                    let records = shards.local_records().await;
                    let held: HashSet<&RoomName> = records.iter().map(|r| &r.room).collect();
                    let stale: Vec<RoomName> = unvacated
                        .iter()
                        .filter(|room| !held.contains(room))
                        .cloned()
                        .collect();
                    let reasserted = async {
                        backend.reassert(link.node, &records, &stale).await?;
                        backend.publish(&Fact::Reasserted { node: link.node }).await
                    };
                    match reasserted.await {
                        Ok(()) => {
                            unvacated.clear();
                            tracing::info!(
                                sessions = records.len(),
                                "wrote this node's records again"
                            );
                        }
                        Err(error) => {
                            metrics.cluster.backend_errors.inc();
                            link.records_in_doubt.store(true, Ordering::Release);
                            tracing::warn!(%error, "cannot write this node's records again; retrying with the next beat");
                        }
                    }
                }
            }
        }
        send(&backend, &mut batch, &link, &metrics).await;
    }
}

/// Publishes the facts gathered so far, in one round trip.
async fn send<B: Backend>(
    backend: &B,
    batch: &mut Vec<Fact>,
    link: &ClusterLink,
    metrics: &Metrics,
) {
    if batch.is_empty() {
        return;
    }
    match backend.publish_all(batch).await {
        Ok(()) => {
            metrics.cluster.facts_published.inc_by(batch.len() as u64);
        }
        Err(error) => {
            // Lost facts are healed by reading again after the reconnection, and lost
            // records by writing them all again with the next beat.
            link.records_in_doubt.store(true, Ordering::Release);
            if metrics.cluster.backend_errors.inc() % 100 == 0 {
                tracing::warn!(%error, "cannot publish to the backend");
            }
        }
    }
    batch.clear();
}

async fn subscribe<B: Backend + Clone>(
    backend: B,
    link: ClusterLink,
    mut interest: mpsc::UnboundedReceiver<Interest>,
    shards: Shards,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribed(&backend, &link).await {
            Ok((mut stream, mut channels)) => {
                backoff = Duration::from_millis(100);
                link.ready.store(true, Ordering::Relaxed);
                metrics.cluster.backend_up.set(1);
                tracing::info!(node = %link.node, "cluster channels followed; reading rooms and writing records again");
                to_all(&shards, Input::BackendUp).await;
                let _ = link.outgoing.send(Outgoing::Reassert).await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        fact = stream.next() => match fact {
                            Some(Ok(fact)) => route(fact, &link, &shards, &metrics).await,
                            Some(Err(rejected)) => count_rejected(rejected, &metrics),
                            None => break,
                        },
                        Some(asked) = interest.recv() => {
                            ask(asked, Some(&mut channels), &backend, &link, &shards, &metrics).await;
                        }
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
        // While away, a room that starts being served is served with what is here.
        let pause = tokio::time::sleep(backoff);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut pause => break,
                Some(asked) = interest.recv() => {
                    ask::<B>(asked, None, &backend, &link, &shards, &metrics).await;
                }
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A subscription that follows every room this node serves.
async fn subscribed<B: Backend>(
    backend: &B,
    link: &ClusterLink,
) -> Result<(crate::backend::FactStream, B::Channels), crate::backend::BackendError> {
    let (stream, mut channels) = backend.subscribe().await?;
    channels.follow(&link.followed()).await?;
    Ok((stream, channels))
}

/// Carries out what a shard asked; `channels` is `None` while the backend is away.
async fn ask<B: Backend + Clone>(
    asked: Interest,
    channels: Option<&mut B::Channels>,
    backend: &B,
    link: &ClusterLink,
    shards: &Shards,
    metrics: &Arc<Metrics>,
) {
    match asked {
        Interest::Watch(room) => {
            if let Ok(mut followed) = link.followed.lock() {
                followed.insert(room.clone());
                metrics.cluster.rooms_followed.set(followed.len() as i64);
            }
            let following = match channels {
                Some(channels) => channels.follow(std::slice::from_ref(&room)).await.is_ok(),
                None => false,
            };
            if following {
                read(backend, room, Authority::Complete, shards, metrics);
            } else {
                // Served with what is here; the reads after the reconnection fill it in.
                let input = Input::Records {
                    room: room.clone(),
                    records: Vec::new(),
                    gone: Vec::new(),
                    authority: Authority::Partial,
                };
                shards
                    .send_to(shards.index_for_room(&room), ShardMessage::Remote(input))
                    .await;
            }
        }
        Interest::Unwatch(room) => {
            if let Ok(mut followed) = link.followed.lock() {
                followed.remove(&room);
                metrics.cluster.rooms_followed.set(followed.len() as i64);
            }
            if let Some(channels) = channels {
                if channels
                    .unfollow(std::slice::from_ref(&room))
                    .await
                    .is_err()
                {
                    metrics.cluster.backend_errors.inc();
                }
            }
        }
        Interest::Load(room, authority) => {
            if channels.is_some() {
                read(backend, room, authority, shards, metrics);
            }
        }
    }
}

/// Reads a room's records in a task of its own and hands them to the room's shard.
fn read<B: Backend + Clone>(
    backend: &B,
    room: RoomName,
    authority: Authority,
    shards: &Shards,
    metrics: &Arc<Metrics>,
) {
    let (backend, shards, metrics) = (backend.clone(), shards.clone(), metrics.clone());
    tokio::spawn(async move {
        let (records, gone, authority) = match backend.records(&room).await {
            Ok(found) => {
                for rejected in found.rejected {
                    count_rejected(rejected, &metrics);
                }
                (found.records, found.gone, authority)
            }
            Err(error) => {
                metrics.cluster.backend_errors.inc();
                tracing::warn!(%error, %room, "cannot read the room's records");
                (Vec::new(), Vec::new(), Authority::Partial)
            }
        };
        let input = Input::Records {
            room: room.clone(),
            records,
            gone,
            authority,
        };
        shards
            .send_to(shards.index_for_room(&room), ShardMessage::Remote(input))
            .await;
    });
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
    if fact.node() == link.node {
        // Our own facts come back; the shards applied them already. A `Leaving` in our
        // name that we did not send is forged or replayed, and the others are orphaning
        // our sessions: one shard is enough to have us say `Reasserted`.
        if matches!(fact, Fact::Leaving { .. }) && !link.departure.is_announced() {
            tracing::warn!("heard a Leaving in this node's name that it did not send; reasserting");
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
        if link.departure.is_announced() {
            // Gone, as far as the others know: its liveness must stay expired.
            continue;
        }
        let _ = link
            .outgoing
            .send(Outgoing::Fact(Fact::Alive { node: link.node }))
            .await;
        let rooms = link.followed();
        match backend.refresh(link.node, node_ttl, &rooms).await {
            Ok(kept) => {
                let doubted = link.records_in_doubt.swap(false, Ordering::AcqRel);
                if !kept || doubted {
                    // Expired, lost with a Redis restart, or never written: write them all.
                    let _ = link.outgoing.send(Outgoing::Reassert).await;
                }
            }
            Err(_) => {
                metrics.cluster.backend_errors.inc();
                continue;
            }
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
        backend.publish(&fact).await?;
        // A node that starts serving one of our rooms from now on reads our records as a
        // gone node's: orphans, as the nodes that heard the `Leaving` hold them.
        backend
            .refresh(link.node, Duration::from_millis(1), &[])
            .await
            .map(|_| ())
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(1), announce).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("could not announce leaving; other nodes will notice after the node TTL");
    }
}
