//! Safety v4 (docs/design.md, the decision table's rows 9–11): a pod is deleted only on positive
//! evidence from this database that its own task try is over, on the real kube-apiserver and a
//! real Airflow database. Also the gaps a review of v3 found: the window counts from the
//! re-read's snapshot, a run that fails after some deletes still reports them, secrets in URL
//! parameters never reach any output, and a pooled connection's `search_path` changes nothing.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::time::Duration;

use common::*;
use sqlx::Connection;
use sweeper::report::Action;
use testsupport::{DbKind, TiSpec};

const RUN: &str = "scheduled__2025-06-01T00:00:00+00:00";

/// A database with the same DAGs but no rows for 3 live pods (a staging copy, a backup from
/// before their runs): nothing of theirs is deleted; the ordinary zombie (its row terminal) still
/// is. v3 deleted all four: under the breaker's floor of 5, a missing row read as "over".
#[tokio::test]
async fn same_dags_without_the_live_pods_rows_deletes_only_the_proven_zombie() {
    let s = Scenario::new("samedags", DbKind::Airflow3Postgres).await;
    let done = TiSpec::new("prod_dag", "done", RUN).state(Some("success"));
    s.db.insert_ti(&done).await;
    s.pod("done", &done, Stamping::Ours).await;
    for i in 0..3 {
        // The DAG is known (the `done` row made it so); these runs have no rows here.
        let live = TiSpec::new("prod_dag", &format!("live_{i}"), RUN);
        s.pod(&format!("live-{i}"), &live, Stamping::Ours).await;
    }
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("done", "zombie", "no-active-ti", "deleted"),
            ("live-0", "keep", "unknown-ti", "none"),
            ("live-1", "keep", "unknown-ti", "none"),
            ("live-2", "keep", "unknown-ti", "none"),
        ],
    );
    let summary = &out.report()["summary"];
    assert_eq!(summary["unknown_ti"], 3, "{summary}");
    assert_eq!(summary["newer_than_db"], 0, "{summary}");
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert!(
        out.stderr
            .contains("3 whose TI has no row at all (unknown-ti)"),
        "one warning with the counts:\n{}",
        out.stderr
    );
    assert_eq!(s.survivors().await, names(&["live-0", "live-1", "live-2"]));
}

/// A backup restored behind the cluster: the pod runs try 2, the database holds the row at try 1,
/// failed. Kept as `newer-than-db`; the pod of try 1 beside it is a proven zombie.
#[tokio::test]
async fn a_backup_behind_the_cluster_keeps_the_newer_try() {
    let s = Scenario::new("behind", DbKind::Airflow3Postgres).await;
    let row = TiSpec::new("bk_dag", "t", RUN)
        .state(Some("failed"))
        .try_number(1);
    s.db.insert_ti(&row).await;
    s.pod("try-1", &row, Stamping::Ours).await;
    s.pod("try-2", &row.clone().try_number(2), Stamping::Ours)
        .await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("try-1", "zombie", "no-active-ti", "deleted"),
            ("try-2", "keep", "newer-than-db", "none"),
        ],
    );
    assert_eq!(out.report()["summary"]["newer_than_db"], 1);
    assert_eq!(s.survivors().await, names(&["try-2"]));
}

/// A run deleted from the database (the UI's delete, `airflow db clean`): `unknown-ti`, kept;
/// with `--sweep-unknown-ti-after 1s`, once the pod is older than that, deleted.
#[tokio::test]
async fn a_deleted_run_is_kept_unless_the_admin_sweeps_unknown_tis() {
    let s = Scenario::new("deletedrun", DbKind::Airflow3Postgres).await;
    let keep = TiSpec::new("del_dag", "other", RUN).state(Some("running"));
    s.db.insert_ti(&keep).await;
    let gone = TiSpec::new("del_dag", "gone", RUN).state(Some("running"));
    s.db.insert_ti(&gone).await;
    s.pod("gone", &gone, Stamping::Ours).await;
    s.db.delete_ti(&gone).await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(0, &[("gone", "keep", "unknown-ti", "none")]);
    assert_eq!(s.survivors().await, names(&["gone"]));
    // Not a wait for a condition: the pod must be older than the 1s of --sweep-unknown-ti-after,
    // counted from its admission in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = s
        .sweep(&[
            "--delete",
            "--owner",
            OWNER,
            "--sweep-unknown-ti-after",
            "1s",
        ])
        .await;
    out.expect(0, &[("gone", "zombie", "unknown-ti", "deleted")]);
    assert!(s.survivors().await.is_empty());
    let (pod_events, _) = (s.zombie_events().await, ());
    assert_eq!(pod_events.len(), 1);
    assert!(
        pod_events[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("rule 11 (unknown-ti)")),
        "{pod_events:?}"
    );
}

/// A pod template copied from a mapped task keeps `map_index=3` on an unmapped task's pod: its
/// unmapped TI's terminal row is the evidence (deleted); a stale-map_index pod whose unmapped row
/// is behind it is kept.
#[tokio::test]
async fn a_stale_map_index_pod_is_judged_by_the_unmapped_terminal_row() {
    let s = Scenario::new("stalemap", DbKind::Airflow3Postgres).await;
    let over = TiSpec::new("map_dag", "over", RUN).state(Some("success"));
    s.db.insert_ti(&over).await;
    s.pod("over-m3", &over.clone().map_index(3), Stamping::Ours)
        .await;
    let behind = TiSpec::new("map_dag", "behind", RUN)
        .state(Some("failed"))
        .try_number(1);
    s.db.insert_ti(&behind).await;
    s.pod(
        "behind-m3",
        &behind.clone().map_index(3).try_number(2),
        Stamping::Ours,
    )
    .await;
    let out = s.sweep(&["--delete", "--owner", OWNER]).await;
    out.expect(
        0,
        &[
            ("behind-m3", "keep", "newer-than-db", "none"),
            ("over-m3", "zombie", "no-active-ti", "deleted"),
        ],
    );
    assert_eq!(s.survivors().await, names(&["behind-m3"]));
}

/// Replaces `task_instance` by a view over it whose `state` goes through a hook the test steers
/// from the table `kpo_ctl`: `slow` makes each row read take `secs`, `fail_task` makes a read of
/// that task's row fail (division by zero). The sweeper reads the view as it reads the table.
async fn hook_task_instance(url: &str, secs: f64) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let sql = format!(
        "CREATE TABLE kpo_ctl (slow boolean NOT NULL, fail_task text);
         INSERT INTO kpo_ctl VALUES (false, NULL);
         ALTER TABLE task_instance RENAME TO task_instance_real;
         CREATE FUNCTION kpo_hook(task text, st text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
         BEGIN
           IF (SELECT slow FROM kpo_ctl) THEN PERFORM pg_sleep({secs}); END IF;
           IF (SELECT fail_task FROM kpo_ctl) = task THEN RETURN (1 / 0)::text; END IF;
           RETURN st;
         END $$;
         CREATE VIEW task_instance AS
           SELECT t.dag_id, t.task_id, t.run_id, t.map_index, t.try_number,
                  kpo_hook(t.task_id, t.state) AS state
           FROM task_instance_real t;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .unwrap();
}

async fn steer(url: &str, sql: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap();
}

/// The re-read's answer comes 3 s after its query was sent, and the window is 2 s: the window is
/// gone when the answer arrives, so no DELETE is sent (v3 counted the window from the answer and
/// deleted). After three late re-reads in a row the pods are given up on for this run.
#[tokio::test]
async fn a_reread_held_past_the_window_sends_no_delete() {
    let s = Scenario::new("slowreread", DbKind::Airflow3Postgres).await;
    let t = |n: &str| TiSpec::new("slow_dag", n, RUN).state(Some("success"));
    for n in ["z1", "z2"] {
        s.db.insert_ti(&t(n)).await;
        s.pod(n, &t(n), Stamping::Ours).await;
    }
    hook_task_instance(&s.db.url, 3.0).await;
    let mut plan = sweeper::plan(s.args(&["--delete"])).await.unwrap();
    assert_eq!(plan.decisions.iter().filter(|d| d.is_zombie()).count(), 2);
    plan.window = Duration::from_secs(2);
    steer(&s.db.url, "UPDATE kpo_ctl SET slow = true").await;
    let out = plan.finish().await.unwrap();
    let rows = rows_of(&out);
    for n in ["z1", "z2"] {
        assert_eq!(rows[n].2, Action::Failed, "{n}: {rows:?}");
    }
    assert_eq!(out.exit, sweeper::exit::DELETE_FAILED);
    assert_eq!(out.report.summary.deleted, 0);
    assert_eq!(s.survivors().await, names(&["z1", "z2"]));
    assert!(s.zombie_events().await.is_empty());
}

/// Batch 1 deletes its pod; batch 2's re-read fails. The run exits 1 and still reports batch 1's
/// delete: in the report, in the error's own words, and in the interval metrics.
#[tokio::test]
async fn a_failure_after_some_deletes_reports_every_delete_made() {
    let s = Scenario::new("partial", DbKind::Airflow3Postgres).await;
    let t = |n: &str| TiSpec::new("part_dag", n, RUN).state(Some("success"));
    for n in ["z1", "z2"] {
        s.db.insert_ti(&t(n)).await;
        s.pod(n, &t(n), Stamping::Ours).await;
    }
    hook_task_instance(&s.db.url, 0.0).await;
    let mut plan = sweeper::plan(s.args(&["--delete"])).await.unwrap();
    assert_eq!(plan.decisions.iter().filter(|d| d.is_zombie()).count(), 2);
    plan.batch_size = 1;
    steer(&s.db.url, "UPDATE kpo_ctl SET fail_task = 'z2'").await;
    let out = plan.finish().await.expect("an outcome, not an error");
    assert_eq!(out.exit, sweeper::exit::ERROR);
    let err = out.error.as_ref().expect("the error that ended the run");
    assert!(
        matches!(err, sweeper::Error::DbQuery { .. }),
        "the re-read's own error: {err}"
    );
    let rows = rows_of(&out);
    assert_eq!(rows["z1"].2, Action::Deleted, "{rows:?}");
    assert_eq!(rows["z2"].2, Action::None, "{rows:?}");
    assert_eq!(out.report.summary.deleted, 1);
    assert!(
        out.report.summary_line().contains("1 deleted"),
        "{}",
        out.report.summary_line()
    );
    assert_eq!(s.survivors().await, names(&["z2"]));
    let metrics = sweeper::metrics::Metrics::default();
    metrics.record_outcome(&out, 0, 1.0);
    let mut registry = prometheus_client::registry::Registry::with_prefix("kpo_sweeper");
    let metrics = metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("kpo_sweeper_deletions_total 1"),
        "deletes counted:\n{text}"
    );
    assert_eq!(metrics.runs("error"), 1);
}

/// libpq's `sslpassword` and `sslkey` in the URL: their values appear in no output, at debug
/// level too; the dropped parameter is named by its key. v3 handed `sslpassword` to sqlx, which
/// logs an unknown parameter with its value at WARN.
#[tokio::test]
async fn secret_url_parameters_never_reach_any_output() {
    let s = Scenario::new("sslsecret", DbKind::Airflow3Postgres).await;
    let done = TiSpec::new("ssl_dag", "done", RUN).state(Some("success"));
    s.db.insert_ti(&done).await;
    s.pod("done", &done, Stamping::Ours).await;
    let sep = if s.db.url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{sep}sslmode=disable&sslpassword=Pw-SECRET-31337&sslkey=/nonexistent/KEYPATH-SECRET-4242.key",
        s.db.url
    );
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &url,
            "--min-age",
            "0s",
            "--owner",
            OWNER,
        ],
        &[("RUST_LOG", "debug")],
    )
    .await;
    out.expect(0, &[("done", "zombie", "no-active-ti", "would-delete")]);
    for secret in ["Pw-SECRET-31337", "KEYPATH-SECRET-4242"] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} leaked:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("`sslpassword` is not passed on"),
        "the key is named:\n{}",
        out.stderr
    );
}

/// Through PgBouncer in transaction mode, every server connection of the pool carries another
/// client's session `SET search_path TO "Team-B"` (a second Airflow in that schema, where the TI
/// runs). The sweeper, with no schema set, still reads `public` (where the TI is over) and
/// deletes the zombie: it pins search_path in each transaction.
#[tokio::test]
async fn a_pooled_search_path_does_not_change_what_is_read() {
    let s = Scenario::new("searchpath", DbKind::Airflow3PostgresSchema).await;
    let schema = testsupport::env().var("AIRFLOW3_PG_SCHEMA").to_owned();
    let ti = TiSpec::new("sp_dag", "t", RUN);
    // s.db writes into the schema: there the TI runs; in public it is over.
    s.db.insert_ti(&ti.clone().state(Some("running"))).await;
    let public = s.db.in_schema("public");
    public.insert_ti(&ti.clone().state(Some("success"))).await;
    s.pod("zombie", &ti, Stamping::Ours).await;
    let bouncer = s.db.pgbouncer_url();
    // 20 clients at once (the pool's size), each leaving its server connection with the schema
    // on its search_path.
    let set = format!(
        "BEGIN; SET search_path TO \"{}\"; SELECT pg_sleep(0.5); COMMIT",
        schema.replace('"', "\"\"")
    );
    let polluters = (0..20).map(|_| {
        let (url, set) = (bouncer.clone(), set.clone());
        async move {
            // PgBouncer refuses sqlx's default extra_float_digits startup parameter.
            let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let mut c = sqlx::PgConnection::connect_with(&opts.extra_float_digits(None))
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(set))
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
    });
    futures::future::join_all(polluters).await;
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &bouncer,
            "--db-schema",
            "",
            "--min-age",
            "0s",
            "--owner",
            OWNER,
            "--delete",
        ],
        &[],
    )
    .await;
    out.expect(0, &[("zombie", "zombie", "no-active-ti", "deleted")]);
    assert!(s.survivors().await.is_empty());
}
