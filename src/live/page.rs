//! The page's files, embedded in the binary (nothing is fetched at build time or at run
//! time), and the headers every live view response carries: a Content-Security-Policy that
//! allows this origin's files only (no inline script or style, no other host), no sniffing,
//! no referrer, no framing.

use std::sync::OnceLock;

use bytes::Bytes;
use hyper::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH,
    VARY,
};
use hyper::{Response, StatusCode};

/// The policy: this origin's scripts, styles and API; images only as `data:` (none are used);
/// no plugins, frames, forms or `<base>`.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the page loads, by the path it is served at.
pub static ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/ui/style.css", "style.css", CSS),
    asset!("/ui/app.js", "app.js", JS),
    asset!("/ui/format.js", "format.js", JS),
    asset!("/ui/data.js", "data.js", JS),
    asset!("/ui/table.js", "table.js", JS),
    asset!("/ui/charts.js", "charts.js", JS),
    asset!("/ui/container.js", "container.js", JS),
    asset!("/ui/uPlot.min.css", "vendor/uplot/uPlot.min.css", CSS),
    asset!(
        "/ui/uPlot.iife.min.js",
        "vendor/uplot/uPlot.iife.min.js",
        JS
    ),
];

/// The asset at `path`, if any: 304 when the client has it, gzip when it asks.
pub fn asset(path: &str, req: &HeaderMap) -> Option<Response<Bytes>> {
    static TAGS: OnceLock<Vec<(String, OnceLock<Bytes>)>> = OnceLock::new();
    let i = ASSETS.iter().position(|a| a.path == path)?;
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| (format!("\"{:016x}\"", fnv(a.body)), OnceLock::new()))
            .collect()
    });
    let (tag, gz) = &tags[i];
    let a = &ASSETS[i];
    if req
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
    {
        let mut r = respond(StatusCode::NOT_MODIFIED, a.content_type, Bytes::new());
        set(r.headers_mut(), ETAG, tag);
        return Some(r);
    }
    let gzip = crate::export::http::accepts_gzip(req).then(|| {
        gz.get_or_init(|| gzip(a.body, flate2::Compression::best()))
            .clone()
    });
    let mut r = respond_body(a.content_type, Bytes::from_static(a.body), gzip);
    set(r.headers_mut(), CACHE_CONTROL, "no-cache");
    set(r.headers_mut(), ETAG, tag);
    Some(r)
}

/// A response with the live view's headers; `gzip`, when given, is sent instead of `body`.
pub fn respond_body(content_type: &str, body: Bytes, gzip: Option<Bytes>) -> Response<Bytes> {
    let zipped = gzip.is_some();
    let mut r = respond(StatusCode::OK, content_type, gzip.unwrap_or(body));
    if zipped {
        set(r.headers_mut(), CONTENT_ENCODING, "gzip");
    }
    r
}

/// A response with the live view's headers, not to be stored (the page's files say
/// otherwise after).
pub fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Bytes> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    set(h, CONTENT_TYPE, content_type);
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    set(h, VARY, "Accept-Encoding");
    set(h, CACHE_CONTROL, "no-store");
    r
}

fn set<K: hyper::header::IntoHeaderName>(h: &mut HeaderMap, k: K, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(k, v);
    }
}

/// Gzip: the page's files at the best level (once), the API's answers at level 1 as the
/// Prometheus page (most of the gain for a tenth of the time).
pub fn gzip(body: &[u8], level: flate2::Compression) -> Bytes {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// FNV-1a: an asset's tag (a change of the file changes it; nothing here is secret).
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_asset_carries_inline_script_or_style_or_another_host() {
        for a in ASSETS.iter().filter(|a| !a.path.contains("uPlot")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("innerhtml"), "{}: innerHTML", a.path);
            assert!(!lower.contains("insertadjacenthtml"), "{}", a.path);
            assert!(!lower.contains("document.write"), "{}", a.path);
            assert!(!lower.contains("eval("), "{}", a.path);
            assert!(
                !lower.contains("http://") && !lower.contains("https://"),
                "{}: a URL",
                a.path
            );
            if a.path == "/" {
                assert!(!lower.contains("<script>"), "inline script");
                assert!(!lower.contains("style="), "inline style");
                assert!(!lower.contains("<style"), "inline style");
                assert!(!lower.contains(" on"), "an inline handler?");
            }
        }
    }

    #[test]
    fn the_vendored_chart_library_is_the_pinned_version() {
        let version = include_str!("assets/vendor/uplot/VERSION").trim();
        let js = ASSETS
            .iter()
            .find(|a| a.path.ends_with("uPlot.iife.min.js"))
            .unwrap();
        let head = std::str::from_utf8(&js.body[..80]).unwrap();
        assert!(head.contains(&format!("(v{version})")), "{head}");
    }

    #[test]
    fn assets_are_revalidated_by_tag_and_gzipped_on_request() {
        let mut h = HeaderMap::new();
        let r = asset("/ui/app.js", &h).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], JS);
        assert_eq!(r.headers()["content-security-policy"], CSP);
        let tag = r.headers()[ETAG].clone();
        h.insert(IF_NONE_MATCH, tag);
        assert_eq!(
            asset("/ui/app.js", &h).unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        let r = asset("/ui/uPlot.iife.min.js", &h).unwrap();
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert!(r.body().len() < 30_000, "{}", r.body().len());
        assert!(asset("/ui/nothing.js", &h).is_none());
    }
}
