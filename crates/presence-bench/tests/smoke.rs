//! Proves the bench works end to end: each scenario runs tiny (seconds, a few dozen
//! connections) against the real `presenced`, and its JSON report is sane. It judges no
//! speed: timings on a shared machine are for docs/performance.md, not for asserts.
//!
//! The `three_nodes_*` tests run the scenarios with `--nodes 3`: the bench starts its own
//! `redis-server` and three nodes on it, with each room's members spread over the nodes
//! (`--partitioned`: every room on the first node, and the other two priced against it).
//! They need `redis-server` on PATH. Under `CI=true` a missing one fails the test;
//! elsewhere the test prints "skipped" and passes.

use std::process::Command;

use presence_testkit::{presenced_binary, redis_server_available, PresencedCommand};
use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    run(args)["report"].clone()
}

/// The whole JSON output (environment and report) of one run on a server it starts.
fn run(args: &[&str]) -> Value {
    let mut all = vec![
        "--server-bin".to_owned(),
        presenced_binary().display().to_string(),
    ];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    let value = run_bench(&all);
    assert_eq!(value["environment"]["server_started_by_bench"], true);
    value
}

/// `presence-bench --json --quiet ARGS…`, which must succeed; its JSON output.
fn run_bench(args: &[String]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_presence-bench"))
        .arg("--json")
        .arg("--quiet")
        .args(args)
        .output()
        .expect("presence-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "presence-bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {report:#}"))
}

#[test]
fn idle_joins_everyone_and_measures_memory() {
    let report = bench(&[
        "idle",
        "--connections",
        "40",
        "--room-size",
        "8",
        "--settle",
        "200ms",
    ]);
    assert_eq!(report["scenario"], "idle");
    assert_eq!(number(&report, "joined"), 40.0);
    assert_eq!(number(&report, "failed"), 0.0);
    assert_eq!(number(&report, "closed_while_idle"), 0.0);
    assert_eq!(report["join_ack"]["count"], 40);
    assert!(number(&report, "server_rss_idle_bytes") > 0.0);
    assert!(number(&report, "projected_connections_in_24_gib") > 0.0);
}

#[tokio::test]
async fn idle_measures_a_server_it_did_not_start() {
    // `--url` and `--server-pid`: the bench attaches to a running presenced, reads its
    // memory from /proc, and leaves it running.
    let mut server = PresencedCommand::new(presenced_binary())
        .start()
        .await
        .expect("presenced starts");
    let url = server.url();
    let pid = server.pid().to_string();
    let args = [
        "--url",
        &url,
        "--server-pid",
        &pid,
        "idle",
        "--connections",
        "20",
        "--room-size",
        "5",
        "--settle",
        "200ms",
    ]
    .map(str::to_owned);
    // The bench blocks this thread while it runs; the server's output is read meanwhile
    // by the runtime, so it runs off it.
    let value = tokio::task::spawn_blocking(move || run_bench(&args))
        .await
        .expect("the bench ran");
    let still_running = server.is_running();
    server.kill().await;
    assert_eq!(value["environment"]["server_started_by_bench"], false);
    assert_eq!(value["environment"]["server_pid"].to_string(), pid);
    let report = &value["report"];
    assert_eq!(number(report, "joined"), 20.0, "{report:#}");
    assert!(number(report, "server_rss_idle_bytes") > 0.0, "{report:#}");
    assert!(
        still_running,
        "the bench must leave an attached server running"
    );
}

#[test]
fn cursor_delivers_entries_with_latency() {
    // As docs/performance.md measures it: one thread for the bench, one for the server.
    let output = run(&[
        "cursor",
        "--members",
        "12",
        "--hz",
        "20",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--threads",
        "1",
        "--server-arg=--worker-threads=1",
        "--floor",
    ]);
    assert_eq!(output["environment"]["bench_threads"], 1);
    let report = output["report"].clone();
    assert_eq!(report["scenario"], "cursor");
    assert!(number(&report, "entries_delivered") > 0.0, "{report:#}");
    // The floor ran the same traffic: frames of the run's mean size, counted per entry.
    let floor = &report["floor"];
    assert!(number(floor, "frames") > 0.0, "{report:#}");
    assert_eq!(floor["server_threads"], 1);
    let mean_frame = number(floor, "frame_bytes");
    assert!(
        mean_frame > 20.0 && mean_frame < 12.0 * 200.0,
        "a frame of up to 11 entries: {report:#}"
    );
    // A tiny run may measure no floor CPU at all (the clock ticks at 10 ms): no ratio then.
    match report["server_cpu_ratio_to_floor"].as_f64() {
        Some(ratio) => assert!(ratio >= 0.0, "{report:#}"),
        None => assert_eq!(number(floor, "server_cpu_seconds"), 0.0, "{report:#}"),
    }
    assert!(number(&report, "moves_sent") > 0.0);
    assert!(report["latency"]["count"].as_u64() > Some(0));
    assert!(number(&report, "latency_budget_ms") == 75.0);
    assert_eq!(number(&report, "connections_lost"), 0.0);
}

#[test]
fn storm_completes_every_roster() {
    let report = bench(&["storm", "--clients", "40", "--timeout", "30s"]);
    assert_eq!(report["scenario"], "storm");
    assert_eq!(number(&report, "complete"), 40.0, "{report:#}");
    // Snapshots plus events: exactly one entry per (recipient, user) pair.
    assert_eq!(number(&report, "user_entries_received"), 40.0 * 40.0);
    assert!(number(&report, "bytes_received") > 0.0);
    assert_eq!(number(&report, "connections_lost"), 0.0);
}

#[test]
fn storm_with_list_views_completes_every_window() {
    // Issue 14: each client must hold the room's count and exactly its window, its own
    // user plus the first 2 others by joinedAt, as the server's order says afterwards.
    let report = bench(&[
        "storm",
        "--clients",
        "12",
        "--view",
        "list:2",
        "--timeout",
        "30s",
    ]);
    assert_eq!(report["view"], "list:2", "{report:#}");
    assert_eq!(number(&report, "complete"), 12.0, "{report:#}");
    assert_eq!(number(&report, "windows_wrong"), 0.0, "{report:#}");
    assert_eq!(number(&report, "connections_lost"), 0.0, "{report:#}");
    assert!(
        report["frames_by_type"]["presence:count"].as_u64() > Some(0),
        "{report:#}"
    );
    assert!(number(&report, "bytes_received_per_client") > 0.0);
}

#[test]
fn cursor_with_list_views_delivers_at_most_the_window() {
    let report = bench(&[
        "cursor",
        "--members",
        "8",
        "--movers",
        "4",
        "--view",
        "list:2",
        "--duration",
        "1s",
        "--warmup",
        "500ms",
    ]);
    assert_eq!(report["view"], "list:2", "{report:#}");
    assert!(number(&report, "entries_delivered") > 0.0, "{report:#}");
    let most = number(&report, "most_users_per_cursors_frame");
    assert!(most > 0.0 && most <= 2.0, "{report:#}");
    assert_eq!(number(&report, "connections_lost"), 0.0, "{report:#}");
}

#[test]
fn idle_fills_one_named_room() {
    // What scripts/demo-bots does: every connection in one room, as bot-N.
    let report = bench(&[
        "idle",
        "--connections",
        "10",
        "--room",
        "lobby",
        "--view",
        "list:0",
        "--settle",
        "200ms",
    ]);
    assert_eq!(number(&report, "joined"), 10.0, "{report:#}");
    assert_eq!(number(&report, "room_size"), 10.0, "{report:#}");
    assert_eq!(report["view"], "list:0", "{report:#}");
}

#[test]
fn storm_in_batch_mode_completes_every_roster() {
    let report = bench(&["storm", "--clients", "30", "--batch", "--timeout", "30s"]);
    assert_eq!(number(&report, "complete"), 30.0, "{report:#}");
}

/// A churn of seconds: short lives over three rooms, a 1 s grace, no settle time. The
/// rate and the warm-up are the caller's.
const TINY_CHURN: &[&str] = &[
    "churn",
    "--duration",
    "3s",
    "--rooms",
    "3",
    "--lifetime",
    "500ms",
    "--reconnect-grace",
    "1s",
    "--settle",
    "0s",
];

/// What every churn must end with: no failed life, no ghost, no refused restore, and
/// every observer's roster back to just itself.
fn assert_churn_clean(report: &Value) {
    assert_eq!(number(report, "failures"), 0.0, "{report:#}");
    assert_eq!(number(report, "ghosts"), 0.0, "{report:#}");
    assert_eq!(number(report, "restore_failures"), 0.0, "{report:#}");
    assert_eq!(report["observers_converged"], report["observers"]);
}

#[test]
fn churn_leaves_no_ghosts() {
    let report = bench(&[TINY_CHURN, &["--rate", "20", "--warmup", "1s"]].concat());
    assert_eq!(report["scenario"], "churn");
    assert!(number(&report, "lives") >= 20.0, "{report:#}");
    // The warm-up's lives (about 20) are not counted with the run's (about 60).
    assert!(number(&report, "lives") <= 62.0, "{report:#}");
    assert_eq!(number(&report, "warmup_seconds"), 1.0, "{report:#}");
    assert!(number(&report, "server_rss_cold_bytes") > 0.0, "{report:#}");
    assert_churn_clean(&report);
}

#[test]
fn rosters_of_150_arrive_whole() {
    // 150 users make a `presence:currentUsers` of ~28 KB, more than one read of the
    // client's buffer; the client must see one whole message.
    let report = bench(&["storm", "--clients", "150", "--timeout", "30s"]);
    assert_eq!(number(&report, "complete"), 150.0, "{report:#}");
    assert_eq!(number(&report, "user_entries_received"), 150.0 * 150.0);
    assert_eq!(number(&report, "connections_lost"), 0.0);
}

/// Runs the bench with `--nodes 3` and checks that the environment shows three nodes
/// started by the bench plus a Redis; returns the report.
fn bench_three_nodes(args: &[&str]) -> Value {
    let mut all = vec!["--nodes", "3"];
    all.extend_from_slice(args);
    let value = run(&all);
    let environment = &value["environment"];
    assert_eq!(environment["nodes"], 3, "{environment:#}");
    let nodes = environment["server_nodes"]
        .as_array()
        .expect("server_nodes");
    assert_eq!(nodes.len(), 3);
    let pids: std::collections::HashSet<_> = nodes.iter().map(|n| n["pid"].clone()).collect();
    assert_eq!(
        pids.len(),
        3,
        "three distinct node processes: {environment:#}"
    );
    assert!(nodes.iter().all(|n| n["rss_bytes"].as_u64() > Some(0)));
    assert!(
        environment["redis"]["pid"].as_u64().is_some(),
        "{environment:#}"
    );
    value["report"].clone()
}

#[test]
fn three_nodes_idle_joins_everyone() {
    if !redis_server_available("three_nodes_idle_joins_everyone") {
        return;
    }
    let report = bench_three_nodes(&[
        "idle",
        "--connections",
        "36",
        "--room-size",
        "6",
        "--settle",
        "200ms",
    ]);
    assert_eq!(number(&report, "joined"), 36.0, "{report:#}");
    assert_eq!(number(&report, "failed"), 0.0);
    assert_eq!(number(&report, "closed_while_idle"), 0.0);
    assert!(number(&report, "server_rss_idle_bytes") > 0.0);
}

#[test]
fn three_nodes_cursor_delivers_across_nodes() {
    if !redis_server_available("three_nodes_cursor_delivers_across_nodes") {
        return;
    }
    let report = bench_three_nodes(&[
        "cursor",
        "--members",
        "12",
        "--hz",
        "20",
        "--duration",
        "2s",
        "--warmup",
        "1s",
    ]);
    assert_eq!(number(&report, "connections_lost"), 0.0, "{report:#}");
    assert!(number(&report, "moves_sent") > 0.0);
    // With 12 members on 3 nodes, 8 of each member's 11 peers are on other nodes: a
    // receiver getting entries only from its own node would see at most 3/11 (27 %) of
    // the expected entries. Require more (35 %, leaving room for a loaded CI machine),
    // so cross-node cursors must flow.
    let seconds = number(&report, "measured_seconds");
    let expected = number(&report, "entries_expected_per_second") * seconds;
    let delivered = number(&report, "entries_delivered");
    assert!(
        delivered > expected * 0.35,
        "{delivered} entries of about {expected} expected: {report:#}"
    );
}

#[test]
fn three_nodes_storm_completes_every_roster() {
    if !redis_server_available("three_nodes_storm_completes_every_roster") {
        return;
    }
    let report = bench_three_nodes(&["storm", "--clients", "30", "--timeout", "30s"]);
    assert_eq!(number(&report, "complete"), 30.0, "{report:#}");
    assert!(number(&report, "user_entries_received") >= 30.0 * 30.0);
    assert_eq!(number(&report, "connections_lost"), 0.0);
}

#[test]
fn three_nodes_churn_leaves_no_ghosts_on_any_node() {
    if !redis_server_available("three_nodes_churn_leaves_no_ghosts_on_any_node") {
        return;
    }
    let report = bench_three_nodes(&[TINY_CHURN, &["--rate", "15", "--warmup", "0s"]].concat());
    assert!(number(&report, "lives") >= 15.0, "{report:#}");
    assert_eq!(report["ghosts_per_node"], serde_json::json!([0, 0, 0]));
    assert_churn_clean(&report);
}

/// Checks a partitioned run's cluster report: every joined user on node 0 and none on
/// the others, and each idle node priced against the busy one.
fn assert_partitioned(report: &Value, users: u64) {
    let cluster = &report["cluster"];
    assert_eq!(cluster["placement"], "partitioned", "{report:#}");
    assert!(number(cluster, "cpu_window_seconds") > 0.0, "{cluster:#}");
    let nodes = cluster["nodes"].as_array().expect("cluster.nodes");
    let users_per_node: Vec<_> = nodes.iter().map(|n| n["users"].as_u64()).collect();
    assert_eq!(
        users_per_node,
        [Some(users), Some(0), Some(0)],
        "{cluster:#}"
    );
    let busy = &nodes[0];
    assert!(busy["cpu_percent_of_busy_node"].is_null(), "{busy:#}");
    assert!(number(busy, "rss_end_bytes") > 0.0, "{busy:#}");
    for idle in &nodes[1..] {
        // Memory is always priced; the CPU share only if the busy node spent a tick
        // (/proc counts in 10 ms), which a tiny run may not.
        assert!(
            idle["rss_growth_per_remote_user_bytes"].as_f64().is_some(),
            "{idle:#}"
        );
        match idle["cpu_percent_of_busy_node"].as_f64() {
            Some(percent) => assert!(percent >= 0.0, "{idle:#}"),
            None => assert_eq!(number(busy, "cpu_window_seconds"), 0.0, "{cluster:#}"),
        }
    }
    assert!(
        cluster["redis"]["cpu_window_seconds"].as_f64() >= Some(0.0),
        "{cluster:#}"
    );
}

#[test]
fn three_nodes_partitioned_idle_puts_every_room_on_one_node() {
    if !redis_server_available("three_nodes_partitioned_idle_puts_every_room_on_one_node") {
        return;
    }
    let report = bench_three_nodes(&[
        "--partitioned",
        "idle",
        "--connections",
        "36",
        "--room-size",
        "6",
        "--settle",
        "200ms",
    ]);
    assert_eq!(number(&report, "joined"), 36.0, "{report:#}");
    assert_partitioned(&report, 36);
}

#[test]
fn three_nodes_partitioned_cursor_puts_every_room_on_one_node() {
    if !redis_server_available("three_nodes_partitioned_cursor_puts_every_room_on_one_node") {
        return;
    }
    let report = bench_three_nodes(&[
        "--partitioned",
        "cursor",
        "--rooms",
        "2",
        "--members",
        "6",
        "--hz",
        "20",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
    ]);
    assert_eq!(number(&report, "connections_lost"), 0.0, "{report:#}");
    assert!(number(&report, "entries_delivered") > 0.0, "{report:#}");
    assert_partitioned(&report, 12);
}

#[test]
fn partitioned_is_refused_without_a_cluster_or_for_storm_and_churn() {
    for (args, expected) in [
        (&["--partitioned", "idle"][..], "--nodes"),
        (&["--nodes", "3", "--partitioned", "storm"][..], "storm"),
        (&["--nodes", "3", "--partitioned", "churn"][..], "churn"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_presence-bench"))
            .args(args)
            .output()
            .expect("presence-bench runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(
            stderr.contains("--partitioned") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
