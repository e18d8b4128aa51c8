//! The rows `TestDb::insert_ti` writes are rows Airflow itself reads: its own ORM (the pinned venvs of
//! tests/env/up) loads them back from each schema, UUIDs, timestamps and relationships included.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use testsupport::{DbKind, TiSpec};

const RUN: &str = "scheduled__2024-01-01T00:00:00+00:00";

async fn db_with_two_tis(kind: DbKind) -> testsupport::TestDb {
    let db = testsupport::fresh_db(kind).await;
    db.insert_ti(&TiSpec::new("orm_dag", "a_running", RUN).try_number(2))
        .await;
    db.insert_ti(
        &TiSpec::new(
            "orm_dag",
            "b_mapped_cleared",
            "manual__2024-01-02T03:04:05+00:00",
        )
        .map_index(4)
        .state(None),
    )
    .await;
    db
}

/// Runs tests/data/read_tis.py with `python` over `dbs`: one JSON document per DB.
async fn read_with_airflow(
    python_var: &str,
    dbs: &[&testsupport::TestDb],
) -> Vec<serde_json::Value> {
    let python = testsupport::env().var(python_var);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/read_tis.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args(dbs.iter().map(|db| db.sqlalchemy_url.as_str()))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e}: run tests/env/up (make test does)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{python} {script} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(docs.len(), dbs.len(), "{stdout}");
    docs
}

fn check(kind: DbKind, doc: &serde_json::Value) {
    let tis = doc["task_instances"].as_array().expect("task_instances");
    assert_eq!(tis.len(), 2, "{kind:?}: {doc}");
    let (a, b) = (&tis[0], &tis[1]);
    assert_eq!(a["task_id"], "a_running", "{kind:?}: {doc}");
    assert_eq!(a["run_id"], RUN);
    assert_eq!(a["map_index"], -1);
    assert_eq!(a["try_number"], 2);
    assert_eq!(a["state"], "running");
    assert_eq!(a["started"], true);
    assert_eq!(
        a["dag_run_state"], "running",
        "{kind:?}: the TI's dag_run relationship"
    );
    assert_eq!(b["map_index"], 4);
    assert_eq!(b["state"], serde_json::Value::Null);
    assert_eq!(b["started"], false);
    if kind.is_airflow2() {
        assert_eq!(a["id"], "", "2.10 has no task_instance.id");
    } else {
        assert_eq!(a["id"].as_str().map(str::len), Some(36), "{kind:?}: {a}");
        assert_eq!(a["dag_version_id"], b["dag_version_id"]);
        assert_eq!(a["dag_version_id"].as_str().map(str::len), Some(36));
    }
    let runs = doc["dag_runs"].as_array().expect("dag_runs");
    let types: Vec<&str> = runs.iter().filter_map(|r| r["run_type"].as_str()).collect();
    assert_eq!(types, ["manual", "scheduled"], "{kind:?}: {doc}");
}

#[tokio::test]
async fn airflow3_orm_reads_helper_rows_on_postgres_mariadb_and_sqlite() {
    let kinds = [
        DbKind::Airflow3Postgres,
        DbKind::Airflow3MySql,
        DbKind::Airflow3Sqlite,
    ];
    let mut dbs = Vec::new();
    for kind in kinds {
        dbs.push(db_with_two_tis(kind).await);
    }
    let docs = read_with_airflow("AIRFLOW3_PYTHON", &dbs.iter().collect::<Vec<_>>()).await;
    for (kind, doc) in kinds.into_iter().zip(&docs) {
        check(kind, doc);
    }
}

#[tokio::test]
async fn airflow2_orm_reads_helper_rows_on_postgres() {
    let db = db_with_two_tis(DbKind::Airflow2Postgres).await;
    let docs = read_with_airflow("AIRFLOW2_PYTHON", &[&db]).await;
    check(DbKind::Airflow2Postgres, &docs[0]);
}
