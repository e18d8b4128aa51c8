//! Interval mode end to end: the real `sweeper --interval 2s --metrics-listen 127.0.0.1:0` against
//! the real kube-apiserver and a real Airflow 3.3.2 schema on PostgreSQL. At least 3 loops: one that
//! deletes a zombie, one that fails (the task_instance table is renamed away) without ending the
//! loop, one that deletes the zombie the DB change made; `/metrics` is scraped between loops and
//! every counter and gauge is checked against the JSON reports and logs the process printed. Then
//! SIGTERM ends it with exit 0.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sqlx::Connection as _;
use testsupport::{DbKind, TiSpec};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// One run as the process reported it: the JSON report of a finished run, or an error's kind.
#[derive(Debug, Clone)]
enum Run {
    Done { report: Value, exit: u64 },
    Failed { kind: String },
}

struct Proc {
    child: tokio::process::Child,
    stdout: mpsc::UnboundedReceiver<Value>,
    stderr: mpsc::UnboundedReceiver<Value>,
    /// Every stderr line so far, for failure messages.
    log: Vec<String>,
    runs: Vec<Run>,
    metrics_addr: String,
}

impl Proc {
    async fn spawn(args: &[&str]) -> Proc {
        let kubeconfig = testsupport::env().kubeconfig.display().to_string();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
        cmd.args(["--kubeconfig", kubeconfig.as_str()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info");
        let mut child = cmd.spawn().expect("sweeper starts");
        let (otx, stdout) = mpsc::unbounded_channel();
        let (etx, stderr) = mpsc::unbounded_channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&l)
                    .unwrap_or_else(|e| panic!("stdout line is not a JSON report ({e}): {l}"));
                let _ = otx.send(v);
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let v = serde_json::from_str(&l).unwrap_or(Value::String(l));
                let _ = etx.send(v);
            }
        });
        let mut p = Proc {
            child,
            stdout,
            stderr,
            log: Vec::new(),
            runs: Vec::new(),
            metrics_addr: String::new(),
        };
        let addr = p
            .next_log(|v| v["fields"]["addr"].as_str().map(str::to_owned))
            .await;
        p.metrics_addr = addr;
        p
    }

    /// Reads stderr until `f` picks a line (30 s at most).
    async fn next_log<T>(&mut self, mut f: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let v = tokio::time::timeout_at(deadline, self.stderr.recv())
                .await
                .unwrap_or_else(|_| panic!("no such log line within 30 s; log:\n{}", self.log()))
                .unwrap_or_else(|| panic!("the sweeper's stderr closed; log:\n{}", self.log()));
            self.log.push(v.to_string());
            if let Some(t) = f(&v) {
                return t;
            }
        }
    }

    fn log(&self) -> String {
        self.log.join("\n")
    }

    /// Waits for the next run to end: its summary line (then its report, printed before it) or its
    /// error line.
    async fn next_run(&mut self) -> Run {
        let ended = self
            .next_log(|v| {
                let f = &v["fields"];
                if let Some(exit) = f["exit"].as_u64() {
                    Some(Ok(exit))
                } else if v["level"] == "ERROR" {
                    Some(Err(f["kind"].as_str().unwrap_or("?").to_owned()))
                } else {
                    None
                }
            })
            .await;
        let run = match ended {
            Ok(exit) => {
                let report = tokio::time::timeout(Duration::from_secs(5), self.stdout.recv())
                    .await
                    .expect("the report precedes the summary line")
                    .expect("stdout open");
                Run::Done { report, exit }
            }
            Err(kind) => Run::Failed { kind },
        };
        self.runs.push(run.clone());
        run
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(&self.metrics_addr)
            .await
            .expect("connect to --metrics-listen");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: sweeper\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let status = buf
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {buf}"));
        let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, body.to_owned())
    }

    /// Scrapes /metrics and checks it against the runs reported so far.
    async fn scrape_and_check(&mut self) -> Metrics {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        let m = Metrics::parse(&body);
        let total = ["ok", "error", "breaker", "delete-failed"]
            .iter()
            .map(|o| m.get(&format!("kpo_sweeper_runs_total{{outcome=\"{o}\"}}")))
            .sum::<f64>() as usize;
        // A run may have ended between the last one read and the scrape: read up to it.
        while self.runs.len() < total {
            self.next_run().await;
        }
        check(&m, &self.runs[..total], &body);
        m
    }
}

struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut map = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            map.insert(series.to_owned(), value.parse().expect("a number"));
        }
        Metrics(map)
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.0))
    }
}

/// Counters are the sums over `runs`; gauges are the last finished run's report.
fn check(m: &Metrics, runs: &[Run], text: &str) {
    let done: Vec<(&Value, u64)> = runs
        .iter()
        .filter_map(|r| match r {
            Run::Done { report, exit } => Some((report, *exit)),
            Run::Failed { .. } => None,
        })
        .collect();
    let count = |f: &dyn Fn(u64) -> bool| done.iter().filter(|(_, e)| f(*e)).count() as f64;
    let ctx = format!("runs: {runs:#?}\nmetrics:\n{text}");
    assert_eq!(
        m.get("kpo_sweeper_runs_total{outcome=\"ok\"}"),
        count(&|e| e == 0),
        "{ctx}"
    );
    assert_eq!(
        m.get("kpo_sweeper_runs_total{outcome=\"breaker\"}"),
        count(&|e| e == 2),
        "{ctx}"
    );
    assert_eq!(
        m.get("kpo_sweeper_runs_total{outcome=\"delete-failed\"}"),
        count(&|e| e == 3),
        "{ctx}"
    );
    let failed: Vec<&str> = runs
        .iter()
        .filter_map(|r| match r {
            Run::Failed { kind } => Some(kind.as_str()),
            Run::Done { .. } => None,
        })
        .collect();
    assert_eq!(
        m.get("kpo_sweeper_runs_total{outcome=\"error\"}"),
        failed.len() as f64,
        "{ctx}"
    );
    for kind in &failed {
        let n = failed.iter().filter(|k| *k == kind).count() as f64;
        assert_eq!(
            m.get(&format!("kpo_sweeper_run_errors_total{{kind=\"{kind}\"}}")),
            n,
            "{ctx}"
        );
    }
    let sum = |k: &str| -> f64 {
        done.iter()
            .map(|(r, _)| r["summary"][k].as_u64().unwrap() as f64)
            .sum()
    };
    assert_eq!(
        m.get("kpo_sweeper_deletions_total"),
        sum("deleted"),
        "{ctx}"
    );
    assert_eq!(
        m.get("kpo_sweeper_delete_failures_total"),
        sum("failed"),
        "{ctx}"
    );
    // Every finished run times its list, db and decide phases; those with zombies, the delete.
    assert_eq!(
        m.get("kpo_sweeper_run_duration_seconds_count{phase=\"list\"}"),
        done.len() as f64,
        "{ctx}"
    );
    let with_zombies = done
        .iter()
        .filter(|(r, _)| r["summary"]["zombies"].as_u64() > Some(0))
        .count() as f64;
    assert_eq!(
        m.0.get("kpo_sweeper_run_duration_seconds_count{phase=\"delete\"}")
            .copied()
            .unwrap_or(0.0),
        with_zombies,
        "{ctx}"
    );
    assert_eq!(m.get("kpo_sweeper_interval_seconds"), 2.0);
    // Gauges: the last finished run.
    let (last, _) = *done.last().expect("a finished run");
    assert_eq!(
        m.get("kpo_sweeper_active_tis"),
        last["summary"]["active_tis"].as_u64().unwrap() as f64,
        "{ctx}"
    );
    assert_eq!(
        m.get("kpo_sweeper_unstamped_pods"),
        last["summary"]["unstamped"].as_u64().unwrap() as f64,
        "{ctx}"
    );
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for p in last["pods"].as_array().unwrap() {
        let series = format!(
            "kpo_sweeper_pods{{decision=\"{}\",reason=\"{}\"}}",
            p["decision"].as_str().unwrap(),
            p["reason"].as_str().unwrap()
        );
        *want.entry(series).or_default() += 1.0;
    }
    let got: BTreeMap<String, f64> =
        m.0.iter()
            .filter(|(k, v)| k.starts_with("kpo_sweeper_pods{") && **v != 0.0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
    assert_eq!(got, want, "{ctx}");
    // The last success: set by ok runs only, never by an error.
    let last_ok = m.get("kpo_sweeper_last_success_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    if count(&|e| e == 0) > 0.0 {
        assert!(last_ok > now - 120.0 && last_ok <= now + 1.0, "{ctx}");
    } else {
        assert_eq!(last_ok, 0.0, "{ctx}");
    }
}

fn deleted_in(run: &Run) -> Vec<String> {
    match run {
        Run::Done { report, .. } => report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["action"] == "deleted")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect(),
        Run::Failed { .. } => Vec::new(),
    }
}

async fn set_table_name(url: &str, rename: &'static str) {
    let mut c = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to the test DB");
    sqlx::raw_sql(rename)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{rename}: {e}"));
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_mode_loops_serves_metrics_and_stops_on_sigterm() {
    let s = Scenario::new("interval", DbKind::Airflow3Postgres).await;
    let done =
        TiSpec::new("etl", "done", "scheduled__2026-01-01T00:00:00+00:00").state(Some("success"));
    let running = TiSpec::new("etl", "running", "scheduled__2026-01-01T00:00:00+00:00")
        .state(Some("running"));
    s.db.insert_ti(&done).await;
    s.db.insert_ti(&running).await;
    let p_done = s.pod("done", &done, Stamping::Ours).await;
    let p_running = s.pod("running", &running, Stamping::Ours).await;
    s.pod("unstamped", &running, Stamping::None).await;

    let mut p = Proc::spawn(&[
        "--namespace",
        s.ns.as_str(),
        "--db-url",
        s.db.url.as_str(),
        "--min-age",
        "0s",
        "--delete",
        "--owner",
        OWNER,
        "--output",
        "json",
        "--log-format",
        "json",
        "--interval",
        "2s",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .await;

    // Loop 1: the zombie goes, the running pod and the unstamped one stay.
    let first = p.next_run().await;
    assert_eq!(deleted_in(&first), ["done"], "{first:#?}");
    let m = p.scrape_and_check().await;
    assert_eq!(m.get("kpo_sweeper_deletions_total"), 1.0);
    assert_eq!(
        m.get("kpo_sweeper_unstamped_pods"),
        1.0,
        "the pod made without the webhook"
    );
    assert_eq!(p.get("/readyz").await.0, 200);
    assert_eq!(p.get("/healthz").await.0, 200);

    // A broken DB: the run fails, the loop goes on.
    set_table_name(
        &s.db.url,
        "ALTER TABLE task_instance RENAME TO task_instance_away",
    )
    .await;
    let mut errors = 0;
    for _ in 0..5 {
        if let Run::Failed { kind } = p.next_run().await {
            assert_eq!(kind, "not-airflow-db");
            errors += 1;
            break;
        }
    }
    assert_eq!(
        errors,
        1,
        "a run failed on the renamed table; log:\n{}",
        p.log()
    );
    let m = p.scrape_and_check().await;
    assert!(m.get("kpo_sweeper_runs_total{outcome=\"error\"}") >= 1.0);

    // Repaired, and the running TI failed meanwhile: a later loop deletes its pod.
    set_table_name(
        &s.db.url,
        "ALTER TABLE task_instance_away RENAME TO task_instance",
    )
    .await;
    s.db.update_ti(&running.clone().state(Some("failed"))).await;
    let mut gone = false;
    for _ in 0..5 {
        if deleted_in(&p.next_run().await).contains(&"running".to_owned()) {
            gone = true;
            break;
        }
    }
    assert!(gone, "the failed TI's pod was deleted; log:\n{}", p.log());
    let m = p.scrape_and_check().await;
    assert_eq!(m.get("kpo_sweeper_deletions_total"), 2.0);
    assert!(p.runs.len() >= 3, "{:#?}", p.runs);

    // SIGTERM: the loop ends with exit 0.
    let pid = p.child.id().expect("running").to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", pid.as_str()])
        .status()
        .expect("kill runs");
    assert!(st.success());
    let status = tokio::time::timeout(Duration::from_secs(30), p.child.wait())
        .await
        .expect("the sweeper exits within 30 s of SIGTERM")
        .unwrap();
    while let Ok(v) = p.stderr.try_recv() {
        p.log.push(v.to_string());
    }
    assert_eq!(status.code(), Some(0), "log:\n{}", p.log());
    assert!(p.log().contains("interval mode stopped"), "{}", p.log());

    assert_eq!(s.survivors().await, names(&["unstamped"]));
    s.assert_events(&[(&p_done, "no-active-ti"), (&p_running, "no-active-ti")])
        .await;
}
