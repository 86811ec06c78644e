//! `storm`: K clients, already connected, join one room at the same moment (a meeting
//! starting, a class logging in). Every client must end up seeing all K users.
//!
//! The work is quadratic by nature: client i receives a snapshot of the users before it
//! and an event for each user after it, so the clients together receive about K² user
//! entries whatever the server does. What the server controls is encoding each event
//! once, how fast it snapshots, and how much it buffers on the way.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{check_failures, count, wait_for, Settings};
use crate::clients::{self, Incoming};
use crate::report::StormReport;
use crate::server::Server;
use crate::stats::Samples;
use crate::BenchError;

/// Options of `storm`.
#[derive(Debug, Clone)]
pub struct StormOptions {
    /// Clients joining the room.
    pub clients: usize,
    /// Join with `batch: true`: roster changes come as one diff per interval.
    pub batch: bool,
    /// Give up waiting for complete rosters after this long.
    pub timeout: Duration,
    /// Stop the run if the server's RSS passes this (the machine is shared; a storm of
    /// N clients can need memory quadratic in N).
    pub max_server_rss_bytes: u64,
}

#[derive(Default)]
struct Outcome {
    complete_after: Option<Duration>,
    frames: u64,
    bytes: u64,
    entries: u64,
    lost: bool,
    /// Frames by their `type`; a handful of kinds, so a short list.
    kinds: Vec<(String, u64)>,
}

/// The `type` of a server frame, read from its start (the server writes it first);
/// `"?"` if the frame does not start that way.
fn frame_type(text: &str) -> &str {
    text.strip_prefix(r#"{"type":""#)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?")
}

fn tally(kinds: &mut Vec<(String, u64)>, kind: &str, n: u64) {
    match kinds.iter_mut().find(|(k, _)| k == kind) {
        Some((_, count)) => *count += n,
        None => kinds.push((kind.to_owned(), n)),
    }
}

pub(super) async fn run(
    server: &Server,
    options: &StormOptions,
    settings: &Settings,
) -> Result<StormReport, BenchError> {
    let k = options.clients.max(1);
    let stop = CancellationToken::new();
    let go = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let complete = Arc::new(AtomicUsize::new(0));
    let started_at = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let progress = &settings.progress;
    progress.set_length(k as u64);
    progress.set_message("storm: connecting (not joined yet)");
    let room = clients::room("storm");

    let mut tasks = Vec::with_capacity(k);
    for index in 0..k {
        let url = server.url_for(index).to_owned();
        let sources = settings.sources;
        let room = room.clone();
        let (stop, go, gate) = (stop.clone(), go.clone(), gate.clone());
        let (connected, failed, complete) = (connected.clone(), failed.clone(), complete.clone());
        let started_at = started_at.clone();
        let batch = options.batch;
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let ws = {
                let Ok(_permit) = gate.acquire().await else {
                    return outcome;
                };
                clients::connect(&url, sources, index).await
            };
            let Ok(mut ws) = ws else {
                failed.fetch_add(1, Ordering::Relaxed);
                return outcome;
            };
            connected.fetch_add(1, Ordering::Relaxed);
            // Join prepared in advance, so the burst is only the sends.
            let join = clients::join_frame(&room, &format!("u{index}"), None, batch);
            tokio::select! {
                () = go.cancelled() => {}
                () = stop.cancelled() => return outcome,
            }
            if ws.send_text(join).await.is_err() {
                outcome.lost = true;
                return outcome;
            }
            let start = Duration::from_micros(started_at.load(Ordering::Relaxed));
            let mut roster = Roster::new(k);
            loop {
                let text = tokio::select! {
                    () = stop.cancelled() => break,
                    text = clients::next_text(&mut ws) => text,
                };
                let Some(text) = text else {
                    outcome.lost = true;
                    break;
                };
                outcome.frames += 1;
                outcome.bytes += text.len() as u64;
                tally(&mut outcome.kinds, frame_type(&text), 1);
                match clients::decode(&text) {
                    Some(Incoming::CurrentUsers(ids)) => {
                        outcome.entries += ids.len() as u64;
                        ids.iter().for_each(|id| roster.insert(id));
                    }
                    Some(Incoming::UserJoined(id)) => {
                        outcome.entries += 1;
                        roster.insert(&id);
                    }
                    Some(Incoming::UserLeft(id)) => roster.remove(&id),
                    Some(Incoming::Diff { joined, left }) => {
                        outcome.entries += joined.len() as u64;
                        left.iter().for_each(|id| roster.remove(id));
                        joined.iter().for_each(|id| roster.insert(id));
                    }
                    _ => {}
                }
                if outcome.complete_after.is_none() && roster.len() >= k {
                    outcome.complete_after = Some(epoch.elapsed().saturating_sub(start));
                    complete.fetch_add(1, Ordering::Relaxed);
                }
            }
            outcome
        }));
    }

    let ready = || count(&connected) + count(&failed);
    wait_for(ready, k, Duration::from_secs(60 + k as u64 / 50), progress).await;
    check_failures(count(&failed), k, "connect")?;
    let joiners = count(&connected);
    // Let the accept backlog and upgrades settle before the burst.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = server.sample()?;
    let peak_reset = server.reset_peak();
    progress.set_message("storm: joining");
    progress.set_position(0);
    let burst_at = epoch.elapsed();
    started_at.store(burst_at.as_micros() as u64, Ordering::Relaxed);
    go.cancel();
    let deadline = Instant::now() + options.timeout;
    let mut over_rss = false;
    while count(&complete) < joiners && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        progress.set_position(count(&complete) as u64);
        if server.sample()?.rss_bytes > options.max_server_rss_bytes {
            over_rss = true;
            break;
        }
    }
    let all_complete = epoch.elapsed().saturating_sub(burst_at);
    let after = server.sample()?;
    // Anything still in flight (there should be nothing) is counted too, and the server's
    // memory a moment after the storm shows what it keeps.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let settled = server.sample()?;
    stop.cancel();

    let mut times = Samples::new();
    let (mut frames, mut bytes, mut entries, mut lost, mut done) = (0, 0, 0, 0, 0);
    let mut kinds = Vec::new();
    for task in tasks {
        if let Ok(outcome) = task.await {
            frames += outcome.frames;
            for (kind, n) in &outcome.kinds {
                tally(&mut kinds, kind, *n);
            }
            bytes += outcome.bytes;
            entries += outcome.entries;
            lost += usize::from(outcome.lost);
            if let Some(after) = outcome.complete_after {
                times.record(after);
                done += 1;
            }
        }
    }
    // Without a peak reset (someone else's server), the peak is the process's lifetime peak.
    let peak = if peak_reset {
        after.peak_rss_bytes
    } else {
        after.peak_rss_bytes.max(after.rss_bytes)
    };
    Ok(StormReport {
        clients: k,
        batch: options.batch,
        complete: done,
        all_rosters_complete_seconds: all_complete.as_secs_f64(),
        roster_complete: times.summary(),
        frames_received: frames,
        frames_by_type: kinds.into_iter().collect(),
        bytes_received: bytes,
        user_entries_received: entries,
        server_rss_before_bytes: before.rss_bytes,
        server_peak_rss_bytes: peak,
        server_peak_extra_rss_bytes: peak.saturating_sub(before.rss_bytes),
        server_rss_after_bytes: settled.rss_bytes,
        server_cpu_seconds: after.cpu.saturating_sub(before.cpu).as_secs_f64(),
        connections_lost: lost,
        stopped_over_rss_limit: over_rss,
    })
}

/// A storm client's view of the room: which of the `u0`…`u{k-1}` users it knows, one
/// bit each (10 000 clients × 10 000 users would be a lot of `String`s).
struct Roster {
    known: Vec<bool>,
    len: usize,
}

impl Roster {
    fn new(k: usize) -> Self {
        Roster {
            known: vec![false; k],
            len: 0,
        }
    }

    fn slot(&mut self, id: &str) -> Option<&mut bool> {
        let index: usize = id.strip_prefix('u')?.parse().ok()?;
        self.known.get_mut(index)
    }

    fn insert(&mut self, id: &str) {
        if let Some(known) = self.slot(id) {
            if !*known {
                *known = true;
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(known) = self.slot(id) {
            if *known {
                *known = false;
                self.len -= 1;
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}
