//! kpo-sweeper's sweeper: finds zombie KubernetesPodOperator pods and deletes them, and never a
//! live one.
//!
//! ```text
//! LIST KPO pods (metadata only, paged) ─┐                       (pods.rs)
//! SELECT active TIs (read-only, after) ─┴─► decide (pure, §5) ─► breaker ─► re-read ─► DELETE + Event
//!                                      (db.rs)   (decide.rs)     (gate.rs)  (db.rs)    (act.rs)
//! ```
//! The order matters: every pod judged existed before the DB snapshot it is judged against.
//! With `--context` (several clusters) each cluster is LISTed at the same time, the decisions span
//! them all (one sibling index), and each cluster has its own breaker and its own deletes.
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
pub mod uid;

use std::collections::HashSet;
use std::time::Instant;

use kube::Client;

pub use args::Args;
use decide::{DecideConfig, Decision, PodMeta, Reason, SiblingIndex};
pub use error::{Error, Result};
use report::{Action, ClusterReport, ClusterStatus, Report, Summary};

/// The exit codes of docs/design.md §8.
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
    // Colours only on a terminal: Job logs and files get plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    /// The error that ended the run after some deletes (a later batch's re-read failed): the
    /// run exits 1, and the report still lists every delete it made.
    pub error: Option<Error>,
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
        // docs/design.md §8: $KUBECONFIG, then in-cluster (no ~/.kube/config guess: a CronJob must never
        // pick up a stray file, and a laptop run names its cluster on purpose).
        None if kubeconfig_env() => {
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

fn kubeconfig_env() -> bool {
    std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
}

/// One cluster of a run: a kubeconfig context (`name`), or without `--context` the one cluster
/// (`name` `None`). Its client is kept between the runs of interval mode, so an exec plugin's
/// token is refreshed when it expires, not fetched again every run.
#[derive(Clone)]
pub struct Cluster {
    pub name: Option<String>,
    /// `Err`: why no client could be built (the context, its credentials); the run reports the
    /// cluster failed and sweeps the others.
    pub client: std::result::Result<Client, String>,
}

impl Cluster {
    /// The cluster of a run without `--context`, on the caller's client.
    pub fn current(client: Client) -> Cluster {
        Cluster {
            name: None,
            client: Ok(client),
        }
    }
}

/// The clusters `args` name: one per `--context` (each one's failure is its own), or without it
/// the current context or in-cluster (whose failure ends the run, as before).
pub async fn connect(args: &Args) -> Result<Vec<Cluster>> {
    if args.contexts.is_empty() {
        return Ok(vec![Cluster::current(kube_client(args).await?)]);
    }
    let (kc, from) = match &args.kubeconfig {
        Some(path) => (
            kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::KubeConfig(format!("{}: {e}", path.display())))?,
            path.display().to_string(),
        ),
        None if kubeconfig_env() => (
            kube::config::Kubeconfig::read()
                .map_err(|e| Error::KubeConfig(format!("$KUBECONFIG: {e}")))?,
            "$KUBECONFIG".to_owned(),
        ),
        None => {
            return Err(Error::Args(
                "--context names contexts of a kubeconfig: pass --kubeconfig PATH or set KUBECONFIG".into(),
            ));
        }
    };
    let mut out = Vec::new();
    for name in contexts(&args.contexts) {
        out.push(Cluster {
            client: context_client(&kc, &from, &name).await,
            name: Some(name),
        });
    }
    Ok(out)
}

/// `--context` values in their order, each once.
fn contexts(names: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

/// A client for one context. An exec plugin runs here first (kube-rs asks it for a token when
/// the client is built, then again when the token it gave is within a minute of expiring).
async fn context_client(
    kc: &kube::config::Kubeconfig,
    from: &str,
    name: &str,
) -> std::result::Result<Client, String> {
    if !kc.contexts.iter().any(|c| c.name == name) {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "context {name:?} is not in {from} (its contexts: {})",
            known.join(", ")
        ));
    }
    let opts = kube::config::KubeConfigOptions {
        context: Some(name.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc.clone(), &opts)
        .await
        .map_err(|e| format!("context {name:?} of {from}: {e}"))?;
    Client::try_from(config).map_err(|e| format!("context {name:?} of {from}: cannot build a client (its credentials: exec plugin, certificate or token): {e}"))
}

/// Rebuilds the clients that could not be built (interval mode, before each run): a context whose
/// exec plugin failed once may work now. Clients that exist are kept.
pub async fn reconnect(args: &Args, clusters: &mut Vec<Cluster>) -> Result<()> {
    if clusters.is_empty() {
        *clusters = connect(args).await?;
        return Ok(());
    }
    if clusters.iter().all(|c| c.client.is_ok()) {
        return Ok(());
    }
    let fresh = connect(args).await?;
    for (c, f) in clusters.iter_mut().zip(fresh) {
        if c.client.is_err() {
            *c = f;
        }
    }
    Ok(())
}

/// The run's exit code (docs/design.md §8): an error (a failed cluster, or a re-read that failed
/// after some deletes) is 1, then a tripped breaker 2, then failed deletes 3.
pub fn exit_code(clusters: &[ClusterStatus], run_error: bool, failed_deletes: bool) -> u8 {
    if run_error || clusters.contains(&ClusterStatus::Failed) {
        exit::ERROR
    } else if clusters.contains(&ClusterStatus::Breaker) {
        exit::BREAKER
    } else if failed_deletes {
        exit::DELETE_FAILED
    } else {
        exit::OK
    }
}

pub(crate) fn now_secs() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// One sweep. `Err` means nothing was deleted after the error (exit 1).
pub async fn run(args: Args) -> Result<Outcome> {
    plan(args).await?.finish().await
}

/// Candidates per re-read: each batch of deletes is justified by its own re-read.
pub const BATCH: usize = 50;
/// docs/design.md §5: no DELETE is sent more than this long after the re-read that justified it.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// A pod whose delete ran late this many times in a row is given up on (reported `failed`).
pub const MAX_LATE: u32 = 3;

/// One cluster's part of a plan.
struct ClusterPlan {
    name: Option<String>,
    /// `None` when the cluster failed.
    client: Option<Client>,
    status: ClusterStatus,
    /// Why it failed, or why its breaker tripped.
    error: Option<String>,
    listed: usize,
    list_ms: u64,
}

/// A sweep judged but not acted on: the pods listed, the active TIs read after them, every
/// decision and the breaker's verdict. [`Plan::finish`] acts.
pub struct Plan {
    started: Instant,
    started_at: String,
    cfg: DecideConfig,
    delete: bool,
    grace_period: u32,
    clusters: Vec<ClusterPlan>,
    db: db::Db,
    dags: decide::KnownDags,
    /// Sorted by cluster (in `--context` order), namespace and name.
    pub pods: Vec<PodMeta>,
    /// The cluster of each pod (an index into the run's clusters).
    pub pod_cluster: Vec<usize>,
    pub decisions: Vec<Decision>,
    pub active_tis: usize,
    /// Why the breaker tripped, when it did (with `--context`: each tripped cluster's reason).
    pub breaker: Option<String>,
    /// Candidates per re-read ([`BATCH`]).
    pub batch_size: usize,
    /// Longest time from a re-read to a DELETE it justifies ([`WINDOW`]).
    pub window: std::time::Duration,
    /// Deletes in flight at once ([`act::CONCURRENCY`]).
    pub concurrency: usize,
    /// How long the list, db and decide phases took.
    pub phases: metrics::Phases,
    /// Interval mode's SIGTERM: once `true`, no further delete batch starts (the current one ends).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Checks the flags that only make sense together, before anything is read.
fn check_args(args: &Args) -> Result<()> {
    if !args.all_namespaces && args.namespaces.is_empty() {
        return Err(Error::Args(
            "pass --namespace NS (repeatable) or --all-namespaces".into(),
        ));
    }
    if args.unstamped == decide::Unstamped::Sweep && args.all_namespaces {
        return Err(Error::Args(
            "--unstamped sweep with --all-namespaces is refused: unstamped pods carry no creator, so every \
             Airflow's KPO pods in the cluster would be judged against this one database. Name this \
             deployment's namespaces with --namespace, or keep --unstamped keep"
                .into(),
        ));
    }
    Ok(())
}

/// Lists the pods, then reads the DB, then decides: everything up to the first delete.
pub async fn plan(args: Args) -> Result<Plan> {
    check_args(&args)?;
    db::DbUrl::resolve(args.db_url.as_ref().map(args::SecretUrl::expose))?;
    let clusters = connect(&args).await?;
    plan_on(args, clusters).await
}

/// [`plan`] with a Kubernetes client of the caller's (one cluster, no `--context`).
pub async fn plan_with(args: Args, client: Client) -> Result<Plan> {
    plan_on(args, vec![Cluster::current(client)]).await
}

/// [`plan`] over the caller's clusters ([`connect`]).
pub async fn plan_on(args: Args, clusters: Vec<Cluster>) -> Result<Plan> {
    let started = Instant::now();
    let started_at = k8s_openapi::jiff::Timestamp::from_second(now_secs())
        .expect("now is a valid timestamp")
        .to_string();
    check_args(&args)?;
    let Args {
        kubeconfig: _,
        contexts: _,
        db_url,
        db_schema,
        db_timeout,
        namespaces,
        all_namespaces,
        delete,
        output: _,
        max_deletions,
        max_fraction,
        min_age,
        include_completed,
        page_size,
        owners,
        unstamped,
        strict_retry,
        grace_period,
        sweep_unknown_ti_after,
        log_format: _,
        interval: _,
    } = args;
    let url = db::DbUrl::resolve(db_url.as_ref().map(args::SecretUrl::expose))?;
    let db_cfg = db::DbConfig::resolve(
        db_schema.as_deref(),
        std::time::Duration::from_secs(db_timeout),
    );
    if delete && owners.is_empty() {
        tracing::warn!(
            "--delete without --owner: pods of another Airflow deployment sharing these namespaces would be \
             judged against this deployment's DB; set --owner to this deployment's worker identity"
        );
    }
    if unstamped == decide::Unstamped::Sweep && !owners.is_empty() {
        tracing::warn!(
            "--unstamped sweep with --owner: unstamped pods carry no creator, so they cannot be checked \
             against --owner; every unstamped KPO pod in these namespaces is judged against this DB"
        );
    }
    let scope_namespaces = (!all_namespaces).then(|| {
        let mut v = namespaces;
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
        sweep_unknown_ti_after: sweep_unknown_ti_after
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
    };

    // LIST first, then the DB: every pod judged existed before the snapshot it is judged against.
    let scope = pods::ListScope {
        namespaces: scope_namespaces,
        include_completed,
        page_size,
    };
    // Every cluster at once: the run waits for the slowest LIST, not for their sum. Connecting to
    // the DB reads nothing, so it overlaps them; the queries start after the last LIST.
    let lists = futures::future::join_all(clusters.iter().map(|c| {
        let scope = &scope;
        async move {
            match &c.client {
                Ok(client) => metrics::timed(pods::list(client, scope)).await,
                Err(e) => (Err(Error::KubeConfig(e.clone())), std::time::Duration::ZERO),
            }
        }
    }));
    let list_start = Instant::now();
    let (lists, (db, connect_time)) =
        tokio::join!(lists, metrics::timed(db::Db::connect_with(&url, &db_cfg)));
    let list_time = list_start.elapsed();
    let single = clusters.len() == 1 && clusters[0].name.is_none();
    let mut plans = Vec::with_capacity(clusters.len());
    let mut pods = Vec::new();
    let mut pod_cluster = Vec::new();
    for (i, (c, (listed, took))) in clusters.into_iter().zip(lists).enumerate() {
        let list_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let mut p = match listed {
            Ok(p) => p,
            // Without --context the one cluster's failure is the run's (exit 1, nothing deleted).
            Err(e) if single => return Err(e),
            Err(e) => {
                let name = c.name.as_deref().unwrap_or_default();
                tracing::error!(
                    cluster = name,
                    kind = e.metric_label(),
                    "cluster {name} failed: its pods are neither judged nor deleted; the other clusters go on: {e}"
                );
                plans.push(ClusterPlan {
                    name: c.name,
                    client: None,
                    status: ClusterStatus::Failed,
                    error: Some(e.to_string()),
                    listed: 0,
                    list_ms,
                });
                continue;
            }
        };
        p.sort_unstable_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        tracing::debug!(
            cluster = c.name.as_deref(),
            pods = p.len(),
            list_ms,
            "listed pods"
        );
        pod_cluster.resize(pod_cluster.len() + p.len(), i);
        plans.push(ClusterPlan {
            name: c.name,
            client: c.client.ok(),
            status: ClusterStatus::Ok,
            error: None,
            listed: p.len(),
            list_ms,
        });
        if pods.is_empty() {
            pods = p;
        } else {
            pods.append(&mut p);
        }
    }
    let mut db = db?;

    let query_start = Instant::now();
    let dags = db.known_dags().await?;
    // The keys the decision looks up (each identified pod's, and a mapped pod's unmapped one):
    // the active read keeps only their rows, keyed by these very keys (no second copy of them).
    let unmapped: HashSet<tikey::TiKey> = pods
        .iter()
        .filter_map(|p| p.key())
        .filter(|(k, _)| k.map_index != -1)
        .map(|(k, _)| decide::unmapped(k))
        .collect();
    let wanted: HashSet<&tikey::TiKey> = pods
        .iter()
        .filter_map(|p| p.key().map(|(k, _)| k))
        .chain(&unmapped)
        .collect();
    let (active, active_tis) = db.active_tis_for(&wanted).await?;
    drop(wanted);
    // Rows 9–11 need the rows of the pods whose TI is not active, whatever their state: a
    // second, targeted read (in dry runs too, so a dry run shows what --delete would do).
    let mut candidates = HashSet::new();
    let mut tis = decide::Tis {
        active,
        ..Default::default()
    };
    let now = now_secs();
    // One index over every cluster's pods: a TI's current try may run on another cluster.
    let siblings = SiblingIndex::build(&pods, &cfg);
    for p in &pods {
        if decide::decide(p, &tis, &dags, &siblings, now, &cfg).reason == Reason::UnknownTi {
            reread_keys(p, &mut candidates);
        }
    }
    let rows = db.ti_rows(&candidates).await?;
    // A row that turned active between the two reads counts as active.
    for (k, ti) in rows.active {
        tis.active.entry(k).or_insert(ti);
    }
    tis.ended = rows.ended;
    let query_time = query_start.elapsed();
    tracing::debug!(
        active = active_tis,
        kept = tis.active.len(),
        candidates = candidates.len(),
        ended = tis.ended.len(),
        dags = dags.len(),
        query_ms = query_time.as_millis() as u64,
        db = %url,
        "read active task instances and the candidates' rows"
    );

    let decide_start = Instant::now();
    let decisions: Vec<Decision> = pods
        .iter()
        .map(|p| decide::decide(p, &tis, &dags, &siblings, now, &cfg))
        .collect();
    drop(siblings);
    drop(tis);
    drop((candidates, unmapped));
    // Each cluster's own breaker. The fraction counts only the pods judged against the database
    // (row 9 on): owned, unidentifiable, too young, terminating or unknown-DAG pods can never be
    // zombies.
    let verdicts = gate::Breaker {
        max_deletions,
        max_fraction,
    }
    .check_each(plans.len(), &pod_cluster, &decisions);
    let mut trips = Vec::new();
    for (c, verdict) in plans.iter_mut().zip(verdicts) {
        if let (ClusterStatus::Ok, Err(t)) = (c.status, verdict) {
            trips.push(match &c.name {
                Some(n) => format!("cluster {n}: {}", t.0),
                None => t.0.clone(),
            });
            c.status = ClusterStatus::Breaker;
            c.error = Some(t.0);
        }
    }
    let breaker = (!trips.is_empty()).then(|| trips.join("; "));
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
        clusters: plans,
        db,
        dags,
        pods,
        pod_cluster,
        decisions,
        active_tis,
        breaker,
        batch_size: BATCH,
        window: WINDOW,
        concurrency: act::CONCURRENCY,
        phases,
        stop: None,
    })
}

/// The keys a re-read must return for `pod`: its own, and for a mapped key the same TI unmapped
/// (a stale `map_index` label is judged against it).
fn reread_keys(pod: &PodMeta, into: &mut HashSet<tikey::TiKey>) {
    if let Some((k, _)) = pod.key() {
        into.insert(k.clone());
        if k.map_index != -1 {
            into.insert(decide::unmapped(k));
        }
    }
}

impl Plan {
    /// Acts on the plan: nothing in a dry run, nothing in a cluster whose breaker tripped;
    /// otherwise, batch by batch (each within one cluster), re-reads the candidates' TI rows,
    /// decides again, and deletes what is still a zombie within [`WINDOW`] of that re-read,
    /// through that cluster's client.
    pub async fn finish(self) -> Result<Outcome> {
        let Plan {
            started,
            started_at,
            cfg,
            delete,
            grace_period,
            clusters,
            mut db,
            dags,
            pods,
            pod_cluster,
            mut decisions,
            active_tis,
            breaker,
            batch_size,
            window,
            concurrency,
            mut phases,
            stop,
        } = self;
        let mut actions = vec![Action::None; pods.len()];
        let mut failure: Option<Error> = None;
        let unstamped = pods
            .iter()
            .zip(&decisions)
            .filter(|(p, d)| {
                p.stamp == decide::StampCheck::Unstamped && d.reason != Reason::OutOfScope
            })
            .count();
        if unstamped > 0 {
            let fate = match cfg.unstamped {
                decide::Unstamped::Keep => {
                    "they are kept (--unstamped keep), so their zombies are never swept"
                }
                decide::Unstamped::Sweep => {
                    "they are judged on their labels alone (--unstamped sweep)"
                }
            };
            tracing::warn!(
                unstamped,
                "{unstamped} KPO pods in scope carry no stamp: the webhook may be bypassed or down (the \
                 apiserver fails open on it); {fate}. See the webhook's README on telling why"
            );
        }
        warn_db_behind(&decisions, cfg.sweep_unknown_ti_after);
        let open = |i: usize| clusters[pod_cluster[i]].status == ClusterStatus::Ok;
        if !delete {
            for (i, (a, d)) in actions.iter_mut().zip(&decisions).enumerate() {
                if d.is_zombie() && open(i) {
                    *a = Action::WouldDelete;
                }
            }
        } else {
            let siblings = SiblingIndex::build(&pods, &cfg);
            let act_cfg = act::ActConfig {
                grace_period,
                instance: act::default_instance(),
                send_by: None,
                concurrency: concurrency.max(1),
            };
            // The pods are sorted by cluster: a batch is a run of one cluster's zombies.
            let mut queue: std::collections::VecDeque<usize> = decisions
                .iter()
                .enumerate()
                .filter(|&(i, d)| d.is_zombie() && open(i))
                .map(|(i, _)| i)
                .collect();
            let mut late = vec![0u32; pods.len()];
            let mut batch_no = 0usize;
            while let Some(&first) = queue.front() {
                if stop.as_ref().is_some_and(|s| *s.borrow()) {
                    tracing::info!(
                        left = queue.len(),
                        "stop requested: no further delete batch; the zombies left wait for the next run"
                    );
                    break;
                }
                let cluster = pod_cluster[first];
                let take = queue
                    .iter()
                    .take(batch_size.max(1))
                    .take_while(|&&i| pod_cluster[i] == cluster)
                    .count();
                let batch: Vec<usize> = queue.drain(..take).collect();
                let client = clusters[cluster]
                    .client
                    .as_ref()
                    .expect("a cluster that listed has a client");
                // Right before deleting: re-read this batch's rows and decide again.
                let mut keys = HashSet::new();
                for &i in &batch {
                    reread_keys(&pods[i], &mut keys);
                }
                // The window counts from the moment the re-read's query is sent (its snapshot),
                // not from its answer: a slow answer eats into the window, never extends it.
                let send_by = tokio::time::Instant::now() + window;
                let (fresh, reread_time) = metrics::timed(db.reread(&keys)).await;
                metrics::Phases::add(&mut phases.db, reread_time);
                let fresh = match fresh {
                    Ok(f) => f,
                    Err(e) => {
                        // Deletes already made stay reported; nothing more is deleted.
                        failure = Some(e);
                        break;
                    }
                };
                let now = now_secs();
                let mut targets = Vec::new();
                let mut target_idx = Vec::new();
                for &i in &batch {
                    let pod = &pods[i];
                    let again = decide::decide(pod, &fresh, &dags, &siblings, now, &cfg);
                    if !again.is_zombie() {
                        tracing::info!(namespace = %pod.namespace, pod = %pod.name, reason = again.reason.as_str(), "no longer a zombie at the re-read; kept");
                    }
                    decisions[i] = again;
                    if again.is_zombie() {
                        targets.push(act::Target {
                            pod,
                            decision: again,
                        });
                        target_idx.push(i);
                    }
                }
                let cfg_now = act::ActConfig {
                    send_by: Some(send_by),
                    ..act_cfg.clone()
                };
                let (outcomes, delete_time) =
                    metrics::timed(act::delete_all(client, &targets, &cfg_now)).await;
                metrics::Phases::add(&mut phases.delete, delete_time);
                let mut again_late = Vec::new();
                for (i, o) in target_idx.into_iter().zip(outcomes) {
                    actions[i] = match o {
                        act::Outcome::Deleted => Action::Deleted,
                        act::Outcome::Gone => Action::Gone,
                        act::Outcome::Conflict => Action::Conflict,
                        act::Outcome::Failed(_) => Action::Failed,
                        act::Outcome::Late => {
                            late[i] += 1;
                            if late[i] >= MAX_LATE {
                                tracing::error!(namespace = %pods[i].namespace, pod = %pods[i].name, "delete not sent: {MAX_LATE} re-reads in a row went stale before it could be sent (the apiserver is slow); giving up on this pod for this run");
                                Action::Failed
                            } else {
                                again_late.push(i);
                                Action::None
                            }
                        }
                    };
                }
                // Late ones are read again first, in their order.
                for i in again_late.into_iter().rev() {
                    queue.push_front(i);
                }
                batch_no += 1;
            }
            tracing::debug!(batches = batch_no, "deletes done");
        }
        let statuses: Vec<ClusterStatus> = clusters.iter().map(|c| c.status).collect();
        let exit = exit_code(
            &statuses,
            failure.is_some(),
            actions.contains(&Action::Failed),
        );
        let now = now_secs();
        let count = |r: Reason| decisions.iter().filter(|d| d.reason == r).count();
        let summary = Summary {
            listed: pods.len(),
            active_tis,
            zombies: decisions.iter().filter(|d| d.is_zombie()).count(),
            deleted: actions.iter().filter(|a| **a == Action::Deleted).count(),
            failed: actions.iter().filter(|a| **a == Action::Failed).count(),
            unstamped,
            newer_than_db: count(Reason::NewerThanDb),
            unknown_ti: count(Reason::UnknownTi),
        };
        let mut cluster_reports: Vec<ClusterReport> = clusters
            .into_iter()
            .map(|c| ClusterReport {
                name: c.name,
                status: c.status,
                listed: c.listed,
                zombies: 0,
                deleted: 0,
                failed: 0,
                list_ms: c.list_ms,
                error: c.error,
            })
            .collect();
        for ((d, a), &c) in decisions.iter().zip(&actions).zip(&pod_cluster) {
            let r = &mut cluster_reports[c];
            r.zombies += usize::from(d.is_zombie());
            r.deleted += usize::from(*a == Action::Deleted);
            r.failed += usize::from(*a == Action::Failed);
        }
        // The report keeps the pods as they are (no row is copied out of them).
        let names = cluster_reports.iter().map(|c| c.name.clone()).collect();
        let rows = report::Pods::new(pods, decisions, actions, pod_cluster, names, now);
        Ok(Outcome {
            report: Report {
                version: 1,
                dry_run: !delete,
                started_at,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                summary,
                clusters: cluster_reports,
                pods: rows,
            },
            exit,
            breaker,
            phases,
            error: failure,
        })
    }
}

/// Rows 10 and 11, once per run with their counts: many of them mean the database is not the
/// one the cluster's Airflow writes to.
fn warn_db_behind(decisions: &[Decision], sweep_unknown_after: Option<i64>) {
    let kept = |r: Reason| {
        decisions
            .iter()
            .filter(|d| d.reason == r && !d.is_zombie())
            .count()
    };
    let (newer, unknown) = (kept(Reason::NewerThanDb), kept(Reason::UnknownTi));
    if newer + unknown == 0 {
        return;
    }
    let purge = match sweep_unknown_after {
        Some(_) => "(--sweep-unknown-ti-after sweeps them once they are old enough)",
        None => {
            "(if this database's rows are purged on purpose, --sweep-unknown-ti-after DUR sweeps them)"
        }
    };
    tracing::warn!(
        newer_than_db = newer,
        unknown_ti = unknown,
        "kept {newer} pods whose TI row in this database is behind their try (newer-than-db) and {unknown} \
         whose TI has no row at all (unknown-ti) {purge}: many of them mean --db-url is not the database \
         this cluster's Airflow writes to (a restored backup, a lagging replica, staging)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClusterStatus::*;

    #[test]
    fn exit_codes_with_several_clusters() {
        assert_eq!(exit_code(&[Ok, Ok], false, false), exit::OK);
        // A failed cluster is an error even when the others were swept.
        assert_eq!(exit_code(&[Ok, Failed], false, false), exit::ERROR);
        assert_eq!(exit_code(&[Breaker, Failed], false, true), exit::ERROR);
        assert_eq!(exit_code(&[Ok, Breaker], false, true), exit::BREAKER);
        assert_eq!(exit_code(&[Ok], false, true), exit::DELETE_FAILED);
        assert_eq!(exit_code(&[Ok], true, false), exit::ERROR);
    }

    #[test]
    fn contexts_keep_their_order_once() {
        let v: Vec<String> = ["b", "a", "b"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(contexts(&v), ["b", "a"]);
    }
}
