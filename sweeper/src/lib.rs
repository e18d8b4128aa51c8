//! kpo-sweeper's sweeper: finds zombie KubernetesPodOperator pods and deletes them, and never a
//! live one.
//!
//! ```text
//! LIST KPO pods (metadata only, paged) ─┐                       (pods.rs)
//! SELECT active TIs (read-only, after) ─┴─► decide (pure, §5) ─► breaker ─► re-read ─► DELETE + Event
//!                                      (db.rs)   (decide.rs)     (gate.rs)  (db.rs)    (act.rs)
//! ```
//! The order matters: every pod judged existed before the DB snapshot it is judged against.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

pub mod act;
pub mod args;
pub mod db;
pub mod decide;
pub mod error;
pub mod gate;
pub mod interval;
pub mod metrics;
pub mod pods;
pub mod report;
pub mod retry;

use std::collections::HashSet;
use std::time::Instant;

use kube::Client;

pub use args::Args;
use decide::{DecideConfig, Decision, PodMeta, Reason, SiblingIndex};
pub use error::{Error, Result};
use report::{Action, PodRow, Report, Summary};

/// The exit codes of DESIGN.md §8.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const BREAKER: u8 = 2;
    pub const DELETE_FAILED: u8 = 3;
}

/// Sets up tracing on stderr: `RUST_LOG` (default `info`), text or JSON.
pub fn init_tracing(format: args::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        args::LogFormat::Json => b.json().init(),
        args::LogFormat::Text => b.init(),
    }
}

/// A finished run: the report to print and the exit code.
pub struct Outcome {
    pub report: Report,
    pub exit: u8,
    /// Why the breaker tripped, when it did.
    pub breaker: Option<String>,
    /// How long each phase took (interval mode's metrics).
    pub phases: metrics::Phases,
}

async fn kube_client(args: &Args) -> Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::KubeConfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::KubeConfig(format!("{}: {e}", path.display())))?
        }
        // DESIGN.md §8: $KUBECONFIG, then in-cluster (no ~/.kube/config guess: a CronJob must never
        // pick up a stray file, and a laptop run names its cluster on purpose).
        None if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) => {
            kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::KubeConfig(format!("$KUBECONFIG: {e}")))?
        }
        None => kube::Config::incluster().map_err(|e| {
            Error::KubeConfig(format!(
                "no --kubeconfig, no $KUBECONFIG, and not running in a cluster ({e}): \
                 pass --kubeconfig PATH or set KUBECONFIG"
            ))
        })?,
    };
    Client::try_from(config).map_err(|e| Error::KubeConfig(e.to_string()))
}

pub(crate) fn now_secs() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// One sweep. `Err` means nothing was deleted (exit 1).
pub async fn run(args: Args) -> Result<Outcome> {
    plan(args).await?.finish().await
}

/// A sweep judged but not acted on: the pods listed, the active TIs read after them, every
/// decision and the breaker's verdict. [`Plan::finish`] acts.
pub struct Plan {
    started: Instant,
    started_at: String,
    cfg: DecideConfig,
    delete: bool,
    grace_period: u32,
    client: Client,
    db: db::Db,
    /// Sorted by namespace and name.
    pub pods: Vec<PodMeta>,
    pub decisions: Vec<Decision>,
    pub active_tis: usize,
    /// Why the breaker tripped, when it did.
    pub breaker: Option<String>,
    /// How long the list, db and decide phases took.
    pub phases: metrics::Phases,
}

/// Lists the pods, then reads the DB, then decides: everything up to the first delete.
pub async fn plan(args: Args) -> Result<Plan> {
    let started = Instant::now();
    let started_at = k8s_openapi::jiff::Timestamp::from_second(now_secs())
        .expect("now is a valid timestamp")
        .to_string();
    let Args {
        kubeconfig: _,
        db_url,
        namespaces,
        all_namespaces,
        delete,
        output: _,
        max_deletions,
        max_fraction,
        min_age,
        include_completed,
        owners,
        unstamped,
        strict_retry,
        grace_period,
        log_format: _,
        interval: _,
    } = args.clone();
    if !all_namespaces && namespaces.is_empty() {
        return Err(Error::Args(
            "pass --namespace NS (repeatable) or --all-namespaces".into(),
        ));
    }
    let url = db::DbUrl::resolve(db_url.as_deref())?;
    if delete && owners.is_empty() {
        tracing::warn!(
            "--delete without --owner: pods of another Airflow deployment sharing these namespaces would be \
             judged against this deployment's DB; set --owner to this deployment's worker identity"
        );
    }
    let scope_namespaces = (!all_namespaces).then(|| {
        let mut v = namespaces.clone();
        v.sort();
        v.dedup();
        v
    });
    let cfg = DecideConfig {
        namespaces: scope_namespaces.clone().map(|v| v.into_iter().collect()),
        owners: owners.into_iter().collect(),
        unstamped,
        min_age_secs: i64::try_from(min_age).unwrap_or(i64::MAX),
        strict_retry,
    };
    let client = kube_client(&args).await?;

    // LIST first, then the DB: every pod judged existed before the snapshot it is judged against.
    let scope = pods::ListScope {
        namespaces: scope_namespaces,
        include_completed,
        page_size: pods::PAGE_SIZE,
    };
    // Connecting reads nothing, so it overlaps the LIST; the query starts after it.
    let ((pods, list_time), (db, connect_time)) = tokio::join!(
        metrics::timed(pods::list(&client, &scope)),
        metrics::timed(db::Db::connect(&url))
    );
    let mut pods = pods?;
    let mut db = db?;
    pods.sort_unstable_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    tracing::debug!(pods = pods.len(), "listed pods");

    let (active, query_time) = metrics::timed(db.active_tis()).await;
    let active = active?;
    tracing::debug!(active = active.len(), db = %url, "read active task instances");

    let decide_start = Instant::now();
    let now = now_secs();
    let siblings = SiblingIndex::build(&pods, &cfg);
    let decisions: Vec<Decision> = pods
        .iter()
        .map(|p| decide::decide(p, &active, &siblings, now, &cfg))
        .collect();
    drop(siblings);
    let zombies = decisions.iter().filter(|d| d.is_zombie()).count();
    let in_scope = decisions
        .iter()
        .filter(|d| d.reason != Reason::OutOfScope)
        .count();
    let breaker = gate::Breaker {
        max_deletions,
        max_fraction,
    }
    .check(zombies, in_scope)
    .err()
    .map(|t| t.0);
    let phases = metrics::Phases {
        list: Some(list_time),
        db: Some(connect_time + query_time),
        decide: Some(decide_start.elapsed()),
        delete: None,
    };
    Ok(Plan {
        started,
        started_at,
        cfg,
        delete,
        grace_period,
        client,
        db,
        pods,
        decisions,
        active_tis: active.len(),
        breaker,
        phases,
    })
}

impl Plan {
    /// Acts on the plan: nothing when the breaker tripped or in a dry run; otherwise re-reads the
    /// candidates' TI rows, decides again, and deletes what is still a zombie.
    pub async fn finish(self) -> Result<Outcome> {
        let Plan {
            started,
            started_at,
            cfg,
            delete,
            grace_period,
            client,
            mut db,
            pods,
            mut decisions,
            active_tis,
            breaker,
            mut phases,
        } = self;
        let mut actions = vec![Action::None; pods.len()];
        let mut exit = exit::OK;
        if breaker.is_some() {
            exit = exit::BREAKER;
        } else if !delete {
            for (a, d) in actions.iter_mut().zip(&decisions) {
                if d.is_zombie() {
                    *a = Action::WouldDelete;
                }
            }
        } else if decisions.iter().any(Decision::is_zombie) {
            // Right before deleting: re-read the candidates' rows and decide again.
            let candidates: HashSet<tikey::TiKey> = pods
                .iter()
                .zip(&decisions)
                .filter(|(_, d)| d.is_zombie())
                .filter_map(|(p, _)| p.key().map(|(k, _)| k.clone()))
                .collect();
            let (fresh, reread_time) = metrics::timed(db.reread(&candidates)).await;
            metrics::Phases::add(&mut phases.db, reread_time);
            let fresh = fresh?;
            let now = now_secs();
            let siblings = SiblingIndex::build(&pods, &cfg);
            let mut targets = Vec::new();
            let mut target_idx = Vec::new();
            for (i, (pod, d)) in pods.iter().zip(decisions.iter_mut()).enumerate() {
                if !d.is_zombie() {
                    continue;
                }
                let again = decide::decide(pod, &fresh, &siblings, now, &cfg);
                if !again.is_zombie() {
                    tracing::info!(namespace = %pod.namespace, pod = %pod.name, reason = again.reason.as_str(), "no longer a zombie at the re-read; kept");
                }
                *d = again;
                if again.is_zombie() {
                    targets.push(act::Target {
                        pod,
                        decision: again,
                    });
                    target_idx.push(i);
                }
            }
            let act_cfg = act::ActConfig {
                grace_period,
                instance: act::default_instance(),
            };
            let (outcomes, delete_time) =
                metrics::timed(act::delete_all(&client, &targets, &act_cfg)).await;
            phases.delete = Some(delete_time);
            for (i, o) in target_idx.into_iter().zip(outcomes) {
                actions[i] = match o {
                    act::Outcome::Deleted => Action::Deleted,
                    act::Outcome::Gone => Action::Gone,
                    act::Outcome::Conflict => Action::Conflict,
                    act::Outcome::Failed(_) => Action::Failed,
                };
            }
            if actions.contains(&Action::Failed) {
                exit = exit::DELETE_FAILED;
            }
        }
        let now = now_secs();
        let summary = Summary {
            listed: pods.len(),
            active_tis,
            zombies: decisions.iter().filter(|d| d.is_zombie()).count(),
            deleted: actions.iter().filter(|a| **a == Action::Deleted).count(),
            failed: actions.iter().filter(|a| **a == Action::Failed).count(),
        };
        let rows = pods
            .iter()
            .zip(decisions)
            .zip(actions)
            .map(|((p, d), action)| row(p, d, action, now))
            .collect();
        Ok(Outcome {
            report: Report {
                version: 1,
                dry_run: !delete,
                started_at,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                summary,
                pods: rows,
            },
            exit,
            breaker,
            phases,
        })
    }
}

fn row(p: &PodMeta, d: Decision, action: Action, now: i64) -> PodRow {
    let key = p.key();
    PodRow {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        uid: p.uid.clone(),
        ti_key: key.map(|(k, _)| k.encode()),
        try_number: key.map(|(_, t)| t),
        decision: d.verdict,
        reason: d.reason,
        action,
        age_secs: p.created_at.map(|c| now - c),
    }
}
