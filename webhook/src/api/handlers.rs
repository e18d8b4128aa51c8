//! Thin handlers: the logic is [`crate::mutate`].

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::state::AppState;
use crate::limits::{Reservation, SMALL_BODY_BYTES};
use crate::{Error, MAX_BODY_BYTES, mutate};

/// `POST /mutate`: an AdmissionReview in, an AdmissionReview out (always `allowed: true`); 400 for
/// anything that is not an `admission.k8s.io/v1` AdmissionReview with a `request`, 408 for a body not
/// received within `--body-read-timeout`, 503 when the body does not fit the in-flight budget or the
/// answer is not ready within `--request-timeout`.
pub async fn mutate(State(state): State<AppState>, req: Request) -> Response {
    let start = Instant::now();
    let result = match tokio::time::timeout(state.request_timeout, review(&state, req)).await {
        Ok(r) => r,
        Err(_) => Err(Error::RequestTimeout(state.request_timeout)),
    };
    match result {
        Ok((outcome, body)) => {
            state.metrics.admitted(outcome, start.elapsed());
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                state
                    .metrics
                    .shed_request(e.metric_label(), start.elapsed());
            } else {
                state.metrics.bad_request(e.metric_label(), start.elapsed());
            }
            e.into_response()
        }
    }
}

async fn review(state: &AppState, req: Request) -> Result<(mutate::Outcome, Vec<u8>), Error> {
    check_content_type(req.headers())?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(Error::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    // At most MAX_BODY_BYTES (checked above).
    let declared = declared.map(|n| n as usize);
    // Held until the answer is built: the body, and what is parsed from it, stay within the budget.
    let mut reservation = state
        .budget
        .reserve(
            declared.unwrap_or(0),
            declared.is_some_and(|n| n <= SMALL_BODY_BYTES),
        )
        .ok_or_else(|| over_budget(state))?;
    let body = match tokio::time::timeout(
        state.body_read_timeout,
        read_body(state, req.into_body(), declared, &mut reservation),
    )
    .await
    {
        Ok(r) => r?,
        Err(_) => return Err(Error::BodyTimeout(state.body_read_timeout)),
    };
    let (_review, request) = mutate::parse(&body)?;
    let m = mutate::mutate(&request, (state.clock)());
    if let Some(why) = &m.unidentified {
        tracing::debug!(
            uid = request.uid.as_str(),
            reason = why.metric_label(),
            "KPO pod stamped without ti-key"
        );
    }
    Ok((m.outcome, mutate::response(request.uid.as_str(), &m)))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Error::UnsupportedMediaType("(none)".to_owned()));
    };
    let text = value.to_str().unwrap_or("(not text)");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType(mutate::one_line(text)))
    }
}

fn over_budget(state: &AppState) -> Error {
    Error::OverBudget {
        held: state.budget.held(),
        limit: state.budget.limit(),
    }
}

/// Reads the body into one buffer, never holding more than `reservation` (grown for bodies without a
/// declared length, or 503 when the budget has no room) nor more than [`MAX_BODY_BYTES`].
async fn read_body(
    state: &AppState,
    mut body: Body,
    declared: Option<usize>,
    reservation: &mut Reservation,
) -> Result<Bytes, Error> {
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BodyRead(mutate::one_line(&e.to_string())))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = first.as_ref().map_or(0, Bytes::len) + buf.len() + data.len();
        if len > MAX_BODY_BYTES {
            return Err(Error::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if len > reservation.bytes() && !reservation.grow(len - reservation.bytes()) {
            return Err(over_budget(state));
        }
        // One frame is kept as it is (no copy); from the second on, one buffer of the declared size.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(f) => {
                buf.reserve_exact(declared.unwrap_or(len).max(len));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 while the served TLS certificate is valid; 503 before one is loaded, and while
/// it is expired or not yet valid (the apiserver would refuse it, so every pod would be admitted
/// unstamped: the pod must not look ready).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready.check((state.clock)()) {
        Ok(()) => "ok\n".into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /metrics`: Prometheus text (OpenMetrics).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(4096);
    match prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        // Writing into a String cannot fail; answer something that is not a 500 regardless.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Fallback for unknown paths.
pub async fn not_found(uri: Uri) -> Error {
    Error::NotFound(mutate::one_line(uri.path()))
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Error {
    Error::MethodNotAllowed {
        method: method.to_string(),
        path: mutate::one_line(uri.path()),
    }
}
