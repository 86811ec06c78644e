//! The clock the core is given: every `Now` comes from here. `tokio::time::Instant` so
//! `time::pause()` works.

use std::time::{SystemTime, UNIX_EPOCH};

use presence_core::Now;

/// Both clocks, read once per input.
pub fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Now {
        instant: tokio::time::Instant::now().into_std(),
        unix_ms,
    }
}
