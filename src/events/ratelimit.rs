//! The rate limit on Event writes: a token bucket of `burst` tokens refilled at `qps` per second, so
//! that a flood of drops cannot flood the API server.
//!
//! It is kept as the time at which the bucket would be full again (the "generic cell rate algorithm",
//! equivalent to a token bucket) in whole `Duration`s rather than as a fractional token count: there is
//! no rounding, so a caller that waits exactly the time it was told always gets its token.

use std::time::{Duration, Instant};

/// The longest wait between two tokens: a qps of zero (or less) waits this long, not forever.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

pub struct TokenBucket {
    /// Time per token (1 / qps).
    interval: Duration,
    /// How far ahead of `now` the bucket's schedule may run: `burst - 1` tokens.
    tolerance: Duration,
    /// When the bucket is next full; in the past when it is full now.
    full_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least one), refilled at `qps` tokens per second. An infinite
    /// `qps` never limits; zero, negative or NaN refills one token per hour.
    pub fn new(qps: f64, burst: u32, now: Instant) -> TokenBucket {
        let interval = if qps > 0.0 {
            Duration::try_from_secs_f64(1.0 / qps)
                .unwrap_or(MAX_INTERVAL)
                .min(MAX_INTERVAL)
        } else {
            MAX_INTERVAL
        };
        TokenBucket {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            full_at: now,
        }
    }

    /// Takes a token, or says how long to wait until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let full_at = self.full_at.max(now);
        let ahead = full_at - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.full_at = full_at + self.interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn burst_one_paces_at_qps() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5.0, 1, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Err(ms(200)));
        assert_eq!(bucket.take(start + ms(150)), Err(ms(50)));
        assert_eq!(bucket.take(start + ms(200)), Ok(()));
        assert_eq!(bucket.take(start + ms(200)), Err(ms(200)));
    }

    #[test]
    fn twenty_writes_at_qps_five_take_exactly_three_point_eight_seconds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5.0, 1, start);
        let mut now = start;
        let mut sent = Vec::new();
        while sent.len() < 20 {
            match bucket.take(now) {
                Ok(()) => sent.push(now - start),
                Err(wait) => now += wait,
            }
        }
        let expected: Vec<Duration> = (0..20).map(|i| ms(200 * i)).collect();
        assert_eq!(sent, expected);
    }

    #[test]
    fn a_burst_goes_at_once_then_waits_one_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        assert_eq!(bucket.take(start), Err(ms(100)));
        assert_eq!(bucket.take(start + ms(100)), Ok(()));
        assert_eq!(bucket.take(start + ms(100)), Err(ms(100)));
    }

    #[test]
    fn an_idle_bucket_refills_only_up_to_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2, start);
        assert_eq!(bucket.take(start), Ok(()));
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.take(later), Ok(()));
        assert_eq!(bucket.take(later), Ok(()));
        assert_eq!(bucket.take(later), Err(ms(100)));
    }

    #[test]
    fn infinite_qps_never_waits_and_zero_qps_waits_an_hour() {
        let start = Instant::now();
        let mut unlimited = TokenBucket::new(f64::INFINITY, 1, start);
        for _ in 0..1000 {
            assert_eq!(unlimited.take(start), Ok(()));
        }
        let mut stopped = TokenBucket::new(0.0, 0, start);
        assert_eq!(stopped.take(start), Ok(()));
        assert_eq!(stopped.take(start), Err(MAX_INTERVAL));
        let mut nan = TokenBucket::new(f64::NAN, 1, start);
        assert_eq!(nan.take(start), Ok(()));
        assert_eq!(nan.take(start), Err(MAX_INTERVAL));
    }
}
