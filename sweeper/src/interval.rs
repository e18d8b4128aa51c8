//! Interval mode (docs/design.md §8), in the manner of the descheduler's Deployment mode:
//! `sweeper --interval 5m --metrics-listen [::]:9091` sweeps every interval, forever, and serves
//! `/metrics`, `/healthz` and `/readyz` over plain HTTP.
//!
//! - A run's error never ends the loop: it is logged, counted (`kpo_sweeper_runs_total{outcome="error"}`)
//!   and the next run starts on schedule, from a fresh LIST and a fresh DB connection.
//! - Runs start every `--interval` from the previous start; a run longer than that is followed at
//!   once by the next (never two at a time).
//! - SIGTERM (or SIGINT) ends the loop between runs, or during a run before its deletes (the LIST,
//!   the DB read and the decision change nothing); once a run deletes, the current delete batch (one
//!   re-read and at most [`crate::BATCH`] deletes with their Events) is finished and no further batch
//!   starts: the zombies left wait for the next run, after the restart. Exit 0.
//! - Each run prints its report on stdout as a one-shot run does (`--output json`: one line per run).
//! - `/readyz` answers 200 once the first run has ended (any outcome); `/healthz` answers 503 when a
//!   run has been going for longer than 3 intervals (10 minutes at least): a stuck process that the
//!   kubelet should restart.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::{Args, Output, parse_duration};
use crate::metrics::Metrics;
use crate::{Outcome, exit};

/// The interval-mode flags (flattened into [`Args`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IntervalArgs {
    /// Run forever, one sweep every DUR (30s, 5m, 1h), instead of once; a run's error never ends
    /// the loop. SIGTERM stops it between runs (or after the current delete batch).
    #[arg(long = "interval", env = "KPO_SWEEPER_INTERVAL", value_name = "DUR", value_parser = parse_interval)]
    pub every: Option<u64>,

    /// With --interval: serve /metrics, /healthz and /readyz over plain HTTP on ADDR:PORT (e.g.
    /// [::]:9091, which also accepts IPv4).
    #[arg(
        long,
        env = "KPO_SWEEPER_METRICS_LISTEN",
        value_name = "ADDR:PORT",
        requires = "every"
    )]
    pub metrics_listen: Option<SocketAddr>,
}

fn parse_interval(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        0 => Err("the interval must be longer than 0s".into()),
        n => Ok(n),
    }
}

/// What `/healthz` and `/readyz` read.
#[derive(Debug, Default)]
pub struct Health {
    /// Runs ended, any outcome.
    runs_done: AtomicU64,
    /// When the run in progress started, Unix seconds; 0 between runs.
    running_since: AtomicI64,
    /// A run going for longer than this is stuck.
    stuck_after_secs: i64,
}

impl Health {
    fn new(every: Duration) -> Health {
        Health {
            stuck_after_secs: i64::try_from((every * 3).as_secs().max(600)).unwrap_or(i64::MAX),
            ..Health::default()
        }
    }

    pub fn ready(&self) -> bool {
        self.runs_done.load(Ordering::Acquire) > 0
    }

    pub fn healthy(&self, now: i64) -> bool {
        let since = self.running_since.load(Ordering::Acquire);
        since == 0 || now - since <= self.stuck_after_secs
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Arc<Health>,
}

/// The plain-HTTP router: `/metrics` (OpenMetrics text), `/healthz`, `/readyz`.
fn router(registry: Arc<Registry>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { registry, health })
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = String::with_capacity(4096);
    match prometheus_client::encoding::text::encode(&mut out, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    if s.health.healthy(crate::now_secs()) {
        "ok\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a run has been going for longer than 3 intervals\n",
        )
            .into_response()
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.health.ready() {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no run has ended yet\n").into_response()
    }
}

/// `true` once SIGTERM or SIGINT arrived.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = term => tracing::info!("SIGTERM: stopping between runs, or after the current delete batch"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        }
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: no signal can come any more.
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `sweeper --interval`: binds `--metrics-listen`, then loops until SIGTERM. Exit 1 only when the
/// listener cannot be bound; 0 after a signal.
pub async fn main(args: Args) -> ExitCode {
    let listener = match args.interval.metrics_listen {
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for /metrics");
                eprintln!("kpo-sweeper: error: cannot listen on {addr} (--metrics-listen): {e}");
                return ExitCode::from(exit::ERROR);
            }
        },
        None => None,
    };
    run(args, listener, stop_signal()).await;
    ExitCode::from(exit::OK)
}

/// The loop: one run every `--interval` until `stop` turns `true`; serves the metrics on `listener`.
pub async fn run(args: Args, listener: Option<TcpListener>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(args.interval.every.unwrap_or(1).max(1));
    let metrics = Metrics::default();
    metrics.set_interval(every);
    let mut registry = Registry::with_prefix("kpo_sweeper");
    let metrics = metrics.register(&mut registry);
    let health = Arc::new(Health::new(every));
    let server = listener.map(|l| {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(addr = %addr, "serving /metrics, /healthz and /readyz");
        let app = router(Arc::new(registry), health.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async move { stopped(&mut stop).await })
                .await
        })
    });
    tracing::info!(
        interval_secs = every.as_secs(),
        "interval mode: one run every interval until SIGTERM"
    );
    let output = args.output;
    // The clusters' clients live across runs: an exec plugin's token is then refreshed when it
    // expires (kube-rs asks the plugin again within a minute of its expirationTimestamp), not
    // fetched anew every run. A client that could not be built is tried again each run.
    let mut clusters: Vec<crate::Cluster> = Vec::new();
    loop {
        let started = tokio::time::Instant::now();
        health
            .running_since
            .store(crate::now_secs(), Ordering::Release);
        // Before the first delete a run changes nothing, so a signal may cut it short.
        let planned = tokio::select! {
            biased;
            () = stopped(&mut stop) => {
                tracing::info!("stopped before this run deleted anything");
                break;
            }
            p = async {
                crate::reconnect(&args, &mut clusters).await?;
                crate::plan_on(args.clone(), clusters.clone()).await
            } => p,
        };
        // From here on the run is not interrupted: its re-read and its delete batch finish.
        let result = match planned {
            Ok(mut plan) => {
                plan.stop = Some(stop.clone());
                plan.finish().await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(out) => {
                // A run that failed after some deletes (exit 1) still counts them.
                metrics.record_outcome(out, out.report.summary.unstamped, unix_now_f64());
                if let Some(e) = &out.error {
                    tracing::error!(
                        kind = e.metric_label(),
                        deleted = out.report.summary.deleted,
                        "run failed after {} deletes (reported); nothing deleted after the error; next run in {}s: {e}",
                        out.report.summary.deleted,
                        every.as_secs()
                    );
                }
                print(out, output);
            }
            Err(e) => {
                metrics.record_error(e.metric_label());
                tracing::error!(
                    kind = e.metric_label(),
                    "run failed, nothing deleted after the error; next run in {}s: {e}",
                    every.as_secs()
                );
            }
        }
        health.running_since.store(0, Ordering::Release);
        health.runs_done.fetch_add(1, Ordering::AcqRel);
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = tokio::time::sleep_until(started + every) => {}
        }
    }
    if let Some(server) = server {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics listener ended with an error"),
            Err(e) => tracing::warn!(error = %e, "metrics listener task failed"),
        }
    }
    tracing::info!(
        ok = metrics.runs("ok"),
        error = metrics.runs("error"),
        breaker = metrics.runs("breaker"),
        delete_failed = metrics.runs("delete-failed"),
        "interval mode stopped"
    );
}

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The run's report on stdout (a closed stdout is logged, not fatal: the loop goes on), the
/// breaker's message and the summary line on stderr.
fn print(out: &Outcome, output: Output) {
    if let Err(e) = out.report.write(output, std::io::stdout().lock()) {
        tracing::warn!(error = %e, "cannot write the report to stdout");
    }
    if let Some(why) = &out.breaker {
        tracing::warn!("{why}");
    }
    for line in out.report.failed_clusters() {
        tracing::error!("{line}");
    }
    tracing::info!(exit = out.exit, "{}", out.report.summary_line());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tower::ServiceExt;

    #[test]
    fn interval_flags() {
        let a = Args::try_parse_from([
            "sweeper",
            "-A",
            "--interval",
            "5m",
            "--metrics-listen",
            "[::]:9091",
        ])
        .unwrap();
        assert_eq!(a.interval.every, Some(300));
        assert_eq!(
            a.interval.metrics_listen,
            Some("[::]:9091".parse().unwrap())
        );
        // One run without --interval; --metrics-listen alone is refused (nothing would be served
        // after the run), and so is a zero interval.
        assert_eq!(
            Args::try_parse_from(["sweeper", "-A"])
                .unwrap()
                .interval
                .every,
            None
        );
        assert!(Args::try_parse_from(["sweeper", "-A", "--metrics-listen", "[::]:9091"]).is_err());
        assert!(Args::try_parse_from(["sweeper", "-A", "--interval", "0s"]).is_err());
    }

    #[test]
    fn health_says_stuck_after_three_intervals_or_ten_minutes() {
        let h = Health::new(Duration::from_secs(60));
        assert!(!h.ready());
        assert!(h.healthy(1_000));
        h.running_since.store(1_000, Ordering::Release);
        assert!(h.healthy(1_600));
        assert!(!h.healthy(1_601));
        let h = Health::new(Duration::from_secs(3600));
        h.running_since.store(1_000, Ordering::Release);
        assert!(h.healthy(1_000 + 3 * 3600));
        assert!(!h.healthy(1_001 + 3 * 3600));
    }

    #[tokio::test]
    async fn routes() {
        let health = Arc::new(Health::new(Duration::from_secs(60)));
        let mut reg = Registry::with_prefix("kpo_sweeper");
        let _m = Metrics::default().register(&mut reg);
        let app = router(Arc::new(reg), health.clone());
        let get = |path: &'static str| {
            let app = app.clone();
            async move {
                let resp = app
                    .oneshot(
                        http::Request::get(path)
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        assert_eq!(get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/healthz").await.0, StatusCode::OK);
        let (status, body) = get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("kpo_sweeper_runs_total{outcome=\"ok\"} 0"),
            "{body}"
        );
        health.runs_done.store(1, Ordering::Release);
        assert_eq!(get("/readyz").await.0, StatusCode::OK);
        health.running_since.store(1, Ordering::Release);
        assert_eq!(get("/healthz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/nope").await.0, StatusCode::NOT_FOUND);
    }
}
