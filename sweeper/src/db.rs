//! The TI source: Airflow's metadata DB, read-only.
//!
//! * [`DbUrl`] accepts sqlx's URLs (`postgres://`, `mysql://`, `sqlite://`) and Airflow's own
//!   SQLAlchemy form (`postgresql+psycopg2://…`, `mysql+mysqldb://…`, `sqlite:////abs/path.db`), so
//!   the Secret Airflow already uses works as it is. Its password never appears in a message.
//! * [`Db::active_tis`] streams one query — every TI whose state is NULL or not terminal, with no
//!   filter on the operator — into an [`ActiveMap`] keyed by the label-form [`TiKey`].
//! * [`Db::reread`] is the batched re-read of the delete candidates' rows, right before deleting.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::{Connection, Executor, Row};
use tikey::TiKey;

use crate::decide::{ActiveMap, ActiveTi, KnownDags, insert_active};
use crate::error::{Error, Result};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one query (the active-TI read or the re-read) may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The terminal states (DESIGN.md §5): a deny-list, so a state we don't know keeps its pods.
pub const TERMINAL_STATES: [&str; 5] =
    ["success", "failed", "skipped", "upstream_failed", "removed"];

/// Airflow's env var for the metadata DB (2.3+), then the pre-2.3 one.
pub const AIRFLOW_CONN_ENV: [&str; 2] = [
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
];

/// Above this many distinct values a column is not filtered on in the re-read.
const REREAD_MAX_IN: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    MySql,
    Sqlite,
}

/// A parsed DB URL. `Debug` and `Display` show it without the password.
#[derive(Clone)]
pub struct DbUrl {
    pub kind: DbKind,
    /// What sqlx connects to: a URL for PostgreSQL and MySQL, a file path for SQLite.
    target: String,
    /// For messages: the URL without its password.
    display: String,
    /// The password as written and percent-decoded, to scrub from driver messages.
    secrets: Vec<String>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbUrl")
            .field("kind", &self.kind)
            .field("url", &self.display)
            .finish()
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl DbUrl {
    /// The URL from `--db-url`, else from Airflow's own environment variable.
    pub fn resolve(flag: Option<&str>) -> Result<DbUrl> {
        if let Some(url) = flag.filter(|u| !u.is_empty()) {
            return DbUrl::parse(url);
        }
        for var in AIRFLOW_CONN_ENV {
            if let Ok(url) = std::env::var(var)
                && !url.is_empty()
            {
                return DbUrl::parse(&url);
            }
        }
        Err(Error::NoDbUrl)
    }

    pub fn parse(url: &str) -> Result<DbUrl> {
        let (display, secrets) = redact_url(url);
        let bad = |reason: &str| Error::DbUrl {
            url: display.clone(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(bad(
                "no scheme (expected postgres://, mysql:// or sqlite://)",
            ));
        };
        // SQLAlchemy's `dialect+driver`: the driver does not matter to us.
        let dialect = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        let (kind, target) = match dialect.as_str() {
            "postgres" | "postgresql" => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad("expected postgres://"))?;
                (DbKind::Postgres, format!("postgres://{rest}"))
            }
            "mysql" | "mariadb" => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad("expected mysql://"))?;
                (DbKind::MySql, format!("mysql://{}", mysql_params(rest)))
            }
            "sqlite" => (
                DbKind::Sqlite,
                sqlite_path(rest).ok_or_else(|| bad("no file path"))?,
            ),
            _ => {
                return Err(bad(
                    "unsupported database (the sweeper reads PostgreSQL, MySQL/MariaDB and SQLite)",
                ));
            }
        };
        Ok(DbUrl {
            kind,
            target,
            display,
            secrets,
        })
    }

    /// `msg` with every occurrence of the password replaced.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        for s in &self.secrets {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// The SQLite file path of `sqlite:<rest>`. SQLAlchemy writes an absolute path with four slashes
/// (`sqlite:////abs/airflow.db`, the only form Airflow accepts); sqlx writes `sqlite:///abs` or
/// `sqlite://rel`, and `sqlite:path`. Query parameters are dropped: the file is always opened
/// read-only.
fn sqlite_path(rest: &str) -> Option<String> {
    let rest = rest.split('?').next().unwrap_or(rest);
    let path = match rest.strip_prefix("//") {
        Some(p) if p.starts_with("//") => &p[1..],
        Some(p) => p,
        None => rest,
    };
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Keeps the MySQL query parameters sqlx understands, translating MySQLdb/PyMySQL spellings
/// (`ssl_mode`, `unix_socket`); drops the rest (`charset=utf8` and the like: the sweeper picks its
/// own connection charset).
fn mysql_params(rest: &str) -> String {
    let Some((base, query)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let kept: Vec<String> = query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = match k {
                "ssl_mode" | "sslmode" | "ssl-mode" => "ssl-mode",
                "ssl_ca" | "sslca" | "ssl-ca" => "ssl-ca",
                "ssl_cert" | "sslcert" | "ssl-cert" => "ssl-cert",
                "ssl_key" | "sslkey" | "ssl-key" => "ssl-key",
                "unix_socket" | "socket" => "socket",
                _ => return None,
            };
            Some(format!("{k}={v}"))
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// What messages show of `url`, and the strings scrubbed from driver messages (see [`DbUrl`]).
pub fn redacted(url: &str) -> (String, Vec<String>) {
    redact_url(url)
}

/// The URL with the password cut out, and every string that may be the password (as written and
/// percent-decoded), longest first, to scrub from driver messages.
///
/// Whatever the input — a URL, a malformed one (`postgresql:/u:pw@h/db`, `u:pw@h/db`), a libpq
/// `key=value` string, a password holding `@ : / ? # &` unencoded — the display never holds the
/// password: what cannot be redacted with certainty is not shown at all.
fn redact_url(url: &str) -> (String, Vec<String>) {
    let mut secrets = secret_candidates(url);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let display = match url.find("://") {
        Some(idx) if is_scheme(&url[..idx]) => redact_well_formed(url, idx),
        // `sqlite:relative.db`: a path, nothing secret in it.
        None if is_plain_sqlite(url) => url.to_owned(),
        _ => not_shown(url),
    };
    // The last guard: a display that still holds any candidate is not shown.
    if secrets
        .iter()
        .any(|s| !s.is_empty() && display.contains(s.as_str()))
    {
        return (not_shown(url), secrets);
    }
    (display, secrets)
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.` (SQLAlchemy's `dialect+driver`).
fn is_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.'))
}

/// `sqlite:` followed by a path with no `@`, `:` or `=` in it.
fn is_plain_sqlite(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite:"))
        && !url[7..].contains(['@', ':', '='])
}

/// What is shown of an input that cannot be shown: its dialect when it starts with a known one.
fn not_shown(url: &str) -> String {
    let head = url.split([':', '/']).next().unwrap_or_default();
    let dialect = head
        .split('+')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let known = matches!(
        dialect.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    ) && head
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_');
    if known {
        format!("{head}://… (malformed URL, not shown: it may hold a password)")
    } else {
        "(a connection string that may hold a password, not shown)".to_owned()
    }
}

/// Every substring that may be the password: after `user:` up to the first and up to the last `@`
/// (SQLAlchemy stops at the first, a password with an unencoded `@` runs to the last); after any
/// `password=` up to the next separator and up to the end; each also percent-decoded.
fn secret_candidates(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Where the user info starts: after `scheme://`, else after a leading dialect.
    let mut bodies = Vec::new();
    match url.find("://") {
        Some(i) if is_scheme(&url[..i]) => bodies.push(&url[i + 3..]),
        _ => {
            // `scheme:/u:pw@h`, `scheme:u:pw@h` or `u:pw@h`: skip a leading dialect and slashes.
            let rest = match url.split_once(':') {
                Some((head, rest)) if is_scheme(head) && rest.contains(':') => rest,
                _ => url,
            };
            bodies.push(rest.trim_start_matches('/'));
        }
    }
    for body in bodies {
        if let Some(colon) = body.find(':') {
            let after = &body[colon + 1..];
            if let Some(first) = after.find('@') {
                out.push(after[..first].to_owned());
            }
            if let Some(last) = after.rfind('@') {
                out.push(after[..last].to_owned());
            }
        }
    }
    let lower = url.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let start = from + i + "password".len();
        let rest = url[start..].trim_start_matches([' ', '=', ':']);
        let rest = rest.trim_start_matches(['\'', '"']);
        let end = rest.find(['&', ' ', '\'', '"', ';']).unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
        out.push(rest.to_owned());
        from = start;
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode(s)).collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out
}

/// `scheme://[user[:password]@]host…`: the password cut out, and any `password=` query parameter
/// with everything after it.
fn redact_well_formed(url: &str, idx: usize) -> String {
    let (scheme, rest) = (&url[..idx + 3], &url[idx + 3..]);
    let head_end = rest.find('?').unwrap_or(rest.len());
    // SQLAlchemy reads a password up to the `@` (`user:pa?ss@host`): a `?` in it does not start
    // the query.
    let at = rest[..head_end].rfind('@').or_else(|| {
        rest.find('@').filter(|&at| {
            rest[..at]
                .split_once(':')
                .is_some_and(|(u, _)| !u.contains('/'))
        })
    });
    let Some(at) = at else {
        return strip_password_param(url);
    };
    let userinfo = &rest[..at];
    let after = &rest[at..];
    match userinfo.split_once(':') {
        Some((user, _password)) => strip_password_param(&format!("{scheme}{user}{after}")),
        None => strip_password_param(url),
    }
}

/// The URL without its `password=` query parameter, and without anything after it (an unencoded
/// `&` or `#` may be part of the password).
fn strip_password_param(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let mut kept = Vec::new();
    for kv in query.split('&') {
        if kv.to_ascii_lowercase().starts_with("password") {
            break;
        }
        kept.push(kv);
    }
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

enum Conn {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

/// A read-only connection to Airflow's metadata DB.
pub struct Db {
    url: DbUrl,
    conn: Conn,
}

/// A `WHERE` filter of the re-read: `column IN (values)`.
struct InFilter<'a> {
    column: &'static str,
    values: Vec<&'a str>,
}

impl Db {
    /// Connects read-only (PostgreSQL `default_transaction_read_only`, MySQL `SET SESSION
    /// TRANSACTION READ ONLY`, SQLite `mode=ro`).
    pub async fn connect(url: &DbUrl) -> Result<Db> {
        let fail = |e: sqlx::Error| Error::DbConnect {
            db: url.display.clone(),
            cause: url.scrub(&e.to_string()),
        };
        let connect = async {
            Ok::<_, Error>(match url.kind {
                DbKind::Postgres => {
                    let opts = sqlx::postgres::PgConnectOptions::from_str(&url.target)
                        .map_err(fail)?
                        .application_name("kpo-sweeper")
                        .options([("default_transaction_read_only", "on")]);
                    Conn::Postgres(
                        sqlx::PgConnection::connect_with(&opts)
                            .await
                            .map_err(fail)?,
                    )
                }
                DbKind::MySql => {
                    let opts =
                        sqlx::mysql::MySqlConnectOptions::from_str(&url.target).map_err(fail)?;
                    let mut c = sqlx::MySqlConnection::connect_with(&opts)
                        .await
                        .map_err(fail)?;
                    c.execute("SET SESSION TRANSACTION READ ONLY")
                        .await
                        .map_err(fail)?;
                    Conn::MySql(c)
                }
                DbKind::Sqlite => {
                    let opts = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&url.target)
                        .read_only(true)
                        .create_if_missing(false);
                    Conn::Sqlite(
                        sqlx::SqliteConnection::connect_with(&opts)
                            .await
                            .map_err(fail)?,
                    )
                }
            })
        };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| Error::DbTimeout {
                db: url.display.clone(),
                what: "connecting to",
                secs: CONNECT_TIMEOUT.as_secs(),
            })??;
        Ok(Db {
            url: url.clone(),
            conn,
        })
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// Every active TI (state NULL or not terminal), normalized into label-form keys.
    pub async fn active_tis(&mut self) -> Result<ActiveMap> {
        self.query(&[], None).await
    }

    /// The rows of `candidates` that are active now, in one query. `dag_id`, `task_id` and
    /// `run_id` are filtered on with `IN` when every candidate's label value is the raw DB value
    /// (a value `make_safe_label_value` changed always ends in `-` and 9 hex digits; any other
    /// label value is the DB value itself); otherwise that column is not filtered on. Rows are
    /// normalized and kept only when their key is a candidate.
    pub async fn reread(&mut self, candidates: &HashSet<TiKey>) -> Result<ActiveMap> {
        if candidates.is_empty() {
            return Ok(ActiveMap::new());
        }
        let mut filters = Vec::new();
        for (column, get) in [
            (
                "dag_id",
                (|k: &TiKey| k.dag_id.as_str()) as fn(&TiKey) -> &str,
            ),
            ("task_id", |k: &TiKey| k.task_id.as_str()),
            ("run_id", |k: &TiKey| k.run_id.as_str()),
        ] {
            let values: HashSet<&str> = candidates.iter().map(get).collect();
            if values.len() <= REREAD_MAX_IN && !values.iter().any(|v| looks_hashed(v)) {
                let mut values: Vec<&str> = values.into_iter().collect();
                values.sort_unstable();
                filters.push(InFilter { column, values });
            }
        }
        self.query(&filters, Some(candidates)).await
    }

    /// Every DAG the database knows (`dag.dag_id`), normalized into label form. The `dag` table
    /// holds one row per DAG ever parsed (stale ones included), so it is small.
    pub async fn known_dags(&mut self) -> Result<KnownDags> {
        const SQL: &str = "SELECT dag_id FROM dag";
        let mut dags = KnownDags::new();
        macro_rules! stream {
            ($conn:expr) => {{
                let mut rows = sqlx::query(SQL).fetch(&mut *$conn);
                while let Some(row) = rows.try_next().await? {
                    dags.insert(tikey::make_safe_label_value(row.try_get::<&str, _>(0)?));
                }
                Ok::<(), sqlx::Error>(())
            }};
        }
        let run = async {
            match &mut self.conn {
                Conn::Postgres(c) => stream!(c),
                Conn::MySql(c) => stream!(c),
                Conn::Sqlite(c) => stream!(c),
            }
        };
        match tokio::time::timeout(QUERY_TIMEOUT, run).await {
            Err(_) => Err(Error::DbTimeout {
                db: self.url.display.clone(),
                what: "reading the dag table from",
                secs: QUERY_TIMEOUT.as_secs(),
            }),
            Ok(Err(e)) => Err(self.classify(e)),
            Ok(Ok(())) => Ok(dags),
        }
    }

    async fn query(
        &mut self,
        filters: &[InFilter<'_>],
        keep: Option<&HashSet<TiKey>>,
    ) -> Result<ActiveMap> {
        let sql = active_sql(self.url.kind, filters);
        let binds: Vec<&str> = filters
            .iter()
            .flat_map(|f| f.values.iter().copied())
            .collect();
        let mut map = ActiveMap::new();
        let mut sink = |dag: &str,
                        task: &str,
                        run: &str,
                        map_index: Option<i64>,
                        try_number: Option<i64>,
                        state: Option<&str>| {
            let key = TiKey::from_db(dag, task, run, map_index.unwrap_or(-1));
            if keep.is_some_and(|k| !k.contains(&key)) {
                return;
            }
            insert_active(&mut map, key, ActiveTi::new(try_number.unwrap_or(0), state));
        };
        macro_rules! stream {
            ($conn:expr) => {{
                // Audited: the text is built from constants and placeholders only; every value
                // is a bind parameter.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for b in &binds {
                    q = q.bind(*b);
                }
                let mut rows = q.fetch(&mut *$conn);
                while let Some(row) = rows.try_next().await? {
                    sink(
                        row.try_get::<&str, _>(0)?,
                        row.try_get::<&str, _>(1)?,
                        row.try_get::<&str, _>(2)?,
                        row.try_get::<Option<i64>, _>(3)?,
                        row.try_get::<Option<i64>, _>(4)?,
                        row.try_get::<Option<&str>, _>(5)?,
                    );
                }
                Ok::<(), sqlx::Error>(())
            }};
        }
        let run = async {
            match &mut self.conn {
                Conn::Postgres(c) => stream!(c),
                Conn::MySql(c) => stream!(c),
                Conn::Sqlite(c) => stream!(c),
            }
        };
        match tokio::time::timeout(QUERY_TIMEOUT, run).await {
            Err(_) => Err(Error::DbTimeout {
                db: self.url.display.clone(),
                what: "reading task_instance from",
                secs: QUERY_TIMEOUT.as_secs(),
            }),
            Ok(Err(e)) => Err(self.classify(e)),
            Ok(Ok(())) => Ok(map),
        }
    }

    fn classify(&self, e: sqlx::Error) -> Error {
        let db = self.url.display.clone();
        let cause = self.url.scrub(&e.to_string());
        let schema = match &e {
            sqlx::Error::Database(d) => {
                let code = d.code();
                let msg = d.message();
                matches!(
                    code.as_deref(),
                    // PostgreSQL undefined_table / undefined_column; MySQL ER_NO_SUCH_TABLE /
                    // ER_BAD_FIELD_ERROR SQLSTATEs.
                    Some("42P01" | "42703" | "42S02" | "42S22")
                ) || msg.contains("no such table")
                    || msg.contains("no such column")
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) => true,
            _ => false,
        };
        if schema {
            Error::NotAirflowDb { db, cause }
        } else {
            Error::DbQuery { db, cause }
        }
    }
}

/// Whether a label value may be a normalized one (`…-` + 9 lowercase hex digits).
pub fn looks_hashed(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[b.len() - 10] == b'-'
        && b[b.len() - 9..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The active-TI query for `kind`, with `IN` filters.
fn active_sql(kind: DbKind, filters: &[InFilter<'_>]) -> String {
    let int = match kind {
        DbKind::Postgres => "BIGINT",
        DbKind::MySql => "SIGNED",
        DbKind::Sqlite => "INTEGER",
    };
    let terminal = TERMINAL_STATES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "SELECT dag_id, task_id, run_id, CAST(map_index AS {int}), CAST(try_number AS {int}), state \
         FROM task_instance WHERE (state IS NULL OR state NOT IN ({terminal}))"
    );
    let mut n = 0;
    for f in filters {
        let marks: Vec<String> = f
            .values
            .iter()
            .map(|_| {
                n += 1;
                match kind {
                    DbKind::Postgres => format!("${n}"),
                    DbKind::MySql | DbKind::Sqlite => "?".to_owned(),
                }
            })
            .collect();
        sql.push_str(&format!(" AND {} IN ({})", f.column, marks.join(", ")));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_urls_are_accepted_and_redacted() {
        let u =
            DbUrl::parse("postgresql+psycopg2://airflow:s3cr%40t@db:5432/airflow?sslmode=require")
                .unwrap();
        assert_eq!(u.kind, DbKind::Postgres);
        assert_eq!(
            u.target,
            "postgres://airflow:s3cr%40t@db:5432/airflow?sslmode=require"
        );
        assert_eq!(
            u.to_string(),
            "postgresql+psycopg2://airflow@db:5432/airflow?sslmode=require"
        );
        assert_eq!(
            u.scrub("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
        assert!(!format!("{u:?}").contains("s3cr"));

        let u = DbUrl::parse(
            "mysql+mysqldb://airflow:pw@maria/airflow?charset=utf8mb4&ssl_mode=REQUIRED",
        )
        .unwrap();
        assert_eq!(u.kind, DbKind::MySql);
        assert_eq!(
            u.target,
            "mysql://airflow:pw@maria/airflow?ssl-mode=REQUIRED"
        );
        assert_eq!(
            u.to_string(),
            "mysql+mysqldb://airflow@maria/airflow?charset=utf8mb4&ssl_mode=REQUIRED"
        );

        let u = DbUrl::parse("sqlite:////var/lib/airflow/airflow.db").unwrap();
        assert_eq!(
            (u.kind, u.target.as_str()),
            (DbKind::Sqlite, "/var/lib/airflow/airflow.db")
        );
        let u = DbUrl::parse("sqlite:///tmp/x.db").unwrap();
        assert_eq!(u.target, "/tmp/x.db");
        let u = DbUrl::parse("sqlite://rel.db?mode=rwc").unwrap();
        assert_eq!(u.target, "rel.db");
        // SQLAlchemy takes a password up to the `@`, `?` included.
        let u = DbUrl::parse("postgresql+psycopg2://airflow:pa?ss@db/airflow").unwrap();
        assert_eq!(u.to_string(), "postgresql+psycopg2://airflow@db/airflow");
        assert_eq!(u.scrub("bad password pa?ss"), "bad password ***");
        let u = DbUrl::parse("postgres://h/db?sslcert=/home/a@b/c").unwrap();
        assert_eq!(u.to_string(), "postgres://h/db?sslcert=/home/a@b/c");
        let u = DbUrl::parse("postgres://u@h/db?password=hunter22").unwrap();
        assert_eq!(u.to_string(), "postgres://u@h/db");
        assert_eq!(u.scrub("x hunter22"), "x ***");
    }

    #[test]
    fn unsupported_or_malformed_urls_fail_without_the_password() {
        let e = DbUrl::parse("mssql+pyodbc://sa:topsecret@h/db").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert_eq!(e.metric_label(), "db-url");
        assert!(DbUrl::parse("nonsense").is_err());
        // A libpq key/value string is no URL; its password is not echoed either.
        let e = DbUrl::parse("host=db user=airflow password=topsecret dbname=airflow").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn hashed_shape_is_recognized() {
        assert!(looks_hashed("manual__2025-01-01T0000000000-654f198ec"));
        assert!(looks_hashed("-654f198ec"));
        assert!(!looks_hashed("kpo_zombie_dag"));
        assert!(!looks_hashed("task-654F198EC"));
    }

    #[test]
    fn query_text_has_the_terminal_deny_list_and_placeholders() {
        let f = [InFilter {
            column: "dag_id",
            values: vec!["a", "b"],
        }];
        let pg = active_sql(DbKind::Postgres, &f);
        assert!(pg.contains("state IS NULL OR state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed')"));
        assert!(pg.ends_with("AND dag_id IN ($1, $2)"), "{pg}");
        assert!(!pg.contains("operator"));
        assert!(active_sql(DbKind::MySql, &f).ends_with("AND dag_id IN (?, ?)"));
    }

    #[test]
    fn colliding_keys_are_ambiguous() {
        let mut m = ActiveMap::new();
        let k = TiKey::from_db("d", "t", "r", -1);
        insert_active(&mut m, k.clone(), ActiveTi::new(3, Some("up_for_retry")));
        assert!(!m[&k].ambiguous);
        insert_active(&mut m, k.clone(), ActiveTi::new(2, Some("running")));
        assert!(m[&k].ambiguous);
    }
}
