//! The Redis backend: nodes in different processes or machines share rooms through one
//! Redis (pub/sub plus keys with expiry). Use it with `--redis URL`.
//!
//! What lives in Redis (with the default prefix `presenced:`):
//! - channel `presenced:facts`: every fact, JSON, one channel so all nodes see one order;
//! - key `presenced:node:<id>` (`SET … PX ttl`): present while the node refreshes it.
//!
//! Nothing else is stored: rosters live in the nodes and are rebuilt from facts, and a node
//! that reconnects asks every node for a snapshot. So a Redis restart loses nothing that
//! the nodes cannot re-assert, and a dead node's key simply expires.

use std::time::Duration;

use futures_util::StreamExt;
use presence_core::{Fact, NodeId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::{Backend, BackendError, FactStream};

/// A connection for commands (reconnects by itself) and the settings to subscribe.
#[derive(Clone)]
pub struct RedisBackend {
    client: redis::Client,
    commands: ConnectionManager,
    prefix: String,
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
        let client = redis::Client::open(url)?;
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
        .map_err(|_| BackendError::Unavailable(format!("no answer from {url}")))??;
        Ok(RedisBackend {
            client,
            commands,
            prefix: prefix.to_owned(),
        })
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
        let payload = serde_json::to_string(fact)?;
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
                .arg(serde_json::to_string(fact)?)
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
        // The stream ends when the connection drops; undecodable payloads are skipped (a
        // newer node's fact kind, say) rather than ending the subscription.
        let stream = pubsub.into_on_message().filter_map(|message| async move {
            serde_json::from_slice::<Fact>(message.get_payload_bytes()).ok()
        });
        Ok(Box::pin(stream))
    }
}
