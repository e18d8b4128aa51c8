//! Safety v3 (docs/design.md §5, version 3): the misconfigurations operators make, each on the real
//! kube-apiserver and a real Airflow database. A wrong database keeps every pod; the breaker
//! counts only pods judged against the database; each batch of deletes has its own re-read, and no
//! DELETE goes out more than the window after it; age cannot be forged; unstamped pods are counted;
//! colliding keys and stale `map_index` labels keep live pods; and the rows and outputs that had
//! no end-to-end test (unidentifiable, inconsistent stamp, foreign operators, grace periods, the
//! table output, --all-namespaces, gone and conflict, a DB failing at the re-read, LIST before DB).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use sqlx::Connection;
use sweeper::decide::{Reason, Verdict};
use sweeper::report::Action;
use testsupport::{DbKind, TiSpec};

const RUN: &str = "scheduled__2025-06-01T00:00:00+00:00";

fn row(v: Verdict, r: Reason, a: Action) -> (Verdict, Reason, Action) {
    (v, r, a)
}

/// Sets a TI's state with a statement of our own (PostgreSQL).
async fn set_state(url: &str, task_id: &str, state: Option<&str>) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("UPDATE task_instance SET state = $1 WHERE task_id = $2")
        .bind(state)
        .bind(task_id)
        .execute(&mut c)
        .await
        .unwrap();
}

// ---------------------------------------------------------------- a client that taps requests

type Hook = Arc<dyn Fn(http::Method, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// Runs `after` once the apiserver answered a request, before the caller sees the answer.
#[derive(Clone)]
struct Tap<S> {
    inner: S,
    after: Hook,
}

impl<S> tower::Service<http::Request<kube::client::Body>> for Tap<S>
where
    S: tower::Service<http::Request<kube::client::Body>> + Send,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let method = req.method().clone();
        let uri = req.uri().to_string();
        let after = self.after.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            after(method, uri).await;
            Ok(resp)
        })
    }
}

/// An admin client of the test apiserver whose every answered request runs `after`.
async fn tapped_client(after: Hook) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(&testsupport::env().kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&tower::layer::layer_fn(move |inner| Tap {
            inner,
            after: after.clone(),
        }))
        .build()
}

fn is_delete_of(method: &http::Method, uri: &str, pod: &str) -> bool {
    *method == http::Method::DELETE
        && uri
            .split('?')
            .next()
            .unwrap_or("")
            .ends_with(&format!("/pods/{pod}"))
}

// ---------------------------------------------------------------- wrong database

/// `--db-url` at a freshly migrated (or staging, or restored) database: 3 live pods, under the
/// breaker's floor of 5. Every pod is kept as `unknown-dag`; nothing is deleted.
#[tokio::test]
async fn wrong_database_keeps_a_small_namespace() {
    let s = Scenario::new("wrongdb3", DbKind::Airflow3Postgres).await;
    let right = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    for i in 0..3 {
        let ti = TiSpec::new("prod_dag", &format!("live_{i}"), RUN);
        right.insert_ti(&ti).await;
        s.pod(&format!("live-{i}"), &ti, Stamping::Ours).await;
    }
    // s.db is an empty, freshly migrated Airflow database.
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("live-0", "keep", "unknown-dag", "none"),
            ("live-1", "keep", "unknown-dag", "none"),
            ("live-2", "keep", "unknown-dag", "none"),
        ],
    );
    assert_eq!(s.survivors().await, names(&["live-0", "live-1", "live-2"]));
    assert!(s.zombie_events().await.is_empty());
    // Against the right database they are live.
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &right.url,
            "--min-age",
            "0s",
            "--delete",
            "--owner",
            OWNER,
        ],
        &[],
    )
    .await;
    out.expect(
        0,
        &[
            ("live-0", "keep", "active", "none"),
            ("live-1", "keep", "active", "none"),
            ("live-2", "keep", "active", "none"),
        ],
    );
}

/// 40 KubernetesJobOperator pods (KPO label plus an ownerReference) and 30 live KPO pods. A wrong
/// database that knows no DAG keeps all 30 (`unknown-dag`); one that knows the DAG but none of these
/// runs (a restored backup) keeps them too (`unknown-ti`: no row is no evidence). Nothing is
/// deleted either way.
#[tokio::test]
async fn wrong_database_with_owned_pods_deletes_nothing() {
    let s = Scenario::new("wrongdb70", DbKind::Airflow3Postgres).await;
    let right = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let mut live = Vec::new();
    for i in 0..30 {
        let ti = TiSpec::new("etl_dag", &format!("live_{i}"), RUN);
        right.insert_ti(&ti).await;
        let name = format!("live-{i:02}");
        s.pod(&name, &ti, Stamping::Ours).await;
        live.push(name);
    }
    for i in 0..40 {
        let ti = TiSpec::new("etl_dag", &format!("job_{i}"), RUN);
        s.pod_in(&s.ns, &format!("job-{i:02}"), &ti, Stamping::Ours, |p| {
            p.metadata.owner_references = Some(vec![job_owner()]);
        })
        .await;
    }
    let all: Vec<String> = s.survivors().await.into_iter().collect();
    assert_eq!(all.len(), 70);
    // As the manifests run it: --max-deletions 50.
    let flags = ["--delete", "--owner", OWNER, "--max-deletions", "50"];

    // 1. A database without the DAG.
    let out = s.sweep(&flags).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = out.rows();
    for name in &live {
        assert_eq!(rows[name].1, "unknown-dag", "{name}");
    }
    assert!(rows.values().all(|(_, _, a)| a == "none"), "{rows:?}");
    assert_eq!(out.summary()["deleted"], 0);

    // 2. A database with the DAG and an older run only (a restored backup).
    s.db.insert_ti(
        &TiSpec::new("etl_dag", "live_0", "scheduled__2020-01-01T00:00:00+00:00")
            .state(Some("success")),
    )
    .await;
    // v4: the database holds no row of these runs, which is no evidence: every live pod is kept
    // as unknown-ti (v3 found 30 zombies and relied on the breaker).
    let out = s.sweep(&flags).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["unknown_ti"], 30, "{}", out.stderr);
    let rows = out.rows();
    assert_eq!(rows.values().filter(|r| r.1 == "owned").count(), 40);
    assert_eq!(rows.values().filter(|r| r.1 == "unknown-ti").count(), 30);
    assert!(rows.values().all(|(_, _, a)| a == "none"), "{rows:?}");
    assert_eq!(s.survivors().await.len(), 70);
    assert!(s.zombie_events().await.is_empty());
}

// ---------------------------------------------------------------- bounded window

/// Batches of one: the first batch's DELETE is answered, then (before the second batch) the second
/// candidate's TI is cleared. The second batch's own re-read sees it: kept.
#[tokio::test]
async fn a_ti_turning_active_between_two_batches_keeps_its_pod() {
    let s = Scenario::new("batches", DbKind::Airflow3Postgres).await;
    let a = TiSpec::new("batch_dag", "a_first", RUN).state(Some("success"));
    let b = TiSpec::new("batch_dag", "b_second", RUN).state(Some("success"));
    for (n, ti) in [("a-first", &a), ("b-second", &b)] {
        s.db.insert_ti(ti).await;
        s.pod(n, ti, Stamping::Ours).await;
    }
    let url = s.db.url.clone();
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let client = tapped_client(Arc::new(move |m, uri| {
        let url = url.clone();
        let f = f.clone();
        Box::pin(async move {
            if is_delete_of(&m, &uri, "a-first") {
                // Cleared: state NULL, the next try will run.
                set_state(&url, "b_second", None).await;
                f.fetch_add(1, Ordering::SeqCst);
            }
        })
    }))
    .await;
    let mut plan = sweeper::plan_with(s.args(&["--delete"]), client)
        .await
        .unwrap();
    assert!(
        plan.decisions.iter().all(|d| d.is_zombie()),
        "{:?}",
        plan.decisions
    );
    plan.batch_size = 1;
    let out = plan.finish().await.unwrap();
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(out.exit, 0);
    assert_eq!(
        rows_of(&out),
        [
            (
                "a-first".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Deleted)
            ),
            (
                "b-second".to_owned(),
                row(Verdict::Keep, Reason::Active, Action::None)
            ),
        ]
        .into()
    );
    assert_eq!(s.survivors().await, names(&["b-second"]));
}

/// One batch, one delete at a time, a window of 1 s, and an apiserver whose answer to the first
/// DELETE comes 1.5 s late; meanwhile the second candidate's TI is retried and runs. Each DELETE
/// carries the time left as its timeout, so the first one's answer is not waited for past the
/// window, and the others are not sent on the stale re-read: all are read again. The revived pod
/// is kept; the first pod, deleted by the unanswered request, is found gone; the third is deleted.
#[tokio::test]
async fn a_late_batch_is_read_again_before_its_deletes() {
    let s = Scenario::new("late", DbKind::Airflow3Postgres).await;
    let a = TiSpec::new("late_dag", "a_slow", RUN).state(Some("failed"));
    let b = TiSpec::new("late_dag", "b_revived", RUN).state(Some("failed"));
    let c = TiSpec::new("late_dag", "c_dead", RUN).state(Some("failed"));
    for (n, ti) in [("a-slow", &a), ("b-revived", &b), ("c-dead", &c)] {
        s.db.insert_ti(ti).await;
        s.pod(n, ti, Stamping::Ours).await;
    }
    let url = s.db.url.clone();
    let deletes: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
    let log = deletes.clone();
    let slowed = Arc::new(AtomicUsize::new(0));
    let client = tapped_client(Arc::new(move |m, uri| {
        let url = url.clone();
        let log = log.clone();
        let slowed = slowed.clone();
        Box::pin(async move {
            if m == http::Method::DELETE {
                log.lock()
                    .unwrap()
                    .push((uri.clone(), tokio::time::Instant::now()));
            }
            if is_delete_of(&m, &uri, "a-slow") && slowed.fetch_add(1, Ordering::SeqCst) == 0 {
                set_state(&url, "b_revived", Some("running")).await;
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        })
    }))
    .await;
    let mut plan = sweeper::plan_with(s.args(&["--delete"]), client)
        .await
        .unwrap();
    assert!(plan.decisions.iter().all(|d| d.is_zombie()));
    plan.window = Duration::from_secs(1);
    plan.concurrency = 1;
    let out = plan.finish().await.unwrap();
    assert_eq!(out.exit, 0);
    assert_eq!(
        rows_of(&out),
        [
            (
                "a-slow".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Gone)
            ),
            (
                "b-revived".to_owned(),
                row(Verdict::Keep, Reason::Active, Action::None)
            ),
            (
                "c-dead".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Deleted)
            ),
        ]
        .into()
    );
    assert_eq!(s.survivors().await, names(&["b-revived"]));
    let log = deletes.lock().unwrap();
    assert!(
        !log.iter().any(|(u, _)| u.contains("b-revived")),
        "no DELETE for b-revived: {log:?}"
    );
    assert_eq!(log.len(), 3, "a-slow twice, c-dead once: {log:?}");
}

// ---------------------------------------------------------------- age, unstamped

/// A pod created now whose `admitted-at` was patched to a day ago is still too young: age counts
/// from the later of admitted-at and creationTimestamp.
#[tokio::test]
async fn forged_admitted_at_does_not_age_a_new_pod() {
    let s = Scenario::new("forged", DbKind::Airflow3Sqlite).await;
    let ti = TiSpec::new("forged_dag", "t", RUN).state(Some("success"));
    s.db.insert_ti(&ti).await;
    s.pod("forged", &ti, Stamping::Ours).await;
    let day_ago = (k8s_openapi::jiff::Timestamp::now().as_second() - 86_400).to_string();
    let patch =
        serde_json::json!({"metadata": {"annotations": {tikey::stamp::ADMITTED_AT: day_ago}}});
    s.pods()
        .patch("forged", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &s.db.url,
            "--min-age",
            "10m",
            "--delete",
            "--owner",
            OWNER,
        ],
        &[],
    )
    .await;
    out.expect(0, &[("forged", "keep", "too-young", "none")]);
    assert_eq!(s.survivors().await, names(&["forged"]));
}

/// Pods the webhook never saw: their own reason, their own count, one warning naming the webhook.
#[tokio::test]
async fn unstamped_pods_are_counted_and_warned_about() {
    let s = Scenario::new("unstamped", DbKind::Airflow3Sqlite).await;
    let dead = TiSpec::new("u_dag", "dead", RUN).state(Some("success"));
    let dead2 = TiSpec::new("u_dag", "dead2", RUN).state(Some("success"));
    let ours = TiSpec::new("u_dag", "ours", RUN).state(Some("success"));
    for ti in [&dead, &dead2, &ours] {
        s.db.insert_ti(ti).await;
    }
    s.pod("bypassed-1", &dead, Stamping::None).await;
    s.pod("bypassed-2", &dead2, Stamping::None).await;
    s.pod("stamped", &ours, Stamping::Ours).await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("bypassed-1", "keep", "unstamped", "none"),
            ("bypassed-2", "keep", "unstamped", "none"),
            ("stamped", "zombie", "no-active-ti", "deleted"),
        ],
    );
    assert_eq!(out.summary()["unstamped"], 2);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("webhook may be bypassed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("2 KPO pods"), "{}", warnings[0]);
    assert!(
        out.stderr.contains("2 unstamped"),
        "summary line: {}",
        out.stderr
    );

    // --unstamped sweep with --owner: judged, with a warning that the owner cannot be checked.
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--unstamped", "sweep"])
        .await;
    out.expect(
        0,
        &[
            ("bypassed-1", "zombie", "no-active-ti", "deleted"),
            ("bypassed-2", "zombie", "no-active-ti", "deleted"),
        ],
    );
    assert!(
        out.stderr.contains("cannot be checked against --owner"),
        "{}",
        out.stderr
    );
    // Refused with --all-namespaces: exit 1, nothing read.
    let out = run_sweeper(
        &[
            "--all-namespaces",
            "--db-url",
            &s.db.url,
            "--unstamped",
            "sweep",
            "--delete",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--unstamped sweep with --all-namespaces is refused"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- lookup: collisions, map_index

/// Two TIs whose ids normalize to the same labels: `t!` becomes `t-<md5>` and another task is
/// literally named `t-<md5>`. The pod of that key is kept while either TI is active.
#[tokio::test]
async fn colliding_keys_keep_the_pod_while_any_ti_behind_them_is_active() {
    let s = Scenario::new("collide", DbKind::Airflow3Postgres).await;
    let raw = "collide!";
    let twin = tikey::make_safe_label_value(raw);
    assert_ne!(twin, raw);
    assert_eq!(
        tikey::make_safe_label_value(&twin),
        twin,
        "the twin is a label as it is"
    );
    let a = TiSpec::new("collide_dag", raw, RUN).state(Some("up_for_retry"));
    let b = TiSpec::new("collide_dag", &twin, RUN)
        .state(Some("queued"))
        .try_number(2);
    assert_eq!(a.key(), b.key());
    for ti in [&a, &b] {
        s.db.insert_ti(ti).await;
    }
    // KPO's cleanup has checked the try-1 pod: merged into one record, row 10 would delete it.
    s.pod("collide-1", &a, Stamping::Ours).await;
    s.mark_checked("collide-1").await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(0, &[("collide-1", "keep", "active", "none")]);
    // Both terminal: nothing is read for the key, the pod is a zombie.
    s.db.update_ti(&a.clone().state(Some("failed"))).await;
    s.db.update_ti(&b.clone().state(Some("success"))).await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(0, &[("collide-1", "zombie", "no-active-ti", "deleted")]);
}

/// A pod template copied from a mapped task's pod: `map_index: "0"` on an unmapped, running TI's
/// pod. It is judged against the unmapped TI and kept.
#[tokio::test]
async fn stale_map_index_label_is_judged_against_the_unmapped_ti() {
    let s = Scenario::new("stalemap", DbKind::Airflow3MySql).await;
    let ti = TiSpec::new("template_dag", "unmapped", RUN);
    s.db.insert_ti(&ti).await;
    s.pod("stale-map-index", &ti.clone().map_index(0), Stamping::Ours)
        .await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(0, &[("stale-map-index", "keep", "active", "none")]);
    assert_eq!(s.survivors().await, names(&["stale-map-index"]));
    // Once the TI is over, the pod goes.
    s.db.update_ti(&ti.clone().state(Some("success"))).await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[("stale-map-index", "zombie", "no-active-ti", "deleted")],
    );
}

// ---------------------------------------------------------------- rows 4 and 5, operators

/// Row 4: a pod of cncf-kubernetes < 3.1.0 (labelled `execution_date`, no run_id). Row 5: a pod
/// whose labels were changed after the webhook stamped it. Both are skipped, whatever the DB says.
#[tokio::test]
async fn legacy_and_relabelled_pods_are_skipped() {
    let s = Scenario::new("rows45", DbKind::Airflow2Postgres).await;
    let dead = TiSpec::new("legacy_dag", "t", RUN).state(Some("success"));
    s.db.insert_ti(&dead).await;
    s.pod_in(&s.ns, "legacy", &dead, Stamping::None, |p| {
        let l = p.metadata.labels.as_mut().unwrap();
        l.remove("run_id");
        l.insert(
            "execution_date".into(),
            "2025-06-01T0000000000-8a1b2c3d4".into(),
        );
    })
    .await;
    let relabelled = TiSpec::new("legacy_dag", "relabelled", RUN).state(Some("success"));
    s.db.insert_ti(&relabelled).await;
    s.pod("relabelled", &relabelled, Stamping::Ours).await;
    let patch = serde_json::json!({"metadata": {"labels": {"try_number": "7"}}});
    s.pods()
        .patch("relabelled", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let out = s.sweep(&["--delete", "--unstamped", "sweep"]).await;
    out.expect(
        0,
        &[
            ("legacy", "skip", "unidentifiable", "none"),
            ("relabelled", "skip", "inconsistent-stamp", "none"),
        ],
    );
    assert_eq!(s.survivors().await, names(&["legacy", "relabelled"]));
}

/// TI rows whose `operator` is a KPO subclass, GKEStartPodOperator or NULL are read exactly like
/// KubernetesPodOperator rows: live ones keep their pods, terminal ones' pods go.
#[tokio::test]
async fn operator_column_is_never_a_filter() {
    let s = Scenario::new("operators", DbKind::Airflow3Postgres).await;
    let mut c = sqlx::PgConnection::connect(&s.db.url).await.unwrap();
    let mut want = Vec::new();
    for (i, op) in [
        Some("MyCompanyPodOperator"),
        Some("GKEStartPodOperator"),
        None,
        Some("KubernetesPodOperator"),
    ]
    .into_iter()
    .enumerate()
    {
        for (state, live) in [(Some("running"), true), (Some("success"), false)] {
            let task = format!("op{i}_{}", if live { "live" } else { "dead" });
            let ti = TiSpec::new("op_dag", &task, RUN).state(state);
            s.db.insert_ti(&ti).await;
            sqlx::query("UPDATE task_instance SET operator = $1 WHERE task_id = $2")
                .bind(op)
                .bind(&task)
                .execute(&mut c)
                .await
                .unwrap();
            let name = task.replace('_', "-");
            s.pod(&name, &ti, Stamping::Ours).await;
            want.push((name, live));
        }
    }
    let ops: Vec<Option<String>> =
        sqlx::query_scalar("SELECT DISTINCT operator FROM task_instance")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(ops.len(), 4, "{ops:?}");
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--max-fraction", "1"])
        .await;
    let rows: Vec<(&str, &str, &str, &str)> = want
        .iter()
        .map(|(n, live)| {
            if *live {
                (n.as_str(), "keep", "active", "none")
            } else {
                (n.as_str(), "zombie", "no-active-ti", "deleted")
            }
        })
        .collect();
    out.expect(0, &rows);
}

// ---------------------------------------------------------------- grace, outputs, scope

/// `--grace-period 30` on an ordinary zombie (bound to a node, so the grace applies): deleted
/// gracefully, Terminating with 30 s, and the Event says so.
#[tokio::test]
async fn grace_period_applies_to_an_ordinary_zombie() {
    let s = Scenario::new("grace", DbKind::Airflow3Sqlite).await;
    let node = format!("node-{}", s.ns);
    testsupport::create_node(&s.client, &node).await;
    let ti = TiSpec::new("grace_dag", "t", RUN).state(Some("success"));
    s.db.insert_ti(&ti).await;
    let pod = s.pod("graceful-zombie", &ti, Stamping::Ours).await;
    testsupport::bind_pod(&s.client, &s.ns, "graceful-zombie", &node).await;
    s.set_phase("graceful-zombie", "Running").await;
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--grace-period", "30"])
        .await;
    out.expect(
        0,
        &[("graceful-zombie", "zombie", "no-active-ti", "deleted")],
    );
    let now: Pod = s.pods().get("graceful-zombie").await.unwrap();
    assert!(now.metadata.deletion_timestamp.is_some());
    assert_eq!(now.metadata.deletion_grace_period_seconds, Some(30));
    s.assert_events(&[(&pod, "no-active-ti")]).await;
    let note = s.zombie_events().await[0].note.clone().unwrap_or_default();
    assert!(note.contains("grace 30s"), "{note}");
    // Clean up (no kubelet here to finish the graceful delete).
    let _ = s
        .pods()
        .delete(
            "graceful-zombie",
            &testsupport::force_delete_params(pod.metadata.uid.as_deref().unwrap()),
        )
        .await;
}

/// A successful run with `--output table` and `--all-namespaces`, scoped by a creator no other
/// test uses: the table on stdout names the pods with their decisions.
#[tokio::test]
async fn table_output_and_all_namespaces_in_a_real_run() {
    let s = Scenario::new("table", DbKind::Airflow3Sqlite).await;
    let owner = format!("system:serviceaccount:{}:airflow-worker", s.ns);
    let dead = TiSpec::new("table_dag", "dead", RUN).state(Some("success"));
    let live = TiSpec::new("table_dag", "live", RUN);
    for ti in [&dead, &live] {
        s.db.insert_ti(ti).await;
    }
    for (name, ti) in [("table-dead", &dead), ("table-live", &live)] {
        s.pod_in(&s.ns, name, ti, Stamping::Ours, |p| {
            p.metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert(tikey::stamp::CREATED_BY.into(), owner.clone());
        })
        .await;
    }
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
        .args([
            "--kubeconfig",
            &kubeconfig,
            "--all-namespaces",
            "--db-url",
            &s.db.url,
            "--min-age",
            "0s",
            "--owner",
            &owner,
            "--delete",
            "--output",
            "table",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE") && lines[0].contains("REASON"),
        "{stdout}"
    );
    let dead_line = lines
        .iter()
        .find(|l| l.starts_with(&s.ns) && l.contains("table-dead"))
        .expect("table-dead row");
    assert!(
        dead_line.contains(&s.ns)
            && dead_line.contains("zombie")
            && dead_line.contains("no-active-ti"),
        "{dead_line}"
    );
    let live_line = lines
        .iter()
        .find(|l| l.starts_with(&s.ns) && l.contains("table-live"))
        .expect("table-live row");
    assert!(
        live_line.contains("keep") && live_line.contains("active"),
        "{live_line}"
    );
    // Other tests' pods are listed (all namespaces) but out of scope: never deleted.
    let zombies: Vec<&&str> = lines
        .iter()
        .filter(|l| l.split_whitespace().nth(4) == Some("zombie"))
        .collect();
    assert_eq!(zombies.len(), 1, "{stdout}");
    assert!(stderr.contains("1 deleted"), "{stderr}");
    assert_eq!(s.survivors().await, names(&["table-live"]));
}

// ---------------------------------------------------------------- gone, conflict, re-read failure, order

/// Between the plan and the delete one pod is deleted by someone else (404: `gone`) and another is
/// replaced by a new pod of the same name (409 on the UID precondition: `conflict`).
#[tokio::test]
async fn gone_and_conflict_in_a_real_report() {
    let s = Scenario::new("gone", DbKind::Airflow3Postgres).await;
    let t = |n: &str| TiSpec::new("gone_dag", n, RUN).state(Some("success"));
    for n in ["vanished", "replaced", "dead"] {
        s.db.insert_ti(&t(n)).await;
        s.pod(n, &t(n), Stamping::Ours).await;
    }
    let plan = sweeper::plan(s.args(&["--delete"])).await.unwrap();
    assert_eq!(plan.decisions.iter().filter(|d| d.is_zombie()).count(), 3);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    s.pods().delete("vanished", &dp).await.unwrap();
    s.pods().delete("replaced", &dp).await.unwrap();
    assert!(
        testsupport::wait_for_pod_gone(&s.client, &s.ns, "replaced", Duration::from_secs(10)).await
    );
    let new = s.pod("replaced", &t("replaced"), Stamping::Ours).await;
    let out = plan.finish().await.unwrap();
    assert_eq!(out.exit, 0);
    assert_eq!(
        rows_of(&out),
        [
            (
                "dead".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Deleted)
            ),
            (
                "replaced".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Conflict)
            ),
            (
                "vanished".to_owned(),
                row(Verdict::Zombie, Reason::NoActiveTi, Action::Gone)
            ),
        ]
        .into()
    );
    let json: serde_json::Value = serde_json::from_str(&out.report.to_json()).unwrap();
    let actions: Vec<&str> = json["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["deleted", "conflict", "gone"]);
    assert_eq!(json["summary"]["deleted"], 1);
    // The new pod under the old name is untouched.
    let still: Pod = s.pods().get("replaced").await.unwrap();
    assert_eq!(still.metadata.uid, new.metadata.uid);
}

/// The database fails at the re-read (its table gone): the run ends in an error (exit 1) and
/// deletes nothing; the outcome says so and names the error.
#[tokio::test]
async fn database_failing_at_the_reread_deletes_nothing() {
    let s = Scenario::new("rereadfail", DbKind::Airflow3Postgres).await;
    let t = |n: &str| TiSpec::new("rf_dag", n, RUN).state(Some("success"));
    for n in ["z1", "z2"] {
        s.db.insert_ti(&t(n)).await;
        s.pod(n, &t(n), Stamping::Ours).await;
    }
    let plan = sweeper::plan(s.args(&["--delete"])).await.unwrap();
    assert_eq!(plan.decisions.iter().filter(|d| d.is_zombie()).count(), 2);
    let mut c = sqlx::PgConnection::connect(&s.db.url).await.unwrap();
    sqlx::query("ALTER TABLE task_instance RENAME TO task_instance_moved")
        .execute(&mut c)
        .await
        .unwrap();
    let out = plan.finish().await.unwrap();
    assert_eq!(out.exit, sweeper::exit::ERROR);
    let err = out.error.as_ref().expect("the run must fail");
    assert!(
        matches!(
            err,
            sweeper::Error::NotAirflowDb { .. } | sweeper::Error::DbQuery { .. }
        ),
        "{err}"
    );
    assert_eq!(out.report.summary.deleted, 0);
    assert_eq!(s.survivors().await, names(&["z1", "z2"]));
    assert!(s.zombie_events().await.is_empty());
}

/// LIST first, then the database: the LIST's answer is delayed until the test has revived a TI;
/// a snapshot taken during the LIST would miss it and delete its pod.
#[tokio::test]
async fn the_list_finishes_before_the_database_snapshot() {
    let s = Scenario::new("order", DbKind::Airflow3Postgres).await;
    let ti = TiSpec::new("order_dag", "revived", RUN).state(Some("success"));
    s.db.insert_ti(&ti).await;
    s.pod("revived", &ti, Stamping::Ours).await;
    let url = s.db.url.clone();
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let client = tapped_client(Arc::new(move |m, uri| {
        let url = url.clone();
        let f = f.clone();
        Box::pin(async move {
            if m == http::Method::GET
                && uri.contains("/pods?")
                && f.fetch_add(1, Ordering::SeqCst) == 0
            {
                // Slow LIST: any snapshot taken meanwhile predates the revival.
                tokio::time::sleep(Duration::from_millis(500)).await;
                set_state(&url, "revived", Some("running")).await;
            }
        })
    }))
    .await;
    let plan = sweeper::plan_with(s.args(&["--delete"]), client)
        .await
        .unwrap();
    assert!(fired.load(Ordering::SeqCst) >= 1);
    let out = plan.finish().await.unwrap();
    assert_eq!(
        rows_of(&out),
        [(
            "revived".to_owned(),
            row(Verdict::Keep, Reason::Active, Action::None)
        )]
        .into()
    );
    assert_eq!(s.survivors().await, names(&["revived"]));
}
