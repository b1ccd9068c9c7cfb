//! What keeps the page's server bounded whatever clients do: a registry of connections (capped,
//! the longest-idle or most-stalled one evicted to make room), a cap on responses in flight,
//! a body that hands the page to the socket in copied chunks (so what a slow client holds is a
//! chunk, not a page), and I/O that records when each connection last made progress.
//!
//! The page a response is cut from stays in memory until the response's body is dropped; the
//! watchdog in the server (`http::server`) closes a connection whose response outlives its deadline or is
//! two pages behind, so at most three pages (and their gzip copies) are ever pinned.

use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::remote::{Io, Observed};

/// A response that wrote nothing for this long is stalled, and may be evicted for a newcomer.
pub const STALLED_AFTER: Duration = Duration::from_secs(1);
/// What the body hands to hyper at a time (copied, so the socket's queue never holds a slice
/// of a whole page).
const CHUNK: usize = 64 * 1024;

/// One open connection.
pub struct Conn {
    id: u64,
    /// Responses whose body is still being written.
    pub busy: AtomicUsize,
    /// Milliseconds since the server's epoch: when the oldest response in flight started.
    pub busy_since: AtomicU64,
    /// Milliseconds since the epoch: the last byte written (or the accept).
    pub last_write: AtomicU64,
    /// Milliseconds since the epoch: the last byte read or written.
    pub last_activity: AtomicU64,
    /// The oldest page generation a response in flight is cut from.
    pub generation: AtomicU64,
    pub cancel: Notify,
    /// Closed to make room: counted in [`Registry::closing`] until its task has ended.
    evicted: std::sync::atomic::AtomicBool,
}

/// The connections of one server.
pub struct Registry {
    conns: Mutex<Vec<Arc<Conn>>>,
    next: AtomicU64,
    pub epoch: Instant,
    pub cap: usize,
    /// Connections told to close to make room whose socket is not closed yet: each closes
    /// when its task next runs, which under load can be after many more accepts.
    closing: AtomicUsize,
    /// Signalled when one of those has closed.
    pub closed: Notify,
}

impl Registry {
    pub fn new(cap: usize) -> Registry {
        Registry {
            conns: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            epoch: Instant::now(),
            cap,
            closing: AtomicUsize::new(0),
            closed: Notify::new(),
        }
    }

    /// Connections told to close whose socket is still open.
    pub fn closing(&self) -> usize {
        self.closing.load(Ordering::Acquire)
    }

    /// Tells `c` (already out of the list) to close, and counts it until it has.
    fn evict(&self, c: Arc<Conn>) {
        c.evicted.store(true, Ordering::Release);
        self.closing.fetch_add(1, Ordering::AcqRel);
        c.cancel.notify_one();
    }

    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, evicting one when at the cap: the longest idle, else the
    /// longest stalled. `None`: every connection is busy and making progress (refuse the new
    /// one).
    pub fn admit(&self) -> Option<Arc<Conn>> {
        let now = self.now_ms();
        let mut conns = self.lock();
        if conns.len() >= self.cap {
            let victim = pick(&conns, now)?;
            self.evict(conns.swap_remove(victim));
        }
        let c = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            busy_since: AtomicU64::new(now),
            last_write: AtomicU64::new(now),
            last_activity: AtomicU64::new(now),
            generation: AtomicU64::new(u64::MAX),
            cancel: Notify::new(),
            evicted: std::sync::atomic::AtomicBool::new(false),
        });
        conns.push(c.clone());
        Some(c)
    }

    /// Closes the most stalled connection with a response in flight (not `except`), to make
    /// room for a request. Whether there was one.
    pub fn evict_stalled(&self, except: &Conn) -> bool {
        let now = self.now_ms();
        let mut conns = self.lock();
        let idx = most_stalled(&conns, now, Some(except.id));
        idx.map(|i| self.evict(conns.swap_remove(i))).is_some()
    }

    /// The connection's task has ended (its socket is closed).
    pub fn remove(&self, c: &Conn) {
        self.lock().retain(|o| o.id != c.id);
        if c.evicted.load(Ordering::Acquire) {
            self.closing.fetch_sub(1, Ordering::AcqRel);
            self.closed.notify_one();
        }
    }
}

fn stalled(c: &Conn, now: u64) -> bool {
    now.saturating_sub(c.last_write.load(Ordering::Relaxed)) >= STALLED_AFTER.as_millis() as u64
}

/// The idle connection unused longest, else the most stalled busy one.
fn pick(conns: &[Arc<Conn>], now: u64) -> Option<usize> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
        .min_by_key(|(_, c)| c.last_activity.load(Ordering::Relaxed))
        .map(|(i, _)| i)
        .or_else(|| most_stalled(conns, now, None))
}

/// The stalled busy connection (not the one with id `except`) that wrote last longest ago.
fn most_stalled(conns: &[Arc<Conn>], now: u64, except: Option<u64>) -> Option<usize> {
    let busy = |c: &Conn| c.busy.load(Ordering::Acquire) > 0;
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| Some(c.id) != except && busy(c) && stalled(c, now))
        .min_by_key(|(_, c)| c.last_write.load(Ordering::Relaxed))
        .map(|(i, _)| i)
}

/// Marks a connection busy while a response's body lives, and holds its in-flight permit.
pub struct ResponseGuard {
    conn: Arc<Conn>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl ResponseGuard {
    pub fn new(
        conn: Arc<Conn>,
        registry: &Registry,
        generation: u64,
        permit: Option<OwnedSemaphorePermit>,
    ) -> ResponseGuard {
        let now = registry.now_ms();
        if conn.busy.fetch_add(1, Ordering::AcqRel) == 0 {
            conn.busy_since.store(now, Ordering::Relaxed);
            conn.generation.store(generation, Ordering::Relaxed);
            // The clock for stalling starts with the response, not with the last one.
            conn.last_write.store(now, Ordering::Relaxed);
        } else {
            conn.generation.fetch_min(generation, Ordering::Relaxed);
        }
        ResponseGuard {
            conn,
            _permit: permit,
        }
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if self.conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn.generation.store(u64::MAX, Ordering::Relaxed);
        }
    }
}

/// A response body: the bytes handed over in copied chunks, with the guard that counts the
/// response in flight until the last chunk was taken. A page kept only compressed is sent
/// plain by decompressing it chunk by chunk as the client takes them, so that a client that
/// does not read holds the inflater's state (tens of KiB), not a whole decompressed page.
pub struct Held {
    /// The bytes, or the inflater over the compressed page.
    source: Box<dyn Read + Send + Sync>,
    /// Bytes still to come.
    left: usize,
    guard: Option<ResponseGuard>,
}

impl Held {
    pub fn new(data: Bytes, guard: Option<ResponseGuard>) -> Held {
        Held {
            left: data.len(),
            source: Box::new(std::io::Cursor::new(data)),
            guard,
        }
    }

    /// The plain text of `gzip` (the daemon's own compression of `plain_len` bytes),
    /// decompressed as it is taken.
    pub fn gunzip(gzip: Bytes, plain_len: usize, guard: Option<ResponseGuard>) -> Held {
        let dec = flate2::read::GzDecoder::new(std::io::Cursor::new(gzip));
        Held {
            source: Box::new(dec),
            left: plain_len,
            guard,
        }
    }

    /// The next chunk, or `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let mut chunk = vec![0; CHUNK.min(self.left)];
        // Cannot fail: the bytes are the page, or the daemon's own compression of it, of
        // exactly `left` more bytes. Were it to, the body ends short and hyper drops the
        // connection rather than send a wrong length.
        if self.source.read_exact(&mut chunk).is_err() {
            self.left = 0;
            return None;
        }
        self.left -= chunk.len();
        Some(Bytes::from(chunk))
    }
}

#[cfg(test)]
impl Held {
    /// Every byte of the body, chunk by chunk as a client takes them.
    pub fn read_all(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk() {
            out.extend_from_slice(&chunk);
        }
        out
    }
}

impl Body for Held {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let chunk = self.next_chunk();
        if chunk.is_none() || self.left == 0 {
            // The page is no longer needed once its last chunk is taken.
            self.guard = None;
            self.source = Box::new(std::io::empty());
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
}

/// A TCP stream that records on `conn` when it last wrote, and when it last read or wrote.
pub fn tracked(
    inner: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
) -> Observed<TcpStream, impl FnMut(Io) + Send + Unpin> {
    Observed::new(inner, move |io| {
        let wrote = match io {
            Io::Wrote(n) if n > 0 => true,
            Io::Read(n) if n > 0 => false,
            _ => return,
        };
        let now = registry.now_ms();
        if wrote {
            conn.last_write.store(now, Ordering::Relaxed);
        }
        conn.last_activity.store(now, Ordering::Relaxed);
    })
}

/// Accept errors (out of descriptors, mostly): a growing pause, and a log line at most every
/// 30 s with how many were not logged.
#[derive(Default)]
pub struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

const LOG_EVERY: Duration = Duration::from_secs(30);

impl AcceptBackoff {
    /// How long to pause after `e`.
    pub fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.delay = (self.delay * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let due = self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due {
            // EMFILE, ENFILE
            let emfile = matches!(e.raw_os_error(), Some(23 | 24));
            let hint = if emfile {
                " (out of file descriptors: the collector keeps its own; lower \
                 --web.max-connections or raise the limit)"
            } else {
                ""
            };
            tracing::warn!(
                not_logged = self.suppressed,
                "accepting a connection on the Prometheus page failed: {e}{hint}; pausing up to 1 s between attempts"
            );
            self.last_log = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.delay
    }

    pub fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_evicts_idle_first_then_stalled() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        a.busy.store(1, Ordering::Relaxed);
        a.last_write.store(0, Ordering::Relaxed);
        // b is idle: it goes first, whatever a's state.
        let c = r.admit().unwrap();
        assert_eq!(r.lock().len(), 2);
        assert!(!r.lock().iter().any(|x| x.id == b.id));
        // Both busy; a is stalled only once a second has passed since its last write.
        c.busy.store(1, Ordering::Relaxed);
        c.last_write.store(u64::MAX / 2, Ordering::Relaxed);
        a.last_write.store(r.now_ms(), Ordering::Relaxed);
        assert!(r.admit().is_none(), "nothing evictable: refuse");
        a.last_write.store(0, Ordering::Relaxed);
        std::thread::sleep(STALLED_AFTER);
        assert!(r.admit().is_some());
        assert!(!r.lock().iter().any(|x| x.id == a.id));
    }

    #[test]
    fn body_copies_chunks_and_releases_at_the_end() {
        use http_body_util::BodyExt;
        let r = Arc::new(Registry::new(4));
        let conn = r.admit().unwrap();
        let page = Bytes::from(vec![7u8; CHUNK * 2 + 5]);
        let g = ResponseGuard::new(conn.clone(), &r, 3, None);
        assert_eq!(conn.busy.load(Ordering::Relaxed), 1);
        assert_eq!(conn.generation.load(Ordering::Relaxed), 3);
        let body = Held::new(page.clone(), Some(g));
        assert_eq!(body.size_hint().exact(), Some(page.len() as u64));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(got, page);
        assert_eq!(conn.busy.load(Ordering::Relaxed), 0);
        assert_eq!(conn.generation.load(Ordering::Relaxed), u64::MAX);
    }
}
