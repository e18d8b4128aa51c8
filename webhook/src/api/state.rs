//! The router's shared state.

use std::ops::Deref;
use std::sync::Arc;

use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::limits::{BodyBudget, Limits};
use crate::metrics::Metrics;
use crate::tls::Readiness;

/// Unix time in seconds; a parameter so tests can fix it.
pub type Clock = fn() -> i64;

/// Shared by every request. A clone (one per request, by axum's `State`) is one atomic increment.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
    pub(crate) clock: Clock,
}

/// What [`AppState`] points to.
pub struct Shared {
    pub(crate) metrics: Metrics,
    pub(crate) registry: Registry,
    pub(crate) ready: Readiness,
    pub(crate) budget: BodyBudget,
    pub(crate) body_read_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl AppState {
    /// State with fresh metrics registered under the `kpo_webhook` prefix, and the default [`Limits`].
    pub fn new(ready: Readiness) -> Self {
        Self::with_metrics(ready, Metrics::default())
    }

    /// State around existing metrics (shared with the certificate resolver), default [`Limits`].
    pub fn with_metrics(ready: Readiness, metrics: Metrics) -> Self {
        Self::with_limits(ready, metrics, &Limits::default())
    }

    /// State around existing metrics, with the body and request bounds of `limits`.
    pub fn with_limits(ready: Readiness, metrics: Metrics, limits: &Limits) -> Self {
        let mut registry = Registry::with_prefix("kpo_webhook");
        let metrics = metrics.register(&mut registry);
        let budget = BodyBudget::new(limits.max_inflight_body_bytes);
        registry.register(
            "inflight_body_bytes",
            "Request-body bytes held in memory now (bounded by --max-inflight-body-bytes)",
            budget.gauge(),
        );
        AppState {
            shared: Arc::new(Shared {
                metrics,
                registry,
                ready,
                budget,
                body_read_timeout: limits.body_read_timeout,
                request_timeout: limits.request_timeout,
            }),
            clock: unix_now,
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The in-flight body budget.
    pub fn budget(&self) -> &BodyBudget {
        &self.budget
    }
}

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
