//! An in-process backend: several trackers in one process share rooms through it.
//!
//! Use it for tests and for embedding several nodes in one binary; a single `presenced`
//! without `--redis` needs no backend at all. It keeps the same contract as Redis,
//! including room channels followed by interest and liveness and records that expire, so
//! the contract tests run unchanged on both. Facts never leave the process as bytes here,
//! so there is nothing to sign or check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream;
use presence_core::{Fact, NodeId, SessionRecord};
use presence_protocol::{RoomName, SessionId, UserId};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Backend, BackendError, Channels, FactStream, RoomRecords};

/// One node's records of one room, and until when they live.
#[derive(Debug, Default)]
struct Held {
    records: BTreeMap<(UserId, SessionId), SessionRecord>,
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Store {
    alive_until: HashMap<NodeId, Instant>,
    records: HashMap<(RoomName, NodeId), Held>,
    claims: HashMap<String, Instant>,
    occupied: HashSet<RoomName>,
}

/// Shared by cloning: every clone is the same channel and store.
#[derive(Clone)]
pub struct MemoryBackend {
    channel: broadcast::Sender<Fact>,
    store: Arc<Mutex<Store>>,
    record_ttl: Duration,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend {
            channel: broadcast::channel(65_536).0,
            store: Arc::default(),
            record_ttl: Duration::from_secs(30),
        }
    }
}

impl MemoryBackend {
    /// Keeps records `ttl` past their owner's last refresh (see the Redis backend).
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.record_ttl = ttl;
        self
    }

    fn store(&self) -> Result<MutexGuard<'_, Store>, BackendError> {
        self.store
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))
    }

    fn write(&self, store: &mut Store, node: NodeId, record: &SessionRecord) {
        let held = store
            .records
            .entry((record.room.clone(), node))
            .or_default();
        held.records.insert(
            (record.user.id.clone(), record.session_id.clone()),
            record.clone(),
        );
        held.until = Some(Instant::now() + self.record_ttl);
    }
}

/// The rooms one subscription follows.
pub struct MemoryChannels {
    following: Arc<Mutex<HashSet<RoomName>>>,
}

impl Channels for MemoryChannels {
    async fn follow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        let mut following = self
            .following
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        following.extend(rooms.iter().cloned());
        Ok(())
    }

    async fn unfollow(&mut self, rooms: &[RoomName]) -> Result<(), BackendError> {
        let mut following = self
            .following
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        for room in rooms {
            following.remove(room);
        }
        Ok(())
    }
}

impl Backend for MemoryBackend {
    type Channels = MemoryChannels;

    async fn publish_all(&self, facts: &[Fact]) -> Result<(), BackendError> {
        for fact in facts {
            {
                let mut store = self.store()?;
                match fact {
                    Fact::Session { node, record } => self.write(&mut store, *node, record),
                    Fact::SessionEnded {
                        node,
                        room,
                        user_id,
                        session_id,
                    } => {
                        let key = (room.clone(), *node);
                        if let Some(held) = store.records.get_mut(&key) {
                            held.records.remove(&(user_id.clone(), session_id.clone()));
                            if held.records.is_empty() {
                                store.records.remove(&key);
                            }
                        }
                    }
                    _ => {}
                }
            }
            // No subscriber is not an error: like Redis pub/sub, a fact nobody hears is gone.
            let _ = self.channel.send(fact.clone());
        }
        Ok(())
    }

    async fn vacate(&self, node: NodeId, room: &RoomName) -> Result<(), BackendError> {
        self.store()?.records.remove(&(room.clone(), node));
        Ok(())
    }

    async fn reassert(
        &self,
        node: NodeId,
        records: &[SessionRecord],
        stale: &[RoomName],
    ) -> Result<(), BackendError> {
        let mut store = self.store()?;
        for record in records {
            store.records.remove(&(record.room.clone(), node));
        }
        for record in records {
            self.write(&mut store, node, record);
        }
        for room in stale {
            store.records.remove(&(room.clone(), node));
        }
        Ok(())
    }

    async fn refresh(
        &self,
        node: NodeId,
        ttl: Duration,
        rooms: &[RoomName],
    ) -> Result<bool, BackendError> {
        let mut store = self.store()?;
        let now = Instant::now();
        store.alive_until.insert(node, now + ttl);
        let mut all_kept = true;
        for room in rooms {
            match store.records.get_mut(&(room.clone(), node)) {
                Some(held) if held.until.is_some_and(|until| until > now) => {
                    held.until = Some(now + self.record_ttl);
                }
                _ => all_kept = false,
            }
        }
        Ok(all_kept)
    }

    async fn nodes(&self) -> Result<Vec<NodeId>, BackendError> {
        let mut store = self.store()?;
        let now = Instant::now();
        store.alive_until.retain(|_, until| *until > now);
        let mut nodes: Vec<NodeId> = store.alive_until.keys().copied().collect();
        nodes.sort();
        Ok(nodes)
    }

    async fn records(&self, room: &RoomName) -> Result<RoomRecords, BackendError> {
        let mut store = self.store()?;
        let now = Instant::now();
        store
            .records
            .retain(|_, held| held.until.is_some_and(|until| until > now));
        let mut found = RoomRecords::default();
        let mut owners: Vec<NodeId> = Vec::new();
        for ((r, node), held) in &store.records {
            if r != room {
                continue;
            }
            owners.push(*node);
            found
                .records
                .extend(held.records.values().map(|record| (*node, record.clone())));
            let alive = store
                .alive_until
                .get(node)
                .is_some_and(|until| *until > now);
            if let (false, Some(until)) = (alive, held.until) {
                found.gone.push((*node, until - now));
            }
        }
        found.records.sort_by_key(|(node, _)| *node);
        Ok(found)
    }

    async fn claim(&self, room: &RoomName, key: &str, ttl: Duration) -> Result<bool, BackendError> {
        let mut store = self.store()?;
        let now = Instant::now();
        store.claims.retain(|_, until| *until > now);
        let name = format!("{room}/{key}");
        if store.claims.contains_key(&name) {
            return Ok(false);
        }
        store.claims.insert(name, now + ttl);
        Ok(true)
    }

    async fn mark_occupied(&self, room: &RoomName, occupied: bool) -> Result<bool, BackendError> {
        let mut store = self.store()?;
        Ok(if occupied {
            store.occupied.insert(room.clone())
        } else {
            store.occupied.remove(room)
        })
    }

    async fn subscribe(&self) -> Result<(FactStream, MemoryChannels), BackendError> {
        let receiver = self.channel.subscribe();
        let following: Arc<Mutex<HashSet<RoomName>>> = Arc::default();
        let channels = MemoryChannels {
            following: following.clone(),
        };
        // A subscriber that lagged behind lost facts: end the stream so it reads again.
        let stream = stream::unfold(receiver, move |mut receiver| {
            let following = following.clone();
            async move {
                loop {
                    let fact = receiver.recv().await.ok()?;
                    let followed = match fact.room() {
                        Some(room) => following.lock().ok()?.contains(room),
                        None => true,
                    };
                    if followed {
                        return Some((Ok(fact), receiver));
                    }
                }
            }
        });
        Ok((Box::pin(stream), channels))
    }
}
