//! The Redis backend: nodes in different processes or machines share rooms through one
//! Redis or one Redis Cluster (pub/sub plus keys with expiry). Use it with `--redis URL`.
//!
//! What lives in Redis (with the default prefix `presenced:`; `R` is a room name, which
//! never holds a brace, so `{R}` is a hash tag and a room's keys and channel share one
//! slot):
//! - channel `presenced:{nodes}:facts`: node-wide facts (`Alive`, `Leaving`,
//!   `Reasserted`), which every node follows; small, and independent of the number of
//!   users;
//! - channel `presenced:{R}:facts`: the facts about room `R`, followed only by the nodes
//!   that serve `R`;
//! - hash `presenced:{R}:node:<id>`: node `<id>`'s records of its sessions in `R`, one
//!   field per session, each a signed `Session` fact; it expires a record TTL (node TTL
//!   plus reconnect grace) after the node last refreshed it;
//! - set `presenced:{R}:owners`: the nodes that hold such a hash, with the same expiry;
//! - keys `presenced:{R}:occupied` and `presenced:{R}:claim:<event>`: which node reports
//!   a webhook event every serving node saw (see `crate::webhook`);
//! - key `presenced:{nodes}:node:<id>` (`SET … PX ttl`): present while the node refreshes
//!   it, and set `presenced:{nodes}:all` of the node ids, pruned of those whose key
//!   expired; one slot, so listing the nodes is one round trip on a cluster too.
//!
//! **One Redis or a Redis Cluster.** `--redis` takes one URL, or several seed URLs
//! separated by commas. A Redis that says `cluster_enabled:1` is used as a cluster through
//! the redis crate's cluster client: sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, over RESP3),
//! and commands grouped by hash slot (a room's, or the nodes'), so each room's traffic and
//! keys live on the shard that owns its slot and the Redis tier scales out with the rooms.
//!
//! Every fact is JSON, signed with `--cluster-secret` (see [`super::signing`]). A record
//! is written in the same pipeline as, and before, the fact that announces it, so a node
//! that follows a room and then reads its records misses nothing. A Redis restart loses
//! the records: the nodes notice their subscription dropped, write their records again
//! and say so, and until a node TTL has passed nobody takes a missing record as a leave.
//!
//! The URL may name an ACL user (`redis://user:password@host:6379/`); that user needs the
//! commands `publish subscribe unsubscribe set exists del pexpire pttl hset hdel hgetall
//! sadd srem smembers info` (and `spublish ssubscribe sunsubscribe cluster` on a cluster),
//! the keys `presenced:*` and the channels `presenced:*` (with the default prefix). `rediss://` speaks TLS (rustls) and trusts the system's
//! roots: a private CA is trusted by adding it to the system store, or by pointing
//! `SSL_CERT_FILE` at a PEM bundle that holds it (that file then replaces the system store).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::try_join_all;
use futures_util::StreamExt;
use presence_core::{Fact, NodeId, SessionRecord};
use presence_protocol::RoomName;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};

use super::{Backend, BackendError, Channels, FactCodec, FactStream, RejectedFact, RoomRecords};

/// How this node reaches Redis.
#[derive(Clone)]
enum Link {
    /// One Redis: a connection for commands that reconnects by itself, and the client to
    /// open pub/sub connections with.
    Single {
        client: redis::Client,
        commands: ConnectionManager,
    },
    /// A Redis Cluster, through the redis crate's cluster client.
    Cluster {
        seeds: Vec<String>,
        commands: ClusterConnection,
    },
}

/// A connection for commands (reconnects by itself) and the settings to subscribe.
#[derive(Clone)]
pub struct RedisBackend {
    link: Link,
    prefix: String,
    codec: FactCodec,
    /// How long records live without a refresh.
    record_ttl: Duration,
}

impl From<redis::RedisError> for BackendError {
    fn from(error: redis::RedisError) -> Self {
        BackendError::Unavailable(error.to_string())
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Commands to send together: on one Redis, one pipeline; on a cluster, one pipeline per
/// group of keys that share a hash slot (a room's, or the nodes'), sent at once, since a
/// cluster refuses a pipeline that spans slots.
struct Batch {
    cluster: bool,
    pipelines: Vec<redis::Pipeline>,
    by_slot: HashMap<String, usize>,
}

impl Batch {
    fn new(cluster: bool) -> Self {
        Batch {
            cluster,
            pipelines: vec![redis::pipe()],
            by_slot: HashMap::new(),
        }
    }

    /// The pipeline for keys tagged `{tag}`.
    fn group(&mut self, tag: &str) -> &mut redis::Pipeline {
        if !self.cluster {
            return &mut self.pipelines[0];
        }
        let next = self.by_slot.len();
        let index = *self.by_slot.entry(tag.to_owned()).or_insert(next);
        if index == self.pipelines.len() {
            self.pipelines.push(redis::pipe());
        }
        &mut self.pipelines[index]
    }
}

/// The hash tag of the keys every node shares.
const NODES_TAG: &str = "nodes";

impl RedisBackend {
    /// Connects to `urls`: one Redis URL, or the seed URLs of a Redis Cluster separated by
    /// commas (one URL of a cluster is enough: the cluster is detected). Keys and channels
    /// are named with `prefix`.
    ///
    /// The command connection reconnects by itself; it fails fast while Redis is down so
    /// a publish never stalls the node (facts lost meanwhile are healed by reading again).
    pub async fn connect(urls: &str, prefix: &str) -> Result<Self, BackendError> {
        let seeds: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        let Some(first) = seeds.first() else {
            return Err(BackendError::Unavailable("no Redis URL".into()));
        };
        let named = seeds
            .iter()
            .map(|url| redacted(url))
            .collect::<Vec<_>>()
            .join(",");
        let link = if seeds.len() == 1 {
            let client = redis::Client::open(first.as_str())
                .map_err(|error| BackendError::Unavailable(format!("{named}: {error}")))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(CONNECT_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(1000);
            let mut commands = tokio::time::timeout(
                CONNECT_TIMEOUT * 2,
                client.get_connection_manager_with_config(config),
            )
            .await
            .map_err(|_| BackendError::Unavailable(format!("no answer from {named}")))??;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut commands)
                .await?;
            if info.contains("cluster_enabled:1") {
                Self::cluster(seeds, &named).await?
            } else {
                Link::Single { client, commands }
            }
        } else {
            Self::cluster(seeds, &named).await?
        };
        if matches!(link, Link::Cluster { .. }) {
            tracing::info!("Redis Cluster: sharded pub/sub, keys grouped by room slot");
        }
        Ok(RedisBackend {
            link,
            prefix: prefix.to_owned(),
            codec: FactCodec::new(None),
            record_ttl: Duration::from_secs(30),
        })
    }

    async fn cluster(seeds: Vec<String>, named: &str) -> Result<Link, BackendError> {
        let client = cluster_client(&seeds, None)
            .map_err(|error| BackendError::Unavailable(format!("{named}: {error}")))?;
        let commands = tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection())
            .await
            .map_err(|_| BackendError::Unavailable(format!("no answer from {named}")))?
            .map_err(|error| {
                BackendError::Unavailable(format!("{named} is not a usable Redis Cluster: {error}"))
            })?;
        Ok(Link::Cluster { seeds, commands })
    }

    /// Whether this backend talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster { .. })
    }

    /// Keeps records `ttl` past their owner's last refresh: the node TTL plus the
    /// reconnect grace, so that a dead node's sessions can still be restored elsewhere
    /// (and are listed as orphans) until every node has let them go.
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.record_ttl = ttl;
        self
    }

    /// Signs every published fact with `secret` and drops every arriving one not signed
    /// with it. Without a secret, facts go unsigned and anyone who can publish to the
    /// channel can add or erase users: that is said in the log.
    pub fn with_cluster_secret(mut self, secret: Option<&str>) -> Self {
        match secret {
            None => tracing::warn!(
                "no --cluster-secret: cluster facts are unsigned, so anyone who can publish to the Redis channel can add or erase users"
            ),
            Some(secret) if secret.len() < crate::config::MIN_SECRET_BYTES => tracing::warn!(
                "--cluster-secret is shorter than {} bytes: facts signed with it can be forged by brute force",
                crate::config::MIN_SECRET_BYTES
            ),
            Some(_) => tracing::info!("cluster facts are signed and checked"),
        }
        self.codec = FactCodec::new(secret);
        self
    }

    fn batch(&self) -> Batch {
        Batch::new(self.is_cluster())
    }

    /// Sends a batch; the replies of the commands not ignored, group after group.
    async fn run(&self, batch: Batch) -> Result<Vec<Value>, BackendError> {
        let replies = match &self.link {
            Link::Single { commands, .. } => {
                let mut commands = commands.clone();
                let pipeline = batch.pipelines.into_iter().next().unwrap_or_default();
                vec![pipeline.query_async::<Vec<Value>>(&mut commands).await?]
            }
            Link::Cluster { commands, .. } => {
                try_join_all(batch.pipelines.into_iter().map(|pipeline| {
                    let mut commands = commands.clone();
                    async move { pipeline.query_async::<Vec<Value>>(&mut commands).await }
                }))
                .await?
            }
        };
        Ok(replies.into_iter().flatten().collect())
    }

    /// `PUBLISH`, or `SPUBLISH` on a cluster (the channel then lives on its slot's shard).
    fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    fn channel(&self) -> String {
        node_channel(&self.prefix)
    }

    fn room_channel(&self, room: &RoomName) -> String {
        room_channel(&self.prefix, room)
    }

    fn records_key(&self, room: &RoomName, node: NodeId) -> String {
        format!("{}{{{room}}}:node:{node}", self.prefix)
    }

    fn occupied_key(&self, room: &RoomName) -> String {
        format!("{}{{{room}}}:occupied", self.prefix)
    }

    fn owners_key(&self, room: &RoomName) -> String {
        format!("{}{{{room}}}:owners", self.prefix)
    }

    fn node_key(&self, node: NodeId) -> String {
        format!("{}{{{NODES_TAG}}}:node:{node}", self.prefix)
    }

    fn nodes_key(&self) -> String {
        format!("{}{{{NODES_TAG}}}:all", self.prefix)
    }

    fn record_ttl_ms(&self) -> u64 {
        millis(self.record_ttl)
    }

    /// Adds the commands that delete `node`'s records of `room` to `pipeline`.
    fn forget_room(&self, pipeline: &mut redis::Pipeline, node: NodeId, room: &RoomName) {
        pipeline
            .cmd("DEL")
            .arg(self.records_key(room, node))
            .ignore()
            .cmd("SREM")
            .arg(self.owners_key(room))
            .arg(node.to_string())
            .ignore();
    }

    /// Adds the commands that write one record to `pipeline`.
    fn write_record(
        &self,
        pipeline: &mut redis::Pipeline,
        node: NodeId,
        record: &SessionRecord,
    ) -> Result<(), BackendError> {
        let key = self.records_key(&record.room, node);
        let owners = self.owners_key(&record.room);
        let value = self.codec.encode(&Fact::Session {
            node,
            record: record.clone(),
        })?;
        pipeline
            .cmd("HSET")
            .arg(&key)
            .arg(field(&record.user.id, &record.session_id)?)
            .arg(value)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.record_ttl_ms())
            .ignore()
            .cmd("SADD")
            .arg(&owners)
            .arg(node.to_string())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&owners)
            .arg(self.record_ttl_ms())
            .ignore();
        Ok(())
    }
}

fn cluster_client(
    seeds: &[String],
    pushes: Option<tokio::sync::mpsc::UnboundedSender<PushInfo>>,
) -> Result<ClusterClient, redis::RedisError> {
    let builder = ClusterClientBuilder::new(seeds.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(CONNECT_TIMEOUT)
        .retries(1);
    match pushes {
        // Pub/sub on a cluster client takes RESP3 and a sender for the pushes.
        Some(pushes) => builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes)
            .build(),
        None => builder.build(),
    }
}

/// The channel of node-wide facts, with the key prefix `prefix`.
pub fn node_channel(prefix: &str) -> String {
    format!("{prefix}{{{NODES_TAG}}}:facts")
}

/// The channel of `room`'s facts, with the key prefix `prefix`.
pub fn room_channel(prefix: &str, room: &RoomName) -> String {
    format!("{prefix}{{{room}}}:facts")
}

/// A session's field in its owner's records hash: the user id and the session id, as a
/// JSON pair (either may hold any character, so no separator would do).
fn field(
    user: &presence_protocol::UserId,
    session: &presence_protocol::SessionId,
) -> Result<String, BackendError> {
    Ok(serde_json::to_string(&(user, session))?)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Follows room channels on one pub/sub connection (one Redis) or on the cluster client's
/// connections to the shards (sharded pub/sub).
pub enum RedisChannels {
    /// `SUBSCRIBE` on one Redis.
    Single {
        /// The subscribing half of the pub/sub connection.
        sink: PubSubSink,
        /// The key prefix.
        prefix: String,
    },
    /// `SSUBSCRIBE` on a cluster, one channel at a time (a command spans one slot).
    Cluster {
        /// The cluster connection whose pushes feed the stream.
        connection: ClusterConnection,
        /// The key prefix.
        prefix: String,
    },
}

impl RedisChannels {
    async fn change(&mut self, rooms: &[RoomName], follow: bool) -> Result<(), BackendError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let changed = async {
            match self {
                RedisChannels::Single { sink, prefix } => {
                    let channels: Vec<String> = rooms
                        .iter()
                        .map(|room| room_channel(prefix, room))
                        .collect();
                    if follow {
                        sink.subscribe(channels).await
                    } else {
                        sink.unsubscribe(channels).await
                    }
                }
                RedisChannels::Cluster { connection, prefix } => {
                    try_join_all(rooms.iter().map(|room| {
                        let mut connection = connection.clone();
                        let channel = room_channel(prefix, room);
                        async move {
                            if follow {
                                connection.ssubscribe(channel).await
                            } else {
                                connection.sunsubscribe(channel).await
                            }
                        }
                    }))
                    .await
                    .map(|_| ())
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, changed)
            .await
            .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
        Ok(())
    }
}

impl Channels for RedisChannels {
    async fn follow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        self.change(rooms, true).await
    }

    async fn unfollow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        self.change(rooms, false).await
    }
}

impl Backend for RedisBackend {
    type Channels = RedisChannels;

    async fn publish_all(&self, facts: &[Fact]) -> Result<(), BackendError> {
        // One round trip for many facts, in order within each room (one pipeline per room
        // on a cluster); each record written before the fact that announces it.
        let mut batch = self.batch();
        for fact in facts {
            let (pipeline, channel) = match fact.room() {
                Some(room) => (batch.group(room.as_str()), self.room_channel(room)),
                None => (batch.group(NODES_TAG), self.channel()),
            };
            match fact {
                Fact::Session { node, record } => self.write_record(pipeline, *node, record)?,
                Fact::SessionEnded {
                    node,
                    room,
                    user_id,
                    session_id,
                } => {
                    pipeline
                        .cmd("HDEL")
                        .arg(self.records_key(room, *node))
                        .arg(field(user_id, session_id)?)
                        .ignore();
                }
                _ => {}
            }
            pipeline
                .cmd(self.publish_command())
                .arg(channel)
                .arg(self.codec.encode(fact)?)
                .ignore();
        }
        self.run(batch).await?;
        Ok(())
    }

    async fn vacate(&self, node: NodeId, room: &RoomName) -> Result<(), BackendError> {
        let mut batch = self.batch();
        self.forget_room(batch.group(room.as_str()), node, room);
        self.run(batch).await?;
        Ok(())
    }

    async fn reassert(
        &self,
        node: NodeId,
        records: &[SessionRecord],
        stale: &[RoomName],
    ) -> Result<(), BackendError> {
        let mut batch = self.batch();
        let mut cleared: std::collections::HashSet<&RoomName> = std::collections::HashSet::new();
        for record in records {
            let pipeline = batch.group(record.room.as_str());
            if cleared.insert(&record.room) {
                pipeline
                    .cmd("DEL")
                    .arg(self.records_key(&record.room, node))
                    .ignore();
            }
            self.write_record(pipeline, node, record)?;
        }
        for room in stale {
            self.forget_room(batch.group(room.as_str()), node, room);
        }
        self.run(batch).await?;
        Ok(())
    }

    async fn refresh(
        &self,
        node: NodeId,
        ttl: Duration,
        rooms: &[RoomName],
    ) -> Result<bool, BackendError> {
        let mut batch = self.batch();
        batch
            .group(NODES_TAG)
            .cmd("SET")
            .arg(self.node_key(node))
            .arg(1)
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .cmd("SADD")
            .arg(self.nodes_key())
            .arg(node.to_string())
            .ignore();
        for room in rooms {
            batch
                .group(room.as_str())
                .cmd("PEXPIRE")
                .arg(self.records_key(room, node))
                .arg(self.record_ttl_ms())
                .cmd("PEXPIRE")
                .arg(self.owners_key(room))
                .arg(self.record_ttl_ms())
                .ignore()
                .cmd("PEXPIRE")
                .arg(self.occupied_key(room))
                .arg(self.record_ttl_ms())
                .ignore();
        }
        let kept = self.run(batch).await?;
        Ok(kept.iter().all(|found| matches!(found, Value::Int(1))))
    }

    async fn nodes(&self) -> Result<Vec<NodeId>, BackendError> {
        let mut batch = self.batch();
        batch.group(NODES_TAG).smembers(self.nodes_key());
        let listed: Vec<String> = match self.run(batch).await?.into_iter().next() {
            Some(value) => redis::from_redis_value(&value)?,
            None => Vec::new(),
        };
        let listed: Vec<NodeId> = listed
            .iter()
            .filter_map(|id| u64::from_str_radix(id, 16).ok())
            .map(NodeId)
            .collect();
        let alive = self.alive(&listed).await?;
        let (mut nodes, gone): (Vec<NodeId>, Vec<NodeId>) =
            listed.iter().partition(|node| alive.contains(node));
        if !gone.is_empty() {
            // Forget the ids of nodes whose liveness expired.
            let mut batch = self.batch();
            let pipeline = batch.group(NODES_TAG);
            for node in &gone {
                pipeline.srem(self.nodes_key(), node.to_string()).ignore();
            }
            self.run(batch).await?;
        }
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    }

    async fn records(&self, room: &RoomName) -> Result<RoomRecords, BackendError> {
        let mut batch = self.batch();
        batch.group(room.as_str()).smembers(self.owners_key(room));
        let owners: Vec<String> = match self.run(batch).await?.into_iter().next() {
            Some(value) => redis::from_redis_value(&value)?,
            None => Vec::new(),
        };
        let owners: Vec<NodeId> = owners
            .iter()
            .filter_map(|id| u64::from_str_radix(id, 16).ok())
            .map(NodeId)
            .collect();
        if owners.is_empty() {
            return Ok(RoomRecords::default());
        }
        let mut batch = self.batch();
        let pipeline = batch.group(room.as_str());
        for &node in &owners {
            pipeline
                .cmd("HGETALL")
                .arg(self.records_key(room, node))
                .cmd("PTTL")
                .arg(self.records_key(room, node));
        }
        let replies = self.run(batch).await?;
        let alive = self.alive(&owners).await?;
        let mut found = RoomRecords::default();
        for (&owner, reply) in owners.iter().zip(replies.chunks(2)) {
            let [fields, left_ms] = reply else {
                continue;
            };
            let fields: Vec<(String, Vec<u8>)> = redis::from_redis_value(fields)?;
            let left_ms: i64 = redis::from_redis_value(left_ms)?;
            if fields.is_empty() {
                continue;
            }
            if !alive.contains(&owner) {
                let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
                found.gone.push((owner, left));
            }
            for (_, value) in fields {
                match self.codec.decode(&value) {
                    Ok(Fact::Session { node, record }) if node == owner && &record.room == room => {
                        found.records.push((owner, record));
                    }
                    Ok(_) => found.rejected.push(RejectedFact::Undecodable),
                    Err(rejected) => found.rejected.push(rejected),
                }
            }
        }
        Ok(found)
    }

    async fn claim(&self, room: &RoomName, key: &str, ttl: Duration) -> Result<bool, BackendError> {
        let mut batch = self.batch();
        batch
            .group(room.as_str())
            .cmd("SET")
            .arg(format!("{}{{{room}}}:claim:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        let reply = self.run(batch).await?;
        Ok(matches!(reply.first(), Some(Value::Okay)))
    }

    async fn mark_occupied(&self, room: &RoomName, occupied: bool) -> Result<bool, BackendError> {
        let key = self.occupied_key(room);
        let mut batch = self.batch();
        if occupied {
            batch
                .group(room.as_str())
                .cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(self.record_ttl_ms());
        } else {
            batch.group(room.as_str()).cmd("DEL").arg(&key);
        }
        let reply = self.run(batch).await?;
        Ok(matches!(
            reply.first(),
            Some(Value::Okay) | Some(Value::Int(1))
        ))
    }

    async fn subscribe(&self) -> Result<(FactStream, RedisChannels), BackendError> {
        let codec = self.codec.clone();
        match &self.link {
            Link::Single { client, .. } => {
                let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
                    .await
                    .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
                let (mut sink, stream) = pubsub.split();
                tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(self.channel()))
                    .await
                    .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
                // The stream ends when the connection drops; a payload that is refused
                // (unsigned, forged, or a newer node's fact kind) is reported rather than
                // ending it.
                let stream = stream.map(move |message| codec.decode(message.get_payload_bytes()));
                let channels = RedisChannels::Single {
                    sink,
                    prefix: self.prefix.clone(),
                };
                Ok((Box::pin(stream), channels))
            }
            Link::Cluster { seeds, .. } => {
                let (pushes, received) = tokio::sync::mpsc::unbounded_channel();
                let client = cluster_client(seeds, Some(pushes))?;
                let mut connection =
                    tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_connection())
                        .await
                        .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
                tokio::time::timeout(CONNECT_TIMEOUT, connection.ssubscribe(self.channel()))
                    .await
                    .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
                // A shard's connection dropping ends the stream, like the single Redis's:
                // what was published meanwhile is lost, so the node reads its rooms again.
                let stream = futures_util::stream::unfold(received, move |mut received| {
                    let codec = codec.clone();
                    async move {
                        loop {
                            let push = received.recv().await?;
                            match push.kind {
                                PushKind::Disconnection => return None,
                                PushKind::SMessage | PushKind::Message => {
                                    let Some(Value::BulkString(payload)) = push.data.get(1) else {
                                        continue;
                                    };
                                    return Some((codec.decode(payload), received));
                                }
                                _ => continue,
                            }
                        }
                    }
                });
                let channels = RedisChannels::Cluster {
                    connection,
                    prefix: self.prefix.clone(),
                };
                Ok((Box::pin(stream), channels))
            }
        }
    }
}

impl RedisBackend {
    /// Which of `nodes` still refresh their liveness.
    async fn alive(&self, nodes: &[NodeId]) -> Result<Vec<NodeId>, BackendError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = self.batch();
        let pipeline = batch.group(NODES_TAG);
        for &node in nodes {
            pipeline.exists(self.node_key(node));
        }
        let replies = self.run(batch).await?;
        Ok(nodes
            .iter()
            .zip(replies)
            .filter(|(_, reply)| matches!(reply, Value::Int(1)))
            .map(|(node, _)| *node)
            .collect())
    }
}

/// `url` without its user and password, for messages and logs.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn credentials_never_reach_a_message() {
        assert_eq!(
            redacted("rediss://presenced:s3cr3t@redis.internal:6380/0"),
            "rediss://***@redis.internal:6380/0"
        );
        assert_eq!(
            redacted("redis://:p@ss@host/"),
            "redis://***@host/",
            "the last @ of the authority ends the password"
        );
        assert_eq!(
            redacted("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }
}
