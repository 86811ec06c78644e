//! Runs the real `presenced` binary (through `presence-testkit`) for the client's
//! integration tests.

#![allow(dead_code)] // Each test binary uses a different part of the support code.

use std::time::Duration;

use presence_client::{Event, Events};
use presence_testkit::{presenced_binary, Presenced, PresencedCommand};
use tokio::time::timeout;

/// How long any single expected thing may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts `presenced ARGS` on a free port and waits for its `listening on` line; it is
/// killed when dropped. The binary is `$PRESENCED_BIN`, else this workspace's, built
/// first if it is missing.
pub async fn start_server(args: &[&str]) -> Presenced {
    PresencedCommand::new(presenced_binary())
        .args(args)
        .start_timeout(WAIT)
        .echo_stderr()
        .start()
        .await
        .expect("presenced starts")
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
