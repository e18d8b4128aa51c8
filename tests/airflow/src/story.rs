//! The upstream story (apache/airflow#58968) told by real Airflow, one [`Release`] at a time: the
//! `kpo_zombie_dag` test of each release (tests/kpo_zombie_dag.rs for 3.3.2,
//! tests/kpo_zombie_dag_airflow2.rs for 2.11.2) is [`kpo_zombie_story`] with that release. Airflow, with
//! the pinned cncf-kubernetes provider 10.25.0, runs `kpo_zombie_dag` (tests/airflow/dags) with a
//! LocalExecutor scheduler; the real KubernetesPodOperator creates its pods as service account
//! `airflow-worker` (token kubeconfig) on the kwok nodes; our webhook binary stamps them; zombies arise by
//! Airflow's own mechanisms; our sweeper binary, run on the same Airflow database, deletes exactly the
//! zombies and keeps every pod an Airflow task still holds.
//!
//! The story, on one DAG run:
//! 1. Every task starts. `mapped_kpo_task[1]` finishes (KPO deletes its pod) while `[0]` still runs (its
//!    sidecar never exits). The sweeper keeps the three running pods: `active`.
//! 2. The LocalExecutor workers of `zombie_kpo_task`, `mapped_kpo_task[0]` and `healthy_kpo_task` (try 1)
//!    are SIGKILLed while their pods run. Airflow's heartbeat timeout fails the first two (retries=0) and
//!    puts `healthy_kpo_task` up for retry; its try 2 reattaches to the try-1 pod. Meanwhile the row of
//!    `healthy_kpo_task` shows when `try_number` moves: still 1 while up_for_retry, 2 from the moment the
//!    scheduler schedules try 2 (before it is queued or runs): bumped at schedule (2.10 and later).
//! 3. The sweeper deletes the two zombies (`no-active-ti`, one Event each) and keeps the reattached pod
//!    (`may-reattach`: pod try 1 < row try 2). `healthy_kpo_task` then succeeds on the pod it adopted.
//!
//! Every pod KPO created carries the stamp the sweeper reads: its `ti-key` equals the key derived from the
//! Airflow row (`TiKey::from_db`), and `created-by` is the worker's identity.
//!
//! With [`Clusters::HomeAndRemote`] (the 3.3.2 test, issue 23) the DAG has two more tasks whose KPO targets
//! the env's second control plane through `config_file` (the worker's kubeconfig, whose context `remote`
//! is a client certificate of [`REMOTE_KPO`], signed by the env's CA) + `cluster_context="remote"` +
//! `in_cluster=False`; their pods tolerate the kwok taint and the remote scheduler places them on the
//! remote kwok node. The chart's stamping-only release (`sweeper.enabled=false`, `stamping=policy`) is
//! installed on the remote apiserver, scoped to the namespace, so those pods carry the remote identity.
//! `remote_zombie_kpo_task`'s worker is SIGKILLed with the others; `remote_live_kpo_task` runs on. The
//! sweeper, with `--context home --context remote` and an `--owner` for each identity, deletes the zombie
//! on each cluster (the Event in that cluster) and keeps the live pods; the report's `cluster` fields
//! name each pod's cluster. The remote pods, policies, Role and RoleBinding are removed pass or fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::airflow::{Airflow, DAG_ID, DagSettings, HEARTBEAT_TIMEOUT_SECS, Release, Ti};
use crate::identity::{REMOTE_CONTEXT, REMOTE_KPO, RemoteIdentity};
use crate::procs::binaries;
use crate::{hook, identity, kwok, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::Value;
use testsupport::admission::{self, Installed};
use tikey::{labels, stamp};

/// A run id with characters that are not valid in a label value (`:` `+`), so KPO's label and the row differ
/// and the key must be normalized the same way on both sides.
const RUN_ID: &str = "manual__2025-12-02T10:00:00.123456+00:00";
/// How long `base` of healthy_kpo_task runs: long enough for try 1 to be killed, timed out and retried,
/// and for try 2 to reattach, before it finishes.
const HEALTHY_BASE_RUNS_FOR: &str = "120s";

const ZOMBIE: (&str, i64) = ("zombie_kpo_task", -1);
const HEALTHY: (&str, i64) = ("healthy_kpo_task", -1);
const MAPPED_0: (&str, i64) = ("mapped_kpo_task", 0);
const MAPPED_1: (&str, i64) = ("mapped_kpo_task", 1);
const REMOTE_ZOMBIE: (&str, i64) = ("remote_zombie_kpo_task", -1);
const REMOTE_LIVE: (&str, i64) = ("remote_live_kpo_task", -1);
/// How long `base` of remote_live_kpo_task runs: past the second sweep (which comes before healthy_kpo_task's
/// base ends, started at the same time, runs for [`HEALTHY_BASE_RUNS_FOR`]).
const REMOTE_LIVE_RUNS_FOR: &str = "150s";

/// Which clusters the story's KPO tasks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clusters {
    /// Every pod on the env's cluster (`KUBECONFIG`).
    Home,
    /// Also two tasks on the env's second control plane (`REMOTE_KUBECONFIG`), through `config_file` +
    /// `cluster_context`, as a remote identity the remote cluster's own stamping (the chart's stamping-only
    /// release) records; the sweeper runs with `--context home --context remote` and both `--owner`s.
    HomeAndRemote,
}

/// The remote cluster's part of the story: the same namespace name there, KPO's identity and its rights,
/// the chart's stamping-only release (admission policies scoped to the namespace).
struct Remote {
    client: Client,
    pods: Api<Pod>,
    identity: RemoteIdentity,
    /// The admin kubeconfig with contexts `home` and `remote`, for the sweeper.
    sweeper_kubeconfig: PathBuf,
}

/// How the sweeper is run: which kubeconfig, contexts and owners.
struct Target {
    kubeconfig: PathBuf,
    contexts: Vec<String>,
    owners: Vec<String>,
}

/// (task_id, map_index) of a KPO pod, from its labels.
fn task_of(pod: &Pod) -> (String, i64) {
    let l = pod.metadata.labels.clone().unwrap_or_default();
    let task = l.get(labels::TASK_ID).cloned().unwrap_or_default();
    let idx = l
        .get(labels::MAP_INDEX)
        .map(|v| v.parse().expect("integer map_index label"))
        .unwrap_or(-1);
    (task, idx)
}

fn describe(pod: &Pod) -> String {
    format!(
        "{} {:?} phase {} containers {:?} deleting {}",
        pod.metadata.name.as_deref().unwrap_or("?"),
        task_of(pod),
        kwok::phase(pod),
        kwok::container_states(pod),
        pod.metadata.deletion_timestamp.is_some()
    )
}

async fn kpo_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(labels::KPO_SELECTOR))
        .await
        .expect("list KPO pods")
        .items
}

async fn pod_of(pods: &Api<Pod>, task: (&str, i64)) -> Result<Pod, String> {
    let all = kpo_pods(pods).await;
    let mine: Vec<&Pod> = all
        .iter()
        .filter(|p| task_of(p) == (task.0.to_owned(), task.1))
        .collect();
    match mine.as_slice() {
        [p] => Ok((*p).clone()),
        _ => Err(format!(
            "{} pods for {task:?}: {:?}",
            mine.len(),
            all.iter().map(describe).collect::<Vec<_>>()
        )),
    }
}

/// Runs the sweeper binary on the Airflow DB (Airflow's own SQLAlchemy URL) for `ns`; returns its exit
/// code and JSON report.
fn sweep(af: &Airflow, ns: &str, target: &Target, delete: bool, log: &Path) -> (i32, Value) {
    let mut cmd = Command::new(&binaries().sweeper);
    cmd.args(["--kubeconfig"])
        .arg(&target.kubeconfig)
        .args(["--db-url", &af.db.sqlalchemy_url])
        .args(["--namespace", ns])
        .args(["--min-age", "0s", "--output", "json"])
        .env_remove("KUBECONFIG")
        .env_remove("KPO_SWEEPER_CONTEXT")
        .env_remove("KPO_SWEEPER_OWNER")
        .env_remove("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN");
    for c in &target.contexts {
        cmd.args(["--context", c]);
    }
    for o in &target.owners {
        cmd.args(["--owner", o]);
    }
    if delete {
        cmd.arg("--delete");
    }
    let out = cmd.output().expect("run the sweeper");
    std::fs::write(log, &out.stderr).ok();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sweeper printed no JSON report ({e}); exit {:?}; stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// `name -> (decision, reason, action)` from a report.
fn verdicts(report: &Value) -> BTreeMap<String, (String, String, String)> {
    report["pods"]
        .as_array()
        .expect("report.pods")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("?").to_owned();
            (s("name"), (s("decision"), s("reason"), s("action")))
        })
        .collect()
}

/// Narration for `make demo-airflow` (`--nocapture`); in `make test` it shows only when the test fails.
fn say(what: &str) {
    eprintln!("\n== {what}");
}

fn print_report(report: &Value) {
    for p in report["pods"].as_array().into_iter().flatten() {
        eprintln!(
            "   {:<7}{:<33} {:<7} {:<14} {:<9} {}",
            p["cluster"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or("?"),
            p["decision"].as_str().unwrap_or("?"),
            p["reason"].as_str().unwrap_or("?"),
            p["action"].as_str().unwrap_or("?"),
            p["ti_key"].as_str().unwrap_or("-"),
        );
    }
    eprintln!("   summary {}", report["summary"]);
}

/// `name -> cluster` from a report (`null` without `--context`).
fn clusters_of(report: &Value) -> BTreeMap<String, Value> {
    report["pods"]
        .as_array()
        .expect("report.pods")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("?").to_owned(),
                p["cluster"].clone(),
            )
        })
        .collect()
}

/// `name -> status` of the report's clusters.
fn cluster_status(report: &Value) -> BTreeMap<String, String> {
    report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("?").to_owned(),
                c["status"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn verdict(d: &str, r: &str, a: &str) -> (String, String, String) {
    (d.to_owned(), r.to_owned(), a.to_owned())
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap()
}

/// What the test makes on the remote cluster, besides its namespace (never deleted: with no
/// kube-controller-manager a deleted namespace stays Terminating).
struct RemoteCleanup {
    client: Client,
    ns: String,
    /// The stamping-only release's admission policies, once installed.
    installed: Option<Installed>,
}

/// Kills what the test started even when it fails: pods (grace 0), then Airflow and the webhook (their
/// guards), keeping the logs directory on failure.
struct Cleanup {
    pods: Api<Pod>,
    /// What the test makes on the remote cluster.
    remote: Option<RemoteCleanup>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut pods = vec![self.pods.clone()];
        let mut remote = None;
        if let Some(r) = &mut self.remote {
            pods.push(Api::namespaced(r.client.clone(), &r.ns));
            remote = Some((r.client.clone(), r.ns.clone(), r.installed.take()));
        }
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let dp = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    };
                    for api in pods {
                        if let Err(e) = api.delete_collection(&dp, &ListParams::default()).await {
                            eprintln!("cleanup: cannot delete the test's pods: {e}");
                        }
                    }
                    if let Some((client, ns, installed)) = remote {
                        if let Some(i) = installed {
                            i.remove().await;
                        }
                        let dp = DeleteParams::default();
                        let name = identity::LAUNCHER_ROLE;
                        let _ = Api::<RoleBinding>::namespaced(client.clone(), &ns)
                            .delete(name, &dp)
                            .await;
                        let _ = Api::<Role>::namespaced(client, &ns).delete(name, &dp).await;
                    }
                });
            }
        })
        .join();
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The whole story with `release`; panics (keeping Airflow's logs) at the first step that differs.
pub async fn kpo_zombie_story(release: &'static Release, clusters: Clusters) {
    let admin = testsupport::client().await;
    let short: String = release
        .version
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let ns = testsupport::fresh_namespace(&admin, &format!("airflow{short}-e2e")).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let dir = std::env::temp_dir().join(format!("kpo-airflow-e2e-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!(
        "airflow-e2e: Airflow {}, namespace {ns}, logs in {}",
        release.version,
        dir.display()
    );
    let _binaries = tokio::task::spawn_blocking(binaries).await.unwrap();

    say(
        "KPO's identity: service account airflow-worker, a Role, a token kubeconfig; our webhook registered",
    );
    let kubeconfig = dir.join("airflow-worker.kubeconfig");
    let mut cleanup = Cleanup {
        pods: pods.clone(),
        remote: None,
        dir: dir.clone(),
    };
    let remote = match clusters {
        Clusters::Home => None,
        Clusters::HomeAndRemote => Some(remote_set_up(&ns, &dir, &mut cleanup).await),
    };
    let worker = identity::airflow_worker_kubeconfig(
        &admin,
        &ns,
        &kubeconfig,
        remote.as_ref().map(|r| &r.identity),
    )
    .await;
    if let Some(r) = &remote {
        wait_remote_stamping(r, &kubeconfig, &ns).await;
    }
    let _hook = hook::start(&admin, &ns, &dir).await;
    let target = match &remote {
        None => Target {
            kubeconfig: testsupport::env().kubeconfig.clone(),
            contexts: Vec::new(),
            owners: vec![worker.clone()],
        },
        Some(r) => Target {
            kubeconfig: r.sweeper_kubeconfig.clone(),
            contexts: vec!["home".to_owned(), "remote".to_owned()],
            owners: vec![worker.clone(), r.identity.user.clone()],
        },
    };

    // Every KPO pod as admitted (the webhook's stamp included), even those KPO deletes seconds later.
    let admitted: Arc<Mutex<BTreeMap<String, Pod>>> = Arc::default();
    let seen = admitted.clone();
    let watch = watcher(
        pods.clone(),
        watcher::Config::default().labels(labels::KPO_SELECTOR),
    );
    let watch_task = tokio::spawn(async move {
        let mut stream = watch.boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                seen.lock().unwrap().entry(uid).or_insert(p);
            }
        }
    });

    say(&format!(
        "Airflow {} starts: {}, on a fresh copy of its PostgreSQL template",
        release.version,
        match release.generation {
            crate::airflow::Generation::Three =>
                "api-server, dag-processor, scheduler (LocalExecutor)",
            crate::airflow::Generation::Two =>
                "scheduler (LocalExecutor; it parses the DAGs itself)",
        }
    ));
    let (tol_key, tol_value, _) = kwok::taint();
    let af = Airflow::start(
        release,
        &dir,
        &DagSettings {
            namespace: ns.clone(),
            kubeconfig: kubeconfig.clone(),
            toleration_key: tol_key,
            toleration_value: tol_value,
            healthy_base_runs_for: HEALTHY_BASE_RUNS_FOR.to_owned(),
            remote: remote
                .as_ref()
                .map(|_| (REMOTE_CONTEXT.to_owned(), REMOTE_LIVE_RUNS_FOR.to_owned())),
        },
    )
    .await;
    af.cli(&["dags", "trigger", DAG_ID, "--run-id", RUN_ID])
        .await;
    say(&format!("airflow dags trigger {DAG_ID} --run-id {RUN_ID}"));

    // 1. Everything runs; mapped[1] finishes while mapped[0] runs on.
    let start = Duration::from_secs(300);
    let running = |t: &Ti| t.state() == "running" && t.try_number == 1 && t.pid.is_some();
    for (task, idx) in [ZOMBIE, MAPPED_0] {
        af.wait_ti("a running TI", task, idx, start, running).await;
        wait_for(
            &format!("{task}[{idx}]'s base to exit while its sidecar runs"),
            start,
            || async {
                let p = pod_of(&pods, (task, idx)).await?;
                let st = kwok::container_states(&p);
                let base_done = st.contains(&("base".to_owned(), "terminated(0)".to_owned()));
                let sidecar = st.contains(&("sidecar".to_owned(), "running".to_owned()));
                if base_done && sidecar && kwok::phase(&p) == "Running" {
                    Ok(())
                } else {
                    Err(describe(&p))
                }
            },
        )
        .await;
    }
    let healthy_try1 = af
        .wait_ti(
            "healthy_kpo_task running",
            HEALTHY.0,
            HEALTHY.1,
            start,
            running,
        )
        .await;
    let healthy_pod = wait_for("healthy_kpo_task's pod to run", start, || async {
        let p = pod_of(&pods, HEALTHY).await?;
        if kwok::container_states(&p) == [("base".to_owned(), "running".to_owned())] {
            Ok(p)
        } else {
            Err(describe(&p))
        }
    })
    .await;
    let mapped1 = af
        .wait_ti(
            "mapped_kpo_task[1] success",
            MAPPED_1.0,
            MAPPED_1.1,
            start,
            |t| t.state() == "success",
        )
        .await;
    assert_eq!(mapped1.try_number, 1);
    let zombie_pod = pod_of(&pods, ZOMBIE).await.unwrap();
    let mapped0_pod = pod_of(&pods, MAPPED_0).await.unwrap();
    // KPO deleted mapped[1]'s pod when it succeeded.
    wait_for("KPO to delete mapped_kpo_task[1]'s pod", start, || async {
        match pod_of(&pods, MAPPED_1).await {
            Err(e) if e.starts_with("0 pods") => Ok(()),
            Ok(p) => Err(describe(&p)),
            Err(e) => Err(e),
        }
    })
    .await;

    // The remote tasks: their pods run on the remote cluster's kwok node, stamped there.
    let remote_pods = match &remote {
        None => None,
        Some(r) => Some(remote_pods_run(&af, r, &pods, start).await),
    };

    say("every task runs; mapped_kpo_task[1] finished, KPO deleted its pod. Sweeper --delete:");
    let (rc, report) = sweep(&af, &ns, &target, true, &dir.join("sweep-1.log"));
    print_report(&report);
    assert_eq!(rc, 0, "{report:#}");
    let mut expect1: BTreeMap<_, _> = [&zombie_pod, &mapped0_pod, &healthy_pod]
        .into_iter()
        .map(|p| (name(p), verdict("keep", "active", "none")))
        .collect();
    if let Some((rz, rl)) = &remote_pods {
        for p in [rz, rl] {
            expect1.insert(name(p), verdict("keep", "active", "none"));
        }
        check_clusters(
            &report,
            &[&zombie_pod, &mapped0_pod, &healthy_pod],
            &[rz, rl],
        );
    }
    assert_eq!(
        verdicts(&report),
        expect1,
        "sweep 1 (every TI running): {report:#}"
    );
    assert_eq!(report["summary"]["deleted"], 0, "{report:#}");

    // 2. Workers die: SIGKILL the LocalExecutor workers (and their task processes) while the pods run.
    let mut victims = vec![ZOMBIE, MAPPED_0, HEALTHY];
    let mut failing = vec![ZOMBIE, MAPPED_0];
    if remote.is_some() {
        say(
            "SIGKILL the workers of zombie_kpo_task, mapped_kpo_task[0], healthy_kpo_task (try 1) and remote_zombie_kpo_task",
        );
        victims.push(REMOTE_ZOMBIE);
        failing.push(REMOTE_ZOMBIE);
    } else {
        say(
            "SIGKILL the workers of zombie_kpo_task, mapped_kpo_task[0] and healthy_kpo_task (try 1)",
        );
    }
    for (task, idx) in victims {
        let ti = af.ti(task, idx).await.unwrap();
        assert_eq!(ti.state(), "running", "{ti:?}");
        let killed = af.kill_worker(&ti);
        eprintln!("airflow-e2e: {task}[{idx}]: SIGKILLed {killed:?}");
    }
    let fail = Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 180);
    for (task, idx) in failing {
        let ti = af
            .wait_ti(
                "Airflow to fail the TI (heartbeat timeout)",
                task,
                idx,
                fail,
                |t| t.state() == "failed",
            )
            .await;
        assert_eq!(ti.try_number, 1, "{ti:?}");
    }
    let healthy_try2 = af
        .wait_ti(
            "healthy_kpo_task's try 2 to run",
            HEALTHY.0,
            HEALTHY.1,
            fail,
            |t| t.state() == "running" && t.try_number == 2 && t.pid.is_some(),
        )
        .await;
    assert_ne!(healthy_try2.pid, healthy_try1.pid);
    // Try 2 finds try 1's pod (still running) and adopts it instead of creating one.
    let logs = dir.join("airflow-home/logs");
    wait_for(
        "healthy_kpo_task's try 2 to reattach to the try-1 pod",
        fail,
        || async {
            let found = find_in_logs(
                &logs,
                "task_id=healthy_kpo_task",
                "attempt=2",
                "Reusing existing pod",
            );
            if found {
                Ok(())
            } else {
                Err(format!(
                    "pods: {:?}",
                    kpo_pods(&pods)
                        .await
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
    .await;
    let adopted = pod_of(&pods, HEALTHY).await.unwrap();
    assert_eq!(
        adopted.metadata.uid, healthy_pod.metadata.uid,
        "try 2 adopted try 1's pod"
    );
    assert_eq!(
        adopted.metadata.labels.as_ref().unwrap()[labels::TRY_NUMBER],
        "1",
        "KPO never relabels an adopted pod"
    );

    // 3. The sweeper deletes the two zombies and keeps the reattached pod.
    say(&format!(
        "Airflow failed {} TIs by heartbeat timeout ({HEARTBEAT_TIMEOUT_SECS}s); healthy_kpo_task try 2 \
         reattached to its try-1 pod. Sweeper --delete{}:",
        if remote.is_some() { "three" } else { "two" },
        if remote.is_some() {
            " --context home --context remote, an --owner for each"
        } else {
            ""
        }
    ));
    if let (Some(r), Some((_, rl))) = (&remote, &remote_pods) {
        let p = r
            .pods
            .get(&name(rl))
            .await
            .expect("remote_live_kpo_task's pod");
        assert_eq!(
            kwok::container_states(&p),
            [("base".to_owned(), "running".to_owned())],
            "remote_live_kpo_task's base runs on through sweep 2 ({REMOTE_LIVE_RUNS_FOR}): {}",
            describe(&p)
        );
    }
    let (rc, report) = sweep(&af, &ns, &target, true, &dir.join("sweep-2.log"));
    print_report(&report);
    assert_eq!(rc, 0, "{report:#}");
    let mut expect2: BTreeMap<_, _> = [
        (
            name(&zombie_pod),
            verdict("zombie", "no-active-ti", "deleted"),
        ),
        (
            name(&mapped0_pod),
            verdict("zombie", "no-active-ti", "deleted"),
        ),
        (name(&healthy_pod), verdict("keep", "may-reattach", "none")),
    ]
    .into_iter()
    .collect();
    if let Some((rz, rl)) = &remote_pods {
        expect2.insert(name(rz), verdict("zombie", "no-active-ti", "deleted"));
        expect2.insert(name(rl), verdict("keep", "active", "none"));
        check_clusters(
            &report,
            &[&zombie_pod, &mapped0_pod, &healthy_pod],
            &[rz, rl],
        );
    }
    assert_eq!(verdicts(&report), expect2, "sweep 2: {report:#}");
    assert_eq!(
        report["summary"]["deleted"],
        if remote.is_some() { 3 } else { 2 },
        "{report:#}"
    );
    for p in [&zombie_pod, &mapped0_pod] {
        let gone =
            testsupport::wait_for_pod_gone(&admin, &ns, &name(p), Duration::from_secs(10)).await;
        assert!(gone, "{} was reported deleted but is still there", name(p));
    }
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    let ours: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ZombiePodDeleted"))
        .collect();
    let mut by_pod: BTreeMap<String, Event> = BTreeMap::new();
    for e in ours {
        let r = e.regarding.clone().expect("Event.regarding");
        assert!(
            by_pod.insert(r.name.clone().unwrap(), e).is_none(),
            "two Events for one pod"
        );
    }
    assert_eq!(
        by_pod.keys().cloned().collect::<Vec<_>>(),
        {
            let mut v = vec![name(&zombie_pod), name(&mapped0_pod)];
            v.sort();
            v
        },
        "one ZombiePodDeleted Event per deleted pod, none for the kept one"
    );
    let tis = af.tis().await;
    for p in [&zombie_pod, &mapped0_pod] {
        let e = &by_pod[&name(p)];
        let r = e.regarding.as_ref().unwrap();
        assert_eq!(r.uid, p.metadata.uid, "Event regards the deleted pod's UID");
        let (task, idx) = task_of(p);
        let row = tis
            .iter()
            .find(|t| t.task_id == task && t.map_index == idx)
            .unwrap();
        let note = e.note.clone().unwrap_or_default();
        assert!(
            note.contains(&row.spec().key().encode()) && note.contains("no-active-ti"),
            "Event note names the TI key and the rule: {note}"
        );
    }

    if let (Some(r), Some((rz, _))) = (&remote, &remote_pods) {
        remote_zombie_deleted(&af, r, &ns, rz).await;
        say("remote_zombie_kpo_task's pod is gone from the remote cluster, its one Event there");
    }

    // healthy_kpo_task's try 2 ends on the pod it adopted: base exits, KPO deletes the pod, success.
    say(
        "one ZombiePodDeleted Event per deleted pod; waiting for healthy_kpo_task to succeed in try 2",
    );
    let done = af
        .wait_ti(
            "healthy_kpo_task to succeed on its try 2",
            HEALTHY.0,
            HEALTHY.1,
            Duration::from_secs(300),
            |t| t.state() == "success",
        )
        .await;
    assert_eq!(done.try_number, 2, "{done:?}");
    check_try_number_moves(&af).await;
    assert!(
        testsupport::wait_for_pod_gone(&admin, &ns, &name(&healthy_pod), Duration::from_secs(60))
            .await,
        "KPO deletes the adopted pod when try 2 succeeds"
    );
    if let (Some(r), Some((_, rl))) = (&remote, &remote_pods) {
        say(
            "waiting for remote_live_kpo_task to succeed; KPO deletes its pod on the remote cluster",
        );
        af.wait_ti(
            "remote_live_kpo_task to succeed",
            REMOTE_LIVE.0,
            REMOTE_LIVE.1,
            Duration::from_secs(300),
            |t| t.state() == "success",
        )
        .await;
        assert!(
            testsupport::wait_for_pod_gone(&r.client, &ns, &name(rl), Duration::from_secs(60))
                .await,
            "KPO deletes remote_live_kpo_task's pod on the remote cluster when it succeeds"
        );
    }
    let (rc, report) = sweep(&af, &ns, &target, false, &dir.join("sweep-3.log"));
    assert_eq!(rc, 0, "{report:#}");
    assert_eq!(report["summary"]["listed"], 0, "nothing left: {report:#}");

    // The stamp of every pod KPO created is the key the sweeper derives from the Airflow row.
    say("healthy_kpo_task succeeded (try 2) and KPO deleted its pod; checking every pod's stamp");
    watch_task.abort();
    let admitted = admitted.lock().unwrap().clone();
    let tis = af.tis().await;
    let mut stamped_tasks = Vec::new();
    for p in admitted.values() {
        let (task, idx) = task_of(p);
        let row = tis
            .iter()
            .find(|t| t.task_id == task && t.map_index == idx)
            .unwrap_or_else(|| panic!("no TI row for pod {}", describe(p)));
        let a = p.metadata.annotations.clone().unwrap_or_default();
        let l = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            a.get(stamp::TI_KEY),
            Some(&row.spec().key().encode()),
            "ti-key of {} vs the key of {row:?}",
            describe(p)
        );
        assert_eq!(a.get(stamp::CREATED_BY), Some(&worker), "{}", describe(p));
        assert_eq!(
            a.get(stamp::TRY_NUMBER),
            l.get(labels::TRY_NUMBER),
            "{}",
            describe(p)
        );
        assert_eq!(
            l.get(stamp::STAMPED_LABEL).map(String::as_str),
            Some(stamp::STAMPED_VALUE)
        );
        assert_ne!(
            l.get(labels::RUN_ID),
            Some(&row.run_id),
            "the run_id label is normalized (the raw id has ':' and '+')"
        );
        stamped_tasks.push((task, idx, l[labels::TRY_NUMBER].clone()));
    }
    stamped_tasks.sort();
    let expected: Vec<(String, i64, String)> = [
        ("healthy_kpo_task", -1),
        ("mapped_kpo_task", 0),
        ("mapped_kpo_task", 1),
        ("zombie_kpo_task", -1),
    ]
    .into_iter()
    .map(|(t, i)| (t.to_owned(), i, "1".to_owned()))
    .collect();
    assert_eq!(
        stamped_tasks, expected,
        "KPO created one pod per TI, all in try 1 (try 2 reattached)"
    );
    say(
        "OK: the webhook's ti-key equals the key of each Airflow row; zombies deleted, live pods kept",
    );
    drop(af);
    drop(cleanup);
}

/// The remote cluster's part (see [`Clusters::HomeAndRemote`]): the namespace there, KPO's remote
/// identity with the launcher Role, and the chart's stamping-only release (`sweeper.enabled=false`,
/// `stamping=policy`) rendered by helm, its policies installed scoped to the namespace. `cleanup` learns
/// of the remote pods and policies before anything is made there.
async fn remote_set_up(ns: &str, dir: &Path, cleanup: &mut Cleanup) -> Remote {
    say(
        "the remote cluster: namespace, KPO's remote identity (a client certificate) and its Role, the chart's stamping-only release",
    );
    let client = testsupport::remote_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    cleanup.remote = Some(RemoteCleanup {
        client: client.clone(),
        ns: ns.to_owned(),
        installed: None,
    });
    let identity = identity::remote_identity(&client, ns, dir).await;
    let env = testsupport::env();
    let rendered = Command::new(env.var("HELM"))
        .args(["template", "stamp"])
        .arg(admission::repo_root().join("manifests/chart"))
        .args(["-n", "kpo-sweeper", "--set", "sweeper.enabled=false"])
        .args(["--set", "stamping=policy"])
        .args(["--set", &format!("targetNamespaces={{{ns}}}")])
        .output()
        .expect("run helm (HELM in the env file)");
    assert!(
        rendered.status.success(),
        "helm template of the stamping-only release: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let file = dir.join("remote-stamp-release.yaml");
    std::fs::write(&file, &rendered.stdout).unwrap();
    let objs = admission::manifest_objects(&file);
    let installed = admission::install_scoped(&client, &objs, ns, &BTreeMap::new()).await;
    if let Some(rc) = &mut cleanup.remote {
        rc.installed = Some(installed);
    }
    // The sweeper's view: the admin on both clusters, one context each.
    let ca = env.var("APISERVER_CA_CERT");
    let cert = env.var("ADMIN_CLIENT_CERT");
    let key = env.var("ADMIN_CLIENT_KEY");
    let sweeper_kubeconfig = dir.join("sweeper.kubeconfig");
    std::fs::write(
        &sweeper_kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n\
             - name: home\n  cluster: {{server: '{}', certificate-authority: '{ca}'}}\n\
             - name: remote\n  cluster: {{server: '{}', certificate-authority: '{ca}'}}\n\
             users:\n- name: admin\n  user: {{client-certificate: '{cert}', client-key: '{key}'}}\n\
             contexts:\n\
             - name: home\n  context: {{cluster: home, user: admin}}\n\
             - name: remote\n  context: {{cluster: remote, user: admin}}\n\
             current-context: home\n",
            env.var("APISERVER_URL"),
            env.var("REMOTE_APISERVER_URL"),
        ),
    )
    .unwrap();
    Remote {
        client,
        pods,
        identity,
        sweeper_kubeconfig,
    }
}

/// Waits until the remote policies stamp what KPO's remote context creates (a dry-run create through the
/// worker's kubeconfig, context [`REMOTE_CONTEXT`]): stamped, `created-by` the remote identity.
async fn wait_remote_stamping(r: &Remote, kubeconfig: &Path, ns: &str) {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("the worker's kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(
        kc,
        &kube::config::KubeConfigOptions {
            context: Some(REMOTE_CONTEXT.to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("the worker kubeconfig's remote context");
    let as_kpo: Api<Pod> = Api::namespaced(Client::try_from(cfg).unwrap(), ns);
    let probe = testsupport::kpo_pod("probe", &testsupport::TiSpec::new("d", "t", "r"));
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let user = r.identity.user.clone();
    admission::wait_until(
        "the remote stamp policy to stamp KPO's remote pods",
        Duration::from_secs(60),
        || {
            let (api, p, d, user) = (as_kpo.clone(), probe.clone(), dry.clone(), user.clone());
            async move {
                match api.create(&d, &p).await {
                    Ok(p) => {
                        p.metadata
                            .annotations
                            .unwrap_or_default()
                            .get(stamp::CREATED_BY)
                            == Some(&user)
                    }
                    Err(e) => panic!("KPO's remote identity cannot create a pod there: {e}"),
                }
            }
        },
    )
    .await;
}

/// Waits until both remote tasks run and their pods run on the remote kwok node (remote_zombie_kpo_task:
/// `base` done, its sidecar running; remote_live_kpo_task: `base` running); checks that neither has a pod
/// at home and that the remote stamp names the remote identity and the key of the task's row. Returns
/// (zombie's pod, live pod).
async fn remote_pods_run(
    af: &Airflow,
    r: &Remote,
    home: &Api<Pod>,
    timeout: Duration,
) -> (Pod, Pod) {
    let running = |t: &Ti| t.state() == "running" && t.try_number == 1 && t.pid.is_some();
    for (task, idx) in [REMOTE_ZOMBIE, REMOTE_LIVE] {
        af.wait_ti("a running remote TI", task, idx, timeout, running)
            .await;
    }
    let zombie = wait_for(
        "remote_zombie_kpo_task's base to exit while its sidecar runs, on the remote cluster",
        timeout,
        || async {
            let p = pod_of(&r.pods, REMOTE_ZOMBIE).await?;
            let st = kwok::container_states(&p);
            let base_done = st.contains(&("base".to_owned(), "terminated(0)".to_owned()));
            let sidecar = st.contains(&("sidecar".to_owned(), "running".to_owned()));
            if base_done && sidecar && kwok::phase(&p) == "Running" {
                Ok(p)
            } else {
                Err(describe(&p))
            }
        },
    )
    .await;
    let live = wait_for(
        "remote_live_kpo_task's pod to run on the remote cluster",
        timeout,
        || async {
            let p = pod_of(&r.pods, REMOTE_LIVE).await?;
            if kwok::container_states(&p) == [("base".to_owned(), "running".to_owned())] {
                Ok(p)
            } else {
                Err(describe(&p))
            }
        },
    )
    .await;
    let node = testsupport::env().var("REMOTE_KWOK_NODES");
    let tis = af.tis().await;
    for p in [&zombie, &live] {
        let (task, idx) = task_of(p);
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some(node),
            "the remote scheduler placed {} on the remote kwok node",
            describe(p)
        );
        let home_pod = pod_of(home, (task.as_str(), idx)).await;
        assert!(
            home_pod.as_ref().is_err_and(|e| e.starts_with("0 pods")),
            "{task} has a pod at home too: {home_pod:?}"
        );
        let row = tis
            .iter()
            .find(|t| t.task_id == task && t.map_index == idx)
            .unwrap_or_else(|| panic!("no TI row for pod {}", describe(p)));
        let a = p.metadata.annotations.clone().unwrap_or_default();
        let l = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            a.get(stamp::TI_KEY),
            Some(&row.spec().key().encode()),
            "{}",
            describe(p)
        );
        assert_eq!(
            a.get(stamp::CREATED_BY).map(String::as_str),
            Some(REMOTE_KPO),
            "the remote stamp names KPO's remote identity: {}",
            describe(p)
        );
        assert_eq!(
            a.get(stamp::TRY_NUMBER),
            l.get(labels::TRY_NUMBER),
            "{}",
            describe(p)
        );
    }
    (zombie, live)
}

/// The report's `cluster` of every pod (home's pods `home`, remote's `remote`) and both clusters `ok`.
fn check_clusters(report: &Value, home: &[&Pod], remote: &[&Pod]) {
    let expected: BTreeMap<String, Value> = home
        .iter()
        .map(|p| (name(p), Value::from("home")))
        .chain(remote.iter().map(|p| (name(p), Value::from("remote"))))
        .collect();
    assert_eq!(clusters_of(report), expected, "{report:#}");
    assert_eq!(
        cluster_status(report),
        BTreeMap::from([
            ("home".to_owned(), "ok".to_owned()),
            ("remote".to_owned(), "ok".to_owned())
        ]),
        "{report:#}"
    );
}

/// The remote zombie is gone from the remote cluster, with its one ZombiePodDeleted Event there (the
/// home cluster's Events were checked to be its own pods' only).
async fn remote_zombie_deleted(af: &Airflow, r: &Remote, ns: &str, zombie: &Pod) {
    assert!(
        testsupport::wait_for_pod_gone(&r.client, ns, &name(zombie), Duration::from_secs(10)).await,
        "{} was reported deleted but is still on the remote cluster",
        name(zombie)
    );
    let events: Vec<Event> = Api::<Event>::namespaced(r.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list the remote cluster's Events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ZombiePodDeleted"))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "one ZombiePodDeleted Event on the remote cluster: {events:?}"
    );
    let e = &events[0];
    let reg = e.regarding.as_ref().expect("Event.regarding");
    assert_eq!(reg.name.as_deref(), Some(name(zombie).as_str()));
    assert_eq!(
        reg.uid, zombie.metadata.uid,
        "Event regards the deleted pod's UID"
    );
    let row = af
        .ti(REMOTE_ZOMBIE.0, REMOTE_ZOMBIE.1)
        .await
        .expect("its TI row");
    let note = e.note.clone().unwrap_or_default();
    assert!(
        note.contains(&row.spec().key().encode()) && note.contains("no-active-ti"),
        "Event note names the TI key and the rule: {note}"
    );
}

/// How this Airflow moved `try_number` (docs/design.md §5, "bumped at schedule" since 2.10), from every
/// committed change of the rows (the audit trigger of [`Airflow::ti_history`]): a row starts at
/// (none, 0); `try_number` grows only by one, only in the change that makes the row `scheduled` (never at
/// queue, start, failure or retry); a try that went up_for_retry keeps its number until try 2 is scheduled.
/// So the pod's label equals the column while its try runs or waits for retry (sweep 1: `active`), and is
/// one below it from the moment the next try is scheduled (sweep 2: `may-reattach`).
async fn check_try_number_moves(af: &Airflow) {
    say(&format!(
        "how Airflow {} moved try_number (every committed change of the rows):",
        af.release.version
    ));
    for ((task, idx), last) in [
        (HEALTHY, ("success", 2)),
        (ZOMBIE, ("failed", 1)),
        (MAPPED_0, ("failed", 1)),
        (MAPPED_1, ("success", 1)),
    ] {
        let h = af.ti_history(task, idx).await;
        eprintln!("   {task}[{idx}]: {h:?}");
        let seen: Vec<(&str, i64)> = h.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        assert_eq!(
            seen.first(),
            Some(&("none", 0)),
            "{task}[{idx}] created with try 0: {h:?}"
        );
        assert_eq!(seen.last(), Some(&last), "{task}[{idx}] ends: {h:?}");
        for w in seen.windows(2) {
            let ((_, before), (state, after)) = (w[0], w[1]);
            if after != before {
                assert!(
                    after == before + 1 && state == "scheduled",
                    "{task}[{idx}]: try_number {before} -> {after} on the way to {state}, not +1 at \
                     schedule: {h:?}"
                );
            }
        }
        for try_number in 1..=last.1 {
            assert!(
                seen.contains(&("running", try_number)),
                "{task}[{idx}] ran try {try_number}: {h:?}"
            );
        }
    }
    let h = af.ti_history(HEALTHY.0, HEALTHY.1).await;
    let retry = h
        .iter()
        .position(|(s, _)| s == "up_for_retry")
        .unwrap_or_else(|| panic!("healthy_kpo_task was never up_for_retry: {h:?}"));
    assert_eq!(h[retry].1, 1, "up_for_retry keeps try 1: {h:?}");
    assert_eq!(
        h[retry + 1],
        ("scheduled".to_owned(), 2),
        "the retry is scheduled as try 2: {h:?}"
    );
}

/// Whether an Airflow task log under `logs` whose path contains `task` and `attempt` contains `needle`.
fn find_in_logs(logs: &Path, task: &str, attempt: &str, needle: &str) -> bool {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(logs, &mut files);
    files.iter().any(|f| {
        let s = f.display().to_string();
        s.contains(task)
            && s.contains(attempt)
            && std::fs::read_to_string(f).is_ok_and(|t| t.contains(needle))
    })
}
