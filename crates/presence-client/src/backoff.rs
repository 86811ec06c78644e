//! Reconnect delays: exponential, capped, with full jitter.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with "full jitter" (AWS architecture blog, 2015): attempt `n`
/// waits a uniformly random time in `[0, min(max, initial * 2^n)]`.
///
/// The randomness spreads out the thousands of clients a restarting server drops at
/// once, so they do not all come back in the same millisecond. The RNG is passed in,
/// so tests can seed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 250 ms, doubling up to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays start below `initial` and double per attempt up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        // 2^31 times any non-zero initial delay is past every sensible cap already.
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// How many delays were handed out since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The next delay; each call doubles the ceiling until it reaches `max`.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let ceiling = u64::try_from(self.ceiling().as_nanos()).unwrap_or(u64::MAX);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }

    /// Back to the first, shortest delay (after a connection succeeded).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(100 * MS, 1000 * MS);
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(backoff.ceiling());
            let delay = backoff.next_delay(&mut rng);
            assert!(delay <= *ceilings.last().unwrap());
        }
        assert_eq!(
            ceilings,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        backoff.reset();
        assert_eq!(backoff.ceiling(), 100 * MS);
    }

    #[test]
    fn delays_are_jittered_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(42);
        let delays: Vec<Duration> = (0..1000)
            .map(|_| Backoff::new(1000 * MS, 1000 * MS).next_delay(&mut rng))
            .collect();
        assert!(delays.iter().all(|d| *d <= 1000 * MS));
        // Full jitter: both ends of the range get used, not just "ceiling ± a bit".
        assert!(delays.iter().any(|d| *d < 100 * MS));
        assert!(delays.iter().any(|d| *d > 900 * MS));
        let mean = delays.iter().sum::<Duration>() / 1000;
        assert!(mean > 400 * MS && mean < 600 * MS, "mean {mean:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut backoff = Backoff::default();
            (0..10)
                .map(|_| backoff.next_delay(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::MAX);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            backoff.next_delay(&mut rng);
        }
        assert_eq!(backoff.attempt(), 100);
    }
}
