//! Test plumbing for presenced, shared by every crate's tests and by the bench.
//!
//! It starts the real `presenced` binary on port 0 and waits for its `listening on` line
//! ([`PresencedCommand`], [`Presenced`]), starts a private `redis-server` or a local Redis
//! Cluster on free loopback ports ([`Redis`], [`RedisCluster`]), and speaks just enough
//! HTTP/1.1 to read the server's endpoints ([`http`]). It is a dev-only crate
//! (`publish = false`): the server and the clients never depend on it, only their tests
//! and `presence-bench` do. Every child it starts is killed when its handle is dropped,
//! so a failing test leaves no process behind, and a child that fails to start is
//! reported with its exit status and the last lines it wrote. It is async (tokio)
//! because its callers are: `#[tokio::test]`s and the bench.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod binary;
mod child;
pub mod http;
mod ports;
mod presenced;
mod redis;

pub use binary::{presenced_binary, sibling_presenced};
pub use child::Signal;
pub use ports::free_port;
pub use presenced::{Presenced, PresencedCommand, StartError};
pub use redis::{redis_server_available, Redis, RedisCluster, RedisError};
