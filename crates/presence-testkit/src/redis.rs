//! Private Redis servers on free loopback ports, without persistence: one
//! ([`Redis`]), or a local Redis Cluster of several masters ([`RedisCluster`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::Instant;

use crate::child::ChildProcess;
use crate::ports::{free_cluster_port, free_port};

/// How long a started `redis-server` may take to answer `PING`, and a new cluster to
/// report `cluster_state:ok`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often readiness is asked.
const POLL: Duration = Duration::from_millis(50);

/// How long one command to Redis may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A free port found by binding port 0 may be taken again before Redis binds it: this
/// many ports are tried.
const START_ATTEMPTS: usize = 3;

/// Why a Redis could not be started.
///
/// Its `Debug` is its `Display`, so that `.expect(…)` prints the output as lines.
#[derive(thiserror::Error)]
pub enum RedisError {
    /// The program is not on PATH.
    #[error("`{program}` is not on PATH (Debian/Ubuntu: apt-get install redis-server)")]
    NotInstalled {
        /// `redis-server` or `redis-cli`.
        program: &'static str,
    },
    /// Running it failed for another reason, or no free port could be found.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// `redis-server` or `redis-cli`.
        program: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// It started but did not answer `PING` in time, or exited.
    #[error("redis-server on port {port} {problem}; its output:\n{output}")]
    NotReady {
        /// Its port.
        port: u16,
        /// What went wrong.
        problem: String,
        /// The last lines it wrote.
        output: String,
    },
    /// `redis-cli --cluster create` failed.
    #[error("redis-cli --cluster create failed ({status}):\n{output}")]
    ClusterCreate {
        /// How it ended.
        status: String,
        /// What it wrote.
        output: String,
    },
    /// The cluster never reported `cluster_state:ok`.
    #[error(
        "the cluster on ports {ports:?} did not report cluster_state:ok within \
         {timeout:?}; last `cluster info`:\n{info}"
    )]
    ClusterNotOk {
        /// The masters' ports.
        ports: Vec<u16>,
        /// How long it was given.
        timeout: Duration,
        /// The last answer, or why there was none.
        info: String,
    },
}

impl fmt::Debug for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether `redis-server` can run here, for tests that need it. Where it cannot, under
/// `CI=true` this panics, so Redis tests never silently stop running in CI; elsewhere it
/// prints "`test`: skipped: …" and returns `false`.
pub fn redis_server_available(test: &str) -> bool {
    let found = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        let ci = std::env::var("CI").is_ok_and(|value| value == "true");
        assert!(
            !ci,
            "{test}: redis-server is not on PATH, and CI=true: install it \
             (apt-get install redis-server)"
        );
        eprintln!("{test}: skipped: redis-server is not on PATH");
    }
    found
}

/// A `redis-server` this process started on a loopback port, saving nothing to disk;
/// killed when dropped.
#[derive(Debug)]
pub struct Redis {
    process: ChildProcess,
    port: u16,
}

impl Redis {
    /// Starts one on a free port and waits until it answers `PING`.
    pub async fn start() -> Result<Redis, RedisError> {
        Redis::start_on_free_port(free_port, &[]).await
    }

    /// Starts one on `port` (say, where a killed one was) and waits for `PING`.
    pub async fn start_on(port: u16) -> Result<Redis, RedisError> {
        Redis::spawn(port, &[]).await
    }

    /// Tries a few ports from `pick`, each with `extra` arguments.
    async fn start_on_free_port(
        pick: fn() -> io::Result<u16>,
        extra: &[&str],
    ) -> Result<Redis, RedisError> {
        let mut attempt = 1;
        loop {
            let port = pick().map_err(|source| RedisError::Spawn {
                program: "redis-server",
                source,
            })?;
            match Redis::spawn(port, extra).await {
                Err(RedisError::NotReady { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                result => return result,
            }
        }
    }

    async fn spawn(port: u16, extra: &[&str]) -> Result<Redis, RedisError> {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(extra);
        let mut process = ChildProcess::spawn(&mut command, false).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                RedisError::NotInstalled {
                    program: "redis-server",
                }
            } else {
                RedisError::Spawn {
                    program: "redis-server",
                    source,
                }
            }
        })?;
        if let Some(stdout) = process.take_stdout() {
            process.output().follow(stdout, false);
        }
        let mut redis = Redis { process, port };
        if let Err(problem) = redis.wait_for_pong().await {
            redis.kill().await;
            return Err(RedisError::NotReady {
                port,
                problem,
                output: redis.process.output().render(),
            });
        }
        Ok(redis)
    }

    async fn wait_for_pong(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                return Err("exited".to_owned());
            }
            if matches!(self.command(&["PING"]).await, Ok(answer) if answer == "PONG") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("did not answer PING within {READY_TIMEOUT:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The last lines it wrote.
    pub fn output(&self) -> Vec<String> {
        self.process.output().lines()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGKILL, as a crash would, and waits until it is gone (its port is free again).
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Sends one command and returns its answer as text: a simple or bulk string, or an
    /// integer. An error answer, an array or no answer in time is an `Err`.
    pub async fn command(&self, args: &[&str]) -> io::Result<String> {
        let exchange = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
            let mut request = format!("*{}\r\n", args.len());
            for arg in args {
                request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
            stream.write_all(request.as_bytes()).await?;
            read_reply(&mut BufReader::new(stream)).await
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from redis"))?
    }
}

/// Reads one RESP reply that is not an array.
async fn read_reply(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(io::Error::other(rest.to_owned())),
        "$" => {
            let length: usize = rest
                .parse()
                .map_err(|_| invalid(format!("bad bulk length {rest:?}")))?;
            let mut bulk = vec![0; length + 2];
            reader.read_exact(&mut bulk).await?;
            bulk.truncate(length);
            String::from_utf8(bulk).map_err(|error| invalid(error.to_string()))
        }
        _ => Err(invalid(format!("unexpected reply {line:?}"))),
    }
}

/// Names each cluster's directory apart from the others this process made.
static CLUSTERS: AtomicU64 = AtomicU64::new(0);

/// A local Redis Cluster: several masters with `--cluster-enabled yes`, each on a free
/// port whose bus port (`+ 10000`) is free too, joined by `redis-cli --cluster create`
/// and holding all 16384 slots. Killed, and its files removed, when dropped.
pub struct RedisCluster {
    masters: Vec<Redis>,
    dir: PathBuf,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports())
            .finish()
    }
}

impl RedisCluster {
    /// Starts `masters` masters (`redis-cli` wants at least 3), creates the cluster,
    /// and waits until every node says `cluster_state:ok`.
    pub async fn start(masters: usize) -> Result<RedisCluster, RedisError> {
        let serial = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "presence-testkit-cluster-{}-{serial}",
            std::process::id()
        ));
        let mut cluster = RedisCluster {
            masters: Vec::with_capacity(masters),
            dir,
        };
        for _ in 0..masters {
            // Each node keeps its cluster state file (nodes.conf) in a directory of its own.
            let node_dir = cluster.dir.join(format!("node-{}", cluster.masters.len()));
            std::fs::create_dir_all(&node_dir).map_err(|source| RedisError::Spawn {
                program: "redis-server",
                source,
            })?;
            let node_dir = path_arg(&node_dir);
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--dir",
                &node_dir,
            ];
            // On error `cluster` is dropped, which kills the nodes started so far.
            let master = Redis::start_on_free_port(free_cluster_port, &extra).await?;
            cluster.masters.push(master);
        }
        cluster.create().await?;
        cluster.wait_until_ok().await?;
        Ok(cluster)
    }

    async fn create(&self) -> Result<(), RedisError> {
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for port in self.ports() {
            command.arg(format!("127.0.0.1:{port}"));
        }
        command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(READY_TIMEOUT, command.output()).await;
        let output = match output {
            Ok(Ok(output)) => output,
            Ok(Err(source)) if source.kind() == io::ErrorKind::NotFound => {
                return Err(RedisError::NotInstalled {
                    program: "redis-cli",
                })
            }
            Ok(Err(source)) => {
                return Err(RedisError::Spawn {
                    program: "redis-cli",
                    source,
                })
            }
            Err(_) => {
                return Err(RedisError::ClusterCreate {
                    status: format!("no result within {READY_TIMEOUT:?}"),
                    output: String::new(),
                })
            }
        };
        if output.status.success() {
            return Ok(());
        }
        Err(RedisError::ClusterCreate {
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// Slots are assigned at once, but each node says `ok` only once it has heard of
    /// them all over the bus.
    async fn wait_until_ok(&self) -> Result<(), RedisError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut not_ok = None;
            for master in &self.masters {
                match master.command(&["CLUSTER", "INFO"]).await {
                    Ok(info) if info.contains("cluster_state:ok") => {}
                    Ok(info) => not_ok = Some(info),
                    Err(error) => not_ok = Some(error.to_string()),
                }
                if not_ok.is_some() {
                    break;
                }
            }
            let Some(info) = not_ok else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(RedisError::ClusterNotOk {
                    ports: self.ports(),
                    timeout: READY_TIMEOUT,
                    info,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The masters, in the order they were started.
    pub fn masters(&self) -> &[Redis] {
        &self.masters
    }

    /// The masters' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.masters.iter().map(Redis::port).collect()
    }

    /// The masters' `redis://` URLs; a cluster client may start from any of them.
    pub fn urls(&self) -> Vec<String> {
        self.masters.iter().map(Redis::url).collect()
    }

    /// `CLUSTER INFO` as the first master answers it.
    pub async fn info(&self) -> io::Result<String> {
        match self.masters.first() {
            Some(master) => master.command(&["CLUSTER", "INFO"]).await,
            None => Err(io::Error::other("a cluster of no masters")),
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for master in &mut self.masters {
            master.process.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
