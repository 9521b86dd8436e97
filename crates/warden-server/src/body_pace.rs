//! A request body must keep coming: after a grace of `header_read_timeout`, at an average of
//! at least [`MIN_RATE`], or its reading fails (the handler answers, hyper closes the
//! connection). hyper bounds only the headers' arrival, so a client that trickled a body (a
//! byte every few seconds of a chunked one) held its connection slot for ever, and a token
//! with `max_connections` such requests kept every other client out. Runs in the server
//! process, on every request with a body, before any extractor reads it.
//!
//! A body whose `Content-Length` is over `max_body` is refused here before a byte of it is
//! read: axum's limit counts the bytes as they arrive, so such a request waited for its body
//! (the client was even asked for it with `100 Continue`), to be refused once it had come, or
//! as too slow when it did not.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;

use crate::state::AppState;

/// The slowest average a body may arrive at, in bytes per second, after the grace: a 64 MiB
/// upload may take an hour, a trickle is cut within seconds.
pub(crate) const MIN_RATE: f64 = 16.0 * 1024.0;

tokio::task_local! {
    /// The `max_body` of the request being served, for the refusal of a body past it: axum's
    /// rejection (413) says neither the limit nor its setting, and is turned into each API's
    /// error where no state is at hand ([`body_too_large`]).
    static MAX_BODY: usize;
}

/// What a body past `max_body` is answered (413), in each API's error shape: the limit and
/// its setting, as a WebSocket message past it is told (`routes/connect.rs`).
pub(crate) fn body_too_large() -> String {
    match MAX_BODY.try_with(|max| *max) {
        Ok(max) => {
            format!(
                "the request body is larger than the server takes ({max} bytes, [server] max_body)"
            )
        }
        Err(_) => "the request body is larger than the server takes ([server] max_body)".to_owned(),
    }
}

/// Wraps the body of `request`, if it has one, so that it must keep its pace; and serves it
/// knowing its `max_body` ([`body_too_large`]).
pub(crate) async fn pace(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let max_body = state.options().max_body;
    MAX_BODY.scope(max_body, paced(&state, request, next)).await
}

async fn paced(state: &AppState, request: Request, next: Next) -> Response {
    if announced_over(request.headers(), state.options().max_body) {
        // The body is never polled: hyper neither asks for it (`100 Continue`) nor waits for
        // it, and closes the connection after the answer.
        return next.run(request.map(|_| over_the_limit())).await;
    }
    let has_body = request
        .headers()
        .contains_key(axum::http::header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let grace = state.options().header_read_timeout;
    let request = request.map(|body| {
        Body::from_stream(Paced {
            inner: body.into_data_stream(),
            started: Instant::now(),
            grace,
            received: 0,
            timer: None,
        })
    });
    next.run(request).await
}

/// Whether `headers` announce a body longer than `max_body`.
pub(crate) fn announced_over(headers: &axum::http::HeaderMap, max_body: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > max_body as u64)
}

/// A body that fails at its first read as one past axum's limit does: every extractor then
/// answers its API's 413 (`BytesRejection`'s `LengthLimitError`), as for a body that grew past
/// `max_body`.
fn over_the_limit() -> Body {
    Body::new(http_body_util::Limited::new(
        http_body_util::Full::new(Bytes::from_static(b"\0")),
        0,
    ))
}

/// A body's chunks, failing once they fall behind their pace.
struct Paced {
    inner: BodyDataStream,
    started: Instant,
    grace: Duration,
    received: u64,
    /// Armed at the current deadline while waiting; dropped when a chunk moves it.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    fn deadline(&self) -> Instant {
        self.started + self.grace + Duration::from_secs_f64(self.received as f64 / MIN_RATE)
    }
}

/// Why the body's reading failed.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly (under 16 KiB/s after the first seconds)")]
struct TooSlow;

impl Stream for Paced {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                this.timer = None;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => {
                let deadline = this.deadline();
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    tracing::debug!(received = this.received, "request body too slow; cut");
                    return Poll::Ready(Some(Err(axum::Error::new(TooSlow))));
                }
                Poll::Pending
            }
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequest;
    use tokio_stream::StreamExt;

    /// The body that stands for one announced over `max_body` is refused by axum's extractors
    /// as a body past the limit: 413, not a failure to read (400).
    #[tokio::test]
    async fn an_announced_body_over_the_limit_is_refused_as_past_the_limit() {
        let request = Request::new(over_the_limit());
        let refused = Bytes::from_request(request, &())
            .await
            .expect_err("refused");
        assert_eq!(refused.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_LENGTH,
            "1025".parse().expect("a value"),
        );
        assert!(announced_over(&headers, 1024));
        assert!(!announced_over(&headers, 1025));
        headers.insert(
            axum::http::header::CONTENT_LENGTH,
            "many".parse().expect("a value"),
        );
        assert!(!announced_over(&headers, 0), "hyper refuses it before");
    }

    /// A body that trickles a byte at a time is cut after the grace; one that keeps its pace
    /// is read whole.
    #[tokio::test]
    async fn a_trickled_body_is_cut_and_a_paced_one_is_read() {
        let mut paced = paced_body(vec![1; 100], Duration::from_millis(100));
        let mut read = 0;
        let failed = loop {
            match paced.next().await {
                Some(Ok(chunk)) => read += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("a trickle of {read} bytes was read whole"),
            }
        };
        assert!(failed.to_string().contains("too slowly"), "{failed}");
        assert!(read < 100, "{read} bytes read before the cut");

        // 80 KiB/s, five times the least.
        let mut paced = paced_body(vec![8192; 10], Duration::from_millis(100));
        let mut read = 0;
        while let Some(chunk) = paced.next().await {
            read += chunk.expect("kept its pace").len();
        }
        assert_eq!(read, 10 * 8192);
    }

    /// A body of chunks of the given sizes, one after each pause, paced with a grace of
    /// 300 ms.
    fn paced_body(sizes: Vec<usize>, pause: Duration) -> Paced {
        Paced {
            inner: Body::from_stream(async_stream_of(sizes, pause)).into_data_stream(),
            started: Instant::now(),
            grace: Duration::from_millis(300),
            received: 0,
            timer: None,
        }
    }

    /// Chunks of the given sizes, one after each pause.
    fn async_stream_of(
        sizes: Vec<usize>,
        pause: Duration,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        tokio_stream::iter(sizes).then(move |size| async move {
            tokio::time::sleep(pause).await;
            Ok(Bytes::from(vec![b'x'; size]))
        })
    }
}
