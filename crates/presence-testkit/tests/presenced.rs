//! Proves how the testkit starts a server and reports one that fails, with stand-ins
//! written in `sh` so each case is exact: the listening line found among others, a child
//! that exits first (its status and output in the error), one that never says it
//! listens (killed after the timeout), and signals reaching the child.

use std::time::Duration;

use presence_testkit::{PresencedCommand, Signal, StartError};

/// A stand-in for `presenced` that runs `script` (the appended `--listen ADDR` becomes
/// its `$1` and `$2`).
fn stand_in(script: &str) -> PresencedCommand {
    PresencedCommand::new("sh").args(["-c", script, "sh"])
}

#[tokio::test]
async fn the_listening_line_gives_the_address_and_signals_reach_the_child() {
    let mut server = stand_in(
        "echo warming up; echo \"listening on http://127.0.0.1:4567\"; echo told \"$1 $2\" >&2; \
         exec sleep 30",
    )
    .start()
    .await
    .expect("the stand-in starts");
    assert_eq!(server.addr().to_string(), "127.0.0.1:4567");
    assert_eq!(server.url(), "http://127.0.0.1:4567");
    assert_eq!(server.ws_url(), "ws://127.0.0.1:4567/ws");
    assert!(server.pid() > 0);
    assert!(server.is_running());
    server.signal(Signal::Term).expect("kill -TERM");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("it exits on SIGTERM");
    assert!(!status.success());
    assert!(!server.is_running());
    let output = server.output();
    assert!(output.iter().any(|line| line == "warming up"), "{output:?}");
    assert!(
        output
            .iter()
            .any(|line| line == "told --listen 127.0.0.1:0"),
        "{output:?}"
    );
}

#[tokio::test]
async fn a_child_that_exits_first_is_reported_with_its_status_and_output() {
    let error = stand_in("echo config loaded; echo bad flag >&2; exit 3")
        .start()
        .await
        .expect_err("it never listens");
    let StartError::Exited { status, output, .. } = &error else {
        panic!("{error}")
    };
    assert!(status.contains('3'), "{error}");
    assert!(output.contains("bad flag"), "{error}");
    assert!(output.contains("config loaded"), "{error}");
}

#[tokio::test]
async fn a_child_that_never_listens_is_killed_after_the_timeout() {
    let error = stand_in("echo still thinking >&2; exec sleep 30")
        .start_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect_err("it never listens");
    let StartError::Silent { output, .. } = &error else {
        panic!("{error}")
    };
    assert!(output.contains("still thinking"), "{error}");
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let error = PresencedCommand::new("/nonexistent/presenced")
        .start()
        .await
        .expect_err("no such program");
    assert!(matches!(error, StartError::Spawn { .. }), "{error}");
}
