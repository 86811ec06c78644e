//! Runs the real `presenced` binary for the client's integration tests.

#![allow(dead_code)] // Each test binary uses a different part of the support code.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, LazyLock};
use std::time::Duration;

use presence_client::{Event, Events};
use tokio::time::timeout;

/// How long any single expected thing may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The `presenced` binary: `$PRESENCED_BIN`, else `target/<profile>/presenced` of this
/// workspace, built with cargo first if it is missing.
static BINARY: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(path) = std::env::var_os("PRESENCED_BIN") {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let binary = target.join(profile).join("presenced");
    if !binary.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(&workspace).args([
            "build",
            "-p",
            "presence-server",
            "--bin",
            "presenced",
        ]);
        if profile == "release" {
            build.arg("--release");
        }
        let status = build.status();
        assert!(
            matches!(status, Ok(s) if s.success()) && binary.exists(),
            "{} is missing and building it failed ({status:?}); build it with \
             `cargo build -p presence-server --bin presenced`, or point PRESENCED_BIN at it",
            binary.display()
        );
    }
    binary
});

/// A running `presenced`, killed when dropped.
pub struct TestServer {
    child: Child,
    /// The address it listens on (the real port).
    pub addr: SocketAddr,
    args: Vec<String>,
}

impl TestServer {
    /// Starts `presenced --listen 127.0.0.1:0 ARGS...` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> TestServer {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Self::spawn("127.0.0.1:0", args)
    }

    fn spawn(listen: &str, args: Vec<String>) -> TestServer {
        let mut child = Command::new(&*BINARY)
            .arg("--listen")
            .arg(listen)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", BINARY.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading after the first line, so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = line_sender.send(line);
            }
        });
        let addr = loop {
            match lines.recv_timeout(WAIT) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        break addr.trim().parse().expect("listening address");
                    }
                }
                Err(error) => {
                    let exited = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "{} printed no `listening on` line ({error}; exit status {exited:?})",
                        BINARY.display()
                    );
                }
            }
        };
        TestServer { child, addr, args }
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// SIGTERM, as a deploy would, then waits for the process to exit.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("wait for presenced");
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new process on the same address and flags (after terminate or kill).
    pub fn restart(&mut self) {
        let args = std::mem::take(&mut self.args);
        let listen = self.addr.to_string();
        let replacement = Self::spawn(&listen, args);
        assert_eq!(replacement.addr, self.addr);
        *self = replacement;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the first event matching `wanted`; returns it with every event skipped
/// on the way, so a test can check that something did *not* happen before it.
pub async fn wait_for(
    events: &mut Events,
    what: &str,
    mut wanted: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let mut skipped = Vec::new();
    let found = timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("the client's events ended");
            if wanted(&event) {
                return event;
            }
            skipped.push(event);
        }
    })
    .await;
    match found {
        Ok(event) => (event, skipped),
        Err(_) => panic!("timed out waiting for {what}; saw {skipped:#?}"),
    }
}
