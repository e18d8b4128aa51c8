//! The listeners: HTTPS (rustls; HTTP/1.1 or HTTP/2 as ALPN chose) for the admission API on `--listen`,
//! plain HTTP/1.1 for `/metrics`, `/healthz` and `/readyz` on `--metrics-listen`, both bounded by
//! [`Limits`], and graceful shutdown for both: stop accepting, let in-flight requests finish (bounded by
//! [`Config::drain_timeout`]), return.
//!
//! Every connection is bounded in count and in time:
//! * at most [`Limits::max_connections`] open (the metrics listener: [`Limits::metrics_max_connections`]);
//!   one more is accepted and closed at once, so the backlog never fills with clients we won't serve;
//! * the TLS handshake within [`Limits::tls_handshake_timeout`];
//! * the protocol is the one ALPN negotiated (`h2`, else HTTP/1.1): nothing waits to sniff a preface;
//! * the first request's headers within [`Limits::header_read_timeout`] of the handshake (HTTP/1.1:
//!   every request's), then no more than [`Limits::idle_timeout`] without a request in flight;
//! * HTTP/2: [`Limits::http2_max_concurrent_streams`] streams, PINGs every
//!   [`Limits::http2_keep_alive_interval`], small flow-control windows ([`crate::limits::HTTP2_WINDOW`]).
//!
//! The body and per-request bounds are the handler's ([`crate::api::handlers`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, state::AppState};
use crate::limits::{self, Limits};
use crate::metrics::Metrics;
use crate::tls::{CertFiles, CertResolver, Readiness};
use crate::{Error, Result};

/// What the server needs; [`crate::args::Args`] builds it from flags.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Plain-HTTP `/metrics`, `/healthz`, `/readyz`; `None`: only on the TLS listener.
    pub metrics_listen: Option<SocketAddr>,
    pub cert: CertFiles,
    pub cert_poll_interval: Duration,
    /// How long shutdown waits for in-flight requests before closing what is left.
    pub drain_timeout: Duration,
    pub limits: Limits,
}

/// Bound listeners and loaded state, ready to [`Server::run`].
pub struct Server {
    config: Config,
    tls_listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    resolver: Arc<CertResolver>,
}

impl Server {
    /// Binds both listeners and loads the certificate. A certificate that cannot be loaded yet is not
    /// fatal: it is logged, `/readyz` says 503 and handshakes fail until the files are valid.
    pub async fn bind(config: Config) -> Result<Self> {
        let metrics = Metrics::default();
        let ready = Readiness::default();
        let state = AppState::with_limits(ready.clone(), metrics.clone(), &config.limits);
        api::error::BAD_REQUEST_LOG.set_rate(config.limits.bad_request_log_rate);
        let resolver = Arc::new(CertResolver::new(config.cert.clone(), ready, metrics));
        if let Err(e) = resolver.load().await {
            tracing::error!(error = %e, "no TLS certificate yet; not ready until one loads");
        }
        let tls_listener = bind(config.listen)?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        Ok(Server {
            config,
            tls_listener,
            metrics_listener,
            state,
            resolver,
        })
    }

    /// The bound TLS address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.tls_listener.local_addr().map_err(Error::Serve)
    }

    /// The bound plain-HTTP address, if any.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().map_err(Error::Serve))
            .transpose()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let Server {
            config,
            tls_listener,
            metrics_listener,
            state,
            resolver,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let watcher = tokio::spawn(
            resolver
                .clone()
                .watch(config.cert_poll_interval, stop_rx.clone()),
        );
        let metrics = state.metrics().clone();
        let plain = metrics_listener.map(|listener| {
            tokio::spawn(serve(
                listener,
                None,
                api::plain_router(state.clone()),
                Bounds::metrics(&config.limits),
                stop_rx.clone(),
                config.drain_timeout,
                metrics.clone(),
            ))
        });
        let tls = Arc::new(crate::tls::server_config(resolver)?);
        tracing::info!(
            listen = %config.listen,
            metrics_listen = ?config.metrics_listen,
            cert = %config.cert.cert.display(),
            limits = ?config.limits,
            "serving"
        );
        let serving = serve(
            tls_listener,
            Some(tls),
            api::router(state),
            Bounds::tls(&config.limits),
            stop_rx,
            config.drain_timeout,
            metrics,
        );
        tokio::pin!(serving);
        let result = tokio::select! {
            r = &mut serving => r,
            () = shutdown => {
                tracing::info!("shutting down: no new connections, finishing in-flight requests");
                let _ = stop_tx.send(true);
                serving.await
            }
        };
        let _ = stop_tx.send(true);
        let _ = watcher.await;
        if let Some(plain) = plain {
            match plain.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "metrics listener ended with an error"),
                Err(e) => tracing::warn!(error = %e, "metrics listener task failed"),
            }
        }
        tracing::info!("stopped");
        result
    }
}

/// Resolves once `rx` holds `true` (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.is_ok();
}

/// A listening socket on `addr`. An IPv6 address is dual-stack (`IPV6_V6ONLY` off, whatever the host's
/// `net.ipv6.bindv6only`), so the default `[::]` also takes IPv4 connections.
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let err = |source| Error::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).map_err(err)?;
    }
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(1024).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}

/// The bounds of one listener (see [`Limits`]).
#[derive(Clone, Debug)]
pub struct Bounds {
    pub max_connections: usize,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// A connection that was asked to close (idle, or shutdown) is dropped after this at the latest.
    pub close_grace: Duration,
    /// HTTP/2 allowed (by ALPN); `false`: HTTP/1.1 only.
    pub http2: bool,
    pub http2_max_concurrent_streams: u32,
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
    /// Label for logs and metrics (`tls`, `metrics`).
    pub name: &'static str,
}

impl Bounds {
    /// The TLS listener's.
    pub fn tls(l: &Limits) -> Self {
        Bounds {
            max_connections: l.max_connections,
            tls_handshake_timeout: l.tls_handshake_timeout,
            header_read_timeout: l.header_read_timeout,
            idle_timeout: l.idle_timeout,
            close_grace: l.request_timeout + Duration::from_secs(1),
            http2: true,
            http2_max_concurrent_streams: l.http2_max_concurrent_streams,
            http2_keep_alive_interval: l.http2_keep_alive_interval,
            http2_keep_alive_timeout: l.http2_keep_alive_timeout,
            name: "tls",
        }
    }

    /// The metrics listener's: fewer connections, HTTP/1.1 only, idle after the header-read timeout.
    pub fn metrics(l: &Limits) -> Self {
        Bounds {
            max_connections: l.metrics_max_connections,
            idle_timeout: l.header_read_timeout,
            http2: false,
            name: "metrics",
            ..Bounds::tls(l)
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) within `bounds` until `stop` turns true;
/// then stops accepting, lets open connections finish their in-flight requests (at most
/// `drain_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    bounds: Bounds,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    metrics: Metrics,
) -> Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_read_timeout)
        .max_buf_size(limits::MAX_HEADER_BYTES);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(bounds.http2_max_concurrent_streams)
        .keep_alive_interval(bounds.http2_keep_alive_interval)
        .keep_alive_timeout(bounds.http2_keep_alive_timeout)
        .initial_stream_window_size(limits::HTTP2_WINDOW)
        .initial_connection_window_size(limits::HTTP2_WINDOW)
        .max_header_list_size(limits::MAX_HEADER_BYTES as u32)
        .max_send_buf_size(limits::HTTP2_MAX_SEND_BUF);
    let builders = Arc::new((h1, h2));
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let bounds = Arc::new(bounds);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, listener = bounds.name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Full: close at once (the client sees a reset or EOF, not a hang in the backlog).
            drop(tcp);
            metrics.shed("max-connections");
            if let Some(suppressed) = api::error::BAD_REQUEST_LOG.check(unix_secs()) {
                tracing::warn!(
                    listener = bounds.name,
                    max_connections = bounds.max_connections,
                    suppressed,
                    "connection refused: at the connection limit"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builders, bounds) = (acceptor.clone(), builders.clone(), bounds.clone());
        let (service, stop, metrics) = (router.clone(), stop.clone(), metrics.clone());
        tokio::spawn(async move {
            metrics.open_connections(bounds.name, 1);
            connection(tcp, acceptor, &builders, service, &bounds, stop, &metrics).await;
            metrics.open_connections(bounds.name, -1);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means all connections are done.
    let total = u32::try_from(bounds.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain_timeout, slots.acquire_many(total))
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            listener = bounds.name,
            "connections still open after the drain timeout; closing them"
        );
    }
    Ok(())
}

fn unix_secs() -> u64 {
    u64::try_from(crate::api::state::unix_now()).unwrap_or(0)
}

/// One connection: handshake, then HTTP/1.1 or HTTP/2 by ALPN, within the time bounds.
async fn connection(
    tcp: TcpStream,
    acceptor: Option<TlsAcceptor>,
    builders: &(http1::Builder, http2::Builder<TokioExecutor>),
    router: Router,
    bounds: &Bounds,
    stop: watch::Receiver<bool>,
    metrics: &Metrics,
) {
    let activity = Arc::new(Activity::new());
    let service = Counted {
        inner: TowerToHyperService::new(router),
        activity: activity.clone(),
    };
    let Some(acceptor) = acceptor else {
        let conn = builders.0.serve_connection(TokioIo::new(tcp), service);
        drive(conn, &activity, bounds, stop).await;
        return;
    };
    let stream =
        match tokio::time::timeout(bounds.tls_handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                metrics.connection("handshake-failed");
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics.connection("handshake-failed");
                tracing::debug!("TLS handshake timed out");
                return;
            }
        };
    // The protocol is the one ALPN chose; no preface sniffing (a client that sends nothing would hold
    // the connection with no timer running).
    let h2 = bounds.http2 && stream.get_ref().1.alpn_protocol() == Some(b"h2");
    metrics.connection(if h2 { "h2" } else { "http/1.1" });
    let io = TokioIo::new(stream);
    if h2 {
        drive(
            builders.1.serve_connection(io, service),
            &activity,
            bounds,
            stop,
        )
        .await;
    } else {
        drive(
            builders.0.serve_connection(io, service),
            &activity,
            bounds,
            stop,
        )
        .await;
    }
}

/// Runs `conn` until it ends. Drops it when it has had no request within the header-read timeout.
/// Asks it to close (HTTP/2: GOAWAY; HTTP/1.1: close once the request in flight is answered) when no
/// request has been in flight for the idle timeout, or on shutdown; drops it if it is still open
/// [`Bounds::close_grace`] after that.
async fn drive<C>(conn: C, activity: &Activity, bounds: &Bounds, mut stop: watch::Receiver<bool>)
where
    C: GracefulConnection<Error = hyper::Error>,
{
    let mut conn = pin!(conn);
    let started = activity.epoch;
    let mut closing: Option<Instant> = None;
    loop {
        let check_at = match closing {
            Some(at) => at + bounds.close_grace,
            None => activity.idle_deadline(started, bounds),
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(check_at) => {
                if closing.is_some() {
                    tracing::debug!("connection still open after it was asked to close; dropped");
                    return;
                }
                if activity.idle_deadline(started, bounds) <= Instant::now() {
                    if activity.requests.load(Ordering::Acquire) == 0 {
                        // Never sent a request (HTTP/2: maybe not even its preface, and hyper's
                        // graceful close waits for that): nothing to finish, drop it.
                        tracing::debug!("no request within the header-read timeout; closed");
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
            () = activity.close.notified(), if closing.is_none() => {
                tracing::debug!("connection closed after {} answers shed in a row", limits::SHED_BEFORE_CLOSE);
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = stopped(&mut stop), if closing.is_none() => {
                if activity.requests.load(Ordering::Acquire) == 0 {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    /// When the connection was accepted.
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    requests: AtomicUsize,
    /// When the last request ended, in ms after `epoch`.
    last_end_ms: AtomicU64,
    /// Answers in a row that were 503 (load shed).
    shed_in_a_row: AtomicU32,
    /// Notified when the connection is to be closed ([`limits::SHED_BEFORE_CLOSE`]).
    close: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
            shed_in_a_row: AtomicU32::new(0),
            close: Notify::new(),
        }
    }

    /// Counts an answer; after [`limits::SHED_BEFORE_CLOSE`] 503s in a row, asks for the connection to
    /// be closed: a client that keeps sending what is refused must reconnect (and pay a handshake)
    /// instead of costing one cheap stream each.
    fn answered(&self, status: axum::http::StatusCode) {
        if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
            if self.shed_in_a_row.fetch_add(1, Ordering::AcqRel) + 1 == limits::SHED_BEFORE_CLOSE {
                self.close.notify_one();
            }
        } else {
            self.shed_in_a_row.store(0, Ordering::Release);
        }
    }

    /// When the connection counts as idle if nothing happens before: now + idle timeout while a request
    /// is in flight; otherwise the header-read timeout after the start (no request yet) or the idle
    /// timeout after the last request ended.
    fn idle_deadline(&self, started: Instant, bounds: &Bounds) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + bounds.idle_timeout;
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return started + bounds.header_read_timeout;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        started + last + bounds.idle_timeout
    }
}

/// The hyper service of one connection, counting its requests in [`Activity`].
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R, B> hyper::service::Service<R> for Counted<S>
where
    S: hyper::service::Service<R, Response = axum::http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        let a = self.activity.clone();
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.requests.fetch_add(1, Ordering::AcqRel);
        // Made before the future, so a future dropped unpolled still ends the request.
        let done = InFlight(a);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            if let Ok(resp) = &r {
                done.0.answered(resp.status());
            }
            drop(done);
            r
        })
    }
}

/// Ends one in-flight request when dropped (answered, or cancelled with its connection).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let since = a.epoch.elapsed().as_millis();
        a.last_end_ms
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
