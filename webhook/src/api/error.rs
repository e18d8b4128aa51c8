//! [`crate::Error`] as an HTTP response: a status and a JSON body with one line of reason.
//!
//! Bad requests are 400 (fail-open: the apiserver's `failurePolicy: Ignore` then admits the pod
//! unchanged), a body too slow 408, unknown routes 404, wrong methods 405; load shed at a bound 503
//! (fail-open too), `/readyz` without a valid certificate 503. Nothing maps to 500. Every error response
//! is logged here, at `warn`, at most `--bad-request-log-rate` lines a second ([`BAD_REQUEST_LOG`]): a
//! flood of bad requests must not become a flood of log lines. A `/readyz` that fails for an
//! expired or not-yet-valid certificate is logged at `error`, under the same limit.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;
use crate::limits::LogLimiter;

/// The rate limit of the `bad request` log line (and of the other per-request warnings); the rate is
/// set from `--bad-request-log-rate` when the server starts.
pub static BAD_REQUEST_LOG: LogLimiter =
    LogLimiter::new(crate::limits::DEFAULT_BAD_REQUEST_LOG_RATE);

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::NotReady
            | Error::CertExpired { .. }
            | Error::CertNotYetValid { .. }
            | Error::OverBudget { .. }
            | Error::RequestTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Request errors, and (never reached) startup errors: 400, never 500.
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Serialize)]
struct Body {
    error: String,
    reason: &'static str,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = crate::mutate::one_line(&self.to_string());
        let now = u64::try_from(crate::api::state::unix_now()).unwrap_or(0);
        match self {
            Error::NotReady => {}
            Error::CertExpired { .. } | Error::CertNotYetValid { .. } => {
                if let Some(suppressed) = BAD_REQUEST_LOG.check(now) {
                    tracing::error!(reason = self.metric_label(), error = %error, suppressed, "not ready");
                }
            }
            _ => {
                if let Some(suppressed) = BAD_REQUEST_LOG.check(now) {
                    tracing::warn!(status = status.as_u16(), reason = self.metric_label(), error = %error, suppressed, "bad request");
                }
            }
        }
        let body = serde_json::to_vec(&Body {
            error,
            reason: self.metric_label(),
        })
        .unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
