//! What talking to another process over a socket needs, whoever does it (the runtimes'
//! metadata sources, OTLP delivery, the page's server): a retry delay that doubles up to a cap,
//! jittered so that the exporters of a cluster do not knock on a shared daemon in lockstep, a
//! sleep until an optional deadline, a shutdown signal, an error with all its causes for a log
//! line, and a stream that reports what each read and write came to.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A delay that starts at `min` and doubles after each failure up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now, jittered; the next one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(d)
    }

    /// Back to `min`, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A delay between `d / 2` and `d` (full jitter would allow waits near zero). std's
/// `RandomState` is random enough for this and saves a dependency.
pub fn jitter(d: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let frac = (h.finish() % 1024) as u32;
    d / 2 + (d / 2) * frac / 1024
}

/// Sleeps until `at`, or forever when there is no deadline (one branch of a `select!`).
pub async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A shutdown signal: [`Stop::stop`] ends every future [`Stop::stopped`] gave, before or after.
#[derive(Debug, Default)]
pub struct Stop(tokio::sync::watch::Sender<bool>);

impl Stop {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// A future that ends once [`Stop::stop`] is called.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// An error and every error below it, `outer: inner: innermost`, for a log line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// What one read or write of an [`Observed`] stream came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Bytes read; 0 is the end of the stream (only said when there was room to read into).
    Read(usize),
    Wrote(usize),
    Failed,
}

/// A stream that tells `on` what each read and write came to, and is otherwise the stream.
pub struct Observed<S, F> {
    inner: S,
    on: F,
}

impl<S, F: FnMut(Io)> Observed<S, F> {
    pub fn new(inner: S, on: F) -> Observed<S, F> {
        Observed { inner, on }
    }

    fn wrote(&mut self, r: &Poll<std::io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) => (self.on)(Io::Wrote(*n)),
            Poll::Ready(Err(_)) => (self.on)(Io::Failed),
            Poll::Pending => {}
        }
    }
}

impl<S: AsyncRead + Unpin, F: FnMut(Io) + Unpin> AsyncRead for Observed<S, F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining() > 0);
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if room => (self.on)(Io::Read(buf.filled().len() - before)),
            Poll::Ready(Err(_)) => (self.on)(Io::Failed),
            _ => {}
        }
        r
    }
}

impl<S: AsyncWrite + Unpin, F: FnMut(Io) + Unpin> AsyncWrite for Observed<S, F> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_within_bounds() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(4));
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let caps = [250, 500, 1000, 1000].map(Duration::from_millis);
        for cap in caps {
            let d = b.next_delay();
            assert!(d <= cap && d >= cap / 2, "{d:?} against {cap:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(250));
    }

    #[test]
    fn chain_names_every_cause() {
        let inner = std::io::Error::other("refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "refused");
        #[derive(Debug, thiserror::Error)]
        #[error("connect")]
        struct Wrap(#[source] std::io::Error);
        assert_eq!(
            error_chain(&Wrap(std::io::Error::other("refused"))),
            "connect: refused"
        );
    }
}
