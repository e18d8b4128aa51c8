//! Fresh Airflow metadata databases copied from the templates `airflow db migrate` made, and task-instance
//! rows written into the real schema (3.x: dag_bundle → dag → dag_version → dag_run → task_instance;
//! 2.10: dag → dag_run → task_instance), foreign keys and NOT NULL columns satisfied.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::sync::OnceCell;

use crate::env::env;
use crate::rand::{random_suffix, stable_uuid};

mod compat;
pub use compat::{CompatColumn, CompatEngine, CompatSchema, fresh_db_from_dump};

/// Which template a [`TestDb`] is copied from: the Airflow schema and the database engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbKind {
    /// Airflow 3.3.2 schema on PostgreSQL.
    Airflow3Postgres,
    /// Airflow 2.10.5 schema on PostgreSQL (`try_number` nullable, no `dag_version`, no TI `id`).
    Airflow2Postgres,
    /// Airflow 3.3.2 schema on MariaDB.
    Airflow3MySql,
    /// Airflow 3.3.2 schema in a SQLite file.
    Airflow3Sqlite,
    /// Airflow 3.3.2 migrated into the non-public PostgreSQL schema `AIRFLOW3_PG_SCHEMA` of a database
    /// whose `public` holds a second Airflow 3.3.2 (not in [`DbKind::ALL`]). A [`TestDb`] of it writes
    /// into that schema; [`TestDb::in_schema`] gives one that writes into the other.
    Airflow3PostgresSchema,
    /// A release's schema loaded on PostgreSQL from its committed dump, tests/compat/schemas/<V>/postgres.sql
    /// ([`fresh_db_from_dump`]; [`TestDb::compat`] says which release). Not in [`DbKind::ALL`].
    CompatPostgres,
    /// The same from tests/compat/schemas/<V>/mariadb.sql, on MariaDB. Not in [`DbKind::ALL`].
    CompatMariaDb,
}

impl DbKind {
    /// Every kind, for tests that run on each.
    pub const ALL: [DbKind; 4] = [
        DbKind::Airflow3Postgres,
        DbKind::Airflow2Postgres,
        DbKind::Airflow3MySql,
        DbKind::Airflow3Sqlite,
    ];

    /// The sqlx URL of the migrated template (read-only for tests).
    pub fn template_url(self) -> &'static str {
        let e = env();
        match self {
            DbKind::Airflow3Postgres => &e.airflow3_pg_url,
            DbKind::Airflow2Postgres => &e.airflow2_pg_url,
            DbKind::Airflow3MySql => &e.airflow3_mysql_url,
            DbKind::Airflow3Sqlite => &e.airflow3_sqlite_url,
            DbKind::Airflow3PostgresSchema => e.var("AIRFLOW3_PG_SCHEMA_URL"),
            // No template: the server a dump is loaded into.
            DbKind::CompatPostgres => e.var("PG_ADMIN_URL"),
            DbKind::CompatMariaDb => e.var("MYSQL_ADMIN_URL"),
        }
    }

    /// True for the Airflow 2.10 schema.
    pub fn is_airflow2(self) -> bool {
        self == DbKind::Airflow2Postgres
    }

    fn dialect(self) -> Dialect {
        match self {
            DbKind::Airflow3Postgres
            | DbKind::Airflow2Postgres
            | DbKind::Airflow3PostgresSchema
            | DbKind::CompatPostgres => Dialect::Pg,
            DbKind::Airflow3MySql | DbKind::CompatMariaDb => Dialect::My,
            DbKind::Airflow3Sqlite => Dialect::Lite,
        }
    }

    fn short(self) -> &'static str {
        match self {
            DbKind::Airflow3Postgres => "a3pg",
            DbKind::Airflow2Postgres => "a2pg",
            DbKind::Airflow3MySql => "a3my",
            DbKind::Airflow3Sqlite => "a3lite",
            DbKind::Airflow3PostgresSchema => "a3sch",
            DbKind::CompatPostgres => "cpg",
            DbKind::CompatMariaDb => "cmy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Pg,
    My,
    Lite,
}

/// A task instance to write into a test DB, and what [`TestDb::ti_rows`] reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TiSpec {
    /// Raw (not label-normalized) `dag_id`.
    pub dag_id: String,
    /// Raw `task_id`.
    pub task_id: String,
    /// Raw `run_id`, e.g. `scheduled__2024-01-01T00:00:00+00:00`.
    pub run_id: String,
    /// `-1` for an unmapped task.
    pub map_index: i64,
    /// The `try_number` column (2.10's NULL reads back as 0).
    pub try_number: i64,
    /// The `state` column (`None` is SQL NULL).
    pub state: Option<String>,
}

impl TiSpec {
    /// An unmapped (`map_index` -1), first try (`try_number` 1), `running` task instance.
    pub fn new(dag_id: &str, task_id: &str, run_id: &str) -> Self {
        TiSpec {
            dag_id: dag_id.to_owned(),
            task_id: task_id.to_owned(),
            run_id: run_id.to_owned(),
            map_index: -1,
            try_number: 1,
            state: Some("running".to_owned()),
        }
    }

    /// Sets `map_index`.
    pub fn map_index(mut self, i: i64) -> Self {
        self.map_index = i;
        self
    }

    /// Sets `try_number`.
    pub fn try_number(mut self, n: i64) -> Self {
        self.try_number = n;
        self
    }

    /// Sets `state` (`None` is SQL NULL).
    pub fn state(mut self, s: Option<&str>) -> Self {
        self.state = s.map(str::to_owned);
        self
    }

    /// The key the sweeper builds from this row (normalized as KPO normalizes labels).
    pub fn key(&self) -> tikey::TiKey {
        tikey::TiKey::from_db(&self.dag_id, &self.task_id, &self.run_id, self.map_index)
    }
}

/// A fresh database of one [`DbKind`], copied from its migrated template; nobody else uses it.
pub struct TestDb {
    /// The schema and engine.
    pub kind: DbKind,
    /// sqlx form: `postgres://…`, `mysql://…`, `sqlite:///abs/path.db`.
    pub url: String,
    /// Airflow's SQLAlchemy form: `postgresql+psycopg2://…`, `mysql+mysqldb://…`, `sqlite:////abs/path.db`.
    pub sqlalchemy_url: String,
    /// The database name (PostgreSQL, MariaDB) or the file path (SQLite).
    pub name: String,
    /// The PostgreSQL schema this handle writes into and reads from (its connections' search_path);
    /// `None`: the server's default (`public`).
    pub schema: Option<String>,
    pool: OnceCell<Pool>,
    /// The release whose dump this database was loaded from ([`fresh_db_from_dump`]).
    compat: Option<Arc<CompatSchema>>,
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("sqlalchemy_url", &self.sqlalchemy_url)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

fn fail_service(what: &str, url: &str, e: impl fmt::Display) -> ! {
    panic!(
        "{what} at {}: {e}: is the test environment up? run tests/env/up (make test does)",
        redact(url)
    )
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `scheme://userinfo@host:port/db?query` with `db` replaced.
fn with_database(url: &str, db: &str) -> String {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let path_start = base[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..path_start])
}

fn database_of(url: &str) -> String {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let base = url.split('?').next().unwrap_or(url);
    base[start..]
        .split_once('/')
        .map(|(_, db)| db.to_owned())
        .unwrap_or_default()
}

fn sqlalchemy_form(kind: DbKind, url: &str) -> String {
    match kind.dialect() {
        Dialect::Pg => url.replacen("postgres://", "postgresql+psycopg2://", 1),
        Dialect::My => url.replacen("mysql://", "mysql+mysqldb://", 1),
        // sqlite:///abs/path -> sqlite:////abs/path (SQLAlchemy: three slashes, then the absolute path)
        Dialect::Lite => format!("sqlite:///{}", sqlite_path(url).display()),
    }
}

fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// A fresh database for the benchmarks, by `--dbs` name (`pg`, `mariadb`): on MariaDB the buffer
/// pool is raised to 4 GB first (the env's 256 MB pool turns the growth of a 10M-row
/// `task_instance`, about 6 GB with its indexes, into hours of page swapping; a production server's
/// pool is sized to its data).
pub async fn fresh_bench_db(name: &str) -> TestDb {
    let kind = match name {
        "pg" | "postgres" => DbKind::Airflow3Postgres,
        "mariadb" | "mysql" => DbKind::Airflow3MySql,
        other => panic!("--dbs: unknown {other} (pg, mariadb)"),
    };
    let db = fresh_db(kind).await;
    if kind == DbKind::Airflow3MySql {
        db.raw("SET GLOBAL innodb_buffer_pool_size = 4294967296")
            .await;
        println!("mariadb: innodb_buffer_pool_size set to 4 GB for the growth and the runs");
    }
    db
}

/// A new, uniquely named database copied from the migrated template of `kind`: PostgreSQL
/// `CREATE DATABASE … TEMPLATE`, SQLite a file copy, MariaDB a schema copy (`SHOW CREATE TABLE` + rows).
pub async fn fresh_db(kind: DbKind) -> TestDb {
    let template_url = kind.template_url();
    let template = database_of(template_url);
    // t_<kind>_<unix seconds>_<random>: tests/env/up drops test databases older than a few hours by name.
    let name = format!("t_{}_{}_{}", kind.short(), now_secs(), random_suffix(6));
    let (url, name) = match kind.dialect() {
        Dialect::Pg => {
            let admin = env().var("PG_ADMIN_URL");
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .unwrap_or_else(|e| fail_service("cannot connect to PostgreSQL", admin, e));
            let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
            // The template must have no other session; a test reading it (they are read-only) may hold
            // one for a moment.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                {
                    Ok(_) => break,
                    Err(e)
                        if e.to_string().contains("being accessed by other users")
                            && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("{sql} on {}: {e}", redact(admin)),
                }
            }
            let _ = conn.close().await;
            (with_database(template_url, &name), name)
        }
        Dialect::My => {
            copy_mysql_schema(template_url, &template, &name).await;
            (with_database(template_url, &name), name)
        }
        Dialect::Lite => {
            let src = sqlite_path(template_url);
            let dir = env()
                .vars
                .get("SQLITE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    src.parent()
                        .map(PathBuf::from)
                        .unwrap_or_else(std::env::temp_dir)
                });
            let dst = dir.join(format!("{name}.db"));
            tokio::fs::copy(&src, &dst).await.unwrap_or_else(|e| {
                panic!(
                    "cannot copy the SQLite template {} to {}: {e}: run tests/env/up (make test does)",
                    src.display(),
                    dst.display()
                )
            });
            (
                format!("sqlite://{}", dst.display()),
                dst.display().to_string(),
            )
        }
    };
    TestDb {
        kind,
        sqlalchemy_url: sqlalchemy_form(kind, &url),
        url,
        name,
        schema: (kind == DbKind::Airflow3PostgresSchema)
            .then(|| env().var("AIRFLOW3_PG_SCHEMA").to_owned()),
        pool: OnceCell::new(),
        compat: None,
    }
}

/// MariaDB has no `CREATE DATABASE … TEMPLATE`: recreate every table from `SHOW CREATE TABLE` (foreign
/// keys included, checks off while tables appear in any order) and copy the rows the migration seeded.
async fn copy_mysql_schema(template_url: &str, template: &str, name: &str) {
    let admin = env()
        .vars
        .get("MYSQL_ADMIN_URL")
        .cloned()
        .unwrap_or_else(|| with_database(template_url, "mysql"));
    let mut conn = sqlx::MySqlConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| fail_service("cannot connect to MariaDB", &admin, e));
    let run = |sql: String| sqlx::raw_sql(AssertSqlSafe(sql));
    let (cs, coll): (String, String) = sqlx::query_as(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME = ?",
    )
    .bind(template)
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("MariaDB template database {template} is missing: {e}: run tests/env/up"));
    run(format!(
        "CREATE DATABASE `{name}` CHARACTER SET {cs} COLLATE {coll}"
    ))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot create MariaDB database {name}: {e}"));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .bind(template)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot list the tables of MariaDB {template}: {e}"));
    assert!(
        !tables.is_empty(),
        "MariaDB template {template} has no tables: run tests/env/up"
    );
    run("SET SESSION FOREIGN_KEY_CHECKS = 0".to_owned())
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("SET FOREIGN_KEY_CHECKS: {e}"));
    let mut script = format!("USE `{name}`;\n");
    for t in &tables {
        let row = run(format!("SHOW CREATE TABLE `{template}`.`{t}`"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("SHOW CREATE TABLE {template}.{t}: {e}"));
        let ddl: String = row.try_get::<String, _>(1).unwrap_or_else(|_| {
            String::from_utf8_lossy(&row.try_get::<Vec<u8>, _>(1).unwrap_or_default()).into_owned()
        });
        script.push_str(&ddl);
        script.push_str(";\n");
    }
    for t in &tables {
        script.push_str(&format!(
            "INSERT INTO `{name}`.`{t}` SELECT * FROM `{template}`.`{t}`;\n"
        ));
    }
    run(script)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot copy MariaDB schema {template} to {name}: {e}"));
    let _ = conn.close().await;
}

/// A query argument; timestamps and UUIDs are rendered per dialect.
enum Arg {
    Str(String),
    OptStr(Option<String>),
    Int(i64),
    Bool(bool),
    /// Unix seconds (UTC).
    Ts(i64),
    /// A UUID in 8-4-4-4-12 form.
    Uuid(String),
}

/// Placeholders: `?` for a plain value, `?ts`, `?uuid`, `?json` for values PostgreSQL must cast.
fn render_sql(d: Dialect, sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut n = 0;
    let mut rest = sql;
    while let Some(i) = rest.find('?') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let word_len = rest
            .find(|c: char| !c.is_ascii_lowercase())
            .unwrap_or(rest.len());
        let word = &rest[..word_len];
        let cast = match word {
            "ts" => Some("TIMESTAMPTZ"),
            "uuid" => Some("UUID"),
            "json" => Some("JSON"),
            _ => None,
        };
        if cast.is_some() {
            rest = &rest[word_len..];
        }
        n += 1;
        match (d, cast) {
            (Dialect::Pg, Some(c)) => out.push_str(&format!("CAST(${n} AS {c})")),
            (Dialect::Pg, None) => out.push_str(&format!("${n}")),
            _ => out.push('?'),
        }
    }
    out.push_str(rest);
    out
}

/// Airflow's timestamp text: `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), with `+00:00` for PostgreSQL.
fn ts_text(d: Dialect, secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let base = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.000000",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    match d {
        Dialect::Pg => format!("{base}+00:00"),
        _ => base,
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `dag_run.run_type` from the run_id's prefix, as Airflow names runs.
fn run_type_of(run_id: &str, airflow2: bool) -> &'static str {
    let prefix = run_id.split("__").next().unwrap_or("");
    match prefix {
        "scheduled" => "scheduled",
        "backfill" => "backfill",
        "asset_triggered" if !airflow2 => "asset_triggered",
        "dataset_triggered" if airflow2 => "dataset_triggered",
        _ => "manual",
    }
}

/// States in which Airflow has set `start_date`.
fn has_started(state: Option<&str>) -> bool {
    !matches!(
        state,
        None | Some("scheduled") | Some("queued") | Some("removed") | Some("upstream_failed")
    )
}

const BUNDLE: &str = "dags-folder";
/// 2024-01-01T00:00:00Z: logical dates start here, one second apart per run of a DAG.
const LOGICAL_BASE: i64 = 1_704_067_200;

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Str(s) | Arg::Uuid(s) => q.bind(s),
                Arg::OptStr(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
                Arg::Bool(b) => q.bind(b),
                Arg::Ts(_) => unreachable!("rendered before binding"),
            };
        }
        q
    }};
}

impl TestDb {
    fn dialect(&self) -> Dialect {
        self.kind.dialect()
    }

    /// The same PostgreSQL database, reading and writing schema `schema` (`public`: the other
    /// Airflow of an [`DbKind::Airflow3PostgresSchema`] database).
    pub fn in_schema(&self, schema: &str) -> TestDb {
        assert_eq!(self.dialect(), Dialect::Pg, "schemas are PostgreSQL's");
        TestDb {
            kind: self.kind,
            url: self.url.clone(),
            sqlalchemy_url: self.sqlalchemy_url.clone(),
            name: self.name.clone(),
            schema: Some(schema.to_owned()),
            pool: OnceCell::new(),
            compat: self.compat.clone(),
        }
    }

    /// Drops this database (PostgreSQL and MariaDB; a SQLite file is left to its directory's
    /// cleanup), for the benchmarks whose tables hold gigabytes. Reports, never panics.
    pub async fn drop_database(self) {
        let (kind, name) = (self.kind, self.name.clone());
        drop(self);
        let res = match kind {
            DbKind::Airflow3MySql | DbKind::CompatMariaDb => {
                let sql = format!("DROP DATABASE `{name}`");
                match sqlx::MySqlConnection::connect(env().var("MYSQL_ADMIN_URL")).await {
                    Ok(mut c) => sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                }
            }
            DbKind::Airflow3Sqlite => Ok(()),
            _ => {
                let sql = format!("DROP DATABASE \"{name}\" WITH (FORCE)");
                match sqlx::PgConnection::connect(env().var("PG_ADMIN_URL")).await {
                    Ok(mut c) => sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                }
            }
        };
        match res {
            Ok(()) => println!("dropped database {name}"),
            Err(e) => eprintln!("cannot drop database {name}: {e} (drop it by hand)"),
        }
    }

    /// The URL of this database through the environment's PgBouncer (transaction pooling).
    pub fn pgbouncer_url(&self) -> String {
        assert_eq!(self.dialect(), Dialect::Pg, "PgBouncer is PostgreSQL's");
        with_database(env().var("AIRFLOW3_PGBOUNCER_URL"), &self.name)
    }

    /// Runs `sql` (one or more statements, no parameters) as the test's own admin: for setups the
    /// Airflow helpers do not cover (dropping a column, bulk rows, ANALYZE).
    pub async fn raw(&self, sql: &str) {
        let q = AssertSqlSafe(sql.to_owned());
        let res = match self.pool().await {
            Pool::Pg(p) => sqlx::raw_sql(q).execute(p).await.map(drop),
            Pool::My(p) => sqlx::raw_sql(q).execute(p).await.map(drop),
            Pool::Lite(p) => sqlx::raw_sql(q).execute(p).await.map(drop),
        };
        res.unwrap_or_else(|e| panic!("{sql} on {:?} {}: {e}", self.kind, redact(&self.url)))
    }

    /// Copies the row of `seed` (already inserted) once per `i` in `range`, in one statement, each
    /// copy with task_id `{prefix}{i}`, `try_number` 1 and `state` (SQL text, may use `i`), every
    /// other column as in `seed` (3.x: a new `id`), then refreshes the table's statistics. For big
    /// tables (tests of query plans, the benchmark).
    pub async fn clone_ti(
        &self,
        seed: &TiSpec,
        prefix: &str,
        range: std::ops::RangeInclusive<u64>,
        state_sql: &str,
    ) {
        let task = match self.dialect() {
            Dialect::My => format!("CONCAT('{prefix}', i)"),
            _ => format!("'{prefix}' || i"),
        };
        let set = [
            ("task_id", task),
            ("state", state_sql.to_owned()),
            ("try_number", "1".to_owned()),
        ];
        self.clone_ti_with(seed, &set, range, false).await;
    }

    /// Copies the row of `seed` once per `i` in `range`, each copy with the columns of `set`
    /// computed by their SQL expressions (which may use `i`), every other column as in `seed` (3.x:
    /// a new `id`), then refreshes the statistics. With `no_fk`, foreign keys are not checked for
    /// the insert (PostgreSQL `session_replication_role = replica`, MariaDB `foreign_key_checks =
    /// 0`): copies with run_ids that have no `dag_run` row, for benchmarks of task_instance reads.
    pub async fn clone_ti_with(
        &self,
        seed: &TiSpec,
        set: &[(&str, String)],
        range: std::ops::RangeInclusive<u64>,
        no_fk: bool,
    ) {
        let seed_where = format!(
            "t.dag_id = '{}' AND t.task_id = '{}' AND t.run_id = '{}' AND t.map_index = {}",
            seed.dag_id.replace('\'', "''"),
            seed.task_id.replace('\'', "''"),
            seed.run_id.replace('\'', "''"),
            seed.map_index
        );
        self.clone_rows("task_instance", &seed_where, set, range, no_fk)
            .await;
    }

    /// Copies `seed`'s `dag_run` row once per `i` in `range`, each copy with the columns of `set`
    /// computed by their SQL expressions (which may use `i`; the run_id must differ), its
    /// `logical_date` NULL (unique per DAG where set) and a new `id`; then refreshes the
    /// statistics. For benchmarks that need many runs of one DAG.
    pub async fn clone_runs(
        &self,
        seed: &TiSpec,
        set: &[(&str, String)],
        range: std::ops::RangeInclusive<u64>,
    ) {
        let seed_where = format!(
            "t.dag_id = '{}' AND t.run_id = '{}'",
            seed.dag_id.replace('\'', "''"),
            seed.run_id.replace('\'', "''"),
        );
        let mut set = set.to_vec();
        if !set.iter().any(|(k, _)| *k == "logical_date") {
            set.push(("logical_date", "NULL".to_owned()));
        }
        self.clone_rows("dag_run", &seed_where, &set, range, false)
            .await;
    }

    /// [`TestDb::clone_ti_with`] for any table: `seed_where` selects the seed row `t`. An `id`
    /// column gets a new uuid on `task_instance` and its default (a sequence) elsewhere.
    async fn clone_rows(
        &self,
        table: &str,
        seed_where: &str,
        set: &[(&str, String)],
        range: std::ops::RangeInclusive<u64>,
        no_fk: bool,
    ) {
        let (lo, hi) = (*range.start(), *range.end());
        let d = self.dialect();
        let cols_sql = match d {
            Dialect::Pg => format!(
                "SELECT column_name::text FROM information_schema.columns \
                            WHERE table_name = '{table}' AND table_schema = current_schema() \
                            ORDER BY ordinal_position"
            ),
            Dialect::My => format!(
                "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
                            WHERE TABLE_NAME = '{table}' AND TABLE_SCHEMA = DATABASE() \
                            ORDER BY ORDINAL_POSITION"
            ),
            Dialect::Lite => {
                format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
            }
        };
        let q = AssertSqlSafe(cols_sql.clone());
        let cols: Vec<String> = match self.pool().await {
            Pool::Pg(p) => sqlx::query_scalar(q).fetch_all(p).await,
            Pool::My(p) => sqlx::query_scalar(q).fetch_all(p).await,
            Pool::Lite(p) => sqlx::query_scalar(q).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{cols_sql}: {e}"));
        let quote = |c: &str| match d {
            Dialect::My => format!("`{c}`"),
            _ => format!("\"{c}\""),
        };
        // Elsewhere `id` is a sequence's: left to its default.
        let cols: Vec<String> = cols
            .into_iter()
            .filter(|c| table == "task_instance" || c != "id")
            .collect();
        let select: Vec<String> = cols
            .iter()
            .map(|c| match c.as_str() {
                "id" => match d {
                    Dialect::Pg => "gen_random_uuid()".to_owned(),
                    Dialect::My => "UUID()".to_owned(),
                    Dialect::Lite => "lower(hex(randomblob(16)))".to_owned(),
                },
                other => match set.iter().find(|(c, _)| *c == other) {
                    Some((_, expr)) => expr.clone(),
                    None => format!("t.{}", quote(other)),
                },
            })
            .collect();
        let cols_list: Vec<String> = cols.iter().map(|c| quote(c)).collect();
        let (with, from) = match d {
            Dialect::Pg => (
                String::new(),
                format!("generate_series({lo}, {hi}) AS g(i)"),
            ),
            Dialect::My => (
                String::new(),
                format!("(SELECT seq AS i FROM seq_{lo}_to_{hi}) AS g"),
            ),
            Dialect::Lite => (
                format!(
                    "WITH RECURSIVE g(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM g WHERE i < {hi}) "
                ),
                "g".to_owned(),
            ),
        };
        let sql = format!(
            "{with}INSERT INTO {table} ({}) SELECT {} FROM {table} t CROSS JOIN {from} WHERE {seed_where}",
            cols_list.join(", "),
            select.join(", "),
        );
        let sql = match (no_fk, d) {
            (true, Dialect::Pg) => format!(
                "SET session_replication_role = replica; {sql}; SET session_replication_role = DEFAULT"
            ),
            (true, Dialect::My) => {
                format!("SET foreign_key_checks = 0; {sql}; SET foreign_key_checks = 1")
            }
            _ => sql,
        };
        self.raw(&sql).await;
        let analyze = match d {
            Dialect::Pg => format!("ANALYZE {table}"),
            Dialect::My => format!("ANALYZE TABLE {table}"),
            Dialect::Lite => "ANALYZE".to_owned(),
        };
        self.raw(&analyze).await;
    }

    async fn pool(&self) -> &Pool {
        self.pool
            .get_or_init(|| async {
                let url = self.url.as_str();
                match self.dialect() {
                    Dialect::Pg => {
                        let mut opts = PgConnectOptions::from_str(&self.url).unwrap_or_else(|e| {
                            fail_service("cannot connect to the test DB", url, e)
                        });
                        if let Some(schema) = &self.schema {
                            let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
                            opts = opts.options([("search_path", quoted.as_str())]);
                        }
                        Pool::Pg(
                            PgPoolOptions::new()
                                .max_connections(2)
                                .connect_with(opts)
                                .await
                                .unwrap_or_else(|e| {
                                    fail_service("cannot connect to the test DB", url, e)
                                }),
                        )
                    }
                    Dialect::My => {
                        let opts = MySqlConnectOptions::from_str(&self.url)
                            .unwrap_or_else(|e| {
                                fail_service("cannot connect to the test DB", url, e)
                            })
                            .timezone(Some("+00:00".to_owned()));
                        Pool::My(
                            MySqlPoolOptions::new()
                                .max_connections(2)
                                .connect_with(opts)
                                .await
                                .unwrap_or_else(|e| {
                                    fail_service("cannot connect to the test DB", url, e)
                                }),
                        )
                    }
                    Dialect::Lite => {
                        let opts = SqliteConnectOptions::from_str(&self.url)
                            .unwrap_or_else(|e| {
                                fail_service("cannot connect to the test DB", url, e)
                            })
                            .foreign_keys(true);
                        Pool::Lite(
                            SqlitePoolOptions::new()
                                .max_connections(1)
                                .connect_with(opts)
                                .await
                                .unwrap_or_else(|e| {
                                    fail_service("cannot connect to the test DB", url, e)
                                }),
                        )
                    }
                }
            })
            .await
    }

    fn render_args(&self, args: Vec<Arg>) -> Vec<Arg> {
        let d = self.dialect();
        args.into_iter()
            .map(|a| match a {
                Arg::Ts(s) => Arg::Str(ts_text(d, s)),
                // SQLAlchemy's Uuid on SQLite is CHAR(32) hex; PostgreSQL and MariaDB have a uuid type.
                Arg::Uuid(u) if d == Dialect::Lite => Arg::Str(u.replace('-', "")),
                other => other,
            })
            .collect()
    }

    /// Runs one statement; returns the rows affected.
    async fn exec(&self, sql: &str, args: Vec<Arg>) -> u64 {
        let rendered = render_sql(self.dialect(), sql);
        let args = self.render_args(args);
        let q = AssertSqlSafe(rendered.clone());
        let res = match self.pool().await {
            Pool::Pg(p) => bind_args!(sqlx::query(q), args)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::My(p) => bind_args!(sqlx::query(q), args)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Lite(p) => bind_args!(sqlx::query(q), args)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        res.unwrap_or_else(|e| panic!("{rendered} on {:?} {}: {e}", self.kind, redact(&self.url)))
    }

    /// Runs a `SELECT COUNT(*) …`.
    async fn count(&self, sql: &str, args: Vec<Arg>) -> i64 {
        let rendered = render_sql(self.dialect(), sql);
        let args = self.render_args(args);
        let q = AssertSqlSafe(rendered.clone());
        let res: Result<i64, sqlx::Error> = match self.pool().await {
            Pool::Pg(p) => bind_args!(sqlx::query(q), args)
                .fetch_one(p)
                .await
                .and_then(|r| r.try_get(0)),
            Pool::My(p) => bind_args!(sqlx::query(q), args)
                .fetch_one(p)
                .await
                .and_then(|r| r.try_get(0)),
            Pool::Lite(p) => bind_args!(sqlx::query(q), args)
                .fetch_one(p)
                .await
                .and_then(|r| r.try_get(0)),
        };
        res.unwrap_or_else(|e| panic!("{rendered} on {:?} {}: {e}", self.kind, redact(&self.url)))
    }

    async fn exists(&self, sql: &str, args: Vec<Arg>) -> bool {
        self.count(sql, args).await > 0
    }

    /// Inserts the task instance `ti`, first creating what its foreign keys and NOT NULL columns need
    /// (3.x: dag_bundle, dag, dag_version, dag_run; 2.10: dag, dag_run), each only when absent. A second
    /// insert of the same (dag_id, task_id, run_id, map_index) fails, as in Airflow.
    pub async fn insert_ti(&self, ti: &TiSpec) {
        if let Some(c) = self.compat.clone() {
            return self.insert_ti_compat(&c, ti).await;
        }
        let a2 = self.kind.is_airflow2();
        let now = now_secs();
        let dag = ti.dag_id.clone();
        let version_id = stable_uuid(&["dag_version", &dag]);
        let s = |v: &str| Arg::Str(v.to_owned());

        // dag (3.x: in a dag bundle; its first dag_version)
        if !a2
            && !self
                .exists(
                    "SELECT COUNT(*) FROM dag_bundle WHERE name = ?",
                    vec![s(BUNDLE)],
                )
                .await
        {
            self.exec(
                "INSERT INTO dag_bundle (name, active) VALUES (?, ?)",
                vec![s(BUNDLE), Arg::Bool(true)],
            )
            .await;
        }
        if !self
            .exists("SELECT COUNT(*) FROM dag WHERE dag_id = ?", vec![s(&dag)])
            .await
        {
            let fileloc = format!("/opt/airflow/dags/{dag}.py");
            if a2 {
                self.exec(
                    "INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, fileloc, owners, \
                     max_active_tasks, max_active_runs, max_consecutive_failed_dag_runs, \
                     has_task_concurrency_limits, last_parsed_time) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?ts)",
                    vec![
                        s(&dag),
                        Arg::Bool(false),
                        Arg::Bool(false),
                        Arg::Bool(true),
                        Arg::Str(fileloc),
                        s("airflow"),
                        Arg::Int(16),
                        Arg::Int(16),
                        Arg::Int(0),
                        Arg::Bool(false),
                        Arg::Ts(now),
                    ],
                )
                .await;
            } else {
                self.exec(
                    "INSERT INTO dag (dag_id, is_paused, is_stale, bundle_name, fileloc, relative_fileloc, \
                     owners, timetable_type, partition_mapper_info, max_active_tasks, max_active_runs, \
                     max_consecutive_failed_dag_runs, has_task_concurrency_limits, last_parsed_time) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?json, ?, ?, ?, ?, ?ts)",
                    vec![
                        s(&dag),
                        Arg::Bool(false),
                        Arg::Bool(false),
                        s(BUNDLE),
                        Arg::Str(fileloc),
                        Arg::Str(format!("{dag}.py")),
                        s("airflow"),
                        s("airflow.timetables.simple.NullTimetable"),
                        s("[]"),
                        Arg::Int(16),
                        Arg::Int(16),
                        Arg::Int(0),
                        Arg::Bool(false),
                        Arg::Ts(now),
                    ],
                )
                .await;
            }
        }
        if !a2
            && !self
                .exists(
                    "SELECT COUNT(*) FROM dag_version WHERE id = ?uuid",
                    vec![Arg::Uuid(version_id.clone())],
                )
                .await
        {
            self.exec(
                "INSERT INTO dag_version (id, version_number, dag_id, bundle_name, created_at, last_updated) \
                 VALUES (?uuid, ?, ?, ?, ?ts, ?ts)",
                vec![
                    Arg::Uuid(version_id.clone()),
                    Arg::Int(1),
                    s(&dag),
                    s(BUNDLE),
                    Arg::Ts(now),
                    Arg::Ts(now),
                ],
            )
            .await;
        }

        // dag_run: logical dates one second apart per DAG (2.10's execution_date is NOT NULL and unique
        // per DAG).
        if !self
            .exists(
                "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND run_id = ?",
                vec![s(&dag), s(&ti.run_id)],
            )
            .await
        {
            let n = self
                .count(
                    "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?",
                    vec![s(&dag)],
                )
                .await;
            let logical = LOGICAL_BASE + n;
            let run_type = run_type_of(&ti.run_id, a2);
            if a2 {
                self.exec(
                    "INSERT INTO dag_run (dag_id, run_id, run_type, state, execution_date, \
                     data_interval_start, data_interval_end, queued_at, start_date, external_trigger, \
                     log_template_id, updated_at) \
                     VALUES (?, ?, ?, ?, ?ts, ?ts, ?ts, ?ts, ?ts, ?, \
                     (SELECT MAX(id) FROM log_template), ?ts)",
                    vec![
                        s(&dag),
                        s(&ti.run_id),
                        s(run_type),
                        s("running"),
                        Arg::Ts(logical),
                        Arg::Ts(logical),
                        Arg::Ts(logical),
                        Arg::Ts(now),
                        Arg::Ts(now),
                        Arg::Bool(run_type == "manual"),
                        Arg::Ts(now),
                    ],
                )
                .await;
            } else {
                self.exec(
                    "INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, run_after, \
                     data_interval_start, data_interval_end, queued_at, start_date, log_template_id, \
                     created_dag_version_id, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?ts, ?ts, ?ts, ?ts, ?ts, ?ts, \
                     (SELECT MAX(id) FROM log_template), ?uuid, ?ts, ?ts)",
                    vec![
                        s(&dag),
                        s(&ti.run_id),
                        s(run_type),
                        s("running"),
                        Arg::Ts(logical),
                        Arg::Ts(logical),
                        Arg::Ts(logical),
                        Arg::Ts(logical),
                        Arg::Ts(now),
                        Arg::Ts(now),
                        Arg::Uuid(version_id.clone()),
                        Arg::Ts(now),
                        Arg::Ts(now),
                    ],
                )
                .await;
            }
        }

        // task_instance
        let mut cols = vec![
            "task_id",
            "dag_id",
            "run_id",
            "map_index",
            "try_number",
            "max_tries",
            "state",
            "pool",
            "pool_slots",
            "queue",
            "priority_weight",
            "operator",
            "custom_operator_name",
            "hostname",
            "unixname",
            "updated_at",
        ];
        let mut marks = vec![
            "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?ts",
        ];
        let mut args = vec![
            s(&ti.task_id),
            s(&dag),
            s(&ti.run_id),
            Arg::Int(ti.map_index),
            Arg::Int(ti.try_number),
            Arg::Int(0),
            Arg::OptStr(ti.state.clone()),
            s("default_pool"),
            Arg::Int(1),
            s("default"),
            Arg::Int(1),
            s("KubernetesPodOperator"),
            s("KubernetesPodOperator"),
            s("airflow-worker-0"),
            s("airflow"),
            Arg::Ts(now),
        ];
        if !a2 {
            let ti_id = stable_uuid(&[
                "task_instance",
                &dag,
                &ti.task_id,
                &ti.run_id,
                &ti.map_index.to_string(),
            ]);
            cols.extend(["id", "dag_version_id", "scheduled_dttm"]);
            marks.extend(["?uuid", "?uuid", "?ts"]);
            args.extend([Arg::Uuid(ti_id), Arg::Uuid(version_id), Arg::Ts(now)]);
        }
        if ti.state.as_deref() != Some("scheduled") && ti.state.is_some() {
            cols.push("queued_dttm");
            marks.push("?ts");
            args.push(Arg::Ts(now));
        }
        if has_started(ti.state.as_deref()) {
            cols.push("start_date");
            marks.push("?ts");
            args.push(Arg::Ts(now));
        }
        let sql = format!(
            "INSERT INTO task_instance ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        );
        self.exec(&sql, args).await;
    }

    /// Sets `state` and `try_number` of the row (dag_id, task_id, run_id, map_index) of `ti`; panics when
    /// there is no such row.
    pub async fn update_ti(&self, ti: &TiSpec) {
        // Every schema of tests/compat has task_instance.updated_at (2.3 on); the check keeps it so.
        if let Some(c) = &self.compat {
            assert!(
                c.has("task_instance", "updated_at"),
                "Airflow {}: task_instance has no updated_at",
                c.release
            );
        }
        let n = self
            .exec(
                "UPDATE task_instance SET state = ?, try_number = ?, updated_at = ?ts \
                 WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ?",
                vec![
                    Arg::OptStr(ti.state.clone()),
                    Arg::Int(ti.try_number),
                    Arg::Ts(now_secs()),
                    Arg::Str(ti.dag_id.clone()),
                    Arg::Str(ti.task_id.clone()),
                    Arg::Str(ti.run_id.clone()),
                    Arg::Int(ti.map_index),
                ],
            )
            .await;
        // MariaDB counts changed rows only; an UPDATE to the same values affects 0 rows there.
        if n == 0 {
            assert!(
                self.exists(
                    "SELECT COUNT(*) FROM task_instance \
                     WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ?",
                    vec![
                        Arg::Str(ti.dag_id.clone()),
                        Arg::Str(ti.task_id.clone()),
                        Arg::Str(ti.run_id.clone()),
                        Arg::Int(ti.map_index),
                    ],
                )
                .await,
                "update_ti: no task_instance row for {ti:?} in {:?}",
                self.kind
            );
        }
    }

    /// Deletes the row (dag_id, task_id, run_id, map_index) of `ti` (its dag_run stays).
    pub async fn delete_ti(&self, ti: &TiSpec) {
        self.exec(
            "DELETE FROM task_instance WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ?",
            vec![
                Arg::Str(ti.dag_id.clone()),
                Arg::Str(ti.task_id.clone()),
                Arg::Str(ti.run_id.clone()),
                Arg::Int(ti.map_index),
            ],
        )
        .await;
    }

    /// Every task instance, ordered by (dag_id, task_id, run_id, map_index); a NULL `try_number`
    /// (2.10) reads as 0.
    pub async fn ti_rows(&self) -> Vec<TiSpec> {
        const SQL: &str = "SELECT dag_id, task_id, run_id, map_index, try_number, state FROM task_instance \
                           ORDER BY dag_id, task_id, run_id, map_index";
        // map_index and try_number are INTEGER: i32 on PostgreSQL and MariaDB, i64 on SQLite.
        macro_rules! read {
            ($r:expr, $int:ty) => {{
                let r = $r;
                (|| -> Result<TiSpec, sqlx::Error> {
                    Ok(TiSpec {
                        dag_id: r.try_get("dag_id")?,
                        task_id: r.try_get("task_id")?,
                        run_id: r.try_get("run_id")?,
                        map_index: i64::from(r.try_get::<$int, _>("map_index")?),
                        try_number: r
                            .try_get::<Option<$int>, _>("try_number")?
                            .map(i64::from)
                            .unwrap_or(0),
                        state: r.try_get("state")?,
                    })
                })()
            }};
        }
        let res: Result<Vec<TiSpec>, sqlx::Error> = match self.pool().await {
            Pool::Pg(p) => sqlx::query(SQL)
                .fetch_all(p)
                .await
                .and_then(|rows| rows.iter().map(|r| read!(r, i32)).collect()),
            Pool::My(p) => sqlx::query(SQL)
                .fetch_all(p)
                .await
                .and_then(|rows| rows.iter().map(|r| read!(r, i32)).collect()),
            Pool::Lite(p) => sqlx::query(SQL)
                .fetch_all(p)
                .await
                .and_then(|rows| rows.iter().map(|r| read!(r, i64)).collect()),
        };
        res.unwrap_or_else(|e| panic!("{SQL} on {:?} {}: {e}", self.kind, redact(&self.url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_per_dialect() {
        let sql = "INSERT INTO t (a, b, c) VALUES (?, ?ts, ?uuid) WHERE d = ?json AND e = ?";
        assert_eq!(
            render_sql(Dialect::Pg, sql),
            "INSERT INTO t (a, b, c) VALUES ($1, CAST($2 AS TIMESTAMPTZ), CAST($3 AS UUID)) \
             WHERE d = CAST($4 AS JSON) AND e = $5"
        );
        assert_eq!(
            render_sql(Dialect::My, sql),
            "INSERT INTO t (a, b, c) VALUES (?, ?, ?) WHERE d = ? AND e = ?"
        );
    }

    #[test]
    fn timestamps_are_airflow_text() {
        assert_eq!(
            ts_text(Dialect::Lite, LOGICAL_BASE),
            "2024-01-01 00:00:00.000000"
        );
        assert_eq!(
            ts_text(Dialect::Pg, 951_782_400 + 86_399),
            "2000-02-29 23:59:59.000000+00:00"
        );
        assert_eq!(ts_text(Dialect::My, 0), "1970-01-01 00:00:00.000000");
    }

    #[test]
    fn urls() {
        let u = "postgres://airflow:secret@127.0.0.1:5432/airflow3_template";
        assert_eq!(database_of(u), "airflow3_template");
        assert_eq!(
            with_database(u, "t_x"),
            "postgres://airflow:secret@127.0.0.1:5432/t_x"
        );
        assert_eq!(
            redact(u),
            "postgres://airflow:***@127.0.0.1:5432/airflow3_template"
        );
        assert_eq!(
            sqlalchemy_form(DbKind::Airflow3Postgres, u),
            "postgresql+psycopg2://airflow:secret@127.0.0.1:5432/airflow3_template"
        );
        assert_eq!(
            sqlalchemy_form(DbKind::Airflow3MySql, "mysql://a:b@h:1/d"),
            "mysql+mysqldb://a:b@h:1/d"
        );
        assert_eq!(
            sqlalchemy_form(DbKind::Airflow3Sqlite, "sqlite:///tmp/x/t.db"),
            "sqlite:////tmp/x/t.db"
        );
    }

    #[test]
    fn run_types() {
        assert_eq!(
            run_type_of("scheduled__2024-01-01T00:00:00+00:00", false),
            "scheduled"
        );
        assert_eq!(run_type_of("manual__x", true), "manual");
        assert_eq!(
            run_type_of("dataset_triggered__x", true),
            "dataset_triggered"
        );
        assert_eq!(run_type_of("whatever", false), "manual");
    }
}
