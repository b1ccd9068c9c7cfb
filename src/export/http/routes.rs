//! The hook for paths the server does not serve itself: the daemon plugs a handler in (the
//! live view), and the server asks it, behind the same TLS, auth and bounds, for any path
//! other than its own.

use bytes::Bytes;
use hyper::{Request, Response};

/// Answers some paths. Called on a blocking thread (a handler may build a large response).
pub trait Routes: Send + Sync + 'static {
    /// The response to `req` (its head only: the server takes no request bodies), or `None`
    /// when the path is not one of these routes (the server answers 404).
    fn route(&self, req: &Request<()>) -> Option<Response<Bytes>>;
}
