//! The connection: one read-only transaction per statement, under the statement timeout, with
//! no session state; rows read by position from any driver; driver errors told apart.

use std::str::FromStr;

use futures::TryStreamExt;
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::{Error, Result};

use super::config::{CLIENT_GRACE, DbConfig, check_schema};
use super::sql::{Dialect, pg_begin};
use super::url::{DbKind, DbUrl};
use super::{CONNECT_TIMEOUT, Db};

/// sqlx logs a statement slower than this at WARN by default. The main read of 150,000 active
/// TIs takes 1–2 s, every run, and a slow statement is not the operator's problem until
/// `--db-timeout` says so: it goes to the debug log (with the sweeper's own `query_ms`).
const SLOW_LOG: log::LevelFilter = log::LevelFilter::Debug;
const SLOW_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) enum Conn {
    Postgres {
        conn: sqlx::PgConnection,
        /// The server has the `jit` setting (PostgreSQL 11 and later; not every
        /// protocol-compatible server does).
        jit: bool,
    },
    MySql {
        conn: sqlx::MySqlConnection,
        /// MariaDB and MySQL spell a per-statement timeout differently.
        mariadb: bool,
    },
    Sqlite(sqlx::SqliteConnection),
}

impl Conn {
    /// Connects. Nothing is set for the session: read-only is per transaction (SQLite: the file
    /// is opened `mode=ro`).
    pub(super) async fn open(url: &DbUrl, cfg: &DbConfig) -> Result<Conn> {
        check_schema(url, cfg)?;
        for key in url.dropped() {
            tracing::warn!(
                parameter = %key,
                "the DB URL's parameter `{key}` is not passed on to the driver (the sweeper does not \
                 support it); its value is not shown"
            );
        }
        let fail = |e: sqlx::Error| Error::DbConnect {
            db: url.to_string(),
            cause: connect_hint(url.scrub(&e.to_string())),
        };
        let connect = async {
            Ok::<_, Error>(match url.kind {
                DbKind::Postgres => {
                    // sqlx sends DateStyle, client_encoding, TimeZone and application_name, which
                    // PgBouncer tracks per client; its default extra_float_digits=2 PgBouncer
                    // rejects ("unsupported startup parameter"), and we read no floats.
                    let opts = sqlx::postgres::PgConnectOptions::from_str(url.target())
                        .map_err(fail)?
                        .application_name("kpo-sweeper")
                        .extra_float_digits(None)
                        .log_slow_statements(SLOW_LOG, SLOW_AFTER);
                    let mut conn = sqlx::PgConnection::connect_with(&opts)
                        .await
                        .map_err(fail)?;
                    // `current_setting(name, missing_ok)`: NULL where the server has no `jit`.
                    let jit: Option<String> =
                        sqlx::query_scalar("SELECT current_setting('jit', true)")
                            .persistent(false)
                            .fetch_one(&mut conn)
                            .await
                            .map_err(fail)?;
                    Conn::Postgres {
                        conn,
                        jit: jit.is_some(),
                    }
                }
                DbKind::MySql => {
                    let opts = sqlx::mysql::MySqlConnectOptions::from_str(url.target())
                        .map_err(fail)?
                        .log_slow_statements(SLOW_LOG, SLOW_AFTER);
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
                        .filename(url.target())
                        .read_only(true)
                        .create_if_missing(false)
                        .busy_timeout(cfg.timeout)
                        .log_slow_statements(SLOW_LOG, SLOW_AFTER);
                    Conn::Sqlite(
                        sqlx::SqliteConnection::connect_with(&opts)
                            .await
                            .map_err(fail)?,
                    )
                }
            })
        };
        let limit = CONNECT_TIMEOUT.min(cfg.timeout + CLIENT_GRACE);
        tokio::time::timeout(limit, connect)
            .await
            .map_err(|_| Error::DbTimeout {
                db: url.to_string(),
                what: "connecting to",
                secs: limit.as_secs(),
            })?
    }

    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Conn::Postgres { .. } => Dialect::Postgres,
            Conn::MySql { mariadb: true, .. } => Dialect::MariaDb,
            Conn::MySql { mariadb: false, .. } => Dialect::MySql,
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

impl Db {
    /// Runs `sql` with `binds` in its own read-only transaction under the statement timeout,
    /// handing each row to `each`. PostgreSQL: [`pg_begin`] (read-only, `SET LOCAL`
    /// statement_timeout, search_path and jit), then the statement through an unnamed prepared
    /// statement, then `COMMIT`; MySQL/MariaDB: `START TRANSACTION READ ONLY`, the statement (its
    /// timeout is part of its text), `COMMIT`; SQLite: `BEGIN`, the statement, `COMMIT` on the
    /// read-only file.
    pub(super) async fn in_read_tx(
        &mut self,
        sql: &str,
        binds: &[&str],
        what: &'static str,
        mut each: impl FnMut(&dyn AnyRow) -> Result<(), sqlx::Error>,
    ) -> Result<()> {
        let begin = match &self.conn {
            Conn::Postgres { jit, .. } => pg_begin(&self.cfg, *jit),
            Conn::MySql { .. } => "START TRANSACTION READ ONLY".to_owned(),
            Conn::Sqlite(_) => "BEGIN".to_owned(),
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
                Conn::Postgres { conn, .. } => run!(conn),
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
    pub(super) async fn rollback(&mut self) {
        let r = async {
            match &mut self.conn {
                Conn::Postgres { conn, .. } => {
                    sqlx::raw_sql("ROLLBACK").execute(conn).await.map(drop)
                }
                Conn::MySql { conn, .. } => sqlx::raw_sql("ROLLBACK").execute(conn).await.map(drop),
                Conn::Sqlite(c) => sqlx::raw_sql("ROLLBACK").execute(c).await.map(drop),
            }
        };
        let _ = tokio::time::timeout(CLIENT_GRACE, r).await;
    }

    pub(super) fn timeout_error(&self, what: &'static str) -> Error {
        Error::DbTimeout {
            db: self.url.to_string(),
            what,
            secs: self.cfg.timeout_secs(),
        }
    }

    async fn classify(&mut self, e: sqlx::Error, what: &'static str) -> Error {
        let db = self.url.to_string();
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
                Error::NotAirflowDb { db, what, cause }
            }
            ErrorClass::Schema => Error::NotAirflowDb { db, what, cause },
            ErrorClass::Other => Error::DbQuery { db, what, cause },
        }
    }

    /// Whether `schema` exists (PostgreSQL); `None` when that cannot be told.
    async fn pg_schema_exists(&mut self, schema: &str) -> Option<bool> {
        let Conn::Postgres { conn: c, .. } = &mut self.conn else {
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
pub(super) trait AnyRow {
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
#[cfg(test)]
mod tests {
    use super::*;

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
}
