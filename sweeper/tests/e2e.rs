//! End-to-end: the real `sweeper` binary against the real kube-apiserver and real Airflow schemas
//! (3.3.2 on PostgreSQL, MariaDB and SQLite; 2.10.5 on PostgreSQL), started by `tests/env/up`.
//! Every scenario asserts exactly which pods survive and each pod's decision, reason and action.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use testsupport::{DbKind, TiSpec};

const UPSTREAM_DAG: &str = "kpo_zombie_dag";

/// How the DB URL reaches the sweeper.
#[derive(Clone, Copy)]
enum UrlForm {
    /// `--db-url` with sqlx's URL.
    FlagSqlx,
    /// `--db-url` with Airflow's SQLAlchemy URL.
    FlagSqlAlchemy,
    /// `KPO_SWEEPER_DB_URL` with Airflow's SQLAlchemy URL.
    EnvSqlAlchemy,
    /// No flag: Airflow's own `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`.
    AirflowEnv,
}

/// apache/airflow #58968's `kpo_zombie_dag`: zombie_kpo_task's TI succeeded while its pod still
/// runs (the sidecar never exits), healthy_kpo_task runs, mapped_kpo_task[0] finished with its pod
/// still running, mapped_kpo_task[1] runs.
async fn upstream_kpo_zombie_dag(kind: DbKind, form: UrlForm) {
    let s = Scenario::new("upstream", kind).await;
    let zombie = TiSpec::new(UPSTREAM_DAG, "zombie_kpo_task", UPSTREAM_RUN).state(Some("success"));
    let healthy = TiSpec::new(UPSTREAM_DAG, "healthy_kpo_task", UPSTREAM_RUN);
    let m0 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN)
        .map_index(0)
        .state(Some("success"));
    let m1 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN).map_index(1);
    for ti in [&zombie, &healthy, &m0, &m1] {
        s.db.insert_ti(ti).await;
    }
    let p_zombie = s.pod("zombie-kpo-task", &zombie, Stamping::Ours).await;
    s.pod("healthy-kpo-task", &healthy, Stamping::Ours).await;
    let p_m0 = s.pod("mapped-kpo-task-0", &m0, Stamping::Ours).await;
    s.pod("mapped-kpo-task-1", &m1, Stamping::Ours).await;
    for p in [
        "zombie-kpo-task",
        "healthy-kpo-task",
        "mapped-kpo-task-0",
        "mapped-kpo-task-1",
    ] {
        s.set_phase(p, "Running").await;
    }

    let base = [
        "--namespace",
        s.ns.as_str(),
        "--min-age",
        "0s",
        "--delete",
        "--owner",
        OWNER,
    ];
    let mut args: Vec<&str> = base.to_vec();
    let mut env: Vec<(&str, &str)> = Vec::new();
    match form {
        UrlForm::FlagSqlx => args.extend(["--db-url", s.db.url.as_str()]),
        UrlForm::FlagSqlAlchemy => args.extend(["--db-url", s.db.sqlalchemy_url.as_str()]),
        UrlForm::EnvSqlAlchemy => env.push(("KPO_SWEEPER_DB_URL", s.db.sqlalchemy_url.as_str())),
        UrlForm::AirflowEnv => env.push((
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            s.db.sqlalchemy_url.as_str(),
        )),
    }
    let out = run_sweeper(&args, &env).await;
    out.expect(
        0,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "deleted"),
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-0", "zombie", "no-active-ti", "deleted"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        out.summary(),
        serde_json::json!({"listed": 4, "active_tis": 2, "zombies": 2, "deleted": 2, "failed": 0, "unstamped": 0, "newer_than_db": 0, "unknown_ti": 0})
    );
    assert_eq!(out.report()["dry_run"], false);
    assert_eq!(
        s.survivors().await,
        names(&["healthy-kpo-task", "mapped-kpo-task-1"])
    );
    s.assert_events(&[(&p_zombie, "no-active-ti"), (&p_m0, "no-active-ti")])
        .await;
    // The DB password never shows.
    if let Some(pw) = password_of(&s.db.url) {
        assert!(
            !out.stderr.contains(pw) && !out.stdout.contains(pw),
            "password leaked:\n{}",
            out.stderr
        );
    }
    // A second run finds nothing more to do.
    let again = run_sweeper(&args, &env).await;
    again.expect(
        0,
        &[
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
}

fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

#[tokio::test]
async fn upstream_kpo_zombie_dag_airflow3_postgres() {
    upstream_kpo_zombie_dag(DbKind::Airflow3Postgres, UrlForm::FlagSqlx).await;
}

#[tokio::test]
async fn upstream_kpo_zombie_dag_airflow2_postgres_via_airflow_env() {
    upstream_kpo_zombie_dag(DbKind::Airflow2Postgres, UrlForm::AirflowEnv).await;
}

#[tokio::test]
async fn upstream_kpo_zombie_dag_airflow3_mariadb_sqlalchemy_url() {
    upstream_kpo_zombie_dag(DbKind::Airflow3MySql, UrlForm::FlagSqlAlchemy).await;
}

#[tokio::test]
async fn upstream_kpo_zombie_dag_airflow3_sqlite_sqlalchemy_env() {
    upstream_kpo_zombie_dag(DbKind::Airflow3Sqlite, UrlForm::EnvSqlAlchemy).await;
}

/// Tries and states (docs/design.md §5 rows 8–11), as Airflow moves them: 2.10+/3.x bump try_number only
/// when the scheduler moves a TI to scheduled; KPO's reattach search omits try_number and skips
/// `already_checked=True`.
async fn tries_and_states(kind: DbKind) {
    let s = Scenario::new("tries", kind).await;
    let dag = "retry_dag";
    let run = "scheduled__2025-01-01T00:00:00+00:00";
    let ti = |task: &str| TiSpec::new(dag, task, run);

    // (pod name, TI row, pod's try label, already_checked, expected decision, reason, action)
    let cases: Vec<(&str, TiSpec, i64, bool, &str, &str, &str)> = vec![
        // Row 10: a pod of the current try exists.
        (
            "superseded-try1",
            ti("superseded").try_number(2),
            1,
            false,
            "zombie",
            "superseded",
            "deleted",
        ),
        (
            "superseded-try2",
            ti("superseded").try_number(2),
            2,
            false,
            "keep",
            "active",
            "none",
        ),
        // Row 11: the older try alone while the TI runs (KPO may have reattached to it).
        (
            "reattach-try1",
            ti("reattach").try_number(2),
            1,
            false,
            "keep",
            "may-reattach",
            "none",
        ),
        // The next try queued (column = label + 1), no pod of its own yet.
        (
            "next-queued-try1",
            ti("next_queued").try_number(2).state(Some("queued")),
            1,
            false,
            "keep",
            "may-reattach",
            "none",
        ),
        // Row 8: checked, and no Airflow process holds it.
        (
            "checked-up-for-retry",
            ti("checked_retry").state(Some("up_for_retry")),
            1,
            true,
            "zombie",
            "checked",
            "deleted",
        ),
        (
            "checked-cleared",
            ti("checked_cleared").state(None),
            1,
            true,
            "zombie",
            "checked",
            "deleted",
        ),
        // Checked while the TI runs: KPO's own cleanup in progress.
        (
            "checked-running",
            ti("checked_running"),
            1,
            true,
            "keep",
            "active",
            "none",
        ),
        (
            "checked-deferred",
            ti("checked_deferred").state(Some("deferred")),
            1,
            true,
            "keep",
            "active",
            "none",
        ),
        // Row 9: label == column in every non-terminal state.
        (
            "deferred",
            ti("deferred").state(Some("deferred")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "up-for-retry",
            ti("up_for_retry").state(Some("up_for_retry")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "up-for-reschedule",
            ti("up_for_reschedule").state(Some("up_for_reschedule")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "queued",
            ti("queued").state(Some("queued")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "scheduled",
            ti("scheduled").state(Some("scheduled")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "restarting",
            ti("restarting").state(Some("restarting")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "null-state",
            ti("null_state").state(None),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        (
            "awaiting-input",
            ti("awaiting_input").state(Some("awaiting_input")),
            1,
            false,
            "keep",
            "active",
            "none",
        ),
        // Airflow 2.0–2.9 lowered the column by one while deferred: the pod reads as newer.
        (
            "deferred-2x-off-by-one",
            ti("deferred_2x").state(Some("deferred")),
            2,
            false,
            "keep",
            "active",
            "none",
        ),
    ];
    let mut inserted = std::collections::BTreeSet::new();
    for (_, row, ..) in &cases {
        if inserted.insert(row.task_id.clone()) {
            s.db.insert_ti(row).await;
        }
    }
    let mut deleted: Vec<(Pod, &str)> = Vec::new();
    for (name, row, pod_try, checked, _, reason, action) in &cases {
        let pod = s
            .pod(name, &row.clone().try_number(*pod_try), Stamping::Ours)
            .await;
        if *checked {
            s.mark_checked(name).await;
        }
        if *action == "deleted" {
            deleted.push((pod, reason));
        }
    }
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--max-fraction", "1"])
        .await;
    let rows: Vec<(&str, &str, &str, &str)> = cases
        .iter()
        .map(|(n, _, _, _, d, r, a)| (*n, *d, *r, *a))
        .collect();
    out.expect(0, &rows);
    let kept: Vec<&str> = cases
        .iter()
        .filter(|c| c.6 == "none")
        .map(|c| c.0)
        .collect();
    assert_eq!(s.survivors().await, names(&kept));
    let refs: Vec<(&Pod, &str)> = deleted.iter().map(|(p, r)| (p, *r)).collect();
    s.assert_events(&refs).await;
}

#[tokio::test]
async fn tries_and_states_airflow3_postgres() {
    tries_and_states(DbKind::Airflow3Postgres).await;
}

#[tokio::test]
async fn tries_and_states_airflow2_postgres() {
    tries_and_states(DbKind::Airflow2Postgres).await;
}

#[tokio::test]
async fn tries_and_states_airflow3_mariadb() {
    tries_and_states(DbKind::Airflow3MySql).await;
}

#[tokio::test]
async fn tries_and_states_airflow3_sqlite() {
    tries_and_states(DbKind::Airflow3Sqlite).await;
}

/// Rows 1, 2 and 5, and `--unstamped`: a Job-owned pod, another deployment's pod, a pod in a
/// namespace out of scope and an unstamped pod all have finished TIs, and all survive.
#[tokio::test]
async fn scope_ownership_and_unstamped() {
    let s = Scenario::new("scope", DbKind::Airflow3Postgres).await;
    let elsewhere_ns = testsupport::fresh_namespace(&s.client, "scope-elsewhere").await;
    let _pods_elsewhere_ns = testsupport::DeletePodsOnDrop::new(&elsewhere_ns);
    let run = "scheduled__2025-02-01T00:00:00+00:00";
    let done = |task: &str| TiSpec::new("scope_dag", task, run).state(Some("success"));
    let (owned, theirs, elsewhere, unstamped, zombie) = (
        done("owned"),
        done("theirs"),
        done("elsewhere"),
        done("unstamped"),
        done("zombie"),
    );
    let live = TiSpec::new("scope_dag", "live", run);
    for ti in [&owned, &theirs, &elsewhere, &unstamped, &zombie, &live] {
        s.db.insert_ti(ti).await;
    }
    s.pod_in(&s.ns, "owned", &owned, Stamping::Ours, |p| {
        p.metadata.owner_references = Some(vec![job_owner()]);
    })
    .await;
    s.pod("theirs", &theirs, Stamping::Theirs).await;
    s.pod_in(
        &elsewhere_ns,
        "elsewhere",
        &elsewhere,
        Stamping::Ours,
        |_| {},
    )
    .await;
    let p_unstamped = s.pod("unstamped", &unstamped, Stamping::None).await;
    let p_zombie = s.pod("zombie", &zombie, Stamping::Ours).await;
    s.pod("live", &live, Stamping::Ours).await;
    let all = names(&["owned", "theirs", "unstamped", "zombie", "live"]);

    // Row 6: with --min-age 1h every pod is too young (dry run).
    let young = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &s.db.url,
            "--owner",
            OWNER,
            "--min-age",
            "1h",
        ],
        &[],
    )
    .await;
    young.expect(
        0,
        &[
            ("owned", "skip", "owned", "none"),
            ("theirs", "skip", "out-of-scope", "none"),
            ("unstamped", "keep", "unstamped", "none"),
            ("zombie", "keep", "too-young", "none"),
            ("live", "keep", "too-young", "none"),
        ],
    );
    assert_eq!(young.report()["dry_run"], true);
    assert_eq!(s.survivors().await, all);

    // --unstamped keep (the default): the unstamped pod is not touched.
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("owned", "skip", "owned", "none"),
            ("theirs", "skip", "out-of-scope", "none"),
            ("unstamped", "keep", "unstamped", "none"),
            ("zombie", "zombie", "no-active-ti", "deleted"),
            ("live", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        s.survivors().await,
        names(&["owned", "theirs", "unstamped", "live"])
    );
    assert_eq!(
        survivors(&s.client, &elsewhere_ns).await,
        names(&["elsewhere"])
    );

    // --unstamped sweep: judged from its labels (and --owner is waived for it).
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--unstamped", "sweep"])
        .await;
    out.expect(
        0,
        &[
            ("owned", "skip", "owned", "none"),
            ("theirs", "skip", "out-of-scope", "none"),
            ("unstamped", "zombie", "no-active-ti", "deleted"),
            ("live", "keep", "active", "none"),
        ],
    );
    assert_eq!(s.survivors().await, names(&["owned", "theirs", "live"]));
    assert_eq!(
        survivors(&s.client, &elsewhere_ns).await,
        names(&["elsewhere"])
    );
    s.assert_events(&[(&p_zombie, "no-active-ti"), (&p_unstamped, "no-active-ti")])
        .await;
}

/// A zombie bound to a Node whose kubelet is gone, deleted gracefully, stays Terminating past its
/// deletionTimestamp: the sweep removes it (grace 0). One still inside a long grace period is kept.
#[tokio::test]
async fn stuck_terminating_zombie_is_removed_and_long_grace_is_kept() {
    let s = Scenario::new("stuck", DbKind::Airflow3Postgres).await;
    let node = format!("node-{}", s.ns);
    testsupport::create_node(&s.client, &node).await;
    let run = "scheduled__2025-03-01T00:00:00+00:00";
    let stuck = TiSpec::new("stuck_dag", "stuck", run).state(Some("success"));
    let graceful = TiSpec::new("stuck_dag", "graceful", run).state(Some("failed"));
    for ti in [&stuck, &graceful] {
        s.db.insert_ti(ti).await;
    }
    let p_stuck = s.pod("stuck", &stuck, Stamping::Ours).await;
    s.pod("graceful", &graceful, Stamping::Ours).await;
    for name in ["stuck", "graceful"] {
        testsupport::bind_pod(&s.client, &s.ns, name, &node).await;
        s.set_phase(name, "Running").await;
    }
    graceful_delete(&s.client, &s.ns, "stuck", 1).await;
    graceful_delete(&s.client, &s.ns, "graceful", 3600).await;
    // Wait (by the clock, not a fixed sleep) until "stuck" is past its deletionTimestamp.
    let stuck_now = s.pods().get("stuck").await.unwrap();
    let deadline = stuck_now
        .metadata
        .deletion_timestamp
        .as_ref()
        .expect("graceful delete sets deletionTimestamp")
        .0
        .as_second();
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while k8s_openapi::jiff::Timestamp::now().as_second() <= deadline {
        assert!(
            std::time::Instant::now() < give_up,
            "clock never passed {deadline}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without a kubelet, both are still there.
    assert_eq!(s.survivors().await, names(&["stuck", "graceful"]));

    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--grace-period", "30"])
        .await;
    out.expect(
        0,
        &[
            ("stuck", "zombie", "no-active-ti", "deleted"),
            ("graceful", "keep", "terminating", "none"),
        ],
    );
    assert!(
        testsupport::wait_for_pod_gone(&s.client, &s.ns, "stuck", Duration::from_secs(10)).await,
        "the stuck zombie must be gone (grace 0 despite --grace-period 30)"
    );
    assert_eq!(s.survivors().await, names(&["graceful"]));
    s.assert_events(&[(&p_stuck, "no-active-ti")]).await;
    let note = s.zombie_events().await[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("stuck in Terminating") && note.contains("grace 0s"),
        "{note}"
    );
}

/// Completed pods (phase Succeeded; phase Failed and already_checked) are kept by default and deleted
/// with --include-completed; the same TI's pod still Running (the sidecar never exits) is deleted.
#[tokio::test]
async fn completed_pods_kept_by_default_and_swept_with_include_completed() {
    let s = Scenario::new("completed", DbKind::Airflow3Postgres).await;
    let node = format!("node-{}", s.ns);
    testsupport::create_node(&s.client, &node).await;
    let ti = TiSpec::new(
        "completed_dag",
        "task",
        "scheduled__2025-04-01T00:00:00+00:00",
    )
    .state(Some("failed"));
    s.db.insert_ti(&ti).await;
    let p_ok = s.pod("done-succeeded", &ti, Stamping::Ours).await;
    let p_failed = s.pod("done-failed", &ti, Stamping::Ours).await;
    let p_running = s.pod("done-running", &ti, Stamping::Ours).await;
    for (name, phase) in [
        ("done-succeeded", "Succeeded"),
        ("done-failed", "Failed"),
        ("done-running", "Running"),
    ] {
        testsupport::bind_pod(&s.client, &s.ns, name, &node).await;
        s.set_phase(name, phase).await;
    }
    s.mark_checked("done-failed").await;

    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(0, &[("done-running", "zombie", "no-active-ti", "deleted")]);
    assert_eq!(out.summary()["listed"], 1);
    assert_eq!(
        s.survivors().await,
        names(&["done-succeeded", "done-failed"])
    );

    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--include-completed"])
        .await;
    out.expect(
        0,
        &[
            ("done-succeeded", "zombie", "no-active-ti", "deleted"),
            ("done-failed", "zombie", "no-active-ti", "deleted"),
        ],
    );
    assert!(s.survivors().await.is_empty());
    s.assert_events(&[
        (&p_running, "no-active-ti"),
        (&p_ok, "no-active-ti"),
        (&p_failed, "no-active-ti"),
    ])
    .await;
}

/// The upstream pods, for the gate scenarios.
async fn upstream_pods(s: &Scenario) {
    let zombie = TiSpec::new(UPSTREAM_DAG, "zombie_kpo_task", UPSTREAM_RUN).state(Some("success"));
    let healthy = TiSpec::new(UPSTREAM_DAG, "healthy_kpo_task", UPSTREAM_RUN);
    let m0 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN)
        .map_index(0)
        .state(Some("success"));
    let m1 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN).map_index(1);
    for (name, ti) in [
        ("zombie-kpo-task", &zombie),
        ("healthy-kpo-task", &healthy),
        ("mapped-kpo-task-0", &m0),
        ("mapped-kpo-task-1", &m1),
    ] {
        s.db.insert_ti(ti).await;
        s.pod(name, ti, Stamping::Ours).await;
    }
}

const UPSTREAM_PODS: [&str; 4] = [
    "zombie-kpo-task",
    "healthy-kpo-task",
    "mapped-kpo-task-0",
    "mapped-kpo-task-1",
];

#[tokio::test]
async fn dry_run_deletes_nothing() {
    let s = Scenario::new("dryrun", DbKind::Airflow3Postgres).await;
    upstream_pods(&s).await;
    let out = s.sweep(&["--owner", OWNER, "--log-format", "json"]).await;
    // Logs are JSON lines on stderr; the last line is the one-line summary.
    let lines: Vec<&str> = out.stderr.lines().collect();
    let (summary, logs) = lines.split_last().expect("stderr has the summary");
    assert!(summary.starts_with("kpo-sweeper: dry run"), "{summary}");
    for l in logs {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    out.expect(
        0,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "would-delete"),
            ("healthy-kpo-task", "keep", "active", "none"),
            (
                "mapped-kpo-task-0",
                "zombie",
                "no-active-ti",
                "would-delete",
            ),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert_eq!(out.report()["dry_run"], true);
    assert_eq!(out.summary()["deleted"], 0);
    assert!(out.stderr.contains("dry run"), "{}", out.stderr);
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));
    assert!(s.zombie_events().await.is_empty());
}

#[tokio::test]
async fn circuit_breaker_trips_exit_2_and_deletes_nothing() {
    let s = Scenario::new("breaker", DbKind::Airflow3Postgres).await;
    upstream_pods(&s).await;
    let upstream_rows = [
        ("zombie-kpo-task", "zombie", "no-active-ti", "none"),
        ("healthy-kpo-task", "keep", "active", "none"),
        ("mapped-kpo-task-0", "zombie", "no-active-ti", "none"),
        ("mapped-kpo-task-1", "keep", "active", "none"),
    ];
    // Absolute cap.
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--max-deletions", "1"])
        .await;
    out.expect(2, &upstream_rows);
    assert!(
        out.stderr.contains("--max-deletions 2"),
        "says how to override:\n{}",
        out.stderr
    );
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));

    // Fraction: 3 more zombies make 5 of 7 pods (71 %), above the default 0.5.
    let mut rows = upstream_rows.to_vec();
    for i in 0..3 {
        let ti =
            TiSpec::new("breaker_dag", &format!("gone_{i}"), UPSTREAM_RUN).state(Some("success"));
        s.db.insert_ti(&ti).await;
        let name = format!("gone-{i}");
        s.pod(&name, &ti, Stamping::Ours).await;
    }
    let extra: Vec<String> = (0..3).map(|i| format!("gone-{i}")).collect();
    for n in &extra {
        rows.push((n.as_str(), "zombie", "no-active-ti", "none"));
    }
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(2, &rows);
    assert!(
        out.stderr.contains("--max-fraction"),
        "says how to override:\n{}",
        out.stderr
    );
    let mut all: Vec<&str> = UPSTREAM_PODS.to_vec();
    all.extend(extra.iter().map(String::as_str));
    assert_eq!(s.survivors().await, names(&all));
    assert!(s.zombie_events().await.is_empty());

    // The override it names lets the run through.
    let out = s
        .sweep(&["--delete", "--owner", OWNER, "--max-fraction", "0.72"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s.survivors().await,
        names(&["healthy-kpo-task", "mapped-kpo-task-1"])
    );
}

#[tokio::test]
async fn db_unreachable_or_not_airflow_exits_1_and_deletes_nothing() {
    let s = Scenario::new("dbdown", DbKind::Airflow3Postgres).await;
    upstream_pods(&s).await;
    // Nothing listens on port 9.
    let secret = "hunter2-not-printed";
    let url = format!("postgresql+psycopg2://airflow:{secret}@127.0.0.1:9/airflow");
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &url,
            "--delete",
            "--min-age",
            "0s",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report on error: {}", out.stdout);
    assert!(
        out.stderr
            .contains("cannot connect to postgresql+psycopg2://airflow@127.0.0.1:9/airflow"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was deleted"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(secret),
        "password leaked:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--delete without --owner"),
        "warns:\n{}",
        out.stderr
    );
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));

    // PostgreSQL's own `postgres` database: reachable, but not an Airflow DB.
    let admin = testsupport::env().var("PG_ADMIN_URL").to_owned();
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &admin,
            "--delete",
            "--min-age",
            "0s",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("is this an Airflow metadata DB"),
        "{}",
        out.stderr
    );
    if let Some(pw) = password_of(&admin) {
        assert!(
            !out.stderr.contains(&format!(":{pw}@")),
            "password leaked:\n{}",
            out.stderr
        );
    }
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));

    // No DB URL at all.
    let out = run_sweeper(&["--namespace", &s.ns, "--delete"], &[]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
        "{}",
        out.stderr
    );
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));
}

#[tokio::test]
async fn apiserver_unreachable_exits_1_after_retries() {
    let dir =
        std::env::temp_dir().join(format!("kpo-sweeper-kc-{}", testsupport::random_suffix(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let original = std::fs::read_to_string(&testsupport::env().kubeconfig).unwrap();
    let server = testsupport::env().var("APISERVER_URL");
    let broken = original.replace(server, "https://127.0.0.1:9");
    assert_ne!(broken, original, "the kubeconfig names {server}");
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, broken).unwrap();
    let db = testsupport::fresh_db(DbKind::Airflow3Sqlite).await;
    let out = run_sweeper(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--all-namespaces",
            "--db-url",
            &db.url,
            "--delete",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("listing pods at /api/v1/pods"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("retrying"),
        "transient errors are retried:\n{}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn help_documents_exit_codes() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "Exit codes:",
        "circuit breaker tripped",
        "Dry run is the default",
        "--owner",
        "--unstamped",
    ] {
        assert!(help.contains(needle), "{needle}:\n{help}");
    }
}

/// A sweeper whose identity may list pods but not delete them: every delete fails (403, not
/// retried), the run exits 3, the report says `failed`, and every pod survives.
#[tokio::test]
async fn failed_deletes_exit_3_and_are_reported() {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::{Api, ObjectMeta, PostParams};

    let s = Scenario::new("nodelete", DbKind::Airflow3Sqlite).await;
    upstream_pods(&s).await;
    let user = "kpo-sweeper-test-no-delete";
    let role = Role {
        metadata: ObjectMeta {
            name: Some("list-only".into()),
            ..Default::default()
        },
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec!["".into()]),
                resources: Some(vec!["pods".into()]),
                verbs: vec!["get".into(), "list".into()],
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec!["events.k8s.io".into()]),
                resources: Some(vec!["events".into()]),
                verbs: vec!["create".into()],
                ..Default::default()
            },
        ]),
    };
    Api::<Role>::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("list-only".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "list-only".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: user.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The admin kubeconfig, impersonating that user (JSON is YAML).
    let mut kc = kube::config::Kubeconfig::read_from(&testsupport::env().kubeconfig).unwrap();
    for a in &mut kc.auth_infos {
        if let Some(info) = a.auth_info.as_mut() {
            info.impersonate = Some(user.into());
            info.impersonate_groups = Some(vec!["system:authenticated".into()]);
        }
    }
    let dir =
        std::env::temp_dir().join(format!("kpo-sweeper-kc-{}", testsupport::random_suffix(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();

    let out = run_sweeper(
        &[
            "--kubeconfig",
            path.to_str().unwrap(),
            "--namespace",
            &s.ns,
            "--db-url",
            &s.db.url,
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
        3,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "failed"),
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-0", "zombie", "no-active-ti", "failed"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert_eq!(out.summary()["failed"], 2);
    assert_eq!(out.summary()["deleted"], 0);
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));
    assert!(s.zombie_events().await.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn invalid_flags_exit_1_not_the_breakers_2() {
    for args in [
        &[][..],
        &["--all-namespaces", "--max-fraction", "2"][..],
        &["--all-namespaces", "--min-age", "5"][..],
        &["-A", "--namespace", "x"][..],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
            .args(args)
            .env_remove("KPO_SWEEPER_NAMESPACE")
            .env_remove("KPO_SWEEPER_ALL_NAMESPACES")
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--strict-retry` (row 11's explicit override) deletes an older try alone while its TI runs a
/// newer one, and nothing else: a current try and a 2.x-deferred pod (label above the column) stay.
#[tokio::test]
async fn strict_retry_deletes_an_older_try_alone_and_nothing_live() {
    let s = Scenario::new("strict", DbKind::Airflow3MySql).await;
    let run = "scheduled__2025-07-01T00:00:00+00:00";
    let retried = TiSpec::new("strict_dag", "retried", run).try_number(2);
    let live = TiSpec::new("strict_dag", "live", run).try_number(3);
    let deferred_2x = TiSpec::new("strict_dag", "deferred_2x", run).state(Some("deferred"));
    for ti in [&retried, &live, &deferred_2x] {
        s.db.insert_ti(ti).await;
    }
    let p_old = s
        .pod(
            "retried-try1",
            &retried.clone().try_number(1),
            Stamping::Ours,
        )
        .await;
    s.pod("live-try3", &live, Stamping::Ours).await;
    s.pod(
        "deferred-2x-try2",
        &deferred_2x.clone().try_number(2),
        Stamping::Ours,
    )
    .await;

    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("retried-try1", "keep", "may-reattach", "none"),
            ("live-try3", "keep", "active", "none"),
            ("deferred-2x-try2", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        s.survivors().await,
        names(&["retried-try1", "live-try3", "deferred-2x-try2"])
    );

    let out = s
        .sweep(&[
            "--delete",
            "--owner",
            OWNER,
            "--strict-retry",
            "--max-fraction",
            "1",
        ])
        .await;
    out.expect(
        0,
        &[
            ("retried-try1", "zombie", "may-reattach", "deleted"),
            ("live-try3", "keep", "active", "none"),
            ("deferred-2x-try2", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        s.survivors().await,
        names(&["live-try3", "deferred-2x-try2"])
    );
    s.assert_events(&[(&p_old, "may-reattach")]).await;
}

/// A closed stdout (`sweeper … | head -0`) is an error, exit 1, not a panic's 101.
#[tokio::test]
async fn closed_stdout_exits_1_not_a_panic() {
    let s = Scenario::new("stdout", DbKind::Airflow3Sqlite).await;
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
    cmd.args(["--kubeconfig", &kubeconfig, "--output", "json"])
        .args(["--namespace", &s.ns, "--db-url", &s.db.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("sweeper runs");
    // Closed before the sweeper has listed anything, so before it writes the report.
    drop(child.stdout.take());
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("sweeper finished within 120 s")
        .expect("sweeper ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the report"), "{stderr}");
}

/// docs/design.md §8: without `--kubeconfig` the sweeper uses `$KUBECONFIG`, then in-cluster, and nothing
/// else: a working `~/.kube/config` must not be picked up (a stray file must never aim a deleting run).
#[tokio::test]
async fn kubeconfig_defaults_to_env_then_in_cluster_never_home() {
    let s = Scenario::new("kcdefault", DbKind::Airflow3Sqlite).await;
    let home = std::env::temp_dir().join(format!(
        "kpo-sweeper-home-{}",
        testsupport::random_suffix(8)
    ));
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(&testsupport::env().kubeconfig, home.join(".kube/config")).unwrap();
    let run = |kubeconfig_env: Option<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
        cmd.args([
            "--output",
            "json",
            "--namespace",
            &s.ns,
            "--db-url",
            &s.db.url,
        ])
        .env("HOME", &home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
        for (k, _) in std::env::vars() {
            if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG" {
                cmd.env_remove(k);
            }
        }
        if let Some(kc) = kubeconfig_env {
            cmd.env("KUBECONFIG", kc);
        }
        async move {
            tokio::time::timeout(Duration::from_secs(120), cmd.output())
                .await
                .expect("sweeper finished within 120 s")
                .expect("sweeper ran")
        }
    };
    // Neither flag nor env, not in a cluster: exit 1 and say what to do, though ~/.kube/config works.
    let out = run(None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pass --kubeconfig PATH or set KUBECONFIG"),
        "{stderr}"
    );
    // $KUBECONFIG is used when set.
    let kc = testsupport::env().kubeconfig.display().to_string();
    let out = run(Some(kc)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["dry_run"], serde_json::Value::Bool(true));
    let _ = std::fs::remove_dir_all(&home);
}

/// `--page-size N` is the LIST's `limit`: 5 pods at 2 a page are 3 requests (the apiserver's audit
/// log), and the pods are judged as at the default size. 0 is refused.
#[tokio::test]
async fn page_size_sets_the_list_limit() {
    let s = Scenario::new("page-size", DbKind::Airflow3Postgres).await;
    for i in 0..5 {
        let ti = TiSpec::new("paged_dag", &format!("t{i}"), UPSTREAM_RUN).state(Some("success"));
        s.db.insert_ti(&ti).await;
        s.pod(&format!("p{i}"), &ti, Stamping::Ours).await;
    }
    let out = s
        .sweep(&["--owner", OWNER, "--max-fraction", "1", "--page-size", "2"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let would = out
        .rows()
        .into_values()
        .filter(|(_, _, action)| action == "would-delete")
        .count();
    assert_eq!(would, 5, "{}", out.stdout);

    let path = format!("/api/v1/namespaces/{}/pods?", s.ns);
    let log = &testsupport::env().audit_log;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let limits = loop {
        let text = std::fs::read_to_string(log).unwrap();
        let limits: Vec<String> = text
            .lines()
            .filter(|l| l.contains(&path) && l.contains("\"ResponseComplete\""))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["verb"] == "list")
            .filter_map(|v| {
                let uri = v["requestURI"].as_str()?.to_owned();
                uri.split(['?', '&'])
                    .find(|p| p.starts_with("limit="))
                    .map(str::to_owned)
            })
            .collect();
        if limits.len() >= 3 || tokio::time::Instant::now() > deadline {
            break limits;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(limits, ["limit=2"; 3], "3 pages of 2");

    let out = s.sweep(&["--owner", OWNER, "--page-size", "0"]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--page-size"), "{}", out.stderr);
}
