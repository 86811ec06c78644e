//! The server under test: a `presenced` child the bench started, or one already running.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::procfs::{self, ProcSample};
use crate::BenchError;

/// How long a started server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The server being measured. A started child is killed when this is dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its process id, for `/proc`.
    pub pid: u32,
    child: Option<Child>,
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("pid", &self.pid)
            .field("started_by_bench", &self.child.is_some())
            .finish()
    }
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

impl Server {
    /// Starts `bin --listen 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    /// The child inherits this process's (raised) open-file limit.
    pub async fn start(bin: &Path, args: &[String]) -> Result<Server, BenchError> {
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
            let tail = log_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == 50 {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
            });
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
                let tail = log_tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>());
                let tail = tail.unwrap_or_default().join("\n");
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
        Ok(Server {
            url,
            pid,
            child: Some(child),
            log_tail,
        })
    }

    /// A server someone else started, at `url` (`http://ADDR`) with process id `pid`.
    pub fn attach(url: &str, pid: u32) -> Result<Server, BenchError> {
        procfs::sample(pid)?;
        Ok(Server {
            url: url.trim_end_matches('/').to_owned(),
            pid,
            child: None,
            log_tail: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    /// Whether the bench started this server (and so knows its flags).
    pub fn is_started_by_bench(&self) -> bool {
        self.child.is_some()
    }

    /// Reads the server's memory and CPU counters.
    pub fn sample(&self) -> Result<ProcSample, BenchError> {
        procfs::sample(self.pid)
    }

    /// Whether the server process is still running.
    pub fn is_alive(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => Path::new(&format!("/proc/{}", self.pid)).exists(),
        }
    }

    /// The last lines the server wrote to standard error (only for a started server).
    pub fn log_tail(&self) -> Vec<String> {
        self.log_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops a started server (SIGKILL) and waits for it; a no-op for an attached one.
    pub async fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill().await;
        }
    }
}
