//! The Redis backend: nodes in different processes or machines share rooms through one
//! Redis (pub/sub plus keys with expiry). Use it with `--redis URL`.
//!
//! What lives in Redis (with the default prefix `presenced:`):
//! - channel `presenced:facts`: every fact, JSON (signed with `--cluster-secret`, see
//!   [`super::signing`]), one channel so all nodes see one order;
//! - key `presenced:node:<id>` (`SET … PX ttl`): present while the node refreshes it.
//!
//! Nothing else is stored: rosters live in the nodes and are rebuilt from facts, and a node
//! that reconnects asks every node for a snapshot. So a Redis restart loses nothing that
//! the nodes cannot re-assert, and a dead node's key simply expires.
//!
//! The URL may name an ACL user (`redis://user:password@host:6379/`); that user needs the
//! commands `publish subscribe set scan`, the keys `presenced:*` and the channels
//! `presenced:*` (with the default prefix). `rediss://` speaks TLS (rustls) and trusts the
//! system's roots: a private CA is trusted by adding it to the system store, or by pointing
//! `SSL_CERT_FILE` at a PEM bundle that holds it (that file then replaces the system store).

use std::time::Duration;

use futures_util::StreamExt;
use presence_core::{Fact, NodeId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::{Backend, BackendError, FactCodec, FactStream};

/// A connection for commands (reconnects by itself) and the settings to subscribe.
#[derive(Clone)]
pub struct RedisBackend {
    client: redis::Client,
    commands: ConnectionManager,
    prefix: String,
    codec: FactCodec,
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
        })
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

    fn node_key(&self, node: NodeId) -> String {
        format!("{}node:{node}", self.prefix)
    }
}

impl Backend for RedisBackend {
    async fn publish(&self, fact: &Fact) -> Result<(), BackendError> {
        let payload = self.codec.encode(fact)?;
        let mut commands = self.commands.clone();
        let _: i64 = commands.publish(self.channel(), payload).await?;
        Ok(())
    }

    async fn publish_all(&self, facts: &[Fact]) -> Result<(), BackendError> {
        // One pipeline: many facts, one round trip, still in order.
        let mut pipeline = redis::pipe();
        for fact in facts {
            pipeline
                .cmd("PUBLISH")
                .arg(self.channel())
                .arg(self.codec.encode(fact)?)
                .ignore();
        }
        let mut commands = self.commands.clone();
        let _: () = pipeline.query_async(&mut commands).await?;
        Ok(())
    }

    async fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), BackendError> {
        let mut commands = self.commands.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = redis::cmd("SET")
            .arg(self.node_key(node))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut commands)
            .await?;
        Ok(())
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

    async fn subscribe(&self) -> Result<FactStream, BackendError> {
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| BackendError::Unavailable("subscribe timed out".into()))??;
        pubsub.subscribe(self.channel()).await?;
        // The stream ends when the connection drops; a payload that is refused (unsigned,
        // forged, or a newer node's fact kind) is reported rather than ending it.
        let codec = self.codec.clone();
        let stream = pubsub
            .into_on_message()
            .map(move |message| codec.decode(message.get_payload_bytes()));
        Ok(Box::pin(stream))
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
