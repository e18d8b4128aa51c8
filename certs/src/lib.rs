//! `certs`: kpo-sweeper's certificate tool — the role kube-webhook-certgen plays for ingress-nginx, plus
//! rotation.
//!
//! * [`pki`]: a CA and a serving certificate for the webhook Service's DNS names (rcgen), and what a PEM
//!   holds (x509-parser). Pure.
//! * [`plan`]: the decision — what the Secret and the caBundle must hold given what they hold now, the
//!   thresholds and the time. Pure; `install` and `rotate` share it.
//! * [`cluster`]: the kube I/O at the edge — read the Secret and the MutatingWebhookConfiguration, write
//!   the caBundle first, then the Secret.
//! * [`files`]: files written the way the kubelet writes a Secret volume (atomic `..data` swap).
//! * [`cli`]: the clap arguments and `run`, so `main.rs` stays thin.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

pub mod cli;
pub mod cluster;
pub mod duration;
pub mod files;
pub mod pki;
pub mod plan;

/// Everything that can go wrong, each with context an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("cannot generate a certificate: {0}")]
    Generate(String),

    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),

    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// A bounded label for metrics and structured logs: one value per variant.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Generate(_) => "generate",
            Error::Invalid { .. } => "invalid",
            Error::Io { .. } => "io",
            Error::Client(_) => "client",
            Error::Kube { .. } => "kube",
            Error::NotFound(_) => "not_found",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_static_per_variant() {
        let e = Error::Invalid {
            what: "ca.crt",
            detail: "unbounded text".into(),
        };
        assert_eq!(e.metric_label(), "invalid");
        assert_eq!(Error::Config("x".into()).metric_label(), "config");
        assert_eq!(Error::NotFound("x".into()).metric_label(), "not_found");
    }
}
