//! `idle`: N connections joined to rooms of K and then left alone. What a node pays to
//! hold people who are present but doing nothing, which is most of them most of the time.
//! With `room`, every connection joins that one room as `bot-N` instead, which is how
//! `scripts/demo-bots` fills a room of the demo.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use presence_protocol::View;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{check_failures, count, wait_for, Settings};
use crate::clients::{self, Incoming};
use crate::cluster::{self, ClusterReport, CpuWindow};
use crate::report::IdleReport;
use crate::server::Server;
use crate::stats::Samples;
use crate::BenchError;

/// Options of `idle`.
#[derive(Debug, Clone)]
pub struct IdleOptions {
    /// Connections.
    pub connections: usize,
    /// Users per room.
    pub room_size: usize,
    /// How long to hold everyone idle before measuring (lets buffers settle).
    pub settle: Duration,
    /// What each connection asks to see of its room.
    pub view: View,
    /// One room for every connection (users `bot-0`…), instead of rooms of `room_size`.
    pub room: Option<String>,
}

/// How long one client may wait for its `presence:currentUsers`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

struct Outcome {
    node: usize,
    join_latency: Option<Duration>,
    closed_while_idle: bool,
}

pub(super) async fn run(
    server: &Server,
    options: &IdleOptions,
    settings: &Settings,
) -> Result<IdleReport, BenchError> {
    let n = options.connections;
    let room_size = if options.room.is_some() {
        n.max(1)
    } else {
        options.room_size.max(1)
    };
    let before = server.sample()?;
    let cluster_baseline = server.cluster_sample()?;
    let baseline_at = Instant::now();
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let progress = &settings.progress;
    progress.set_length(n as u64);
    progress.set_message("idle: connecting and joining");

    let ramp_started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let node = server.node_for(index);
        let url = server.url_for(index).to_owned();
        let (stop, gate, joined, failed) =
            (stop.clone(), gate.clone(), joined.clone(), failed.clone());
        let sources = settings.sources;
        let (room, user) = match &options.room {
            Some(room) => (clients::room(room), format!("bot-{index}")),
            None => (
                clients::room(&format!("idle-{}", index / room_size)),
                format!("u{index}"),
            ),
        };
        let view = options.view;
        tasks.push(tokio::spawn(async move {
            let failure = Outcome {
                node,
                join_latency: None,
                closed_while_idle: false,
            };
            let Ok(permit) = gate.acquire_owned().await else {
                return failure;
            };
            let Ok(mut ws) = clients::connect(&url, sources, index).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return failure;
            };
            let sent_at = Instant::now();
            let join = clients::join_frame(&room, &user, None, false, view);
            if ws.send_text(join).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
                return failure;
            }
            let acked = tokio::time::timeout(JOIN_TIMEOUT, async {
                while let Some(text) = clients::next_text(&mut ws).await {
                    if let Some(Incoming::CurrentUsers { .. }) = clients::decode(&text) {
                        return true;
                    }
                }
                false
            })
            .await;
            if !matches!(acked, Ok(true)) {
                failed.fetch_add(1, Ordering::Relaxed);
                return failure;
            }
            let join_latency = sent_at.elapsed();
            drop(permit);
            joined.fetch_add(1, Ordering::Relaxed);
            // Idle: read (room events, pings) until told to stop.
            let closed_while_idle = tokio::select! {
                () = stop.cancelled() => false,
                () = async { while clients::next_text(&mut ws).await.is_some() {} } => true,
            };
            Outcome {
                node,
                join_latency: Some(join_latency),
                closed_while_idle,
            }
        }));
    }

    let all = || count(&joined) + count(&failed);
    wait_for(
        all,
        n,
        JOIN_TIMEOUT + Duration::from_secs(n as u64 / 50),
        progress,
    )
    .await;
    let ramp = ramp_started.elapsed();
    let joined_count = count(&joined);
    check_failures(count(&failed), n, "connect and join")?;

    progress.set_message("idle: holding");
    tokio::time::sleep(options.settle).await;
    let idle_start = server.sample()?;
    let idle_window = Duration::from_secs(2);
    tokio::time::sleep(idle_window).await;
    let idle = server.sample()?;
    let cluster_end = server.cluster_sample()?;
    let run_seconds = baseline_at.elapsed().as_secs_f64();

    stop.cancel();
    let mut latencies = Samples::new();
    let mut closed_while_idle = 0;
    let mut joined_nodes = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(outcome) = task.await {
            if let Some(latency) = outcome.join_latency {
                latencies.record(latency);
                joined_nodes.push(outcome.node);
            }
            closed_while_idle += usize::from(outcome.closed_while_idle);
        }
    }
    // The joins are where a node pays for remote users, so the CPU window takes in the
    // whole run, not only the idle hold (which costs pings).
    let cluster = ClusterReport::new(
        server.placement(),
        &cluster::users_per_node(server.node_count(), joined_nodes),
        &cluster_baseline,
        CpuWindow {
            covers: "the whole run: ramp, settle and idle hold",
            seconds: run_seconds,
            start: &cluster_baseline,
            end: &cluster_end,
        },
    );

    let extra = idle.rss_bytes.saturating_sub(before.rss_bytes) as f64;
    let per_connection = if joined_count > 0 {
        extra / joined_count as f64
    } else {
        0.0
    };
    let budget = 24.0 * 1024.0 * 1024.0 * 1024.0 - before.rss_bytes as f64;
    let projected = if per_connection > 0.0 {
        (budget / per_connection) as u64
    } else {
        0
    };
    Ok(IdleReport {
        connections: n,
        room_size,
        view: clients::view_label(options.view),
        joined: joined_count,
        failed: count(&failed),
        closed_while_idle,
        join_ack: latencies.summary(),
        joins_per_second: joined_count as f64 / ramp.as_secs_f64().max(1e-9),
        server_rss_before_bytes: before.rss_bytes,
        server_rss_idle_bytes: idle.rss_bytes,
        server_rss_per_connection_bytes: per_connection,
        projected_connections_in_24_gib: projected,
        server_idle_cpu_per_second: (idle.cpu.saturating_sub(idle_start.cpu)).as_secs_f64()
            / idle_window.as_secs_f64(),
        cluster,
    })
}
