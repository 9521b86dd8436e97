//! What the server sends must be taken: a connection whose client does not read what the
//! server writes to it is closed. hyper bounds only the arrival of a request's headers
//! (`header_read_timeout`), so a client that sent pipelined requests and never read the
//! answers held its connection, and its slot among `max_connections`, for as long as it
//! stayed: `max_connections` such clients kept every other one out. Runs in the server
//! process, under every connection (an upgraded WebSocket's too), as the stream hyper reads
//! and writes.
//!
//! Only the time a write waits on the client counts: a connection with nothing to send (a
//! synchronous request waiting for its execution, an event stream or a WebSocket between two
//! messages, a kept-alive connection between two requests) is never cut by it. While a write
//! waits, the client must take something within `header_read_timeout`, and, once that grace
//! is spent, what it took must keep an average of at least [`MIN_RATE`] over the time the
//! server waited on it, as a request body must (`body_pace.rs`): a client reading a few
//! bytes now and then is cut too. What the client took is what left the socket: a write
//! that waits is woken only once the kernel freed a good part of the send buffer (megabytes
//! on loopback), which a client reading 100 KB/s takes longer than the grace to free; so when
//! the grace runs out, the bytes the peer acknowledged meanwhile (`SIOCOUTQ`) count as taken,
//! and a client that took some at the least pace goes on.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The slowest average a client may take what the server sends, in bytes per second, over the
/// time the server waits on it: a request body's least pace.
pub(crate) const MIN_RATE: f64 = crate::body_pace::MIN_RATE;

/// A stream that can tell how much of what it was given it still holds for its peer.
pub(crate) trait SendQueue {
    /// Bytes written to it that the peer has not taken yet, if it can tell.
    fn unsent(&self) -> Option<u64>;
}

impl SendQueue for tokio::net::TcpStream {
    fn unsent(&self) -> Option<u64> {
        use std::os::fd::AsFd;
        warden_sys::network::unacknowledged_bytes(self.as_fd()).ok()
    }
}

/// A connection whose writes fail once the client does not take them in time.
pub(crate) struct Paced<S> {
    inner: S,
    /// How long a write may wait without progress; also the grace before the pace counts.
    grace: Duration,
    /// Bytes the stream took from the server.
    written: u64,
    /// Bytes the client had taken when the current wait's timer was armed.
    taken_at_arm: u64,
    /// How long writes waited on the client before the current wait.
    waited: Duration,
    /// When the current wait began: a write is pending.
    waiting_since: Option<Instant>,
    /// Armed at the current wait's deadline.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the client did not take what the server sent (nothing within the timeout, or under 16 KiB/s)"
)]
struct NotTaken;

impl<S: SendQueue> Paced<S> {
    /// `inner`, its writes given `grace` without progress.
    pub(crate) fn new(inner: S, grace: Duration) -> Self {
        Self {
            inner,
            grace,
            written: 0,
            taken_at_arm: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// Bytes the client took: what the stream took, less what it still holds.
    fn taken(&self) -> u64 {
        self.written
            .saturating_sub(self.inner.unsent().unwrap_or(0))
    }

    /// When the wait that began at `since` fails: `grace` after it, or earlier once the time
    /// waited in all passes what the bytes taken allow.
    fn deadline(&self, since: Instant, taken: u64) -> Instant {
        let allowed = self.grace + Duration::from_secs_f64(taken as f64 / MIN_RATE);
        since + allowed.saturating_sub(self.waited).min(self.grace)
    }

    /// Arms the current wait's timer from `now`, what the client took so far noted.
    fn arm(&mut self, now: Instant) {
        let taken = self.taken();
        self.taken_at_arm = taken;
        self.timer = Some(Box::pin(tokio::time::sleep_until(
            self.deadline(now, taken),
        )));
    }

    /// Accounts for one poll of a write: `taken` is how many bytes a ready one took.
    fn account<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
        taken: impl FnOnce(&T) -> usize,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Pending => {
                let mut since = *self.waiting_since.get_or_insert_with(Instant::now);
                if self.timer.is_none() {
                    self.arm(since);
                }
                loop {
                    let timer = self.timer.as_mut().expect("armed above");
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The client may have taken bytes all along without freeing enough of
                    // the buffer to wake the write: they count, held to the least pace (a
                    // new deadline already past fails at once).
                    if self.taken() <= self.taken_at_arm {
                        break;
                    }
                    let now = Instant::now();
                    self.waited += now - since;
                    self.waiting_since = Some(now);
                    since = now;
                    self.arm(now);
                }
                tracing::debug!(written = self.written, "the client does not read; cut");
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    NotTaken,
                )))
            }
            Poll::Ready(Ok(value)) => {
                if let Some(since) = self.waiting_since.take() {
                    self.waited += since.elapsed();
                }
                self.timer = None;
                self.written += taken(&value) as u64;
                Poll::Ready(Ok(value))
            }
            failed => failed,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + SendQueue + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.account(cx, polled, |n| *n)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.account(cx, polled, |n| *n)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// Not counted: a TCP stream's flush is always ready, and one that ended a wait would
    /// give the next write a new grace although the client took nothing.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Waker;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    impl SendQueue for tokio::io::DuplexStream {
        fn unsent(&self) -> Option<u64> {
            None
        }
    }

    /// A socket as the kernel and tokio run one: its buffer takes writes up to `CAPACITY`, a
    /// drain (the peer) takes bytes out of it, and a write that found it full is not tried
    /// again (tokio's readiness) until a third of the buffer is free (the kernel's wake).
    #[derive(Default)]
    struct Socket {
        queued: u64,
        blocked: bool,
        waiting: Option<Waker>,
    }

    const CAPACITY: u64 = 1 << 20;

    #[derive(Clone, Default)]
    struct Kernel(Arc<Mutex<Socket>>);

    impl Kernel {
        fn drain(&self, bytes: u64) {
            let mut socket = self.0.lock().expect("unpoisoned");
            socket.queued = socket.queued.saturating_sub(bytes);
            if socket.queued <= CAPACITY * 2 / 3 {
                socket.blocked = false;
                if let Some(waker) = socket.waiting.take() {
                    waker.wake();
                }
            }
        }
    }

    impl SendQueue for Kernel {
        fn unsent(&self) -> Option<u64> {
            Some(self.0.lock().expect("unpoisoned").queued)
        }
    }

    impl AsyncWrite for Kernel {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let mut socket = self.0.lock().expect("unpoisoned");
            let room = CAPACITY - socket.queued;
            if room == 0 || socket.blocked {
                socket.blocked = true;
                socket.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = room.min(buf.len() as u64);
            socket.queued += n;
            Poll::Ready(Ok(n as usize))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Bug hunt: a client reading 100–200 KB/s, far over the least pace, was cut once an
    /// answer passed the socket's buffers: the write waits until the kernel frees a third of
    /// the buffer, longer than the grace at that pace, and what the client took meanwhile did
    /// not count. It does now; a client that takes nothing is still cut.
    #[tokio::test]
    async fn a_client_that_reads_steadily_is_not_cut_between_wakes_of_the_write() {
        let grace = Duration::from_millis(200);
        let kernel = Kernel::default();
        let drain = kernel.clone();
        // 32 KiB every 50 ms: about 650 KB/s; a third of the buffer takes half a second.
        let reader = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                drain.drain(32 << 10);
            }
        });
        let mut paced = Paced::new(kernel, grace);
        paced
            .write_all(&vec![b'x'; 3 << 20])
            .await
            .expect("a steady reader takes everything");
        reader.abort();

        let mut paced = Paced::new(Kernel::default(), grace);
        let failed = paced
            .write_all(&vec![b'x'; 3 << 20])
            .await
            .expect_err("nobody reads");
        assert_eq!(failed.kind(), std::io::ErrorKind::TimedOut, "{failed}");
    }

    /// A client that reads nothing fails the writes after the grace; one that reads them as
    /// they come takes everything; one that trickles is cut too.
    #[tokio::test]
    async fn a_client_that_does_not_read_is_cut_and_one_that_reads_is_not() {
        let grace = Duration::from_millis(300);
        // A pipe of 4 KiB: it fills at once when nobody reads.
        let (server, _client) = tokio::io::duplex(4096);
        let mut paced = Paced::new(server, grace);
        let failed = paced
            .write_all(&vec![b'x'; 1 << 20])
            .await
            .expect_err("nobody reads");
        assert_eq!(failed.kind(), std::io::ErrorKind::TimedOut, "{failed}");

        let (server, mut client) = tokio::io::duplex(4096);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.map(|_| all.len())
        });
        let mut paced = Paced::new(server, grace);
        paced
            .write_all(&vec![b'x'; 1 << 20])
            .await
            .expect("read as it comes");
        drop(paced);
        assert_eq!(reader.await.expect("joined").expect("read"), 1 << 20);

        // 64 bytes every 100 ms: 640 B/s, far under the least pace, though never idle long.
        let (server, mut client) = tokio::io::duplex(64);
        let trickle = tokio::spawn(async move {
            let mut chunk = [0u8; 64];
            while let Ok(n) = client.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut paced = Paced::new(server, grace);
        let failed = paced
            .write_all(&vec![b'x'; 1 << 20])
            .await
            .expect_err("a trickle is cut");
        assert_eq!(failed.kind(), std::io::ErrorKind::TimedOut, "{failed}");
        drop(paced);
        trickle.await.expect("joined");
    }

    /// Time with nothing to send does not count: a connection idle for longer than the grace
    /// between two writes still writes.
    #[tokio::test]
    async fn idle_time_between_writes_does_not_count() {
        let (server, mut client) = tokio::io::duplex(4096);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.map(|_| all.len())
        });
        let mut paced = Paced::new(server, Duration::from_millis(100));
        paced.write_all(b"first").await.expect("written");
        tokio::time::sleep(Duration::from_millis(400)).await;
        paced
            .write_all(b"second")
            .await
            .expect("written after idling");
        drop(paced);
        assert_eq!(reader.await.expect("joined").expect("read"), 11);
    }
}
