//! The sweeper's errors. Every message names what failed and where, never a DB password.

/// An error that stops the run before anything is deleted (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid arguments: {0}")]
    Args(String),

    #[error("cannot build a Kubernetes client: {0}")]
    KubeConfig(String),

    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },

    #[error("listing pods restarted {0} times after 410 Gone (the list kept expiring); giving up")]
    ListExpired(u32),

    #[error("{0}: the page's continue token read twice gave two values")]
    ListInconsistent(String),

    #[error(
        "no database URL: pass --db-url (or KPO_SWEEPER_DB_URL), or set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN \
         as Airflow does"
    )]
    NoDbUrl,

    #[error("invalid database URL {url}: {reason}")]
    DbUrl { url: String, reason: String },

    #[error("cannot connect to {db}: {cause}")]
    DbConnect { db: String, cause: String },

    #[error(
        "timed out after {secs}s {what} {db} (raise --db-timeout, or find what holds the DB up)"
    )]
    DbTimeout {
        db: String,
        what: &'static str,
        secs: u64,
    },

    #[error(
        "{what} {db} failed: {cause} — is this an Airflow metadata DB (Airflow >= 2.3, migrated with \
         `airflow db migrate`)? The sweeper reads task_instance(dag_id, task_id, run_id, map_index, \
         try_number, state), dag(dag_id) and dag_run(dag_id, run_id)"
    )]
    NotAirflowDb {
        db: String,
        /// Which read failed ("reading the dag table from").
        what: &'static str,
        cause: String,
    },

    #[error("{what} {db} failed: {cause}")]
    DbQuery {
        db: String,
        what: &'static str,
        cause: String,
    },

    #[error("schema {schema:?} (from {source_of}) cannot be used with {db}: {reason}")]
    DbSchema {
        db: String,
        schema: String,
        source_of: &'static str,
        reason: String,
    },

    #[error(
        "schema {schema:?} (from {source_of}) does not exist in {db}: set --db-schema (or \
         AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA) to the schema Airflow was migrated into"
    )]
    DbSchemaMissing {
        db: String,
        schema: String,
        source_of: &'static str,
    },
}

impl Error {
    /// A bounded label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Args(_) => "args",
            Error::KubeConfig(_) => "kubeconfig",
            Error::Kube { .. } => "kube",
            Error::ListExpired(_) => "list-expired",
            Error::ListInconsistent(_) => "list-inconsistent",
            Error::NoDbUrl => "no-db-url",
            Error::DbUrl { .. } => "db-url",
            Error::DbConnect { .. } => "db-connect",
            Error::DbTimeout { .. } => "db-timeout",
            Error::NotAirflowDb { .. } => "not-airflow-db",
            Error::DbQuery { .. } => "db-query",
            Error::DbSchema { .. } => "db-schema",
            Error::DbSchemaMissing { .. } => "db-schema-missing",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_bounded() {
        let e = Error::DbConnect {
            db: "postgres://airflow@db/airflow".into(),
            cause: "refused".into(),
        };
        assert_eq!(e.metric_label(), "db-connect");
        assert_eq!(Error::ListExpired(3).metric_label(), "list-expired");
    }
}
