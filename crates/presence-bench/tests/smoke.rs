//! Proves the bench works end to end: each scenario runs tiny (seconds, a few dozen
//! connections) against the real `presenced`, and its JSON report is sane. It judges no
//! speed: timings on a shared machine are for docs/performance.md, not for asserts.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The `presenced` next to the bench binary; built first if this package was tested alone.
fn presenced() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_presence-bench"));
    let sibling = bench.with_file_name("presenced");
    if !sibling.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "presence-server", "--bin", "presenced"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building presenced failed");
    }
    assert!(sibling.exists(), "no presenced at {}", sibling.display());
    sibling
}

fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_presence-bench"))
        .arg("--json")
        .arg("--quiet")
        .arg("--server-bin")
        .arg(presenced())
        .args(args)
        .output()
        .expect("presence-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "presence-bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(value["environment"]["server_started_by_bench"], true);
    value["report"].clone()
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

#[test]
fn cursor_delivers_entries_with_latency() {
    let report = bench(&[
        "cursor",
        "--members",
        "12",
        "--hz",
        "20",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
    ]);
    assert_eq!(report["scenario"], "cursor");
    assert!(number(&report, "entries_delivered") > 0.0, "{report:#}");
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
fn storm_in_batch_mode_completes_every_roster() {
    let report = bench(&["storm", "--clients", "30", "--batch", "--timeout", "30s"]);
    assert_eq!(number(&report, "complete"), 30.0, "{report:#}");
}

#[test]
fn churn_leaves_no_ghosts() {
    let report = bench(&[
        "churn",
        "--rate",
        "20",
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
    ]);
    assert_eq!(report["scenario"], "churn");
    assert!(number(&report, "lives") >= 20.0, "{report:#}");
    assert_eq!(number(&report, "failures"), 0.0, "{report:#}");
    assert_eq!(number(&report, "ghosts"), 0.0, "{report:#}");
    assert_eq!(number(&report, "restore_failures"), 0.0, "{report:#}");
    assert_eq!(report["observers_converged"], report["observers"]);
}

#[test]
fn rosters_larger_than_a_fragment_arrive_whole() {
    // 150 users make a `presence:currentUsers` of ~28 KB, which the server sends as
    // WebSocket fragments of 16 KiB; the client must see one whole message.
    let report = bench(&["storm", "--clients", "150", "--timeout", "30s"]);
    assert_eq!(number(&report, "complete"), 150.0, "{report:#}");
    assert_eq!(number(&report, "user_entries_received"), 150.0 * 150.0);
    assert_eq!(number(&report, "connections_lost"), 0.0);
}
