//! Prometheus metrics (prometheus-client), registered under the `kpo_webhook` prefix:
//!
//! * `kpo_webhook_admission_requests_total{outcome}`: `stamped`, `not-kpo`, `unidentifiable`,
//!   `bad-request`;
//! * `kpo_webhook_bad_requests_total{reason}`: why a request got HTTP 400 ([`crate::Error::metric_label`]);
//! * `kpo_webhook_admission_duration_seconds`: time from the request's headers to its response
//!   (body read, parse, stamp, encode), every outcome;
//! * `kpo_webhook_tls_reloads_total{result}`: certificate loads, `ok` or `error`;
//! * `kpo_webhook_connections_total{protocol}`: TLS connections by negotiated protocol (`h2`,
//!   `http/1.1`, or `handshake-failed`): a count that grows with every admission request means the
//!   client does not reuse connections and pays a handshake each time;
//! * `kpo_webhook_open_connections{listener=tls|metrics}`: connections open now;
//! * `kpo_webhook_shed_total{reason}`: load shed at a bound ([`crate::limits`]): `max-connections`
//!   (closed at accept), `body-budget` and `request-timeout` (answered 503): each is a pod the apiserver
//!   admitted unstamped (fail-open);
//! * `kpo_webhook_inflight_body_bytes`: request-body bytes held now (registered by
//!   [`crate::AppState`], from its [`crate::limits::BodyBudget`]);
//! * `kpo_webhook_tls_cert_not_before_seconds`, `kpo_webhook_tls_cert_not_after_seconds`: the validity
//!   of the leaf certificate served now (Unix seconds; 0 before one is loaded).
//!
//! Counters for the fixed label values are resolved once, so the hot path is an atomic add.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::mutate::Outcome;

type Labels = [(&'static str, &'static str); 1];

/// The webhook's metrics. Cheap to clone (handles to shared values).
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
    bad_requests: Family<Labels, Counter>,
    duration: Histogram,
    tls_reloads: Family<Labels, Counter>,
    connections: Family<Labels, Counter>,
    open_connections: Family<Labels, Gauge>,
    shed: Family<Labels, Counter>,
    cert_not_before: Gauge,
    cert_not_after: Gauge,
    stamped: Counter,
    not_kpo: Counter,
    unidentifiable: Counter,
    bad_request: Counter,
    tls_ok: Counter,
    tls_error: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<Labels, Counter>::default();
        let tls_reloads = Family::<Labels, Counter>::default();
        let get = |f: &Family<Labels, Counter>, k: &'static str, v: &'static str| {
            f.get_or_create(&[(k, v)]).clone()
        };
        Metrics {
            stamped: get(&requests, "outcome", Outcome::Stamped.as_str()),
            not_kpo: get(&requests, "outcome", Outcome::NotKpo.as_str()),
            unidentifiable: get(&requests, "outcome", Outcome::Unidentifiable.as_str()),
            bad_request: get(&requests, "outcome", "bad-request"),
            tls_ok: get(&tls_reloads, "result", "ok"),
            tls_error: get(&tls_reloads, "result", "error"),
            requests,
            tls_reloads,
            connections: Family::default(),
            open_connections: Family::default(),
            shed: Family::default(),
            cert_not_before: Gauge::default(),
            cert_not_after: Gauge::default(),
            bad_requests: Family::default(),
            // 25 µs … ~0.4 s.
            duration: Histogram::new(exponential_buckets(0.000_025, 2.0, 15)),
        }
    }
}

impl Metrics {
    /// Registers every metric in `registry` (give it the `kpo_webhook` prefix).
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "admission_requests",
            "AdmissionReview requests by outcome",
            self.requests.clone(),
        );
        registry.register(
            "bad_requests",
            "Requests answered with HTTP 400, by reason",
            self.bad_requests.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an AdmissionReview, body read included",
            self.duration.clone(),
        );
        registry.register(
            "connections",
            "Accepted TLS connections by negotiated protocol",
            self.connections.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS certificate/key loads by result",
            self.tls_reloads.clone(),
        );
        registry.register(
            "open_connections",
            "Connections open now, by listener",
            self.open_connections.clone(),
        );
        registry.register(
            "shed",
            "Requests or connections refused at a resource bound, by reason (the apiserver admits those pods unstamped)",
            self.shed.clone(),
        );
        registry.register(
            "tls_cert_not_before_seconds",
            "notBefore of the served leaf certificate, Unix seconds (0: none loaded)",
            self.cert_not_before.clone(),
        );
        registry.register(
            "tls_cert_not_after_seconds",
            "notAfter of the served leaf certificate, Unix seconds (0: none loaded)",
            self.cert_not_after.clone(),
        );
        self
    }

    /// Counts one request or connection refused at a bound (`max-connections`, `body-budget`,
    /// `request-timeout`).
    pub fn shed(&self, reason: &'static str) {
        self.shed.get_or_create(&[("reason", reason)]).inc();
    }

    /// The count of `shed` with `reason`.
    pub fn shed_count(&self, reason: &'static str) -> u64 {
        self.shed.get_or_create(&[("reason", reason)]).get()
    }

    /// Adds `delta` to the open connections of `listener`.
    pub fn open_connections(&self, listener: &'static str, delta: i64) {
        self.open_connections
            .get_or_create(&[("listener", listener)])
            .inc_by(delta);
    }

    /// Connections open now on `listener`.
    pub fn open_connections_now(&self, listener: &'static str) -> i64 {
        self.open_connections
            .get_or_create(&[("listener", listener)])
            .get()
    }

    /// Records the validity of the certificate served now.
    pub fn cert_validity(&self, not_before: i64, not_after: i64) {
        self.cert_not_before.set(not_before);
        self.cert_not_after.set(not_after);
    }

    /// Counts one answered AdmissionReview.
    pub fn admitted(&self, outcome: Outcome, took: Duration) {
        match outcome {
            Outcome::Stamped => self.stamped.inc(),
            Outcome::NotKpo => self.not_kpo.inc(),
            Outcome::Unidentifiable => self.unidentifiable.inc(),
        };
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts one request to `/mutate` answered with HTTP 400.
    pub fn bad_request(&self, reason: &'static str, took: Duration) {
        self.bad_request.inc();
        self.bad_requests.get_or_create(&[("reason", reason)]).inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts one request to `/mutate` answered with HTTP 503 at a bound (`body-budget`,
    /// `request-timeout`).
    pub fn shed_request(&self, reason: &'static str, took: Duration) {
        self.shed(reason);
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts one certificate load.
    pub fn tls_reload(&self, ok: bool) {
        if ok { &self.tls_ok } else { &self.tls_error }.inc();
    }

    /// Counts one accepted connection: `h2`, `http/1.1` or `handshake-failed`.
    pub fn connection(&self, protocol: &'static str) {
        self.connections
            .get_or_create(&[("protocol", protocol)])
            .inc();
    }

    /// The count of connections with `protocol`.
    pub fn connections(&self, protocol: &'static str) -> u64 {
        self.connections
            .get_or_create(&[("protocol", protocol)])
            .get()
    }

    /// The count for one outcome (`stamped`, `not-kpo`, `unidentifiable`, `bad-request`).
    pub fn requests(&self, outcome: &'static str) -> u64 {
        self.requests.get_or_create(&[("outcome", outcome)]).get()
    }

    /// The count of certificate loads with `result` `ok` or `error`.
    pub fn tls_reloads(&self, result: &'static str) -> u64 {
        self.tls_reloads.get_or_create(&[("result", result)]).get()
    }
}
