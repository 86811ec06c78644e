//! Start-up refuses what would be unsafe or cannot work, and says `listening on` only once
//! the server will serve: scripts and supervisors take that line as "up".

use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `presenced ARGS` with `env` until it exits; its exit code and both outputs.
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_presenced"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("spawn presenced");
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = exited
        .recv_timeout(Duration::from_secs(20))
        .expect("presenced exited at start")
        .expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_empty_jwt_secret_is_refused_from_the_flag_and_from_the_environment() {
    for (args, env) in [
        (&["--jwt-secret", ""][..], &[][..]),
        (&[][..], &[("PRESENCED_JWT_SECRET", "")][..]),
    ] {
        let (code, stdout, stderr) = run_to_exit(args, env);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("jwt-secret"),
            "the setting is named: {stderr}"
        );
        assert!(!stdout.contains("listening on"), "{stdout}");
    }
}

#[test]
fn listening_on_comes_only_once_start_up_cannot_fail() {
    let garbage_key =
        std::env::temp_dir().join(format!("presenced-bad-key-{}", std::process::id()));
    std::fs::write(&garbage_key, "not a key").expect("write");
    let key = garbage_key.to_str().expect("utf8");
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let redis = format!("redis://{closed}/");
    for args in [&["--jwt-public-key", key][..], &["--redis", &redis][..]] {
        let (code, stdout, stderr) = run_to_exit(args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("listening on"),
            "{args:?} printed the line, then failed: {stdout}"
        );
    }
}
