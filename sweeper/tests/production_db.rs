//! The sweeper on production-shaped Airflow databases (issue 11): through PgBouncer in transaction
//! pooling mode (Debian's pgbouncer, as the Airflow Helm chart runs it), with Airflow migrated into a
//! non-public PostgreSQL schema next to a second Airflow in `public`, with a state nobody knows on
//! every schema/DB pair, with the queries' plans on Airflow's own indexes, under a statement timeout,
//! and with bad input. The real `sweeper` binary where the outcome is the exit code and the pods.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use clap::Parser;
use common::*;
use sqlx::{Connection, Executor};
use sweeper::db::{Db, DbConfig, DbUrl, Explain};
use sweeper::decide::Decision;
use testsupport::{DbKind, TestDb, TiSpec};
use tikey::TiKey;

const DAG: &str = "kpo_zombie_dag";
const RUN: &str = "manual__2025-12-02T10:00:00+00:00";

/// The upstream scenario's TIs and pods (apache/airflow #58968): two zombies, two live pods.
async fn upstream(s: &Scenario, db: &TestDb) {
    let tis = [
        (
            "zombie-kpo-task",
            TiSpec::new(DAG, "zombie_kpo_task", RUN).state(Some("success")),
        ),
        (
            "healthy-kpo-task",
            TiSpec::new(DAG, "healthy_kpo_task", RUN),
        ),
        (
            "mapped-kpo-task-0",
            TiSpec::new(DAG, "mapped_kpo_task", RUN)
                .map_index(0)
                .state(Some("success")),
        ),
        (
            "mapped-kpo-task-1",
            TiSpec::new(DAG, "mapped_kpo_task", RUN).map_index(1),
        ),
    ];
    for (name, ti) in &tis {
        db.insert_ti(ti).await;
        s.pod(name, ti, Stamping::Ours).await;
        s.set_phase(name, "Running").await;
    }
}

const UPSTREAM_PODS: [&str; 4] = [
    "zombie-kpo-task",
    "healthy-kpo-task",
    "mapped-kpo-task-0",
    "mapped-kpo-task-1",
];

/// The sweeper's final error line (`kpo-sweeper: error: …`); asserts there is exactly one.
fn error_line(out: &Sweep) -> &str {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("kpo-sweeper: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line:\n{}", out.stderr);
    lines[0]
}

/// Asserts exit 1, no report, one error line containing every `needle`, and no pod deleted.
async fn assert_refused(s: &Scenario, out: &Sweep, needles: &[&str]) {
    assert_eq!(out.code, 1, "exit 1:\n{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report on error: {}", out.stdout);
    let line = error_line(out);
    for n in needles {
        assert!(line.contains(n), "{n:?} missing from {line:?}");
    }
    assert!(line.ends_with("nothing was deleted"), "{line}");
    assert!(!line.contains(":airflow@"), "password in {line}");
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));
    assert!(s.zombie_events().await.is_empty());
}

fn pg_log_len() -> u64 {
    std::fs::metadata(testsupport::env().var("PG_LOG"))
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("PG_LOG: {e}: run tests/env/up"))
}

/// PostgreSQL's log from byte `from` on.
fn pg_log_since(from: u64) -> String {
    let all = std::fs::read(testsupport::env().var("PG_LOG")).expect("PG_LOG");
    String::from_utf8_lossy(&all[usize::try_from(from).unwrap().min(all.len())..]).into_owned()
}

// ------------------------------------------------------------------ PgBouncer

/// The environment's PgBouncer is the production one: transaction pooling, and no
/// `ignore_startup_parameters`, so sqlx's default connect (`extra_float_digits`) is refused as
/// today's sweeper was.
#[tokio::test]
async fn pgbouncer_refuses_startup_parameters_as_in_production() {
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let url = db.pgbouncer_url();
    let Err(err) = sqlx::PgConnection::connect(&url).await else {
        panic!("PgBouncer accepted sqlx's default startup parameters")
    };
    assert!(
        err.to_string().contains("unsupported startup parameter"),
        "{err}"
    );
    // What the sweeper sends is accepted, and pool_mode is transaction.
    let admin = url.rsplit_once('/').unwrap().0.to_owned() + "/pgbouncer";
    let opts: sqlx::postgres::PgConnectOptions = admin.parse().unwrap();
    let mut c = sqlx::PgConnection::connect_with(&opts.extra_float_digits(None))
        .await
        .expect("admin console");
    let rows = c.fetch_all("SHOW CONFIG").await.expect("SHOW CONFIG");
    let config: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            use sqlx::Row;
            (
                r.get::<String, _>(0),
                r.get::<Option<String>, _>(1).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(config["pool_mode"], "transaction");
    assert_eq!(config["ignore_startup_parameters"], "");
}

/// The upstream scenario through PgBouncer: the zombies go, the live pods stay, twice in a row;
/// on the wire (PostgreSQL's statement log of this database) every statement is in a read-only
/// transaction with a local timeout and no prepared statement has a name.
#[tokio::test]
async fn pgbouncer_upstream_scenario_deletes_exactly_the_zombies() {
    let s = Scenario::new("pgb-upstream", DbKind::Airflow3Postgres).await;
    upstream(&s, &s.db).await;
    s.db.raw(&format!(
        "ALTER DATABASE \"{}\" SET log_statement = 'all'",
        s.db.name
    ))
    .await;
    let log_from = pg_log_len();
    let url = s.db.pgbouncer_url();
    let args = [
        "--namespace",
        s.ns.as_str(),
        "--db-url",
        url.as_str(),
        "--min-age",
        "0s",
        "--delete",
        "--owner",
        OWNER,
    ];
    let out = run_sweeper(&args, &[]).await;
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
        s.survivors().await,
        names(&["healthy-kpo-task", "mapped-kpo-task-1"])
    );
    let again = run_sweeper(&args, &[]).await;
    again.expect(
        0,
        &[
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );

    // Two runs: active read + re-read, then active read. Each statement in its own
    // `BEGIN READ ONLY` transaction, the re-read's binds through the unnamed statement.
    let log = pg_log_since(log_from);
    let begins = log
        .matches("statement: BEGIN READ ONLY; SET LOCAL statement_timeout = 30000")
        .count();
    assert!(
        begins >= 3,
        "3 read-only transactions, saw {begins}:\n{log}"
    );
    assert!(
        log.contains("execute <unnamed>: SELECT dag_id, task_id, run_id"),
        "unnamed statements:\n{log}"
    );
    assert!(
        !log.contains("execute sqlx_s_"),
        "a named prepared statement:\n{log}"
    );
    // No error in this database's sessions (other tests' errors, a statement timeout say, land in
    // the same server log): PgBouncer keeps its server connections, so their pids are still there.
    let mut c = sqlx::PgConnection::connect(&s.db.url).await.unwrap();
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&s.db.name)
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        !pids.is_empty(),
        "PgBouncer's server connections to {}",
        s.db.name
    );
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR:"))
        .filter(|l| pids.iter().any(|p| l.contains(&format!("[{p}]"))))
        .collect();
    assert!(ours.is_empty(), "no error on the server:\n{log}");
}

/// The re-read right before deleting goes through PgBouncer too: a TI revived between the plan
/// and the delete keeps its pod.
#[tokio::test]
async fn pgbouncer_reread_before_delete_keeps_a_revived_ti() {
    let s = Scenario::new("pgb-reread", DbKind::Airflow3Postgres).await;
    let revived = TiSpec::new("reread_dag", "revived", RUN).state(Some("success"));
    let dead = TiSpec::new("reread_dag", "dead", RUN).state(Some("failed"));
    for (name, ti) in [("revived", &revived), ("dead", &dead)] {
        s.db.insert_ti(ti).await;
        s.pod(name, ti, Stamping::Ours).await;
    }
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let url = s.db.pgbouncer_url();
    let args = sweeper::Args::try_parse_from([
        "sweeper",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        &s.ns,
        "--db-url",
        &url,
        "--delete",
        "--owner",
        OWNER,
        "--min-age",
        "0s",
    ])
    .unwrap();
    let plan = sweeper::plan(args).await.unwrap();
    assert!(
        plan.decisions.iter().all(Decision::is_zombie),
        "{:?}",
        plan.decisions
    );
    s.db.update_ti(&revived.clone().state(Some("running")))
        .await;
    let out = plan.finish().await.unwrap();
    assert_eq!(out.exit, 0);
    assert_eq!(s.survivors().await, names(&["revived"]));
}

/// The circuit breaker through PgBouncer: exit 2, nothing deleted; the override it names works.
#[tokio::test]
async fn pgbouncer_circuit_breaker_trips_and_deletes_nothing() {
    let s = Scenario::new("pgb-breaker", DbKind::Airflow3Postgres).await;
    upstream(&s, &s.db).await;
    let url = s.db.pgbouncer_url();
    let base = [
        "--namespace",
        s.ns.as_str(),
        "--db-url",
        url.as_str(),
        "--min-age",
        "0s",
        "--delete",
        "--owner",
        OWNER,
    ];
    let mut args = base.to_vec();
    args.extend(["--max-deletions", "1"]);
    let out = run_sweeper(&args, &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--max-deletions 2"), "{}", out.stderr);
    assert_eq!(s.survivors().await, names(&UPSTREAM_PODS));
    assert!(s.zombie_events().await.is_empty());
    let out = run_sweeper(&base, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s.survivors().await,
        names(&["healthy-kpo-task", "mapped-kpo-task-1"])
    );
}

/// A URL that points at PgBouncer in session mode with a wrong password: one line that says to
/// check the password, exit 1, nothing deleted, the password never printed.
#[tokio::test]
async fn pgbouncer_wrong_password_is_one_clear_line() {
    let s = Scenario::new("pgb-auth", DbKind::Airflow3Postgres).await;
    upstream(&s, &s.db).await;
    let secret = "not-the-password-7d1";
    let url = testsupport::env().var("PGBOUNCER_SESSION_URL").replacen(
        "airflow:airflow@",
        &format!("airflow:{secret}@"),
        1,
    );
    assert!(url.contains(secret));
    let out = run_sweeper(
        &[
            "--namespace",
            &s.ns,
            "--db-url",
            &url,
            "--min-age",
            "0s",
            "--delete",
            "--owner",
            OWNER,
        ],
        &[],
    )
    .await;
    assert_refused(
        &s,
        &out,
        &[
            "cannot connect to postgres://airflow@127.0.0.1:",
            "/kpo_session_mode",
            "authentication failed",
            "check the user and password in the DB URL",
        ],
    )
    .await;
    assert!(
        !out.stderr.contains(secret),
        "password leaked:\n{}",
        out.stderr
    );
}

// ------------------------------------------------------------------ schemas

/// One database, two Airflows (3.3.2 in "Team-B", 3.3.2 in `public`), the same keys active in
/// one and terminal in the other: each deployment's sweeper deletes exactly its own zombies,
/// whether the schema comes from --db-schema, from Airflow's own variable, or reaches it through
/// PgBouncer.
#[tokio::test]
async fn two_airflows_in_one_database_each_sweeper_deletes_its_own_zombies() {
    let team = Scenario::new("schema-team", DbKind::Airflow3PostgresSchema).await;
    let schema = testsupport::env().var("AIRFLOW3_PG_SCHEMA").to_owned();
    assert_ne!(schema, "public");
    assert_eq!(team.db.schema.as_deref(), Some(schema.as_str()));
    let public_db = team.db.in_schema("public");
    let client = testsupport::client().await;
    let public_ns = testsupport::fresh_namespace(&client, "schema-public").await;
    let _pods_public_ns = testsupport::DeletePodsOnDrop::new(&public_ns);

    // Key A finished in Team-B and runs in public; key B the other way round.
    let a = TiSpec::new("shared_dag", "task_a", RUN);
    let b = TiSpec::new("shared_dag", "task_b", RUN);
    team.db.insert_ti(&a.clone().state(Some("success"))).await;
    team.db.insert_ti(&b).await;
    public_db.insert_ti(&a).await;
    public_db.insert_ti(&b.clone().state(Some("failed"))).await;

    for ns in [&team.ns, &public_ns] {
        for (name, ti) in [("pod-a", &a), ("pod-b", &b)] {
            team.pod_in(ns, name, ti, Stamping::Ours, |_| {}).await;
        }
    }
    let db_url = team.db.url.clone();

    // Team-B's sweeper, the schema from Airflow's variable (the flag would win over it: see below).
    let out = sweep_ns(
        &team.ns,
        &db_url,
        &[],
        &[("AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA", schema.as_str())],
    )
    .await;
    out.expect(
        0,
        &[
            ("pod-a", "zombie", "no-active-ti", "deleted"),
            ("pod-b", "keep", "active", "none"),
        ],
    );
    assert_eq!(team.survivors().await, names(&["pod-b"]));

    // public's sweeper: no schema (the flag's empty value overrides a variable left over).
    let out = sweep_ns(
        &public_ns,
        &db_url,
        &["--db-schema", ""],
        &[("AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA", schema.as_str())],
    )
    .await;
    out.expect(
        0,
        &[
            ("pod-a", "keep", "active", "none"),
            ("pod-b", "zombie", "no-active-ti", "deleted"),
        ],
    );
    assert_eq!(survivors(&client, &public_ns).await, names(&["pod-a"]));

    // Team-B again through PgBouncer, --db-schema winning over a wrong variable: nothing left to do.
    let pgb = team.db.pgbouncer_url();
    let out = sweep_ns(
        &team.ns,
        &pgb,
        &["--db-schema", schema.as_str()],
        &[("AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA", "public")],
    )
    .await;
    out.expect(0, &[("pod-b", "keep", "active", "none")]);
}

/// A schema that does not exist, and a schema with MySQL or SQLite: one line naming the fix.
#[tokio::test]
async fn a_missing_schema_or_a_schema_without_postgres_is_one_clear_line() {
    let s = Scenario::new("schema-bad", DbKind::Airflow3Postgres).await;
    upstream(&s, &s.db).await;
    let base = |url: &str| {
        vec![
            "--namespace".to_owned(),
            s.ns.clone(),
            "--db-url".to_owned(),
            url.to_owned(),
            "--min-age".to_owned(),
            "0s".to_owned(),
            "--delete".to_owned(),
            "--owner".to_owned(),
            OWNER.to_owned(),
        ]
    };
    for url in [s.db.url.clone(), s.db.pgbouncer_url()] {
        let mut args = base(&url);
        args.extend(["--db-schema".to_owned(), "airflow_typo".to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_sweeper(&args, &[]).await;
        assert_refused(
            &s,
            &out,
            &[
                "schema \"airflow_typo\" (from --db-schema) does not exist in postgres://",
                "set --db-schema (or AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA) to the schema Airflow was migrated into",
            ],
        )
        .await;
    }
    for (kind, why) in [
        (DbKind::Airflow3MySql, "MySQL and MariaDB have no schemas"),
        (DbKind::Airflow3Sqlite, "SQLite has no schemas"),
    ] {
        let url = kind.template_url();
        let args = base(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_sweeper(
            &args,
            &[("AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA", "airflow")],
        )
        .await;
        assert_refused(
            &s,
            &out,
            &["schema \"airflow\" (from AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA) cannot be used with", why],
        )
        .await;
    }
}

// ------------------------------------------------------------------ bad tables, timeouts

/// A task_instance without a column we read (a DB that is not Airflow's, or a newer schema
/// without `try_number`): one line naming the column, on each engine.
#[tokio::test]
async fn a_table_lacking_our_columns_is_one_clear_line() {
    for kind in [
        DbKind::Airflow3Postgres,
        DbKind::Airflow3MySql,
        DbKind::Airflow3Sqlite,
    ] {
        let s = Scenario::new("nocol", kind).await;
        upstream(&s, &s.db).await;
        s.db.raw("ALTER TABLE task_instance DROP COLUMN try_number")
            .await;
        let out = s.sweep(&["--delete", "--owner", OWNER]).await;
        assert_refused(
            &s,
            &out,
            &[
                "reading task_instance from",
                "try_number",
                "is this an Airflow metadata DB",
            ],
        )
        .await;
    }
}

/// The error names the read that failed: a `dag` table gone is not reported as task_instance's.
#[tokio::test]
async fn a_missing_dag_table_is_named_as_such() {
    for kind in [DbKind::Airflow3Postgres, DbKind::Airflow3MySql] {
        let s = Scenario::new("nodag", kind).await;
        upstream(&s, &s.db).await;
        s.db.raw("ALTER TABLE dag RENAME TO dag_renamed_away").await;
        let out = s.sweep(&["--delete", "--owner", OWNER]).await;
        assert_refused(&s, &out, &["reading the dag table from", "dag(dag_id)"]).await;
        assert!(
            !out.stderr.contains("reading task_instance from"),
            "{kind:?}: {}",
            out.stderr
        );
    }
}

/// A statement that outlives --db-timeout (here: task_instance locked by another session) ends
/// the run with exit 1 within the limit, nothing deleted: PostgreSQL directly and through
/// PgBouncer (server side: `SET LOCAL statement_timeout`) and MariaDB (`SET STATEMENT
/// max_statement_time … FOR`). (SQLite in WAL mode, as Airflow's template is, never blocks a
/// reader; its limit is a progress handler.)
#[tokio::test]
async fn a_statement_timeout_exits_1_and_deletes_nothing() {
    for (kind, via_pgbouncer) in [
        (DbKind::Airflow3Postgres, false),
        (DbKind::Airflow3Postgres, true),
        (DbKind::Airflow3MySql, false),
    ] {
        let s = Scenario::new("timeout", kind).await;
        upstream(&s, &s.db).await;
        let url = if via_pgbouncer {
            s.db.pgbouncer_url()
        } else {
            s.db.url.clone()
        };
        // Another session holds task_instance until it is dropped.
        let lock = Locker::take(&s.db).await;
        let log_from = pg_log_len();
        let t = Instant::now();
        let out = run_sweeper(
            &[
                "--namespace",
                &s.ns,
                "--db-url",
                &url,
                "--min-age",
                "0s",
                "--delete",
                "--owner",
                OWNER,
                "--db-timeout",
                "1s",
            ],
            &[],
        )
        .await;
        let took = t.elapsed();
        drop(lock);
        assert_refused(
            &s,
            &out,
            &[
                "timed out after 1s reading task_instance from",
                "--db-timeout",
            ],
        )
        .await;
        assert!(
            took < Duration::from_secs(8),
            "{kind:?} (PgBouncer: {via_pgbouncer}) took {took:?}"
        );
        if kind == DbKind::Airflow3Postgres {
            // The server cancelled it (SET LOCAL statement_timeout), not only our own clock.
            let log = pg_log_since(log_from);
            assert!(
                log.contains("canceling statement due to statement timeout"),
                "PostgreSQL's log:\n{log}"
            );
        }
    }
}

/// Runs the sweeper with --delete on `ns` and `url`, plus `extra` flags and `env`.
async fn sweep_ns(ns: &str, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Sweep {
    let mut args = vec![
        "--namespace",
        ns,
        "--db-url",
        url,
        "--min-age",
        "0s",
        "--delete",
        "--owner",
        OWNER,
        "--max-fraction",
        "1",
    ];
    args.extend_from_slice(extra);
    run_sweeper(&args, env).await
}

/// A session that holds task_instance locked against readers until dropped (closing it releases
/// the lock).
#[allow(dead_code)] // held, never read
enum Locker {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Locker {
    async fn take(db: &TestDb) -> Locker {
        if db.url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            c.execute("BEGIN; LOCK TABLE task_instance IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            Locker::Pg(c)
        } else {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            c.execute("LOCK TABLES task_instance WRITE").await.unwrap();
            Locker::My(c)
        }
    }
}

// ------------------------------------------------------------------ states and plans

/// States nobody knows (below, between and above the terminal values), NULL and the known active
/// states are active; the five terminal states are not. Then the plans: on a table of 20,000
/// finished TIs, the active query and the re-read are served by Airflow's indexes, no full scan.
async fn unknown_states_and_index_plans(kind: DbKind) {
    let db = testsupport::fresh_db(kind).await;
    let t = |task: &str| TiSpec::new("states_dag", task, RUN);
    let unknown = [
        "",
        "aaa",
        "failed_x",
        "g",
        "removed2",
        "skipped_x",
        "success_x",
        "successful",
        "zzz",
        "awaiting_input",
        "shutdown",
        "SUCCESS",
    ];
    let mut active: Vec<TiSpec> = unknown
        .iter()
        .enumerate()
        .map(|(i, s)| t(&format!("unknown_{i}")).state(Some(s)))
        .collect();
    active.push(t("null_state").state(None));
    for s in [
        "running",
        "queued",
        "scheduled",
        "deferred",
        "up_for_retry",
        "restarting",
    ] {
        active.push(t(s).state(Some(s)));
    }
    let terminal: Vec<TiSpec> = sweeper::db::TERMINAL_STATES
        .iter()
        .map(|s| t(&format!("t_{s}")).state(Some(s)))
        .collect();
    for ti in active.iter().chain(&terminal) {
        db.insert_ti(ti).await;
    }
    // MariaDB here compares case-sensitively (utf8mb3_bin, as Airflow creates it), so SUCCESS is
    // a state nobody knows there too.
    let url = DbUrl::parse(&db.url).unwrap();
    let mut conn = Db::connect_with(&url, &DbConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let got: BTreeSet<TiKey> = conn.active_tis().await.unwrap().into_keys().collect();
    let want: BTreeSet<TiKey> = active.iter().map(TiSpec::key).collect();
    assert_eq!(got, want, "{kind:?}");

    // 20,000 finished TIs, then the plans.
    let seed = &terminal[0];
    db.clone_ti(seed, "done_", 1..=20_000, "'success'").await;
    let mut conn = Db::connect_with(&url, &DbConfig::default()).await.unwrap();
    assert_eq!(
        conn.active_tis().await.unwrap().len(),
        active.len(),
        "{kind:?}"
    );
    let plan = conn.explain(None, Explain::Analyze).await.unwrap();
    let candidates: HashSet<TiKey> = [active[0].key(), terminal[1].key()].into();
    let replan = conn
        .explain(Some(&candidates), Explain::Analyze)
        .await
        .unwrap();
    for (what, p) in [("active", &plan), ("re-read", &replan)] {
        assert_index_plan(kind, what, p);
    }
    assert_eq!(
        conn.reread(&candidates)
            .await
            .unwrap()
            .active
            .into_keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        [active[0].key()].into()
    );
}

/// The plan reads task_instance through one of Airflow's indexes, never a full scan.
fn assert_index_plan(kind: DbKind, what: &str, plan: &str) {
    let ctx = format!("{kind:?} {what} plan:\n{plan}");
    match kind {
        DbKind::Airflow3MySql => {
            let v: serde_json::Value = serde_json::from_str(plan).expect(&ctx);
            let mut tables = Vec::new();
            collect_tables(&v, &mut tables);
            assert!(!tables.is_empty(), "{ctx}");
            for t in tables {
                assert_ne!(t["access_type"], "ALL", "full scan: {ctx}");
                let key = t["key"].as_str().unwrap_or_default();
                assert!(
                    key.starts_with("ti_") || key.starts_with("task_instance"),
                    "{ctx}"
                );
            }
        }
        DbKind::Airflow3Sqlite => {
            assert!(
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
                "{ctx}"
            );
            assert!(
                !plan.lines().any(|l| l.trim() == "SCAN task_instance"),
                "full scan: {ctx}"
            );
        }
        _ => {
            assert!(plan.contains("Index"), "{ctx}");
            assert!(!plan.contains("Seq Scan"), "full scan: {ctx}");
        }
    }
}

fn collect_tables<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(t) = m.get("table")
                && t.get("table_name").is_some()
            {
                out.push(t);
            }
            for x in m.values() {
                collect_tables(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_tables(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn unknown_states_stay_active_on_index_plans_airflow3_postgres() {
    unknown_states_and_index_plans(DbKind::Airflow3Postgres).await;
}

#[tokio::test]
async fn unknown_states_stay_active_on_index_plans_airflow2_postgres() {
    unknown_states_and_index_plans(DbKind::Airflow2Postgres).await;
}

#[tokio::test]
async fn unknown_states_stay_active_on_index_plans_airflow3_mariadb() {
    unknown_states_and_index_plans(DbKind::Airflow3MySql).await;
}

#[tokio::test]
async fn unknown_states_stay_active_on_index_plans_airflow3_sqlite() {
    unknown_states_and_index_plans(DbKind::Airflow3Sqlite).await;
}
