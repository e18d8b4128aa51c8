//! The cost of the candidates' rows query (the decision table's rows 9–11), not a test:
//! `sweeper/bench/run.sh --rows` builds and runs it.
//!
//! For each database (`--dbs pg,mariadb`) a fresh Airflow 3.3.2 DB whose `task_instance` grows
//! through `--sizes` (default 1,000,000 then 10,000,000 rows of finished TIs, one task each), plus
//! one task holding 100,000 runs with Airflow-shaped run_ids (`scheduled__<timestamp>`, hashed in
//! their labels), one holding 100,000 runs with run_ids of a user's own shape (`user run N`: hashed,
//! not rebuildable), and 500 candidates spread over 50 tasks. At each size it prints, for each
//! query, the rows it read, its buffers (PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`: shared hit +
//! read) or pages (MariaDB `ANALYZE FORMAT=JSON`: `r_engine_stats.pages_accessed`), the server's
//! time, and the wall time of `Db::ti_rows` (median of `--runs`):
//! * `proven`: the 500 candidates and one run of the Airflow-shaped hot task (501 keys): every
//!   run_id rebuilt and proven by its md5, so every key is an index lookup;
//! * `unproven`: the 500 and one run of the user-shaped hot task: its run_id is found in
//!   `dag_run` (by its unique key's index, once per connection), then looked up like the others;
//! * `batch`: 50 of the 500 (a delete batch's re-read).
//!
//! Usage: rows_bench [--sizes N,N] [--dbs pg,mariadb] [--runs N] [--keep-db]
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sweeper::db::{Db, DbConfig, DbUrl, Explain};
use testsupport::{DbKind, TestDb, TiSpec};
use tikey::TiKey;

const DAG: &str = "rows_bench_dag";
const RUN: &str = "scheduled__2025-06-01T00:00:00+00:00";
const CHUNK: u64 = 1_000_000;
const HOT_RUNS: u64 = 100_000;

struct Opts {
    sizes: Vec<u64>,
    dbs: Vec<String>,
    runs: usize,
    keep_db: bool,
}

fn opts() -> Opts {
    let usage = "usage: rows_bench [--sizes N,N] [--dbs pg,mariadb] [--runs N] [--keep-db]";
    let mut a = std::env::args().skip(1);
    let mut o = Opts {
        sizes: vec![1_000_000, 10_000_000],
        dbs: vec!["pg".into(), "mariadb".into()],
        runs: 5,
        keep_db: false,
    };
    while let Some(flag) = a.next() {
        let mut val = || a.next().expect(usage);
        match flag.as_str() {
            "--sizes" => {
                o.sizes = val()
                    .split(',')
                    .map(|v| v.parse().expect("sizes: numbers"))
                    .collect()
            }
            "--dbs" => o.dbs = val().split(',').map(str::to_owned).collect(),
            "--runs" => o.runs = val().parse().expect("a number"),
            "--keep-db" => o.keep_db = true,
            f => panic!("unknown flag {f}; {usage}"),
        }
    }
    o.sizes.sort_unstable();
    o
}

/// Airflow's own run_id for hour `i` after 2020-01-01, as SQL over `i`.
fn airflow_run_sql(kind: DbKind) -> String {
    match kind {
        DbKind::Airflow3MySql => {
            "CONCAT('scheduled__', DATE_FORMAT(TIMESTAMP '2020-01-01 00:00:00' \
                                  + INTERVAL i HOUR, '%Y-%m-%dT%H:%i:%s'), '+00:00')"
                .to_owned()
        }
        _ => "'scheduled__' || to_char(timestamp '2020-01-01' + i * interval '1 hour', \
              'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
            .to_owned(),
    }
}

/// The same run_id in Rust.
fn airflow_run(i: u64) -> String {
    let t = k8s_openapi::jiff::civil::date(2020, 1, 1)
        .at(0, 0, 0, 0)
        .checked_add(k8s_openapi::jiff::Span::new().hours(i as i64))
        .expect("a date");
    format!("scheduled__{}+00:00", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

fn text(kind: DbKind, s: &str) -> String {
    match kind {
        DbKind::Airflow3MySql => format!("CONCAT('{s}', i)"),
        _ => format!("'{s}' || i"),
    }
}

fn modulo(kind: DbKind, prefix: &str, n: u64) -> String {
    match kind {
        DbKind::Airflow3MySql => format!("CONCAT('{prefix}', i % {n})"),
        _ => format!("'{prefix}' || (i % {n})"),
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = opts();
    println!("the candidates' rows query (rows 9-11), EXPLAIN ANALYZE and wall time");
    for name in &o.dbs {
        let db = testsupport::fresh_bench_db(name).await;
        let kind = db.kind;
        let seed = TiSpec::new(DAG, "seed", RUN).state(Some("success"));
        db.insert_ti(&seed).await;
        let fixed = |task: &str, run: String| {
            vec![
                ("task_id", task.to_owned()),
                ("run_id", run),
                ("state", "'success'".to_owned()),
                ("try_number", "1".to_owned()),
            ]
        };
        let t = Instant::now();
        db.clone_ti_with(
            &seed,
            &fixed("'hot'", airflow_run_sql(kind)),
            1..=HOT_RUNS,
            true,
        )
        .await;
        // The user-shaped runs exist in dag_run (their run_ids are found there by index).
        db.clone_runs(&seed, &[("run_id", text(kind, "user run "))], 1..=HOT_RUNS)
            .await;
        db.clone_ti_with(
            &seed,
            &fixed("'hot_user'", text(kind, "user run ")),
            1..=HOT_RUNS,
            true,
        )
        .await;
        let mut cand = fixed("", airflow_run_sql(kind));
        cand[0].1 = modulo(kind, "cand_", 50);
        db.clone_ti_with(&seed, &cand, 1..=500, true).await;
        println!(
            "{name}: hot tasks and candidates written in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let five_hundred: Vec<TiKey> = (1..=500u64)
            .map(|i| TiKey::from_db(DAG, &format!("cand_{}", i % 50), &airflow_run(i), -1))
            .collect();
        let proven: HashSet<TiKey> = five_hundred
            .iter()
            .cloned()
            .chain([TiKey::from_db(DAG, "hot", &airflow_run(50_000), -1)])
            .collect();
        let unproven: HashSet<TiKey> = five_hundred
            .iter()
            .cloned()
            .chain([TiKey::from_db(DAG, "hot_user", "user run 50000", -1)])
            .collect();
        let batch: HashSet<TiKey> = five_hundred.iter().take(50).cloned().collect();
        let mut have = 1 + 2 * HOT_RUNS + 500;
        for &size in &o.sizes {
            if size > have {
                let t = Instant::now();
                let mut lo = have;
                while lo < size {
                    let hi = (lo + CHUNK).min(size);
                    db.clone_ti(&seed, "filler_", lo + 1..=hi, "'success'")
                        .await;
                    lo = hi;
                }
                have = size;
                println!(
                    "{name}: task_instance grown to {size} rows in {:.1}s",
                    t.elapsed().as_secs_f64()
                );
            }
            for (what, keys) in [
                ("proven", &proven),
                ("unproven", &unproven),
                ("batch", &batch),
            ] {
                measure(kind, &db, name, size, what, keys, o.runs).await;
            }
        }
        if o.keep_db {
            println!("kept the database: {}", db.url);
            std::mem::forget(db);
        } else {
            db.drop_database().await;
        }
    }
}

async fn measure(
    kind: DbKind,
    db: &TestDb,
    name: &str,
    size: u64,
    what: &str,
    keys: &HashSet<TiKey>,
    runs: usize,
) {
    let url = DbUrl::parse(&db.url).unwrap();
    let mut conn = Db::connect_with(&url, &DbConfig::default())
        .await
        .expect("connect");
    conn.known_dags().await.expect("dags");
    // The first read on a connection also resolves run_ids the labels cannot rebuild (dag_run).
    let t = Instant::now();
    conn.ti_rows(keys).await.expect("rows");
    let first = t.elapsed();
    let plan = conn
        .explain(Some(keys), Explain::Analyze)
        .await
        .expect("explain");
    let mut times = Vec::new();
    let mut rows = (0, 0);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let tis = conn.ti_rows(keys).await.expect("rows");
        times.push(t.elapsed());
        rows = (tis.active.len(), tis.ended.len());
    }
    times.sort();
    let wall = times[times.len() / 2];
    let (read, buffers, server_ms) = summarize(kind, &plan);
    println!(
        "{name:8} {size:>10} rows  {what:9} {:>4} keys -> {:>4} ended  read {read:>7} rows  {buffers:>22}  server {server_ms:>8.2} ms  wall {:>8.2} ms (first {:>8.2} ms)",
        keys.len(),
        rows.1,
        ms(wall),
        ms(first)
    );
    if std::env::var_os("ROWS_BENCH_PLANS").is_some() {
        for l in plan.lines() {
            println!("    | {}", l.chars().take(200).collect::<String>());
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rows read from task_instance, buffers (PostgreSQL) or pages (MariaDB), server milliseconds.
fn summarize(kind: DbKind, plan: &str) -> (u64, String, f64) {
    if kind == DbKind::Airflow3MySql {
        let v: serde_json::Value = serde_json::from_str(plan).expect("ANALYZE FORMAT=JSON");
        let mut rows = 0.0;
        let mut pages = 0;
        walk(&v, &mut |k, x| match k {
            "r_rows" => rows += x.as_f64().unwrap_or(0.0),
            "pages_accessed" => pages += x.as_u64().unwrap_or(0),
            _ => {}
        });
        let total = v["query_block"]["r_total_time_ms"].as_f64().unwrap_or(0.0);
        (rows as u64, format!("pages {pages}"), total)
    } else {
        // The top node's totals: its first "Buffers:" line and "actual ... rows=".
        let mut buffers = String::from("buffers ?");
        let mut rows = 0;
        let mut total = 0.0;
        for l in plan.lines() {
            let l = l.trim();
            if buffers == "buffers ?"
                && let Some(b) = l.strip_prefix("Buffers: shared ")
            {
                let n = |k: &str| {
                    b.split_whitespace()
                        .find_map(|p| p.strip_prefix(k))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                buffers = format!(
                    "buffers {} (hit {}, read {})",
                    n("hit=") + n("read="),
                    n("hit="),
                    n("read=")
                );
            }
            if rows == 0
                && let Some(i) = l.find("(actual time=")
            {
                rows = l[i..]
                    .split_whitespace()
                    .find_map(|p| p.strip_prefix("rows="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
            if let Some(t) = l.strip_prefix("Execution Time: ") {
                total = t.trim_end_matches(" ms").parse().unwrap_or(0.0);
            }
        }
        (rows, buffers, total)
    }
}

fn walk(v: &serde_json::Value, f: &mut impl FnMut(&str, &serde_json::Value)) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                f(k, x);
                walk(x, f);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        _ => {}
    }
}
