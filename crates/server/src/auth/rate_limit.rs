//! Login and registration limits, per client address and per email, so neither one address
//! guessing many passwords nor many addresses guessing one password gets far.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

pub struct AuthLimiter {
    by_address: DefaultKeyedRateLimiter<String>,
    by_email: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl AuthLimiter {
    pub fn new(attempts_per_minute: u32) -> Self {
        let quota = Quota::per_minute(
            NonZeroU32::new(attempts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN),
        );
        Self {
            by_address: DefaultKeyedRateLimiter::keyed(quota),
            by_email: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt; refuses with 429 and `Retry-After` when either limit is spent.
    pub fn check(&self, address: &str, email: &str) -> Result<(), ApiError> {
        for (limiter, key) in [(&self.by_address, address), (&self.by_email, email)] {
            if let Err(not_until) = limiter.check_key(&key.to_string()) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(ApiError::rate_limited(wait.as_secs() + 1));
            }
        }
        Ok(())
    }

    /// Counts one attempt from `address` alone (a sign-in with a provider's token, which
    /// names no email before it is verified).
    pub fn check_address(&self, address: &str) -> Result<(), ApiError> {
        if let Err(not_until) = self.by_address.check_key(&address.to_string()) {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(ApiError::rate_limited(wait.as_secs() + 1));
        }
        Ok(())
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.by_address.retain_recent();
        self.by_email.retain_recent();
    }
}
