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
//! bytes now and then is cut too.

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

/// A connection whose writes fail once the client does not take them in time.
pub(crate) struct Paced<S> {
    inner: S,
    /// How long a write may wait without progress; also the grace before the pace counts.
    grace: Duration,
    /// Bytes the client took.
    written: u64,
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

impl<S> Paced<S> {
    /// `inner`, its writes given `grace` without progress.
    pub(crate) fn new(inner: S, grace: Duration) -> Self {
        Self {
            inner,
            grace,
            written: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// When the wait that began at `since` fails: `grace` after it, or earlier once the time
    /// waited in all passes what the bytes taken allow.
    fn deadline(&self, since: Instant) -> Instant {
        let allowed = self.grace + Duration::from_secs_f64(self.written as f64 / MIN_RATE);
        since + allowed.saturating_sub(self.waited).min(self.grace)
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
                let since = *self.waiting_since.get_or_insert_with(Instant::now);
                if self.timer.is_none() {
                    let deadline = self.deadline(since);
                    self.timer = Some(Box::pin(tokio::time::sleep_until(deadline)));
                }
                let timer = self.timer.as_mut().expect("armed above");
                if timer.as_mut().poll(cx).is_ready() {
                    tracing::debug!(written = self.written, "the client does not read; cut");
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        NotTaken,
                    )));
                }
                Poll::Pending
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
