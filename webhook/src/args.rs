//! Command-line flags, each also an environment variable `KPO_WEBHOOK_<FLAG>` (DESIGN.md §8).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::server::{Config, Server};
use crate::telemetry::{self, LogFormat};
use crate::tls::CertFiles;

/// kpo-sweeper's mutating admission webhook: stamps KubernetesPodOperator pods at CREATE.
#[derive(Debug, Parser)]
#[command(name = "webhook", version, about)]
pub struct Args {
    /// HTTPS address for POST /mutate (and /healthz, /readyz, /metrics).
    #[arg(long, env = "KPO_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain, leaf first (re-read on change, e.g. a mounted Secret's tls.crt).
    #[arg(long, env = "KPO_WEBHOOK_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,

    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "KPO_WEBHOOK_TLS_PRIVATE_KEY_FILE")]
    pub tls_private_key_file: PathBuf,

    /// Plain-HTTP address for /metrics, /healthz and /readyz (Prometheus and probes need no TLS).
    #[arg(
        long,
        env = "KPO_WEBHOOK_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
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
        } = self;
        telemetry::init(log_format);
        let server = Server::bind(Config {
            listen,
            metrics_listen: Some(metrics_listen),
            cert: CertFiles {
                cert: tls_cert_file,
                key: tls_private_key_file,
            },
            cert_poll_interval,
            drain_timeout,
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
        assert_eq!(a.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(a.metrics_listen, "0.0.0.0:9090".parse().unwrap());
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
    }
}
