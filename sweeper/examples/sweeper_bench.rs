//! The sweeper's benchmark (not a test): `sweeper/bench/run.sh` builds and runs it.
//!
//! Loads 50,000 KPO pods into the local apiserver (`tests/env/up`) and 1,000,000 task instances
//! (50,000 active) into a fresh Airflow 3.x PostgreSQL DB, then measures, each `--runs` times:
//! * the sweeper's dry run over all of them (the release binary: wall time, and peak RSS from
//!   `/usr/bin/time -v`, else from polling the child's VmHWM);
//! * the floor: a bare metadata-only paged LIST of the same pods (nothing decoded but the continue
//!   token) plus the bare active-TI query (rows streamed and counted), each with its own connection;
//!
//! and prints the figures and the ratio. The pods are deleted at the end unless `--keep`.
//!
//! Usage: bench SWEEPER_BIN [--pods N] [--tis N] [--active N] [--runs N] [--keep]
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use sqlx::{Connection, Row};
use testsupport::{DbKind, TiSpec};
use tikey::stamp::{self, Stamp};

const OWNER: &str = "system:serviceaccount:airflow:airflow-worker";
const DAG: &str = "bench_dag";
const RUN: &str = "scheduled__2025-06-01T00:00:00+00:00";

struct Opts {
    bin: PathBuf,
    pods: usize,
    tis: usize,
    active: usize,
    runs: usize,
    keep: bool,
}

fn opts() -> Opts {
    let mut a = std::env::args().skip(1);
    let bin =
        PathBuf::from(a.next().expect(
            "usage: bench SWEEPER_BIN [--pods N] [--tis N] [--active N] [--runs N] [--keep]",
        ));
    let mut o = Opts {
        bin,
        pods: 50_000,
        tis: 1_000_000,
        active: 50_000,
        runs: 5,
        keep: false,
    };
    while let Some(flag) = a.next() {
        let mut num = || a.next().and_then(|v| v.parse().ok()).expect("a number");
        match flag.as_str() {
            "--pods" => o.pods = num(),
            "--tis" => o.tis = num(),
            "--active" => o.active = num(),
            "--runs" => o.runs = num(),
            "--keep" => o.keep = true,
            f => panic!("unknown flag {f}"),
        }
    }
    assert!(
        o.active <= o.tis && o.pods <= o.active,
        "need pods <= active <= tis"
    );
    o
}

/// Task n's pod: every 100th pod belongs to a finished TI (a zombie), the others to active ones.
fn pod_task(n: usize, o: &Opts) -> String {
    if n.is_multiple_of(100) {
        format!("task_{}", o.active + n)
    } else {
        format!("task_{n}")
    }
}

#[tokio::main]
async fn main() {
    let o = opts();
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "bench").await;
    println!("namespace {ns}: creating {} KPO pods…", o.pods);
    let t = Instant::now();
    create_pods(&client, &ns, &o).await;
    println!("  created in {:.1}s", t.elapsed().as_secs_f64());

    println!(
        "fresh Airflow 3.x PostgreSQL DB: {} TIs, {} active…",
        o.tis, o.active
    );
    let t = Instant::now();
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    load_tis(&db, &o).await;
    println!("  loaded in {:.1}s", t.elapsed().as_secs_f64());

    let mut list_t = Vec::new();
    let mut query_t = Vec::new();
    let mut sweep_t = Vec::new();
    let mut rss = Vec::new();
    for run in 1..=o.runs {
        let (d, n) = bare_list(&ns).await;
        assert_eq!(n, o.pods, "bare LIST saw every pod");
        list_t.push(d);
        let (d, n) = bare_query(&db.url).await;
        assert_eq!(
            n,
            o.active + 1,
            "bare query saw every active TI (+ the seed row)"
        );
        query_t.push(d);
        let (d, kb) = sweep(&o, &ns, &db.url).await;
        sweep_t.push(d);
        rss.push(kb);
        println!(
            "run {run}: bare LIST {:.3}s, bare query {:.3}s, sweeper dry run {:.3}s, peak RSS {:.1} MB",
            list_t[run - 1].as_secs_f64(),
            query_t[run - 1].as_secs_f64(),
            d.as_secs_f64(),
            kb as f64 / 1024.0
        );
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let floor = best(&list_t) + best(&query_t);
    let ratio = best(&sweep_t).as_secs_f64() / floor.as_secs_f64();
    println!();
    println!(
        "pods {}  TIs {}  active {}  runs {} (best of each)",
        o.pods, o.tis, o.active, o.runs
    );
    println!(
        "bare metadata-only LIST  {:>8.3} s",
        best(&list_t).as_secs_f64()
    );
    println!(
        "bare active-TI query     {:>8.3} s",
        best(&query_t).as_secs_f64()
    );
    println!(
        "sweeper dry run          {:>8.3} s",
        best(&sweep_t).as_secs_f64()
    );
    println!("ratio sweeper / (LIST + query) = {ratio:.2}  (target <= 1.2)");
    let mut per_run: Vec<f64> = sweep_t
        .iter()
        .zip(list_t.iter().zip(&query_t))
        .map(|(s, (l, q))| s.as_secs_f64() / (*l + *q).as_secs_f64())
        .collect();
    per_run.sort_by(f64::total_cmp);
    println!(
        "per-run ratios {:?}, median {:.2} (the machine's other load shows here)",
        per_run
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        per_run[per_run.len() / 2]
    );
    println!(
        "sweeper peak RSS         {:>8.1} MB  (max over runs; target <= 100)",
        rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0
    );

    if o.keep {
        println!("kept the pods in namespace {ns}");
    } else {
        delete_pods(&client, &ns, o.pods).await;
        println!("deleted the bench pods");
    }
}

/// Deletes the bench pods one by one (grace 0), 48 at a time: a deletecollection of 50,000 pods
/// outlives the client's timeout.
async fn delete_pods(client: &kube::Client, ns: &str, n: usize) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    futures::stream::iter(1..=n)
        .map(|i| {
            let (api, dp) = (api.clone(), dp.clone());
            async move {
                if let Err(e) = api.delete(&format!("bench-{i}"), &dp).await {
                    eprintln!("delete bench-{i}: {e}");
                }
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<()>>()
        .await;
}

async fn create_pods(client: &kube::Client, ns: &str, o: &Opts) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now().as_second() - 3600;
    futures::stream::iter(1..=o.pods)
        .map(|n| {
            let api = api.clone();
            async move {
                let ti = TiSpec::new(DAG, &pod_task(n, o), RUN);
                let mut pod = testsupport::kpo_pod(&format!("bench-{n}"), &ti);
                let s = Stamp {
                    ti_key: Some(ti.key()),
                    try_number: Some(1),
                    admitted_at: Some(now),
                    created_by: Some(OWNER.to_owned()),
                };
                pod.metadata.annotations = Some(s.to_annotations());
                pod.metadata.labels.as_mut().unwrap().insert(
                    stamp::STAMPED_LABEL.to_owned(),
                    stamp::STAMPED_VALUE.to_owned(),
                );
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => break,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("create bench-{n}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => panic!("create bench-{n}: {e}"),
                    }
                }
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<()>>()
        .await;
}

/// One seed TI through the test helper (it creates the dag_bundle, dag, dag_version and dag_run
/// rows the foreign keys need), then `INSERT … SELECT generate_series` copies of it.
async fn load_tis(db: &testsupport::TestDb, o: &Opts) {
    db.insert_ti(&TiSpec::new(DAG, "seed", RUN)).await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = 'task_instance' AND table_schema = current_schema() ORDER BY ordinal_position",
    )
    .fetch_all(&mut c)
    .await
    .expect("columns");
    let select: Vec<String> = cols
        .iter()
        .map(|col| match col.as_str() {
            "id" => "gen_random_uuid()".to_owned(),
            "task_id" => "'task_' || n".to_owned(),
            "state" => format!(
                "CASE WHEN n <= {} THEN 'running' ELSE 'success' END",
                o.active
            ),
            "try_number" => "1".to_owned(),
            other => format!("t.\"{other}\""),
        })
        .collect();
    let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "INSERT INTO task_instance ({}) SELECT {} FROM task_instance t CROSS JOIN generate_series(1, {}) AS n \
         WHERE t.task_id = 'seed'",
        quoted.join(", "),
        select.join(", "),
        o.tis
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .expect("bulk insert");
    sqlx::raw_sql("ANALYZE task_instance")
        .execute(&mut c)
        .await
        .expect("analyze");
}

async fn bare_list(ns: &str) -> (Duration, usize) {
    let t = Instant::now();
    let path = &testsupport::env().kubeconfig;
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let scope = sweeper::pods::ListScope {
        namespaces: Some(vec![ns.to_owned()]),
        include_completed: false,
        page_size: sweeper::pods::PAGE_SIZE,
    };
    let n = sweeper::pods::bare_list(&client, &scope)
        .await
        .expect("bare list");
    (t.elapsed(), n)
}

async fn bare_query(url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut rows = sqlx::query(
        "SELECT dag_id, task_id, run_id, map_index, try_number, state FROM task_instance \
         WHERE state IS NULL OR state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed')",
    )
    .fetch(&mut c);
    let mut n = 0;
    while let Some(row) = rows.try_next().await.expect("row") {
        let _: &str = row.get(0);
        n += 1;
    }
    (t.elapsed(), n)
}

/// The sweeper's dry run: wall time and peak RSS in KiB.
async fn sweep(o: &Opts, ns: &str, url: &str) -> (Duration, u64) {
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let args = [
        "--kubeconfig",
        kubeconfig.as_str(),
        "--namespace",
        ns,
        "--db-url",
        url,
        "--output",
        "json",
        "--min-age",
        "0s",
        "--owner",
        OWNER,
        "--max-deletions",
        "1000000",
        "--max-fraction",
        "1",
    ];
    let gnu_time = std::path::Path::new("/usr/bin/time").exists();
    let mut cmd = if gnu_time {
        let mut c = tokio::process::Command::new("/usr/bin/time");
        c.arg("-v").arg(&o.bin);
        c
    } else {
        tokio::process::Command::new(&o.bin)
    };
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn the sweeper");
    let pid = child.id();
    let poll = tokio::spawn(async move {
        let mut peak = 0u64;
        while let Some(pid) = pid {
            let Ok(s) = tokio::fs::read_to_string(format!("/proc/{pid}/status")).await else {
                break;
            };
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak
    });
    let out = child.wait_with_output().await.expect("sweeper ran");
    let wall = t.elapsed();
    let polled = poll.await.unwrap_or(0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sweeper failed:\n{stderr}");
    let kb = if gnu_time {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|v| v.trim().parse().ok())
            .expect("GNU time's peak RSS")
    } else {
        polled
    };
    (wall, kb)
}
