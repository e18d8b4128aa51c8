//! The schema matrix (issue 22, tests/compat/README.md): each Airflow release from 2.3 to 3.3, on
//! PostgreSQL and on MariaDB where the release migrates there, loaded from the schema dump
//! `tests/compat/generate` committed (no Airflow at test time), then the decision table's rows
//! judged by the real `sweeper` binary against KPO pods on the real kube-apiserver: every row
//! that reads the database (8–15), the rows before it that a pod alone decides (1–5), every
//! terminal state and the active ones around them, the candidates' rows query (row 9's evidence for
//! candidates of each shape: an Airflow run_id, a user's run_id, a hashed task_id, a hashed dag_id,
//! a mapped TI; the outcome is checked, not which lookup served it) and each batch's re-read before
//! the deletes, and the release's `try_number` semantics (bumped at start in 2.0–2.9: a deferred
//! TI's column reads one below its pod's label).
//!
//! Rows 6 (too-young) and 7 (terminating) are not here: they are decided from the pod alone,
//! before any read of the database; e2e.rs and safety.rs cover them.
//!
//! Here and not in a crate of its own: the matrix runs the `sweeper` binary Cargo builds for this
//! package's tests (`CARGO_BIN_EXE_sweeper`) with the harness of `common`.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::time::Instant;

use sqlx::Connection;

use common::*;
use testsupport::{CompatEngine, TiSpec, fresh_db_from_dump};

/// An Airflow-shaped run_id: its label is rebuilt and proven by md5, then looked up by key.
const RUN: &str = "scheduled__2025-06-01T00:00:00+00:00";
/// A user's run_id: hashed in its label and not Airflow-shaped, resolved through `dag_run`.
const USER_RUN: &str = "nightly rebuild: customer A/B";
const DAG: &str = "compat_dag";

async fn matrix(release: &str, engine: CompatEngine) {
    matrix_after(release, engine, false).await;
}

/// [`matrix`]; with `mysql8_state`, on MariaDB, `task_instance.state` first takes a collation like
/// MySQL 8's default ([`MYSQL8_STATE`]).
async fn matrix_after(release: &str, engine: CompatEngine, mysql8_state: bool) {
    let t0 = Instant::now();
    let db = fresh_db_from_dump(release, engine).await;
    if mysql8_state {
        db.raw(MYSQL8_STATE).await;
        let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
        let coll: String = sqlx::query_scalar(
            "SELECT CAST(COLLATION_NAME AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'task_instance' \
             AND COLUMN_NAME = 'state'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(coll, "utf8mb3_unicode_nopad_ci");
        let _ = c.close().await;
    }
    let loaded = t0.elapsed();
    let c = db.compat().expect("a release's schema").clone();
    let s = Scenario::with_db(&format!("compat-{}", release.replace('.', "-")), db).await;
    let ti = |task: &str| TiSpec::new(DAG, task, RUN);
    let mut want: Vec<(&str, &str, &str, &str)> = Vec::new();

    // Rows 1–5: decided from the pod; their TIs are over, so a wrong order would delete them.
    for task in ["theirs", "unstamped", "owned", "legacy", "relabelled"] {
        s.db.insert_ti(&ti(task).state(Some("success"))).await;
    }
    s.pod("theirs", &ti("theirs"), Stamping::Theirs).await;
    want.push(("theirs", "skip", "out-of-scope", "none"));
    s.pod("unstamped", &ti("unstamped"), Stamping::None).await;
    want.push(("unstamped", "keep", "unstamped", "none"));
    s.pod_in(&s.ns, "owned", &ti("owned"), Stamping::Ours, |p| {
        p.metadata.owner_references = Some(vec![job_owner()]);
    })
    .await;
    want.push(("owned", "skip", "owned", "none"));
    // cncf-kubernetes < 3.1.0 labelled execution_date, no run_id.
    s.pod_in(&s.ns, "legacy", &ti("legacy"), Stamping::Ours, |p| {
        let l = p.metadata.labels.as_mut().unwrap();
        l.remove("run_id");
        l.insert(
            "execution_date".into(),
            "2025-06-01T0000000000-8a1b2c3d4".into(),
        );
    })
    .await;
    want.push(("legacy", "skip", "unidentifiable", "none"));
    // Labels changed after the webhook stamped the pod.
    s.pod_in(
        &s.ns,
        "relabelled",
        &ti("relabelled"),
        Stamping::Ours,
        |p| {
            let l = p.metadata.labels.as_mut().unwrap();
            l.insert("try_number".into(), "7".into());
        },
    )
    .await;
    want.push(("relabelled", "skip", "inconsistent-stamp", "none"));

    // Row 8: a DAG this database does not know.
    s.pod(
        "unknown-dag",
        &TiSpec::new("not_in_this_db", "t", RUN),
        Stamping::Ours,
    )
    .await;
    want.push(("unknown-dag", "keep", "unknown-dag", "none"));

    // Row 9 for candidates of each shape the candidates' rows query handles: an Airflow run_id
    // (rebuilt from the label), a user's run_id (hashed: through dag_run, else the task's rows), a
    // hashed task_id (the DAG's rows), a hashed dag_id (its raw id from the dag table), a mapped TI.
    let long_task = format!("load_{}", "partition_".repeat(7));
    let long_dag = format!("compat_{}", "very_long_dag_name_".repeat(4));
    let done = [
        ("done", ti("done").state(Some("failed"))),
        (
            "done-user-run",
            TiSpec::new(DAG, "done_user_run", USER_RUN).state(Some("success")),
        ),
        (
            "done-long-task",
            TiSpec::new(DAG, &long_task, RUN).state(Some("success")),
        ),
        (
            "done-long-dag",
            TiSpec::new(&long_dag, "t", RUN).state(Some("upstream_failed")),
        ),
        (
            "done-mapped",
            ti("mapped").map_index(2).state(Some("success")),
        ),
        // The other terminal states.
        ("done-skipped", ti("skipped").state(Some("skipped"))),
        ("done-removed", ti("removed").state(Some("removed"))),
    ];
    // A live TI beside each, on the same task or DAG: only the finished row may be read as over.
    s.db.insert_ti(&ti("mapped").map_index(0)).await;
    s.db.insert_ti(&TiSpec::new(&long_dag, "live", RUN)).await;
    for (name, row) in &done {
        s.db.insert_ti(row).await;
        s.pod(name, row, Stamping::Ours).await;
        want.push((name, "zombie", "no-active-ti", "deleted"));
    }

    // Row 10: the pod's try is newer than the row's (a backup behind the cluster); and a NULL
    // try_number where the schema allows one.
    let behind = ti("behind").state(Some("failed"));
    s.db.insert_ti(&behind).await;
    s.pod("behind", &behind.clone().try_number(2), Stamping::Ours)
        .await;
    want.push(("behind", "keep", "newer-than-db", "none"));
    let mut newer = 1;
    if c.try_number_nullable {
        let null_try = ti("null_try").state(Some("success"));
        s.db.insert_ti(&null_try).await;
        s.db.null_try_number(&null_try).await;
        s.pod("null-try", &null_try, Stamping::Ours).await;
        want.push(("null-try", "keep", "newer-than-db", "none"));
        newer += 1;
    }

    // Row 11: the DAG is known, this TI has no row.
    s.pod("no-row", &ti("no_row"), Stamping::Ours).await;
    want.push(("no-row", "keep", "unknown-ti", "none"));

    // Row 12: KPO's own cleanup marked the pod; its TI is queued, no process holds the pod.
    let checked = ti("checked").state(Some("queued"));
    s.db.insert_ti(&checked).await;
    s.pod("checked", &checked, Stamping::Ours).await;
    s.mark_checked("checked").await;
    want.push(("checked", "zombie", "checked", "deleted"));

    // Rows 13–15.
    let live = ti("live");
    s.db.insert_ti(&live).await;
    s.pod("live", &live, Stamping::Ours).await;
    want.push(("live", "keep", "active", "none"));
    // Active states between and around the terminal ones: kept at the same try.
    for (name, state) in [("up-for-retry", Some("up_for_retry")), ("cleared", None)] {
        let row = ti(&name.replace('-', "_")).state(state);
        s.db.insert_ti(&row).await;
        s.pod(name, &row, Stamping::Ours).await;
        want.push((name, "keep", "active", "none"));
    }
    let retried = ti("retried").try_number(2);
    s.db.insert_ti(&retried).await;
    s.pod("retried-1", &retried.clone().try_number(1), Stamping::Ours)
        .await;
    s.pod("retried-2", &retried, Stamping::Ours).await;
    want.push(("retried-1", "zombie", "superseded", "deleted"));
    want.push(("retried-2", "keep", "active", "none"));
    let reattach = ti("reattach").try_number(2);
    s.db.insert_ti(&reattach).await;
    s.pod(
        "reattach-1",
        &reattach.clone().try_number(1),
        Stamping::Ours,
    )
    .await;
    want.push(("reattach-1", "keep", "may-reattach", "none"));

    // try_number semantics of this release. The pod of try 2 of a deferred TI: since 2.10 the
    // column reads 2; in 2.0–2.9 it was bumped at start and lowered at defer, so it reads 1 —
    // the pod then reads as newer than its TI, and is kept.
    let deferred_col = if c.try_bumped_at_start { 1 } else { 2 };
    let deferred = ti("deferred")
        .state(Some("deferred"))
        .try_number(deferred_col);
    s.db.insert_ti(&deferred).await;
    s.pod("deferred", &deferred.clone().try_number(2), Stamping::Ours)
        .await;
    want.push(("deferred", "keep", "active", "none"));
    // The next try is queued: since 2.10 the scheduler bumped the column to 2 (the pod of try 1
    // may be reattached); in 2.0–2.9 it still reads 1 until the try starts (the pod reads as the
    // active try's).
    let next_col = if c.try_bumped_at_start { 1 } else { 2 };
    let next = ti("next_queued").state(Some("queued")).try_number(next_col);
    s.db.insert_ti(&next).await;
    s.pod("next-queued-1", &next.clone().try_number(1), Stamping::Ours)
        .await;
    want.push((
        "next-queued-1",
        "keep",
        if c.try_bumped_at_start {
            "active"
        } else {
            "may-reattach"
        },
        "none",
    ));
    if c.try_bumped_at_start {
        // 2.0–2.9: a deferred TI marked failed keeps the lowered column (1) under its pod of try 2:
        // no evidence that try 2 is over, so the pod is kept (newer-than-db), never deleted.
        let failed = ti("deferred_failed").state(Some("failed")).try_number(1);
        s.db.insert_ti(&failed).await;
        s.pod(
            "deferred-failed",
            &failed.clone().try_number(2),
            Stamping::Ours,
        )
        .await;
        want.push(("deferred-failed", "keep", "newer-than-db", "none"));
        newer += 1;
    }

    let t1 = Instant::now();
    let out = s
        .sweep(&[
            "--delete",
            "--owner",
            OWNER,
            "--max-fraction",
            "1.0",
            "--max-deletions",
            "100",
        ])
        .await;
    let swept = t1.elapsed();
    out.expect(0, &want);
    let summary = out.summary();
    assert_eq!(summary["newer_than_db"], newer, "{summary}");
    assert_eq!(summary["unknown_ti"], 1, "{summary}");
    assert_eq!(summary["unstamped"], 1, "{summary}");
    let deleted: Vec<&str> = want
        .iter()
        .filter(|w| w.3 == "deleted")
        .map(|w| w.0)
        .collect();
    assert_eq!(summary["deleted"], deleted.len(), "{summary}");
    let kept: Vec<&str> = want
        .iter()
        .filter(|w| w.3 != "deleted")
        .map(|w| w.0)
        .collect();
    assert_eq!(s.survivors().await, names(&kept));
    println!(
        "Airflow {release} {engine:?}: dump loaded in {} ms, sweep in {} ms, total {} ms",
        loaded.as_millis(),
        swept.as_millis(),
        t0.elapsed().as_millis()
    );
    let Scenario { db, .. } = s;
    db.drop_database().await;
}

macro_rules! releases {
    ($($pg:ident $($my:ident)? => $v:literal;)*) => {$(
        #[tokio::test]
        async fn $pg() {
            matrix($v, CompatEngine::Postgres).await;
        }
        $(
            #[tokio::test]
            async fn $my() {
                matrix($v, CompatEngine::MariaDb).await;
            }
        )?
    )*};
}

// One test per release × database, named after the release. 2.3.4 has no MariaDB test: its
// `airflow db upgrade` fails there (tests/compat/README.md).
releases! {
    airflow_2_3_4_postgres => "2.3.4";
    airflow_2_4_3_postgres airflow_2_4_3_mariadb => "2.4.3";
    airflow_2_5_3_postgres airflow_2_5_3_mariadb => "2.5.3";
    airflow_2_6_3_postgres airflow_2_6_3_mariadb => "2.6.3";
    airflow_2_7_3_postgres airflow_2_7_3_mariadb => "2.7.3";
    airflow_2_8_4_postgres airflow_2_8_4_mariadb => "2.8.4";
    airflow_2_9_3_postgres airflow_2_9_3_mariadb => "2.9.3";
    airflow_2_10_5_postgres airflow_2_10_5_mariadb => "2.10.5";
    airflow_2_11_2_postgres airflow_2_11_2_mariadb => "2.11.2";
    airflow_3_0_6_postgres airflow_3_0_6_mariadb => "3.0.6";
    airflow_3_1_8_postgres airflow_3_1_8_mariadb => "3.1.8";
    airflow_3_2_2_postgres airflow_3_2_2_mariadb => "3.2.2";
    airflow_3_3_2_postgres airflow_3_3_2_mariadb => "3.3.2";
}

/// MySQL 8 gives `task_instance.state` the database's collation, `utf8mb4_0900_ai_ci` by default:
/// case-insensitive and NO PAD, where MariaDB's `utf8mb3_bin` here compares bytes. MariaDB 10.11 has
/// no 0900 collations; `utf8mb3_unicode_nopad_ci` is case-insensitive and NO PAD too. The sweeper's
/// ranges of `state` between the terminal values must read the same rows in it (one release per
/// try_number semantics).
const MYSQL8_STATE: &str = "ALTER TABLE task_instance MODIFY state VARCHAR(20) \
                            CHARACTER SET utf8mb3 COLLATE utf8mb3_unicode_nopad_ci";

#[tokio::test]
async fn airflow_2_9_3_mariadb_case_insensitive_state() {
    matrix_after("2.9.3", CompatEngine::MariaDb, true).await;
}

#[tokio::test]
async fn airflow_3_3_2_mariadb_case_insensitive_state() {
    matrix_after("3.3.2", CompatEngine::MariaDb, true).await;
}
