//! Per-token quotas: executions admitted at once, and executions asked for per minute (a token
//! bucket holding a minute's worth, refilled continuously, so a client may burst up to its
//! quota and then proceeds at its rate). Exceeding either is the caller's 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warden_core::TokenConfig;

use crate::state::ExecError;

/// Every token's quotas.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    by_name: HashMap<String, TokenQuota>,
}

#[derive(Debug)]
struct TokenQuota {
    max_concurrent: Option<(u32, Arc<Semaphore>)>,
    rate: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    available: f64,
    refilled: Instant,
}

/// A token's place among its concurrent executions, released when the execution ends.
#[derive(Debug)]
pub(crate) struct QuotaPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl QuotaPermit {
    /// No quota taken: for what was admitted under its quota before a restart.
    pub(crate) const fn none() -> Self {
        Self { _permit: None }
    }
}

impl Quotas {
    pub(crate) fn new(tokens: &[TokenConfig]) -> Self {
        let by_name = tokens
            .iter()
            .map(|t| {
                let quota = TokenQuota {
                    max_concurrent: t
                        .max_concurrent
                        .map(|n| (n, Arc::new(Semaphore::new(n as usize)))),
                    rate: t.requests_per_minute.map(|per_minute| {
                        Mutex::new(Bucket {
                            per_minute,
                            available: f64::from(per_minute),
                            refilled: Instant::now(),
                        })
                    }),
                };
                (t.name.clone(), quota)
            })
            .collect();
        Self { by_name }
    }

    /// Takes one execution from `token`'s quotas, or says which is exhausted.
    pub(crate) fn admit(&self, token: Option<&str>) -> Result<QuotaPermit, ExecError> {
        let Some(quota) = token.and_then(|t| self.by_name.get(t)) else {
            return Ok(QuotaPermit { _permit: None });
        };
        let name = token.unwrap_or_default().to_owned();
        let permit = match &quota.max_concurrent {
            None => None,
            Some((max, semaphore)) => {
                Some(Arc::clone(semaphore).try_acquire_owned().map_err(|_| {
                    ExecError::QuotaExceeded {
                        token: name.clone(),
                        reason: format!("{max} executions at once"),
                        retry_after_secs: 1,
                    }
                })?)
            }
        };
        if let Some(rate) = &quota.rate {
            // A panic while holding the lock leaves the bucket as valid as before it.
            let mut bucket = rate.lock().unwrap_or_else(|e| e.into_inner());
            bucket
                .take(Instant::now())
                .map_err(|wait| ExecError::QuotaExceeded {
                    token: name,
                    reason: format!("{} requests per minute", bucket.per_minute),
                    retry_after_secs: wait,
                })?;
        }
        Ok(QuotaPermit { _permit: permit })
    }
}

impl Bucket {
    /// Takes one request, or says how many seconds until one is available.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let per_second = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.available = (self.available + elapsed * per_second).min(f64::from(self.per_minute));
        self.refilled = now;
        if self.available >= 1.0 {
            self.available -= 1.0;
            return Ok(());
        }
        Err(((1.0 - self.available) / per_second).ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn token(max_concurrent: Option<u32>, requests_per_minute: Option<u32>) -> TokenConfig {
        TokenConfig {
            name: "ci".into(),
            token: "secret".into(),
            max_concurrent,
            requests_per_minute,
            admin: false,
        }
    }

    #[test]
    fn concurrent_executions_are_capped_per_token() {
        let quotas = Quotas::new(&[token(Some(1), None)]);
        let first = quotas.admit(Some("ci")).expect("first");
        let err = quotas.admit(Some("ci")).expect_err("second at once");
        assert!(err.to_string().contains("ci"), "{err}");
        assert!(quotas.admit(None).is_ok(), "no token, no quota");
        drop(first);
        assert!(quotas.admit(Some("ci")).is_ok());
    }

    #[test]
    fn the_rate_refills_over_the_minute() {
        let start = Instant::now();
        let mut bucket = Bucket {
            per_minute: 2,
            available: 2.0,
            refilled: start,
        };
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_ok());
        assert_eq!(bucket.take(start), Err(30));
        assert!(bucket.take(start + Duration::from_secs(30)).is_ok());
    }
}
