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
//!   client does not reuse connections and pays a handshake each time.
//!
//! Counters for the fixed label values are resolved once, so the hot path is an atomic add.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        self
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
