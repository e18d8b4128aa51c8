//! Command-line flags (docs/design.md §8), each also read from `KPO_SWEEPER_<FLAG>`.

use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueEnum};

use crate::decide::Unstamped;
use crate::gate;

const AFTER_HELP: &str = "\
Dry run is the default: without --delete the sweeper lists, judges and reports, and deletes nothing.
With --delete it re-reads the candidates' task instances right before deleting, and deletes only
pods that are still zombies, each with a UID precondition and one Event (reason ZombiePodDeleted).

--owner: deployments that share a namespace produce identical TI keys (same DAGs, same scheduled
run_ids), so one deployment's sweeper would judge the other's pods against the wrong DB. Set --owner
to the identity that creates this deployment's KPO pods (the Airflow workers' service account, e.g.
system:serviceaccount:airflow:airflow-worker); pods stamped by anyone else are skipped. --delete
without --owner works, with a warning.

--unstamped: pods without the webhook's stamp (created while it was absent, down or bypassed) are
kept and reported with reason `unstamped` and their own count (keep, the default; the run warns
once with the count, since their zombies are then never swept), or judged on their labels alone
(sweep). --owner cannot be checked for unstamped pods: `--unstamped sweep --owner` warns, and
`--unstamped sweep --all-namespaces` is refused.

Positive evidence only: a pod is deleted as `no-active-ti` only when this database holds its
task instance's row in a terminal state (success, failed, skipped, upstream_failed, removed) with a
try_number at or above the pod's try. A missing row is not evidence: a pod whose TI has no row is
kept as `unknown-ti` (a run deleted in the UI, rows purged by `airflow db clean`, or not this
Airflow's database; --sweep-unknown-ti-after DUR sweeps them once older than DUR), and a pod whose
row has a lower or NULL try_number is kept as `newer-than-db` (a backup restored behind the
cluster, a lagging replica). Both are counted in the summary and warned about once per run.
Wrong database: a pod whose DAG the database does not know (its `dag` table) is kept, reason
`unknown-dag`. A restored backup or a staging copy knows the DAGs; its missing rows keep the pods
(`unknown-ti`), and rows it holds from before are behind the cluster (`newer-than-db`). What the
sweeper cannot tell apart: a live staging Airflow running the same scheduled DAGs writes rows with
the same keys, and may have finished a task the production pod still runs. --owner (the stamp's
creator) and the circuit breaker are the defence there: set --owner.

Database: every statement runs in its own read-only transaction (BEGIN READ ONLY / START
TRANSACTION READ ONLY; SQLite opened read-only) under --db-timeout, with no startup options, no
session settings and no named prepared statements, so a PgBouncer in transaction-pooling mode (the
Airflow Helm chart's) works as the URL. Each PostgreSQL transaction pins search_path itself (to the
schema, else to the role's or database's default), so a pooled connection carrying another
client's `SET search_path` changes nothing. Tables are read through the indexes Airflow's schema
has; with --db-schema (or AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA) every name is schema-qualified.
URL parameters the sweeper does not pass on to the driver (libpq's sslpassword, connect_timeout,
…) are dropped with a warning that names the key, never the value.

Circuit breaker: the run deletes nothing and exits 2 when the zombies exceed --max-deletions, or
exceed --max-fraction of the pods judged against the database (rows 9-15 of the decision table:
owned, unidentifiable, too young, terminating and unknown-DAG pods do not count). The fraction is
checked from 5 zombies up, so that one zombie among few pods does not trip it. The message says
which flag would let the run through; review a dry run first.

Deletes go in batches: each batch's task instances are read again right before its deletes, and no
DELETE is sent more than 10 s after the re-read's query was sent (its snapshot, not its answer);
each DELETE carries the time left as its request timeout, and a late batch is read again. A run
whose later re-read fails after earlier batches deleted pods exits 1 and still reports every
delete it made.
Age (--min-age) counts from the later of the stamp's admitted-at and the pod's creationTimestamp.

Several clusters (--context NAME, repeatable): KPO pods that GKEStartPodOperator, EksPodOperator,
AKS or KPO's own config_file/cluster_context run on other clusters are judged against the same
Airflow database. Each context of the kubeconfig is a cluster: all are listed concurrently, each
one's pods are judged (the `superseded` check sees the pods of every cluster: a TI's current try
may run on another one), gated by that cluster's own circuit breaker (--max-deletions and
--max-fraction apply to each cluster) and deleted through that cluster's own client, with the
Event in the pod's own cluster. A cluster that cannot be reached (or whose context or credentials
fail) has its pods neither judged nor deleted: the others go on, the report's `clusters` lists it
with status `failed` and the error, and the run exits 1. The report's pods carry `cluster` (the
context; null without --context) and the table a CLUSTER column. Credentials come as the
kubeconfig says, exec plugins (ExecCredential: gke-gcloud-auth-plugin, `aws eks get-token`,
kubelogin) included; in interval mode each cluster's client is kept between runs and its exec
token is refreshed when it expires. Stamps on a remote cluster are written by the webhook
installed there: pass that cluster's KPO identity with --owner too (see the README).

Exit codes:
  0  done (in a dry run: nothing deleted)
  1  error: nothing was deleted after it (DB unreachable, auth, timeout, not an Airflow DB,
     apiserver errors after retries, invalid flags); deletes made before it are reported; with
     --context, also a cluster that failed (the other clusters were swept)
  2  circuit breaker tripped: nothing deleted (with --context: nothing in the clusters whose
     breaker tripped; the others were swept)
  3  some deletes failed (the others were done); see the report's \"failed\" actions";

/// Finds zombie KubernetesPodOperator pods (pods whose Airflow task instance is no longer active)
/// and deletes them.
#[derive(Debug, Clone, Parser)]
#[command(name = "sweeper", version, after_long_help = AFTER_HELP, after_help = "Exit codes: 0 done, 1 error (nothing deleted), 2 circuit breaker tripped (nothing deleted), 3 some deletes failed. See --help for more.")]
#[command(group(ArgGroup::new("scope").required(true).args(["namespaces", "all_namespaces"])))]
pub struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, then the in-cluster service account).
    #[arg(long, env = "KPO_SWEEPER_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Airflow's metadata DB: postgres://, mysql://, sqlite:// or Airflow's SQLAlchemy form
    /// (postgresql+psycopg2://…, mysql+mysqldb://…, sqlite:////abs/path.db). Default:
    /// $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN. The password is never printed.
    #[arg(
        long,
        env = "KPO_SWEEPER_DB_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub db_url: Option<SecretUrl>,

    /// PostgreSQL schema that holds Airflow's tables (default: $AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA,
    /// as Airflow reads it; an empty value means none). Every table name is then qualified with it.
    /// An error with a MySQL/MariaDB or SQLite URL, which have no schemas.
    #[arg(long, env = "KPO_SWEEPER_DB_SCHEMA", value_name = "NAME")]
    pub db_schema: Option<String>,

    /// Limit of each DB statement (server side, and client side a little later); a statement
    /// that runs out of it ends the run with exit 1, nothing deleted.
    #[arg(long, env = "KPO_SWEEPER_DB_TIMEOUT", value_name = "DUR", default_value = "30s", value_parser = parse_timeout)]
    pub db_timeout: u64,

    /// Kubeconfig context to sweep (repeatable; comma-separated in the env var): one run over
    /// several clusters against the one database. Each cluster is listed (all at once), judged,
    /// gated by its own circuit breaker and deleted in on its own; one that cannot be reached is
    /// reported failed and the others go on (exit 1). Without it: the current context, or
    /// in-cluster.
    #[arg(
        long = "context",
        env = "KPO_SWEEPER_CONTEXT",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub contexts: Vec<String>,

    /// Namespace to sweep (repeatable; comma-separated in the env var).
    #[arg(
        long = "namespace",
        short = 'n',
        env = "KPO_SWEEPER_NAMESPACE",
        value_name = "NS",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Sweep every namespace.
    #[arg(
        long,
        short = 'A',
        env = "KPO_SWEEPER_ALL_NAMESPACES",
        conflicts_with = "namespaces"
    )]
    pub all_namespaces: bool,

    /// Delete the zombies (without it: dry run, report only).
    #[arg(long, env = "KPO_SWEEPER_DELETE")]
    pub delete: bool,

    /// Report format on stdout.
    #[arg(long, short = 'o', env = "KPO_SWEEPER_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Circuit breaker: most zombies one run may delete.
    #[arg(long, env = "KPO_SWEEPER_MAX_DELETIONS", value_name = "N", default_value_t = gate::DEFAULT_MAX_DELETIONS)]
    pub max_deletions: u64,

    /// Circuit breaker: largest fraction (0.0–1.0) of the pods judged against the database that may
    /// be zombies (checked from 5 zombies up).
    #[arg(long, env = "KPO_SWEEPER_MAX_FRACTION", value_name = "F", default_value_t = gate::DEFAULT_MAX_FRACTION, value_parser = parse_fraction)]
    pub max_fraction: f64,

    /// Pods younger than this are kept (0s, 90s, 5m, 1h, 1h30m), counted from the later of the
    /// stamp's admitted-at and creationTimestamp.
    #[arg(long, env = "KPO_SWEEPER_MIN_AGE", value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    pub min_age: u64,

    /// Also judge pods whose phase is Succeeded or Failed (kept by default: they hold no CPU or
    /// memory, and KPO's on_finish_action keeps them on purpose).
    #[arg(long, env = "KPO_SWEEPER_INCLUDE_COMPLETED")]
    pub include_completed: bool,

    /// Pods per LIST page (1-10000). Each page is one request and one bounded response, decoded
    /// while the next is fetched; every page is served at the first page's revision. Why 500: at
    /// 150,000 pods every bounded size cost the apiserver the same CPU and bytes, while one
    /// unlimited LIST grew its memory by 1.5-1.7 GB and 5,000 a page spiked too; 500 keeps each
    /// response near 1 MB and is client-go's pager default (sweeper/README.md, "150,000 pods").
    #[arg(long, env = "KPO_SWEEPER_PAGE_SIZE", value_name = "N", default_value_t = crate::pods::PAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,

    /// The identity that creates this deployment's KPO pods (the stamp's created-by); repeatable.
    #[arg(
        long = "owner",
        env = "KPO_SWEEPER_OWNER",
        value_name = "IDENTITY",
        value_delimiter = ','
    )]
    pub owners: Vec<String>,

    /// What to do with pods that carry no stamp from the webhook (keep: reported `unstamped`).
    #[arg(long, env = "KPO_SWEEPER_UNSTAMPED", value_enum, default_value_t = Unstamped::Keep)]
    pub unstamped: Unstamped,

    /// Treat a pod of an older try as a zombie even when no pod of the current try exists (it may
    /// be one KPO reattached to: only for deployments without reattach).
    #[arg(long, env = "KPO_SWEEPER_STRICT_RETRY")]
    pub strict_retry: bool,
    /// Sweep pods whose TI has no row at all in the database (reason unknown-ti: run deleted in
    /// the UI, rows purged by `airflow db clean`) once they are older than this (5m, 1h, 7d).
    /// Unset (the default): such pods are kept, since a missing row is not evidence that a task
    /// is over (a restored backup or a staging database lacks the rows of live pods).
    #[arg(long, env = "KPO_SWEEPER_SWEEP_UNKNOWN_TI_AFTER", value_name = "DUR", value_parser = parse_duration)]
    pub sweep_unknown_ti_after: Option<u64>,

    /// Grace period of the DELETE, seconds (0: immediate). A zombie stuck in Terminating past its
    /// deletionTimestamp is always deleted with 0.
    #[arg(
        long,
        env = "KPO_SWEEPER_GRACE_PERIOD",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    pub grace_period: u32,

    /// Log format on stderr (RUST_LOG sets the level, default info).
    #[arg(long, env = "KPO_SWEEPER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Interval mode: --interval, --metrics-listen (interval.rs).
    #[command(flatten)]
    pub interval: crate::interval::IntervalArgs,
}

/// A database URL as given: its `Debug` never shows it (it may hold a password), so neither does
/// `Args`' own `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL as written, password included: only for parsing it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The redacted form, as every message shows it.
        let (shown, _) = crate::db::redacted(&self.0);
        write!(f, "SecretUrl({shown:?})")
    }
}

impl From<String> for SecretUrl {
    fn from(s: String) -> Self {
        SecretUrl(s)
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretUrl(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} is not between 0.0 and 1.0"))
    }
}

/// A duration of at least one second.
fn parse_timeout(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        0 => Err(format!("`{s}`: the DB timeout must be at least 1s")),
        n => Ok(n),
    }
}

/// `0s`, `90s`, `5m`, `1h`, `2d`, and sums like `1h30m`; a bare `0` is zero. Seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration like 0s, 90s, 5m, 1h or 1h30m");
    if s == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(total)
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
    fn every_flag_reads_kpo_sweeper_env() {
        // docs/design.md §8: each flag also as env `KPO_SWEEPER_<FLAG>`.
        let cmd = Args::command();
        let mut longs = Vec::new();
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let want = format!("KPO_SWEEPER_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                a.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "--{long}"
            );
            longs.push(long);
        }
        longs.sort_unstable();
        let mut want = [
            "kubeconfig",
            "context",
            "db-url",
            "db-schema",
            "db-timeout",
            "namespace",
            "all-namespaces",
            "delete",
            "output",
            "max-deletions",
            "max-fraction",
            "min-age",
            "include-completed",
            "page-size",
            "owner",
            "unstamped",
            "strict-retry",
            "sweep-unknown-ti-after",
            "grace-period",
            "log-format",
            "interval",
            "metrics-listen",
        ];
        want.sort_unstable();
        assert_eq!(longs, want);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        for bad in ["", "5", "m", "5x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_is_required_and_exclusive() {
        assert!(Args::try_parse_from(["sweeper"]).is_err());
        assert!(Args::try_parse_from(["sweeper", "-A", "--namespace", "x"]).is_err());
        let a = Args::try_parse_from(["sweeper", "--namespace", "a", "--namespace", "b"]).unwrap();
        assert_eq!(a.namespaces, ["a", "b"]);
        assert!(!a.delete);
        assert_eq!(a.min_age, 300);
        assert_eq!(a.unstamped, Unstamped::Keep);
        assert_eq!(a.grace_period, 0);
        assert_eq!((a.db_schema, a.db_timeout), (None, 30));
        assert!(Args::try_parse_from(["sweeper", "-A", "--db-timeout", "0s"]).is_err());
        let a = Args::try_parse_from([
            "sweeper",
            "-A",
            "--db-schema",
            "team_b",
            "--db-timeout",
            "2m",
        ])
        .unwrap();
        assert_eq!(
            (a.db_schema.as_deref(), a.db_timeout),
            (Some("team_b"), 120)
        );
        assert!(Args::try_parse_from(["sweeper", "-A", "--max-fraction", "1.5"]).is_err());
        let a =
            Args::try_parse_from(["sweeper", "-A", "--context", "a", "--context", "b,c"]).unwrap();
        assert_eq!(a.contexts, ["a", "b", "c"]);
        let a = Args::try_parse_from([
            "sweeper",
            "-A",
            "--unstamped",
            "sweep",
            "--owner",
            "x",
            "--owner",
            "y",
        ])
        .unwrap();
        assert_eq!((a.unstamped, a.owners.len()), (Unstamped::Sweep, 2));
    }

    #[test]
    fn help_documents_exit_codes_dry_run_and_owner() {
        let help = Args::command().render_long_help().to_string();
        for needle in [
            "Exit codes:",
            "2  circuit breaker",
            "Dry run is the default",
            "--owner:",
            "KPO_SWEEPER_DB_URL",
            "PgBouncer",
            "KPO_SWEEPER_DB_SCHEMA",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA",
            "[default: 30s]",
            "checked from 5 zombies up",
            "unknown-dag",
            "`unstamped`",
            "KPO_SWEEPER_CONTEXT",
            "--context NAME",
            "its own circuit breaker",
            "exec plugins",
        ] {
            assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
        }
    }
}
