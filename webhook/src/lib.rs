//! kpo-sweeper's mutating admission webhook.
//!
//! Stamps every KubernetesPodOperator pod at CREATE with its task-instance key, try number, admission
//! time and creator (docs/design.md §4), so the sweeper can judge pods in O(1) and only its own
//! deployment's. Fail-open: every AdmissionReview is answered `allowed: true`, bad input gets HTTP 400
//! (which the apiserver, with `failurePolicy: Ignore`, treats as "admit unchanged").
//!
//! * [`mutate`]: the stamp as a pure function over [`tikey`];
//! * [`api`]: the axum [`api::router`], its state and its error responses;
//! * [`tls`]: rustls with a certificate resolver that polls the cert/key files and swaps them in;
//! * [`server`]: the TLS and plain-HTTP listeners, graceful shutdown;
//! * [`limits`]: the resource bounds (connections, streams, timeouts, in-flight body bytes);
//! * [`metrics`], [`telemetry`], [`args`].
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::net::SocketAddr;
use std::path::PathBuf;

pub mod api;
pub mod args;
pub mod limits;
pub mod metrics;
pub mod mutate;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use api::router;
pub use api::state::AppState;
pub use limits::Limits;
pub use server::{Config, Server};

/// Largest accepted request body: 3 MiB, the kube-apiserver's own limit for a request body
/// (`MaxRequestBodyBytes`), so no object the apiserver accepted can be too large for the webhook.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything that can go wrong, from a bad request to a port that cannot be bound.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Bad requests: HTTP 400 (the apiserver then admits the pod unchanged).
    #[error("content type must be application/json, got `{0}`")]
    UnsupportedMediaType(String),
    #[error("request body exceeds the limit of {limit} bytes (3 MiB)")]
    BodyTooLarge { limit: usize },
    #[error("cannot read request body: {0}")]
    BodyRead(String),
    #[error("request body not received within {0:?} (--body-read-timeout)")]
    BodyTimeout(std::time::Duration),
    // Load shed: HTTP 503 (the apiserver then admits the pod unchanged).
    #[error(
        "{held} of {limit} bytes of request bodies already held (--max-inflight-body-bytes); try again"
    )]
    OverBudget { held: usize, limit: usize },
    #[error("request not answered within {0:?} (--request-timeout)")]
    RequestTimeout(std::time::Duration),
    #[error("body is not an AdmissionReview: {0}")]
    NotAdmissionReview(String),
    #[error(
        "expected apiVersion `admission.k8s.io/v1` and kind `AdmissionReview`, got `{api_version}` and `{kind}`"
    )]
    WrongReviewType { api_version: String, kind: String },
    #[error("AdmissionReview has no `request`")]
    MissingRequest,
    // Routing.
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },
    // Not ready / startup.
    #[error("no TLS certificate loaded yet")]
    NotReady,
    #[error(
        "the served TLS certificate expired at {not_after} (Unix seconds): the apiserver cannot call the webhook, every pod is admitted unstamped; renew the certificate"
    )]
    CertExpired { not_after: i64 },
    #[error(
        "the served TLS certificate is not valid before {not_before} (Unix seconds): the apiserver cannot call the webhook until then; check the clocks or the certificate"
    )]
    CertNotYetValid { not_before: i64 },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load TLS certificate {cert} and key {key}: {reason}")]
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bounded label for metrics (one per variant, payload never included).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::BodyTooLarge { .. } => "body-too-large",
            Error::BodyRead(_) => "body-read",
            Error::BodyTimeout(_) => "body-timeout",
            Error::OverBudget { .. } => "body-budget",
            Error::RequestTimeout(_) => "request-timeout",
            Error::NotAdmissionReview(_) => "not-admission-review",
            Error::WrongReviewType { .. } => "wrong-review-type",
            Error::MissingRequest => "missing-request",
            Error::NotFound(_) => "not-found",
            Error::MethodNotAllowed { .. } => "method-not-allowed",
            Error::NotReady => "not-ready",
            Error::CertExpired { .. } => "cert-expired",
            Error::CertNotYetValid { .. } => "cert-not-yet-valid",
            Error::Bind { .. } => "bind",
            Error::Certificate { .. } => "certificate",
            Error::Tls(_) => "tls",
            Error::Serve(_) => "serve",
            Error::Config(_) => "config",
        }
    }
}
