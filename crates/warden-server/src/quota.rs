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
#[derive(Debug)]
pub(crate) struct Quotas {
    by_name: HashMap<String, TokenQuota>,
    /// Each caller's long-lived connections (WebSockets, MCP event streams), by token name
    /// (`None`: a server without tokens), at most [`Quotas::streams_each`] at once.
    streams: Mutex<HashMap<Option<String>, Arc<Semaphore>>>,
    streams_each: usize,
    /// Each caller's file operations on sessions' workspaces, by token name, at most
    /// [`FILE_OPERATIONS_EACH`] at once.
    file_operations: Mutex<HashMap<Option<String>, Arc<Semaphore>>>,
    /// Every caller's file operations together, at most [`FILE_OPERATIONS`] at once.
    all_file_operations: Arc<Semaphore>,
}

/// How many file operations (a download for as long as its client reads it, an upload from
/// its body's first byte) one caller may have at once. A download holds a descriptor and a
/// piece of the file, an upload up to `max_body` and a blocking thread while it writes: a
/// caller's many slow clients must not hold the server's memory and blocking threads.
pub(crate) const FILE_OPERATIONS_EACH: usize = 8;

/// How many file operations every caller together may have at once.
pub(crate) const FILE_OPERATIONS: usize = 64;

/// A place among a caller's file operations and the server's, released when dropped.
#[derive(Debug)]
pub(crate) struct FilePermit {
    _own: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

/// A caller's place among its long-lived connections, released when the connection ends.
#[derive(Debug)]
pub(crate) struct StreamPermit {
    _permit: OwnedSemaphorePermit,
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
    /// The quotas of `tokens`, each caller holding at most `streams_each` long-lived
    /// connections at once.
    pub(crate) fn new(tokens: &[TokenConfig], streams_each: usize) -> Self {
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
        Self {
            by_name,
            streams: Mutex::default(),
            streams_each: streams_each.max(1),
            file_operations: Mutex::default(),
            all_file_operations: Arc::new(Semaphore::new(FILE_OPERATIONS)),
        }
    }

    /// A place among `token`'s file operations and the server's, or the bound that refuses
    /// it (the caller's: its quota; the server's: its queue is full).
    pub(crate) fn hold_file_operation(&self, token: Option<&str>) -> Result<FilePermit, ExecError> {
        let own = {
            let mut held = self
                .file_operations
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                held.entry(token.map(str::to_owned))
                    .or_insert_with(|| Arc::new(Semaphore::new(FILE_OPERATIONS_EACH))),
            )
        };
        let own = own
            .try_acquire_owned()
            .map_err(|_| ExecError::QuotaExceeded {
                token: token.unwrap_or_default().to_owned(),
                reason: format!("{FILE_OPERATIONS_EACH} file operations at once"),
                retry_after_secs: 1,
            })?;
        let all = Arc::clone(&self.all_file_operations)
            .try_acquire_owned()
            .map_err(|_| ExecError::QueueFull {
                retry_after_secs: 1,
            })?;
        Ok(FilePermit {
            _own: own,
            _all: all,
        })
    }

    /// How many long-lived connections (and MCP sessions) each caller may hold at once.
    pub(crate) fn streams_each(&self) -> usize {
        self.streams_each
    }

    /// Takes one request from `token`'s rate, for a request that admits no execution but
    /// costs the server (an MCP session opened, a WebSocket upgraded).
    pub(crate) fn charge(&self, token: Option<&str>) -> Result<(), ExecError> {
        let Some(rate) = token
            .and_then(|t| self.by_name.get(t))
            .and_then(|q| q.rate.as_ref())
        else {
            return Ok(());
        };
        let mut bucket = rate.lock().unwrap_or_else(|e| e.into_inner());
        bucket
            .take(Instant::now())
            .map_err(|wait| ExecError::QuotaExceeded {
                token: token.unwrap_or_default().to_owned(),
                reason: format!("{} requests per minute", bucket.per_minute),
                retry_after_secs: wait,
            })
    }

    /// A place among `token`'s long-lived connections (and one request of its rate), or the
    /// quota that refuses it: one caller cannot hold the server's descriptors, memory and
    /// connection slots with idle WebSockets or event streams.
    pub(crate) fn hold_stream(&self, token: Option<&str>) -> Result<StreamPermit, ExecError> {
        // The place first: a connection refused for want of one costs no request of the rate.
        let place = self.stream_place(token)?;
        self.charge(token)?;
        Ok(place)
    }

    /// A place among `token`'s long-lived connections, not charged to its rate: an MCP
    /// request's event stream (`POST /mcp`), open until its answer, whose work is charged
    /// when it is admitted (a tool call) or costs nothing (`ping`, `tools/list`).
    pub(crate) fn stream_place(&self, token: Option<&str>) -> Result<StreamPermit, ExecError> {
        let semaphore = {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                streams
                    .entry(token.map(str::to_owned))
                    .or_insert_with(|| Arc::new(Semaphore::new(self.streams_each))),
            )
        };
        semaphore
            .try_acquire_owned()
            .map(|permit| StreamPermit { _permit: permit })
            .map_err(|_| ExecError::QuotaExceeded {
                token: token.unwrap_or_default().to_owned(),
                reason: format!(
                    "{} WebSockets and event streams (/v1/executions/stream until its client \
                     has read it, a GET /mcp, or a POST /mcp until its answer) open at once",
                    self.streams_each
                ),
                retry_after_secs: 1,
            })
    }

    /// Gives back the request of `token`'s rate that [`Quotas::admit`] took for an execution
    /// the server then refused (its queue full, or shutting down): only what is admitted counts
    /// against the rate, so a client that waits as `Retry-After` says is not locked out by
    /// its own retries. Taken first and given back, never checked first and taken after:
    /// concurrent requests of one caller never pass its rate between the two.
    pub(crate) fn refund(&self, token: Option<&str>) {
        if let Some(rate) = token
            .and_then(|t| self.by_name.get(t))
            .and_then(|q| q.rate.as_ref())
        {
            rate.lock().unwrap_or_else(|e| e.into_inner()).give_back();
        }
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

    /// Returns one request taken ([`Bucket::take`]), within the bucket's size.
    fn give_back(&mut self) {
        self.available = (self.available + 1.0).min(f64::from(self.per_minute));
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

    /// Bug hunt: a session's downloads had no bound: 30 slow readers held 2.38 GB.
    #[test]
    fn file_operations_are_capped_per_caller_and_overall() {
        let quotas = Quotas::new(&[], 4);
        let alice: Vec<_> = (0..FILE_OPERATIONS_EACH)
            .map(|_| quotas.hold_file_operation(Some("alice")).expect("within"))
            .collect();
        assert!(matches!(
            quotas.hold_file_operation(Some("alice")),
            Err(ExecError::QuotaExceeded { .. })
        ));
        drop(alice);
        let mut held = Vec::new();
        for n in 0..FILE_OPERATIONS {
            let caller = format!("caller-{}", n / FILE_OPERATIONS_EACH);
            held.push(quotas.hold_file_operation(Some(&caller)).expect("within"));
        }
        assert!(matches!(
            quotas.hold_file_operation(Some("bob")),
            Err(ExecError::QueueFull { .. })
        ));
        held.pop();
        quotas
            .hold_file_operation(Some("bob"))
            .expect("a place freed");
    }

    #[test]
    fn concurrent_executions_are_capped_per_token() {
        let quotas = Quotas::new(&[token(Some(1), None)], 4);
        let first = quotas.admit(Some("ci")).expect("first");
        let err = quotas.admit(Some("ci")).expect_err("second at once");
        assert!(err.to_string().contains("ci"), "{err}");
        assert!(quotas.admit(None).is_ok(), "no token, no quota");
        drop(first);
        assert!(quotas.admit(Some("ci")).is_ok());
    }

    /// Bug hunt: idle WebSockets and MCP event streams were unbounded: one token held the
    /// server's descriptors (20,000), gigabytes of buffers, and every connection slot.
    #[test]
    fn long_lived_connections_are_capped_per_caller_and_charged_to_the_rate() {
        let quotas = Quotas::new(&[token(None, Some(3))], 2);
        let a = quotas.hold_stream(Some("ci")).expect("first");
        let _b = quotas.hold_stream(Some("ci")).expect("second");
        let err = quotas.hold_stream(Some("ci")).expect_err("third at once");
        assert!(err.to_string().contains("ci"), "{err}");
        let _other = quotas
            .hold_stream(None)
            .expect("another caller's own places");
        let _second = quotas.hold_stream(None).expect("its second");
        // Bug hunt: the caller of a server without tokens was named `token ""`.
        let err = quotas.hold_stream(None).expect_err("its third");
        assert!(err.to_string().starts_with("the server's caller"), "{err}");
        drop(a);
        // Bug hunt: the refused third was charged too, and the rate refused this one. A place
        // is free again, and the third request of the minute is this one.
        let c = quotas
            .hold_stream(Some("ci"))
            .expect("a place and the rate");
        drop(c);
        // Now the three requests of the minute are spent.
        let err = quotas.hold_stream(Some("ci")).expect_err("the rate");
        assert!(
            matches!(&err, ExecError::QuotaExceeded { reason, .. } if reason.contains("per minute")),
            "{err:?}"
        );
    }

    /// Bug hunt: a request the full queue refused still took one of its caller's rate, so a
    /// client retrying as `Retry-After` said locked itself out.
    #[test]
    fn a_refunded_request_does_not_count_against_the_rate() {
        let quotas = Quotas::new(&[token(None, Some(2))], 4);
        for _ in 0..5 {
            drop(quotas.admit(Some("ci")).expect("within the rate"));
            quotas.refund(Some("ci"));
        }
        quotas.admit(Some("ci")).expect("first");
        quotas.admit(Some("ci")).expect("second");
        quotas.admit(Some("ci")).expect_err("the rate");
        quotas.refund(None);
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
        bucket.give_back();
        bucket.give_back();
        bucket.give_back();
        assert_eq!(bucket.available, 2.0, "never past a minute's worth");
    }
}
