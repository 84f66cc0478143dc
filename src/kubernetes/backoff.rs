//! Exponential backoff with jitter for API retries, honouring a server's `Retry-After`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { next: first, max }
    }

    /// The wait before the next try: the server's `Retry-After` when it gave one (capped), else the
    /// current step with ±25 % jitter; the step doubles each time.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        // Jitter spreads the retries of many agents hitting one recovering API server.
        let fraction = jitter_fraction();
        step.mul_f64(0.75 + 0.5 * fraction)
    }
}

/// A number in [0, 1) that differs from call to call; good enough to spread retries, not for secrets.
fn jitter_fraction() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = crate::checksum::checksum(&nanos.to_le_bytes());
    (mixed % 10_000) as f64 / 10_000.0
}

/// `Retry-After` as seconds (the API server sends whole seconds; HTTP dates are not used by it).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay(None)).collect();
        for (delay, step) in delays.iter().zip([100, 200, 400, 500, 500]) {
            let step = Duration::from_millis(step);
            assert!(
                *delay >= step.mul_f64(0.75) && *delay <= step.mul_f64(1.25),
                "{delay:?} for {step:?}"
            );
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        assert_eq!(
            backoff.next_delay(parse_retry_after(Some("2"))),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff.next_delay(parse_retry_after(Some("600"))),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}
