//! Wake-up pacing for the single-threaded runtime: a thread that goes idle soon after
//! it woke sleeps out the rest of `--min-wake-interval` before it waits on the network
//! again, so messages that arrive meanwhile are read in one wake-up instead of one each.
//!
//! Under steady small traffic (50 users moving cursors at 20 Hz send a message every
//! millisecond) a large share of a server's CPU goes to waking up and going back to
//! sleep rather than to the messages: pacing at 10 ms took up to a third off it
//! (docs/performance-log.md, entry 10). It trades at most one interval of delay for
//! far fewer wake-ups. A busy thread never goes idle, so it is never paced.
//!
//! Only the current-thread runtime is paced. There, a task woken from another thread
//! (the blocking pool, for example) always unparks the runtime, so a pause delays it by
//! at most the interval. In the multi-threaded runtime a worker pausing before it parks
//! is neither running nor parked, and such a task could stay queued unnoticed until the
//! next timer or socket event.
//!
//! A pause never runs past a shard's next deadline: a room's cursor flush is armed one
//! interval after the previous one, so a flush made late by a pause would stretch every
//! later interval and thin the room's cursor frames.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The pacer of this process's runtime, if it paces; shards report their deadlines to it.
static INSTALLED: OnceLock<WakePacer> = OnceLock::new();

/// Makes `pacer` the process's pacer (once; later calls keep the first) and returns it
/// for the runtime's hooks.
pub fn install(pacer: WakePacer) -> &'static WakePacer {
    INSTALLED.get_or_init(|| pacer)
}

/// Tells the installed pacer, if any, when shard `shard` next has work of its own.
pub fn shard_deadline(shard: usize, at: Option<Instant>) {
    if let Some(pacer) = INSTALLED.get() {
        pacer.set_deadline(shard, at);
    }
}

/// When a thread last woke, how long it keeps from waking again, and the deadlines it
/// must not sleep past.
#[derive(Debug)]
pub struct WakePacer {
    interval: Duration,
    woke_at: Mutex<Option<Instant>>,
    /// Each shard's next deadline, by shard index.
    deadlines: Mutex<Vec<Option<Instant>>>,
}

impl WakePacer {
    /// A pacer that spaces wake-ups at least `interval` apart.
    pub fn new(interval: Duration) -> Self {
        WakePacer {
            interval,
            woke_at: Mutex::new(None),
            deadlines: Mutex::new(Vec::new()),
        }
    }

    /// Records shard `shard`'s next deadline (`None`: it has none).
    pub fn set_deadline(&self, shard: usize, at: Option<Instant>) {
        if let Ok(mut deadlines) = self.deadlines.lock() {
            if deadlines.len() <= shard {
                deadlines.resize(shard + 1, None);
            }
            deadlines[shard] = at;
        }
    }

    /// Records that the thread woke at `now` (the runtime's `on_thread_unpark`).
    pub fn woke(&self, now: Instant) {
        if let Ok(mut woke_at) = self.woke_at.lock() {
            *woke_at = Some(now);
        }
    }

    /// How long a thread going idle at `now` should sleep before it parks: the rest of
    /// the interval since it last woke, but no later than the earliest shard deadline.
    pub fn pause_before_parking(&self, now: Instant) -> Duration {
        let Some(woke_at) = self.woke_at.lock().ok().and_then(|at| *at) else {
            return Duration::ZERO;
        };
        let mut until = woke_at + self.interval;
        if let Ok(deadlines) = self.deadlines.lock() {
            if let Some(earliest) = deadlines.iter().flatten().min() {
                until = until.min(*earliest);
            }
        }
        until.saturating_duration_since(now)
    }

    /// Sleeps out [`WakePacer::pause_before_parking`] (the runtime's `on_thread_park`).
    pub fn pause(&self) {
        let pause = self.pause_before_parking(Instant::now());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_idle_soon_after_waking_pauses_for_the_rest_of_the_interval() {
        let pacer = WakePacer::new(Duration::from_millis(5));
        let start = Instant::now();
        assert_eq!(
            pacer.pause_before_parking(start),
            Duration::ZERO,
            "a thread that never woke has nothing to wait out"
        );
        pacer.woke(start);
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(2)),
            Duration::from_millis(3)
        );
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(5)),
            Duration::ZERO
        );
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(9)),
            Duration::ZERO,
            "an interval already over asks for no pause"
        );
        pacer.woke(start + Duration::from_millis(9));
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(10)),
            Duration::from_millis(4),
            "each wake-up starts a new interval"
        );
    }

    #[test]
    fn a_pause_ends_at_the_earliest_shard_deadline() {
        let pacer = WakePacer::new(Duration::from_millis(10));
        let start = Instant::now();
        pacer.woke(start);
        pacer.set_deadline(1, Some(start + Duration::from_millis(6)));
        pacer.set_deadline(0, Some(start + Duration::from_millis(8)));
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(1)),
            Duration::from_millis(5),
            "shard 1's deadline comes first"
        );
        pacer.set_deadline(1, None);
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(1)),
            Duration::from_millis(7)
        );
        pacer.set_deadline(0, Some(start));
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(1)),
            Duration::ZERO,
            "a deadline already due asks for no pause"
        );
        pacer.set_deadline(0, Some(start + Duration::from_secs(60)));
        assert_eq!(
            pacer.pause_before_parking(start + Duration::from_millis(1)),
            Duration::from_millis(9),
            "a far deadline leaves the interval as it is"
        );
    }

    #[test]
    fn a_zero_interval_never_pauses() {
        let pacer = WakePacer::new(Duration::ZERO);
        let start = Instant::now();
        pacer.woke(start);
        assert_eq!(pacer.pause_before_parking(start), Duration::ZERO);
    }
}
