//! Command-line flags, each also an environment variable `KPO_WEBHOOK_<FLAG>` (docs/design.md §8).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::Error;
use crate::limits::Limits;
use crate::server::{Config, Server};
use crate::telemetry::{self, LogFormat};
use crate::tls::CertFiles;

/// kpo-sweeper's mutating admission webhook: stamps KubernetesPodOperator pods at CREATE.
#[derive(Debug, Parser)]
#[command(name = "webhook", version, about)]
pub struct Args {
    /// HTTPS address for POST /mutate (and /healthz, /readyz, /metrics). `[::]` is dual-stack: it
    /// takes IPv4 connections too.
    #[arg(long, env = "KPO_WEBHOOK_LISTEN", default_value = "[::]:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain, leaf first (re-read on change, e.g. a mounted Secret's tls.crt).
    #[arg(long, env = "KPO_WEBHOOK_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,

    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "KPO_WEBHOOK_TLS_PRIVATE_KEY_FILE")]
    pub tls_private_key_file: PathBuf,

    /// Plain-HTTP address for /metrics, /healthz and /readyz (Prometheus and probes need no TLS);
    /// dual-stack like --listen.
    #[arg(long, env = "KPO_WEBHOOK_METRICS_LISTEN", default_value = "[::]:9090")]
    pub metrics_listen: SocketAddr,

    /// Log format.
    #[arg(long, env = "KPO_WEBHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// How often the certificate and key files are re-read (e.g. `500ms`, `5s`, `1m`).
    #[arg(long, env = "KPO_WEBHOOK_CERT_POLL_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub cert_poll_interval: Duration,

    /// On SIGTERM, how long in-flight requests may take before the remaining connections are closed.
    #[arg(long, env = "KPO_WEBHOOK_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    #[command(flatten)]
    pub bounds: BoundArgs,
}

/// Resource bounds. Any pod in the cluster can reach the webhook; when a bound is hit, the webhook
/// sheds load (the apiserver then admits the pod unstamped: `kpo_webhook_shed_total`) instead of
/// running out of memory or file descriptors.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Resource bounds")]
pub struct BoundArgs {
    /// Longest TLS handshake.
    #[arg(long, env = "KPO_WEBHOOK_TLS_HANDSHAKE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,

    /// Time for a request's headers: the first request's from the end of the TLS handshake (HTTP/1.1
    /// and HTTP/2), and every request's on HTTP/1.1 (so also the HTTP/1.1 keep-alive idle time).
    #[arg(long, env = "KPO_WEBHOOK_HEADER_READ_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time to receive a request's body; a slower client gets 408.
    #[arg(long, env = "KPO_WEBHOOK_BODY_READ_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Time from a request's headers to its answer, body read included; then 503. Keep it below the
    /// MutatingWebhookConfiguration's timeoutSeconds (3 s).
    #[arg(long, env = "KPO_WEBHOOK_REQUEST_TIMEOUT", default_value = "2500ms", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// A connection with no request in flight for this long is closed (HTTP/2: GOAWAY).
    #[arg(long, env = "KPO_WEBHOOK_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// HTTP/2 PING interval.
    #[arg(long, env = "KPO_WEBHOOK_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub http2_keep_alive_interval: Duration,

    /// An HTTP/2 PING not answered within this closes the connection.
    #[arg(long, env = "KPO_WEBHOOK_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http2_keep_alive_timeout: Duration,

    /// Concurrent HTTP/2 streams per connection.
    #[arg(long, env = "KPO_WEBHOOK_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,

    /// Open connections on --listen; one more is accepted and closed at once.
    #[arg(long, env = "KPO_WEBHOOK_MAX_CONNECTIONS", default_value_t = 1024, value_parser = parse_count)]
    pub max_connections: usize,

    /// Request-body bytes held in memory across all requests (e.g. `32Mi`, `512Ki`, `1000000`); a
    /// request that does not fit gets 503 at once. A quarter is kept for bodies of at most 256 KiB.
    #[arg(long, env = "KPO_WEBHOOK_MAX_INFLIGHT_BODY_BYTES", default_value = "32Mi", value_parser = parse_bytes)]
    pub max_inflight_body_bytes: usize,

    /// Open connections on --metrics-listen (HTTP/1.1 only, idle after --header-read-timeout).
    #[arg(long, env = "KPO_WEBHOOK_METRICS_MAX_CONNECTIONS", default_value_t = 64, value_parser = parse_count)]
    pub metrics_max_connections: usize,

    /// `bad request` log lines per second at most; the next line says how many were dropped.
    #[arg(long, env = "KPO_WEBHOOK_BAD_REQUEST_LOG_RATE", default_value_t = 10)]
    pub bad_request_log_rate: u32,
}

impl BoundArgs {
    /// The bounds, checked against each other.
    pub fn limits(self) -> Result<Limits, String> {
        let BoundArgs {
            tls_handshake_timeout,
            header_read_timeout,
            body_read_timeout,
            request_timeout,
            idle_timeout,
            http2_keep_alive_interval,
            http2_keep_alive_timeout,
            http2_max_concurrent_streams,
            max_connections,
            max_inflight_body_bytes,
            metrics_max_connections,
            bad_request_log_rate,
        } = self;
        if max_inflight_body_bytes < crate::MAX_BODY_BYTES {
            return Err(format!(
                "--max-inflight-body-bytes {max_inflight_body_bytes} is below one request's limit of {} bytes (3 MiB): a large pod could never be stamped",
                crate::MAX_BODY_BYTES
            ));
        }
        Ok(Limits {
            tls_handshake_timeout,
            header_read_timeout,
            body_read_timeout,
            request_timeout,
            idle_timeout,
            http2_keep_alive_interval,
            http2_keep_alive_timeout,
            http2_max_concurrent_streams,
            max_connections,
            max_inflight_body_bytes,
            metrics_max_connections,
            bad_request_log_rate,
        })
    }
}

impl Args {
    /// Sets up logging, serves until SIGTERM or ctrl-c, drains and returns.
    pub async fn run(self) -> crate::Result<()> {
        let Args {
            listen,
            tls_cert_file,
            tls_private_key_file,
            metrics_listen,
            log_format,
            cert_poll_interval,
            drain_timeout,
            bounds,
        } = self;
        telemetry::init(log_format);
        let limits = bounds.limits().map_err(Error::Config)?;
        if limits.request_timeout >= Duration::from_secs(3) {
            tracing::warn!(
                request_timeout = ?limits.request_timeout,
                "--request-timeout is not below the MutatingWebhookConfiguration's timeoutSeconds (3 s in manifests/base): the apiserver may give up first"
            );
        }
        let server = Server::bind(Config {
            listen,
            metrics_listen: Some(metrics_listen),
            cert: CertFiles {
                cert: tls_cert_file,
                key: tls_private_key_file,
            },
            cert_poll_interval,
            drain_timeout,
            limits,
        })
        .await?;
        server.run(shutdown_signal()).await
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// `250ms`, `5s`, `2m`, `1h` (a positive integer and a unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 5s, 1m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("`{s}`: unit must be ms, s, m or h")),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: must be more than zero"));
    }
    Ok(d)
}

/// A count of at least 1.
pub fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// Bytes: `1048576`, `512Ki`, `32Mi`, `1Gi`.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 32Mi, 512Ki or 1048576"))?;
    let mult: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("`{s}`: unit must be Ki, Mi, Gi or none (bytes)")),
    };
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("`{s}`: must be more than zero and fit in memory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "s", "0s", "-1s", "1.5s", "5d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from([
            "webhook",
            "--tls-cert-file",
            "/c",
            "--tls-private-key-file",
            "/k",
        ])
        .unwrap();
        assert_eq!(a.listen, "[::]:8443".parse().unwrap());
        assert_eq!(a.metrics_listen, "[::]:9090".parse().unwrap());
        assert_eq!(
            a.bounds.limits().unwrap(),
            Limits::default(),
            "--help's defaults are Limits' defaults"
        );
        assert_eq!(a.log_format, LogFormat::Json);
        assert_eq!(a.cert_poll_interval, Duration::from_secs(5));
        assert!(
            Args::try_parse_from(["webhook"]).is_err(),
            "cert and key are required"
        );
        let a = Args::try_parse_from([
            "webhook",
            "--listen=127.0.0.1:1",
            "--tls-cert-file=/c",
            "--tls-private-key-file=/k",
            "--metrics-listen=127.0.0.1:2",
            "--log-format=text",
            "--cert-poll-interval=100ms",
        ])
        .unwrap();
        assert_eq!(a.log_format, LogFormat::Text);
        assert_eq!(a.cert_poll_interval, Duration::from_millis(100));
        assert!(
            Args::try_parse_from([
                "webhook",
                "--tls-cert-file=/c",
                "--tls-private-key-file=/k",
                "--max-inflight-body-bytes=1Mi",
            ])
            .unwrap()
            .bounds
            .limits()
            .is_err(),
            "a budget below one 3 MiB body is refused"
        );
    }

    #[test]
    fn sizes_and_counts() {
        assert_eq!(parse_bytes("32Mi"), Ok(32 << 20));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        for bad in ["", "0", "1.5Mi", "3MB", "-1", "Mi"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_count("64"), Ok(64));
        assert!(parse_count("0").is_err());
    }

    #[test]
    fn every_flag_reads_its_env_var() {
        for arg in Args::command().get_arguments() {
            let long = arg.get_long().expect("every flag is long");
            if long == "help" || long == "version" {
                continue;
            }
            let want = format!("KPO_WEBHOOK_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "--{long}"
            );
        }
    }
}
