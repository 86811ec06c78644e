//! A `presenced` child: started on port 0, found through its `listening on` line, and
//! killed when its handle is dropped.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;

use crate::child::{ChildProcess, Signal};
use crate::http::{self, HttpError, Response};

/// What `presenced` prints on standard output once it accepts connections.
const LISTENING_PREFIX: &str = "listening on http://";
/// The same line from a server that speaks TLS (`--tls-cert`).
const LISTENING_TLS_PREFIX: &str = "listening on https://";

/// How long a start may take by default before it counts as failed.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(20);

/// How often [`Presenced::wait_ready`] asks `/readyz`.
const READY_POLL: Duration = Duration::from_millis(50);

/// How to start a `presenced`: the program, its flags and environment. The program may
/// be a wrapper (say `prlimit … presenced`) as long as it passes on the arguments and
/// the `listening on` line; `--listen ADDR` is appended last.
#[derive(Clone, Debug)]
pub struct PresencedCommand {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    start_timeout: Duration,
    echo_stderr: bool,
}

/// Why a `presenced` could not be started, or did not become ready.
///
/// Its `Debug` is its `Display`, so that `.expect(…)` in a test prints the child's
/// output as lines rather than as one escaped string.
#[derive(thiserror::Error)]
pub enum StartError {
    /// The program could not be run at all (missing, not executable).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program tried.
        program: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// It exited before printing its `listening on` line.
    #[error("{program} exited ({status}) before printing `listening on`; its output:\n{output}")]
    Exited {
        /// The program.
        program: String,
        /// How it ended, as far as known.
        status: String,
        /// The last lines it wrote (standard output and error).
        output: String,
    },
    /// It printed no `listening on` line in time, and was killed.
    #[error(
        "{program} printed no `listening on` line within {timeout:?}, and was killed; \
         its output:\n{output}"
    )]
    Silent {
        /// The program.
        program: String,
        /// How long it was given.
        timeout: Duration,
        /// The last lines it wrote.
        output: String,
    },
    /// Its `listening on` line held no socket address.
    #[error("{program} printed a listening line without an address: {line:?}")]
    BadAddress {
        /// The program.
        program: String,
        /// The line.
        line: String,
    },
    /// It never answered `GET /readyz` with 200.
    #[error(
        "{url} was not ready within {timeout:?} ({state}; last answer: {last}); \
         its output:\n{output}"
    )]
    NotReady {
        /// The server's `http://ADDR`.
        url: String,
        /// How long it was given.
        timeout: Duration,
        /// Whether it was still running.
        state: &'static str,
        /// The last answer to `/readyz`, or why there was none.
        last: String,
        /// The last lines it wrote.
        output: String,
    },
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PresencedCommand {
    /// Runs `program` (usually [`crate::presenced_binary`] or
    /// `env!("CARGO_BIN_EXE_presenced")`) with no flags but `--listen`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        PresencedCommand {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            start_timeout: DEFAULT_START_TIMEOUT,
            echo_stderr: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child. Without `RUST_LOG` here or in this
    /// process's environment, the child logs at `warn`.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// How long the child may take to print `listening on` (20 s unless set).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Copies the child's standard error to this process's, line by line, as well as
    /// keeping its tail. In a test the harness captures it and shows it on failure.
    pub fn echo_stderr(mut self) -> Self {
        self.echo_stderr = true;
        self
    }

    /// Starts the child on `127.0.0.1:0` and waits for its `listening on` line.
    pub async fn start(&self) -> Result<Presenced, StartError> {
        self.start_on("127.0.0.1:0").await
    }

    async fn start_on(&self, listen: &str) -> Result<Presenced, StartError> {
        let program = self.program.display().to_string();
        let mut command = Command::new(&self.program);
        command.args(&self.args).arg("--listen").arg(listen);
        let sets_log_level = self.envs.iter().any(|(name, _)| name == "RUST_LOG");
        if !sets_log_level && std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        command.envs(self.envs.iter().map(|(name, value)| (name, value)));
        let spawn_error = |source| StartError::Spawn {
            program: program.clone(),
            source,
        };
        let mut process =
            ChildProcess::spawn(&mut command, self.echo_stderr).map_err(spawn_error)?;
        let Some(mut stdout) = process.take_stdout() else {
            return Err(spawn_error(io::Error::other("no pipe for standard output")));
        };
        let output = process.output().clone();
        let listening = tokio::time::timeout(self.start_timeout, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(addr) = line.strip_prefix(LISTENING_PREFIX) {
                    return Some((addr.trim().to_owned(), false));
                }
                if let Some(addr) = line.strip_prefix(LISTENING_TLS_PREFIX) {
                    return Some((addr.trim().to_owned(), true));
                }
                output.push(line);
            }
            None
        })
        .await;
        let (addr, tls) = match listening {
            Ok(Some(found)) => found,
            Ok(None) => {
                let status = process.wait_for_the_end().await;
                return Err(StartError::Exited {
                    program,
                    status,
                    output: output.render(),
                });
            }
            Err(_) => {
                process.kill().await;
                process.wait_for_the_end().await;
                return Err(StartError::Silent {
                    program,
                    timeout: self.start_timeout,
                    output: output.render(),
                });
            }
        };
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            return Err(StartError::BadAddress {
                program,
                line: format!("{LISTENING_PREFIX}{addr}"),
            });
        };
        // Nothing else is expected on stdout, but keep reading so a stray line never
        // blocks the child on a full pipe.
        output.follow(stdout, self.echo_stderr);
        Ok(Presenced {
            command: self.clone(),
            process,
            addr,
            tls,
        })
    }
}

/// A running `presenced` this process started; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Presenced {
    command: PresencedCommand,
    process: ChildProcess,
    addr: SocketAddr,
    /// Whether it said `listening on https://`.
    tls: bool,
}

impl Presenced {
    /// The address it listens on, with the real port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `ws://ADDR/ws`, where clients connect.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// Whether it serves HTTPS and WSS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The last lines it wrote, standard error and output interleaved.
    pub fn output(&self) -> Vec<String> {
        self.process.output().lines()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        self.process.signal(signal)
    }

    /// SIGKILL, as a crash would, and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Waits up to `within` for it to exit; how it ended, or `None` if it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(within).await
    }

    /// Starts a new process with the same flags on the same address, once this one has
    /// stopped (it is killed first if it still runs).
    pub async fn restart(&mut self) -> Result<(), StartError> {
        self.kill().await;
        let replacement = self.command.start_on(&self.addr.to_string()).await?;
        *self = replacement;
        Ok(())
    }

    /// Waits until `GET /readyz` answers 200 (in a cluster: its backend is up), for at
    /// most `within`.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + within;
        loop {
            let last = match self.get("/readyz", &[]).await {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) => format!("{} {}", response.status, response.reason),
                Err(error) => error.to_string(),
            };
            let running = self.is_running();
            if !running || Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    url: self.url(),
                    timeout: within,
                    state: if running {
                        "still running"
                    } else {
                        "it exited"
                    },
                    last,
                    output: self.process.output().render(),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// `GET path` with extra request headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        http::get(&self.addr.to_string(), path, headers).await
    }
}
