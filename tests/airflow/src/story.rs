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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::airflow::{Airflow, DAG_ID, DagSettings, HEARTBEAT_TIMEOUT_SECS, Release, Ti};
use crate::procs::binaries;
use crate::{hook, identity, kwok, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use serde_json::Value;
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
fn sweep(af: &Airflow, ns: &str, owner: &str, delete: bool, log: &Path) -> (i32, Value) {
    let env = testsupport::env();
    let mut cmd = Command::new(&binaries().sweeper);
    cmd.args(["--kubeconfig"])
        .arg(&env.kubeconfig)
        .args(["--db-url", &af.db.sqlalchemy_url])
        .args(["--namespace", ns, "--owner", owner])
        .args(["--min-age", "0s", "--output", "json"])
        .env_remove("KUBECONFIG")
        .env_remove("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN");
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
            "   {:<40} {:<7} {:<14} {:<9} {}",
            p["name"].as_str().unwrap_or("?"),
            p["decision"].as_str().unwrap_or("?"),
            p["reason"].as_str().unwrap_or("?"),
            p["action"].as_str().unwrap_or("?"),
            p["ti_key"].as_str().unwrap_or("-"),
        );
    }
    eprintln!("   summary {}", report["summary"]);
}

fn verdict(d: &str, r: &str, a: &str) -> (String, String, String) {
    (d.to_owned(), r.to_owned(), a.to_owned())
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap()
}

/// Kills what the test started even when it fails: pods (grace 0), then Airflow and the webhook (their
/// guards), keeping the logs directory on failure.
struct Cleanup {
    pods: Api<Pod>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let pods = self.pods.clone();
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
                    let _ = pods.delete_collection(&dp, &ListParams::default()).await;
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
pub async fn kpo_zombie_story(release: &'static Release) {
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
    let worker = identity::airflow_worker_kubeconfig(&admin, &ns, &kubeconfig).await;
    let _hook = hook::start(&admin, &ns, &dir).await;
    let cleanup = Cleanup {
        pods: pods.clone(),
        dir: dir.clone(),
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

    say("every task runs; mapped_kpo_task[1] finished, KPO deleted its pod. Sweeper --delete:");
    let (rc, report) = sweep(&af, &ns, &worker, true, &dir.join("sweep-1.log"));
    print_report(&report);
    assert_eq!(rc, 0, "{report:#}");
    let expect1: BTreeMap<_, _> = [&zombie_pod, &mapped0_pod, &healthy_pod]
        .into_iter()
        .map(|p| (name(p), verdict("keep", "active", "none")))
        .collect();
    assert_eq!(
        verdicts(&report),
        expect1,
        "sweep 1 (every TI running): {report:#}"
    );
    assert_eq!(report["summary"]["deleted"], 0, "{report:#}");

    // 2. Workers die: SIGKILL the LocalExecutor workers (and their task processes) while the pods run.
    say("SIGKILL the workers of zombie_kpo_task, mapped_kpo_task[0] and healthy_kpo_task (try 1)");
    for (task, idx) in [ZOMBIE, MAPPED_0, HEALTHY] {
        let ti = af.ti(task, idx).await.unwrap();
        assert_eq!(ti.state(), "running", "{ti:?}");
        let killed = af.kill_worker(&ti);
        eprintln!("airflow-e2e: {task}[{idx}]: SIGKILLed {killed:?}");
    }
    let fail = Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 180);
    for (task, idx) in [ZOMBIE, MAPPED_0] {
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
        "Airflow failed two TIs by heartbeat timeout ({HEARTBEAT_TIMEOUT_SECS}s); healthy_kpo_task try 2 \
         reattached to its try-1 pod. Sweeper --delete:"
    ));
    let (rc, report) = sweep(&af, &ns, &worker, true, &dir.join("sweep-2.log"));
    print_report(&report);
    assert_eq!(rc, 0, "{report:#}");
    let expect2: BTreeMap<_, _> = [
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
    assert_eq!(verdicts(&report), expect2, "sweep 2: {report:#}");
    assert_eq!(report["summary"]["deleted"], 2, "{report:#}");
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
    let (rc, report) = sweep(&af, &ns, &worker, false, &dir.join("sweep-3.log"));
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
