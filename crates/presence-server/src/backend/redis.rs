//! The Redis backend: nodes in different processes or machines share rooms through one
//! Redis (pub/sub plus keys with expiry). Use it with `--redis URL`.
//!
//! What lives in Redis (with the default prefix `presenced:`; `R` is a room name, which
//! never holds a brace, so `{R}` is a hash tag and a room's keys and channel share one
//! slot):
//! - channel `presenced:facts`: node-wide facts (`Alive`, `Leaving`, `Reasserted`), which
//!   every node follows; small, and independent of the number of users;
//! - channel `presenced:{R}:facts`: the facts about room `R`, followed only by the nodes
//!   that serve `R`;
//! - hash `presenced:{R}:node:<id>`: node `<id>`'s records of its sessions in `R`, one
//!   field per session, each a signed `Session` fact; it expires a record TTL (node TTL
//!   plus reconnect grace) after the node last refreshed it;
//! - set `presenced:{R}:owners`: the nodes that hold such a hash, with the same expiry;
//! - key `presenced:node:<id>` (`SET … PX ttl`): present while the node refreshes it.
//!
//! Every fact is JSON, signed with `--cluster-secret` (see [`super::signing`]). A record
//! is written in the same pipeline as, and before, the fact that announces it, so a node
//! that follows a room and then reads its records misses nothing. A Redis restart loses
//! the records: the nodes notice their subscription dropped, write their records again
//! and say so, and until a node TTL has passed nobody takes a missing record as a leave.
//!
//! The URL may name an ACL user (`redis://user:password@host:6379/`); that user needs the
//! commands `publish subscribe unsubscribe set scan exists del pexpire pttl hset hdel
//! hgetall sadd srem smembers`, the keys `presenced:*` and the channels `presenced:*`
//! (with the default prefix). `rediss://` speaks TLS (rustls) and trusts the system's
//! roots: a private CA is trusted by adding it to the system store, or by pointing
//! `SSL_CERT_FILE` at a PEM bundle that holds it (that file then replaces the system store).

use std::time::Duration;

use futures_util::StreamExt;
use presence_core::{Fact, NodeId, SessionRecord};
use presence_protocol::RoomName;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::AsyncCommands;

use super::{Backend, BackendError, Channels, FactCodec, FactStream, RejectedFact, RoomRecords};

/// A connection for commands (reconnects by itself) and the settings to subscribe.
#[derive(Clone)]
pub struct RedisBackend {
    client: redis::Client,
    commands: ConnectionManager,
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

impl RedisBackend {
    /// Connects to `url`; keys and the channel are named with `prefix`.
    ///
    /// The command connection reconnects by itself; it fails fast while Redis is down so
    /// a publish never stalls the node (facts lost meanwhile are healed by a resync).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BackendError> {
        let client = redis::Client::open(url)
            .map_err(|error| BackendError::Unavailable(format!("{}: {error}", redacted(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(CONNECT_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let commands = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| BackendError::Unavailable(format!("no answer from {}", redacted(url))))??;
        Ok(RedisBackend {
            client,
            commands,
            prefix: prefix.to_owned(),
            codec: FactCodec::new(None),
            record_ttl: Duration::from_secs(30),
        })
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

    fn channel(&self) -> String {
        format!("{}facts", self.prefix)
    }

    fn room_channel(&self, room: &RoomName) -> String {
        format!("{}{{{room}}}:facts", self.prefix)
    }

    fn records_key(&self, room: &RoomName, node: NodeId) -> String {
        format!("{}{{{room}}}:node:{node}", self.prefix)
    }

    fn owners_key(&self, room: &RoomName) -> String {
        format!("{}{{{room}}}:owners", self.prefix)
    }

    fn node_key(&self, node: NodeId) -> String {
        format!("{}node:{node}", self.prefix)
    }

    fn record_ttl_ms(&self) -> u64 {
        millis(self.record_ttl)
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

/// What a read finds of one owner: its records hash (field, signed record), how long the
/// hash still lives in milliseconds, and whether the owner's liveness key exists.
type OwnerAnswer = (Vec<(String, Vec<u8>)>, i64, i64);

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

/// Follows room channels on one pub/sub connection.
pub struct RedisChannels {
    sink: PubSubSink,
    prefix: String,
}

impl Channels for RedisChannels {
    async fn follow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let channels: Vec<String> = rooms
            .iter()
            .map(|room| format!("{}{{{room}}}:facts", self.prefix))
            .collect();
        tokio::time::timeout(CONNECT_TIMEOUT, self.sink.subscribe(channels))
            .await
            .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
        Ok(())
    }

    async fn unfollow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let channels: Vec<String> = rooms
            .iter()
            .map(|room| format!("{}{{{room}}}:facts", self.prefix))
            .collect();
        tokio::time::timeout(CONNECT_TIMEOUT, self.sink.unsubscribe(channels))
            .await
            .map_err(|_| BackendError::Unavailable("unsubscribe timed out".into()))??;
        Ok(())
    }
}

impl Backend for RedisBackend {
    type Channels = RedisChannels;

    async fn publish_all(&self, facts: &[Fact]) -> Result<(), BackendError> {
        // One pipeline: many facts, one round trip, still in order; each record written
        // before the fact that announces it.
        let mut pipeline = redis::pipe();
        for fact in facts {
            match fact {
                Fact::Session { node, record } => {
                    self.write_record(&mut pipeline, *node, record)?
                }
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
            let channel = match fact.room() {
                Some(room) => self.room_channel(room),
                None => self.channel(),
            };
            pipeline
                .cmd("PUBLISH")
                .arg(channel)
                .arg(self.codec.encode(fact)?)
                .ignore();
        }
        let mut commands = self.commands.clone();
        let _: () = pipeline.query_async(&mut commands).await?;
        Ok(())
    }

    async fn vacate(&self, node: NodeId, room: &RoomName) -> Result<(), BackendError> {
        let mut commands = self.commands.clone();
        let _: () = redis::pipe()
            .cmd("DEL")
            .arg(self.records_key(room, node))
            .ignore()
            .cmd("SREM")
            .arg(self.owners_key(room))
            .arg(node.to_string())
            .ignore()
            .query_async(&mut commands)
            .await?;
        Ok(())
    }

    async fn reassert(
        &self,
        node: NodeId,
        records: &[SessionRecord],
        stale: &[RoomName],
    ) -> Result<(), BackendError> {
        let mut pipeline = redis::pipe();
        let mut cleared: std::collections::HashSet<&RoomName> = std::collections::HashSet::new();
        for record in records {
            if cleared.insert(&record.room) {
                pipeline
                    .cmd("DEL")
                    .arg(self.records_key(&record.room, node))
                    .ignore();
            }
            self.write_record(&mut pipeline, node, record)?;
        }
        for room in stale {
            pipeline
                .cmd("DEL")
                .arg(self.records_key(room, node))
                .ignore()
                .cmd("SREM")
                .arg(self.owners_key(room))
                .arg(node.to_string())
                .ignore();
        }
        let mut commands = self.commands.clone();
        let _: () = pipeline.query_async(&mut commands).await?;
        Ok(())
    }

    async fn refresh(
        &self,
        node: NodeId,
        ttl: Duration,
        rooms: &[RoomName],
    ) -> Result<bool, BackendError> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(self.node_key(node))
            .arg(1)
            .arg("PX")
            .arg(millis(ttl))
            .ignore();
        for room in rooms {
            pipeline
                .cmd("PEXPIRE")
                .arg(self.records_key(room, node))
                .arg(self.record_ttl_ms())
                .cmd("PEXPIRE")
                .arg(self.owners_key(room))
                .arg(self.record_ttl_ms())
                .ignore();
        }
        let mut commands = self.commands.clone();
        let kept: Vec<i64> = pipeline.query_async(&mut commands).await?;
        Ok(kept.iter().all(|&found| found == 1))
    }

    async fn nodes(&self) -> Result<Vec<NodeId>, BackendError> {
        let mut commands = self.commands.clone();
        let pattern = format!("{}node:*", self.prefix);
        let keys: Vec<String> = {
            let mut iter = commands.scan_match::<_, String>(pattern).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key);
            }
            keys
        };
        let mut nodes: Vec<NodeId> = keys
            .iter()
            .filter_map(|key| key.rsplit(':').next())
            .filter_map(|id| u64::from_str_radix(id, 16).ok())
            .map(NodeId)
            .collect();
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    }

    async fn records(&self, room: &RoomName) -> Result<RoomRecords, BackendError> {
        let mut commands = self.commands.clone();
        let owners: Vec<String> = commands.smembers(self.owners_key(room)).await?;
        let owners: Vec<NodeId> = owners
            .iter()
            .filter_map(|id| u64::from_str_radix(id, 16).ok())
            .map(NodeId)
            .collect();
        if owners.is_empty() {
            return Ok(RoomRecords::default());
        }
        let mut pipeline = redis::pipe();
        for &node in &owners {
            pipeline
                .cmd("HGETALL")
                .arg(self.records_key(room, node))
                .cmd("PTTL")
                .arg(self.records_key(room, node))
                .cmd("EXISTS")
                .arg(self.node_key(node));
        }
        let answers: Vec<OwnerAnswer> = pipeline.query_async(&mut commands).await?;
        let mut found = RoomRecords::default();
        for (&owner, (fields, left_ms, alive)) in owners.iter().zip(answers) {
            if fields.is_empty() {
                continue;
            }
            if alive == 0 {
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

    async fn subscribe(&self) -> Result<(FactStream, RedisChannels), BackendError> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
        let (mut sink, stream) = pubsub.split();
        tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(self.channel()))
            .await
            .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
        // The stream ends when the connection drops; a payload that is refused (unsigned,
        // forged, or a newer node's fact kind) is reported rather than ending it.
        let codec = self.codec.clone();
        let stream = stream.map(move |message| codec.decode(message.get_payload_bytes()));
        let channels = RedisChannels {
            sink,
            prefix: self.prefix.clone(),
        };
        Ok((Box::pin(stream), channels))
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
