//! What `/metrics` reports, in the Prometheus (OpenMetrics) text format.
//!
//! Hot-path counters are resolved to handles once at start, so counting a message is one
//! atomic add, never a label lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use presence_protocol::ErrorCode;

use crate::backend::RejectedFact;
use crate::disconnect::Disconnect;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

const CLIENT_TYPES: [&str; 6] = [
    "presence:join",
    "presence:leave",
    "presence:heartbeat",
    "presence:update",
    "presence:cursor",
    "invalid",
];
const SERVER_TYPES: [&str; 8] = [
    "presence:currentUsers",
    "presence:userJoined",
    "presence:userLeft",
    "presence:restored",
    "presence:userUpdated",
    "presence:cursors",
    "presence:diff",
    "presence:error",
];

/// The node's counters and gauges.
pub struct Metrics {
    registry: Registry,
    received: HashMap<&'static str, Counter>,
    sent: HashMap<&'static str, Counter>,
    errors: HashMap<ErrorCode, Counter>,
    disconnects: HashMap<Disconnect, Counter>,
    handshake_closes: HashMap<&'static str, Counter>,
    webhook_events: HashMap<&'static str, Counter>,
    /// Webhook events waiting for delivery.
    pub webhook_queue: Gauge,
    /// From an event's making to its delivery.
    pub webhook_latency: Histogram,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Cursor frames dropped from outboxes of clients that could not keep up.
    pub dropped_cursor_batches: Counter,
    /// Connections closed because they could not keep up: replies that could not be
    /// queued, or a write blocked for the write timeout.
    pub slow_client_disconnects: Counter,
    /// Times a slow reader's queued roster events were replaced by fresh snapshots.
    pub slow_client_catch_ups: Counter,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: Counter,
    /// Upgrades refused: too many connections, or a disallowed origin.
    pub refused_upgrades: Counter,
    /// Time from a message's arrival to its broadcast sitting in every recipient's outbox.
    pub fanout_latency: Histogram,
    rooms: Gauge,
    users: Gauge,
    sessions: Gauge,
    shards: Vec<Arc<ShardGauges>>,
    /// Cluster mode: what this node sees of the backend and the other nodes.
    pub cluster: ClusterMetrics,
}

/// What `/metrics` says about the cluster link (all zero on a single node).
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// 1 while the backend subscription is up.
    pub backend_up: Gauge,
    /// Live nodes, as the backend's node keys say.
    pub nodes: Gauge,
    /// Facts this node published.
    pub facts_published: Counter,
    /// Facts this node received.
    pub facts_received: Counter,
    /// Facts the shards produced that could not even be queued for publishing.
    pub facts_dropped: Counter,
    /// Arriving facts dropped, by `reason`.
    facts_rejected: HashMap<RejectedFact, Counter>,
    /// Failed backend calls.
    pub backend_errors: Counter,
    /// Rooms whose channels this node follows: those it serves or is loading.
    pub rooms_followed: Gauge,
    /// Room facts the shards applied to rooms they serve.
    pub facts_applied: Counter,
    /// Room facts the shards dropped as not their concern (a room no longer served).
    pub facts_ignored: Counter,
}

/// Counts one shard publishes after each batch of work; summed at scrape time.
#[derive(Debug, Default)]
pub struct ShardGauges {
    /// Rooms in the shard.
    pub rooms: AtomicU64,
    /// Users summed over the shard's rooms.
    pub users: AtomicU64,
    /// Sessions, live or in grace.
    pub sessions: AtomicU64,
}

/// Registers a counter family labelled `label` and makes one counter per key, so that
/// every series shows from the start (an alert can watch a zero) and counting is one
/// atomic add, never a label lookup.
fn labelled<K: Eq + std::hash::Hash, const N: usize>(
    registry: &mut Registry,
    (name, help): (&str, &str),
    label: &'static str,
    keys: [(K, &'static str); N],
) -> HashMap<K, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    keys.into_iter()
        .map(|(key, value)| (key, family.get_or_create(&vec![(label, value)]).clone()))
        .collect()
}

impl Metrics {
    /// Registers everything; `shards` is the number of shard drivers.
    pub fn new(shards: usize) -> Self {
        let mut registry = Registry::with_prefix("presenced");
        let received = labelled(
            &mut registry,
            ("messages_received", "Client messages received, by type"),
            "type",
            CLIENT_TYPES.map(|t| (t, t)),
        );
        let sent = labelled(
            &mut registry,
            (
                "messages_sent",
                "Server messages sent, by type (per recipient)",
            ),
            "type",
            SERVER_TYPES.map(|t| (t, t)),
        );
        let errors = labelled(
            &mut registry,
            ("errors", "presence:error replies, by code"),
            "code",
            ErrorCode::ALL.map(|code| (code, code.as_str())),
        );
        let disconnects = labelled(
            &mut registry,
            ("disconnects", "WebSocket connections ended, by reason"),
            "reason",
            Disconnect::ALL.map(|reason| (reason, reason.label())),
        );
        let handshake_closes = labelled(
            &mut registry,
            (
                "handshake_closes",
                "Connections closed before they became WebSockets, by reason",
            ),
            "reason",
            ["timeout", "evicted"].map(|reason| (reason, reason)),
        );
        let webhook_events = labelled(
            &mut registry,
            ("webhook_events", "Webhook events, by outcome"),
            "outcome",
            [
                "queued",
                "delivered",
                "retried",
                "dropped_expired",
                "dropped_queue_full",
                "claimed_elsewhere",
            ]
            .map(|outcome| (outcome, outcome)),
        );
        let webhook_queue = Gauge::default();
        registry.register(
            "webhook_queue",
            "Webhook events waiting for delivery",
            webhook_queue.clone(),
        );
        let webhook_latency = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        registry.register(
            "webhook_delivery_seconds",
            "From a webhook event's making to its delivery",
            webhook_latency.clone(),
        );
        let facts_rejected = labelled(
            &mut registry,
            (
                "facts_rejected",
                "Cluster facts dropped on arrival: unsigned, bad signature or undecodable",
            ),
            "reason",
            RejectedFact::ALL.map(|reason| (reason, reason.label())),
        );

        let connections = Gauge::default();
        let rooms = Gauge::default();
        let users = Gauge::default();
        let sessions = Gauge::default();
        let dropped_cursor_batches = Counter::default();
        let slow_client_disconnects = Counter::default();
        let slow_client_catch_ups = Counter::default();
        let accept_errors = Counter::default();
        let refused_upgrades = Counter::default();
        let fanout_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register("rooms", "Rooms with at least one user", rooms.clone());
        registry.register("users", "Users, summed over rooms", users.clone());
        registry.register(
            "sessions",
            "Sessions, live or within the reconnect grace",
            sessions.clone(),
        );
        registry.register(
            "dropped_cursor_batches",
            "Cursor frames dropped for clients that could not keep up",
            dropped_cursor_batches.clone(),
        );
        registry.register(
            "slow_client_catch_ups",
            "Times a slow reader's queued roster events were replaced by fresh snapshots",
            slow_client_catch_ups.clone(),
        );
        registry.register(
            "slow_client_disconnects",
            "Connections closed because the client could not keep up (see disconnects)",
            slow_client_disconnects.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts (e.g. out of file descriptors)",
            accept_errors.clone(),
        );
        registry.register(
            "refused_upgrades",
            "WebSocket upgrades refused",
            refused_upgrades.clone(),
        );
        registry.register(
            "fanout_latency_seconds",
            "From a message's arrival to its broadcast queued for every recipient",
            fanout_latency.clone(),
        );
        let cluster = ClusterMetrics {
            facts_rejected,
            ..ClusterMetrics::default()
        };
        registry.register(
            "backend_up",
            "1 while the cluster backend is reachable",
            cluster.backend_up.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Live nodes seen through the backend",
            cluster.nodes.clone(),
        );
        registry.register(
            "facts_published",
            "Cluster facts published",
            cluster.facts_published.clone(),
        );
        registry.register(
            "facts_received",
            "Cluster facts received",
            cluster.facts_received.clone(),
        );
        registry.register(
            "facts_dropped",
            "Cluster facts dropped before publishing",
            cluster.facts_dropped.clone(),
        );
        registry.register(
            "backend_errors",
            "Failed cluster backend calls",
            cluster.backend_errors.clone(),
        );
        registry.register(
            "cluster_rooms_followed",
            "Rooms whose cluster channel this node follows (served or loading)",
            cluster.rooms_followed.clone(),
        );
        registry.register(
            "facts_applied",
            "Cluster facts about a room this node serves, applied",
            cluster.facts_applied.clone(),
        );
        registry.register(
            "facts_ignored",
            "Cluster facts about a room this node does not serve, dropped",
            cluster.facts_ignored.clone(),
        );
        Metrics {
            cluster,
            registry,
            received,
            sent,
            errors,
            disconnects,
            handshake_closes,
            webhook_events,
            webhook_queue,
            webhook_latency,
            connections,
            dropped_cursor_batches,
            slow_client_disconnects,
            slow_client_catch_ups,
            accept_errors,
            refused_upgrades,
            fanout_latency,
            rooms,
            users,
            sessions,
            shards: (0..shards)
                .map(|_| Arc::new(ShardGauges::default()))
                .collect(),
        }
    }

    /// One connection ended, and why.
    pub fn disconnected(&self, reason: Disconnect) {
        if let Some(counter) = self.disconnects.get(&reason) {
            counter.inc();
        }
        if reason.is_slow_client() {
            self.slow_client_disconnects.inc();
        }
    }

    /// An arriving fact dropped, and why; the count before this one.
    pub fn fact_rejected(&self, reason: RejectedFact) -> u64 {
        self.cluster
            .facts_rejected
            .get(&reason)
            .map_or(0, Counter::inc)
    }

    /// `count` webhook events with `outcome`.
    pub fn webhook(&self, outcome: &str, count: u64) {
        if let Some(counter) = self.webhook_events.get(outcome) {
            counter.inc_by(count);
        }
    }

    /// A connection closed before it upgraded: `"timeout"` or `"evicted"`.
    pub fn handshake_closed(&self, reason: &'static str) {
        if let Some(counter) = self.handshake_closes.get(reason) {
            counter.inc();
        }
    }

    /// The gauges shard `index` writes to.
    pub fn shard(&self, index: usize) -> Arc<ShardGauges> {
        self.shards.get(index).cloned().unwrap_or_default()
    }

    /// One client message of `kind` (a wire type, or `"invalid"`).
    pub fn received(&self, kind: &str) {
        if let Some(counter) = self.received.get(kind) {
            counter.inc();
        }
    }

    /// `count` deliveries of a server message of `kind`.
    pub fn sent(&self, kind: &str, count: usize) {
        if let Some(counter) = self.sent.get(kind) {
            counter.inc_by(count as u64);
        }
    }

    /// One `presence:error` with `code`.
    pub fn error(&self, code: ErrorCode) {
        if let Some(counter) = self.errors.get(&code) {
            counter.inc();
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let sum = |pick: fn(&ShardGauges) -> &AtomicU64| -> i64 {
            self.shards
                .iter()
                .map(|s| pick(s).load(Ordering::Relaxed) as i64)
                .sum()
        };
        self.rooms.set(sum(|s| &s.rooms));
        self.users.set(sum(|s| &s.users));
        self.sessions.set(sum(|s| &s.sessions));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
