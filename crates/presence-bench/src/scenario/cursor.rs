//! `cursor`: R rooms of M members, of whom some move their pointer F times a second.
//! What a node spends per delivered cursor entry, and how late the entries arrive.
//!
//! Each move carries the bench's clock (microseconds since the run began) in `x`, so a
//! receiver knows exactly how old the position it got is: the end-to-end latency covers
//! the client's send, the server's decode, the wait for the room's cursor interval, the
//! fan-out and the receiver's read.
//!
//! With a list view of `K` (protocol 1.1) each member must get the cursors of at most the
//! `K` users in its window. The bench then reads the ids of every `presence:cursors` frame
//! and reports the most users one frame (one interval) carried, and the most distinct
//! users one member heard from over the window.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use presence_protocol::View;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{check_failures, count, wait_for, Settings};
use crate::clients::{self, Incoming};
use crate::cluster::{self, ClusterReport, CpuWindow};
use crate::floor::{self, FloorReport, FloorTraffic};
use crate::report::CursorReport;
use crate::server::Server;
use crate::stats::Samples;
use crate::BenchError;

/// Options of `cursor`.
#[derive(Debug, Clone)]
pub struct CursorOptions {
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Members per room that move (the rest only watch).
    pub movers: usize,
    /// What each member asks to see of its room.
    pub view: View,
    /// Moves per mover per second.
    pub hz: f64,
    /// The measured window.
    pub duration: Duration,
    /// Moving before the window opens, so queues and buffers reach their steady state.
    pub warmup: Duration,
    /// The server's `--cursor-interval` (the latency budget is this plus 25 ms).
    pub cursor_interval: Duration,
    /// Members per room that record the latency of every entry they get; the others
    /// only count entries, which keeps the bench's own CPU off the server's cores.
    pub latency_receivers: usize,
    /// After the window, measure the same traffic's floor ([`crate::floor`]) with this
    /// many server threads; `None` skips it.
    pub floor_server_threads: Option<usize>,
    /// The bench's own threads (`--threads`), which the floor's clients copy.
    pub client_threads: Option<usize>,
}

#[derive(Default)]
struct Outcome {
    node: usize,
    joined: bool,
    moves_sent: u64,
    entries: u64,
    frames: u64,
    frame_bytes: u64,
    latencies: Samples,
    lost: bool,
    /// List views: the most users one `presence:cursors` frame carried.
    most_users_per_frame: usize,
    /// List views: distinct users whose cursors this member got in the window.
    users_heard: usize,
}

pub(super) async fn run(
    server: &Server,
    options: &CursorOptions,
    settings: &Settings,
) -> Result<CursorReport, BenchError> {
    let members = options.members.max(2);
    let movers = options.movers.min(members);
    let n = options.rooms.max(1) * members;
    let period = Duration::from_secs_f64(1.0 / options.hz.max(0.1));
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let go = CancellationToken::new();
    let measuring = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let progress = &settings.progress;
    progress.set_length(n as u64);
    progress.set_message("cursor: connecting and joining");
    let cluster_baseline = server.cluster_sample()?;

    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let node = server.node_for(index);
        let url = server.url_for(index).to_owned();
        let sources = settings.sources;
        let (stop, go, measuring) = (stop.clone(), go.clone(), measuring.clone());
        let (gate, joined, failed) = (gate.clone(), joined.clone(), failed.clone());
        let member = index % members;
        let is_mover = member < movers;
        let records_latency = member < options.latency_receivers;
        let room = clients::room(&format!("cursor-{}", index / members));
        let view = options.view;
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome {
                node,
                ..Outcome::default()
            };
            let Ok(permit) = gate.acquire_owned().await else {
                return outcome;
            };
            let Ok(mut ws) = clients::connect(&url, sources, index).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return outcome;
            };
            let join = clients::join_frame(&room, &format!("u{index}"), None, false, view);
            let acked = async {
                ws.send_text(join).await.ok()?;
                while let Some(text) = clients::next_text(&mut ws).await {
                    if let Some(Incoming::CurrentUsers { .. }) = clients::decode(&text) {
                        return Some(());
                    }
                }
                None
            };
            if tokio::time::timeout(Duration::from_secs(60), acked)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                failed.fetch_add(1, Ordering::Relaxed);
                return outcome;
            }
            drop(permit);
            outcome.joined = true;
            joined.fetch_add(1, Ordering::Relaxed);

            // Wait for everyone, reading whatever arrives (joins of later members).
            tokio::select! {
                () = go.cancelled() => {}
                () = stop.cancelled() => return outcome,
                () = async { while clients::next_text(&mut ws).await.is_some() {} } => {
                    outcome.lost = true;
                    return outcome;
                }
            }

            // Spread the movers' phases over one period, as real users are.
            let phase = period.mul_f64(rand::rng().random::<f64>());
            let mut tick = tokio::time::interval_at(Instant::now() + phase, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut y = 0.0;
            // Users by bench index (`u7` is 7).
            let mut frame_users: Vec<usize> = Vec::new();
            let mut heard: HashSet<usize> = HashSet::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick(), if is_mover => {
                        let x = epoch.elapsed().as_micros() as f64;
                        y += 1.0;
                        if ws.send_text(clients::cursor_frame(&room, x, y)).await.is_err() {
                            outcome.lost = true;
                            break;
                        }
                        if measuring.load(Ordering::Relaxed) {
                            outcome.moves_sent += 1;
                        }
                    }
                    text = clients::next_text(&mut ws) => {
                        let Some(text) = text else {
                            outcome.lost = true;
                            break;
                        };
                        if !measuring.load(Ordering::Relaxed) {
                            continue;
                        }
                        if !view.is_full() && text.as_str().starts_with(r#"{"type":"presence:cursors""#) {
                            frame_users.clear();
                            frame_users.extend(
                                clients::cursor_user_ids(text.as_str())
                                    .filter_map(|id| id.strip_prefix('u')?.parse::<usize>().ok()),
                            );
                            frame_users.sort_unstable();
                            frame_users.dedup();
                            outcome.most_users_per_frame = outcome.most_users_per_frame.max(frame_users.len());
                            heard.extend(frame_users.iter().copied());
                        }
                        if records_latency {
                            if let Some(Incoming::Cursors(xs)) = clients::decode(&text) {
                                let now = epoch.elapsed().as_micros() as f64;
                                outcome.frames += 1;
                                outcome.frame_bytes += text.len() as u64;
                                outcome.entries += xs.len() as u64;
                                for x in xs {
                                    outcome.latencies.record_micros((now - x).max(0.0) as u64);
                                }
                            }
                        } else if text.as_str().starts_with(r#"{"type":"presence:cursors""#) {
                            outcome.frames += 1;
                            outcome.frame_bytes += text.len() as u64;
                            outcome.entries += text.as_str().matches(r#""userId""#).count() as u64;
                        }
                    }
                }
            }
            outcome.users_heard = heard.len();
            outcome
        }));
    }

    let all = || count(&joined) + count(&failed);
    wait_for(all, n, Duration::from_secs(60 + n as u64 / 50), progress).await;
    check_failures(count(&failed), n, "connect and join")?;

    progress.set_message("cursor: warming up");
    go.cancel();
    tokio::time::sleep(options.warmup).await;
    progress.set_message("cursor: measuring");
    progress.set_length(options.duration.as_secs().max(1));
    progress.set_position(0);
    let cpu_before = server.sample()?.cpu;
    let cluster_start = server.cluster_sample()?;
    measuring.store(true, Ordering::Relaxed);
    let window_start = Instant::now();
    let window_end = window_start + options.duration;
    while Instant::now() < window_end {
        tokio::time::sleep(Duration::from_millis(250).min(options.duration)).await;
        progress.set_position(window_start.elapsed().as_secs());
    }
    measuring.store(false, Ordering::Relaxed);
    let measured = window_start.elapsed();
    let cpu_after = server.sample()?.cpu;
    let cluster_end = server.cluster_sample()?;
    stop.cancel();

    let mut total = Outcome::default();
    let mut lost = 0;
    let mut joined_nodes = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(outcome) = task.await {
            if outcome.joined {
                joined_nodes.push(outcome.node);
            }
            total.moves_sent += outcome.moves_sent;
            total.entries += outcome.entries;
            total.frames += outcome.frames;
            total.frame_bytes += outcome.frame_bytes;
            total.latencies.merge(outcome.latencies);
            total.most_users_per_frame =
                total.most_users_per_frame.max(outcome.most_users_per_frame);
            total.users_heard = total.users_heard.max(outcome.users_heard);
            lost += usize::from(outcome.joined && outcome.lost);
        }
    }
    let seconds = measured.as_secs_f64();
    let cluster = ClusterReport::new(
        server.placement(),
        &cluster::users_per_node(server.node_count(), joined_nodes),
        &cluster_baseline,
        CpuWindow {
            covers: "the measured window",
            seconds,
            start: &cluster_start,
            end: &cluster_end,
        },
    );
    let cpu = cpu_after.saturating_sub(cpu_before).as_secs_f64();
    let interval = options.cursor_interval.as_secs_f64();
    let flush_rate = if interval > 0.0 {
        1.0 / interval
    } else {
        f64::INFINITY
    };
    let server_cpu_seconds_per_million_entries = if total.entries > 0 {
        cpu / (total.entries as f64 / 1e6)
    } else {
        f64::INFINITY
    };
    let floor = match options.floor_server_threads {
        Some(server_threads) if total.frames > 0 => {
            progress.set_message("cursor: measuring the floor");
            let traffic = FloorTraffic {
                connections: n,
                senders: options.rooms.max(1) * movers,
                hz: options.hz,
                interval: options.cursor_interval,
                frame_bytes: (total.frame_bytes / total.frames) as usize,
                entries_per_frame: total.entries as f64 / total.frames as f64,
                server_threads,
                client_threads: options.client_threads,
                warmup: options.warmup,
                duration: options.duration,
            };
            Some(measure_floor(traffic).await?)
        }
        _ => None,
    };
    // A list view of K sees at most K others; the first to join, whose cursors everyone
    // sees, are the lowest indices, which are the movers.
    let seen_per_member = match options.view {
        View::Full => (movers * (members - 1)) as f64 / members as f64,
        View::List(k) => usize::from(k).min(movers).min(members - 1) as f64,
    };
    let expected =
        options.rooms.max(1) as f64 * members as f64 * seen_per_member * options.hz.min(flush_rate);
    Ok(CursorReport {
        rooms: options.rooms.max(1),
        members,
        movers,
        view: clients::view_label(options.view),
        hz: options.hz,
        cursor_interval_ms: interval * 1000.0,
        measured_seconds: seconds,
        moves_sent: total.moves_sent,
        entries_delivered: total.entries,
        entries_expected_per_second: expected,
        entries_per_second: total.entries as f64 / seconds,
        frames_delivered: total.frames,
        server_cpu_seconds: cpu,
        server_cpu_seconds_per_million_entries,
        server_cpu_ratio_to_floor: floor.as_ref().map(|floor| {
            server_cpu_seconds_per_million_entries / floor.server_cpu_seconds_per_million_entries
        }),
        floor,
        server_cpu_cores: cpu / seconds,
        latency: total.latencies.summary(),
        latency_budget_ms: interval * 1000.0 + 25.0,
        connections_lost: lost,
        most_users_per_cursors_frame: (!options.view.is_full())
            .then_some(total.most_users_per_frame),
        most_users_heard_per_member: (!options.view.is_full()).then_some(total.users_heard),
        cluster,
    })
}

/// Runs [`floor::measure`] on a thread of its own: it builds runtimes, which cannot be
/// done from inside this one.
async fn measure_floor(traffic: FloorTraffic) -> Result<FloorReport, BenchError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("floor".to_owned())
        .spawn(move || {
            let _ = done.send(floor::measure(&traffic));
        })?;
    match result.await {
        Ok(report) => Ok(report?),
        Err(_) => Err(BenchError::Io(std::io::Error::other(
            "the floor's thread ended without a report",
        ))),
    }
}
