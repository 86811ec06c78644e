//! The presence state machine: rooms, users, sessions, heartbeats and the reconnect grace.
//!
//! It performs no I/O and reads no clock: the server feeds a [`Tracker`] [`Input`]s stamped
//! with [`Now`] and carries out the [`Effect`]s it returns (send this frame to that
//! connection, share that frame among these). Because time is an argument, every grace
//! period, timeout and cursor interval can be stepped through deterministically in tests.
//! One `Tracker` owns a shard of the rooms; the server runs one per core.
//! See docs/architecture.md for the whole picture.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod color;
mod config;
mod effect;
mod fact;
mod input;
mod remote;
mod roster;
mod session;
#[cfg(feature = "testing")]
pub mod testing;
mod timers;
mod tracker;

pub use color::{color_for, PALETTE};
pub use config::{Cluster, Config};
pub use effect::{CloseReason, Effect};
pub use fact::{Fact, NodeId, SessionRecord, Stamp};
pub use input::{ConnId, Input, JoinRequest, Now};
pub use tracker::{Stats, Tracker};
