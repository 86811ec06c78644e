//! The presence state machine: rooms, users, sessions, heartbeats and the reconnect grace.
//!
//! It performs no I/O and reads no clock: the server feeds a [`Tracker`] [`Input`]s stamped
//! with [`Now`] and carries out the [`Effect`]s it returns (send this frame to that
//! connection, share that frame among these). Because time is an argument, every grace
//! period, timeout and cursor interval can be stepped through deterministically in tests.
//! One `Tracker` owns a shard of the rooms; the server runs one per core.
//!
//! **Cluster mode.** With [`Config::cluster`] set, several nodes share rooms. Each node
//! owns the sessions of its own connections and tells the others about every change as a
//! [`Fact`] ([`Effect::Publish`]); facts from other nodes come back in as
//! [`Input::Remote`]. Remote sessions live in the same rosters as local ones, so every
//! roster rule (one entry per user, colors, `userJoined` on the first session and
//! `userLeft` on the last, diffs, cursor frames) holds across nodes with no second code
//! path. What only cluster mode needs is in `remote.rs`: which node owns a session (the
//! latest claim wins, so a restore on another node is a move, never a leave and a join),
//! last-writer-wins user data by [`Stamp`], and node liveness (a node silent for the node
//! TTL, or announcing that it leaves, has its sessions orphaned: they stay visible for the
//! reconnect grace, waiting for their clients to restore them on a surviving node).
//!
//! A node serves only the rooms where it holds a session (live, in grace, or being
//! restored). The first join into a room it does not serve yet asks the shell to follow the
//! room ([`Effect::Watch`]) and waits, with everything else about the room, until the room's
//! records arrive ([`Input::Records`]): so the first joiner's roster is already whole. When
//! its last session there goes, the node drops the room and everything it held for it
//! ([`Effect::Unwatch`]). Facts about rooms it does not serve are counted and ignored.
//!
//! See docs/architecture.md for the whole picture.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod color;
mod config;
mod effect;
mod fact;
mod flush;
mod input;
mod interest;
mod outgoing;
mod remote;
mod roster;
mod session;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod timers;
mod tracker;
mod view;

pub use color::{color_for, PALETTE};
pub use config::{Cluster, Config};
pub use effect::{CloseReason, Effect, RoomEvent};
pub use fact::{Fact, NodeId, SessionRecord, Stamp};
pub use input::{Authority, ConnId, Input, JoinRequest, Now};
pub use interest::{page_from_records, roster_from_records, InterestStats};
pub use tracker::{RoomPage, Stats, Tracker};
