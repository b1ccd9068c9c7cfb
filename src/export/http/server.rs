//! The server of the Prometheus page: `/metrics` serves the page of the collector's newest
//! tick ([`PageState`]: rendered when a scrape asks for it, on the collector's thread; a large
//! page gzip-compressed as it was rendered and decompressed for a client that does not take
//! gzip, a small one compressed on the first request that asks; which generation a scraper last
//! got), `/healthz` says the collector is alive, `/readyz` that the first collection is done;
//! the limits it keeps under abuse ([`ServeOptions`]), and TLS and basic auth when a web config
//! asks for them; any other path goes to the [`Routes`] plugged in, if any. Nothing here reads a
//! cgroup file; a scrape waits at most [`RENDER_WAIT`] for its page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderValue,
    RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::conn::{AcceptBackoff, Conn, Held, Registry, ResponseGuard, tracked};
use super::routes::Routes;
use super::web_config::{WebConfig, WebConfigError, WebConfigHandle, san_allowed};
use crate::config::WebArgs;
use crate::telemetry::{Telemetry, add};

/// How long a scrape waits for the collector to render the page of its newest tick before it
/// is served the page at hand (a collector in a long tick renders right after it).
pub const RENDER_WAIT: Duration = Duration::from_secs(2);
/// How long a client has to send its request headers, and to finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a response slot after a stalled response was evicted.
const SLOT_WAIT: Duration = Duration::from_secs(1);
/// How often each connection's watchdog looks at its response.
const WATCHDOG_EVERY: Duration = Duration::from_millis(250);
/// bcrypt checks at once (each takes tens of milliseconds of CPU).
const AUTH_PARALLEL: usize = 2;
/// Connections closed to make room whose sockets may still be open before accepting waits.
const CLOSING_MAX: usize = 4;
/// Streams per HTTP/2 connection.
const H2_STREAMS: u32 = 8;

/// One rendered page. A large one is kept only gzip-compressed ([`Page::new`]): at 1,000
/// containers the plain page is 3.2 MB and its gzip 0.15 MB, and Prometheus always asks for
/// gzip; the daemon compresses it while rendering ([`PageGzip`]), and a client that does not
/// accept gzip gets it decompressed as it reads ([`Held::gunzip`]). A small one is kept plain
/// and compressed on the first request that asks ([`Page::plain_text`]): compressing every
/// tick would cost more than the memory it saves.
pub struct Page {
    body: Body,
    pub generation: u64,
}

enum Body {
    Plain { plain: Bytes, gzip: OnceLock<Bytes> },
    Gzip { gzip: Bytes, plain_len: usize },
}

impl Page {
    /// A page made by a [`PageGzip`].
    pub fn new(gzip: PageGzip, generation: u64) -> Page {
        let (gzip, plain_len) = gzip.finish();
        Page {
            body: Body::Gzip { gzip, plain_len },
            generation,
        }
    }

    /// A page kept as this text.
    pub fn plain_text(body: Vec<u8>, generation: u64) -> Page {
        Page {
            body: Body::Plain {
                plain: Bytes::from(body),
                gzip: OnceLock::new(),
            },
            generation,
        }
    }

    /// The page's buffer back, when it is kept plain and nobody else holds it (for the next
    /// render).
    pub fn into_buffer(self: Arc<Self>) -> Option<Vec<u8>> {
        let page = Arc::try_unwrap(self).ok()?;
        match page.body {
            Body::Plain { plain, .. } => plain.try_into_mut().ok().map(Vec::from),
            Body::Gzip { .. } => None,
        }
    }

    /// The body gzip-compressed (a plain page's made on the first call).
    pub fn gzipped(&self) -> &Bytes {
        match &self.body {
            Body::Gzip { gzip, .. } => gzip,
            Body::Plain { plain, gzip } => gzip.get_or_init(|| {
                let mut gz = PageGzip::new(plain.len() / 8);
                gz.write(plain);
                gz.finish().0
            }),
        }
    }

    /// The body uncompressed, as a response body: a page kept only compressed is
    /// decompressed as the client reads, so one that stalls holds no copy of the page.
    pub fn plain_body(&self, guard: Option<ResponseGuard>) -> Held {
        match &self.body {
            Body::Plain { plain, .. } => Held::new(plain.clone(), guard),
            Body::Gzip { gzip, plain_len } => Held::gunzip(gzip.clone(), *plain_len, guard),
        }
    }

    /// The length of the body uncompressed.
    pub fn plain_len(&self) -> usize {
        match &self.body {
            Body::Plain { plain, .. } => plain.len(),
            Body::Gzip { plain_len, .. } => *plain_len,
        }
    }
}

/// A page being compressed as it is rendered, piece by piece.
pub struct PageGzip {
    enc: flate2::write::GzEncoder<Vec<u8>>,
    plain_len: usize,
}

impl PageGzip {
    /// `expect`: the compressed size expected (the last page's), reserved at once.
    pub fn new(expect: usize) -> PageGzip {
        // Level 1: a tenth of the time of level 6 for most of the size gain on text this
        // repetitive (FINDINGS: 13 ms vs 126 ms for a 7.6 MB page).
        PageGzip {
            enc: flate2::write::GzEncoder::new(
                Vec::with_capacity(expect + expect / 8),
                flate2::Compression::fast(),
            ),
            plain_len: 0,
        }
    }

    /// Appends a piece of the page.
    pub fn write(&mut self, piece: &[u8]) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = self.enc.write_all(piece);
        self.plain_len += piece.len();
    }

    /// The compressed page and its length uncompressed.
    fn finish(self) -> (Bytes, usize) {
        (
            Bytes::from(self.enc.finish().unwrap_or_default()),
            self.plain_len,
        )
    }
}

/// State shared between the collector thread (which publishes pages) and the server.
///
/// The collector does not render a page every tick: it says which generation its newest data
/// is ([`PageState::advance`]), and a scrape that finds the page at hand older asks for one
/// ([`PageState::fresh`]) and waits while the collector renders it between two reads of the
/// cgroups ([`PageState::take_wanted`], then [`PageState::publish`]). A host scraped every 15 s
/// at a 1 s interval renders one page in 15 ticks, and a quiet unscraped one none (the
/// collector renders a page not asked for yet before it changes what the page would show).
pub struct PageState {
    page: RwLock<Arc<Page>>,
    /// The generation of the collector's newest tick (or publication of final samples).
    latest: AtomicU64,
    /// Set by a scrape that found the page at hand older than `latest`, taken by the collector.
    wanted: AtomicBool,
    /// Woken at each publication.
    published: tokio::sync::Notify,
    /// Wakes the collector's poll (one end of its wake-up socket).
    waker: OnceLock<std::os::unix::net::UnixStream>,
    /// The newest page generation served to a scraper: departed containers stay on the page
    /// until a page holding them was served.
    pub served_generation: AtomicU64,
    pub ready: AtomicBool,
    /// Unix milliseconds of the last completed tick.
    pub last_tick: AtomicU64,
    /// `/healthz` fails when no tick completed for this long (counted from the start until
    /// the first one: a collector stuck before it is not alive either).
    pub stall_after: Duration,
    started: SystemTime,
    pub telemetry: Arc<Telemetry>,
}

impl PageState {
    pub fn new(stall_after: Duration, telemetry: Arc<Telemetry>) -> PageState {
        PageState {
            page: RwLock::new(Arc::new(Page::plain_text(Vec::new(), 0))),
            latest: AtomicU64::new(0),
            wanted: AtomicBool::new(false),
            published: tokio::sync::Notify::new(),
            waker: OnceLock::new(),
            served_generation: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            last_tick: AtomicU64::new(0),
            stall_after,
            started: SystemTime::now(),
            telemetry,
        }
    }

    /// The socket that wakes the collector's poll, for a scrape that wants a page.
    pub fn set_waker(&self, socket: std::os::unix::net::UnixStream) {
        let _ = socket.set_nonblocking(true);
        let _ = self.waker.set(socket);
    }

    /// The collector's data is now of `generation`: a tick completed (or final samples were
    /// published between ticks). The page follows when a scrape asks for it.
    pub fn advance(&self, generation: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_tick
            .store(now.as_millis() as u64, Ordering::Relaxed);
        self.latest.store(generation, Ordering::Release);
        self.ready.store(true, Ordering::Release);
    }

    /// Whether a scrape waits for a page of the newest generation (and no longer, once asked).
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::AcqRel)
    }

    /// Makes `page` the one served, and returns the one it replaces.
    pub fn publish(&self, page: Page) -> Arc<Page> {
        let old = std::mem::replace(
            &mut *self.page.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(page),
        );
        self.published.notify_waiters();
        old
    }

    /// The page of the collector's newest generation: the one at hand if it is that, else
    /// rendered on request, waiting at most [`RENDER_WAIT`] (then the one at hand).
    pub async fn fresh(&self) -> Arc<Page> {
        let page = self.current();
        if page.generation >= self.latest.load(Ordering::Acquire) {
            return page;
        }
        let published = self.published.notified();
        tokio::pin!(published);
        // Listening before asking: a page published in between is not missed.
        published.as_mut().enable();
        self.wanted.store(true, Ordering::Release);
        if let Some(s) = self.waker.get() {
            // A full socket already holds a wake-up: nothing is lost by a failed write.
            let _ = std::io::Write::write(&mut &*s, &[1]);
        }
        let _ = tokio::time::timeout(RENDER_WAIT, published).await;
        self.current()
    }

    /// The generation of the page served.
    pub fn generation(&self) -> u64 {
        self.page
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    pub fn current(&self) -> Arc<Page> {
        self.page.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How long since the last tick completed (since the start, before the first); `None`
    /// before the first when the clock went back past the start.
    fn quiet(&self) -> Option<Duration> {
        let now = SystemTime::now();
        if !self.ready.load(Ordering::Acquire) {
            return now.duration_since(self.started).ok();
        }
        let last = UNIX_EPOCH + Duration::from_millis(self.last_tick.load(Ordering::Relaxed));
        Some(now.duration_since(last).unwrap_or_default())
    }

    /// How long since the last tick completed (since the start, before the first).
    pub fn quiet_for(&self) -> Duration {
        self.quiet().unwrap_or_default()
    }

    /// Whether a tick completed within `stall_after` (or, before the first, the start was that
    /// recent: starting up is allowed as long as a stalled tick would be).
    pub fn healthy(&self) -> bool {
        self.quiet().is_some_and(|d| d <= self.stall_after)
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Held> {
    let mut r = Response::new(Held::new(Bytes::from_static(body.as_bytes()), None));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether `Accept-Encoding` accepts gzip (RFC 9110 12.5.3): `gzip` (or `x-gzip`) with a
/// q-value above zero, or `*` above zero when gzip is not named. `gzip;q=0` refuses it, and a
/// coding that only starts with "gzip" is another coding.
pub fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for v in headers.get_all(ACCEPT_ENCODING) {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut q_ok = true;
            for p in parts {
                let p = p.trim();
                if let Some(q) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q_ok = q.trim().parse::<f32>().is_ok_and(|q| q > 0.0 && q <= 1.0);
                }
            }
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(gzip.unwrap_or(false) || q_ok);
            } else if coding == "*" {
                star = Some(star.unwrap_or(false) || q_ok);
            }
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// An absolute-form target (`GET http://host/path`) that names another host than `Host`: a
/// request meant for a proxy, which this server is not.
fn misdirected(req: &Request<Incoming>) -> bool {
    if req.version() == Version::HTTP_2 {
        return false; // :authority is HTTP/2's Host
    }
    let Some(authority) = req.uri().authority() else {
        return false;
    };
    match req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => !host.trim().eq_ignore_ascii_case(authority.as_str()),
        None => true,
    }
}

impl ServeOptions {
    /// The options the flags say, with the web config loaded (an error stops the exporter at
    /// start).
    pub fn from_args(args: &WebArgs) -> Result<ServeOptions, WebConfigError> {
        let web = (args.web_config_file.as_deref())
            .map(WebConfigHandle::open)
            .transpose()?;
        Ok(ServeOptions {
            max_connections: args.web_max_connections as usize,
            max_requests: args.web_max_requests as usize,
            write_timeout: args.web_write_timeout,
            web,
            routes: None,
        })
    }
}

/// The server's limits and security settings.
#[derive(Clone)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub max_requests: usize,
    pub write_timeout: Duration,
    pub web: Option<Arc<WebConfigHandle>>,
    /// Serves the paths that are not the server's own (`/metrics`, `/healthz`, `/readyz`).
    pub routes: Option<Arc<dyn Routes>>,
}

struct Server {
    state: Arc<PageState>,
    registry: Arc<Registry>,
    requests: Arc<Semaphore>,
    auth_slots: Semaphore,
    write_timeout: Duration,
    web: Option<Arc<WebConfigHandle>>,
    routes: Option<Arc<dyn Routes>>,
}

impl Server {
    async fn respond(&self, req: Request<Incoming>, conn: &Arc<Conn>) -> Response<Held> {
        let web = self.web.as_ref().map(|w| w.current());
        let mut r = self.route(&req, conn, web.as_deref()).await;
        if let Some(w) = &web {
            for (k, v) in &w.headers {
                r.headers_mut().insert(k.clone(), v.clone());
            }
        }
        r
    }

    async fn route(
        &self,
        req: &Request<Incoming>,
        conn: &Arc<Conn>,
        web: Option<&WebConfig>,
    ) -> Response<Held> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        if misdirected(req) {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                "the request names another host: this server is not a proxy\n",
            );
        }
        let path = req.uri().path();
        if let Some(w) = web {
            if let Some(limit) = &w.rate_limit
                && !self.web.as_ref().is_some_and(|h| h.bucket.allow(limit))
            {
                return text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
            }
            // Probes learn one bit (alive, ready) and kubelets send no credentials.
            let probe = matches!(path, "/healthz" | "/readyz");
            if !w.users.is_empty() && !probe && !self.authorized(req, w).await {
                let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                return r;
            }
        }
        match path {
            "/metrics" => self.metrics(req, conn).await,
            "/healthz" if self.state.healthy() => text(StatusCode::OK, "ok\n"),
            "/healthz" => text(StatusCode::SERVICE_UNAVAILABLE, "collection has stalled\n"),
            "/readyz" if self.state.ready.load(Ordering::Acquire) => {
                text(StatusCode::OK, "ready\n")
            }
            "/readyz" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "first collection not done yet\n",
            ),
            _ => self.other(req, conn).await,
        }
    }

    /// A path of the routes plugged in, built on a blocking thread while holding a slot of
    /// `--web.max-requests` (a response may be large); 404 when none answers it.
    async fn other(&self, req: &Request<Incoming>, conn: &Arc<Conn>) -> Response<Held> {
        let not_found = || text(StatusCode::NOT_FOUND, "not found: try /metrics\n");
        let Some(routes) = self.routes.clone() else {
            return not_found();
        };
        let Ok(permit) = self.requests.clone().try_acquire_owned() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight\n",
            );
        };
        let mut head = Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.headers_mut() = req.headers().clone();
        match tokio::task::spawn_blocking(move || routes.route(&head)).await {
            Ok(Some(r)) => {
                let (parts, body) = r.into_parts();
                let guard =
                    ResponseGuard::new(conn.clone(), &self.registry, u64::MAX, Some(permit));
                Response::from_parts(parts, Held::new(body, Some(guard)))
            }
            _ => not_found(),
        }
    }

    async fn authorized(&self, req: &Request<Incoming>, web: &WebConfig) -> bool {
        let Some(handle) = self.web.clone() else {
            return false;
        };
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|h| h.as_bytes().to_vec());
        let Ok(_slot) = self.auth_slots.acquire().await else {
            return false;
        };
        let users = web.users.clone();
        tokio::task::spawn_blocking(move || handle.auth.check(&users, header.as_deref()))
            .await
            .unwrap_or(false)
    }

    async fn metrics(&self, req: &Request<Incoming>, conn: &Arc<Conn>) -> Response<Held> {
        let permit = match self.requests.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                // Full: a stalled response gives way, else the newcomer is refused.
                if self.registry.evict_stalled(conn) {
                    tokio::time::timeout(SLOT_WAIT, self.requests.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                } else {
                    None
                }
            }
        };
        let Some(permit) = permit else {
            let mut r = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many scrapes in flight (--web.max-requests)\n",
            );
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        };
        let page = self.state.fresh().await;
        self.state
            .served_generation
            .fetch_max(page.generation, Ordering::AcqRel);
        add(&self.state.telemetry.scrapes, 1);
        let gzip = accepts_gzip(req.headers());
        let guard = ResponseGuard::new(conn.clone(), &self.registry, page.generation, Some(permit));
        let body = if gzip {
            Held::new(page.gzipped().clone(), Some(guard))
        } else {
            page.plain_body(Some(guard))
        };
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    }

    /// Whether the connection's response in flight must be cut: past its deadline, or cut from
    /// a page two generations old (it pins memory the collector cannot reuse).
    fn overdue(&self, conn: &Conn) -> Option<&'static str> {
        if conn.busy.load(Ordering::Acquire) == 0 {
            return None;
        }
        let age = Duration::from_millis(
            self.registry
                .now_ms()
                .saturating_sub(conn.busy_since.load(Ordering::Relaxed)),
        );
        if age > self.write_timeout {
            return Some("the response was not written within --web.write-timeout");
        }
        let current = self.state.current().generation;
        let generation = conn.generation.load(Ordering::Relaxed);
        if generation != u64::MAX && current >= generation + 2 && age >= Duration::from_secs(1) {
            return Some("the response is two pages behind");
        }
        None
    }
}

/// Binds the listener; a clear error when the address is taken or invalid.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot listen on {addr} for the Prometheus page: {e} (set --prometheus-listen)"
            ),
        )
    })
}

/// The connection cap in force: the flag, but never more than an eighth of the descriptor
/// limit (each cgroup file the collector keeps open is a descriptor, and it comes first).
fn connection_cap(flag: usize) -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let by_fds = usize::try_from(soft / 8).unwrap_or(usize::MAX).max(4);
    flag.clamp(1, by_fds)
}

/// Serves until `shutdown` completes. Each connection runs on its own task; a slow client
/// holds only its own task, and the limits in [`ServeOptions`] bound what all of them hold.
pub async fn serve(
    listener: TcpListener,
    state: Arc<PageState>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let cap = connection_cap(opts.max_connections);
    if cap < opts.max_connections {
        tracing::info!(
            max_connections = cap,
            "fewer connections than --web.max-connections: the descriptor limit keeps most for \
             the collector"
        );
    }
    let server = Arc::new(Server {
        state,
        registry: Arc::new(Registry::new(cap)),
        requests: Arc::new(Semaphore::new(opts.max_requests.max(1))),
        auth_slots: Semaphore::new(AUTH_PARALLEL),
        write_timeout: opts.write_timeout,
        web: opts.web,
        routes: opts.routes,
    });
    let mut backoff = AcceptBackoff::default();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        // Connections closed to make room close when their tasks next run: accept no more
        // until most have, so that open sockets stay near the cap in a rush of connections
        // (the kernel's backlog holds the newcomers meanwhile).
        let waited = Instant::now();
        while server.registry.closing() >= CLOSING_MAX && waited.elapsed() < Duration::from_secs(1)
        {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = server.registry.closed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    let pause = backoff.failed(&e);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
        };
        let Some(conn) = server.registry.admit() else {
            // Every connection is busy and making progress: this one waits its turn elsewhere.
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    "connection refused: all {cap} connections are busy (--web.max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            connection(&server, stream, &conn).await;
            server.registry.remove(&conn);
        });
    }
}

async fn connection(server: &Arc<Server>, stream: TcpStream, conn: &Arc<Conn>) {
    let web = server.web.as_ref().map(|w| w.current());
    let io = tracked(stream, conn.clone(), server.registry.clone());
    let work = async {
        match web.as_ref().and_then(|w| w.tls.clone().map(|t| (w, t))) {
            Some((w, tls)) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                let tls_stream =
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                let (_, session) = tls_stream.get_ref();
                if !san_allowed(&w.allowed_sans, session.peer_certificates()) {
                    tracing::debug!("client certificate carries none of client_allowed_sans");
                    return;
                }
                let h2 = session.alpn_protocol() == Some(b"h2");
                http(server, conn, TokioIo::new(tls_stream), h2).await;
            }
            None => http(server, conn, TokioIo::new(io), false).await,
        }
    };
    tokio::pin!(work);
    let mut watchdog = tokio::time::interval(WATCHDOG_EVERY);
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut work => return,
            _ = conn.cancel.notified() => {
                tracing::debug!("connection closed to make room for another");
                return;
            }
            _ = watchdog.tick() => {
                if let Some(why) = server.overdue(conn) {
                    tracing::debug!("connection closed: {why}");
                    return;
                }
            }
        }
    }
}

async fn http<I>(server: &Arc<Server>, conn: &Arc<Conn>, io: TokioIo<I>, h2: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let s = server.clone();
    let c = conn.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let s = s.clone();
        let c = c.clone();
        async move { Ok::<_, Infallible>(s.respond(req, &c).await) }
    });
    if h2 {
        let _ = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_STREAMS)
            .max_send_buf_size(64 * 1024)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(HEADER_TIMEOUT)
            .serve_connection(io, service)
            .await;
    } else {
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(io, service)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(v: &[&str]) -> bool {
        let mut h = hyper::HeaderMap::new();
        for x in v {
            h.append(ACCEPT_ENCODING, HeaderValue::from_str(x).unwrap());
        }
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding() {
        assert!(gz(&["gzip"]));
        assert!(gz(&["deflate, gzip;q=1.0, *;q=0.5"]));
        assert!(gz(&["GZIP"]));
        assert!(gz(&["x-gzip"]));
        assert!(gz(&["*"]));
        assert!(gz(&["identity", "gzip;q=0.1"]));
        assert!(!gz(&[]));
        assert!(!gz(&["gzip;q=0"]));
        assert!(!gz(&["gzip; q=0.000"]));
        assert!(!gz(&["gzipfoo"]));
        assert!(!gz(&["identity"]));
        assert!(!gz(&["*;q=0"]));
        assert!(
            !gz(&["gzip;q=0, *"]),
            "gzip named and refused: * does not override it"
        );
        assert!(!gz(&["gzip;q=abc"]));
    }

    #[test]
    fn a_page_kept_plain_or_compressed_serves_the_same_bytes() {
        use std::io::Read;
        let text = b"# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n".repeat(1000);
        let gunzip = |b: &Bytes| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&b[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        };
        let plain = Page::plain_text(text.clone(), 1);
        assert_eq!(plain.plain_body(None).read_all(), text);
        assert_eq!(gunzip(plain.gzipped()), text);
        let mut gz = PageGzip::new(0);
        for piece in text.chunks(777) {
            gz.write(piece);
        }
        let kept = Page::new(gz, 2);
        assert_eq!(kept.plain_len(), text.len());
        assert_eq!(kept.plain_body(None).read_all(), text);
        assert_eq!(gunzip(kept.gzipped()), text);
        assert!(kept.gzipped().len() < text.len() / 10);
        assert!(Arc::new(kept).into_buffer().is_none());
        assert_eq!(Arc::new(plain).into_buffer(), Some(text));
    }

    #[test]
    fn a_scrape_gets_the_newest_ticks_page_rendered_on_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(PageState::new(
            Duration::from_secs(60),
            Arc::new(Telemetry::default()),
        ));
        let (tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        state.set_waker(tx);
        state.publish(Page::plain_text(b"tick 1\n".to_vec(), 1));
        state.advance(1);
        // Nothing newer: the page at hand, without asking.
        let page = rt.block_on(state.fresh());
        assert_eq!((page.generation, state.take_wanted()), (1, false));
        // Tick 2 was not rendered: the scrape asks, the "collector" renders when woken.
        state.advance(2);
        let collector = {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 1];
                std::io::Read::read(&mut &rx, &mut b).unwrap();
                assert!(state.take_wanted(), "woken without being asked");
                state.publish(Page::plain_text(b"tick 2\n".to_vec(), 2));
            })
        };
        let page = rt.block_on(state.fresh());
        collector.join().unwrap();
        assert_eq!(page.generation, 2);
        assert_eq!(page.plain_body(None).read_all(), b"tick 2\n");
        // A collector that never renders: the page at hand once the wait is over.
        state.advance(3);
        let started = Instant::now();
        let page = rt.block_on(state.fresh());
        assert_eq!(page.generation, 2);
        assert!(started.elapsed() >= RENDER_WAIT);
    }

    #[test]
    fn a_collector_stuck_before_its_first_tick_is_not_alive() {
        let state = PageState::new(Duration::from_millis(50), Arc::new(Telemetry::default()));
        assert!(state.healthy(), "starting up");
        std::thread::sleep(Duration::from_millis(80));
        assert!(!state.healthy(), "no first tick within the stall limit");
        state.advance(1);
        assert!(state.healthy(), "a tick just completed");
    }
}
