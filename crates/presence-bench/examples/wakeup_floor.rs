//! What the `cursor` scenario's traffic costs a server that does nothing else, on its
//! own: [`presence_bench::floor`] with the traffic of 50 users moving at 20 Hz in one room
//! with a 50 ms cursor interval (a ~3 KB frame of 49 entries). `presence-bench cursor
//! --floor` measures the same floor right after a real run, with that run's frame size.
//!
//! ```sh
//! cargo run --release -p presence-bench --example wakeup_floor -- 2   # two server workers
//! cargo run --release -p presence-bench --example wakeup_floor -- 1   # current-thread server
//! ```
//!
//! Its clients run one worker per core unless `TOKIO_WORKER_THREADS` says otherwise,
//! like the bench.

use std::time::Duration;

use presence_bench::floor::{measure, FloorTraffic};

fn main() -> std::io::Result<()> {
    let server_threads: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|_| {
            std::io::Error::other("server threads: a number (1 = current-thread runtime)")
        })?,
        None => 2,
    };
    let report = measure(&FloorTraffic {
        connections: 50,
        senders: 50,
        hz: 20.0,
        interval: Duration::from_millis(50),
        frame_bytes: 3_000,
        entries_per_frame: 49.0,
        server_threads,
        // tokio reads `TOKIO_WORKER_THREADS` itself when no count is given.
        client_threads: None,
        warmup: Duration::from_secs(3),
        duration: Duration::from_secs(10),
    })?;
    println!(
        "server threads {}: {:.0} entries in {:.0} s, server CPU {:.2} s, {:.3} CPU-s per million entries",
        report.server_threads,
        report.entries,
        report.measured_seconds,
        report.server_cpu_seconds,
        report.server_cpu_seconds_per_million_entries
    );
    Ok(())
}
