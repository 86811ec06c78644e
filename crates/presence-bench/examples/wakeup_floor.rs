//! What the `cursor` scenario's traffic costs a server that does nothing else.
//!
//! The same pattern as 50 users moving at 20 Hz in one room with a 50 ms cursor interval
//! (one small message in per user per interval, at random phases; one ~3 KB frame out
//! to every user per interval), over loopback TCP with tokio, but without WebSocket
//! framing, JSON or presence logic. Its CPU per million "entries" (49 per frame) is the
//! floor under `presence-bench cursor` on the same machine: what wake-ups and syscalls
//! alone cost. See docs/performance.md.
//!
//! ```sh
//! cargo run --release -p presence-bench --example wakeup_floor -- 2   # two server workers
//! cargo run --release -p presence-bench --example wakeup_floor -- 0   # current-thread server
//! ```
//!
//! Server and clients run in one process on separately named threads; the server's CPU
//! is read from `/proc/self/task/*/stat` for the server threads only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const USERS: usize = 50;
const INTERVAL: Duration = Duration::from_millis(50);
const FRAME_BYTES: usize = 3_000;
const ENTRIES_PER_FRAME: u64 = USERS as u64 - 1;
const SERVER_THREAD: &str = "floor-server";

/// One connection's outbox: the latest frame and a wake-up for its task.
#[derive(Default)]
struct Outbox {
    frame: Mutex<Option<Arc<Vec<u8>>>>,
    notify: Notify,
}

fn main() {
    let server_threads: usize = std::env::args()
        .nth(1)
        .map(|arg| {
            arg.parse()
                .expect("server threads: a number (0 = current-thread)")
        })
        .unwrap_or(2);
    let seconds = 10;

    let mut server = if server_threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(server_threads);
        builder
    };
    let server = server
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    // A current-thread runtime runs only inside `block_on`: give it a thread of its own.
    std::thread::Builder::new()
        .name(SERVER_THREAD.to_owned())
        .spawn(move || server.block_on(serve(listener)))
        .expect("server thread");

    let frames = Arc::new(AtomicU64::new(0));
    // One worker per core unless `TOKIO_WORKER_THREADS` says otherwise, like the bench.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .thread_name("floor-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let counted = frames.clone();
    let (cpu, received) = clients.block_on(async move {
        for _ in 0..USERS {
            let stream = TcpStream::connect(address).await.expect("connect");
            tokio::spawn(user(stream, counted.clone()));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cpu_before, frames_before) = (server_cpu_seconds(), counted.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (cpu_after, frames_after) = (server_cpu_seconds(), counted.load(Ordering::Relaxed));
        (cpu_after - cpu_before, frames_after - frames_before)
    });
    let entries = received * ENTRIES_PER_FRAME;
    println!(
        "server threads {server_threads}: {entries} entries in {seconds} s, server CPU {cpu:.2} s, \
         {:.3} CPU-s per million entries",
        cpu / (entries.max(1) as f64 / 1e6)
    );
}

async fn serve(listener: TcpListener) {
    let outboxes: Arc<Mutex<Vec<Arc<Outbox>>>> = Arc::default();
    let flushing = outboxes.clone();
    tokio::spawn(async move {
        let frame = Arc::new(vec![b'x'; FRAME_BYTES]);
        let mut tick = tokio::time::interval(INTERVAL);
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

/// A user: a small message per interval at a random phase; counts whole frames received.
async fn user(mut stream: TcpStream, frames: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let phase = INTERVAL.mul_f64(rand::random::<f64>());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, INTERVAL);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut bytes = 0usize;
    let message = [b'm'; 60];
    loop {
        tokio::select! {
            _ = tick.tick() => if stream.write_all(&message).await.is_err() { return },
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    bytes += n;
                    frames.fetch_add((bytes / FRAME_BYTES) as u64, Ordering::Relaxed);
                    bytes %= FRAME_BYTES;
                }
            },
        }
    }
}

/// CPU time (user + system) of this process's server threads so far.
fn server_cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name is in parentheses and may hold spaces; fields after it are plain.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(SERVER_THREAD) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    ticks as f64 / ticks_per_second
}
