//! The deployment files (`Dockerfile`, `compose.yaml`, `deploy/presenced.service`,
//! `deploy/grafana-dashboard.json`) cannot run here (no Docker daemon, no systemd), so
//! this parses them and holds them to the real binary: every flag they pass and every
//! `PRESENCED_*` variable they set exists, and every metric the dashboard draws is one
//! `/metrics` serves.

use std::collections::BTreeSet;
use std::path::PathBuf;

use presence_testkit::PresencedCommand;
use yaml_rust2::{Yaml, YamlLoader};

fn repository_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|error| panic!("{}: {error}", file.display()))
}

/// The flags `presenced --help` lists.
fn flags() -> BTreeSet<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_presenced"))
        .arg("--help")
        .output()
        .expect("presenced --help");
    let help = String::from_utf8_lossy(&output.stdout);
    help.split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|flag| {
            flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .to_owned()
        })
        .filter(|flag| !flag.is_empty())
        .collect()
}

/// The variable a flag reads: `--node-ttl` is `PRESENCED_NODE_TTL`.
fn variable_of(flag: &str) -> String {
    format!("PRESENCED_{}", flag.replace('-', "_").to_uppercase())
}

fn assert_known_flags(source: &str, args: &[&str], flags: &BTreeSet<String>) {
    for arg in args {
        if let Some(flag) = arg.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                flags.contains(flag),
                "{source} passes --{flag}, which presenced does not know"
            );
        }
    }
}

#[test]
fn compose_runs_three_nodes_on_one_redis_with_settings_presenced_knows() {
    let flags = flags();
    let documents = YamlLoader::load_from_str(&repository_file("compose.yaml")).expect("YAML");
    let compose = &documents[0];
    let services = compose["services"].as_hash().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Yaml::as_str).collect();
    assert_eq!(names, ["redis", "node1", "node2", "node3"]);
    let mut secrets = BTreeSet::new();
    for name in ["node1", "node2", "node3"] {
        // yaml-rust2 does not merge `<<:` keys, so the shared part is read where it is.
        let node = &compose["services"][name];
        let shared = &compose["x-node"];
        assert_eq!(node["<<"], *shared, "{name} uses the shared node settings");
        assert!(
            node["ports"][0]
                .as_str()
                .is_some_and(|p| p.ends_with(":8080")),
            "{name}"
        );
        let command: Vec<&str> = shared["command"]
            .as_vec()
            .expect("command")
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_known_flags(name, &command, &flags);
        assert!(
            command
                .windows(2)
                .any(|w| w == ["--listen", "0.0.0.0:8080"]),
            "{command:?}"
        );
        let environment = shared["environment"].as_hash().expect("environment");
        for (key, value) in environment {
            let key = key.as_str().expect("a name");
            let known = flags.iter().any(|flag| variable_of(flag) == key);
            assert!(known, "{name} sets {key}, which presenced does not read");
            if key == "PRESENCED_CLUSTER_SECRET" {
                secrets.insert(value.as_str().expect("a secret").to_owned());
            }
        }
        assert_eq!(
            environment
                .get(&Yaml::String("PRESENCED_REDIS".into()))
                .and_then(Yaml::as_str),
            Some("redis://redis:6379/")
        );
        assert_eq!(shared["stop_signal"].as_str(), Some("SIGTERM"));
    }
    assert_eq!(secrets.len(), 1, "every node has the same cluster secret");
}

#[test]
fn the_systemd_unit_starts_and_stops_presenced_as_it_expects() {
    let flags = flags();
    let unit = repository_file("deploy/presenced.service");
    let line = |key: &str| -> &str {
        unit.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
    };
    let exec: Vec<&str> = line("ExecStart").split_whitespace().collect();
    assert!(exec[0].ends_with("/presenced"), "{exec:?}");
    assert_known_flags("ExecStart", &exec[1..], &flags);
    assert!(exec.contains(&"--state-file"), "a restart is invisible");
    assert_eq!(line("KillSignal"), "SIGTERM");
    assert!(
        line("ExecReload").contains("-HUP"),
        "SIGHUP reloads the certificate"
    );
    let limit: u64 = line("LimitNOFILE").parse().expect("a number");
    assert!(limit >= 65_536);
}

#[test]
fn the_image_is_built_in_stages_and_runs_as_a_user_with_known_flags() {
    let flags = flags();
    let dockerfile = repository_file("Dockerfile");
    let froms = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(froms >= 2, "multi-stage");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert_ne!(user.trim(), "root");
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_known_flags("CMD", &args, &flags);
}

#[tokio::test]
async fn every_metric_the_dashboard_draws_is_served() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&repository_file("deploy/grafana-dashboard.json")).expect("JSON");
    let mut drawn = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("presenced_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                drawn.insert(name);
            }
        }
    }
    assert!(drawn.len() >= 15, "{drawn:?}");
    let server = PresencedCommand::new(env!("CARGO_BIN_EXE_presenced"))
        .start()
        .await
        .expect("presenced starts");
    let metrics = server
        .get("/metrics", &[])
        .await
        .expect("GET /metrics")
        .body;
    let served: BTreeSet<&str> = metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    for name in &drawn {
        assert!(
            served.contains(name.as_str()),
            "the dashboard draws {name}, which /metrics does not serve"
        );
    }
}
