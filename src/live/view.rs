//! The live view as the daemon holds it: the store behind a lock (the collector writes once
//! per tick, requests read), the routes it answers on the Prometheus listener, and a small
//! cache so that viewers polling the same tick share one response.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};

use super::api::{self, ApiError, Setting};
use super::page;
use super::store::Store;
use crate::collect::Described;
use crate::config::LiveArgs;
use crate::export::http::{Routes, accepts_gzip};

/// Ticks of history at most (`--live-history` ÷ `--interval`).
pub const MAX_TICKS: u128 = 3600;

/// The history kept when `--live-history` is not set (at most [`MAX_TICKS`] ticks of it).
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(15 * 60);

/// Why the live view's flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LiveConfigError {
    #[error(
        "--live-history {history:?} at --interval {interval:?} is {ticks} ticks: at most {MAX_TICKS} \
         (shorten the history or lengthen the interval)"
    )]
    TooLong {
        history: Duration,
        interval: Duration,
        ticks: u128,
    },
}

/// Responses cut from the same revision of the store, for the same request.
const CACHED: usize = 8;

type Cached = (u64, String, Bytes, OnceLock<Bytes>);

/// The browser view: what it keeps, and the paths it answers.
pub struct LiveView {
    store: RwLock<Store>,
    /// When each container's own view last asked for it (the store follows those).
    viewed: Mutex<HashMap<String, Instant>>,
    setting: Setting,
    cache: Mutex<Vec<Arc<Cached>>>,
}

impl LiveView {
    /// The view the flags ask for, at the daemon's `interval`; `None` when it is off.
    pub fn from_args(
        args: &LiveArgs,
        interval: Duration,
    ) -> Result<Option<LiveView>, LiveConfigError> {
        if !args.live_view {
            return Ok(None);
        }
        let interval_ns = interval.as_nanos().max(1);
        let history = match args.live_history {
            Some(history) => {
                let ticks = history.as_nanos() / interval_ns;
                if ticks > MAX_TICKS {
                    return Err(LiveConfigError::TooLong {
                        history,
                        interval,
                        ticks,
                    });
                }
                history
            }
            // Unset: the default, shortened to what fits at a short interval.
            None => DEFAULT_HISTORY.min(interval.saturating_mul(MAX_TICKS as u32)),
        };
        let ticks = history.as_nanos() / interval_ns;
        Ok(Some(LiveView::new(
            interval,
            history,
            ticks as usize,
            args.live_ended as usize,
        )))
    }

    /// A view keeping `ticks` ticks (at least the latest) and `ended` ended containers.
    pub fn new(interval: Duration, history: Duration, ticks: usize, ended: usize) -> LiveView {
        LiveView {
            store: RwLock::new(Store::new(ticks, ended)),
            viewed: Mutex::new(HashMap::new()),
            setting: Setting {
                interval,
                history,
                epoch_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            },
            cache: Mutex::new(Vec::new()),
        }
    }

    /// Takes in what the outputs show (see `Store::observe`): called by the collector after
    /// every tick (`tick`) and every publication of ended containers between ticks.
    pub fn observe(
        &self,
        tick: bool,
        now: SystemTime,
        described: &[Described<'_>],
        running: &HashSet<&str>,
    ) {
        let viewed = if tick {
            self.viewed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            HashMap::new()
        };
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        store.observe(tick, now, described, running, &viewed);
    }

    /// Bytes the store holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .heap_bytes()
    }

    /// The API's answer to `path` (after `/api/v1`) and `query`: its JSON body, cached per
    /// revision of the store.
    fn api(&self, path: &str, query: Option<&str>) -> Result<Arc<Cached>, ApiError> {
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let key = format!("{path}?{}", query.unwrap_or(""));
        if let Some(container) = path.strip_prefix("/containers/") {
            let id = api::resolve(&store, container)?;
            // Followed from the next tick on, for as long as its view asks.
            let mut viewed = self.viewed.lock().unwrap_or_else(|e| e.into_inner());
            viewed.retain(|_, at| at.elapsed() < super::detail::WATCH_FOR);
            viewed.insert(id.clone(), Instant::now());
            drop(viewed);
            return self.cached(store.revision, key, || {
                api::container(&store, &self.setting, &id, query)
            });
        }
        match path {
            "/overview" => self.cached(store.revision, key, || {
                api::overview(&store, &self.setting, query)
            }),
            "/ended" => self.cached(store.revision, key, || {
                api::ended(&store, &self.setting, query)
            }),
            _ => Err(ApiError::NoSuchPath),
        }
    }

    fn cached(
        &self,
        revision: u64,
        key: String,
        build: impl FnOnce() -> Result<Vec<u8>, ApiError>,
    ) -> Result<Arc<Cached>, ApiError> {
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = cache.iter().find(|e| e.0 == revision && e.1 == key) {
                return Ok(e.clone());
            }
        }
        let body = Bytes::from(build()?);
        let e = Arc::new((revision, key, body, OnceLock::new()));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|c| c.0 == revision);
        cache.truncate(CACHED - 1);
        cache.insert(0, e.clone());
        Ok(e)
    }
}

impl Routes for LiveView {
    fn route(&self, req: &Request<()>) -> Option<Response<Bytes>> {
        let path = req.uri().path();
        // The server answers methods other than GET and HEAD itself (405).
        if let Some(rest) = path.strip_prefix("/api/") {
            let Some(rest) = rest.strip_prefix("v1") else {
                return Some(error(&ApiError::NoSuchPath, StatusCode::NOT_FOUND));
            };
            let query = req.uri().query();
            let gzip = accepts_gzip(req.headers());
            return Some(match self.api_response(rest, query, gzip) {
                Ok(r) => r,
                Err(e) => error(
                    &e,
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                ),
            });
        }
        if path == "/" || path.starts_with("/ui/") {
            return Some(page::asset(path, req.headers()).unwrap_or_else(|| {
                page::respond(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    Bytes::from_static(b"not found\n"),
                )
            }));
        }
        None
    }
}

impl LiveView {
    fn api_response(
        &self,
        path: &str,
        query: Option<&str>,
        gzip: bool,
    ) -> Result<Response<Bytes>, ApiError> {
        let e = self.api(path, query)?;
        // Small answers are not worth a gzip header; a cached one is compressed once.
        let zipped = (gzip && e.2.len() > 1024).then(|| {
            e.3.get_or_init(|| page::gzip(&e.2, flate2::Compression::fast()))
                .clone()
        });
        Ok(page::respond_body("application/json", e.2.clone(), zipped))
    }
}

fn error(e: &ApiError, status: StatusCode) -> Response<Bytes> {
    page::respond(status, "application/json", Bytes::from(e.body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(history: Option<Duration>) -> LiveArgs {
        LiveArgs {
            live_view: true,
            live_history: history,
            live_ended: 100,
        }
    }

    fn history(a: &LiveArgs, interval: Duration) -> Result<Duration, LiveConfigError> {
        Ok(LiveView::from_args(a, interval)?.unwrap().setting.history)
    }

    #[test]
    fn the_default_history_fits_any_interval_and_a_set_one_too_long_is_refused() {
        let ms = Duration::from_millis;
        assert_eq!(history(&args(None), ms(10_000)).unwrap(), DEFAULT_HISTORY);
        // 15 minutes at 100 ms would be 9,000 ticks: unset, it is cut to 3,600.
        assert_eq!(history(&args(None), ms(100)).unwrap(), ms(360_000));
        let set = args(Some(Duration::from_secs(900)));
        assert_eq!(history(&set, ms(250)).unwrap(), Duration::from_secs(900));
        let err = history(&set, ms(100)).unwrap_err().to_string();
        assert!(err.contains("9000 ticks: at most 3600"), "{err}");
        let off = LiveArgs {
            live_view: false,
            ..args(None)
        };
        assert!(LiveView::from_args(&off, ms(100)).unwrap().is_none());
    }
}
