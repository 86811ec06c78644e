//! Each connection's message rate: a token bucket that passes bursts, drops the excess
//! with one `rate_limited` error a second, and calls sustained excess abuse (closed 1008).

use std::time::Duration;

use tokio::time::Instant;

/// What the rate limiter decided about one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Pass,
    /// Dropped; `tell` is true at most once per second.
    Refuse {
        tell: bool,
    },
    /// Ten seconds' worth of excess in a ten-second window: close the connection.
    Abuse,
}

/// A token bucket: `rate` per second sustained, bursts of twice that.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    tokens: f64,
    refilled_at: Option<Instant>,
    told_at: Option<Instant>,
    window_start: Option<Instant>,
    dropped_in_window: u64,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            tokens: rate * 2.0,
            refilled_at: None,
            told_at: None,
            window_start: None,
            dropped_in_window: 0,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admission {
        if let Some(at) = self.refilled_at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * 2.0);
        }
        self.refilled_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admission::Pass;
        }
        let window = Duration::from_secs(10);
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) > window {
            self.window_start = Some(now);
            self.dropped_in_window = 0;
        }
        self.dropped_in_window += 1;
        if self.dropped_in_window as f64 > self.rate * 10.0 {
            return Admission::Abuse;
        }
        let tell = self
            .told_at
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if tell {
            self.told_at = Some(now);
        }
        Admission::Refuse { tell }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_passes_bursts_refuses_excess_and_closes_on_abuse() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10);
        for _ in 0..20 {
            assert_eq!(limiter.admit(start), Admission::Pass);
        }
        assert_eq!(limiter.admit(start), Admission::Refuse { tell: true });
        assert_eq!(limiter.admit(start), Admission::Refuse { tell: false });
        // A tenth of a second later one more token has come in.
        assert_eq!(
            limiter.admit(start + Duration::from_millis(100)),
            Admission::Pass
        );
        let mut outcome = Admission::Pass;
        for _ in 0..200 {
            outcome = limiter.admit(start + Duration::from_millis(100));
        }
        assert_eq!(outcome, Admission::Abuse);
    }
}
