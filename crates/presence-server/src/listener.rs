//! The accept loop: it survives running out of file descriptors, and it keeps connections
//! that have not become WebSockets on a short leash.
//!
//! When `accept` fails (EMFILE, ENFILE, ENOBUFS…), the node keeps serving the connections
//! it has, counts the failure in `/metrics`, and backs off before accepting again, instead
//! of spinning or exiting.
//!
//! A connection is *pending* until it upgrades to a WebSocket. A pending connection must
//! send each request within `--handshake-timeout` of being accepted or of the server's last
//! answer, so one that dribbles its headers (slowloris) or idles between requests is
//! closed. At most `--max-pending-connections` are pending at once: at the cap, the
//! oldest pending connection is closed to make room, so a flood of half-sent requests
//! cannot lock out a client that completes its handshake in milliseconds. Both closes are
//! counted in `presenced_handshake_closes_total{reason}`.
//!
//! With `--tls-cert`, each accepted connection is wrapped in TLS whose handshake runs on
//! the connection's own task, at its first read or write: a slow or silent TLS client
//! holds up nobody else, and its handshake is bounded by the same handshake timeout.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;
use crate::tls::Certificates;

/// Wraps a bound listener for `axum::serve`.
pub struct ResilientListener {
    inner: TcpListener,
    metrics: Arc<Metrics>,
    pending: Arc<Pending>,
    handshake_timeout: Duration,
    tls: Option<Arc<Certificates>>,
}

impl ResilientListener {
    /// Takes over a bound listener. Pending connections get `handshake_timeout` per
    /// request, and at most `max_pending` are held.
    pub fn new(
        inner: TcpListener,
        metrics: Arc<Metrics>,
        handshake_timeout: Duration,
        max_pending: usize,
    ) -> Self {
        ResilientListener {
            inner,
            pending: Arc::new(Pending {
                count: AtomicUsize::new(0),
                max: max_pending.max(1),
                oldest_first: Mutex::new(VecDeque::new()),
                metrics: metrics.clone(),
            }),
            metrics,
            handshake_timeout,
            tls: None,
        }
    }
}

/// The connections not yet upgraded, oldest first.
struct Pending {
    count: AtomicUsize,
    max: usize,
    /// May hold guards already upgraded or gone; they are skipped when met.
    oldest_first: Mutex<VecDeque<Weak<HandshakeGuard>>>,
    metrics: Arc<Metrics>,
}

impl Pending {
    /// Registers a new pending connection, closing the oldest one if at the cap.
    fn admit(self: &Arc<Self>) -> Arc<HandshakeGuard> {
        let guard = Arc::new(HandshakeGuard {
            pending: Arc::downgrade(self),
            settled: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let Ok(mut queue) = self.oldest_first.lock() else {
            return guard;
        };
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            while let Some(oldest) = queue.pop_front() {
                if let Some(oldest) = oldest.upgrade() {
                    if oldest.settle() {
                        oldest.evicted.store(true, Ordering::Release);
                        oldest.waker.wake();
                        self.metrics.handshake_closed("evicted");
                        break;
                    }
                }
            }
        }
        queue.push_back(Arc::downgrade(&guard));
        // Upgraded and closed connections leave entries behind, and each keeps its guard's
        // allocation alive: sweep once they outnumber the pending twice over. Each sweep
        // at least halves the queue, so admitting stays O(1) amortized, and an idle node
        // keeps a few entries, not one per connection it ever accepted.
        let pending = self.count.load(Ordering::Acquire);
        if queue.len() > 2 * pending.max(16) {
            queue.retain(|g| {
                g.upgrade()
                    .is_some_and(|g| !g.settled.load(Ordering::Acquire))
            });
        }
        guard
    }
}

/// One connection's standing while it is pending, shared with its request handlers.
#[derive(Debug)]
pub struct HandshakeGuard {
    pending: Weak<Pending>,
    /// Upgraded, evicted or closed: no longer counted as pending.
    settled: AtomicBool,
    evicted: AtomicBool,
    /// The connection's reader, woken to close it when it is evicted.
    waker: AtomicWaker,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("count", &self.count)
            .finish()
    }
}

impl HandshakeGuard {
    /// Leaves the pending set; true for the one call that did.
    fn settle(&self) -> bool {
        let first = !self.settled.swap(true, Ordering::AcqRel);
        if first {
            if let Some(pending) = self.pending.upgrade() {
                pending.count.fetch_sub(1, Ordering::AcqRel);
            }
        }
        first
    }

    /// The connection became a WebSocket: no more deadline, no longer pending.
    pub fn upgraded(&self) {
        self.settle();
    }
}

/// Hands each request the guard of its connection (see `http::upgrade`).
#[derive(Debug, Clone)]
pub struct Handshake(pub Option<Arc<HandshakeGuard>>);

impl Connected<IncomingStream<'_, ResilientListener>> for Handshake {
    fn connect_info(stream: IncomingStream<'_, ResilientListener>) -> Self {
        // A connection is pending when its first request arrives, so its guard is there.
        let guard = match stream.io() {
            Connection::Plain(plain) => plain.pending.as_ref().map(|p| p.guard.clone()),
            Connection::Tls(tls) => Some(tls.guard.clone()),
        };
        Handshake(guard)
    }
}

/// A TCP connection that is closed if it stays pending too long (see the module doc).
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    /// Dropped at the first read after the upgrade: every idle WebSocket pays for this
    /// field alone, one pointer.
    pending: Option<Box<PendingState>>,
}

#[derive(Debug)]
struct PendingState {
    guard: Arc<HandshakeGuard>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        if let Some(pending) = &self.pending {
            pending.guard.settle();
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(pending) = this.pending.as_mut() {
            let guard = &pending.guard;
            if guard.evicted.load(Ordering::Acquire) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "closed to make room for newer connections",
                )));
            }
            if guard.settled.load(Ordering::Acquire) {
                this.pending = None;
            } else {
                guard.waker.register(cx.waker());
                if pending.deadline.as_mut().poll(cx).is_ready() {
                    if guard.settle() {
                        if let Some(pending) = guard.pending.upgrade() {
                            pending.metrics.handshake_closed("timeout");
                        }
                    }
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the handshake timeout",
                    )));
                }
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl GuardedStream {
    /// The server wrote `n` bytes: a pending connection's next request gets a whole
    /// timeout again.
    fn answered(&mut self, n: usize) {
        if let (Some(pending), true) = (self.pending.as_mut(), n > 0) {
            let at = Instant::now() + pending.timeout;
            pending.deadline.as_mut().reset(at);
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &written {
            this.answered(*n);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &written {
            this.answered(*n);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An accepted connection: plain TCP, or TLS over it (`--tls-cert`).
#[derive(Debug)]
pub enum Connection {
    /// HTTP and WS.
    Plain(GuardedStream),
    /// HTTPS and WSS.
    Tls(Box<TlsConnection>),
}

/// TLS over a guarded TCP connection, its handshake done at the first read or write.
pub struct TlsConnection {
    /// The connection's handshake guard, for its requests (the stream hides it once TLS
    /// wraps it).
    guard: Arc<HandshakeGuard>,
    state: TlsState,
}

enum TlsState {
    Handshaking(tokio_rustls::Accept<GuardedStream>),
    Ready(tokio_rustls::server::TlsStream<GuardedStream>),
    Failed,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            TlsState::Handshaking(_) => "handshaking",
            TlsState::Ready(_) => "ready",
            TlsState::Failed => "failed",
        };
        f.debug_struct("TlsConnection")
            .field("state", &state)
            .finish()
    }
}

impl TlsConnection {
    /// The TLS stream once the handshake is done, driving the handshake until then.
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut tokio_rustls::server::TlsStream<GuardedStream>>> {
        if let TlsState::Handshaking(accept) = &mut self.state {
            match Pin::new(accept).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.state = TlsState::Ready(stream),
                Poll::Ready(Err(error)) => {
                    self.state = TlsState::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match &mut self.state {
            TlsState::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS handshake failed",
            ))),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(plain) => Pin::new(plain).poll_read(cx, buf),
            Connection::Tls(tls) => {
                let stream = ready!(tls.poll_ready(cx))?;
                Pin::new(stream).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(plain) => Pin::new(plain).poll_write(cx, buf),
            Connection::Tls(tls) => {
                let stream = ready!(tls.poll_ready(cx))?;
                Pin::new(stream).poll_write(cx, buf)
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(plain) => Pin::new(plain).poll_write_vectored(cx, bufs),
            Connection::Tls(tls) => {
                let stream = ready!(tls.poll_ready(cx))?;
                Pin::new(stream).poll_write_vectored(cx, bufs)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(plain) => plain.is_write_vectored(),
            Connection::Tls(tls) => match &tls.state {
                TlsState::Ready(stream) => stream.is_write_vectored(),
                _ => false,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(plain) => Pin::new(plain).poll_flush(cx),
            Connection::Tls(tls) => match &mut tls.state {
                TlsState::Ready(stream) => Pin::new(stream).poll_flush(cx),
                _ => Poll::Ready(Ok(())),
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(plain) => Pin::new(plain).poll_shutdown(cx),
            Connection::Tls(tls) => match &mut tls.state {
                TlsState::Ready(stream) => Pin::new(stream).poll_shutdown(cx),
                // Nothing was said over TLS yet: dropping the socket is the whole goodbye.
                _ => Poll::Ready(Ok(())),
            },
        }
    }
}

impl ResilientListener {
    /// Serves HTTPS and WSS with `certificates` (read again on SIGHUP by their owner).
    pub fn with_tls(mut self, certificates: Option<Arc<Certificates>>) -> Self {
        self.tls = certificates;
        self
    }
}

impl axum::serve::Listener for ResilientListener {
    type Io = Connection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Presence frames are small and latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    let guard = self.pending.admit();
                    let guarded = GuardedStream {
                        inner: stream,
                        pending: Some(Box::new(PendingState {
                            guard: guard.clone(),
                            deadline: Box::pin(tokio::time::sleep(self.handshake_timeout)),
                            timeout: self.handshake_timeout,
                        })),
                    };
                    let acceptor = self.tls.as_ref().and_then(|tls| tls.acceptor());
                    let connection = match acceptor {
                        None => Connection::Plain(guarded),
                        Some(acceptor) => Connection::Tls(Box::new(TlsConnection {
                            guard,
                            state: TlsState::Handshaking(acceptor.accept(guarded)),
                        })),
                    };
                    return (connection, addr);
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
