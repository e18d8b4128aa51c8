//! The HTTP API: `POST /mutate`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! [`router`] serves all four (the TLS listener); [`plain_router`] serves the last three (the
//! plain-HTTP `--metrics-listen` listener). Every error, routing ones included, is a JSON body
//! `{"error": "<one line>", "reason": "<metric label>"}` made by [`crate::Error`]'s `IntoResponse`.

use axum::Router;
use axum::routing::{get, post};

pub mod error;
pub mod handlers;
pub mod state;

use state::AppState;

/// The admission router (TLS listener): `/mutate`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    plain_routes()
        .route("/mutate", post(handlers::mutate))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// The plain-HTTP router (`--metrics-listen`): `/metrics`, `/healthz`, `/readyz`.
pub fn plain_router(state: AppState) -> Router {
    plain_routes()
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

fn plain_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
}
