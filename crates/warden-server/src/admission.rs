//! Admission: a bounded queue in front of a fixed number of workers. An execution first takes
//! a slot (there are `workers + queue_size`; none left is "the queue is full"), then waits for
//! a worker. A request whose client goes away while it waits is dropped with its future and
//! never runs; the slot and the worker travel with the blocking task once it runs, so an
//! abandoned run still counts against the workers until it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::ExecError;

/// The queue and the workers.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    capacity: usize,
    worker_count: usize,
    closed: AtomicBool,
    /// Wakes [`Admission::admit_waiting`] at close.
    closing: tokio::sync::Notify,
}

/// An admitted execution's place: in the queue until it gets a worker.
#[derive(Debug)]
pub(crate) struct Ticket {
    slot: OwnedSemaphorePermit,
}

/// A running execution's slot and worker, released when it ends.
#[derive(Debug)]
pub(crate) struct Running {
    _slot: OwnedSemaphorePermit,
    _worker: OwnedSemaphorePermit,
}

/// How busy the server is.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct Load {
    /// Executions running now.
    pub running: usize,
    /// Executions admitted and waiting for a worker.
    pub queued: usize,
    /// Executions that may run at once.
    pub workers: usize,
    /// Executions that may wait.
    pub queue_size: usize,
}

impl Admission {
    pub(crate) fn new(workers: usize, queue_size: usize) -> Self {
        let workers = workers.max(1);
        let capacity = workers + queue_size;
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            workers: Arc::new(Semaphore::new(workers)),
            capacity,
            worker_count: workers,
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
        }
    }

    /// A place in the queue, or why there is none.
    pub(crate) fn admit(&self) -> Result<Ticket, ExecError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ExecError::ShuttingDown);
        }
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => Ok(Ticket { slot }),
            Err(_) => Err(ExecError::QueueFull {
                retry_after_secs: self.retry_after_secs(),
            }),
        }
    }

    /// A place and then a worker, waiting for each rather than refusing (what the last
    /// server accepted and never ran, queued again at start-up, one after the other in their
    /// order); `ShuttingDown` once closed. Waiters are served before later
    /// [`Admission::admit`] calls, in order.
    pub(crate) async fn admit_waiting(&self) -> Result<Running, ExecError> {
        let closing = self.closing.notified();
        tokio::pin!(closing);
        // Registered before the flag is read: a close in between still wakes it.
        closing.as_mut().enable();
        if self.closed.load(Ordering::Acquire) {
            return Err(ExecError::ShuttingDown);
        }
        let waited = async {
            let slot = Arc::clone(&self.slots).acquire_owned().await;
            let worker = Arc::clone(&self.workers).acquire_owned().await;
            match (slot, worker) {
                (Ok(slot), Ok(worker)) => Ok(Running {
                    _slot: slot,
                    _worker: worker,
                }),
                _ => Err(ExecError::ShuttingDown),
            }
        };
        tokio::select! {
            // A close while the worker was taken: given back, not run.
            running = waited => running.and_then(|running| {
                if self.closed.load(Ordering::Acquire) {
                    Err(ExecError::ShuttingDown)
                } else {
                    Ok(running)
                }
            }),
            () = &mut closing => Err(ExecError::ShuttingDown),
        }
    }

    /// Waits for a worker. Cancel-safe: dropping the future gives the place back.
    pub(crate) async fn start(&self, ticket: Ticket) -> Result<Running, ExecError> {
        let worker = Arc::clone(&self.workers)
            .acquire_owned()
            .await
            .map_err(|_| ExecError::ShuttingDown)?;
        Ok(Running {
            _slot: ticket.slot,
            _worker: worker,
        })
    }

    /// Admits nothing more; what was admitted still runs.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
    }

    /// Waits until every admitted execution has ended, at most `deadline`; whether they did.
    pub(crate) async fn drain(&self, deadline: Duration) -> bool {
        let all = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        tokio::time::timeout(deadline, self.slots.acquire_many(all))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }

    pub(crate) fn load(&self) -> Load {
        let running = self.worker_count - self.workers.available_permits();
        let admitted = self.capacity - self.slots.available_permits();
        Load {
            running,
            queued: admitted.saturating_sub(running),
            workers: self.worker_count,
            queue_size: self.capacity - self.worker_count,
        }
    }

    /// A guess at when a slot frees: a second per queue's worth of work per worker.
    fn retry_after_secs(&self) -> u64 {
        let per_worker = (self.capacity / self.worker_count) as u64;
        per_worker.clamp(1, 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_dropped_waiter_gives_its_place_back() {
        let admission = Admission::new(1, 1);
        let first = admission.start(admission.admit().expect("a slot")).await;
        let running = first.expect("a worker");
        let waiting = admission.admit().expect("a queued slot");
        assert!(matches!(
            admission.admit(),
            Err(ExecError::QueueFull { .. })
        ));
        let load = admission.load();
        assert_eq!((load.running, load.queued), (1, 1));
        // The client went away before its turn: its future is dropped, its place is free.
        let wait = admission.start(waiting);
        drop(wait);
        assert!(admission.admit().is_ok());
        drop(running);
        admission.close();
        assert!(matches!(admission.admit(), Err(ExecError::ShuttingDown)));
        assert!(admission.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_waiting_admission_gets_the_next_free_place_or_the_close() {
        let admission = Arc::new(Admission::new(1, 0));
        let running = admission.admit().expect("the only slot");
        let running = admission.start(running).await.expect("the only worker");
        let waiter = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit_waiting().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "it waits for the slot");
        drop(running);
        assert!(waiter.await.expect("joined").is_ok());
        // A waiter goes before a later `admit`, and a close ends its wait.
        let held = admission.admit().expect("free again");
        let waiter = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit_waiting().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            admission.admit(),
            Err(ExecError::QueueFull { .. })
        ));
        let running = waiter.await.expect("joined").expect("the waiter's place");
        assert_eq!(admission.load().running, 1, "and its worker");
        drop(running);
        let held = admission.admit().expect("free again");
        let waiter = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit_waiting().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        admission.close();
        assert!(matches!(
            waiter.await.expect("joined"),
            Err(ExecError::ShuttingDown)
        ));
        drop(held);
        assert!(matches!(
            admission.admit_waiting().await,
            Err(ExecError::ShuttingDown)
        ));
    }
}
