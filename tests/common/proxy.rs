//! A unix-socket proxy between the exporter and a real daemon (dockerd, containerd) that the
//! test can cut (every connection closed, new ones refused until [`Proxy::restore`]) or freeze
//! (nothing forwarded until [`Proxy::thaw`]); in front of the Docker API it can also hold back,
//! drop or rewrite the events of the `/events` stream, and add events of its own.
//!
//! The daemon stays real: only the bytes between it and the exporter are in the test's hands,
//! which is how a dropped stream, a late event or a malformed one reaches the exporter.
//!
//! Docker API mode forwards each request with `Connection: close`, so that every connection
//! carries one request and the `/events` one can be told apart by its request line; its
//! chunked body is re-chunked one event per chunk, as dockerd writes it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// What becomes of one event of the `/events` stream.
pub enum Verdict {
    Pass(Value),
    /// Passed on after this long (the stream holds everything behind it meanwhile).
    Delay(Duration, Value),
    Drop,
    /// Dropped, and the proxy cut (until [`Proxy::restore`]).
    DropAndCut,
}

type Hook = Box<dyn FnMut(Value) -> Verdict + Send>;

struct State {
    upstream: PathBuf,
    docker: bool,
    cut: AtomicBool,
    frozen: AtomicBool,
    stop: AtomicBool,
    /// Every live socket (both ends), to shut down on a cut.
    conns: Mutex<Vec<UnixStream>>,
    /// The exporter's end of every live `/events` stream, to add events to.
    events: Mutex<Vec<Arc<Mutex<UnixStream>>>>,
    hook: Mutex<Option<Hook>>,
    /// `/events` streams opened since the start.
    streams_opened: AtomicUsize,
}

pub struct Proxy {
    pub path: PathBuf,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// In front of the Docker API at `upstream` (a socket path).
    pub fn docker(upstream: &Path) -> Proxy {
        Proxy::start(upstream, true)
    }

    /// A plain byte proxy (the CRI's gRPC), for cuts and freezes.
    pub fn bytes(upstream: &Path) -> Proxy {
        Proxy::start(upstream, false)
    }

    fn start(upstream: &Path, docker: bool) -> Proxy {
        let path = std::env::temp_dir().join(format!("{}.sock", super::unique_name()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the proxy's socket");
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            upstream: upstream.to_path_buf(),
            docker,
            cut: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            hook: Mutex::new(None),
            streams_opened: AtomicUsize::new(0),
        });
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if s.cut.load(Ordering::SeqCst) {
                            drop(client);
                            continue;
                        }
                        let s = s.clone();
                        std::thread::spawn(move || serve(s, client));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            path,
            state,
            thread: Some(thread),
        }
    }

    /// `unix://<path>`, for `--docker-host` or `--cri-endpoint`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Decides the fate of every event from now on (the default passes them all).
    pub fn on_event(&self, hook: impl FnMut(Value) -> Verdict + Send + 'static) {
        *self.state.hook.lock().unwrap() = Some(Box::new(hook));
    }

    /// Closes every connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        cut(&self.state);
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Forwards nothing (connections stay open) until [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.state.frozen.store(false, Ordering::SeqCst);
    }

    /// `/events` streams opened so far (a reconnect opens one more).
    pub fn streams_opened(&self) -> usize {
        self.state.streams_opened.load(Ordering::SeqCst)
    }

    /// `/events` streams open now.
    pub fn live_streams(&self) -> usize {
        self.state.events.lock().unwrap().len()
    }

    /// Adds an event to every open `/events` stream; returns to how many.
    pub fn inject(&self, event: &Value) -> usize {
        let mut line = serde_json::to_vec(event).unwrap();
        line.push(b'\n');
        let streams = self.state.events.lock().unwrap().clone();
        let mut n = 0;
        for w in streams {
            if write_chunk(&mut w.lock().unwrap(), &line).is_ok() {
                n += 1;
            }
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        cut(&self.state);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn cut(s: &State) {
    s.cut.store(true, Ordering::SeqCst);
    for c in s.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
    s.events.lock().unwrap().clear();
}

fn register(s: &State, c: &UnixStream) {
    if let Ok(c) = c.try_clone() {
        s.conns.lock().unwrap().push(c);
    }
}

/// Waits while frozen; false once cut.
fn go(s: &State) -> bool {
    while s.frozen.load(Ordering::SeqCst) && !s.cut.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    !s.cut.load(Ordering::SeqCst)
}

fn copy(s: Arc<State>, mut from: UnixStream, mut to: UnixStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !go(&s) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn serve(s: Arc<State>, client: UnixStream) {
    let Ok(upstream) = UnixStream::connect(&s.upstream) else {
        return;
    };
    register(&s, &client);
    register(&s, &upstream);
    if !s.docker {
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let s2 = s.clone();
        std::thread::spawn(move || copy(s2, c2, u2));
        copy(s, upstream, client);
        return;
    }
    // One request per connection: its head, with `Connection: close`.
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    let mut first = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if first.is_empty() {
            first = line.clone();
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let events = first.contains("/events");
    let mut up = upstream.try_clone().unwrap();
    if !go(&s) || up.write_all(&head).is_err() {
        return;
    }
    // Whatever the client sent after the head (a body: none for these GETs).
    let buffered = reader.buffer().to_vec();
    if !buffered.is_empty() && up.write_all(&buffered).is_err() {
        return;
    }
    let s2 = s.clone();
    let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || copy(s2, c2, u2));
    if events {
        s.streams_opened.fetch_add(1, Ordering::SeqCst);
        filter_events(s, upstream, client);
    } else {
        copy(s, upstream, client);
    }
}

fn write_chunk(w: &mut UnixStream, data: &[u8]) -> std::io::Result<()> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)
}

/// The `/events` response: the head as is, then the chunked body event by event, through
/// the hook.
fn filter_events(s: Arc<State>, upstream: UnixStream, client: UnixStream) {
    let mut r = BufReader::new(upstream);
    let writer = Arc::new(Mutex::new(client));
    let mut chunked = false;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
        if !go(&s) || writer.lock().unwrap().write_all(line.as_bytes()).is_err() {
            return;
        }
        if line == "\r\n" {
            break;
        }
    }
    assert!(chunked, "dockerd's /events answer is not chunked");
    s.events.lock().unwrap().push(writer.clone());
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut size = String::new();
        match r.read_line(&mut size) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        let mut data = vec![0u8; n + 2];
        if r.read_exact(&mut data).is_err() {
            break;
        }
        pending.extend_from_slice(&data[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let verdict = match s.hook.lock().unwrap().as_mut() {
                Some(h) => h(ev),
                None => Verdict::Pass(ev),
            };
            let out = match verdict {
                Verdict::Pass(v) => v,
                Verdict::Delay(d, v) => {
                    std::thread::sleep(d);
                    v
                }
                Verdict::Drop => continue,
                Verdict::DropAndCut => {
                    cut(&s);
                    return;
                }
            };
            let mut bytes = serde_json::to_vec(&out).unwrap();
            bytes.push(b'\n');
            if !go(&s) || write_chunk(&mut writer.lock().unwrap(), &bytes).is_err() {
                return;
            }
        }
    }
    let _ = writer.lock().unwrap().write_all(b"0\r\n\r\n");
    s.events
        .lock()
        .unwrap()
        .retain(|w| !Arc::ptr_eq(w, &writer));
}
