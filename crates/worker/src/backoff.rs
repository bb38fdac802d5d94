//! Exponential back-off with jitter: the wait before attempt `n + 1` after `n` failed ones.

/// `base · 2^(failed − 1)`, at most `max`, then scaled by `jitter_permille` (800..=1200, i.e.
/// ±20%) so that jobs failing together do not all come back at the same instant.
pub fn backoff_ms(failed_attempts: i64, base_ms: i64, max_ms: i64, jitter_permille: i64) -> i64 {
    let doublings = (failed_attempts - 1).clamp(0, 40) as u32;
    let delay = base_ms
        .saturating_mul(1_i64 << doublings.min(62))
        .min(max_ms);
    delay.saturating_mul(jitter_permille.clamp(800, 1200)) / 1000
}

/// A random jitter for `backoff_ms`.
pub(crate) fn jitter_permille() -> i64 {
    use rand::Rng;
    rand::rng().random_range(800..=1200)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn waits_double_with_each_failure_up_to_the_cap() {
        let waits: Vec<i64> = (1..=6).map(|n| backoff_ms(n, 1000, 10_000, 1000)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 10_000, 10_000]);
    }

    #[test]
    fn jitter_stays_within_a_fifth_either_way() {
        assert_eq!(backoff_ms(1, 1000, 10_000, 800), 800);
        assert_eq!(backoff_ms(1, 1000, 10_000, 1200), 1200);
        assert_eq!(backoff_ms(1, 1000, 10_000, 5000), 1200);
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        assert_eq!(backoff_ms(10_000, 30_000, 3_600_000, 1000), 3_600_000);
    }
}
