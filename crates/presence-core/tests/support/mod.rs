//! What the core's tests share besides `presence_core::testing::Harness`: the fact
//! channel between the nodes of a test cluster, a client's view rebuilt from its frames,
//! and the seed loop of the simulations.
#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

use presence_core::testing::{node_id, Harness};
use presence_core::{Fact, Input};
use presence_protocol::{ServerMessage, User, UserId};

/// The backend between test nodes: every node hears the facts in one order, as the
/// server's backend delivers them.
#[derive(Default)]
pub struct FactChannel {
    in_flight: VecDeque<Fact>,
}

impl FactChannel {
    /// Moves what each node published onto the channel, in node order. The facts of a
    /// node for which `can_speak` is false are lost: it was killed or cut off. Returns
    /// how many facts were added.
    pub fn collect(&mut self, nodes: &mut [Harness], can_speak: impl Fn(usize) -> bool) -> usize {
        let before = self.in_flight.len();
        for (i, node) in nodes.iter_mut().enumerate() {
            let facts = std::mem::take(&mut node.published);
            if can_speak(i) {
                self.in_flight.extend(facts);
            }
        }
        self.in_flight.len() - before
    }

    /// Queues `fact` behind everything already on the channel.
    pub fn push(&mut self, fact: Fact) {
        self.in_flight.push_back(fact);
    }

    /// The next fact in channel order.
    pub fn pop(&mut self) -> Option<Fact> {
        self.in_flight.pop_front()
    }
}

/// Hands `fact` to every node for which `can_hear` is true.
pub fn deliver(nodes: &mut [Harness], fact: &Fact, can_hear: impl Fn(usize) -> bool) {
    for (i, node) in nodes.iter_mut().enumerate() {
        if can_hear(i) {
            node.input(Input::Remote(fact.clone()));
        }
    }
}

/// Every node for which `can_speak` is true says it is alive, as the server's beat does
/// every ttl/3.
pub fn announce_alive(nodes: &mut [Harness], can_speak: impl Fn(usize) -> bool) {
    for (i, node) in nodes.iter_mut().enumerate() {
        if can_speak(i) {
            node.published.push(Fact::Alive { node: node_id(i) });
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
}

impl ClientView {
    pub fn apply(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::CurrentUsers { users, me, .. } => {
                self.users = users.iter().map(|u| (u.id.clone(), u.clone())).collect();
                self.me = Some(me.id.clone());
            }
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
