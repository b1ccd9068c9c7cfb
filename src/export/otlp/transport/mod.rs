//! The two ways a request goes to the receiver, and what an attempt came to.
//!
//! - [`http`]: OTLP/HTTP with protobuf bodies (hyper, rustls).
//! - [`grpc`]: OTLP/gRPC (tonic).
//! - [`outcome`]: accepted, to retry, or refused for good ([`Outcome`]); the errors of
//!   building a transport ([`TransportError`]).
//!
//! Both read the receiver's answer with the generated `opentelemetry-proto` response
//! (partial success) and `tonic-types`' `google.rpc.Status` and `RetryInfo`. A transport
//! classifies its own failures; the sender (`otlp::send`) only acts on the [`Outcome`].

pub mod grpc;
pub mod http;
pub mod outcome;

pub use grpc::GrpcTransport;
pub use http::HttpTransport;
pub use outcome::{Outcome, TransportError};
