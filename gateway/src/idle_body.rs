//! A request body that fails once the client has sent nothing for a while, so a stalled
//! upload ends (`RequestTimeout`, as S3 answers) and frees what it holds instead of waiting
//! forever.

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The error text; the S3 layer recognises it to answer `RequestTimeout`.
pub const IDLE_MESSAGE: &str = "request body idle for too long";

#[derive(Debug)]
pub struct Idle;

impl std::fmt::Display for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(IDLE_MESSAGE)
    }
}

impl std::error::Error for Idle {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// `inner`, failing with `Idle` once it has had to wait `idle` for a frame. Only time
    /// spent waiting on the client counts: the clock starts when a read finds nothing ready,
    /// not while the server is busy elsewhere (a body behind `Expect: 100-continue` is not
    /// even asked for until the server reads it). The timer is made on the first wait and
    /// moved only when it fires early, not on every frame.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        deadline: Option<Pin<Box<Sleep>>>,
        idle: Duration,
        waiting_since: Option<Instant>,
    }
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            deadline: None,
            idle,
            waiting_since: None,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.waiting_since = None;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let due = *this.waiting_since.get_or_insert_with(Instant::now) + *this.idle;
        // A timer left from an earlier wait fires before `due`; it is moved on then.
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            ready!(deadline.as_mut().poll(cx));
            if Instant::now() >= due {
                return Poll::Ready(Some(Err(Box::new(Idle))));
            }
            deadline.as_mut().reset(due);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn a_body_that_keeps_coming_passes_and_a_stalled_one_fails() {
        let idle = Duration::from_millis(200);
        // Frames every 50 ms for half a second: never idle for 200 ms.
        let steady = futures::stream::iter(0..10).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![i as u8])))
        });
        let got = IdleTimeout::new(StreamBody::new(steady), idle)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(got.len(), 10);

        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"first"),
        ))])
        .chain(futures::stream::pending());
        let started = std::time::Instant::now();
        let e = IdleTimeout::new(StreamBody::new(stalled), idle)
            .collect()
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), IDLE_MESSAGE);
        assert!(started.elapsed() >= idle);

        // Frames for 300 ms, then nothing: the timer set during the first frames fires early
        // and must be moved on, and still wake the body once the client really stops.
        let then_stalled = futures::stream::iter(0..6)
            .then(|i| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![i as u8])))
            })
            .chain(futures::stream::pending());
        let started = std::time::Instant::now();
        let e = IdleTimeout::new(StreamBody::new(then_stalled), idle)
            .collect()
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), IDLE_MESSAGE);
        assert!(started.elapsed() >= Duration::from_millis(300) + idle);
    }
}
