//! `presence-bench`: runs one load scenario against presenced and reports what it cost
//! the server, as a table or as JSON. The scenarios live in the library; this file only
//! parses flags, raises the open-file limit, starts (or finds) the server, or with
//! `--nodes N` a cluster of N nodes on its own redis-server (`--partitioned`: every room
//! on the first node), and prints.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use presence_bench::clients::{self, Sources};
use presence_bench::limits::{self, FileLimit};
use presence_bench::scenario::{ChurnOptions, CursorOptions, IdleOptions, StormOptions};
use presence_bench::server::{NodeSample, Placement, RedisSample};
use presence_bench::{server, Scenario, Server, Settings};
use presence_protocol::{RoomName, View};
use serde::Serialize;

/// Load generator and reporter for presenced.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    scenario: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// The presenced binary to start [default: the `presenced` next to this binary].
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "url")]
    server_bin: Option<PathBuf>,
    /// Benchmark a server that is already running at this URL (http://IP:PORT) instead.
    #[arg(long, global = true, requires = "server_pid")]
    url: Option<String>,
    /// The process id of the server at --url, to read its memory and CPU from /proc.
    #[arg(long, global = true, requires = "url")]
    server_pid: Option<u32>,
    /// An extra flag for a started server, e.g. --server-arg=--max-connections=50000.
    #[arg(
        long = "server-arg",
        global = true,
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    server_args: Vec<String>,
    /// Start a cluster of this many presenced nodes on a redis-server the bench starts
    /// on a free port (needs `redis-server` on PATH), and spread the clients over the
    /// nodes in turn. Server memory and CPU are summed over the nodes.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), conflicts_with = "url")]
    nodes: u16,
    /// With --nodes N ≥ 2: connect every client of every room to node 0, the busy node,
    /// so the other nodes serve no room at all. Whatever they then spend is the price of
    /// following rooms they do not serve; the report gives each idle node's CPU as a
    /// percentage of the busy node's and its RSS growth per user on the busy node
    /// (targets: ≤ 2 % and ≤ 50 B). One busy node, rather than rooms spread over all
    /// nodes, keeps that price apart from each node's own work. idle and cursor only.
    #[arg(long, global = true)]
    partitioned: bool,
    /// Attach a webhook receiver: the started server sends its room events there, and
    /// the report says how many arrived and how fast. Run the same scenario without it
    /// to price them (the server CPU with, minus without, per event).
    #[arg(long, global = true, conflicts_with = "url")]
    webhooks: bool,
    /// Print the report as JSON on standard output.
    #[arg(long, global = true)]
    json: bool,
    /// Spread client connections over this many source addresses, 127.0.0.2 onwards.
    #[arg(long, global = true, default_value_t = 8)]
    sources: u8,
    /// Connects (TCP, upgrade, join) in flight at once while ramping up.
    #[arg(long, global = true, default_value_t = 128)]
    concurrency: usize,
    /// No progress bar.
    #[arg(long, global = true)]
    quiet: bool,
    /// Worker threads of the bench's own runtime [default: one per core]. On a machine
    /// shared with the server, one thread leaves the server a core of its own; the
    /// cursor scenario's CPU per entry depends on it (docs/performance.md).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N connections joined to rooms of K, then idle: join latency, server RSS per connection.
    Idle {
        /// Connections.
        #[arg(long, short = 'n', default_value_t = 1000)]
        connections: usize,
        /// Users per room.
        #[arg(long, short = 'k', default_value_t = 10)]
        room_size: usize,
        /// How long to hold everyone before measuring memory.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        settle: Duration,
        /// What each connection asks to see: `full`, or `list:K` (itself plus the first
        /// K others, and the room's count).
        #[arg(long, default_value = "full", value_parser = clients::parse_view)]
        view: View,
        /// Put every connection into this one room, as users bot-0, bot-1, … (ignores
        /// --room-size); with a long --settle, bots for the demo (scripts/demo-bots).
        #[arg(long, value_parser = parse_room)]
        room: Option<String>,
    },
    /// R rooms of M members moving at F Hz: entries/s, CPU per million entries, latency.
    Cursor {
        /// Rooms.
        #[arg(long, short = 'r', default_value_t = 1)]
        rooms: usize,
        /// Members per room.
        #[arg(long, short = 'm', default_value_t = 50)]
        members: usize,
        /// Members per room that move [default: all].
        #[arg(long)]
        movers: Option<usize>,
        /// What each member asks to see: `full`, or `list:K` (itself plus the first K
        /// others by joinedAt; cursors only of those).
        #[arg(long, default_value = "full", value_parser = clients::parse_view)]
        view: View,
        /// Moves per mover per second.
        #[arg(long, default_value_t = 20.0)]
        hz: f64,
        /// Measured window.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Moving before the window opens.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        warmup: Duration,
        /// The server's cursor interval (passed to a started server).
        #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
        cursor_interval: Duration,
        /// Members per room that time every entry they get (the rest only count).
        #[arg(long, default_value_t = 64)]
        latency_receivers: usize,
        /// After the window, run the same traffic through a bare tokio TCP server with
        /// this many threads (1: current-thread) and report presenced's CPU as a ratio
        /// of it, which busy and quiet spells of a shared machine both keep.
        #[arg(long, value_name = "SERVER_THREADS", num_args = 0..=1, default_missing_value = "1")]
        floor: Option<usize>,
    },
    /// K connected clients join one room at once: time until every roster is complete.
    Storm {
        /// Clients.
        #[arg(long, short = 'k', default_value_t = 2000)]
        clients: usize,
        /// Join with `batch: true` (one diff per interval instead of an event per user).
        #[arg(long)]
        batch: bool,
        /// What each client asks to see: `full` (complete when it knows all K users), or
        /// `list:L` (complete when it holds the room's count and its window: itself plus
        /// the first L others by joinedAt).
        #[arg(long, default_value = "full", value_parser = clients::parse_view)]
        view: View,
        /// Give up after this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Stop if the server's RSS passes this many MiB (the machine may be shared).
        #[arg(long, default_value_t = 8192)]
        max_server_rss_mib: u64,
    },
    /// Connect, move, leave or drop (and restore) at a steady rate: ghosts, RSS after.
    Churn {
        /// New lives per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// How long to keep starting lives.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Rooms.
        #[arg(long, default_value_t = 50)]
        rooms: usize,
        /// Mean life before leaving or dropping.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        lifetime: Duration,
        /// Share of lives that drop abruptly (half restore, half never return).
        #[arg(long, default_value_t = 1.0 / 3.0)]
        drop_fraction: f64,
        /// The server's reconnect grace (passed to a started server).
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        reconnect_grace: Duration,
        /// Idle time after the last grace before measuring the server's memory.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        settle: Duration,
        /// Churn this long (then wait out the grace) before reading the memory baseline,
        /// so the baseline is a server that has run every code path once; 0s reads it cold.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        warmup: Duration,
    },
}

impl Command {
    /// The scenario to run; `threads` is the bench's `--threads`.
    fn scenario(&self, threads: Option<u16>) -> Scenario {
        match *self {
            Command::Idle {
                connections,
                room_size,
                settle,
                view,
                ref room,
            } => Scenario::Idle(IdleOptions {
                connections,
                room_size,
                settle,
                view,
                room: room.clone(),
            }),
            Command::Cursor {
                rooms,
                members,
                movers,
                view,
                hz,
                duration,
                warmup,
                cursor_interval,
                latency_receivers,
                floor,
            } => Scenario::Cursor(CursorOptions {
                rooms,
                members,
                movers: movers.unwrap_or(members),
                view,
                hz,
                duration,
                warmup,
                cursor_interval,
                latency_receivers,
                floor_server_threads: floor,
                client_threads: threads.map(usize::from),
            }),
            Command::Storm {
                clients,
                batch,
                view,
                timeout,
                max_server_rss_mib,
            } => Scenario::Storm(StormOptions {
                clients,
                batch,
                view,
                timeout,
                max_server_rss_bytes: max_server_rss_mib * 1024 * 1024,
            }),
            Command::Churn {
                rate,
                duration,
                rooms,
                lifetime,
                drop_fraction,
                reconnect_grace,
                settle,
                warmup,
            } => Scenario::Churn(ChurnOptions {
                rate,
                duration,
                rooms,
                lifetime,
                drop_fraction,
                reconnect_grace,
                settle,
                warmup,
            }),
        }
    }

    /// Flags a started server needs so it matches what the bench assumes.
    fn server_args(&self) -> Vec<String> {
        match self {
            Command::Cursor {
                cursor_interval, ..
            } => vec![format!(
                "--cursor-interval={}ms",
                cursor_interval.as_millis()
            )],
            Command::Churn {
                reconnect_grace, ..
            } => vec![format!(
                "--reconnect-grace={}ms",
                reconnect_grace.as_millis()
            )],
            Command::Idle { .. } | Command::Storm { .. } => Vec::new(),
        }
    }

    /// Why `--partitioned` means nothing for this scenario, if it does not.
    fn refuses_partitioned(&self) -> Option<&'static str> {
        match self {
            Command::Idle { .. } | Command::Cursor { .. } => None,
            Command::Storm { .. } => Some(
                "storm has one room and reports no per-node figures;                  run idle or cursor with --partitioned",
            ),
            Command::Churn { .. } => Some(
                "churn restores sessions on the next node on purpose and reports no                  per-node figures; run idle or cursor with --partitioned",
            ),
        }
    }

    /// Client connections open at once, at most.
    fn peak_connections(&self) -> u64 {
        let n = match self {
            Command::Idle { connections, .. } => *connections,
            Command::Cursor { rooms, members, .. } => rooms * members,
            Command::Storm { clients, .. } => *clients,
            Command::Churn { .. } => 0,
        };
        n as u64
    }
}

/// Reads `--room`: a room name the server accepts.
fn parse_room(text: &str) -> Result<String, String> {
    RoomName::new(text)
        .map(|room| room.as_str().to_owned())
        .map_err(|error| error.to_string())
}

#[derive(Serialize)]
struct Environment {
    bench_version: &'static str,
    cores: usize,
    /// Worker threads of the bench's runtime (`--threads`); `None` is one per core, or
    /// `TOKIO_WORKER_THREADS` when set.
    bench_threads: Option<u16>,
    bench_file_limit: FileLimit,
    client_source_addresses: u8,
    server_url: String,
    server_pid: u32,
    server_started_by_bench: bool,
    server_args: Vec<String>,
    /// Nodes (1 unless --nodes); the report's server figures are their sums.
    nodes: usize,
    /// How clients were placed on the nodes (`partitioned`: every room on node 0).
    placement: Placement,
    /// Each node at the end of the run (RSS now, CPU since it started).
    server_nodes: Vec<NodeSample>,
    /// The redis-server of a cluster run at the end (not in the report's server sums).
    redis: Option<RedisSample>,
    /// What the webhook receiver got (`--webhooks`).
    webhooks: Option<WebhookSample>,
}

#[derive(Serialize)]
struct WebhookSample {
    /// Events received, a batch counting each of its events.
    events: u64,
    /// Requests received.
    requests: u64,
    /// From the server's start to the last delivery the bench waited for.
    seconds: f64,
    /// Events per second over those seconds.
    events_per_second: f64,
    /// The server's CPU seconds since it started, read when the deliveries were done.
    server_cpu_seconds: f64,
}

#[derive(Serialize)]
struct Output {
    environment: Environment,
    report: presence_bench::Report,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.global.partitioned {
        if cli.global.nodes < 2 {
            bail!("--partitioned needs a cluster to partition: add --nodes N with N ≥ 2");
        }
        if let Some(reason) = cli.scenario.refuses_partitioned() {
            bail!("--partitioned: {reason}");
        }
    }
    let limit = limits::raise_open_file_limit().context("cannot read or raise RLIMIT_NOFILE")?;
    if limit.soft > limit.soft_before {
        eprintln!(
            "presence-bench: raised the open-file limit from {} to {} (the hard limit; a started presenced inherits it)",
            limit.soft_before, limit.soft
        );
    }
    let needed = cli.scenario.peak_connections();
    if needed > limit.max_connections() {
        bail!(
            "{needed} connections need about {needed} file descriptors in this process (and as many in the server), \
             but the open-file limit is {} (hard limit {}). Use fewer connections, or raise the hard limit \
             as root (ulimit -Hn / prlimit) before running.",
            limit.soft,
            limit.hard
        );
    }

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.global.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(run(cli, limit))
}

async fn run(cli: Cli, limit: FileLimit) -> anyhow::Result<()> {
    let global = &cli.global;
    let mut server_args = cli.scenario.server_args();
    server_args.extend(global.server_args.iter().cloned());
    let receiver = if global.webhooks {
        let receiver = presence_bench::webhooks::Receiver::start()
            .await
            .context("cannot start the webhook receiver")?;
        server_args.extend([
            format!("--webhook-url={}", receiver.url),
            format!("--webhook-secret={:032x}", rand::random::<u128>()),
        ]);
        Some(receiver)
    } else {
        None
    };
    let started_at = std::time::Instant::now();
    let mut server = match (&global.url, global.server_pid) {
        (Some(url), Some(pid)) => Server::attach(url, pid)?,
        _ => {
            let bin = global
                .server_bin
                .clone()
                .unwrap_or_else(server::sibling_binary);
            Server::start_cluster(&bin, &server_args, usize::from(global.nodes)).await?
        }
    };
    if global.partitioned {
        server.set_placement(Placement::Partitioned);
    }
    if !server.is_started_by_bench() {
        server_args.clear();
    }

    let progress = if global.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let settings = Settings {
        sources: Sources::new(global.sources),
        concurrency: global.concurrency,
        progress: progress.clone(),
    };
    let outcome = presence_bench::scenario::run(
        &cli.scenario.scenario(global.threads),
        &mut server,
        &settings,
    )
    .await;
    progress.finish_and_clear();
    let alive = server.is_alive();
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            for line in server.log_tail() {
                eprintln!("presenced: {line}");
            }
            return Err(error.into());
        }
    };
    if !alive {
        for line in server.log_tail() {
            eprintln!("presenced: {line}");
        }
        bail!("the server died during the run");
    }

    let webhooks = match &receiver {
        Some(receiver) => Some(drain_webhooks(&server, receiver, started_at).await?),
        None => None,
    };
    let server_nodes = server.node_samples();
    let redis = server.redis_sample().map(|(pid, sample)| RedisSample {
        pid,
        rss_bytes: sample.rss_bytes,
        cpu_seconds: sample.cpu_seconds(),
    });
    let output = Output {
        environment: Environment {
            bench_version: env!("CARGO_PKG_VERSION"),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bench_threads: global.threads,
            bench_file_limit: limit,
            client_source_addresses: settings.sources.count(),
            server_url: server.url.clone(),
            server_pid: server.pid,
            server_started_by_bench: server.is_started_by_bench(),
            server_args,
            nodes: server.node_count(),
            placement: server.placement(),
            server_nodes,
            redis,
            webhooks,
        },
        report,
    };
    server.stop().await;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!(
            "presenced pid {} at {} ({}{}), {} cores, {} client source addresses",
            output.environment.server_pid,
            output.environment.server_url,
            if output.environment.nodes > 1 {
                format!(
                    "first of {} nodes on one redis-server{}, ",
                    output.environment.nodes,
                    if output.environment.placement == Placement::Partitioned {
                        ", every room on it"
                    } else {
                        ""
                    }
                )
            } else {
                String::new()
            },
            if output.environment.server_started_by_bench {
                "started by the bench"
            } else {
                "attached"
            },
            output.environment.cores,
            output.environment.client_source_addresses,
        );
        if output.environment.nodes > 1 {
            for (i, node) in output.environment.server_nodes.iter().enumerate() {
                println!(
                    "  node {i}: pid {} at {}, RSS {:.1} MiB, CPU {:.2} s since start",
                    node.pid,
                    node.url,
                    node.rss_bytes as f64 / 1048576.0,
                    node.cpu_seconds
                );
            }
            if let Some(redis) = &output.environment.redis {
                println!(
                    "  redis-server: pid {}, RSS {:.1} MiB, CPU {:.2} s since start (not in the server figures)",
                    redis.pid,
                    redis.rss_bytes as f64 / 1048576.0,
                    redis.cpu_seconds
                );
            }
        }
        print!("{}", output.report.table());
        if let Some(webhooks) = &output.environment.webhooks {
            println!(
                "webhooks: {} events in {} requests, {:.0} events/s over {:.1} s; server CPU {:.2} s since start",
                webhooks.events,
                webhooks.requests,
                webhooks.events_per_second,
                webhooks.seconds,
                webhooks.server_cpu_seconds
            );
        }
    }
    Ok(())
}

/// Waits until the server has delivered every event it queued (its own counters say
/// so), then reads what the receiver got.
async fn drain_webhooks(
    server: &Server,
    receiver: &presence_bench::webhooks::Receiver,
    started_at: std::time::Instant,
) -> anyhow::Result<WebhookSample> {
    use std::sync::atomic::Ordering;
    let count = |metrics: &str, outcome: &str| -> u64 {
        let series = format!("presenced_webhook_events_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = presence_bench::http::get(&server.url, "/metrics").await?;
        let queued = count(&metrics, "queued");
        let settled = count(&metrics, "delivered")
            + count(&metrics, "dropped_expired")
            + count(&metrics, "claimed_elsewhere");
        if settled >= queued {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("webhooks: {settled} of {queued} events settled after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started_at.elapsed().as_secs_f64();
    let events = receiver.received.events.load(Ordering::Relaxed);
    let server_cpu_seconds = server
        .node_samples()
        .iter()
        .map(|node| node.cpu_seconds)
        .sum();
    Ok(WebhookSample {
        events,
        requests: receiver.received.requests.load(Ordering::Relaxed),
        seconds,
        events_per_second: events as f64 / seconds.max(f64::EPSILON),
        server_cpu_seconds,
    })
}
