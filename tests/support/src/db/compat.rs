//! Airflow releases' schemas loaded from the dumps `tests/compat/generate` committed
//! (tests/compat/schemas/<V>/{postgres.sql,mariadb.sql}), and task-instance rows written into each
//! by its `requirements.json`: the columns each table has, and the NOT NULL ones without a default.
//! No Airflow runs at test time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::OnceCell;

use super::{
    Arg, BUNDLE, DbKind, Dialect, LOGICAL_BASE, TestDb, TiSpec, fail_service, has_started,
    now_secs, redact, run_type_of, sqlalchemy_form, with_database,
};
use crate::rand::{random_suffix, stable_uuid};

/// The database engine a dump was made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompatEngine {
    /// `postgres.sql` (pg_dump of the release's `airflow db migrate` on PostgreSQL).
    Postgres,
    /// `mariadb.sql` (mariadb-dump of the same on MariaDB, utf8mb3_bin).
    MariaDb,
}

impl CompatEngine {
    fn file(self) -> &'static str {
        match self {
            CompatEngine::Postgres => "postgres.sql",
            CompatEngine::MariaDb => "mariadb.sql",
        }
    }

    fn key(self) -> &'static str {
        match self {
            CompatEngine::Postgres => "postgres",
            CompatEngine::MariaDb => "mariadb",
        }
    }

    fn kind(self) -> DbKind {
        match self {
            CompatEngine::Postgres => DbKind::CompatPostgres,
            CompatEngine::MariaDb => DbKind::CompatMariaDb,
        }
    }
}

/// One column of a table, as the release's migration made it.
#[derive(Clone, Debug)]
pub struct CompatColumn {
    /// information_schema's `data_type` (`character varying`, `timestamp with time zone`, `int`, …).
    pub data_type: String,
    pub nullable: bool,
}

/// What a release's schema asks of the rows a test writes (its requirements.json, one engine).
#[derive(Clone, Debug)]
pub struct CompatSchema {
    /// The Airflow release, e.g. `2.5.3`.
    pub release: String,
    pub engine: CompatEngine,
    /// Airflow 2.0–2.9: `try_number` is bumped when a try starts (and lowered at defer); since
    /// 2.10, when the scheduler schedules it.
    pub try_bumped_at_start: bool,
    /// `task_instance.try_number` may be NULL.
    pub try_number_nullable: bool,
    /// The type of `task_instance.id` (3.x: a uuid), `None` where the composite key is the key.
    pub task_instance_id: Option<String>,
    /// Table → column → its type and nullability (dag_bundle, dag, dag_version, dag_run,
    /// task_instance, where the release has them).
    pub tables: BTreeMap<String, BTreeMap<String, CompatColumn>>,
    /// Table → its NOT NULL columns without a default.
    pub required: BTreeMap<String, Vec<String>>,
}

impl CompatSchema {
    /// Reads tests/compat/schemas/<release>/requirements.json for `engine`; panics (with what to run)
    /// when the release has no dump for it.
    pub fn load(release: &str, engine: CompatEngine) -> CompatSchema {
        let path = schemas_dir().join(release).join("requirements.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run tests/compat/generate {release}",
                path.display()
            )
        });
        let doc: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let db = &doc[engine.key()];
        assert!(
            db.get("tables").is_some(),
            "Airflow {release} has no {} schema: {}",
            engine.key(),
            db
        );
        let mut tables = BTreeMap::new();
        let mut required = BTreeMap::new();
        for (t, v) in db["tables"].as_object().expect("tables") {
            let cols = v["columns"]
                .as_object()
                .expect("columns")
                .iter()
                .map(|(c, d)| {
                    (
                        c.clone(),
                        CompatColumn {
                            data_type: d["type"].as_str().expect("type").to_owned(),
                            nullable: d["nullable"].as_bool().expect("nullable"),
                        },
                    )
                })
                .collect();
            tables.insert(t.clone(), cols);
            let req = v["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|c| c.as_str().expect("column").to_owned())
                .collect();
            required.insert(t.clone(), req);
        }
        CompatSchema {
            release: release.to_owned(),
            engine,
            try_bumped_at_start: doc["try_number_bumped_at"] == "start",
            try_number_nullable: doc["try_number_nullable"] == true,
            task_instance_id: doc["task_instance_id"].as_str().map(str::to_owned),
            tables,
            required,
        }
    }

    /// Airflow 2.x.
    pub fn is_airflow2(&self) -> bool {
        self.release.starts_with("2.")
    }

    /// The table has the column.
    pub fn has(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.contains_key(column))
    }

    fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }
}

/// tests/compat/schemas of this workspace.
pub fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../compat/schemas")
}

/// A new, uniquely named database holding the schema of Airflow `release` on `engine`, loaded from
/// its committed dump (tests/compat/schemas/<release>/), with the rows the migration seeded
/// (alembic_version, log_template, slot_pool). [`TestDb::insert_ti`] then writes rows that fit
/// that release.
pub async fn fresh_db_from_dump(release: &str, engine: CompatEngine) -> TestDb {
    let schema = CompatSchema::load(release, engine);
    let path = schemas_dir().join(release).join(engine.file());
    let dump = tokio::fs::read_to_string(&path).await.unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run tests/compat/generate {release}",
            path.display()
        )
    });
    let kind = engine.kind();
    // t_<kind><release>_<unix seconds>_<random>: tests/env/up drops test databases older than a
    // few hours by name.
    let name = format!(
        "t_{}{}_{}_{}",
        kind.short(),
        release.replace('.', ""),
        now_secs(),
        random_suffix(6)
    );
    let admin = kind.template_url();
    let url = with_database(admin, &name);
    let load = |e: sqlx::Error| -> ! { panic!("loading {} into {name}: {e}", path.display()) };
    match engine {
        CompatEngine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .unwrap_or_else(|e| fail_service("cannot connect to PostgreSQL", admin, e));
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(admin)));
            let _ = conn.close().await;
            // The dump empties this session's search_path: its own connection, closed after.
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .unwrap_or_else(|e| fail_service("cannot connect to PostgreSQL", &url, e));
            sqlx::raw_sql(AssertSqlSafe(dump))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| load(e));
            let _ = conn.close().await;
        }
        CompatEngine::MariaDb => {
            let mut conn = sqlx::MySqlConnection::connect(admin)
                .await
                .unwrap_or_else(|e| fail_service("cannot connect to MariaDB", admin, e));
            sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb3 COLLATE utf8mb3_bin"
            )))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(admin)));
            sqlx::raw_sql(AssertSqlSafe(format!("USE `{name}`;\n{dump}")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| load(e));
            let _ = conn.close().await;
        }
    }
    TestDb {
        kind,
        sqlalchemy_url: sqlalchemy_form(kind, &url),
        url,
        name,
        schema: None,
        pool: OnceCell::new(),
        compat: Some(Arc::new(schema)),
    }
}

/// A value for one column: a bound argument, or SQL of our own.
enum Val {
    Arg(Arg),
    Sql(&'static str),
}

impl TestDb {
    /// The release this database's schema comes from, when it was loaded from a dump.
    pub fn compat(&self) -> Option<&CompatSchema> {
        self.compat.as_deref()
    }

    /// Sets `try_number` of the row (dag_id, task_id, run_id, map_index) of `ti` to NULL (a
    /// schema where it is nullable: a cleared TI before 2.10's scheduler set it).
    pub async fn null_try_number(&self, ti: &TiSpec) {
        self.exec(
            "UPDATE task_instance SET try_number = NULL \
             WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ?",
            vec![
                Arg::Str(ti.dag_id.clone()),
                Arg::Str(ti.task_id.clone()),
                Arg::Str(ti.run_id.clone()),
                Arg::Int(ti.map_index),
            ],
        )
        .await;
    }

    /// [`TestDb::insert_ti`] on a release's schema: each table's row holds the values Airflow
    /// would write where the release has the column, and a value of the column's type in every
    /// other NOT NULL column without a default.
    pub(super) async fn insert_ti_compat(&self, c: &CompatSchema, ti: &TiSpec) {
        let now = now_secs();
        let dag = ti.dag_id.clone();
        let version_id = stable_uuid(&["dag_version", &dag]);
        let s = |v: &str| Val::Arg(Arg::Str(v.to_owned()));
        let b = |v: bool| Val::Arg(Arg::Bool(v));
        let i = |v: i64| Val::Arg(Arg::Int(v));
        let ts = |v: i64| Val::Arg(Arg::Ts(v));

        if c.has_table("dag_bundle")
            && !self
                .exists(
                    "SELECT COUNT(*) FROM dag_bundle WHERE name = ?",
                    vec![Arg::Str(BUNDLE.to_owned())],
                )
                .await
        {
            self.insert_row(
                c,
                "dag_bundle",
                vec![("name", s(BUNDLE)), ("active", b(true))],
            )
            .await;
        }
        if !self
            .exists(
                "SELECT COUNT(*) FROM dag WHERE dag_id = ?",
                vec![Arg::Str(dag.clone())],
            )
            .await
        {
            self.insert_row(
                c,
                "dag",
                vec![
                    ("dag_id", s(&dag)),
                    ("is_paused", b(false)),
                    ("is_subdag", b(false)),
                    ("is_active", b(true)),
                    ("is_stale", b(false)),
                    ("bundle_name", s(BUNDLE)),
                    ("fileloc", s(&format!("/opt/airflow/dags/{dag}.py"))),
                    ("relative_fileloc", s(&format!("{dag}.py"))),
                    ("owners", s("airflow")),
                    (
                        "timetable_type",
                        s("airflow.timetables.simple.NullTimetable"),
                    ),
                    ("partition_mapper_info", s("[]")),
                    ("max_active_tasks", i(16)),
                    ("max_active_runs", i(16)),
                    ("max_consecutive_failed_dag_runs", i(0)),
                    ("has_task_concurrency_limits", b(false)),
                    ("last_parsed_time", ts(now)),
                ],
            )
            .await;
        }
        if c.has_table("dag_version")
            && !self
                .exists(
                    "SELECT COUNT(*) FROM dag_version WHERE dag_id = ?",
                    vec![Arg::Str(dag.clone())],
                )
                .await
        {
            self.insert_row(
                c,
                "dag_version",
                vec![
                    ("id", Val::Arg(Arg::Uuid(version_id.clone()))),
                    ("version_number", i(1)),
                    ("dag_id", s(&dag)),
                    ("bundle_name", s(BUNDLE)),
                    ("created_at", ts(now)),
                    ("last_updated", ts(now)),
                ],
            )
            .await;
        }
        if !self
            .exists(
                "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND run_id = ?",
                vec![Arg::Str(dag.clone()), Arg::Str(ti.run_id.clone())],
            )
            .await
        {
            // Logical dates one second apart per DAG (unique per DAG where set).
            let n = self
                .count(
                    "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?",
                    vec![Arg::Str(dag.clone())],
                )
                .await;
            let logical = LOGICAL_BASE + n;
            let run_type = run_type_of(&ti.run_id, c.is_airflow2());
            self.insert_row(
                c,
                "dag_run",
                vec![
                    ("dag_id", s(&dag)),
                    ("run_id", s(&ti.run_id)),
                    ("run_type", s(run_type)),
                    ("state", s("running")),
                    ("execution_date", ts(logical)),
                    ("logical_date", ts(logical)),
                    ("run_after", ts(logical)),
                    ("data_interval_start", ts(logical)),
                    ("data_interval_end", ts(logical)),
                    ("queued_at", ts(now)),
                    ("start_date", ts(now)),
                    ("external_trigger", b(run_type == "manual")),
                    (
                        "log_template_id",
                        Val::Sql("(SELECT MAX(id) FROM log_template)"),
                    ),
                    (
                        "created_dag_version_id",
                        Val::Arg(Arg::Uuid(version_id.clone())),
                    ),
                    ("created_at", ts(now)),
                    ("updated_at", ts(now)),
                ],
            )
            .await;
        }
        let mut row = vec![
            ("task_id", s(&ti.task_id)),
            ("dag_id", s(&dag)),
            ("run_id", s(&ti.run_id)),
            ("map_index", i(ti.map_index)),
            ("try_number", i(ti.try_number)),
            ("max_tries", i(0)),
            ("state", Val::Arg(Arg::OptStr(ti.state.clone()))),
            ("pool", s("default_pool")),
            ("pool_slots", i(1)),
            ("queue", s("default")),
            ("priority_weight", i(1)),
            ("operator", s("KubernetesPodOperator")),
            ("custom_operator_name", s("KubernetesPodOperator")),
            ("hostname", s("airflow-worker-0")),
            ("unixname", s("airflow")),
            ("updated_at", ts(now)),
            ("dag_version_id", Val::Arg(Arg::Uuid(version_id))),
            ("scheduled_dttm", ts(now)),
        ];
        if c.task_instance_id.is_some() {
            let id = stable_uuid(&[
                "task_instance",
                &dag,
                &ti.task_id,
                &ti.run_id,
                &ti.map_index.to_string(),
            ]);
            row.push(("id", Val::Arg(Arg::Uuid(id))));
        }
        if ti.state.as_deref() != Some("scheduled") && ti.state.is_some() {
            row.push(("queued_dttm", ts(now)));
        }
        if has_started(ti.state.as_deref()) {
            row.push(("start_date", ts(now)));
        }
        self.insert_row(c, "task_instance", row).await;
    }

    /// INSERT INTO `table` the `values` whose columns the release has, plus a value of its type for
    /// each other required column. PostgreSQL casts each parameter to its column's type.
    async fn insert_row(&self, c: &CompatSchema, table: &str, values: Vec<(&str, Val)>) {
        let cols = c
            .tables
            .get(table)
            .unwrap_or_else(|| panic!("Airflow {}: no table {table}", c.release));
        let mut values: Vec<(String, Val)> = values
            .into_iter()
            .filter(|(col, _)| cols.contains_key(*col))
            .map(|(col, v)| (col.to_owned(), v))
            .collect();
        for req in &c.required[table] {
            if !values.iter().any(|(col, _)| col == req) {
                let v = filler(&cols[req].data_type).unwrap_or_else(|| {
                    panic!(
                        "Airflow {}: {table}.{req} is NOT NULL without a default, of type {}: \
                         give it a value in testsupport's insert_ti_compat",
                        c.release, cols[req].data_type
                    )
                });
                values.push((req.clone(), Val::Arg(v)));
            }
        }
        let d = self.dialect();
        let quote = |col: &str| match d {
            Dialect::My => format!("`{col}`"),
            _ => format!("\"{col}\""),
        };
        let mut names = Vec::new();
        let mut marks = Vec::new();
        let mut args = Vec::new();
        for (col, v) in values {
            names.push(quote(&col));
            match v {
                Val::Sql(sql) => marks.push(sql.to_owned()),
                Val::Arg(a) => {
                    let ty = &cols[&col].data_type;
                    // SQLAlchemy's Uuid without a native type is CHAR(32), hex without dashes
                    // (3.x on MariaDB: dag_version.id and the columns that refer to it).
                    let a = match a {
                        Arg::Uuid(u) if d == Dialect::My && ty == "char" => {
                            Arg::Str(u.replace('-', ""))
                        }
                        other => other,
                    };
                    marks.push(match d {
                        Dialect::Pg if ty != "USER-DEFINED" && ty != "ARRAY" => {
                            format!("CAST(? AS {ty})")
                        }
                        _ => "?".to_owned(),
                    });
                    args.push(a);
                }
            }
        }
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        );
        self.exec(&sql, args).await;
    }
}

/// A value of `data_type` for a required column no test cares about.
fn filler(data_type: &str) -> Option<Arg> {
    let t = data_type.to_ascii_lowercase();
    Some(match t.as_str() {
        "integer" | "bigint" | "smallint" | "int" | "tinyint" | "mediumint"
        | "double precision" | "double" | "float" | "real" => Arg::Int(0),
        "boolean" => Arg::Bool(false),
        "json" | "jsonb" => Arg::Str("{}".to_owned()),
        "uuid" => Arg::Uuid(stable_uuid(&["filler", &random_suffix(12)])),
        _ if t.starts_with("timestamp") || t == "datetime" || t == "date" => Arg::Ts(now_secs()),
        "character varying" | "text" | "varchar" | "char" | "character" | "longtext"
        | "mediumtext" => Arg::Str("x".to_owned()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_release_has_a_postgres_profile() {
        let dir = schemas_dir();
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("tests/compat/schemas") {
            let release = e.expect("entry").file_name().to_string_lossy().into_owned();
            let c = CompatSchema::load(&release, CompatEngine::Postgres);
            for t in ["dag", "dag_run", "task_instance"] {
                assert!(c.has_table(t), "{release}: {t}");
            }
            for col in [
                "dag_id",
                "task_id",
                "run_id",
                "map_index",
                "try_number",
                "state",
            ] {
                assert!(
                    c.has("task_instance", col),
                    "{release}: task_instance.{col}"
                );
            }
            n += 1;
        }
        assert!(n > 0, "no release under {}", dir.display());
    }

    #[test]
    fn fillers_cover_the_types() {
        assert!(matches!(filler("integer"), Some(Arg::Int(0))));
        assert!(matches!(
            filler("timestamp with time zone"),
            Some(Arg::Ts(_))
        ));
        assert!(filler("bytea").is_none());
    }
}
