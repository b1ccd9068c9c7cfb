//! The web config in force: loaded at start (an error stops the exporter), swapped whole when
//! SIGHUP comes or a file it was built from changes, and kept when the new one does not load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::auth::{Authenticator, Bucket};
use super::error::WebConfigError;
use super::file::{FileStamp, WebConfig, stamp};
use crate::remote::error_chain;

/// How often the file and the files it names are checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// The configuration in force, swapped whole on reload.
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<Arc<WebConfig>>,
    pub auth: Authenticator,
    pub bucket: Bucket,
}

impl WebConfigHandle {
    /// Loads the file; an error here stops the exporter at start.
    pub fn open(path: &Path) -> Result<Arc<WebConfigHandle>, WebConfigError> {
        let cfg = WebConfig::load(path)?;
        tracing::info!(file = %path.display(), "web config: {}", cfg.describe());
        Ok(Arc::new(WebConfigHandle {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(cfg)),
            auth: Authenticator::default(),
            bucket: Bucket::default(),
        }))
    }

    pub fn current(&self) -> Arc<WebConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the file again; on error the old configuration stays.
    pub fn reload(&self, why: &str) -> bool {
        match WebConfig::load(&self.path) {
            Ok(cfg) => {
                let old_http2 = self.current().http2;
                if cfg.http2 != old_http2 {
                    tracing::warn!("web config: http2 changed; it applies to new TLS connections");
                }
                tracing::info!(file = %self.path.display(), "web config reloaded ({why}): {}", cfg.describe());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
                true
            }
            Err(e) => {
                tracing::error!(
                    "web config not reloaded ({why}), the previous one stays in force: {}",
                    error_chain(&e)
                );
                false
            }
        }
    }
}

/// Reloads on SIGHUP and when the file or a file it names changes, until `shutdown`.
pub async fn watch(handle: Arc<WebConfigHandle>, shutdown: impl Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::pin!(shutdown);
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("web config: no SIGHUP handler ({e}); changes are still picked up");
            None
        }
    };
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A file that failed to load is retried only once it changes again.
    let mut failed_at: Option<Vec<Option<FileStamp>>> = None;
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = hup_recv => {
                failed_at = None;
                handle.reload("SIGHUP");
            }
            _ = tick.tick() => {
                let cur = handle.current();
                if !cur.changed() {
                    continue;
                }
                let now: Vec<_> = std::iter::once(stamp(&handle.path))
                    .chain(cur.files.iter().map(|(p, _)| stamp(p)))
                    .collect();
                if failed_at.as_ref() == Some(&now) {
                    continue;
                }
                failed_at = if handle.reload("a file changed") { None } else { Some(now) };
            }
        }
    }
}
