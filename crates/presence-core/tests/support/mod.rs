//! What the core's tests share besides `presence_core::testing::Harness`: the backend
//! between the nodes of a test cluster, a client's view rebuilt from its frames,
//! and the seed loop of the simulations.
#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use presence_core::testing::{node_id, BackendCall, Harness};
use presence_core::{Authority, Fact, Input, NodeId, SessionRecord};
use presence_protocol::{RoomName, ServerMessage, SessionId, User, UserId};

/// The backend between test nodes, as the server's Redis backend behaves: one channel
/// per room that only the nodes following the room hear, one channel for node-wide facts
/// that everyone hears, and each node's records per room, kept from its facts, which a
/// node reads when it starts serving a room or reads again.
#[derive(Default)]
pub struct Bus {
    in_flight: VecDeque<Fact>,
    /// (room, node) → that node's records there, by (user, session).
    records: BTreeMap<(RoomName, NodeId), BTreeMap<(UserId, SessionId), SessionRecord>>,
    /// Node index → the rooms it follows.
    following: BTreeMap<usize, BTreeSet<RoomName>>,
    /// Reads asked for and not answered yet: (node index, room, authority).
    reads: VecDeque<(usize, RoomName, Authority)>,
    /// Nodes whose liveness expired, with how long their records still live.
    gone: BTreeMap<NodeId, Duration>,
}

impl Bus {
    /// Carries out what each node asked of the backend, in node order. What a node for
    /// which `can_speak` is false asked is lost (it was killed or cut off); a room it
    /// starts serving then is answered at once with nothing, as the server does when the
    /// backend cannot be reached. Returns how many facts were added.
    pub fn collect(&mut self, nodes: &mut [Harness], can_speak: impl Fn(usize) -> bool) -> usize {
        let before = self.in_flight.len();
        for (i, node) in nodes.iter_mut().enumerate() {
            let calls = std::mem::take(&mut node.backend);
            let speaks = can_speak(i);
            for call in calls {
                match call {
                    BackendCall::Publish(fact) if speaks => {
                        self.write(&fact);
                        self.in_flight.push_back(fact);
                    }
                    BackendCall::Watch(room) if speaks => {
                        self.following.entry(i).or_default().insert(room.clone());
                        self.reads.push_back((i, room, Authority::Complete));
                    }
                    BackendCall::Watch(room) => {
                        // Followed again once the node is back (the shell keeps the set).
                        self.following.entry(i).or_default().insert(room.clone());
                        node.input(Input::Records {
                            room,
                            records: Vec::new(),
                            gone: Vec::new(),
                            authority: Authority::Partial,
                        });
                    }
                    BackendCall::Unwatch(room) => {
                        self.following.entry(i).or_default().remove(&room);
                        if speaks {
                            self.records.remove(&(room, node_id(i)));
                        }
                    }
                    BackendCall::Load(room, authority) if speaks => {
                        self.reads.push_back((i, room, authority));
                    }
                    BackendCall::Publish(_) | BackendCall::Load(..) => {}
                }
            }
        }
        self.in_flight.len() - before
    }

    fn write(&mut self, fact: &Fact) {
        match fact {
            Fact::Session { node, record } => {
                self.records
                    .entry((record.room.clone(), *node))
                    .or_default()
                    .insert(
                        (record.user.id.clone(), record.session_id.clone()),
                        record.clone(),
                    );
            }
            Fact::SessionEnded {
                node,
                room,
                user_id,
                session_id,
            } => {
                let key = (room.clone(), *node);
                if let Some(held) = self.records.get_mut(&key) {
                    held.remove(&(user_id.clone(), session_id.clone()));
                    if held.is_empty() {
                        self.records.remove(&key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Queues `fact` behind everything already on the channels.
    pub fn push(&mut self, fact: Fact) {
        self.in_flight.push_back(fact);
    }

    /// The next fact in channel order.
    pub fn pop(&mut self) -> Option<Fact> {
        self.in_flight.pop_front()
    }

    /// Hands `fact` to every node for which `can_hear` is true and that follows its room
    /// (every node, for a node-wide fact).
    pub fn deliver(&self, nodes: &mut [Harness], fact: &Fact, can_hear: impl Fn(usize) -> bool) {
        for (i, node) in nodes.iter_mut().enumerate() {
            let follows = match fact.room() {
                Some(room) => self.following.get(&i).is_some_and(|r| r.contains(room)),
                None => true,
            };
            if can_hear(i) && follows {
                node.input(Input::Remote(fact.clone()));
            }
        }
    }

    /// Answers every read asked for so far, for the nodes that can hear.
    pub fn answer_reads(
        &mut self,
        nodes: &mut [Harness],
        can_hear: impl Fn(usize) -> bool,
    ) -> usize {
        let reads: Vec<_> = self.reads.drain(..).collect();
        let count = reads.len();
        for (i, room, authority) in reads {
            if can_hear(i) {
                let records = self.records_of(&room);
                let gone = self
                    .gone
                    .iter()
                    .filter(|(node, _)| records.iter().any(|(owner, _)| owner == *node))
                    .map(|(node, left)| (*node, *left))
                    .collect();
                nodes[i].input(Input::Records {
                    room,
                    records,
                    gone,
                    authority,
                });
            }
        }
        count
    }

    /// Every node's records for `room`.
    pub fn records_of(&self, room: &RoomName) -> Vec<(NodeId, SessionRecord)> {
        self.records
            .iter()
            .filter(|((r, _), _)| r == room)
            .flat_map(|((_, node), held)| held.values().map(|record| (*node, record.clone())))
            .collect()
    }

    /// Node `i` stopped refreshing its liveness: its records live `left` more.
    pub fn silence(&mut self, i: usize, left: Duration) {
        self.gone.insert(node_id(i), left);
    }

    /// Carries out everything the nodes ask of the backend (facts, follows, reads) until
    /// nothing new is asked. A node for which `can_speak` is false loses what it asks; one
    /// for which `can_hear` is false hears no fact; reads are answered to nodes that can
    /// do both.
    pub fn pump(
        &mut self,
        nodes: &mut [Harness],
        can_speak: impl Fn(usize) -> bool + Copy,
        can_hear: impl Fn(usize) -> bool + Copy,
    ) {
        loop {
            let added = self.collect(nodes, can_speak);
            let mut delivered = 0;
            while let Some(fact) = self.pop() {
                self.deliver(nodes, &fact, can_hear);
                delivered += 1;
            }
            let read = self.answer_reads(nodes, |i| can_speak(i) && can_hear(i));
            if added + delivered + read == 0 && nodes.iter().all(|n| n.backend.is_empty()) {
                return;
            }
        }
    }

    /// Node `i`'s records expired: it stopped refreshing them for the node TTL plus the
    /// grace.
    pub fn expire(&mut self, i: usize) {
        self.records.retain(|(_, node), _| *node != node_id(i));
        self.gone.remove(&node_id(i));
    }

    /// The backend lost everything (a Redis restart without persistence).
    pub fn wipe(&mut self) {
        self.records.clear();
        self.in_flight.clear();
        self.reads.clear();
    }

    /// Node `i` writes all its records again and says so, as the server does when its
    /// subscription comes back.
    pub fn reassert(&mut self, nodes: &[Harness], i: usize) {
        self.records.retain(|(_, node), _| *node != node_id(i));
        self.gone.remove(&node_id(i));
        for record in nodes[i].tracker.local_records() {
            self.write(&Fact::Session {
                node: node_id(i),
                record,
            });
        }
        self.in_flight
            .push_back(Fact::Reasserted { node: node_id(i) });
    }

    /// The rooms node `i` follows.
    pub fn following(&self, i: usize) -> BTreeSet<RoomName> {
        self.following.get(&i).cloned().unwrap_or_default()
    }
}

/// Every node for which `can_speak` is true says it is alive, as the server's beat does
/// every ttl/3.
pub fn announce_alive(nodes: &mut [Harness], can_speak: impl Fn(usize) -> bool) {
    for (i, node) in nodes.iter_mut().enumerate() {
        if can_speak(i) {
            node.backend
                .push(BackendCall::Publish(Fact::Alive { node: node_id(i) }));
        }
    }
}

/// Runs `run` once per seed: the one in `PRESENCED_SEED` when it is set, else each of
/// `0..count`. A failing seed fails the test with its reason and how to replay it.
pub fn for_each_seed(count: u64, run: impl Fn(u64)) {
    let seeds: Vec<u64> = match std::env::var("PRESENCED_SEED") {
        Ok(seed) => vec![seed.parse().expect("PRESENCED_SEED is a number")],
        Err(_) => (0..count).collect(),
    };
    for seed in seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(seed))) {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("seed {seed} failed: {reason}\nreplay with PRESENCED_SEED={seed}");
        }
    }
}

/// What a client knows of one room, rebuilt only from the frames it received.
#[derive(Debug, Default, Clone)]
pub struct ClientView {
    pub users: HashMap<UserId, User>,
    pub me: Option<UserId>,
    /// The room's numbers (listed users, spectators) as last heard.
    pub counts: Option<(u64, u64)>,
}

impl ClientView {
    pub fn apply(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::CurrentUsers {
                users,
                me,
                count,
                spectators,
                ..
            } => {
                self.users = users.iter().map(|u| (u.id.clone(), u.clone())).collect();
                self.me = Some(me.id.clone());
                self.counts = Some((*count, *spectators));
            }
            ServerMessage::Count {
                count, spectators, ..
            } => self.counts = Some((*count, *spectators)),
            ServerMessage::UserJoined { user, .. } | ServerMessage::UserUpdated { user, .. } => {
                self.users.insert(user.id.clone(), user.clone());
            }
            ServerMessage::UserLeft { user_id, .. } => {
                self.users.remove(user_id);
            }
            ServerMessage::Diff {
                joined,
                left,
                updated,
                ..
            } => {
                for id in left {
                    self.users.remove(id);
                }
                for user in joined.iter().chain(updated) {
                    self.users.insert(user.id.clone(), user.clone());
                }
            }
            ServerMessage::Cursors { cursors, .. } => {
                for entry in cursors {
                    if let Some(user) = self.users.get_mut(&entry.user_id) {
                        user.cursor.x = entry.x;
                        user.cursor.y = entry.y;
                        user.cursor.visible = entry.visible;
                    }
                }
            }
            ServerMessage::Restored { .. } | ServerMessage::Error { .. } => {}
        }
    }
}
