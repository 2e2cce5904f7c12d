//! Rate limits: a token bucket per client address (before anything else is
//! read) and per device (after its signature verified — limiting by a
//! claimed id would let anyone exhaust another phone's allowance). Answers
//! are `429 rate_limited` with `Retry-After`; devices retry on their own.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests a key may make: `per_minute` on average, `burst` at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per client IP address. Generous: many phones share one carrier
    /// address behind CGNAT.
    pub per_address: Rate,
    /// Per enrolled device: its engine syncs a few times a minute at most.
    pub per_device: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_address: Rate {
                per_minute: 1200,
                burst: 300,
            },
            // A first sync of a big backlog runs tens of exchanges back
            // to back; the burst lets it through.
            per_device: Rate {
                per_minute: 120,
                burst: 60,
            },
        }
    }
}

impl Limits {
    /// The per-device allowance of attachment calls: five times the sync
    /// allowance (chunks are many and small on a weak link; the body limit
    /// bounds each one).
    pub fn uploads_per_device(&self) -> Rate {
        Rate {
            per_minute: self.per_device.per_minute.saturating_mul(5),
            burst: self.per_device.burst.saturating_mul(5),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Keys kept before idle (full) buckets are dropped.
const PRUNE_ABOVE: usize = 100_000;

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`, or says how long to wait.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let per_sec = f64::from(self.rate.per_minute.max(1)) / 60.0;
        let burst = f64::from(self.rate.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
            });
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * per_sec;
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec).max(Duration::from_secs(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_and_keys_apart() {
        let l = Limiter::new(Rate {
            per_minute: 60,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take(&"a", t0), Ok(()));
        }
        let wait = l.take(&"a", t0).unwrap_err();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2));
        // Another key is not affected.
        assert_eq!(l.take(&"b", t0), Ok(()));
        // One second later, one more (60 a minute).
        assert_eq!(l.take(&"a", t0 + Duration::from_secs(1)), Ok(()));
        assert!(l.take(&"a", t0 + Duration::from_secs(1)).is_err());
        // Never more than the burst after a long pause.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.take(&"a", later), Ok(()));
        }
        assert!(l.take(&"a", later).is_err());
    }
}
