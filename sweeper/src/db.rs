//! The TI source: Airflow's metadata DB, read-only.
//!
//! * [`DbUrl`] accepts sqlx's URLs (`postgres://`, `mysql://`, `sqlite://`) and Airflow's own
//!   SQLAlchemy form (`postgresql+psycopg2://…`, `mysql+mysqldb://…`, `sqlite:////abs/path.db`), so
//!   the Secret Airflow already uses works as it is. Its password never appears in a message.
//! * [`Db::active_tis`] streams one query — every TI whose state is NULL or not terminal, with no
//!   filter on the operator — into an [`ActiveMap`] keyed by the label-form [`TiKey`]. The
//!   terminal deny-list is written as ranges on `state`, so Airflow's `ti_state` index serves it.
//! * [`Db::reread`] is the batched re-read of the delete candidates' rows, right before deleting.
//! * Every statement runs in its own read-only transaction under a statement timeout, with no
//!   session state, no startup options and no named prepared statements: PgBouncer in
//!   transaction-pooling mode works ([`Db`], [`DbConfig`]).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::{Connection, Row};
use tikey::TiKey;

use crate::decide::{ActiveMap, ActiveTi, KnownDags, insert_active};
use crate::error::{Error, Result};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

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
    let (display, well_formed) = match url.find("://") {
        Some(idx) if is_scheme(&url[..idx]) && is_known_dialect(&url[..idx]) => {
            (redact_well_formed(url, idx), true)
        }
        // Not a database we read, so nothing is lost by not showing it, and it may not even be a
        // scheme: `user:pw@host/db` with a password that starts with `//` reads as `user://…`.
        Some(idx) if is_scheme(&url[..idx]) => (not_shown(url, "unsupported database"), false),
        // `sqlite:relative.db`: a path, nothing secret in it.
        None if is_plain_sqlite(url) => (url.to_owned(), true),
        _ => (not_shown(url, "malformed URL"), false),
    };
    // The last guard: a display that still holds any candidate is not shown (a well-formed URL
    // whose password is also its user name, host or database: `postgres://airflow:airflow@…`).
    if secrets
        .iter()
        .any(|s| !s.is_empty() && display.contains(s.as_str()))
    {
        let why = if well_formed {
            "its password also appears elsewhere in it"
        } else {
            "malformed URL"
        };
        return (not_shown(url, why), secrets);
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

/// Whether a scheme (`dialect+driver`) names a database the sweeper reads.
fn is_known_dialect(scheme: &str) -> bool {
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(
        dialect.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    )
}

/// What is shown of an input that cannot be shown: its dialect when it starts with a known one.
fn not_shown(url: &str, why: &str) -> String {
    let head = url.split([':', '/']).next().unwrap_or_default();
    let known = is_known_dialect(head)
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_');
    if known {
        format!("{head}://… ({why}, not shown: it may hold a password)")
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

/// The schema and the statement timeout the sweeper reads with (DESIGN.md §5, "Database access").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// The PostgreSQL schema that holds Airflow's tables; `None`: unqualified names, resolved by
    /// the connection's `search_path` as Airflow itself does without a schema.
    pub schema: Option<String>,
    /// Where [`DbConfig::schema`] came from, for messages (`--db-schema` or Airflow's variable).
    pub schema_source: &'static str,
    /// The limit of every statement: server side (`SET LOCAL statement_timeout`, MariaDB's
    /// `SET STATEMENT max_statement_time … FOR`, MySQL's `MAX_EXECUTION_TIME` hint, SQLite's busy
    /// timeout) and client side (a little later, in case the server does not answer at all).
    pub timeout: Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            schema: None,
            schema_source: SCHEMA_FLAG,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

const READ_TI: &str = "reading task_instance from";

/// `--db-timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Airflow's own setting of the metadata schema (`[database] sql_alchemy_schema`).
pub const AIRFLOW_SCHEMA_ENV: &str = "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA";
const SCHEMA_FLAG: &str = "--db-schema";
/// How much longer than the server-side limit the client waits before giving up on a statement.
const CLIENT_GRACE: Duration = Duration::from_secs(2);

impl DbConfig {
    /// `--db-schema` when given (an empty value means "no schema", overriding Airflow's
    /// variable), else `AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA`; a blank schema is none, as in
    /// Airflow (`airflow/models/base.py`).
    pub fn resolve(schema_flag: Option<&str>, timeout: Duration) -> DbConfig {
        let (schema, schema_source) = match schema_flag {
            Some(s) => (Some(s.to_owned()), SCHEMA_FLAG),
            None => (std::env::var(AIRFLOW_SCHEMA_ENV).ok(), AIRFLOW_SCHEMA_ENV),
        };
        DbConfig {
            schema: schema.filter(|s| !s.trim().is_empty()),
            schema_source,
            timeout,
        }
    }

    fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs().max(1)
    }

    fn timeout_ms(&self) -> u128 {
        self.timeout.as_millis().max(1)
    }
}

enum Conn {
    Postgres(sqlx::PgConnection),
    MySql {
        conn: sqlx::MySqlConnection,
        /// MariaDB and MySQL spell a per-statement timeout differently.
        mariadb: bool,
    },
    Sqlite(sqlx::SqliteConnection),
}

/// Which SQL dialect a statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    MariaDb,
    MySql,
    Sqlite,
}

/// A read-only connection to Airflow's metadata DB.
///
/// Safe behind PgBouncer in transaction-pooling mode: no startup parameter beyond the ones
/// PgBouncer tracks (no `options`, no `extra_float_digits`), no session state (every statement
/// runs in its own `BEGIN READ ONLY` transaction with a `SET LOCAL` timeout), and no named
/// prepared statement (unnamed ones only, parsed and executed inside that transaction).
pub struct Db {
    url: DbUrl,
    cfg: DbConfig,
    conn: Conn,
}

/// A `WHERE` filter of the re-read: `column IN (values)`.
struct InFilter<'a> {
    column: &'static str,
    values: Vec<&'a str>,
}

/// Which of the sweeper's statements to EXPLAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// The plan only.
    Plan,
    /// Run it: PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`, MariaDB `ANALYZE FORMAT=JSON`, MySQL
    /// `EXPLAIN ANALYZE`; SQLite has only its query plan.
    Analyze,
}

impl Db {
    /// Connects with the default [`DbConfig`] (no schema, 30 s per statement).
    pub async fn connect(url: &DbUrl) -> Result<Db> {
        Db::connect_with(url, &DbConfig::default()).await
    }

    /// Connects. Nothing is set for the session: read-only is per transaction (SQLite: the file
    /// is opened `mode=ro`).
    pub async fn connect_with(url: &DbUrl, cfg: &DbConfig) -> Result<Db> {
        check_schema(url, cfg)?;
        let fail = |e: sqlx::Error| Error::DbConnect {
            db: url.display.clone(),
            cause: connect_hint(url.scrub(&e.to_string())),
        };
        let connect = async {
            Ok::<_, Error>(match url.kind {
                DbKind::Postgres => {
                    // sqlx sends DateStyle, client_encoding, TimeZone and application_name, which
                    // PgBouncer tracks per client; its default extra_float_digits=2 PgBouncer
                    // rejects ("unsupported startup parameter"), and we read no floats.
                    let opts = sqlx::postgres::PgConnectOptions::from_str(&url.target)
                        .map_err(fail)?
                        .application_name("kpo-sweeper")
                        .extra_float_digits(None);
                    Conn::Postgres(
                        sqlx::PgConnection::connect_with(&opts)
                            .await
                            .map_err(fail)?,
                    )
                }
                DbKind::MySql => {
                    let opts =
                        sqlx::mysql::MySqlConnectOptions::from_str(&url.target).map_err(fail)?;
                    let mut conn = sqlx::MySqlConnection::connect_with(&opts)
                        .await
                        .map_err(fail)?;
                    let version: String = sqlx::raw_sql("SELECT VERSION()")
                        .fetch_one(&mut conn)
                        .await
                        .and_then(|r| r.try_get(0))
                        .map_err(fail)?;
                    Conn::MySql {
                        conn,
                        mariadb: version.contains("MariaDB"),
                    }
                }
                DbKind::Sqlite => {
                    let opts = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&url.target)
                        .read_only(true)
                        .create_if_missing(false)
                        .busy_timeout(cfg.timeout);
                    Conn::Sqlite(
                        sqlx::SqliteConnection::connect_with(&opts)
                            .await
                            .map_err(fail)?,
                    )
                }
            })
        };
        let limit = CONNECT_TIMEOUT.min(cfg.timeout + CLIENT_GRACE);
        let conn = tokio::time::timeout(limit, connect)
            .await
            .map_err(|_| Error::DbTimeout {
                db: url.display.clone(),
                what: "connecting to",
                secs: limit.as_secs(),
            })??;
        Ok(Db {
            url: url.clone(),
            cfg: cfg.clone(),
            conn,
        })
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    pub fn config(&self) -> &DbConfig {
        &self.cfg
    }

    fn dialect(&self) -> Dialect {
        match &self.conn {
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::MySql { mariadb: true, .. } => Dialect::MariaDb,
            Conn::MySql { mariadb: false, .. } => Dialect::MySql,
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// `name` qualified with the schema (PostgreSQL), quoted.
    fn table(&self, name: &str) -> String {
        qualified(self.dialect(), self.cfg.schema.as_deref(), name)
    }

    /// Every active TI (state NULL or not terminal), normalized into label-form keys.
    pub async fn active_tis(&mut self) -> Result<ActiveMap> {
        self.active_tis_expecting(0).await
    }

    /// [`Db::active_tis`], with room made for `rows` up front (the sweeper passes the number of
    /// pods listed: a 50,000-entry map then never rehashes while it fills).
    pub async fn active_tis_expecting(&mut self, rows: usize) -> Result<ActiveMap> {
        self.query(&[], None, rows).await
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
        let filters = reread_filters(candidates);
        self.query(&filters, Some(candidates), candidates.len())
            .await
    }

    /// The text of the active-TI query (`candidates`: the re-read's) exactly as it is sent.
    pub fn active_sql(&self, candidates: Option<&HashSet<TiKey>>) -> String {
        let filters = candidates.map(reread_filters).unwrap_or_default();
        with_timeout(
            self.dialect(),
            &active_sql(self.dialect(), &self.table("task_instance"), &filters),
            &self.cfg,
        )
    }

    /// The plan of the active-TI query (`candidates`: of the re-read), as the DB prints it, run
    /// the way the query runs (read-only transaction, statement timeout).
    pub async fn explain(
        &mut self,
        candidates: Option<&HashSet<TiKey>>,
        how: Explain,
    ) -> Result<String> {
        let filters = candidates.map(reread_filters).unwrap_or_default();
        let dialect = self.dialect();
        let select = active_sql(dialect, &self.table("task_instance"), &filters);
        let sql = match (dialect, how) {
            (Dialect::Postgres, Explain::Plan) => format!("EXPLAIN {select}"),
            (Dialect::Postgres, Explain::Analyze) => {
                format!("EXPLAIN (ANALYZE, BUFFERS) {select}")
            }
            (Dialect::MariaDb, Explain::Plan) => format!("EXPLAIN FORMAT=JSON {select}"),
            (Dialect::MariaDb, Explain::Analyze) => format!("ANALYZE FORMAT=JSON {select}"),
            (Dialect::MySql, Explain::Plan) => format!("EXPLAIN FORMAT=TREE {select}"),
            (Dialect::MySql, Explain::Analyze) => format!("EXPLAIN ANALYZE {select}"),
            (Dialect::Sqlite, _) => format!("EXPLAIN QUERY PLAN {select}"),
        };
        let sql = match dialect {
            // The hint form only applies to a bare SELECT; EXPLAIN ANALYZE stays under the
            // client-side limit.
            Dialect::MySql => sql,
            _ => with_timeout(dialect, &sql, &self.cfg),
        };
        let binds = binds(dialect, &filters);
        let col = if dialect == Dialect::Sqlite { 3 } else { 0 };
        let mut lines = Vec::new();
        self.in_read_tx(&sql, &binds, READ_TI, |row| {
            lines.push(row.text(col)?);
            Ok(())
        })
        .await?;
        Ok(lines.join("\n"))
    }

    /// Every DAG the database knows (`dag.dag_id`), normalized into label form. The `dag` table
    /// holds one row per DAG ever parsed (stale ones included), so it is small: its cost follows
    /// the number of DAGs, never `task_instance`. Read like every statement (read-only
    /// transaction, statement timeout, schema-qualified).
    pub async fn known_dags(&mut self) -> Result<KnownDags> {
        let dialect = self.dialect();
        let sql = with_timeout(
            dialect,
            &format!("SELECT dag_id FROM {}", self.table("dag")),
            &self.cfg,
        );
        let mut dags = KnownDags::new();
        self.in_read_tx(&sql, &[], "reading the dag table from", |row| {
            dags.insert(tikey::make_safe_label_value(row.str(0)?));
            Ok(())
        })
        .await?;
        Ok(dags)
    }

    async fn query(
        &mut self,
        filters: &[InFilter<'_>],
        keep: Option<&HashSet<TiKey>>,
        expect: usize,
    ) -> Result<ActiveMap> {
        let dialect = self.dialect();
        let sql = with_timeout(
            dialect,
            &active_sql(dialect, &self.table("task_instance"), filters),
            &self.cfg,
        );
        let binds = binds(dialect, filters);
        let mut map = ActiveMap::with_capacity(expect);
        let mut keys = tikey::DbKeys::default();
        self.in_read_tx(&sql, &binds, READ_TI, |row| {
            let key = keys.key(
                row.str(0)?,
                row.str(1)?,
                row.str(2)?,
                row.int(3)?.unwrap_or(-1),
            );
            if keep.is_some_and(|k| !k.contains(&key)) {
                return Ok(());
            }
            let ti = ActiveTi::new(row.int(4)?.unwrap_or(0), row.opt_str(5)?);
            insert_active(&mut map, key, ti);
            Ok(())
        })
        .await?;
        Ok(map)
    }

    /// Runs `sql` with `binds` in its own read-only transaction under the statement timeout,
    /// handing each row to `each`. PostgreSQL: `BEGIN READ ONLY; SET LOCAL statement_timeout`
    /// (and `jit = off`),
    /// then the statement through an unnamed prepared statement, then `COMMIT`; MySQL/MariaDB:
    /// `START TRANSACTION READ ONLY`, the statement (its timeout is part of its text), `COMMIT`;
    /// SQLite: `BEGIN`, the statement, `COMMIT` on the read-only file.
    async fn in_read_tx(
        &mut self,
        sql: &str,
        binds: &[&str],
        what: &'static str,
        mut each: impl FnMut(&dyn AnyRow) -> Result<(), sqlx::Error>,
    ) -> Result<()> {
        let begin = match self.dialect() {
            // JIT off: the planner's cost estimate grows with the table, and past
            // jit_above_cost PostgreSQL compiles a query that reads a few thousand index-found
            // rows (measured: 36 ms of a 208 ms read at 10M rows).
            Dialect::Postgres => format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL jit = off",
                self.cfg.timeout_ms()
            ),
            Dialect::MariaDb | Dialect::MySql => "START TRANSACTION READ ONLY".to_owned(),
            Dialect::Sqlite => "BEGIN".to_owned(),
        };
        macro_rules! run {
            ($conn:expr) => {{
                let conn = $conn;
                // Audited: `begin` is built from constants and a number.
                sqlx::raw_sql(sqlx::AssertSqlSafe(begin))
                    .execute(&mut *conn)
                    .await?;
                // Audited: the text is built from constants, quoted identifiers and
                // placeholders only; every value is a bind parameter. Not persistent: an
                // unnamed statement, parsed and run inside this transaction, never reused.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).persistent(false);
                for b in binds {
                    q = q.bind(*b);
                }
                {
                    let mut rows = q.fetch(&mut *conn);
                    while let Some(row) = rows.try_next().await? {
                        each(&row)?;
                    }
                }
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                Ok::<(), sqlx::Error>(())
            }};
        }
        let limit = self.cfg.timeout + CLIENT_GRACE;
        let deadline = std::time::Instant::now() + self.cfg.timeout;
        let run = async {
            match &mut self.conn {
                Conn::Postgres(c) => run!(c),
                Conn::MySql { conn, .. } => run!(conn),
                Conn::Sqlite(c) => {
                    // SQLite's statement timeout: interrupt the statement (SQLITE_INTERRUPT) once
                    // the deadline has passed, checked every 10,000 VM steps.
                    c.lock_handle()
                        .await?
                        .set_progress_handler(10_000, move || std::time::Instant::now() < deadline);
                    let r = run!(&mut *c);
                    if let Ok(mut h) = c.lock_handle().await {
                        h.remove_progress_handler();
                    }
                    r
                }
            }
        };
        match tokio::time::timeout(limit, run).await {
            Err(_) => Err(self.timeout_error(what)),
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.rollback().await;
                Err(self.classify(e, what).await)
            }
        }
    }

    /// Ends a failed transaction, so the connection can answer the schema check.
    async fn rollback(&mut self) {
        let r = async {
            match &mut self.conn {
                Conn::Postgres(c) => sqlx::raw_sql("ROLLBACK").execute(c).await.map(drop),
                Conn::MySql { conn, .. } => sqlx::raw_sql("ROLLBACK").execute(conn).await.map(drop),
                Conn::Sqlite(c) => sqlx::raw_sql("ROLLBACK").execute(c).await.map(drop),
            }
        };
        let _ = tokio::time::timeout(CLIENT_GRACE, r).await;
    }

    fn timeout_error(&self, what: &'static str) -> Error {
        Error::DbTimeout {
            db: self.url.display.clone(),
            what,
            secs: self.cfg.timeout_secs(),
        }
    }

    async fn classify(&mut self, e: sqlx::Error, what: &'static str) -> Error {
        let db = self.url.display.clone();
        let cause = self.url.scrub(&e.to_string());
        match error_class(&e) {
            ErrorClass::Timeout => self.timeout_error(what),
            ErrorClass::NoRelation => {
                if let Some(schema) = self.cfg.schema.clone()
                    && self.dialect() == Dialect::Postgres
                    && self.pg_schema_exists(&schema).await == Some(false)
                {
                    return Error::DbSchemaMissing {
                        db,
                        schema,
                        source_of: self.cfg.schema_source,
                    };
                }
                Error::NotAirflowDb { db, cause }
            }
            ErrorClass::Schema => Error::NotAirflowDb { db, cause },
            ErrorClass::Other => Error::DbQuery { db, cause },
        }
    }

    /// Whether `schema` exists (PostgreSQL); `None` when that cannot be told.
    async fn pg_schema_exists(&mut self, schema: &str) -> Option<bool> {
        let Conn::Postgres(c) = &mut self.conn else {
            return None;
        };
        let check = async {
            sqlx::raw_sql("BEGIN READ ONLY").execute(&mut *c).await?;
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
            )
            .persistent(false)
            .bind(schema)
            .fetch_one(&mut *c)
            .await?;
            sqlx::raw_sql("COMMIT").execute(&mut *c).await?;
            Ok::<bool, sqlx::Error>(n > 0)
        };
        match tokio::time::timeout(self.cfg.timeout, check).await {
            Ok(Ok(exists)) => Some(exists),
            _ => None,
        }
    }
}

/// A row of any of the three drivers, read by position.
trait AnyRow {
    fn str(&self, i: usize) -> Result<&str, sqlx::Error>;
    fn opt_str(&self, i: usize) -> Result<Option<&str>, sqlx::Error>;
    fn int(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// A text column, whatever its SQL type (EXPLAIN output).
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;
}

macro_rules! any_row {
    ($row:ty) => {
        impl AnyRow for $row {
            fn str(&self, i: usize) -> Result<&str, sqlx::Error> {
                self.try_get::<&str, _>(i)
            }
            fn opt_str(&self, i: usize) -> Result<Option<&str>, sqlx::Error> {
                self.try_get::<Option<&str>, _>(i)
            }
            fn int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
                self.try_get::<Option<i64>, _>(i)
            }
            fn text(&self, i: usize) -> Result<String, sqlx::Error> {
                self.try_get::<String, _>(i).or_else(|_| {
                    self.try_get::<Vec<u8>, _>(i)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                })
            }
        }
    };
}
any_row!(sqlx::postgres::PgRow);
any_row!(sqlx::mysql::MySqlRow);
any_row!(sqlx::sqlite::SqliteRow);

/// What a driver error means to the operator.
#[derive(Debug, PartialEq, Eq)]
enum ErrorClass {
    /// The statement ran out of time (server side), or SQLite stayed locked past it.
    Timeout,
    /// No such table (or schema).
    NoRelation,
    /// The table lacks a column we read, or its type is not Airflow's.
    Schema,
    Other,
}

fn error_class(e: &sqlx::Error) -> ErrorClass {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code();
            let msg = d.message();
            let mysql_number = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            match (code.as_deref(), mysql_number) {
                // PostgreSQL query_canceled (statement_timeout); MariaDB ER_STATEMENT_TIMEOUT,
                // MySQL ER_QUERY_TIMEOUT and ER_QUERY_INTERRUPTED; SQLite BUSY/LOCKED after the
                // busy timeout, INTERRUPT from the deadline's progress handler.
                (Some("57014"), _) | (_, Some(1969 | 3024 | 1317)) => ErrorClass::Timeout,
                (Some("5" | "6" | "9" | "261" | "262" | "517"), None)
                    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
                {
                    ErrorClass::Timeout
                }
                // PostgreSQL undefined_table, invalid_schema_name; MySQL ER_NO_SUCH_TABLE.
                (Some("42P01" | "3F000" | "42S02"), _) => ErrorClass::NoRelation,
                // PostgreSQL undefined_column; MySQL ER_BAD_FIELD_ERROR.
                (Some("42703" | "42S22"), _) => ErrorClass::Schema,
                _ if msg.contains("no such table") => ErrorClass::NoRelation,
                _ if msg.contains("no such column") => ErrorClass::Schema,
                _ => ErrorClass::Other,
            }
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) => ErrorClass::Schema,
        _ => ErrorClass::Other,
    }
}

/// A connect error, with what to do about the two that PgBouncer users meet.
fn connect_hint(cause: String) -> String {
    let lower = cause.to_ascii_lowercase();
    if lower.contains("unsupported startup parameter") {
        format!(
            "{cause} (PgBouncer accepts no startup `options`: remove `options=` from the DB URL, and set the \
             schema with --db-schema)"
        )
    } else if lower.contains("password authentication failed")
        || lower.contains("sasl authentication failed")
        || lower.contains("no such user")
        || lower.contains("access denied for user")
    {
        format!("{cause} (check the user and password in the DB URL)")
    } else {
        cause
    }
}

/// A schema only means something on PostgreSQL.
fn check_schema(url: &DbUrl, cfg: &DbConfig) -> Result<()> {
    let Some(schema) = &cfg.schema else {
        return Ok(());
    };
    let why = match url.kind {
        DbKind::Postgres if schema.contains('\0') => "a schema name cannot contain a NUL byte",
        DbKind::Postgres => return Ok(()),
        DbKind::MySql => {
            "MySQL and MariaDB have no schemas inside a database (a schema is a database there): name \
             Airflow's database in the URL and unset the schema"
        }
        DbKind::Sqlite => "SQLite has no schemas: unset the schema",
    };
    Err(Error::DbSchema {
        db: url.display.clone(),
        schema: schema.clone(),
        source_of: cfg.schema_source,
        reason: why.to_owned(),
    })
}

/// `name`, qualified with `schema` on PostgreSQL; quoted as identifiers (`"` doubled).
fn qualified(dialect: Dialect, schema: Option<&str>, name: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    match (dialect, schema) {
        (Dialect::Postgres, Some(schema)) => format!("{}.{}", q(schema), q(name)),
        _ => name.to_owned(),
    }
}

/// The re-read's `IN` filters (see [`Db::reread`]).
fn reread_filters(candidates: &HashSet<TiKey>) -> Vec<InFilter<'_>> {
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
    filters
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

/// The states that are not terminal, as ranges on `state` between the terminal values, and
/// NULL: exactly `state IS NULL OR state NOT IN (…terminal…)` (the complement of finitely many
/// points of an order is the open intervals between them), but each range can be read from
/// Airflow's `ti_state` index, so the cost follows the active rows, not the table. A state
/// nobody knows falls in one of the ranges and stays active. The terminal values sort the same
/// way in every collation Airflow's `state` column may have (they differ in their first letter,
/// or `sk` < `su`); the unit test `ranges_cover_exactly_the_non_terminal_states` checks the
/// byte order and a case-insensitive order.
fn active_predicate() -> String {
    format!("({})", active_terms().join(" OR "))
}

/// [`active_ranges`] as SQL conditions on `state`.
fn active_terms() -> Vec<String> {
    active_ranges()
        .into_iter()
        .map(|r| match r {
            (None, None) => "state IS NULL".to_owned(),
            (None, Some(hi)) => format!("state < '{hi}'"),
            (Some(lo), None) => format!("state > '{lo}'"),
            (Some(lo), Some(hi)) => format!("(state > '{lo}' AND state < '{hi}')"),
        })
        .collect()
}

/// The active states as open ranges `(above, below)` between the sorted terminal values;
/// `(None, None)` stands for NULL.
fn active_ranges() -> Vec<(Option<&'static str>, Option<&'static str>)> {
    let mut t: Vec<&'static str> = TERMINAL_STATES.to_vec();
    t.sort_unstable();
    let mut ranges = vec![(None, None), (None, Some(t[0]))];
    ranges.extend(t.windows(2).map(|w| (Some(w[0]), Some(w[1]))));
    ranges.push((Some(t[t.len() - 1]), None));
    ranges
}

/// The active-TI query on `table`, with `IN` filters. PostgreSQL and MariaDB estimate each
/// range from their statistics (histograms, index dives) and read the few active rows through
/// `ti_state`; SQLite's planner knows only the average rows per value (`sqlite_stat1`), judges a
/// range on `state` as costly as a scan, and would scan: there every range is its own
/// `UNION ALL` branch `INDEXED BY ti_state` (the ranges are disjoint, so the union is the same
/// set), each branch with the filters (its binds repeated, see [`binds`]).
fn active_sql(dialect: Dialect, table: &str, filters: &[InFilter<'_>]) -> String {
    let int = match dialect {
        Dialect::Postgres => "BIGINT",
        Dialect::MariaDb | Dialect::MySql => "SIGNED",
        Dialect::Sqlite => "INTEGER",
    };
    let select = format!(
        "SELECT dag_id, task_id, run_id, CAST(map_index AS {int}), CAST(try_number AS {int}), state \
         FROM {table}"
    );
    let filter_sql = |n: &mut usize| {
        let mut sql = String::new();
        for f in filters {
            let marks: Vec<String> = f
                .values
                .iter()
                .map(|_| {
                    *n += 1;
                    match dialect {
                        Dialect::Postgres => format!("${n}"),
                        _ => "?".to_owned(),
                    }
                })
                .collect();
            sql.push_str(&format!(" AND {} IN ({})", f.column, marks.join(", ")));
        }
        sql
    };
    let mut n = 0;
    if dialect == Dialect::Sqlite {
        active_terms()
            .iter()
            .map(|term| {
                format!(
                    "{select} INDEXED BY ti_state WHERE {term}{}",
                    filter_sql(&mut n)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    } else {
        format!(
            "{select} WHERE {}{}",
            active_predicate(),
            filter_sql(&mut n)
        )
    }
}

/// The bind values of [`active_sql`]'s placeholders, in order.
fn binds<'a>(dialect: Dialect, filters: &[InFilter<'a>]) -> Vec<&'a str> {
    let once = filters.iter().flat_map(|f| f.values.iter().copied());
    match dialect {
        Dialect::Sqlite => (0..active_terms().len())
            .flat_map(|_| once.clone())
            .collect(),
        _ => once.collect(),
    }
}

/// `sql` under the server-side statement timeout where it is written into the statement:
/// MariaDB `SET STATEMENT max_statement_time=S FOR …`, MySQL `SELECT /*+ MAX_EXECUTION_TIME(ms) */`
/// (PostgreSQL's is the transaction's `SET LOCAL`; SQLite has none: its busy timeout and the
/// client-side limit apply).
fn with_timeout(dialect: Dialect, sql: &str, cfg: &DbConfig) -> String {
    match dialect {
        Dialect::MariaDb => format!(
            "SET STATEMENT max_statement_time={} FOR {sql}",
            cfg.timeout_secs()
        ),
        Dialect::MySql => match sql.strip_prefix("SELECT ") {
            Some(rest) => format!(
                "SELECT /*+ MAX_EXECUTION_TIME({}) */ {rest}",
                cfg.timeout_ms()
            ),
            None => sql.to_owned(),
        },
        Dialect::Postgres | Dialect::Sqlite => sql.to_owned(),
    }
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
        // `user:password@host/db` whose password starts with `//` reads as a URL of scheme `aaa`
        // with the user `A0=??a` (found by the secrets property test).
        let e = DbUrl::parse("aaa://A0=??a@aaa/aa0").unwrap_err();
        assert!(!e.to_string().contains("A0=??a"), "{e}");
        assert_eq!(e.metric_label(), "db-url");
        assert!(DbUrl::parse("nonsense").is_err());
        // A libpq key/value string is no URL; its password is not echoed either.
        let e = DbUrl::parse("host=db user=airflow password=topsecret dbname=airflow").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn a_well_formed_url_whose_password_repeats_is_not_called_malformed() {
        // The Helm chart's default credentials, postgres:postgres, and the env's airflow:airflow.
        for url in [
            "postgresql://postgres:postgres@airflow-pgbouncer:6543/airflow-metadata",
            "postgres://airflow:airflow@127.0.0.1:5432/airflow",
        ] {
            let (shown, _) = redacted(url);
            assert!(
                !shown.contains(":postgres@") && !shown.contains(":airflow@"),
                "{shown}"
            );
            assert!(!shown.contains("malformed"), "{shown}");
            assert!(
                shown.contains("its password also appears elsewhere in it"),
                "{shown}"
            );
        }
        assert!(
            redacted("postgresql:/u:pw@h/db")
                .0
                .contains("malformed URL")
        );
    }

    #[test]
    fn hashed_shape_is_recognized() {
        assert!(looks_hashed("manual__2025-01-01T0000000000-654f198ec"));
        assert!(looks_hashed("-654f198ec"));
        assert!(!looks_hashed("kpo_zombie_dag"));
        assert!(!looks_hashed("task-654F198EC"));
    }

    #[test]
    fn query_text_reads_ranges_of_state_with_placeholders() {
        let f = [InFilter {
            column: "dag_id",
            values: vec!["a", "b"],
        }];
        let pg = active_sql(Dialect::Postgres, "\"s\".\"task_instance\"", &f);
        assert!(
            pg.contains(
                "FROM \"s\".\"task_instance\" WHERE (state IS NULL OR state < 'failed' \
                 OR (state > 'failed' AND state < 'removed') OR (state > 'removed' AND state < 'skipped') \
                 OR (state > 'skipped' AND state < 'success') \
                 OR (state > 'success' AND state < 'upstream_failed') OR state > 'upstream_failed')"
            ),
            "{pg}"
        );
        assert!(pg.ends_with("AND dag_id IN ($1, $2)"), "{pg}");
        assert!(!pg.contains("operator") && !pg.contains("NOT IN"), "{pg}");
        assert!(
            active_sql(Dialect::MariaDb, "task_instance", &f).ends_with("AND dag_id IN (?, ?)")
        );
        // SQLite: one branch per range, each forced onto ti_state, each with the filters.
        let lite = active_sql(Dialect::Sqlite, "task_instance", &f);
        assert_eq!(lite.matches(" UNION ALL ").count(), 6, "{lite}");
        assert_eq!(
            lite.matches("INDEXED BY ti_state WHERE").count(),
            7,
            "{lite}"
        );
        assert_eq!(lite.matches("AND dag_id IN (?, ?)").count(), 7, "{lite}");
        assert_eq!(binds(Dialect::Sqlite, &f).len(), 14);
        assert_eq!(binds(Dialect::Postgres, &f), ["a", "b"]);
    }

    /// The ranges are exactly the complement of the terminal values, in byte order and in a
    /// case-insensitive order (MySQL's `_ci` collations), NULL included.
    #[test]
    fn ranges_cover_exactly_the_non_terminal_states() {
        let samples = [
            "",
            "a",
            "awaiting_input",
            "deferred",
            "f",
            "failed",
            "failed_",
            "failedx",
            "fails",
            "g",
            "queued",
            "removed",
            "removed ",
            "removedx",
            "restarting",
            "running",
            "scheduled",
            "sk",
            "skipped",
            "skipped_",
            "skippedx",
            "success",
            "success_",
            "successful",
            "t",
            "up_for_reschedule",
            "up_for_retry",
            "upstream_failed",
            "upstream_failed_",
            "zzz",
            "FAILED",
            "Success",
            "\u{10ffff}",
            "shutdown",
            "none",
        ];
        type Cmp = fn(&str, &str) -> std::cmp::Ordering;
        let orders: [(&str, Cmp); 2] = [
            ("bytes", |a, b| a.cmp(b)),
            ("case-insensitive", |a, b| {
                a.to_lowercase().cmp(&b.to_lowercase())
            }),
        ];
        for (name, cmp) in orders {
            let in_range = |s: &str| {
                active_ranges().iter().any(|r| match *r {
                    (None, None) => false,
                    (lo, hi) => {
                        lo.is_none_or(|lo| cmp(s, lo).is_gt())
                            && hi.is_none_or(|hi| cmp(s, hi).is_lt())
                    }
                })
            };
            for s in samples {
                let terminal = TERMINAL_STATES.iter().any(|t| cmp(s, t).is_eq());
                assert_eq!(in_range(s), !terminal, "{s:?} in the {name} order");
            }
        }
        assert!(active_ranges().contains(&(None, None)), "NULL is active");
    }

    #[test]
    fn tables_are_schema_qualified_and_quoted_on_postgres_only() {
        assert_eq!(
            qualified(Dialect::Postgres, Some("team-b"), "task_instance"),
            "\"team-b\".\"task_instance\""
        );
        assert_eq!(
            qualified(Dialect::Postgres, Some("a\"; DROP TABLE x; --"), "dag"),
            "\"a\"\"; DROP TABLE x; --\".\"dag\""
        );
        assert_eq!(
            qualified(Dialect::Postgres, None, "task_instance"),
            "task_instance"
        );
        assert_eq!(
            qualified(Dialect::Sqlite, None, "task_instance"),
            "task_instance"
        );
    }

    #[test]
    fn a_schema_on_mysql_or_sqlite_is_refused_with_the_reason() {
        let cfg = DbConfig::resolve(Some("airflow"), DEFAULT_TIMEOUT);
        for (url, why) in [
            (
                "mysql://u:pw@h/airflow",
                "MySQL and MariaDB have no schemas",
            ),
            ("sqlite:////tmp/a.db", "SQLite has no schemas"),
        ] {
            let e = check_schema(&DbUrl::parse(url).unwrap(), &cfg).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(why) && msg.contains("--db-schema"), "{msg}");
            assert!(!msg.contains("pw"), "{msg}");
        }
        check_schema(&DbUrl::parse("postgres://h/db").unwrap(), &cfg).unwrap();
        let none = DbConfig::resolve(Some(""), DEFAULT_TIMEOUT);
        check_schema(&DbUrl::parse("sqlite:////tmp/a.db").unwrap(), &none).unwrap();
    }

    #[test]
    fn the_flag_wins_and_a_blank_schema_is_none() {
        assert_eq!(
            DbConfig::resolve(Some("team_b"), DEFAULT_TIMEOUT)
                .schema
                .as_deref(),
            Some("team_b")
        );
        assert_eq!(DbConfig::resolve(Some("  "), DEFAULT_TIMEOUT).schema, None);
        assert_eq!(
            DbConfig::resolve(Some(""), DEFAULT_TIMEOUT).schema_source,
            "--db-schema"
        );
    }

    #[test]
    fn statement_timeouts_are_written_per_dialect() {
        let cfg = DbConfig {
            timeout: Duration::from_secs(7),
            ..DbConfig::default()
        };
        assert_eq!(
            with_timeout(Dialect::MariaDb, "SELECT 1", &cfg),
            "SET STATEMENT max_statement_time=7 FOR SELECT 1"
        );
        assert_eq!(
            with_timeout(Dialect::MySql, "SELECT a FROM t", &cfg),
            "SELECT /*+ MAX_EXECUTION_TIME(7000) */ a FROM t"
        );
        assert_eq!(
            with_timeout(Dialect::Postgres, "SELECT 1", &cfg),
            "SELECT 1"
        );
    }

    #[test]
    fn pgbouncer_connect_errors_say_what_to_fix() {
        assert!(
            connect_hint("unsupported startup parameter: options".into())
                .contains("remove `options=`")
        );
        for pgbouncer_or_postgres in [
            "SASL authentication failed",
            "password authentication failed for user \"airflow\"",
        ] {
            assert!(
                connect_hint(pgbouncer_or_postgres.into()).contains("check the user and password")
            );
        }
        assert_eq!(connect_hint("refused".into()), "refused");
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
