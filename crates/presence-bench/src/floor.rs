//! The floor under the `cursor` scenario: what its traffic costs a server that does
//! nothing else.
//!
//! The same pattern as a cursor run (connections that each send a small message per
//! period at a random phase, and a frame of the run's mean size written to every
//! connection once per cursor interval), over loopback TCP with tokio, in this process,
//! without WebSocket framing, JSON or presence logic. It uses presenced's shape: a task
//! per connection, an outbox woken by `Notify`. Its server CPU per entry is what wake-ups
//! and syscalls alone cost on this machine at this moment. How busy a shared machine is
//! moves every CPU figure by a factor of two or more (docs/performance.md), so a cursor
//! run that measures the floor in the same run can report a ratio that carries over.
//!
//! The server runs on threads of its own, whose CPU is read from `/proc/self/task`
//! ([`procfs::own_threads_cpu`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

use crate::procfs;

/// Threads of the floor's server are named this, so their CPU can be told apart.
const SERVER_THREAD: &str = "floor-server";

/// The traffic to reproduce.
#[derive(Debug, Clone)]
pub struct FloorTraffic {
    /// Connections, each of which receives a frame per interval.
    pub connections: usize,
    /// Connections that also send a message per period (the movers).
    pub senders: usize,
    /// Messages per sender per second.
    pub hz: f64,
    /// How often every connection gets a frame.
    pub interval: Duration,
    /// Bytes per frame (the cursor run's mean).
    pub frame_bytes: usize,
    /// Entries a frame stands for (the cursor run's mean), to report per entry.
    pub entries_per_frame: f64,
    /// Server threads: 1 runs a current-thread runtime, as `presenced --worker-threads 1`.
    pub server_threads: usize,
    /// Client threads [default: one per core], as the bench's `--threads`.
    pub client_threads: Option<usize>,
    /// Traffic before the window opens.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What the floor cost.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    /// Server threads (1: a current-thread runtime).
    pub server_threads: usize,
    /// Bytes per frame written.
    pub frame_bytes: usize,
    /// Frames received whole in the window.
    pub frames: u64,
    /// `frames` × the run's entries per frame.
    pub entries: f64,
    /// Length of the measured window, s.
    pub measured_seconds: f64,
    /// CPU seconds of the server threads in the window.
    pub server_cpu_seconds: f64,
    /// Server CPU seconds per million entries.
    pub server_cpu_seconds_per_million_entries: f64,
}

/// Runs the floor and measures it. Blocks, and builds its own runtimes: call it from a
/// thread that is not inside one.
pub fn measure(traffic: &FloorTraffic) -> std::io::Result<FloorReport> {
    let mut server = if traffic.server_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(traffic.server_threads);
        builder
    };
    let server = server.thread_name(SERVER_THREAD).enable_all().build()?;
    let listener = server.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let frame = Arc::new(vec![b'x'; traffic.frame_bytes.max(1)]);
    let interval = traffic.interval.max(Duration::from_millis(1));
    // A current-thread runtime runs only inside `block_on`: give it a thread of its own.
    let serving = std::thread::Builder::new()
        .name(SERVER_THREAD.to_owned())
        .spawn(move || {
            server.block_on(async move {
                tokio::select! {
                    () = serve(listener, frame, interval) => {}
                    _ = stopped => {}
                }
            });
        })?;

    let mut clients = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = traffic.client_threads {
        clients.worker_threads(threads.max(1));
    }
    let clients = clients.enable_all().build()?;
    let frames = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / traffic.hz.max(0.1));
    let counted = frames.clone();
    let (connections, senders) = (traffic.connections, traffic.senders);
    let frame_bytes = traffic.frame_bytes.max(1);
    let (warmup, duration) = (traffic.warmup, traffic.duration);
    let measured = clients.block_on(async move {
        for index in 0..connections {
            let stream = TcpStream::connect(address).await?;
            let sends = (index < senders).then_some(period);
            tokio::spawn(user(stream, sends, frame_bytes, counted.clone()));
        }
        tokio::time::sleep(warmup).await;
        let started = tokio::time::Instant::now();
        let (cpu_before, frames_before) = (
            procfs::own_threads_cpu(SERVER_THREAD),
            counted.load(Ordering::Relaxed),
        );
        tokio::time::sleep(duration).await;
        let (cpu_after, frames_after) = (
            procfs::own_threads_cpu(SERVER_THREAD),
            counted.load(Ordering::Relaxed),
        );
        Ok::<_, std::io::Error>((
            started.elapsed().as_secs_f64(),
            cpu_after.saturating_sub(cpu_before).as_secs_f64(),
            frames_after - frames_before,
        ))
    });
    drop(clients);
    let _ = stop.send(());
    let _ = serving.join();
    let (seconds, cpu, frames) = measured?;
    let entries = frames as f64 * traffic.entries_per_frame;
    Ok(FloorReport {
        server_threads: traffic.server_threads.max(1),
        frame_bytes,
        frames,
        entries,
        measured_seconds: seconds,
        server_cpu_seconds: cpu,
        server_cpu_seconds_per_million_entries: if entries > 0.0 {
            cpu / (entries / 1e6)
        } else {
            f64::INFINITY
        },
    })
}

/// One connection's outbox: the latest frame and a wake-up for its task.
#[derive(Default)]
struct Outbox {
    frame: Mutex<Option<Arc<Vec<u8>>>>,
    notify: Notify,
}

async fn serve(listener: TcpListener, frame: Arc<Vec<u8>>, interval: Duration) {
    let outboxes: Arc<Mutex<Vec<Arc<Outbox>>>> = Arc::default();
    let flushing = outboxes.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let Ok(outboxes) = flushing.lock() else {
                return;
            };
            for outbox in outboxes.iter() {
                if let Ok(mut slot) = outbox.frame.lock() {
                    *slot = Some(frame.clone());
                }
                outbox.notify.notify_one();
            }
        }
    });
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let outbox = Arc::new(Outbox::default());
        if let Ok(mut all) = outboxes.lock() {
            all.push(outbox.clone());
        }
        tokio::spawn(async move {
            let mut buffer = [0u8; 256];
            loop {
                tokio::select! {
                    read = stream.read(&mut buffer) => if matches!(read, Ok(0) | Err(_)) { return },
                    () = outbox.notify.notified() => {
                        let frame = outbox.frame.lock().ok().and_then(|mut slot| slot.take());
                        if let Some(frame) = frame {
                            if stream.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
}

/// A connection: a small message per period at a random phase if it sends; counts the
/// whole frames it receives.
async fn user(
    mut stream: TcpStream,
    sends: Option<Duration>,
    frame_bytes: usize,
    frames: Arc<AtomicU64>,
) {
    let _ = stream.set_nodelay(true);
    let period = sends.unwrap_or(Duration::from_secs(3600));
    let phase = period.mul_f64(rand::random::<f64>());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut bytes = 0usize;
    let message = [b'm'; 60];
    loop {
        tokio::select! {
            _ = tick.tick(), if sends.is_some() => if stream.write_all(&message).await.is_err() { return },
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    bytes += n;
                    frames.fetch_add((bytes / frame_bytes) as u64, Ordering::Relaxed);
                    bytes %= frame_bytes;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_delivers_frames_and_counts_its_server_cpu() {
        let report = measure(&FloorTraffic {
            connections: 6,
            senders: 6,
            hz: 50.0,
            interval: Duration::from_millis(10),
            frame_bytes: 500,
            entries_per_frame: 5.0,
            server_threads: 1,
            client_threads: Some(1),
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(500),
        })
        .expect("the floor runs");
        assert!(report.frames > 0, "{report:?}");
        assert_eq!(report.entries, report.frames as f64 * 5.0);
        assert!(report.server_cpu_seconds >= 0.0);
        assert!(report.measured_seconds >= 0.5);
        assert_eq!(report.frame_bytes, 500);
    }
}
