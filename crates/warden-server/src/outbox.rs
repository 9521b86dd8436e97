//! The queue between a running program's output and a client that reads it as it comes (the
//! server-sent events of `/v1/executions/stream`, the WebSockets of `/v1/executions/connect`
//! and Piston's `/api/v2/connect`). The program's side never waits: the sandbox's watch also
//! enforces the run's limits, so it cannot block on a slow client. What the client has not
//! taken yet is merged instead: a chunk joins the queue's last event when that event is output
//! of the same stream, so the queue holds about the bytes written (bounded by the output
//! limit), not one event per `write(2)` (a program writing one byte at a time made a million
//! events a second, 150 bytes of the server's memory each). Past [`MERGE_ANYWHERE`] queued
//! events (the two streams alternating), a chunk joins the stream's last queued event wherever
//! it is: a client that far behind sees each stream's output whole and in order, and the two
//! streams' interleaving at that grain. A client that keeps up gets each chunk as it comes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use warden_core::Stream;

/// How many events may wait before a chunk merges into its stream's last one anywhere.
pub(crate) const MERGE_ANYWHERE: usize = 1024;

/// An event that may carry a chunk of a stream's output.
pub(crate) trait Event: Sized {
    /// The chunk's stream and bytes, when this event is output that later chunks may join.
    fn output(&mut self) -> Option<(Stream, &mut Vec<u8>)>;
}

struct Queue<E> {
    events: VecDeque<E>,
    senders: usize,
    receiving: bool,
}

struct Shared<E> {
    queue: Mutex<Queue<E>>,
    ready: Notify,
}

impl<E> Shared<E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<E>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The program's side; cloned for each producer. The queue closes when the last is dropped.
pub(crate) struct Sender<E>(Arc<Shared<E>>);

/// The client's side.
pub(crate) struct Receiver<E>(Arc<Shared<E>>);

/// A new queue.
pub(crate) fn channel<E: Event>() -> (Sender<E>, Receiver<E>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            events: VecDeque::new(),
            senders: 1,
            receiving: true,
        }),
        ready: Notify::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl<E: Event> Sender<E> {
    /// Queues `event`, merged into a waiting one where it can be; `Err` with it when the
    /// receiver is gone.
    pub(crate) fn send(&self, mut event: E) -> Result<(), E> {
        let mut queue = self.0.lock();
        if !queue.receiving {
            return Err(event);
        }
        if let Some(stream) = event.output().map(|(stream, _)| stream) {
            let anywhere = queue.events.len() >= MERGE_ANYWHERE;
            let joined = if anywhere {
                queue
                    .events
                    .iter_mut()
                    .rev()
                    .find_map(|e| e.output().filter(|(s, _)| *s == stream))
            } else {
                queue
                    .events
                    .back_mut()
                    .and_then(Event::output)
                    .filter(|(s, _)| *s == stream)
            };
            if let (Some((_, waiting)), Some((_, bytes))) = (joined, event.output()) {
                waiting.append(bytes);
                return Ok(());
            }
        }
        queue.events.push_back(event);
        drop(queue);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl<E> Clone for Sender<E> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Self(Arc::clone(&self.0))
    }
}

impl<E> Drop for Sender<E> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.senders -= 1;
        if queue.senders == 0 {
            drop(queue);
            self.0.ready.notify_one();
        }
    }
}

impl<E> Receiver<E> {
    /// The next event; `None` once every sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<E> {
        let shared = Arc::clone(&self.0);
        loop {
            // Made before the check, so that a send between the check and the wait is not
            // missed (`notify_one` also keeps a permit for a waiter yet to come).
            let notified = shared.ready.notified();
            {
                let mut queue = shared.lock();
                if let Some(next) = queue.events.pop_front() {
                    return Some(next);
                }
                if queue.senders == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next event if one waits.
    pub(crate) fn try_recv(&mut self) -> Option<E> {
        self.0.lock().events.pop_front()
    }
}

impl<E> Drop for Receiver<E> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.receiving = false;
        queue.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Test {
        Out(Stream, Vec<u8>),
        Other(u32),
    }

    impl Event for Test {
        fn output(&mut self) -> Option<(Stream, &mut Vec<u8>)> {
            match self {
                Test::Out(stream, bytes) => Some((*stream, bytes)),
                Test::Other(_) => None,
            }
        }
    }

    fn out(stream: Stream, text: &str) -> Test {
        Test::Out(stream, text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn waiting_output_of_one_stream_is_merged_and_the_order_kept() {
        let (tx, mut rx) = channel();
        for chunk in ["a", "b", "c"] {
            tx.send(out(Stream::Stdout, chunk)).expect("sent");
        }
        tx.send(out(Stream::Stderr, "x")).expect("sent");
        tx.send(Test::Other(1)).expect("sent");
        tx.send(out(Stream::Stderr, "y")).expect("sent");
        drop(tx);
        assert_eq!(rx.recv().await, Some(out(Stream::Stdout, "abc")));
        assert_eq!(rx.recv().await, Some(out(Stream::Stderr, "x")));
        assert_eq!(rx.recv().await, Some(Test::Other(1)));
        assert_eq!(rx.recv().await, Some(out(Stream::Stderr, "y")));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_each_chunk_as_it_comes() {
        let (tx, mut rx) = channel();
        tx.send(out(Stream::Stdout, "a")).expect("sent");
        assert_eq!(rx.recv().await, Some(out(Stream::Stdout, "a")));
        tx.send(out(Stream::Stdout, "b")).expect("sent");
        assert_eq!(rx.recv().await, Some(out(Stream::Stdout, "b")));
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.send(Test::Other(7)).expect("sent");
        assert_eq!(waiter.await.expect("joined"), Some(Test::Other(7)));
    }

    /// Alternating streams a million times behind a client that reads nothing stay a bounded
    /// number of events holding every byte of each stream, in order.
    #[tokio::test]
    async fn a_client_far_behind_holds_a_bounded_number_of_events() {
        let (tx, mut rx) = channel();
        for i in 0..1_000_000u32 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            tx.send(Test::Out(stream, vec![b'0' + (i % 10) as u8]))
                .expect("sent");
        }
        assert!(tx.0.lock().events.len() <= MERGE_ANYWHERE);
        drop(tx);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(Test::Out(stream, bytes)) = rx.recv().await {
            match stream {
                Stream::Stdout => stdout.extend(bytes),
                Stream::Stderr => stderr.extend(bytes),
            }
        }
        let expected = |first: u32| -> Vec<u8> {
            (0..500_000u32)
                .map(|k| b'0' + ((2 * k + first) % 10) as u8)
                .collect()
        };
        assert_eq!(stdout, expected(0));
        assert_eq!(stderr, expected(1));
    }

    #[tokio::test]
    async fn a_gone_receiver_refuses_what_comes() {
        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(Test::Other(1)), Err(Test::Other(1)));
    }
}
