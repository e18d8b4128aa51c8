//! The listeners: HTTPS (rustls, HTTP/1.1 and HTTP/2) for the admission API on `--listen`, plain HTTP
//! for `/metrics`, `/healthz` and `/readyz` on `--metrics-listen`, and graceful shutdown for both:
//! stop accepting, let in-flight requests finish (bounded by [`Config::drain_timeout`]), return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, state::AppState};
use crate::metrics::Metrics;
use crate::tls::{CertFiles, CertResolver, Readiness};
use crate::{Error, Result};

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a request's headers within this is dropped (HTTP/1.1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
        let state = AppState::with_metrics(ready.clone(), metrics.clone());
        let resolver = Arc::new(CertResolver::new(config.cert.clone(), ready, metrics));
        if let Err(e) = resolver.load().await {
            tracing::error!(error = %e, "no TLS certificate yet; not ready until one loads");
        }
        let tls_listener = bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
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
        let plain = metrics_listener.map(|listener| {
            let router = api::plain_router(state.clone());
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        stopped(&mut rx).await;
                    })
                    .await
            })
        });
        let tls = Arc::new(crate::tls::server_config(resolver)?);
        tracing::info!(
            listen = %config.listen,
            metrics_listen = ?config.metrics_listen,
            cert = %config.cert.cert.display(),
            "serving"
        );
        let metrics = state.metrics().clone();
        let serving = serve_tls(
            tls_listener,
            tls,
            api::router(state),
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

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves `router` over TLS on `listener` until `stop` turns true; then stops accepting, lets open
/// connections finish their in-flight requests (at most `drain_timeout`) and returns.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    metrics: Metrics,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        // Taken before the handshake, so shutdown also waits for connections still shaking hands.
        let watcher = graceful.watcher();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            metrics.connection(match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => "h2",
                _ => "http/1.1",
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            "connections still open after the drain timeout; closing them"
        );
    }
    Ok(())
}
