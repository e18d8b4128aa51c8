//! The SQL the sweeper sends, per dialect: the active-TI read, the candidates' rows, the
//! statement timeouts, schema-qualified names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tikey::TiKey;

use super::TERMINAL_STATES;
use super::config::DbConfig;

/// Which SQL dialect a statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    MariaDb,
    MySql,
    Sqlite,
}

/// `name`, qualified with `schema` on PostgreSQL; quoted as identifiers (`"` doubled).
pub(super) fn qualified(dialect: Dialect, schema: Option<&str>, name: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    match (dialect, schema) {
        (Dialect::Postgres, Some(schema)) => format!("{}.{}", q(schema), q(name)),
        _ => name.to_owned(),
    }
}

pub use tikey::looks_hashed;

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

/// The columns both reads return, in the order [`super::Db`] reads them.
fn select(dialect: Dialect, table: &str) -> String {
    let int = match dialect {
        Dialect::Postgres => "BIGINT",
        Dialect::MariaDb | Dialect::MySql => "SIGNED",
        Dialect::Sqlite => "INTEGER",
    };
    format!(
        "SELECT dag_id, task_id, run_id, CAST(map_index AS {int}), CAST(try_number AS {int}), state \
         FROM {table}"
    )
}

/// The main read: every active TI. PostgreSQL and MariaDB estimate each range from their
/// statistics (histograms, index dives) and read the few active rows through `ti_state`;
/// SQLite's planner knows only the average rows per value (`sqlite_stat1`), judges a range on
/// `state` as costly as a scan, and would scan: there every range is its own `UNION ALL` branch
/// `INDEXED BY ti_state` (the ranges are disjoint, so the union is the same set).
pub(super) fn active_sql(dialect: Dialect, table: &str) -> String {
    let select = select(dialect, table);
    if dialect == Dialect::Sqlite {
        active_terms()
            .iter()
            .map(|term| format!("{select} INDEXED BY ti_state WHERE {term}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    } else {
        format!("{select} WHERE {}", active_predicate())
    }
}

/// What the candidates' rows query asks for, grouped so that Airflow's composite key
/// `(dag_id, task_id, run_id, map_index)` serves every part:
/// * a task whose candidates' run_ids are all known raw (unchanged by normalization, or rebuilt
///   and proven by their md5, [`tikey::run_id::raw_run_ids`]): `dag_id = ? AND task_id = ? AND
///   run_id IN (…)`, index lookups, whatever the table's size;
/// * a run_id of another shape, resolved from `dag_run` (see [`super::Db::ti_rows`]): looked up
///   like a proven one;
/// * a task with a run_id that cannot be told from its label or from `dag_run`: `dag_id = ? AND
///   task_id = ?`, the task's rows (a prefix of the key);
/// * a hashed task_id (its raw id cannot be told): `dag_id = ?`, the DAG's rows.
///
/// Never the table: a candidate whose raw dag_id is unknown is left out (no row comes back for
/// it, so it is kept).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RowsQuery {
    /// Per (raw dag_id, raw task_id): the raw run_ids, or `None` for the whole task.
    pub tasks: BTreeMap<(String, String), Option<BTreeSet<String>>>,
    /// Raw dag_ids read whole (a hashed task_id).
    pub dags: BTreeSet<String>,
}

impl RowsQuery {
    /// The query for `keys`, with `dag_ids` the raw dag_ids behind each label (from the `dag`
    /// table; a label that is its own value needs no entry), and `run_ids` the raw run_ids found
    /// in `dag_run` behind a (raw dag_id, run_id label) whose label cannot be rebuilt.
    pub fn new(
        keys: &HashSet<TiKey>,
        dag_ids: &HashMap<String, Vec<String>>,
        run_ids: &HashMap<(String, String), Vec<String>>,
    ) -> RowsQuery {
        let mut q = RowsQuery::default();
        for k in keys {
            let own = [k.dag_id.clone()];
            let raws: &[String] = match dag_ids.get(&k.dag_id) {
                Some(v) => v,
                None if tikey::make_safe_label_value(&k.dag_id) == k.dag_id
                    && !looks_hashed(&k.dag_id) =>
                {
                    &own
                }
                None => continue,
            };
            for dag in raws {
                if looks_hashed(&k.task_id) {
                    q.dags.insert(dag.clone());
                    continue;
                }
                let mut runs = tikey::run_id::raw_run_ids(&k.run_id);
                if runs.is_empty()
                    && let Some(found) = run_ids.get(&(dag.clone(), k.run_id.clone()))
                {
                    runs = found.clone();
                }
                let entry = q
                    .tasks
                    .entry((dag.clone(), k.task_id.clone()))
                    .or_insert_with(|| Some(BTreeSet::new()));
                match (runs.is_empty(), entry.as_mut()) {
                    (true, _) => *entry = None,
                    (false, Some(set)) => set.extend(runs),
                    (false, None) => {}
                }
            }
        }
        // A task inside a DAG read whole is read with it.
        let dags = &q.dags;
        q.tasks.retain(|(d, _), _| !dags.contains(d));
        q
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.dags.is_empty()
    }

    /// The statement and its bind values, in placeholder order.
    pub(super) fn sql(&self, dialect: Dialect, table: &str) -> (String, Vec<&str>) {
        let mut binds: Vec<&str> = Vec::new();
        fn mark<'a>(dialect: Dialect, v: &'a str, binds: &mut Vec<&'a str>) -> String {
            binds.push(v);
            match dialect {
                Dialect::Postgres => format!("${}", binds.len()),
                _ => "?".to_owned(),
            }
        }
        // The tasks of one DAG that ask for the same run_ids (or for all their rows) share one
        // term, `task_id IN (…)`: every task with every run is exactly the rows their own terms
        // ORed would give, and the planner meets one index condition instead of hundreds of OR'd
        // ones (PostgreSQL took 1.1 s to plan 1,500 of them: 1,500 zombies of one DAG run).
        type Runs<'q> = Option<&'q BTreeSet<String>>;
        let mut groups: Vec<(&str, Runs<'_>, Vec<&str>)> = Vec::new();
        let mut group_of: HashMap<(&str, Runs<'_>), usize> = HashMap::new();
        for ((dag, task), runs) in &self.tasks {
            let i = *group_of.entry((dag, runs.as_ref())).or_insert_with(|| {
                groups.push((dag, runs.as_ref(), Vec::new()));
                groups.len() - 1
            });
            groups[i].2.push(task);
        }
        let mut terms = Vec::new();
        for (dag, runs, tasks) in groups {
            let d = mark(dialect, dag, &mut binds);
            let t: Vec<String> = tasks.iter().map(|t| mark(dialect, t, &mut binds)).collect();
            let task = match &t[..] {
                [one] => format!("task_id = {one}"),
                many => format!("task_id IN ({})", many.join(", ")),
            };
            match runs {
                Some(runs) => {
                    let marks: Vec<String> =
                        runs.iter().map(|r| mark(dialect, r, &mut binds)).collect();
                    terms.push(format!(
                        "(dag_id = {d} AND {task} AND run_id IN ({}))",
                        marks.join(", ")
                    ));
                }
                None => terms.push(format!("(dag_id = {d} AND {task})")),
            }
        }
        for dag in &self.dags {
            let d = mark(dialect, dag, &mut binds);
            terms.push(format!("(dag_id = {d})"));
        }
        let sql = format!("{} WHERE {}", select(dialect, table), terms.join(" OR "));
        (sql, binds)
    }
}

/// `sql` under the server-side statement timeout where it is written into the statement:
/// MariaDB `SET STATEMENT max_statement_time=S FOR …`, MySQL `SELECT /*+ MAX_EXECUTION_TIME(ms) */`
/// (PostgreSQL's is the transaction's `SET LOCAL`; SQLite has none: its busy timeout and the
/// client-side limit apply).
pub(super) fn with_timeout(dialect: Dialect, sql: &str, cfg: &DbConfig) -> String {
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

/// The statements that open a PostgreSQL read: read-only, the statement timeout, and the
/// `search_path` pinned for this transaction (to the schema, else to the role's or database's
/// default: a pooled server connection may carry another client's session `SET search_path`).
/// JIT off where the server has it: the planner's cost estimate grows with the table, and past
/// jit_above_cost PostgreSQL compiles a query that reads a few thousand index-found rows
/// (measured: 36 ms of a 208 ms read at 10M rows); a server without `jit` (before 11, or a
/// protocol-compatible one) would fail on `SET jit`.
pub(super) fn pg_begin(cfg: &DbConfig, jit: bool) -> String {
    let path = match &cfg.schema {
        Some(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        None => "DEFAULT".to_owned(),
    };
    let mut sql = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL search_path TO {path}",
        cfg.timeout_ms()
    );
    if jit {
        sql.push_str("; SET LOCAL jit = off");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hashed_shape_is_recognized() {
        assert!(looks_hashed("manual__2025-01-01T0000000000-654f198ec"));
        assert!(looks_hashed("-654f198ec"));
        assert!(!looks_hashed("kpo_zombie_dag"));
        assert!(!looks_hashed("task-654F198EC"));
    }

    #[test]
    fn the_main_read_reads_ranges_of_state() {
        let pg = active_sql(Dialect::Postgres, "\"s\".\"task_instance\"");
        assert!(
            pg.ends_with(
                "FROM \"s\".\"task_instance\" WHERE (state IS NULL OR state < 'failed' \
                 OR (state > 'failed' AND state < 'removed') OR (state > 'removed' AND state < 'skipped') \
                 OR (state > 'skipped' AND state < 'success') \
                 OR (state > 'success' AND state < 'upstream_failed') OR state > 'upstream_failed')"
            ),
            "{pg}"
        );
        assert!(!pg.contains("operator") && !pg.contains("NOT IN"), "{pg}");
        // SQLite: one branch per range, each forced onto ti_state.
        let lite = active_sql(Dialect::Sqlite, "task_instance");
        assert_eq!(lite.matches(" UNION ALL ").count(), 6, "{lite}");
        assert_eq!(
            lite.matches("INDEXED BY ti_state WHERE").count(),
            7,
            "{lite}"
        );
    }

    #[test]
    fn the_rows_query_looks_up_proven_run_ids_and_reads_a_task_only_when_it_must() {
        let key = |d: &str, t: &str, r: &str| TiKey::from_db(d, t, r, -1);
        let scheduled = "scheduled__2024-01-01T00:00:00+00:00";
        let long_dag = format!("dag_{}", "x".repeat(70));
        let keys: HashSet<TiKey> = [
            key("d", "t", scheduled),
            key("d", "t", "plain_run"),
            key("d", "u", "my run"), // hashed, not Airflow-shaped: the task's rows
            key("d", "u", scheduled),
            key(&long_dag, "t", scheduled), // hashed dag_id: its raw id from the dag table
            key("gone_dag", "t", scheduled), // not in the dag table, but its own label
            key("e", &"t".repeat(70), scheduled), // hashed task_id: the DAG's rows
        ]
        .into_iter()
        .collect();
        let dag_ids: HashMap<String, Vec<String>> = [(
            tikey::make_safe_label_value(&long_dag),
            vec![long_dag.clone()],
        )]
        .into();
        let user_run = tikey::make_safe_label_value("my run");
        let q = RowsQuery::new(&keys, &dag_ids, &HashMap::new());
        let runs = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        // The rebuilt raw id, and the label itself (a run_id may literally be it).
        let label = tikey::make_safe_label_value(scheduled);
        assert_eq!(
            q.tasks[&("d".into(), "t".into())],
            runs(&[scheduled, &label, "plain_run"])
        );
        assert_eq!(q.tasks[&("d".into(), "u".into())], None);
        assert_eq!(
            q.tasks[&(long_dag.clone(), "t".into())],
            runs(&[scheduled, &label])
        );
        assert_eq!(
            q.tasks[&("gone_dag".into(), "t".into())],
            runs(&[scheduled, &label])
        );
        assert_eq!(q.dags, ["e".to_owned()].into());
        assert_eq!(q.tasks.len(), 4);
        let (pg, binds) = q.sql(Dialect::Postgres, "task_instance");
        assert!(
            pg.contains("(dag_id = $1 AND task_id = $2 AND run_id IN ($3, $4, $5))"),
            "{pg}"
        );
        assert!(
            pg.contains(" OR (dag_id = $6 AND task_id = $7) OR "),
            "{pg}"
        );
        assert!(
            !pg.contains("state <") && !pg.contains("state IS"),
            "every state: {pg}"
        );
        assert_eq!(binds[..5], ["d", "t", "plain_run", &label, scheduled]);
        let (my, my_binds) = q.sql(Dialect::MariaDb, "task_instance");
        assert_eq!(my.matches('?').count(), my_binds.len());
        assert_eq!(binds, my_binds);
        // A hashed dag_id the dag table does not know: nothing is read for it.
        let none = HashMap::new();
        let q = RowsQuery::new(
            &[key(&long_dag, "t", scheduled)].into(),
            &HashMap::new(),
            &none,
        );
        assert!(q.is_empty());
        // A user's run_id found in dag_run is looked up like a proven one.
        let found = [(("d".to_owned(), user_run), vec!["my run".to_owned()])].into();
        let q = RowsQuery::new(&[key("d", "u", "my run")].into(), &HashMap::new(), &found);
        assert_eq!(q.tasks[&("d".into(), "u".into())], runs(&["my run"]));
    }

    #[test]
    fn tasks_of_one_dag_asking_for_the_same_runs_share_one_term() {
        let key = |d: &str, t: &str, r: &str| TiKey::from_db(d, t, r, -1);
        let run = "scheduled__2024-01-01T00:00:00+00:00";
        let label = tikey::make_safe_label_value(run);
        // 500 zombies of one DAG run, one of another run, one of another DAG, and a task read
        // whole twice.
        let mut keys: HashSet<TiKey> = (0..500)
            .map(|i| key("d", &format!("t{i:03}"), run))
            .collect();
        keys.insert(key("d", "t000", "manual_run"));
        keys.insert(key("e", "t000", run));
        keys.insert(key("d", "u1", "my run"));
        keys.insert(key("d", "u2", "my run"));
        let q = RowsQuery::new(&keys, &HashMap::new(), &HashMap::new());
        let (pg, binds) = q.sql(Dialect::Postgres, "task_instance");
        let terms: Vec<&str> = pg.split(" WHERE ").nth(1).unwrap().split(" OR ").collect();
        // t000 asks for both runs (its own set), t001..t499 for the one run, u1 and u2 for all
        // their rows, e's task alone.
        assert_eq!(terms.len(), 4, "{pg}");
        let many = terms
            .iter()
            .find(|t| t.matches('$').count() > 400)
            .expect("one term for the 499 tasks");
        assert!(
            many.starts_with("(dag_id = $6 AND task_id IN ($7, $8, "),
            "{many}"
        );
        assert!(many.ends_with("AND run_id IN ($506, $507))"), "{many}");
        assert_eq!(binds[505..507], [label.as_str(), run]);
        assert!(
            terms.contains(&"(dag_id = $508 AND task_id IN ($509, $510))"),
            "{pg}"
        );
        assert!(
            terms
                .iter()
                .any(|t| t.starts_with("(dag_id = $") && t.contains("AND task_id = $")),
            "{pg}"
        );
        assert_eq!(pg.matches('$').count(), binds.len());
        let (my, my_binds) = q.sql(Dialect::MariaDb, "task_instance");
        assert_eq!(my.matches('?').count(), my_binds.len());
    }

    #[test]
    fn postgres_reads_pin_search_path_and_set_jit_only_where_it_exists() {
        let mut cfg = DbConfig {
            timeout: Duration::from_secs(3),
            ..DbConfig::default()
        };
        assert_eq!(
            pg_begin(&cfg, true),
            "BEGIN READ ONLY; SET LOCAL statement_timeout = 3000; SET LOCAL search_path TO DEFAULT; \
             SET LOCAL jit = off"
        );
        cfg.schema = Some("Team-\"B".into());
        assert_eq!(
            pg_begin(&cfg, false),
            "BEGIN READ ONLY; SET LOCAL statement_timeout = 3000; SET LOCAL search_path TO \"Team-\"\"B\""
        );
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
}
