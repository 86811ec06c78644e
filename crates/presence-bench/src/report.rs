//! What a run measured, as JSON (`--json`) or as a table for people.

use std::fmt::Write;

use serde::Serialize;

use crate::cluster::{
    ClusterReport, IDLE_NODE_BYTES_PER_REMOTE_USER_TARGET, IDLE_NODE_CPU_PERCENT_TARGET,
};
use crate::server::Placement;
use crate::stats::LatencySummary;

/// The result of one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Report {
    /// `idle`.
    Idle(IdleReport),
    /// `cursor`.
    Cursor(CursorReport),
    /// `storm`.
    Storm(StormReport),
    /// `churn`.
    Churn(ChurnReport),
}

/// `idle`: N connections joined to rooms of K, then left alone.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Connections asked for.
    pub connections: usize,
    /// Users per room.
    pub room_size: usize,
    /// The view every connection asked for: `full`, or `list:K`.
    pub view: String,
    /// Connections that joined (got `presence:currentUsers`).
    pub joined: usize,
    /// Connections that failed to connect or join.
    pub failed: usize,
    /// Connections the server closed while they idled.
    pub closed_while_idle: usize,
    /// Time from sending `presence:join` to its `presence:currentUsers`.
    pub join_ack: LatencySummary,
    /// Connects plus joins per second during the ramp.
    pub joins_per_second: f64,
    /// Server RSS before the first connection, bytes.
    pub server_rss_before_bytes: u64,
    /// Server RSS with every connection joined and idle, bytes.
    pub server_rss_idle_bytes: u64,
    /// (idle − before) / joined, bytes.
    pub server_rss_per_connection_bytes: f64,
    /// How many such connections 24 GiB would hold at this cost.
    pub projected_connections_in_24_gib: u64,
    /// Server CPU seconds spent while the connections idled (pings only), per second.
    pub server_idle_cpu_per_second: f64,
    /// Each node of a cluster run (`--nodes N`), CPU over the whole run; absent on one node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

/// `cursor`: rooms whose members move their pointers at a fixed rate.
#[derive(Debug, Clone, Serialize)]
pub struct CursorReport {
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Members per room that move.
    pub movers: usize,
    /// The view every member asked for: `full`, or `list:K`.
    pub view: String,
    /// Moves per mover per second.
    pub hz: f64,
    /// The server's cursor interval, ms.
    pub cursor_interval_ms: f64,
    /// Length of the measured window, s.
    pub measured_seconds: f64,
    /// Cursor messages the bench sent in the window.
    pub moves_sent: u64,
    /// Cursor entries delivered to clients in the window.
    pub entries_delivered: u64,
    /// Entries the room could have delivered: movers × (members − 1) × interval rate; with
    /// a list view of K, members × min(K, movers) × interval rate.
    pub entries_expected_per_second: f64,
    /// Delivered entries per second.
    pub entries_per_second: f64,
    /// `presence:cursors` frames received.
    pub frames_delivered: u64,
    /// Server CPU seconds in the window.
    pub server_cpu_seconds: f64,
    /// Server CPU seconds per million delivered entries.
    pub server_cpu_seconds_per_million_entries: f64,
    /// The same traffic's floor, measured right after the window (`--floor`).
    pub floor: Option<crate::floor::FloorReport>,
    /// `server_cpu_seconds_per_million_entries` over the floor's: the figure that
    /// carries over between quiet and busy spells of a shared machine.
    pub server_cpu_ratio_to_floor: Option<f64>,
    /// Server CPU share of one core, in the window.
    pub server_cpu_cores: f64,
    /// From a move leaving the bench to its entry arriving at another member.
    pub latency: LatencySummary,
    /// The target: p99 ≤ interval + 25 ms.
    pub latency_budget_ms: f64,
    /// Connections closed during the run.
    pub connections_lost: usize,
    /// List views: the most distinct users any one `presence:cursors` frame carried
    /// (at most K); absent for a full view, whose frames are not read that closely.
    pub most_users_per_cursors_frame: Option<usize>,
    /// List views: the most distinct users any one member got cursors from over the
    /// window (K while windows hold still).
    pub most_users_heard_per_member: Option<usize>,
    /// Each node of a cluster run (`--nodes N`), CPU over the measured window; absent
    /// on one node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

/// `storm`: K clients join one room at the same moment.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Clients.
    pub clients: usize,
    /// Whether they joined with `batch: true` (diffs instead of single events).
    pub batch: bool,
    /// The view every client asked for: `full`, or `list:K`.
    pub view: String,
    /// Clients whose roster reached every client; with a list view, clients that held
    /// the room's count and exactly their window (own user plus the first K others).
    pub complete: usize,
    /// List views: clients whose window at the end was not the one the room's order
    /// gives them (0 for a full view).
    pub windows_wrong: usize,
    /// From the joins leaving to the last roster becoming complete, s.
    pub all_rosters_complete_seconds: f64,
    /// From the joins leaving to the last join's answer (`presence:currentUsers`)
    /// arriving, s: how long the server took to take every join.
    pub last_join_answered_seconds: f64,
    /// Per client, from its join to its roster being complete.
    pub roster_complete: LatencySummary,
    /// Frames the clients received.
    pub frames_received: u64,
    /// Frames the clients received, by their `type` (e.g. `presence:userJoined`).
    pub frames_by_type: std::collections::BTreeMap<String, u64>,
    /// Payload bytes the clients received (WebSocket headers excluded).
    pub bytes_received: u64,
    /// `bytes_received` per client that took part.
    pub bytes_received_per_client: f64,
    /// User entries the clients received (snapshots plus events): about N² for N clients.
    pub user_entries_received: u64,
    /// Server RSS before the joins (connections open, nobody joined), bytes.
    pub server_rss_before_bytes: u64,
    /// Server peak RSS during the storm, bytes.
    pub server_peak_rss_bytes: u64,
    /// Peak minus before.
    pub server_peak_extra_rss_bytes: u64,
    /// Server RSS one second after the last roster completed, connections still open.
    pub server_rss_after_bytes: u64,
    /// Server CPU seconds from the joins to the last complete roster.
    pub server_cpu_seconds: f64,
    /// Connections closed by the server during the storm (e.g. 1013 for a full outbox).
    pub connections_lost: usize,
    /// Slow readers the server caught up with fresh snapshots instead of closing
    /// (`presenced_slow_client_catch_ups_total`, summed over the nodes).
    pub slow_client_catch_ups: u64,
    /// The run was stopped because the server's RSS passed `--max-server-rss`.
    pub stopped_over_rss_limit: bool,
}

/// `churn`: lives that connect, move, leave or drop (and restore) at a steady rate.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// New lives per second.
    pub rate_per_second: f64,
    /// How long lives were started, s.
    pub duration_seconds: f64,
    /// Rooms the lives spread over.
    pub rooms: usize,
    /// Lives started.
    pub lives: u64,
    /// Lives that left with `presence:leave`.
    pub left: u64,
    /// Lives dropped abruptly (no leave, no close frame) and never back: the grace ends them.
    pub abandoned: u64,
    /// Lives dropped abruptly that reconnected and restored their session.
    pub restored: u64,
    /// Restores refused (a new session instead of `presence:restored`).
    pub restore_failures: u64,
    /// Lives that failed to connect or join.
    pub failures: u64,
    /// Users the server still held at the end beyond the observers: should be 0.
    pub ghosts: usize,
    /// Users each node still held beyond the observers at the end (one entry per node).
    pub ghosts_per_node: Vec<usize>,
    /// How long the end of the run waited for every node and observer to converge
    /// (bounded; 0 when they already had).
    pub convergence_wait_seconds: f64,
    /// Observers whose roster was exactly the observers at the end.
    pub observers_converged: usize,
    /// Observers (one per room, connected throughout).
    pub observers: usize,
    /// Length of the warm-up churn before the baseline, s (0: none).
    pub warmup_seconds: f64,
    /// Server RSS after the observers joined, before the warm-up, bytes.
    pub server_rss_cold_bytes: u64,
    /// Peak server RSS during the warm-up, bytes.
    pub server_warmup_peak_rss_bytes: u64,
    /// Server RSS after the warm-up (and its grace) ended: the baseline, bytes.
    pub server_rss_start_bytes: u64,
    /// Peak server RSS during the run, bytes.
    pub server_peak_rss_bytes: u64,
    /// Server RSS after the last grace ended, bytes.
    pub server_rss_end_bytes: u64,
    /// end / start (the baseline after the warm-up).
    pub server_rss_end_ratio: f64,
    /// end / cold (the server before any life, which has not yet paged in its code).
    pub server_rss_end_to_cold_ratio: f64,
    /// Server CPU seconds over the churn.
    pub server_cpu_seconds: f64,
    /// Time from a join to its `presence:currentUsers`.
    pub join_ack: LatencySummary,
    /// (seconds since the churn began, server RSS bytes), every 10 s and at the end:
    /// shows whether memory plateaus (allocator high-water mark) or keeps growing (a leak).
    pub server_rss_timeline: Vec<(u64, u64)>,
}

/// One line of the human table.
struct Row {
    metric: String,
    value: String,
    target: &'static str,
}

fn row(metric: impl Into<String>, value: impl Into<String>, target: &'static str) -> Row {
    Row {
        metric: metric.into(),
        value: value.into(),
        target,
    }
}

fn bytes(n: f64) -> String {
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.2} KiB", n / 1024.0)
    } else if n < 0.0 {
        format!("-{}", bytes(-n))
    } else {
        format!("{n:.0} B")
    }
}

/// The rows of a cluster run: each node's memory and CPU, the redis-server's CPU and,
/// for a partitioned run, each idle node against the targets.
fn cluster_rows(cluster: &ClusterReport) -> Vec<Row> {
    let mut rows = vec![row(
        "cluster placement",
        match cluster.placement {
            Placement::RoundRobin => format!(
                "round-robin: each room's members spread over the {} nodes",
                cluster.nodes.len()
            ),
            Placement::Partitioned => format!(
                "partitioned: every room on node 0, nodes 1–{} serve none",
                cluster.nodes.len() - 1
            ),
        },
        "",
    )];
    rows.push(row(
        "CPU window",
        format!(
            "{:.1} s, {}",
            cluster.cpu_window_seconds, cluster.cpu_window
        ),
        "",
    ));
    let partitioned = cluster.placement == Placement::Partitioned;
    for (i, node) in cluster.nodes.iter().enumerate() {
        let role = match (partitioned, i) {
            (true, 0) => " (busy)",
            (true, _) => " (idle)",
            (false, _) => "",
        };
        rows.push(row(
            format!("node {i}{role}: users, RSS baseline → end, CPU"),
            format!(
                "{}, {} → {} ({}), {:.2} s",
                node.users,
                bytes(node.rss_baseline_bytes as f64),
                bytes(node.rss_end_bytes as f64),
                signed_bytes(node.rss_growth_bytes),
                node.cpu_window_seconds
            ),
            "",
        ));
        if partitioned && i > 0 {
            rows.push(row(
                format!("node {i} CPU / the busy node's"),
                match node.cpu_percent_of_busy_node {
                    Some(percent) => format!(
                        "{percent:.2} %: {}",
                        verdict(percent <= IDLE_NODE_CPU_PERCENT_TARGET)
                    ),
                    None => "not measured (the busy node spent no CPU)".to_owned(),
                },
                "≤ 2 %",
            ));
            rows.push(row(
                format!("node {i} RSS growth per remote user"),
                match node.rss_growth_per_remote_user_bytes {
                    Some(per_user) => format!(
                        "{}: {}",
                        signed_bytes(per_user),
                        verdict(per_user <= IDLE_NODE_BYTES_PER_REMOTE_USER_TARGET)
                    ),
                    None => "not measured (no user on the busy node)".to_owned(),
                },
                "≤ 50 B",
            ));
        }
    }
    rows.push(row(
        "redis-server CPU in the window",
        match &cluster.redis {
            Some(redis) => format!(
                "{:.2} s (RSS {} → {})",
                redis.cpu_window_seconds,
                bytes(redis.rss_start_bytes as f64),
                bytes(redis.rss_end_bytes as f64)
            ),
            None => "not read".to_owned(),
        },
        "",
    ));
    rows
}

fn verdict(is_met: bool) -> &'static str {
    if is_met {
        "met"
    } else {
        "MISSED"
    }
}

/// `bytes` with a sign, for growths.
fn signed_bytes(n: f64) -> String {
    if n < 0.0 {
        bytes(n)
    } else {
        format!("+{}", bytes(n))
    }
}

fn latency(l: &LatencySummary) -> String {
    format!(
        "p50 {:.1} / p99 {:.1} / p99.9 {:.1} / max {:.1} ms (n={})",
        l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
    )
}

impl Report {
    /// The scenario's name.
    pub fn name(&self) -> &'static str {
        match self {
            Report::Idle(_) => "idle",
            Report::Cursor(_) => "cursor",
            Report::Storm(_) => "storm",
            Report::Churn(_) => "churn",
        }
    }

    /// The per-node figures of a cluster run, for the scenarios that measure them.
    pub fn cluster(&self) -> Option<&ClusterReport> {
        match self {
            Report::Idle(r) => r.cluster.as_ref(),
            Report::Cursor(r) => r.cluster.as_ref(),
            Report::Storm(_) | Report::Churn(_) => None,
        }
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = self.scenario_rows();
        if let Some(cluster) = self.cluster() {
            rows.extend(cluster_rows(cluster));
        }
        rows
    }

    fn scenario_rows(&self) -> Vec<Row> {
        match self {
            Report::Idle(r) => vec![
                row(
                    "connections joined",
                    format!(
                        "{} of {} (rooms of {}, {} view), {} failed",
                        r.joined, r.connections, r.room_size, r.view, r.failed
                    ),
                    "",
                ),
                row("join ack latency", latency(&r.join_ack), ""),
                row(
                    "ramp rate",
                    format!("{:.0} joins/s", r.joins_per_second),
                    "",
                ),
                row(
                    "server RSS before / idle",
                    format!(
                        "{} / {}",
                        bytes(r.server_rss_before_bytes as f64),
                        bytes(r.server_rss_idle_bytes as f64)
                    ),
                    "",
                ),
                row(
                    "server RSS per joined connection",
                    bytes(r.server_rss_per_connection_bytes),
                    "≤ 6 KB at 15k",
                ),
                row(
                    "projected connections in 24 GiB",
                    format!("{}", r.projected_connections_in_24_gib),
                    "",
                ),
                row(
                    "server CPU while idle",
                    format!("{:.4} cores", r.server_idle_cpu_per_second),
                    "",
                ),
                row("closed while idle", format!("{}", r.closed_while_idle), "0"),
            ],
            Report::Cursor(r) => vec![
                row(
                    "load",
                    format!(
                        "{} room(s) × {} members ({} view), {} movers at {} Hz, interval {} ms",
                        r.rooms, r.members, r.view, r.movers, r.hz, r.cursor_interval_ms
                    ),
                    "",
                ),
                row(
                    "delivered entries/s",
                    format!(
                        "{:.0} (room capacity {:.0})",
                        r.entries_per_second, r.entries_expected_per_second
                    ),
                    "",
                ),
                row(
                    "frames delivered",
                    format!("{} in {:.1} s", r.frames_delivered, r.measured_seconds),
                    "",
                ),
                row(
                    "server CPU",
                    format!(
                        "{:.2} s ({:.1}% of a core)",
                        r.server_cpu_seconds,
                        r.server_cpu_cores * 100.0
                    ),
                    "",
                ),
                row(
                    "server CPU-s per million entries",
                    format!("{:.3}", r.server_cpu_seconds_per_million_entries),
                    "≤ 0.4",
                ),
                row(
                    "floor: the same traffic, bare tokio TCP",
                    match &r.floor {
                        Some(floor) => format!(
                            "{:.3} CPU-s per million entries ({} server thread(s), {} B frames); presenced is {:.2}× that",
                            floor.server_cpu_seconds_per_million_entries,
                            floor.server_threads,
                            floor.frame_bytes,
                            r.server_cpu_ratio_to_floor.unwrap_or(f64::NAN)
                        ),
                        None => "not measured (--floor)".to_owned(),
                    },
                    "",
                ),
                row("end-to-end latency", latency(&r.latency), ""),
                row(
                    "p99 budget (interval + 25 ms)",
                    format!(
                        "{:.0} ms: {}",
                        r.latency_budget_ms,
                        if r.latency.p99_ms <= r.latency_budget_ms {
                            "held"
                        } else {
                            "MISSED"
                        }
                    ),
                    "p99 ≤ budget",
                ),
                row(
                    "most users in one cursors frame / heard by one member",
                    match (r.most_users_per_cursors_frame, r.most_users_heard_per_member) {
                        (Some(frame), Some(member)) => format!("{frame} / {member}"),
                        _ => "not read (full view)".to_owned(),
                    },
                    "≤ K (list:K)",
                ),
                row("connections lost", format!("{}", r.connections_lost), "0"),
            ],
            Report::Storm(r) => vec![
                row(
                    "clients into one room",
                    format!("{} (batch: {}, view: {})", r.clients, r.batch, r.view),
                    "",
                ),
                row(
                    "rosters complete",
                    if r.view == "full" {
                        format!("{} of {}", r.complete, r.clients)
                    } else {
                        format!(
                            "{} of {} (count and window; {} windows wrong)",
                            r.complete, r.clients, r.windows_wrong
                        )
                    },
                    "all",
                ),
                row(
                    "time until every roster complete",
                    format!(
                        "{:.3} s ({:.0} ms after the last join's answer)",
                        r.all_rosters_complete_seconds,
                        (r.all_rosters_complete_seconds - r.last_join_answered_seconds) * 1000.0
                    ),
                    if r.view == "full" {
                        "≤ 3 s at 2,000"
                    } else {
                        "≤ 5 s at 10,000"
                    },
                ),
                row(
                    "per-client roster completion",
                    latency(&r.roster_complete),
                    "",
                ),
                row(
                    "received",
                    format!(
                        "{} frames, {}, {} user entries",
                        r.frames_received,
                        bytes(r.bytes_received as f64),
                        r.user_entries_received
                    ),
                    "",
                ),
                row(
                    "received per client",
                    bytes(r.bytes_received_per_client),
                    if r.view == "full" {
                        ""
                    } else {
                        "≤ 64 KB at 10,000"
                    },
                ),
                row(
                    "frames by type",
                    r.frames_by_type
                        .iter()
                        .map(|(kind, n)| format!("{n} {}", kind.trim_start_matches("presence:")))
                        .collect::<Vec<_>>()
                        .join(", "),
                    "",
                ),
                row(
                    "server RSS before / peak / 1 s after",
                    format!(
                        "{} / {} / {}",
                        bytes(r.server_rss_before_bytes as f64),
                        bytes(r.server_peak_rss_bytes as f64),
                        bytes(r.server_rss_after_bytes as f64)
                    ),
                    "",
                ),
                row(
                    "server peak extra RSS",
                    bytes(r.server_peak_extra_rss_bytes as f64),
                    if r.view == "full" {
                        "≤ 300 MB at 2,000"
                    } else {
                        "≤ 400 MB at 10,000"
                    },
                ),
                row("server CPU", format!("{:.2} s", r.server_cpu_seconds), ""),
                row("connections lost", format!("{}", r.connections_lost), "0"),
                row(
                    "slow readers caught up",
                    format!("{}", r.slow_client_catch_ups),
                    "",
                ),
                row(
                    "stopped over the RSS limit",
                    format!("{}", r.stopped_over_rss_limit),
                    "false",
                ),
            ],
            Report::Churn(r) => vec![
                row(
                    "rate",
                    format!(
                        "{:.0} lives/s for {:.0} s over {} rooms",
                        r.rate_per_second, r.duration_seconds, r.rooms
                    ),
                    "",
                ),
                row(
                    "lives",
                    format!(
                        "{} ({} left, {} restored then left, {} abandoned, {} failed)",
                        r.lives, r.left, r.restored, r.abandoned, r.failures
                    ),
                    "",
                ),
                row("restore failures", format!("{}", r.restore_failures), "0"),
                row("ghosts at the end", format!("{}", r.ghosts), "0"),
                row(
                    "ghosts per node / convergence wait",
                    format!(
                        "{:?} / {:.2} s",
                        r.ghosts_per_node, r.convergence_wait_seconds
                    ),
                    "",
                ),
                row(
                    "observers converged",
                    format!("{} of {}", r.observers_converged, r.observers),
                    "all",
                ),
                row("join ack latency", latency(&r.join_ack), ""),
                row(
                    "server RSS cold / after warm-up / peak / end",
                    format!(
                        "{} / {} ({:.0} s warm-up) / {} / {}",
                        bytes(r.server_rss_cold_bytes as f64),
                        bytes(r.server_rss_start_bytes as f64),
                        r.warmup_seconds,
                        bytes(r.server_peak_rss_bytes as f64),
                        bytes(r.server_rss_end_bytes as f64)
                    ),
                    "",
                ),
                row(
                    "server RSS end / after warm-up",
                    format!("{:.3}", r.server_rss_end_ratio),
                    "≤ 1.10",
                ),
                row(
                    "server RSS end / cold",
                    format!("{:.3}", r.server_rss_end_to_cold_ratio),
                    "",
                ),
                row("server CPU", format!("{:.2} s", r.server_cpu_seconds), ""),
            ],
        }
    }

    /// A plain-text table: metric, value, target.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let width = |f: fn(&Row) -> usize, title: &str| {
            rows.iter()
                .map(f)
                .max()
                .unwrap_or(0)
                .max(title.chars().count())
        };
        let w_metric = width(|r| r.metric.chars().count(), "metric");
        let w_value = width(|r| r.value.chars().count(), "value");
        let mut out = String::new();
        let _ = writeln!(out, "scenario: {}", self.name());
        let _ = writeln!(
            out,
            "{:<w_metric$}  {:<w_value$}  target",
            "metric", "value"
        );
        let _ = writeln!(
            out,
            "{}  {}  {}",
            "-".repeat(w_metric),
            "-".repeat(w_value),
            "-".repeat(14)
        );
        for r in rows {
            let _ = writeln!(
                out,
                "{:<w_metric$}  {:<w_value$}  {}",
                r.metric, r.value, r.target
            );
        }
        out
    }
}
