//! [`crate::Error`] as an HTTP response: a status and a JSON body with one line of reason.
//!
//! Bad requests are 400 (fail-open: the apiserver's `failurePolicy: Ignore` then admits the pod
//! unchanged), unknown routes 404, wrong methods 405, `/readyz` before a certificate 503. Nothing maps to
//! 500. Every error response is logged here, once, at `warn`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotReady => StatusCode::SERVICE_UNAVAILABLE,
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
        if !matches!(self, Error::NotReady) {
            tracing::warn!(status = status.as_u16(), reason = self.metric_label(), error = %error, "bad request");
        }
        let body = serde_json::to_vec(&Body {
            error,
            reason: self.metric_label(),
        })
        .unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
