//! A child process this crate started, and the last lines it wrote, kept so that a
//! failure can show them.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// How many lines a tail keeps: enough for a panic message or a startup error.
const TAIL_LINES: usize = 50;

/// How long a child that closed its output is given to exit, and its output to drain,
/// before a failure is reported without them.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// The last [`TAIL_LINES`] lines of a child's output, shared with the tasks reading it.
#[derive(Clone, Default)]
pub(crate) struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    pub(crate) fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The tail as one block of text for an error message.
    pub(crate) fn render(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            "(no output)".to_owned()
        } else {
            lines.join("\n")
        }
    }

    /// Reads `lines` into the tail until the stream ends, so the child never blocks on a
    /// full pipe. With `echo`, each line also goes to this process's standard error,
    /// where the test harness captures it and shows it with a failing test.
    pub(crate) fn follow<R>(&self, mut lines: Lines<R>, echo: bool) -> JoinHandle<()>
    where
        R: AsyncBufRead + Unpin + Send + 'static,
    {
        let tail = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("{line}");
                }
                tail.push(line);
            }
        })
    }
}

/// A signal to send to a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: a deploy's stop.
    Term,
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGKILL: a crash.
    Kill,
    /// SIGHUP: read the configuration (for presenced, the TLS certificate) again.
    Hup,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
        }
    }
}

/// A running child with both outputs piped and its standard error read into a tail;
/// killed (SIGKILL) when dropped.
pub(crate) struct ChildProcess {
    child: Child,
    pid: u32,
    output: OutputTail,
    stderr_read: Option<JoinHandle<()>>,
}

impl fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildProcess")
            .field("pid", &self.pid)
            .finish()
    }
}

impl ChildProcess {
    /// Spawns `command` with no input. Standard error is read into the tail from now on
    /// (and copied to ours with `echo`); standard output waits for [`Self::take_stdout`].
    pub(crate) fn spawn(command: &mut Command, echo: bool) -> io::Result<ChildProcess> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let output = OutputTail::default();
        let stderr_read = child
            .stderr
            .take()
            .map(|stderr| output.follow(BufReader::new(stderr).lines(), echo));
        Ok(ChildProcess {
            pid: child.id().unwrap_or_default(),
            child,
            output,
            stderr_read,
        })
    }

    /// Its standard output, line by line (once).
    pub(crate) fn take_stdout(&mut self) -> Option<Lines<BufReader<ChildStdout>>> {
        self.child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).lines())
    }

    pub(crate) fn output(&self) -> &OutputTail {
        &self.output
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits until it is gone.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGKILL without waiting, for `Drop`.
    pub(crate) fn start_kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Waits up to `within` for it to exit; how it ended, or `None` if it still runs.
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)?;
        // Its last words on standard error are in the tail once it has exited: the pipe
        // closed, so the reader finishes at once.
        if let Some(reader) = self.stderr_read.take() {
            let _ = tokio::time::timeout(EXIT_GRACE, reader).await;
        }
        Some(status)
    }

    /// Sends `signal` with `kill(1)`: the workspace forbids the `unsafe` of `libc::kill`.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        // Until it is reaped the pid stays ours, even after it exits: no stranger is hit.
        if self.child.id().is_none() {
            return Err(io::Error::other("the process has already been waited for"));
        }
        let status = std::process::Command::new("kill")
            .args(["-s", signal.name(), &self.pid.to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -s {} {} failed: {status}",
                signal.name(),
                self.pid
            )))
        }
    }

    /// For a child that closed its output or was killed: waits briefly for it to exit
    /// and for its standard error to be read to the end; says how it ended.
    pub(crate) async fn wait_for_the_end(&mut self) -> String {
        let status = match self.wait_exit(EXIT_GRACE).await {
            Some(status) => status.to_string(),
            None => "closed its output but is still running".to_owned(),
        };
        if let Some(reader) = self.stderr_read.take() {
            let _ = tokio::time::timeout(EXIT_GRACE, reader).await;
        }
        status
    }
}
