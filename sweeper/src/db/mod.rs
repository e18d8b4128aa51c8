//! The TI source: Airflow's metadata DB, read-only.
//!
//! * [`DbUrl`] ([`url`]) accepts sqlx's URLs (`postgres://`, `mysql://`, `sqlite://`) and Airflow's
//!   own SQLAlchemy form (`postgresql+psycopg2://…`, `mysql+mysqldb://…`, `sqlite:////abs/path.db`),
//!   so the Secret Airflow already uses works as it is. Its password, and every parameter that
//!   holds a secret, never appears in a message; parameters the driver does not get are dropped
//!   before it sees them, with a warning that names the key.
//! * [`Db::active_tis_for`] streams the main read — every TI whose state is NULL or not terminal,
//!   with no filter on the operator — into an [`ActiveMap`] keyed by the label-form [`TiKey`]s the
//!   listed pods name (borrowed from them; rows no pod names are counted, not kept). The
//!   terminal deny-list is written as ranges on `state`, so Airflow's `ti_state` index serves it
//!   ([`sql`]).
//! * [`Db::ti_rows`] reads the candidates' rows whatever their state (rows 9–11 of the decision
//!   table need the terminal ones), by Airflow's composite key ([`sql::RowsQuery`]); it is also
//!   each delete batch's re-read.
//! * Every statement runs in its own read-only transaction under a statement timeout, with
//!   `search_path` pinned for it, no session state, no startup options and no named prepared
//!   statements: PgBouncer in transaction-pooling mode works ([`conn`], [`DbConfig`]).

pub mod config;
mod conn;
pub mod sql;
pub mod url;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tikey::TiKey;

use crate::decide::{ActiveMap, ActiveTi, KnownDags, Tis, insert_active};
use crate::error::Result;

pub use config::{AIRFLOW_SCHEMA_ENV, DEFAULT_TIMEOUT, DbConfig};
pub use sql::looks_hashed;
pub use url::{DbKind, DbUrl, redacted};

use conn::Conn;
use sql::{Dialect, RowsQuery, active_sql, qualified, with_timeout};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The terminal states: a deny-list, so a state we don't know keeps its pods.
pub const TERMINAL_STATES: [&str; 5] =
    ["success", "failed", "skipped", "upstream_failed", "removed"];

/// Airflow's env var for the metadata DB (2.3+), then the pre-2.3 one.
pub const AIRFLOW_CONN_ENV: [&str; 2] = [
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
];

/// Most candidate keys one statement of [`Db::ti_rows`] asks for; more are read in chunks.
pub const ROWS_CHUNK: usize = 500;

const READ_TI: &str = "reading task_instance from";

/// A read-only connection to Airflow's metadata DB.
///
/// Safe behind PgBouncer in transaction-pooling mode: no startup parameter beyond the ones
/// PgBouncer tracks (no `options`, no `extra_float_digits`), no session state (every statement
/// runs in its own `BEGIN READ ONLY` transaction with `SET LOCAL` timeout and search_path), and no
/// named prepared statement (unnamed ones only, parsed and executed inside that transaction).
pub struct Db {
    url: DbUrl,
    cfg: DbConfig,
    conn: Conn,
    /// The raw dag_ids behind each label-form dag_id, from the last [`Db::known_dags`]: the
    /// candidates' rows are looked up by the raw id.
    dag_ids: HashMap<String, Vec<String>>,
    /// The raw run_ids behind (raw dag_id, run_id label) pairs whose label cannot be rebuilt
    /// (a user's own run_id), read from `dag_run` once and kept for the re-reads (a run's run_id
    /// never changes). An empty list: `dag_run` has no such run.
    run_ids: HashMap<(String, String), Vec<String>>,
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
        Ok(Db {
            url: url.clone(),
            cfg: cfg.clone(),
            conn: Conn::open(url, cfg).await?,
            dag_ids: HashMap::new(),
            run_ids: HashMap::new(),
        })
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    pub fn config(&self) -> &DbConfig {
        &self.cfg
    }

    fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// `name` qualified with the schema (PostgreSQL), quoted.
    fn table(&self, name: &str) -> String {
        qualified(self.dialect(), self.cfg.schema.as_deref(), name)
    }

    /// Every active TI (state NULL or not terminal), normalized into label-form keys.
    pub async fn active_tis(&mut self) -> Result<ActiveMap> {
        let mut map = ActiveMap::new();
        self.read_active(|key, ti| insert_active(&mut map, key, ti))
            .await?;
        Ok(map)
    }

    /// The sweep's main read: every active TI row is read (one statement, as [`Db::active_tis`]),
    /// and only those whose key `wanted` holds are kept, keyed by `wanted`'s own `&TiKey` (the
    /// listed pods' keys: no second copy of them). Also returns how many active rows were read.
    pub async fn active_tis_for<'k>(
        &mut self,
        wanted: &HashSet<&'k TiKey>,
    ) -> Result<(ActiveMap<&'k TiKey>, usize)> {
        let mut map = ActiveMap::with_capacity(wanted.len());
        let mut rows = 0;
        self.read_active(|key, ti| {
            rows += 1;
            if let Some(&k) = wanted.get(&key) {
                insert_active(&mut map, k, ti);
            }
        })
        .await?;
        Ok((map, rows))
    }

    /// Streams the main read's rows, normalized, to `each`.
    async fn read_active(&mut self, mut each: impl FnMut(TiKey, ActiveTi)) -> Result<()> {
        let dialect = self.dialect();
        let sql = with_timeout(
            dialect,
            &active_sql(dialect, &self.table("task_instance")),
            &self.cfg,
        );
        let mut keys = tikey::DbKeys::default();
        self.in_read_tx(&sql, &[], READ_TI, |row| {
            let key = keys.key(
                row.str(0)?,
                row.str(1)?,
                row.str(2)?,
                row.int(3)?.unwrap_or(-1),
            );
            each(
                key,
                ActiveTi::new(row.int(4)?.unwrap_or(0), row.opt_str(5)?),
            );
            Ok(())
        })
        .await
    }

    /// The rows behind `keys`, whatever their state: terminal ones in [`Tis::ended`], others in
    /// [`Tis::active`]. Rows are looked up by Airflow's composite key (see [`RowsQuery`]: by
    /// run_id where the label proves it, else the task's rows), normalized, and kept only when
    /// their key is asked for. One statement per [`ROWS_CHUNK`] keys (a delete batch's re-read
    /// is one). Call [`Db::known_dags`] first: a hashed dag_id is looked up by its raw ids. The
    /// maps are keyed by `keys`' own `&TiKey`.
    pub async fn ti_rows<'k>(&mut self, keys: &'k HashSet<TiKey>) -> Result<Tis<&'k TiKey>> {
        self.resolve_run_ids(keys).await?;
        let mut tis = Tis::default();
        let all: Vec<&TiKey> = keys.iter().collect();
        for chunk in all.chunks(ROWS_CHUNK) {
            let chunk: HashSet<TiKey> = chunk.iter().map(|k| (*k).clone()).collect();
            let q = RowsQuery::new(&chunk, &self.dag_ids, &self.run_ids);
            if q.is_empty() {
                continue;
            }
            let dialect = self.dialect();
            let (select, binds) = q.sql(dialect, &self.table("task_instance"));
            let sql = with_timeout(dialect, &select, &self.cfg);
            let mut db_keys = tikey::DbKeys::default();
            self.in_read_tx(&sql, &binds, READ_TI, |row| {
                let key = db_keys.key(
                    row.str(0)?,
                    row.str(1)?,
                    row.str(2)?,
                    row.int(3)?.unwrap_or(-1),
                );
                // Only this chunk's keys: a key another chunk asks for is read there.
                if chunk.contains(&key)
                    && let Some(k) = keys.get(&key)
                {
                    tis.insert(k, row.int(4)?, row.opt_str(5)?);
                }
                Ok(())
            })
            .await?;
        }
        Ok(tis)
    }

    /// Finds in `dag_run` the raw run_ids behind the run_id labels of `keys` that cannot be
    /// rebuilt (a user's own run_id, or one cut at 53 characters): `dag_run`'s unique key
    /// `(dag_id, run_id)` answers it from the index, at a cost that follows the runs of those
    /// DAGs, where reading the task's TI rows would follow its rows, each a heap or clustered
    /// page. Each (DAG, label) is looked up once per connection.
    async fn resolve_run_ids(&mut self, keys: &HashSet<TiKey>) -> Result<()> {
        let mut wanted: HashMap<String, HashSet<String>> = HashMap::new();
        for k in keys {
            if !tikey::run_id::raw_run_ids(&k.run_id).is_empty() {
                continue;
            }
            let own = vec![k.dag_id.clone()];
            let raws = match self.dag_ids.get(&k.dag_id) {
                Some(v) => v,
                None if !sql::looks_hashed(&k.dag_id) => &own,
                None => continue,
            };
            for dag in raws {
                if !self.run_ids.contains_key(&(dag.clone(), k.run_id.clone())) {
                    wanted
                        .entry(dag.clone())
                        .or_default()
                        .insert(k.run_id.clone());
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let dags: Vec<String> = wanted.keys().cloned().collect();
        for chunk in dags.chunks(ROWS_CHUNK) {
            let dialect = self.dialect();
            let marks: Vec<String> = (1..=chunk.len())
                .map(|n| match dialect {
                    Dialect::Postgres => format!("${n}"),
                    _ => "?".to_owned(),
                })
                .collect();
            let select = format!(
                "SELECT dag_id, run_id FROM {} WHERE dag_id IN ({})",
                self.table("dag_run"),
                marks.join(", ")
            );
            let sql = with_timeout(dialect, &select, &self.cfg);
            let binds: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let mut found: Vec<((String, String), String)> = Vec::new();
            self.in_read_tx(&sql, &binds, "reading dag_run from", |row| {
                let (dag, run) = (row.str(0)?, row.str(1)?);
                let label = tikey::make_safe_label_value(run);
                if wanted.get(dag).is_some_and(|w| w.contains(&label)) {
                    found.push(((dag.to_owned(), label), run.to_owned()));
                }
                Ok(())
            })
            .await?;
            for (dag, labels) in wanted.iter().filter(|(d, _)| chunk.contains(d)) {
                for label in labels {
                    self.run_ids
                        .entry((dag.clone(), label.clone()))
                        .or_default();
                }
            }
            for (pair, raw) in found {
                self.run_ids.entry(pair).or_default().push(raw);
            }
        }
        Ok(())
    }

    /// A delete batch's re-read: [`Db::ti_rows`] of its candidates (one statement).
    pub async fn reread<'k>(&mut self, candidates: &'k HashSet<TiKey>) -> Result<Tis<&'k TiKey>> {
        self.ti_rows(candidates).await
    }

    /// The text of a statement exactly as it is sent: the main read (`None`), or the rows of
    /// `candidates` (at most [`ROWS_CHUNK`] of them).
    pub fn sql_text(&self, candidates: Option<&HashSet<TiKey>>) -> String {
        let dialect = self.dialect();
        let table = self.table("task_instance");
        let select = match candidates {
            None => active_sql(dialect, &table),
            Some(c) => {
                RowsQuery::new(c, &self.dag_ids, &self.run_ids)
                    .sql(dialect, &table)
                    .0
            }
        };
        with_timeout(dialect, &select, &self.cfg)
    }

    /// The plan of the main read (`None`) or of the rows query of `candidates`, as the DB prints
    /// it, run the way the query runs (read-only transaction, statement timeout).
    pub async fn explain(
        &mut self,
        candidates: Option<&HashSet<TiKey>>,
        how: Explain,
    ) -> Result<String> {
        if let Some(c) = candidates {
            self.resolve_run_ids(c).await?;
        }
        let dialect = self.dialect();
        let table = self.table("task_instance");
        let rows = candidates.map(|c| RowsQuery::new(c, &self.dag_ids, &self.run_ids));
        let (select, binds) = match &rows {
            None => (active_sql(dialect, &table), Vec::new()),
            Some(q) => q.sql(dialect, &table),
        };
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
        let col = if dialect == Dialect::Sqlite { 3 } else { 0 };
        let mut lines = Vec::new();
        self.in_read_tx(&sql, &binds, READ_TI, |row| {
            lines.push(row.text(col)?);
            Ok(())
        })
        .await?;
        Ok(lines.join("\n"))
    }

    /// Every DAG the database knows (`dag.dag_id`), normalized into label form (and the raw ids
    /// behind each label kept for [`Db::ti_rows`]). The `dag` table holds one row per DAG ever
    /// parsed (stale ones included), so it is small: its cost follows the number of DAGs, never
    /// `task_instance`. Read like every statement (read-only transaction, statement timeout,
    /// schema-qualified).
    pub async fn known_dags(&mut self) -> Result<KnownDags> {
        let dialect = self.dialect();
        let sql = with_timeout(
            dialect,
            &format!("SELECT dag_id FROM {}", self.table("dag")),
            &self.cfg,
        );
        let mut raw: HashMap<String, Vec<String>> = HashMap::new();
        self.in_read_tx(&sql, &[], "reading the dag table from", |row| {
            let id = row.str(0)?;
            raw.entry(tikey::make_safe_label_value(id))
                .or_default()
                .push(id.to_owned());
            Ok(())
        })
        .await?;
        let dags = raw.keys().cloned().collect();
        self.dag_ids = raw;
        Ok(dags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_keys_are_ambiguous() {
        let mut m = ActiveMap::new();
        let k = TiKey::from_db("d", "t", "r", -1);
        insert_active(&mut m, k.clone(), ActiveTi::new(3, Some("up_for_retry")));
        assert!(!m[&k].ambiguous);
        insert_active(&mut m, k.clone(), ActiveTi::new(2, Some("running")));
        assert!(m[&k].ambiguous);
    }

    #[test]
    fn terminal_rows_keep_the_lowest_try_and_a_null_proves_nothing() {
        let k = TiKey::from_db("d", "t", "r", -1);
        let mut tis = Tis::default();
        tis.insert(k.clone(), Some(3), Some("failed"));
        tis.insert(k.clone(), Some(2), Some("success"));
        assert_eq!(tis.ended[&k].min_try, Some(2));
        tis.insert(k.clone(), None, Some("removed"));
        assert_eq!(tis.ended[&k].min_try, None);
        assert!(tis.active.is_empty());
        tis.insert(k.clone(), None, None);
        tis.insert(
            TiKey::from_db("d", "t", "s", -1),
            Some(1),
            Some("awaiting_input"),
        );
        assert_eq!(tis.active.len(), 2, "NULL and unknown states are active");
    }
}
