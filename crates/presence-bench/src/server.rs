//! The server under test: one `presenced` child the bench started, one already running,
//! or a cluster the bench started (its own `redis-server` and N `presenced` nodes on it).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::procfs::{self, ProcSample};
use crate::BenchError;

/// How long a started server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a started cluster node may take to answer `/readyz` with 200, and Redis to
/// answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One `presenced` process.
struct Node {
    url: String,
    pid: u32,
    child: Option<Child>,
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The `redis-server` a cluster run started (killed on drop).
struct Redis {
    port: u16,
    pid: u32,
    child: Child,
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The server being measured: one node, or N nodes sharing a Redis the bench started.
/// Memory and CPU are summed over the nodes; clients are spread over them round-robin
/// ([`Server::url_for`]). Started children are killed when this is dropped.
pub struct Server {
    /// The first node's `http://127.0.0.1:PORT`.
    pub url: String,
    /// The first node's process id.
    pub pid: u32,
    nodes: Vec<Node>,
    redis: Option<Redis>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("urls", &self.urls())
            .field("pids", &self.pids())
            .field("started_by_bench", &self.is_started_by_bench())
            .field("redis_port", &self.redis.as_ref().map(|r| r.port))
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

/// The `presenced` next to the running executable (same target directory).
pub fn sibling_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live one level down, in target/<profile>/deps.
    let candidates = [dir.join("presenced"), dir.join("../presenced")];
    candidates
        .iter()
        .find(|path| path.exists())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}

fn push_line(tail: &Mutex<VecDeque<String>>, line: String) {
    if let Ok(mut tail) = tail.lock() {
        if tail.len() == 50 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// Keeps the last lines of a child's output stream in `tail`, until the stream ends.
fn follow(
    stream: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    tail: &Arc<Mutex<VecDeque<String>>>,
) {
    let tail = tail.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            push_line(&tail, line);
        }
    });
}

fn lines_of(tail: &Mutex<VecDeque<String>>) -> Vec<String> {
    tail.lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default()
}

impl Node {
    /// Starts `bin --listen 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    async fn start(bin: &Path, args: &[String]) -> Result<Node, BenchError> {
        let start_error = |reason: String| BenchError::ServerStart {
            path: bin.display().to_string(),
            reason,
        };
        let mut command = Command::new(bin);
        command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .spawn()
            .map_err(|error| start_error(error.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| start_error("exited at once".to_owned()))?;
        let log_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            follow(stderr, &log_tail);
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| start_error("no stdout".to_owned()))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let url = match first {
            Ok(Ok(Some(line))) => match line.strip_prefix("listening on ") {
                Some(url) => url.trim().to_owned(),
                None => return Err(start_error(format!("unexpected first line {line:?}"))),
            },
            Ok(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let tail = lines_of(&log_tail).join("\n");
                return Err(start_error(format!("exited before listening:\n{tail}")));
            }
            Err(_) => {
                return Err(start_error(format!(
                    "no `listening on` line within {START_TIMEOUT:?}"
                )))
            }
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Node {
            url,
            pid,
            child: Some(child),
            log_tail,
        })
    }

    /// Waits until `GET /readyz` answers 200 (the node's Redis subscription is up).
    async fn wait_ready(&mut self, bin: &Path) -> Result<(), BenchError> {
        let until = Instant::now() + READY_TIMEOUT;
        loop {
            let last = match crate::http::get(&self.url, "/readyz").await {
                Ok(_) => return Ok(()),
                Err(error) => error.to_string(),
            };
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| !matches!(child.try_wait(), Ok(None)));
            if exited || Instant::now() >= until {
                let tail = lines_of(&self.log_tail).join("\n");
                return Err(BenchError::ServerStart {
                    path: bin.display().to_string(),
                    reason: format!(
                        "node {} not ready within {READY_TIMEOUT:?} ({}; last answer: {last}):\n{tail}",
                        self.url,
                        if exited { "it exited" } else { "still running" },
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Redis {
    /// Starts `redis-server` on a free loopback port, without persistence, and waits
    /// until it answers `PING`.
    async fn start() -> Result<Redis, BenchError> {
        let redis_error = |reason: String| BenchError::RedisStart { reason };
        let mut last_error = String::new();
        // A free port found by binding port 0 may be taken again before redis binds it;
        // try a few.
        for _ in 0..3 {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                listener.local_addr()?.port()
            };
            let mut command = Command::new("redis-server");
            command
                .args(["--bind", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Err(redis_error(
                        "`redis-server` is not on PATH; --nodes N > 1 needs it (Debian/Ubuntu: \
                         apt-get install redis-server)"
                            .to_owned(),
                    ))
                }
                Err(error) => return Err(redis_error(error.to_string())),
            };
            let pid = child
                .id()
                .ok_or_else(|| redis_error("exited at once".to_owned()))?;
            let log_tail = Arc::new(Mutex::new(VecDeque::new()));
            if let Some(stdout) = child.stdout.take() {
                follow(stdout, &log_tail);
            }
            if let Some(stderr) = child.stderr.take() {
                follow(stderr, &log_tail);
            }
            let mut redis = Redis {
                port,
                pid,
                child,
                log_tail,
            };
            match redis.wait_ready().await {
                Ok(()) => return Ok(redis),
                Err(reason) => {
                    let _ = redis.child.kill().await;
                    last_error = format!("{reason}:\n{}", lines_of(&redis.log_tail).join("\n"));
                }
            }
        }
        Err(redis_error(last_error))
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let until = Instant::now() + READY_TIMEOUT;
        loop {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(format!("redis-server on port {} exited", self.port));
            }
            if ping(self.port).await {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// Whether a Redis on `127.0.0.1:port` answers `PING` with `+PONG`.
async fn ping(port: u16) -> bool {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer.starts_with(b"+PONG"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), exchange).await,
        Ok(Ok(true))
    )
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
        let redis = Redis::start().await?;
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
                child: None,
                log_tail: Arc::new(Mutex::new(VecDeque::new())),
            }],
            redis: None,
        })
    }

    /// How many nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The URL client number `index` connects to: the nodes in turn (round-robin), so
    /// consecutive clients, and so the members of one room, sit on different nodes.
    pub fn url_for(&self, index: usize) -> &str {
        &self.nodes[index % self.nodes.len()].url
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
        self.nodes.iter().all(|n| n.child.is_some())
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

    /// The pid of the `redis-server` the bench started for a cluster, with its memory
    /// and CPU now.
    pub fn redis_sample(&self) -> Option<(u32, ProcSample)> {
        let pid = self.redis.as_ref()?.pid;
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
        let nodes = self.nodes.iter_mut().all(|node| match &mut node.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => Path::new(&format!("/proc/{}", node.pid)).exists(),
        });
        let redis = self
            .redis
            .as_mut()
            .is_none_or(|redis| matches!(redis.child.try_wait(), Ok(None)));
        nodes && redis
    }

    /// The last lines the server wrote to standard error (only for a started server);
    /// with several nodes each line says which node (and Redis) wrote it.
    pub fn log_tail(&self) -> Vec<String> {
        if self.nodes.len() == 1 && self.redis.is_none() {
            return lines_of(&self.nodes[0].log_tail);
        }
        let mut lines = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            lines.extend(
                lines_of(&node.log_tail)
                    .into_iter()
                    .map(|line| format!("[node {i} {}] {line}", node.url)),
            );
        }
        if let Some(redis) = &self.redis {
            lines.extend(
                lines_of(&redis.log_tail)
                    .into_iter()
                    .map(|line| format!("[redis :{}] {line}", redis.port)),
            );
        }
        lines
    }

    /// Stops started nodes (SIGKILL) and the bench's Redis and waits for them; a no-op
    /// for an attached server.
    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child {
                let _ = child.kill().await;
            }
        }
        if let Some(redis) = &mut self.redis {
            let _ = redis.child.kill().await;
        }
    }
}
