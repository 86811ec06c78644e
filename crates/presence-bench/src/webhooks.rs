//! The receiver of `--webhooks`: an HTTP endpoint on the loopback that the started
//! server sends its webhooks to. It accepts everything and counts the events (a batched
//! request is a JSON array), so a run can report how many events the server delivered,
//! how fast, and, beside a run without webhooks, what they cost the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

/// Counts of what arrived.
#[derive(Debug, Default)]
pub struct Received {
    /// Requests.
    pub requests: AtomicU64,
    /// Events, counting each element of a batch.
    pub events: AtomicU64,
}

/// A running receiver.
pub struct Receiver {
    /// Where the server is to POST.
    pub url: String,
    /// What arrived so far.
    pub received: Arc<Received>,
}

impl Receiver {
    /// Starts listening on 127.0.0.1.
    pub async fn start() -> std::io::Result<Receiver> {
        let received = Arc::new(Received::default());
        let counts = received.clone();
        let app = Router::new().route(
            "/hooks",
            post(move |body: String| {
                let counts = counts.clone();
                async move {
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    counts
                        .events
                        .fetch_add(count_events(&body), Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, received })
    }
}

/// How many events a body holds: the elements of an array, else one.
fn count_events(body: &str) -> u64 {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(events)) => events.len() as u64,
        Ok(_) => 1,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::count_events;

    #[test]
    fn a_batch_counts_each_event() {
        assert_eq!(count_events(r#"{"type":"user.joined"}"#), 1);
        assert_eq!(count_events(r#"[{"type":"a"},{"type":"b"}]"#), 2);
        assert_eq!(count_events("not json"), 0);
    }
}
