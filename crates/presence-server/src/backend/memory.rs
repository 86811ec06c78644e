//! An in-process backend: several trackers in one process share rooms through it.
//!
//! Use it for tests and for embedding several nodes in one binary; a single `presenced`
//! without `--redis` needs no backend at all. It keeps the same contract as Redis,
//! including liveness that expires, so the contract tests run unchanged on both. Facts
//! never leave the process as bytes here, so there is nothing to sign or check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream;
use presence_core::{Fact, NodeId};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Backend, BackendError, FactStream};

/// Shared by cloning: every clone is the same channel.
#[derive(Clone)]
pub struct MemoryBackend {
    channel: broadcast::Sender<Fact>,
    alive_until: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend {
            channel: broadcast::channel(65_536).0,
            alive_until: Arc::default(),
        }
    }
}

impl Backend for MemoryBackend {
    async fn publish(&self, fact: &Fact) -> Result<(), BackendError> {
        // No subscriber is not an error: like Redis pub/sub, a fact nobody hears is gone.
        let _ = self.channel.send(fact.clone());
        Ok(())
    }

    async fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), BackendError> {
        let mut alive = self
            .alive_until
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        alive.insert(node, Instant::now() + ttl);
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeId>, BackendError> {
        let mut alive = self
            .alive_until
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        let now = Instant::now();
        alive.retain(|_, until| *until > now);
        let mut nodes: Vec<NodeId> = alive.keys().copied().collect();
        nodes.sort();
        Ok(nodes)
    }

    async fn subscribe(&self) -> Result<FactStream, BackendError> {
        let receiver = self.channel.subscribe();
        // A subscriber that lagged behind lost facts: end the stream so it resynchronises.
        Ok(Box::pin(stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.ok().map(|fact| (Ok(fact), receiver)) },
        )))
    }
}
