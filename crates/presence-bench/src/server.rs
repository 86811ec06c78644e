//! The server under test: one `presenced` child the bench started, one already running,
//! or a cluster the bench started (its own `redis-server` and N `presenced` nodes on it).
//! Starting and stopping the children is `presence-testkit`'s; this module adds what a
//! measurement needs: which node each client connects to ([`Placement`]), `/proc`
//! samples summed over the nodes or per node ([`ClusterSample`]), and the log tails for
//! a report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_testkit::{Presenced, PresencedCommand, Redis, RedisError};
use serde::Serialize;

use crate::cluster::ClusterSample;
use crate::procfs::{self, ProcSample};
use crate::BenchError;

/// How long a started server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a started cluster node may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One `presenced` process: started by the bench, or attached to by URL and pid.
struct Node {
    url: String,
    pid: u32,
    process: Option<Presenced>,
}

/// The server being measured: one node, or N nodes sharing a Redis the bench started.
/// Memory and CPU are summed over the nodes; clients are placed on them by its
/// [`Placement`] ([`Server::url_for`]). Started children are killed when this is dropped.
pub struct Server {
    /// The first node's `http://127.0.0.1:PORT`.
    pub url: String,
    /// The first node's process id.
    pub pid: u32,
    nodes: Vec<Node>,
    redis: Option<Redis>,
    placement: Placement,
}

/// Which node of a cluster each client connects to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Client `i` on node `i mod N`: consecutive clients, and so the members of one
    /// room, sit on different nodes, and every fan-out crosses Redis.
    #[default]
    RoundRobin,
    /// Every client of every room on node 0, the busy node; the other nodes serve no
    /// room at all. What they still spend is what following rooms they do not serve
    /// costs them (issue 13).
    Partitioned,
}

impl Placement {
    /// The node (of `nodes`, counted from 0) client number `index` connects to.
    pub fn node_for(self, index: usize, nodes: usize) -> usize {
        match self {
            Placement::RoundRobin => index % nodes.max(1),
            Placement::Partitioned => 0,
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("urls", &self.urls())
            .field("pids", &self.pids())
            .field("started_by_bench", &self.is_started_by_bench())
            .field("redis_port", &self.redis.as_ref().map(Redis::port))
            .field("placement", &self.placement)
            .finish()
    }
}

/// One node's counters, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSample {
    /// `http://ADDR`.
    pub url: String,
    /// Process id.
    pub pid: u32,
    /// Resident memory now, bytes.
    pub rss_bytes: u64,
    /// CPU seconds since the process started.
    pub cpu_seconds: f64,
}

/// The `redis-server` of a cluster run, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct RedisSample {
    /// Process id.
    pub pid: u32,
    /// Resident memory now, bytes.
    pub rss_bytes: u64,
    /// CPU seconds since the process started.
    pub cpu_seconds: f64,
}

/// The `presenced` next to the running executable (same target directory).
pub fn sibling_binary() -> PathBuf {
    presence_testkit::sibling_presenced()
}

impl Node {
    /// Starts `bin ARGS… --listen 127.0.0.1:0` and waits for its `listening on` line.
    async fn start(bin: &Path, args: &[String]) -> Result<Node, BenchError> {
        let process = PresencedCommand::new(bin)
            .args(args)
            .start_timeout(START_TIMEOUT)
            .start()
            .await
            .map_err(|error| start_error(bin, error))?;
        Ok(Node {
            url: process.url(),
            pid: process.pid(),
            process: Some(process),
        })
    }

    /// Waits until `GET /readyz` answers 200 (the node's Redis subscription is up).
    async fn wait_ready(&mut self, bin: &Path) -> Result<(), BenchError> {
        match &mut self.process {
            Some(process) => process
                .wait_ready(READY_TIMEOUT)
                .await
                .map_err(|error| start_error(bin, error)),
            None => Ok(()),
        }
    }
}

fn start_error(bin: &Path, error: presence_testkit::StartError) -> BenchError {
    BenchError::ServerStart {
        path: bin.display().to_string(),
        reason: error.to_string(),
    }
}

/// Starts the cluster's `redis-server` on a free loopback port, without persistence.
async fn start_redis() -> Result<Redis, BenchError> {
    Redis::start()
        .await
        .map_err(|error| BenchError::RedisStart {
            reason: match error {
                RedisError::NotInstalled { .. } => format!("{error}; --nodes N > 1 needs it"),
                error => error.to_string(),
            },
        })
}

impl Server {
    /// Starts `bin --listen 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    /// The child inherits this process's (raised) open-file limit.
    pub async fn start(bin: &Path, args: &[String]) -> Result<Server, BenchError> {
        let node = Node::start(bin, args).await?;
        Ok(Server {
            url: node.url.clone(),
            pid: node.pid,
            nodes: vec![node],
            redis: None,
            placement: Placement::RoundRobin,
        })
    }

    /// Starts a cluster: `redis-server` on a free loopback port, then `nodes` copies of
    /// `bin --listen 127.0.0.1:0 --redis URL --redis-prefix UNIQUE ARGS…`, each awaited
    /// until it prints `listening on` and answers `/readyz` with 200. With `nodes` ≤ 1
    /// this is [`Server::start`]. On any failure everything started so far is killed.
    pub async fn start_cluster(
        bin: &Path,
        args: &[String],
        nodes: usize,
    ) -> Result<Server, BenchError> {
        if nodes <= 1 {
            return Server::start(bin, args).await;
        }
        let redis = start_redis().await?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!("bench-{}-{stamp}:", std::process::id());
        let mut cluster_args = vec![
            "--redis".to_owned(),
            redis.url(),
            "--redis-prefix".to_owned(),
            prefix,
        ];
        cluster_args.extend(args.iter().cloned());
        let mut server = Server {
            url: String::new(),
            pid: 0,
            nodes: Vec::with_capacity(nodes),
            redis: Some(redis),
            placement: Placement::RoundRobin,
        };
        for _ in 0..nodes {
            // On error `server` is dropped, which kills redis and the nodes started so far.
            let mut node = Node::start(bin, &cluster_args).await?;
            node.wait_ready(bin).await?;
            server.nodes.push(node);
        }
        server.url = server.nodes[0].url.clone();
        server.pid = server.nodes[0].pid;
        Ok(server)
    }

    /// A server someone else started, at `url` (`http://ADDR`) with process id `pid`.
    pub fn attach(url: &str, pid: u32) -> Result<Server, BenchError> {
        procfs::sample(pid)?;
        let url = url.trim_end_matches('/').to_owned();
        Ok(Server {
            url: url.clone(),
            pid,
            nodes: vec![Node {
                url,
                pid,
                process: None,
            }],
            redis: None,
            placement: Placement::RoundRobin,
        })
    }

    /// How many nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Places the clients of the runs to come (round-robin unless told otherwise).
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }

    /// How clients are placed on the nodes.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The node (counted from 0) client number `index` connects to.
    pub fn node_for(&self, index: usize) -> usize {
        self.placement.node_for(index, self.nodes.len())
    }

    /// The URL client number `index` connects to: by default the nodes in turn
    /// (round-robin), so consecutive clients, and so the members of one room, sit on
    /// different nodes; see [`Placement`].
    pub fn url_for(&self, index: usize) -> &str {
        &self.nodes[self.node_for(index)].url
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// Every node's process id.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.pid).collect()
    }

    /// Whether the bench started this server (and so knows its flags).
    pub fn is_started_by_bench(&self) -> bool {
        self.nodes.iter().all(|n| n.process.is_some())
    }

    /// Reads the server's memory and CPU counters, summed over the nodes (peak RSS is
    /// the sum of the nodes' peaks, which may not have been simultaneous: an upper bound).
    pub fn sample(&self) -> Result<ProcSample, BenchError> {
        let mut total = ProcSample::default();
        for node in &self.nodes {
            let s = procfs::sample(node.pid)?;
            total.rss_bytes += s.rss_bytes;
            total.peak_rss_bytes += s.peak_rss_bytes;
            total.cpu += s.cpu;
            total.threads += s.threads;
            total.open_files += s.open_files;
        }
        Ok(total)
    }

    /// Each node's memory and CPU now.
    pub fn node_samples(&self) -> Vec<NodeSample> {
        self.nodes
            .iter()
            .map(|node| {
                let s = procfs::sample(node.pid).unwrap_or_default();
                NodeSample {
                    url: node.url.clone(),
                    pid: node.pid,
                    rss_bytes: s.rss_bytes,
                    cpu_seconds: s.cpu_seconds(),
                }
            })
            .collect()
    }

    /// Every node's counters and the bench's `redis-server`'s, read now one after the
    /// other. A node that cannot be read is an error; a Redis that cannot be read is
    /// left out.
    pub fn cluster_sample(&self) -> Result<ClusterSample, BenchError> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let s = procfs::sample(node.pid)?;
            nodes.push(NodeSample {
                url: node.url.clone(),
                pid: node.pid,
                rss_bytes: s.rss_bytes,
                cpu_seconds: s.cpu_seconds(),
            });
        }
        let redis = self.redis_sample().map(|(pid, s)| RedisSample {
            pid,
            rss_bytes: s.rss_bytes,
            cpu_seconds: s.cpu_seconds(),
        });
        Ok(ClusterSample { nodes, redis })
    }

    /// The pid of the `redis-server` the bench started for a cluster, with its memory
    /// and CPU now.
    pub fn redis_sample(&self) -> Option<(u32, ProcSample)> {
        let pid = self.redis.as_ref()?.pid();
        Some((pid, procfs::sample(pid).ok()?))
    }

    /// Resets every node's peak RSS (see [`procfs::reset_peak`]); whether all worked.
    pub fn reset_peak(&self) -> bool {
        // Reset every node, even after one failed.
        let failed = self
            .nodes
            .iter()
            .filter(|node| !procfs::reset_peak(node.pid))
            .count();
        failed == 0
    }

    /// Whether every server process (and the bench's Redis) is still running.
    pub fn is_alive(&mut self) -> bool {
        let nodes = self.nodes.iter_mut().all(|node| match &mut node.process {
            Some(process) => process.is_running(),
            None => Path::new(&format!("/proc/{}", node.pid)).exists(),
        });
        let redis = self.redis.as_mut().is_none_or(Redis::is_running);
        nodes && redis
    }

    /// The last lines the server wrote, mostly its log (only for a started server);
    /// with several nodes each line says which node (and Redis) wrote it.
    pub fn log_tail(&self) -> Vec<String> {
        let output = |node: &Node| {
            node.process
                .as_ref()
                .map(Presenced::output)
                .unwrap_or_default()
        };
        if self.nodes.len() == 1 && self.redis.is_none() {
            return output(&self.nodes[0]);
        }
        let mut lines = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            lines.extend(
                output(node)
                    .into_iter()
                    .map(|line| format!("[node {i} {}] {line}", node.url)),
            );
        }
        if let Some(redis) = &self.redis {
            lines.extend(
                redis
                    .output()
                    .into_iter()
                    .map(|line| format!("[redis :{}] {line}", redis.port())),
            );
        }
        lines
    }

    /// Stops started nodes (SIGKILL) and the bench's Redis and waits for them; a no-op
    /// for an attached server.
    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(process) = &mut node.process {
                process.kill().await;
            }
        }
        if let Some(redis) = &mut self.redis {
            redis.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_spreads_a_room_and_partitioned_keeps_every_room_on_node_0() {
        let nodes_of = |placement: Placement| -> Vec<usize> {
            (0..7).map(|index| placement.node_for(index, 3)).collect()
        };
        assert_eq!(nodes_of(Placement::RoundRobin), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(nodes_of(Placement::Partitioned), [0; 7]);
        assert_eq!(Placement::RoundRobin.node_for(5, 1), 0);
    }
}
