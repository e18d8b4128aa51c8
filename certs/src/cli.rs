//! Command-line arguments (clap derive; every flag also as env `KPO_CERTS_<FLAG>`) and `run`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::cluster::{self, Target};
use crate::duration::clap_secs;
use crate::plan::Policy;
use crate::{Result, files, pki};

#[derive(Debug, Parser)]
#[command(
    name = "certs",
    version,
    about = "CA and serving certificate for the kpo-sweeper webhook: generate, install, rotate"
)]
pub struct Args {
    /// Log format on stderr.
    #[arg(long, env = "KPO_CERTS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new CA and serving certificate to files (ca.crt, ca.key, tls.crt, tls.key).
    Generate {
        #[command(flatten)]
        names: NameArgs,
        #[command(flatten)]
        lifetimes: LifetimeArgs,
        /// Directory for the files (written with an atomic `..data` swap, like a Secret volume).
        #[arg(long, env = "KPO_CERTS_OUT_DIR")]
        out_dir: PathBuf,
    },
    /// Create or update the TLS Secret and set caBundle on every webhook of the configuration.
    /// Replaces only what is missing, invalid, for other names, or expired; a no-op when current.
    Install {
        #[command(flatten)]
        names: NameArgs,
        #[command(flatten)]
        lifetimes: LifetimeArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Like install, and renew what expires within the thresholds. A new CA is added to caBundle
    /// before the Secret changes, and the old one stays there for --ca-overlap.
    Rotate {
        #[command(flatten)]
        names: NameArgs,
        #[command(flatten)]
        lifetimes: LifetimeArgs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Renew the serving certificate when it expires within this (e.g. 30d).
        #[arg(long, env = "KPO_CERTS_RENEW_BEFORE", value_parser = clap_secs, default_value = "30d")]
        renew_before: i64,
        /// Renew the CA when it expires within this (e.g. 90d).
        #[arg(long, env = "KPO_CERTS_CA_RENEW_BEFORE", value_parser = clap_secs, default_value = "90d")]
        ca_renew_before: i64,
    },
}

/// The serving certificate's names.
#[derive(Debug, Clone, ClapArgs)]
pub struct NameArgs {
    /// The webhook Service's name.
    #[arg(long, env = "KPO_CERTS_SERVICE", default_value = "kpo-sweeper-webhook")]
    pub service: String,
    /// The namespace of the Service and of the Secret.
    #[arg(long, env = "KPO_CERTS_NAMESPACE", default_value = "kpo-sweeper")]
    pub namespace: String,
    /// More SANs: DNS names or IP addresses (e.g. 127.0.0.1 for a webhook on loopback). Repeatable or
    /// comma-separated.
    #[arg(long, env = "KPO_CERTS_EXTRA_SAN", value_delimiter = ',')]
    pub extra_san: Vec<String>,
}

/// Lifetimes of new certificates.
#[derive(Debug, Clone, ClapArgs)]
pub struct LifetimeArgs {
    /// Lifetime of a new serving certificate (capped at the CA's).
    #[arg(long, env = "KPO_CERTS_VALIDITY", value_parser = clap_secs, default_value = "365d")]
    pub validity: i64,
    /// Lifetime of a new CA.
    #[arg(long, env = "KPO_CERTS_CA_VALIDITY", value_parser = clap_secs, default_value = "3650d")]
    pub ca_validity: i64,
}

/// Where the Secret and the webhook configuration live, and how to reach them.
#[derive(Debug, Clone, ClapArgs)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, env = "KPO_CERTS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubernetes.io/tls Secret (in --namespace) holding tls.crt, tls.key, ca.crt and ca.key.
    #[arg(
        long,
        env = "KPO_CERTS_SECRET",
        default_value = "kpo-sweeper-webhook-tls"
    )]
    pub secret: String,
    /// The MutatingWebhookConfiguration whose webhooks get the caBundle.
    #[arg(long, env = "KPO_CERTS_WEBHOOK_CONFIG", default_value = "kpo-sweeper")]
    pub webhook_config: String,
    /// Keep CAs other than the current one in caBundle this long after a CA rotation, so webhook pods
    /// still serving the old pair stay trusted until they reload.
    #[arg(long, env = "KPO_CERTS_CA_OVERLAP", value_parser = clap_secs, default_value = "1h")]
    pub ca_overlap: i64,
    /// Wait between writing a new caBundle and writing the Secret.
    #[arg(long, env = "KPO_CERTS_SETTLE", value_parser = clap_secs, default_value = "2s")]
    pub settle: i64,
    /// Also write the Secret's files here after the run (atomic `..data` swap, like a Secret volume),
    /// e.g. for a webhook run outside the cluster.
    #[arg(long, env = "KPO_CERTS_OUT_DIR")]
    pub out_dir: Option<PathBuf>,
}

/// What a run did, for `main` to print.
#[derive(Debug)]
pub enum Outcome {
    Generated {
        out_dir: PathBuf,
        names: Vec<String>,
    },
    Reconciled(Box<cluster::Report>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Generated { out_dir, names } => write!(
                f,
                "wrote ca.crt, ca.key, tls.crt, tls.key to {} for {}",
                out_dir.display(),
                names.join(", ")
            ),
            Outcome::Reconciled(r) => r.fmt(f),
        }
    }
}

impl NameArgs {
    pub fn names(&self) -> Vec<String> {
        pki::service_names(&self.service, &self.namespace, &self.extra_san)
    }
}

impl Args {
    pub async fn run(self) -> Result<Outcome> {
        let Args {
            log_format: _,
            command,
        } = self;
        match command {
            Command::Generate {
                names,
                lifetimes:
                    LifetimeArgs {
                        validity,
                        ca_validity,
                    },
                out_dir,
            } => {
                let names = names.names();
                let policy = Policy {
                    names: names.clone(),
                    validity,
                    ca_validity,
                    renew_before: 0,
                    ca_renew_before: 0,
                    ca_overlap: 0,
                };
                policy.validate()?;
                let m = pki::generate(&names, crate::now_unix(), validity, ca_validity)?;
                files::write_material(&out_dir, &m)?;
                Ok(Outcome::Generated { out_dir, names })
            }
            Command::Install {
                names,
                lifetimes,
                cluster,
            } => reconcile(names, lifetimes, cluster, 0, 0).await,
            Command::Rotate {
                names,
                lifetimes,
                cluster,
                renew_before,
                ca_renew_before,
            } => reconcile(names, lifetimes, cluster, renew_before, ca_renew_before).await,
        }
    }
}

async fn reconcile(
    names: NameArgs,
    LifetimeArgs {
        validity,
        ca_validity,
    }: LifetimeArgs,
    ClusterArgs {
        kubeconfig,
        secret,
        webhook_config,
        ca_overlap,
        settle,
        out_dir,
    }: ClusterArgs,
    renew_before: i64,
    ca_renew_before: i64,
) -> Result<Outcome> {
    let policy = Policy {
        names: names.names(),
        validity,
        ca_validity,
        renew_before,
        ca_renew_before,
        ca_overlap,
    };
    let target = Target {
        namespace: names.namespace,
        secret,
        webhook_config,
    };
    let client = cluster::client(kubeconfig.as_deref()).await?;
    let report = cluster::reconcile(
        &client,
        &target,
        &policy,
        Duration::from_secs(settle.max(0) as u64),
    )
    .await?;
    if let Some(dir) = out_dir {
        files::write_material(&dir, &report.material)?;
    }
    Ok(Outcome::Reconciled(Box::new(report)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn rotate_parses_durations_and_repeatable_sans() {
        let a = Args::try_parse_from([
            "certs",
            "rotate",
            "--renew-before",
            "1h",
            "--extra-san",
            "127.0.0.1,localhost",
            "--extra-san",
            "::1",
        ])
        .unwrap();
        let Command::Rotate {
            names,
            renew_before,
            ca_renew_before,
            cluster,
            ..
        } = a.command
        else {
            panic!("not rotate");
        };
        assert_eq!(renew_before, 3_600);
        assert_eq!(ca_renew_before, 90 * 86_400);
        assert_eq!(names.extra_san, vec!["127.0.0.1", "localhost", "::1"]);
        assert_eq!(cluster.secret, "kpo-sweeper-webhook-tls");
        assert_eq!(cluster.webhook_config, "kpo-sweeper");
        assert!(Args::try_parse_from(["certs", "rotate", "--renew-before", "1y"]).is_err());
    }
}
