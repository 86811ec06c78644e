//! `storm`: K clients, already connected, join one room at the same moment (a meeting
//! starting, a class logging in). Every client must end up seeing all K users.
//!
//! The work is quadratic by nature: client i receives a snapshot of the users before it
//! and an event for each user after it, so the clients together receive about K² user
//! entries whatever the server does. What the server controls is encoding each event
//! once, how fast it snapshots, and how much it buffers on the way.
//!
//! With a list view of `K` (protocol 1.1) the work is no longer quadratic: each client
//! must end up holding the room's `count` and its window, its own user plus the first
//! `K` others by `joinedAt`. Which users those are depends on the order in which the
//! server took the joins, so a client is complete when its window has the right size
//! and its last count is the room's, and once the storm is over the windows are checked
//! against the room's order as the server lists it (`GET /api/rooms/storm?limit=K+1`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use presence_protocol::View;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{check_failures, count, wait_for, Settings};
use crate::clients::{self, Incoming};
use crate::http;
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
    /// What each client asks to see of the room.
    pub view: View,
    /// Give up waiting for complete rosters after this long.
    pub timeout: Duration,
    /// Stop the run if the server's RSS passes this (the machine is shared; a storm of
    /// N clients can need memory quadratic in N).
    pub max_server_rss_bytes: u64,
}

#[derive(Default)]
struct Outcome {
    /// When the client's roster (or window and count) last became what it held at the end.
    complete_after: Option<Duration>,
    /// When its `presence:currentUsers`, the answer to its join, arrived.
    answered_after: Option<Duration>,
    /// A list view's window at the end, checked against the room's order afterwards.
    window: Option<Vec<usize>>,
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
        let (batch, view) = (options.batch, options.view);
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
            let join = clients::join_frame(&room, &format!("u{index}"), None, batch, view);
            tokio::select! {
                () = go.cancelled() => {}
                () = stop.cancelled() => return outcome,
            }
            if ws.send_text(join).await.is_err() {
                outcome.lost = true;
                return outcome;
            }
            let start = Duration::from_micros(started_at.load(Ordering::Relaxed));
            let mut sight = Sight::new(view, k);
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
                let Some(incoming) = clients::decode(&text) else {
                    continue;
                };
                match &incoming {
                    Incoming::CurrentUsers { ids, .. } => {
                        outcome.entries += ids.len() as u64;
                        if outcome.answered_after.is_none() {
                            outcome.answered_after = Some(epoch.elapsed().saturating_sub(start));
                        }
                    }
                    Incoming::UserJoined(_) => outcome.entries += 1,
                    Incoming::Diff { joined, .. } => outcome.entries += joined.len() as u64,
                    _ => {}
                }
                let was_complete = sight.is_complete();
                if !sight.apply(incoming) {
                    continue;
                }
                let is_complete = sight.is_complete();
                match (was_complete, is_complete) {
                    (false, true) => {
                        complete.fetch_add(1, Ordering::Relaxed);
                    }
                    // Only a list view's window can stop being complete (a user joining
                    // with the same `joinedAt` and a smaller id moves into it).
                    (true, false) => {
                        complete.fetch_sub(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                if is_complete && (!was_complete || sight.is_list()) {
                    outcome.complete_after = Some(epoch.elapsed().saturating_sub(start));
                } else if !is_complete {
                    outcome.complete_after = None;
                }
            }
            outcome.window = sight.into_window();
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
    let waited = epoch.elapsed().saturating_sub(burst_at);
    let after = server.sample()?;
    // Anything still in flight (there should be nothing) is counted too, and the server's
    // memory a moment after the storm shows what it keeps.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let settled = server.sample()?;
    // The room's order as the server holds it, read while everyone is still in it.
    let first = match options.view {
        View::List(list) => Some(first_users(server, &room, usize::from(list) + 1).await?),
        View::Full => None,
    };
    let catch_ups = sum_metric(server, "presenced_slow_client_catch_ups_total").await;
    stop.cancel();

    let mut times = Samples::new();
    let (mut frames, mut bytes, mut entries, mut lost, mut done) = (0, 0, 0, 0, 0);
    let (mut windows_wrong, mut last_answer, mut last_complete) =
        (0, Duration::ZERO, Duration::ZERO);
    let mut kinds = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        if let Ok(outcome) = task.await {
            frames += outcome.frames;
            for (kind, n) in &outcome.kinds {
                tally(&mut kinds, kind, *n);
            }
            bytes += outcome.bytes;
            entries += outcome.entries;
            lost += usize::from(outcome.lost);
            if let Some(answered) = outcome.answered_after {
                last_answer = last_answer.max(answered);
            }
            let is_right = match (&first, &outcome.window) {
                (Some(first), Some(window)) => {
                    let is_right = *window == expected_window(first, index);
                    windows_wrong += usize::from(!is_right);
                    is_right
                }
                _ => true,
            };
            if let (Some(after), true) = (outcome.complete_after, is_right) {
                times.record(after);
                last_complete = last_complete.max(after);
                done += 1;
            }
        }
    }
    // Each client's own moment when all are complete; the time waited when some never were.
    let all_complete = if done == joiners && done > 0 {
        last_complete
    } else {
        waited
    };
    // Without a peak reset (someone else's server), the peak is the process's lifetime peak.
    let peak = if peak_reset {
        after.peak_rss_bytes
    } else {
        after.peak_rss_bytes.max(after.rss_bytes)
    };
    Ok(StormReport {
        clients: k,
        batch: options.batch,
        view: clients::view_label(options.view),
        complete: done,
        windows_wrong,
        all_rosters_complete_seconds: all_complete.as_secs_f64(),
        last_join_answered_seconds: last_answer.as_secs_f64(),
        roster_complete: times.summary(),
        frames_received: frames,
        frames_by_type: kinds.into_iter().collect(),
        bytes_received: bytes,
        bytes_received_per_client: bytes as f64 / joiners.max(1) as f64,
        user_entries_received: entries,
        server_rss_before_bytes: before.rss_bytes,
        server_peak_rss_bytes: peak,
        server_peak_extra_rss_bytes: peak.saturating_sub(before.rss_bytes),
        server_rss_after_bytes: settled.rss_bytes,
        server_cpu_seconds: after.cpu.saturating_sub(before.cpu).as_secs_f64(),
        connections_lost: lost,
        slow_client_catch_ups: catch_ups,
        stopped_over_rss_limit: over_rss,
    })
}

/// The first `n` users of `room` in the server's order (`joinedAt`, then id), as bench
/// indices (`u7` is 7).
async fn first_users(
    server: &Server,
    room: &presence_protocol::RoomName,
    n: usize,
) -> Result<Vec<usize>, BenchError> {
    #[derive(Deserialize)]
    struct Listed {
        id: String,
    }
    #[derive(Deserialize)]
    struct Page {
        users: Vec<Listed>,
    }
    let path = format!("/api/rooms/{}?limit={n}", room.as_str());
    let body = http::get(&server.url, &path).await?;
    let page: Page = serde_json::from_str(&body).map_err(|error| BenchError::Http {
        what: format!("GET {path}"),
        reason: error.to_string(),
    })?;
    Ok(page
        .users
        .iter()
        .filter_map(|user| index_of(&user.id))
        .collect())
}

/// The window client `me` must hold when the room's order starts with `first` (the
/// first `K + 1` users): its own user plus the first `K` others, sorted.
fn expected_window(first: &[usize], me: usize) -> Vec<usize> {
    let mut window: Vec<usize> = if first.contains(&me) {
        first.to_vec()
    } else {
        let others = first.len().saturating_sub(1);
        first[..others].iter().copied().chain([me]).collect()
    };
    window.sort_unstable();
    window
}

/// A counter summed over the nodes' `/metrics`; 0 where it cannot be read.
async fn sum_metric(server: &Server, name: &str) -> u64 {
    let mut total = 0.0;
    for url in server.urls() {
        if let Ok(Some(value)) = http::metric(&url, name).await {
            total += value;
        }
    }
    total as u64
}

/// The bench index of a storm user id (`u7` is 7).
fn index_of(id: &str) -> Option<usize> {
    id.strip_prefix('u')?.parse().ok()
}

/// What one storm client holds of the room, by its view.
enum Sight {
    /// Everyone: complete when all `k` users are known.
    Full { roster: Roster, k: usize },
    /// A list view: complete when the window has its full size and the last count seen
    /// is the room's `k`. The ids are checked at the end.
    List {
        window: Vec<usize>,
        size: usize,
        count: u64,
        k: u64,
        is_answered: bool,
    },
}

impl Sight {
    fn new(view: View, k: usize) -> Self {
        match view {
            View::Full => Sight::Full {
                roster: Roster::new(k),
                k,
            },
            View::List(list) => Sight::List {
                window: Vec::with_capacity(usize::from(list) + 2),
                // Its own user plus K others, when the room has that many.
                size: 1 + usize::from(list).min(k.saturating_sub(1)),
                count: 0,
                k: k as u64,
                is_answered: false,
            },
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Sight::List { .. })
    }

    fn is_complete(&self) -> bool {
        match self {
            Sight::Full { roster, k } => roster.len() >= *k,
            Sight::List {
                window,
                size,
                count,
                k,
                is_answered,
            } => *is_answered && window.len() == *size && count == k,
        }
    }

    /// Applies a frame; whether it changed anything this sight tracks.
    fn apply(&mut self, incoming: Incoming) -> bool {
        match self {
            Sight::Full { roster, .. } => match incoming {
                // A snapshot replaces what came before: a slow reader's catch-up is a
                // fresh `currentUsers`.
                Incoming::CurrentUsers { ids, .. } => {
                    roster.clear();
                    ids.iter().for_each(|id| roster.insert(id));
                    true
                }
                Incoming::UserJoined(id) => {
                    roster.insert(&id);
                    true
                }
                Incoming::UserLeft(id) => {
                    roster.remove(&id);
                    true
                }
                Incoming::Diff { joined, left } => {
                    left.iter().for_each(|id| roster.remove(id));
                    joined.iter().for_each(|id| roster.insert(id));
                    true
                }
                _ => false,
            },
            Sight::List {
                window,
                count,
                is_answered,
                ..
            } => {
                let insert = |window: &mut Vec<usize>, id: &str| {
                    if let Some(index) = index_of(id) {
                        if let Err(at) = window.binary_search(&index) {
                            window.insert(at, index);
                        }
                    }
                };
                let remove = |window: &mut Vec<usize>, id: &str| {
                    if let Some(index) = index_of(id) {
                        if let Ok(at) = window.binary_search(&index) {
                            window.remove(at);
                        }
                    }
                };
                match incoming {
                    Incoming::CurrentUsers { ids, count: now } => {
                        window.clear();
                        ids.iter().for_each(|id| insert(window, id));
                        *count = now;
                        *is_answered = true;
                        true
                    }
                    Incoming::Count(now) => std::mem::replace(count, now) != now,
                    Incoming::UserJoined(id) => {
                        insert(window, &id);
                        true
                    }
                    Incoming::UserLeft(id) => {
                        remove(window, &id);
                        true
                    }
                    Incoming::Diff { joined, left } => {
                        left.iter().for_each(|id| remove(window, id));
                        joined.iter().for_each(|id| insert(window, id));
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// A list view's window at the end, sorted.
    fn into_window(self) -> Option<Vec<usize>> {
        match self {
            Sight::Full { .. } => None,
            Sight::List { window, .. } => Some(window),
        }
    }
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

    fn clear(&mut self) {
        self.known.fill(false);
        self.len = 0;
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
