//! `churn`: people arriving and going at a steady rate for a long while. Each life
//! connects, joins a room, moves its cursor, and then either leaves properly, or drops
//! its connection without a word and comes back to restore its session (then leaves),
//! or drops and never comes back (the reconnect grace must remove it).
//!
//! One observer per room stays connected throughout and keeps its roster from the
//! events it gets. At the end, after the last grace has run out, every observer must
//! see only itself, the server must hold nobody else (no ghosts), and the server's
//! memory must be back near where it stood before the run, after a short warm-up churn
//! (`--warmup`; the report also compares it with the cold server).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use presence_protocol::View;
use rand::Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{check_failures, Settings};
use crate::clients::{self, Incoming, Ws};
use crate::http;
use crate::report::ChurnReport;
use crate::server::Server;
use crate::stats::Samples;
use crate::BenchError;

/// Options of `churn`.
#[derive(Debug, Clone)]
pub struct ChurnOptions {
    /// New lives per second.
    pub rate: f64,
    /// How long new lives are started.
    pub duration: Duration,
    /// Rooms the lives spread over.
    pub rooms: usize,
    /// Mean time a life stays before it leaves or drops.
    pub lifetime: Duration,
    /// Share of lives that drop abruptly (half of them restore, half never come back).
    pub drop_fraction: f64,
    /// The server's `--reconnect-grace`: how long the bench waits for dropped sessions.
    pub reconnect_grace: Duration,
    /// How long the server idles after the last grace before its memory is measured
    /// (stale deadlines, e.g. heartbeat timers of gone connections, expire meanwhile).
    pub settle: Duration,
    /// A churn of this length (plus the grace and settle) runs before the memory
    /// baseline is read; zero reads it on the cold server.
    pub warmup: Duration,
}

/// How long the end of the run waits for every node and observer to agree that only
/// the observers are left (cross-node facts arrive a little later than local ones).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the server's RSS goes into the report's timeline.
const TIMELINE_STEP: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Leave,
    DropAndRestore,
    Abandon,
}

/// What the lives of one phase (warm-up or run) did.
#[derive(Default)]
struct Counters {
    lives: AtomicU64,
    left: AtomicU64,
    restored: AtomicU64,
    abandoned: AtomicU64,
    restore_failures: AtomicU64,
    failures: AtomicU64,
    /// Time from each join to its `presence:currentUsers`.
    join_latency: std::sync::Mutex<Samples>,
}

/// Joins `room` as `user` with session `session` and waits for the server's answer:
/// `Ok(true)` when it restored the session, `Ok(false)` for a fresh one.
async fn join(
    ws: &mut Ws,
    room: &presence_protocol::RoomName,
    user: &str,
    session: &str,
) -> Option<bool> {
    ws.send_text(clients::join_frame(
        room,
        user,
        Some(session),
        false,
        View::Full,
    ))
    .await
    .ok()?;
    let mut restored = false;
    let answer = async {
        while let Some(text) = clients::next_text(ws).await {
            match clients::decode(&text) {
                Some(Incoming::Restored) => restored = true,
                Some(Incoming::CurrentUsers { .. }) => return Some(()),
                _ => {}
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .ok()
        .flatten()?;
    Some(restored)
}

/// Moves the cursor every 100 ms for `span`, reading whatever arrives.
async fn wander(ws: &mut Ws, room: &presence_protocol::RoomName, span: Duration) -> bool {
    let until = Instant::now() + span;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut step = 0.0;
    while Instant::now() < until {
        tokio::select! {
            _ = tick.tick() => {
                step += 1.0;
                if ws.send_text(clients::cursor_frame(room, step, step)).await.is_err() {
                    return false;
                }
            }
            text = clients::next_text(ws) => if text.is_none() { return false },
            () = tokio::time::sleep_until(until) => break,
        }
    }
    true
}

#[allow(clippy::too_many_arguments)]
async fn life(
    url: String,
    restore_url: String,
    settings_sources: clients::Sources,
    index: usize,
    room: presence_protocol::RoomName,
    fate: Fate,
    span: Duration,
    counters: Arc<Counters>,
    grace: Duration,
) {
    let user = format!("l{index}");
    let session = format!("s{index}");
    let fail = || counters.failures.fetch_add(1, Ordering::Relaxed);
    let Ok(mut ws) = clients::connect(&url, settings_sources, index).await else {
        fail();
        return;
    };
    let sent_at = Instant::now();
    if join(&mut ws, &room, &user, &session).await.is_none() {
        fail();
        return;
    }
    if let Ok(mut samples) = counters.join_latency.lock() {
        samples.record(sent_at.elapsed());
    }
    if !wander(&mut ws, &room, span).await {
        fail();
        return;
    }
    match fate {
        Fate::Leave => {
            let _ = ws.send_text(clients::leave_frame(&room)).await;
            let _ = ws.close().await;
            counters.left.fetch_add(1, Ordering::Relaxed);
        }
        Fate::Abandon => {
            // No leave and no close frame: the socket just goes.
            drop(ws);
            counters.abandoned.fetch_add(1, Ordering::Relaxed);
        }
        Fate::DropAndRestore => {
            drop(ws);
            // Back well within the grace (at most half of it, and at most a second), or
            // it would not be a restore: a reconnect after the grace is a new session.
            let longest = (grace.as_millis() / 2).clamp(101, 1000) as u64;
            let away = Duration::from_millis(rand::rng().random_range(100..longest));
            tokio::time::sleep(away).await;
            let Ok(mut ws) = clients::connect(&restore_url, settings_sources, index + 1).await
            else {
                fail();
                return;
            };
            match join(&mut ws, &room, &user, &session).await {
                Some(true) => {
                    counters.restored.fetch_add(1, Ordering::Relaxed);
                }
                Some(false) => {
                    counters.restore_failures.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    fail();
                    return;
                }
            }
            let _ = wander(&mut ws, &room, Duration::from_millis(300)).await;
            let _ = ws.send_text(clients::leave_frame(&room)).await;
            let _ = ws.close().await;
        }
    }
}

/// A connection that stays in one room for the whole run, keeping its roster. `extra`
/// always holds how many users besides itself the roster lists.
async fn observe(
    mut ws: Ws,
    me: String,
    stop: CancellationToken,
    extra: Arc<AtomicUsize>,
) -> HashSet<String> {
    let mut roster = HashSet::new();
    loop {
        let text = tokio::select! {
            () = stop.cancelled() => break,
            text = clients::next_text(&mut ws) => text,
        };
        let Some(text) = text else { break };
        match clients::decode(&text) {
            Some(Incoming::CurrentUsers { ids, .. }) => roster = ids.into_iter().collect(),
            Some(Incoming::UserJoined(id)) => {
                roster.insert(id);
            }
            Some(Incoming::UserLeft(id)) => {
                roster.remove(&id);
            }
            _ => {}
        }
        let others = roster.len() - usize::from(roster.contains(&me));
        extra.store(others, Ordering::Relaxed);
    }
    roster.remove(&me);
    roster
}

/// Users each node holds beyond the observers (from its `GET /api/rooms`): 0 everywhere
/// once every departure has reached every node.
async fn excess_per_node(server: &Server, observers: usize) -> Result<Vec<usize>, BenchError> {
    let mut excess = Vec::with_capacity(server.node_count());
    for url in server.urls() {
        let held = http::rooms(&url).await?;
        let users: usize = held.iter().map(|(_, users)| users).sum();
        excess.push(users.saturating_sub(observers));
    }
    Ok(excess)
}

/// Where the next life's client indexes and node come from, across phases.
struct Numbering {
    /// The next free client index (each life takes two: its connection and its restore).
    index: usize,
    /// Lives started so far (picks the room and the node).
    lives: usize,
}

/// Starts lives at the configured rate for `duration`, then waits for them to end, for
/// the last grace to run out and for the settle time. `sampled` gets every server RSS
/// reading (every 500 ms) with the time since the phase began. Returns how long the
/// phase took.
#[allow(clippy::too_many_arguments)]
async fn churn_for(
    server: &Server,
    options: &ChurnOptions,
    settings: &Settings,
    rooms: &[presence_protocol::RoomName],
    duration: Duration,
    numbering: &mut Numbering,
    counters: &Arc<Counters>,
    mut sampled: impl FnMut(Duration, u64),
) -> Result<Duration, BenchError> {
    let progress = &settings.progress;
    let mut lives = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / options.rate.max(0.1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sample_tick = tokio::time::interval(Duration::from_millis(500));
    progress.set_length(duration.as_secs().max(1));
    progress.set_position(0);
    let began = Instant::now();
    let until = began + duration;
    let mut rng = rand::rng();
    while Instant::now() < until {
        tokio::select! {
            _ = tick.tick() => {
                let roll: f64 = rng.random();
                let fate = if roll < options.drop_fraction / 2.0 {
                    Fate::Abandon
                } else if roll < options.drop_fraction {
                    Fate::DropAndRestore
                } else {
                    Fate::Leave
                };
                let mean = options.lifetime.as_secs_f64();
                let span = Duration::from_secs_f64(rng.random_range(0.5 * mean..=1.5 * mean));
                let room = rooms[numbering.lives % rooms.len()].clone();
                counters.lives.fetch_add(1, Ordering::Relaxed);
                let counters = counters.clone();
                // Lives go to the nodes in turn; a restore goes to the next node (with
                // one node, the same one), as a load balancer might send it.
                let url = server.url_for(numbering.lives).to_owned();
                let restore_url = server.url_for(numbering.lives + 1).to_owned();
                numbering.lives += 1;
                let sources = settings.sources;
                let life_index = numbering.index;
                numbering.index += 2;
                lives.spawn(life(url, restore_url, sources, life_index, room, fate, span, counters, options.reconnect_grace));
            }
            _ = sample_tick.tick() => {
                sampled(began.elapsed(), server.sample()?.rss_bytes);
                progress.set_position(began.elapsed().as_secs());
                while lives.try_join_next().is_some() {}
            }
            Some(_) = lives.join_next(), if !lives.is_empty() => {}
        }
    }

    progress.set_message("churn: waiting for the last lives and the grace");
    let drain_limit = Instant::now() + options.lifetime * 2 + Duration::from_secs(40);
    while !lives.is_empty() && Instant::now() < drain_limit {
        tokio::select! {
            _ = lives.join_next() => {}
            _ = sample_tick.tick() => sampled(began.elapsed(), server.sample()?.rss_bytes),
        }
    }
    lives.abort_all();
    // The last abandoned sessions end one grace after their drop; give the timers a margin.
    let settle_until =
        Instant::now() + options.reconnect_grace + Duration::from_secs(2) + options.settle;
    while Instant::now() < settle_until {
        sample_tick.tick().await;
        sampled(began.elapsed(), server.sample()?.rss_bytes);
    }
    Ok(began.elapsed())
}

pub(super) async fn run(
    server: &Server,
    options: &ChurnOptions,
    settings: &Settings,
) -> Result<ChurnReport, BenchError> {
    let rooms: Vec<_> = (0..options.rooms.max(1))
        .map(|r| clients::room(&format!("churn-{r}")))
        .collect();
    let progress = &settings.progress;
    progress.set_message("churn: observers joining");

    // Observers use the first indexes; lives use the ones after.
    let stop_observers = CancellationToken::new();
    let mut observers = Vec::new();
    let mut observer_extras = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let mut ws = clients::connect(server.url_for(r), settings.sources, r)
            .await
            .map_err(|e| BenchError::Clients(format!("observer {r} cannot connect: {e}")))?;
        let me = format!("observer-{r}");
        join(&mut ws, room, &me, &format!("observer-session-{r}"))
            .await
            .ok_or_else(|| BenchError::Clients(format!("observer {r} cannot join")))?;
        let extra = Arc::new(AtomicUsize::new(0));
        observer_extras.push(extra.clone());
        observers.push(tokio::spawn(observe(ws, me, stop_observers.clone(), extra)));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cold = server.sample()?;
    let mut numbering = Numbering {
        index: rooms.len(),
        lives: 0,
    };

    // The warm-up is the same churn, shorter and left out of the counts: it runs every
    // code path once (pages of the binary, thread stacks, the allocator's metadata and
    // per-thread caches) so the baseline below is a server that has worked, and the end
    // of the run shows what the churn itself leaves behind.
    let mut warmup_peak = cold.rss_bytes;
    if !options.warmup.is_zero() {
        progress.set_message("churn: warming up");
        let warmup_counters = Arc::new(Counters::default());
        churn_for(
            server,
            options,
            settings,
            &rooms,
            options.warmup,
            &mut numbering,
            &warmup_counters,
            |_, rss| warmup_peak = warmup_peak.max(rss),
        )
        .await?;
        let lives = warmup_counters.lives.load(Ordering::Relaxed);
        let failures = warmup_counters.failures.load(Ordering::Relaxed);
        check_failures(failures as usize, lives as usize, "warm-up live")?;
    }
    let start = server.sample()?;

    let counters = Arc::new(Counters::default());
    let mut peak = start.rss_bytes;
    let mut timeline = Vec::new();
    let mut next_point = Duration::ZERO;
    progress.set_message("churn: running");
    let ran_for = churn_for(
        server,
        options,
        settings,
        &rooms,
        options.duration,
        &mut numbering,
        &counters,
        |elapsed, rss| {
            peak = peak.max(rss);
            if elapsed >= next_point {
                timeline.push((elapsed.as_secs(), rss));
                next_point += TIMELINE_STEP;
            }
        },
    )
    .await?;
    let end_sample = server.sample()?;
    timeline.push((ran_for.as_secs(), end_sample.rss_bytes));

    // Across nodes, departures are facts that reach the other nodes a little later:
    // wait (bounded) until every node holds only the observers and every observer's
    // roster is just itself. One node has converged already, so this returns at once.
    progress.set_message("churn: waiting for every node and observer to converge");
    let converge_started = Instant::now();
    let converge_limit = converge_started + CONVERGE_TIMEOUT;
    let mut excess = excess_per_node(server, rooms.len()).await?;
    loop {
        let observers_clean = observer_extras
            .iter()
            .all(|extra| extra.load(Ordering::Relaxed) == 0);
        if (excess.iter().all(|&e| e == 0) && observers_clean) || Instant::now() >= converge_limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        excess = excess_per_node(server, rooms.len()).await?;
    }
    let converge_wait = converge_started.elapsed();
    let ghosts = excess.iter().copied().max().unwrap_or(0);
    stop_observers.cancel();
    let mut converged = 0;
    for observer in observers {
        if let Ok(extra) = observer.await {
            converged += usize::from(extra.is_empty());
        }
    }
    let lives_started = counters.lives.load(Ordering::Relaxed);
    let failures = counters.failures.load(Ordering::Relaxed);
    check_failures(failures as usize, lives_started as usize, "live")?;
    let latency = counters
        .join_latency
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default()
        .summary();
    Ok(ChurnReport {
        rate_per_second: options.rate,
        duration_seconds: options.duration.as_secs_f64(),
        rooms: rooms.len(),
        lives: lives_started,
        left: counters.left.load(Ordering::Relaxed),
        abandoned: counters.abandoned.load(Ordering::Relaxed),
        restored: counters.restored.load(Ordering::Relaxed),
        restore_failures: counters.restore_failures.load(Ordering::Relaxed),
        failures,
        ghosts,
        ghosts_per_node: excess,
        convergence_wait_seconds: converge_wait.as_secs_f64(),
        observers_converged: converged,
        observers: rooms.len(),
        warmup_seconds: options.warmup.as_secs_f64(),
        server_rss_cold_bytes: cold.rss_bytes,
        server_warmup_peak_rss_bytes: warmup_peak,
        server_rss_start_bytes: start.rss_bytes,
        server_peak_rss_bytes: peak.max(end_sample.rss_bytes),
        server_rss_end_bytes: end_sample.rss_bytes,
        server_rss_end_ratio: end_sample.rss_bytes as f64 / start.rss_bytes.max(1) as f64,
        server_rss_end_to_cold_ratio: end_sample.rss_bytes as f64 / cold.rss_bytes.max(1) as f64,
        server_cpu_seconds: end_sample.cpu.saturating_sub(start.cpu).as_secs_f64(),
        join_ack: latency,
        server_rss_timeline: timeline,
    })
}
