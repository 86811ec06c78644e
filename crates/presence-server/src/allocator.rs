//! The process's allocator: jemalloc, tuned so memory freed after a crowd leaves goes
//! back to the operating system instead of staying in caches.
//!
//! jemalloc was chosen over glibc's malloc by measurement (presence-bench, see
//! docs/performance.md): an idle connection costs less, a cursor entry a little less CPU,
//! and freed pages are returned by its background threads, where glibc keeps the
//! high-water mark.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tikv_jemalloc_ctl::{Access, AsName, Mib};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How often an idle worker thread hands its cache of freed blocks back.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static LAST_FLUSH: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Called by each tokio worker just before it parks. A thread's cache of freed blocks
/// (jemalloc's tcache, up to a few MB per thread) is trimmed only while that thread keeps
/// allocating, so a worker that goes quiet after a busy spell would hold it forever.
/// Turning the cache off and on again returns its blocks to the shared arenas, where
/// the background threads can purge them. Rate-limited so a busy thread, which parks
/// thousands of times a second, pays one clock read per park.
pub fn flush_thread_cache_when_idle() {
    LAST_FLUSH.with(|last| {
        let now = Instant::now();
        if last
            .get()
            .is_some_and(|at| now.duration_since(at) < FLUSH_EVERY)
        {
            return;
        }
        last.set(Some(now));
        // Failing to flush only keeps memory cached; never worth stopping for.
        if let Some(enabled) = tcache_enabled() {
            let _ = enabled.write(false);
            let _ = enabled.write(true);
        }
    });
}

/// `thread.tcache.enabled`, looked up by name once: the lookup parses the name on every
/// call, which at one flush a second per worker showed up in cursor profiles.
fn tcache_enabled() -> Option<Mib<[usize; 3]>> {
    static MIB: OnceLock<Option<Mib<[usize; 3]>>> = OnceLock::new();
    *MIB.get_or_init(|| b"thread.tcache.enabled\0".name().mib().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_enabled() -> bool {
        b"thread.tcache.enabled\0"
            .name()
            .read()
            .expect("jemalloc answers thread.tcache.enabled")
    }

    #[test]
    fn a_flush_leaves_the_thread_cache_on_and_is_rate_limited() {
        // A fresh thread, so the rate limit starts from nothing.
        std::thread::spawn(|| {
            assert!(tcache_enabled().is_some(), "the flush must find its switch");
            assert!(cache_enabled());
            flush_thread_cache_when_idle();
            assert!(cache_enabled(), "the cache must be back on after a flush");
            let first = LAST_FLUSH.with(Cell::get).expect("the first call flushes");
            flush_thread_cache_when_idle();
            assert_eq!(
                LAST_FLUSH.with(Cell::get),
                Some(first),
                "too soon to flush again"
            );
        })
        .join()
        .expect("the test thread finishes");
    }
}
