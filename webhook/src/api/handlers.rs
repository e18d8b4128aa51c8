//! Thin handlers: the logic is [`crate::mutate`].

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::state::AppState;
use crate::{Error, MAX_BODY_BYTES, mutate};

/// `POST /mutate`: an AdmissionReview in, an AdmissionReview out (always `allowed: true`); 400 for
/// anything that is not an `admission.k8s.io/v1` AdmissionReview with a `request`.
pub async fn mutate(State(state): State<AppState>, req: Request) -> Response {
    let start = Instant::now();
    match review(&state, req).await {
        Ok((outcome, body)) => {
            state.metrics.admitted(outcome, start.elapsed());
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            state.metrics.bad_request(e.metric_label(), start.elapsed());
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
    let body = read_body(req.into_body()).await?;
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

async fn read_body(body: Body) -> Result<Bytes, Error> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Error::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(e) => Err(Error::BodyRead(mutate::one_line(&e.to_string()))),
    }
}

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once a TLS certificate is loaded, 503 before.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.is_ready() {
        "ok\n".into_response()
    } else {
        Error::NotReady.into_response()
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
