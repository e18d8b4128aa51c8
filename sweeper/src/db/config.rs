//! The schema and the statement timeout the sweeper reads with.

use std::time::Duration;

use crate::error::{Error, Result};

use super::url::{DbKind, DbUrl};

/// The schema and the statement timeout the sweeper reads with (docs/design.md §5, "Database access").
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

/// `--db-timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Airflow's own setting of the metadata schema (`[database] sql_alchemy_schema`).
pub const AIRFLOW_SCHEMA_ENV: &str = "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA";
const SCHEMA_FLAG: &str = "--db-schema";
/// How much longer than the server-side limit the client waits before giving up on a statement.
pub(super) const CLIENT_GRACE: Duration = Duration::from_secs(2);

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

    pub(super) fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs().max(1)
    }

    pub(super) fn timeout_ms(&self) -> u128 {
        self.timeout.as_millis().max(1)
    }
}

/// A schema only means something on PostgreSQL.
pub(super) fn check_schema(url: &DbUrl, cfg: &DbConfig) -> Result<()> {
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
        db: url.to_string(),
        schema: schema.clone(),
        source_of: cfg.schema_source,
        reason: why.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
