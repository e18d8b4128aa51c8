//! Resource bounds: what one client, or many, can make the webhook hold.
//!
//! Any pod in the cluster can reach the webhook's port, so nothing it holds may grow with what clients
//! send: connections, streams, buffered body bytes and time are all capped here. When a bound is hit the
//! webhook sheds load (closes the connection, or answers 503/408), and the apiserver's
//! `failurePolicy: Ignore` admits the pod unstamped: a visible fail-open (`kpo_webhook_shed_total`) is
//! better than an OOM-killed or fd-starved webhook, which fails open for every pod and says nothing.
//!
//! * [`Limits`]: every bound, each a `--flag` of [`crate::args::Args`];
//! * [`BodyBudget`]: the global budget of request-body bytes held in memory, with a share kept for
//!   small bodies (AdmissionReviews of ordinary pods) so that large bodies cannot starve them;
//! * [`LogLimiter`]: a rate limit for the `bad request` log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

/// Every resource bound, defaults as documented on the flags (`webhook --help`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time allowed for a request's headers: for the first request, counted from the end of the TLS
    /// handshake (both protocols); on HTTP/1.1 also for every following request on the connection.
    pub header_read_timeout: Duration,
    /// Time allowed for reading a request's body.
    pub body_read_timeout: Duration,
    /// Time allowed from a request's headers to its answer (body read included); keep it below the
    /// MutatingWebhookConfiguration's `timeoutSeconds` (3 s in `manifests/base`).
    pub request_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/2: GOAWAY).
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval.
    pub http2_keep_alive_interval: Duration,
    /// An HTTP/2 PING not answered within this closes the connection.
    pub http2_keep_alive_timeout: Duration,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
    pub http2_max_concurrent_streams: u32,
    /// Open connections on the TLS listener; beyond it, a new connection is accepted and closed at once.
    pub max_connections: usize,
    /// Request-body bytes held in memory across all requests; a request that does not fit gets 503.
    pub max_inflight_body_bytes: usize,
    /// Open connections on the plain metrics listener.
    pub metrics_max_connections: usize,
    /// `bad request` log lines per second (the rest are counted, and the next line says how many).
    pub bad_request_log_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tls_handshake_timeout: Duration::from_secs(3),
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(2500),
            idle_timeout: Duration::from_secs(60),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(10),
            http2_max_concurrent_streams: 32,
            max_connections: 1024,
            max_inflight_body_bytes: 32 * MIB,
            metrics_max_connections: 64,
            bad_request_log_rate: DEFAULT_BAD_REQUEST_LOG_RATE,
        }
    }
}

const MIB: usize = 1024 * 1024;

/// [`Limits::bad_request_log_rate`]'s default.
pub const DEFAULT_BAD_REQUEST_LOG_RATE: u32 = 10;

/// HTTP/2 flow-control windows (stream and connection): the bytes a client may send on one connection
/// before the webhook reads them. The protocol's own initial value, so HTTP/2's buffers per connection
/// stay small (a 3 MiB body then takes ~50 window updates, cheap on a cluster network).
pub const HTTP2_WINDOW: u32 = 65_535;
/// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, and the HTTP/1.1 read buffer (headers must fit in it).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// HTTP/2 send buffer per stream (our answers are a few KB).
pub const HTTP2_MAX_SEND_BUF: usize = 64 * 1024;
/// After this many answers in a row were 503 (shed at a bound) on one connection, the connection is
/// closed (HTTP/2: GOAWAY): a client that keeps sending what is refused pays a new handshake for every
/// connection's worth of streams instead of costing one cheap stream each.
pub const SHED_BEFORE_CLOSE: u32 = 32;
/// A body whose declared `Content-Length` is at most this is "small" (the AdmissionReview of an
/// ordinary pod is 5–50 KB) and may use all of [`Limits::max_inflight_body_bytes`]; larger bodies, and
/// bodies without a `Content-Length`, may use only three quarters of it, so a flood of large bodies
/// never leaves the small ones without room.
pub const SMALL_BODY_BYTES: usize = 256 * 1024;

/// The global budget of request-body bytes held in memory. Cheap to clone (a shared counter).
#[derive(Clone, Debug)]
pub struct BodyBudget {
    inner: Arc<Budget>,
}

#[derive(Debug)]
struct Budget {
    limit: i64,
    large_limit: i64,
    /// Bytes held; also the gauge `kpo_webhook_inflight_body_bytes`.
    held: Gauge,
}

impl BodyBudget {
    /// A budget of `limit` bytes; large bodies may use three quarters of it.
    pub fn new(limit: usize) -> Self {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        BodyBudget {
            inner: Arc::new(Budget {
                limit,
                large_limit: limit - limit / 4,
                held: Gauge::default(),
            }),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        usize::try_from(self.inner.held.get()).unwrap_or(0)
    }

    /// The bytes held, as a gauge to register.
    pub fn gauge(&self) -> Gauge {
        self.inner.held.clone()
    }

    /// The whole budget.
    pub fn limit(&self) -> usize {
        usize::try_from(self.inner.limit).unwrap_or(usize::MAX)
    }

    /// Reserves `n` bytes for a body (`small`: its declared length is at most [`SMALL_BODY_BYTES`]),
    /// or `None` if they do not fit. The bytes are released when the [`Reservation`] is dropped.
    pub fn reserve(&self, n: usize, small: bool) -> Option<Reservation> {
        let mut r = Reservation {
            budget: self.inner.clone(),
            bytes: 0,
            small,
        };
        r.grow(n).then_some(r)
    }
}

/// Bytes held against a [`BodyBudget`]; released on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
    small: bool,
}

impl Reservation {
    /// Holds `more` bytes as well; false (and nothing held) if they do not fit.
    pub fn grow(&mut self, more: usize) -> bool {
        if more == 0 {
            return true;
        }
        let Ok(add) = i64::try_from(more) else {
            return false;
        };
        let cap = if self.small {
            self.budget.limit
        } else {
            self.budget.large_limit
        };
        let ok = self
            .budget
            .held
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(add).filter(|&total| total <= cap)
            })
            .is_ok();
        if ok {
            self.bytes += more;
        }
        ok
    }

    /// Bytes held by this reservation.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget
                .held
                .dec_by(i64::try_from(self.bytes).unwrap_or(i64::MAX));
        }
    }
}

/// At most `rate` events per second pass; the others are counted.
#[derive(Debug)]
pub struct LogLimiter {
    rate: AtomicU64,
    /// The current one-second window (seconds since the Unix epoch) in the high 40 bits, the events
    /// passed in it in the low 24.
    window: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn new(rate: u32) -> Self {
        LogLimiter {
            rate: AtomicU64::new(rate as u64),
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Changes the rate (events per second; 0 passes none).
    pub fn set_rate(&self, rate: u32) {
        self.rate.store(u64::from(rate), Ordering::Relaxed);
    }

    /// `Some(n)` if this event may be logged at second `now`, where `n` events were suppressed since the
    /// last one that passed; `None` if it is to be suppressed (and counted).
    pub fn check(&self, now: u64) -> Option<u64> {
        let rate = self.rate.load(Ordering::Relaxed).min(0xFF_FFFF);
        let passed = self
            .window
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                let (second, count) = (w >> 24, w & 0xFF_FFFF);
                if second != now {
                    (rate > 0).then_some((now << 24) | 1)
                } else if count < rate {
                    Some(w + 1)
                } else {
                    None
                }
            })
            .is_ok();
        if passed {
            Some(self.suppressed.swap(0, Ordering::AcqRel))
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_quarter_for_small_bodies() {
        let b = BodyBudget::new(1000);
        let big = b.reserve(700, false).expect("fits the large share");
        assert!(b.reserve(100, false).is_none(), "large share is 750");
        let small = b.reserve(300, true).expect("small bodies use the rest");
        assert!(b.reserve(1, true).is_none(), "full");
        assert_eq!(b.held(), 1000);
        drop(big);
        assert_eq!(b.held(), 300);
        let mut grow = b.reserve(0, false).unwrap();
        assert!(grow.grow(450));
        assert!(!grow.grow(1), "300 + 450 = the large share");
        assert_eq!(grow.bytes(), 450);
        drop((small, grow));
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn limiter_passes_rate_per_second_and_counts_the_rest() {
        let l = LogLimiter::new(2);
        assert_eq!(l.check(100), Some(0));
        assert_eq!(l.check(100), Some(0));
        assert_eq!(l.check(100), None);
        assert_eq!(l.check(100), None);
        assert_eq!(
            l.check(101),
            Some(2),
            "the next line says how many were dropped"
        );
        l.set_rate(0);
        assert_eq!(l.check(102), None);
    }
}
