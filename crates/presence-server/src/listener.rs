//! An accept loop that survives running out of file descriptors.
//!
//! When `accept` fails (EMFILE, ENFILE, ENOBUFS…), the node keeps serving the connections
//! it has, counts the failure in `/metrics`, and backs off before accepting again, instead
//! of spinning or exiting.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// Wraps a bound listener for `axum::serve`.
pub struct ResilientListener {
    inner: TcpListener,
    metrics: Arc<Metrics>,
}

impl ResilientListener {
    /// Takes over a bound listener.
    pub fn new(inner: TcpListener, metrics: Arc<Metrics>) -> Self {
        ResilientListener { inner, metrics }
    }
}

impl axum::serve::Listener for ResilientListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Presence frames are small and latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    return (stream, addr);
                }
                Err(error) => {
                    self.metrics.accept_errors.inc();
                    if is_per_connection(&error) {
                        continue;
                    }
                    tracing::warn!(%error, ?backoff, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Errors that concern one aborted connection, not the listener.
fn is_per_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
