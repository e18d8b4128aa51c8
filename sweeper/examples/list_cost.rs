//! What one sweep's LIST costs the apiserver, by page size (not a test): `sweeper/bench/run.sh --cost`.
//!
//! For a namespace that already holds the bench's KPO pods (`sweeper/bench/run.sh --pods 150000
//! --namespace NS --keep`, which leaves them there), and for each page size of `--page-sizes`
//! (default 500,1000,5000,0; 0 = no limit, one response), `--runs` times, alternating the order:
//! * the sweeper's own listing (`sweeper::pods::list`: the metadata-only LIST, decoded as a sweep
//!   decodes it) and, at the sweeper's default page size, the bare LIST (nothing decoded but the
//!   continue token) and the real `sweeper` binary's dry run (`--sweeper BIN --db-url URL`);
//! * the apiserver's side, from its own `/metrics` (LIST requests of pods: count = pages, the
//!   response bytes it sent) and from `/proc/<pid>` of the env's kube-apiserver (CPU seconds, and
//!   the peak of its resident memory above where it started, sampled every 20 ms).
//!
//! Prints one line per run, then the medians per page size. The env's apiserver is shared: run it
//! on a quiet machine (other clients' requests land in the CPU and memory figures, not in the
//! LIST-of-pods byte counts).
//!
//! Usage: list_cost --namespace NS [--page-sizes 500,1000,5000,0] [--runs N]
//!                  [--sweeper BIN --db-url URL]
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::time::{Duration, Instant};

use sweeper::pods::ListScope;

struct Opts {
    namespace: String,
    page_sizes: Vec<u32>,
    runs: usize,
    sweeper: Option<(String, String)>,
}

fn opts() -> Opts {
    let usage = "usage: list_cost --namespace NS [--page-sizes 500,1000,5000,0] [--runs N] \
                 [--sweeper BIN --db-url URL]";
    let mut o = Opts {
        namespace: String::new(),
        page_sizes: vec![500, 1000, 5000, 0],
        runs: 3,
        sweeper: None,
    };
    let (mut bin, mut url) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs a value\n{usage}"))
        };
        match a.as_str() {
            "--namespace" => o.namespace = val(),
            "--page-sizes" => {
                o.page_sizes = val()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| panic!("--page-sizes: {s}?")))
                    .collect()
            }
            "--runs" => o.runs = val().parse().expect("--runs N"),
            "--sweeper" => bin = Some(val()),
            "--db-url" => url = Some(val()),
            _ => panic!("unknown argument {a}\n{usage}"),
        }
    }
    assert!(!o.namespace.is_empty(), "--namespace is required\n{usage}");
    o.sweeper = match (bin, url) {
        (Some(b), Some(u)) => Some((b, u)),
        (None, None) => None,
        _ => panic!("--sweeper and --db-url go together\n{usage}"),
    };
    o
}

/// The env's kube-apiserver process: the one serving `APISERVER_URL`'s port.
fn apiserver_pid() -> u32 {
    let url = testsupport::env().var("APISERVER_URL").to_owned();
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let flag = format!("--secure-port={port}");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("kube-apiserver") && cmd.split('\0').any(|a| a == flag) {
            return pid;
        }
    }
    panic!("no kube-apiserver process with {flag}: run tests/env/up");
}

/// CPU time (user + system) of `pid` so far (USER_HZ = 100).
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident memory of `pid`, bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The apiserver's own counters for LISTs of pods: (requests, response bytes).
async fn list_counters(client: &kube::Client) -> (f64, f64) {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.expect("GET /metrics");
    let (mut count, mut bytes) = (0.0, 0.0);
    for line in text.lines() {
        let is_pods_list = line.contains("resource=\"pods\"")
            && line.contains("verb=\"LIST\"")
            && line.contains("subresource=\"\"");
        if !is_pods_list {
            continue;
        }
        let value = || {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if line.starts_with("apiserver_response_sizes_sum{") {
            bytes += value();
        } else if line.starts_with("apiserver_response_sizes_count{") {
            count += value();
        }
    }
    (count, bytes)
}

#[derive(Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    pods: usize,
    pages: f64,
    bytes: f64,
    cpu: Duration,
    rss_peak: u64,
}

/// Runs `what` and measures the apiserver around it.
async fn measure<F: std::future::Future<Output = usize>>(
    client: &kube::Client,
    pid: u32,
    what: F,
) -> Cost {
    let (c0, b0) = list_counters(client).await;
    let rss0 = rss_of(pid);
    let cpu0 = cpu_of(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_of(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let t = Instant::now();
    let pods = what.await;
    let wall = t.elapsed();
    let cpu = cpu_of(pid).saturating_sub(cpu0);
    sampler.abort();
    let (c1, b1) = list_counters(client).await;
    Cost {
        wall,
        pods,
        pages: c1 - c0,
        bytes: b1 - b0,
        cpu,
        rss_peak: peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(rss0),
    }
}

fn scope(ns: &str, page_size: u32) -> ListScope {
    ListScope {
        namespaces: Some(vec![ns.to_owned()]),
        include_completed: false,
        page_size,
    }
}

fn mib(b: f64) -> f64 {
    b / 1024.0 / 1024.0
}

#[tokio::main]
async fn main() {
    let o = opts();
    let client = testsupport::client().await;
    let pid = apiserver_pid();
    let ns = o.namespace.clone();
    // (label, what): the listings compared.
    let mut cases: Vec<String> = o.page_sizes.iter().map(|p| format!("list {p}")).collect();
    cases.push(format!("bare {}", sweeper::pods::PAGE_SIZE));
    if o.sweeper.is_some() {
        cases.push("sweeper binary".to_owned());
    }
    println!(
        "namespace {ns}, apiserver pid {pid}; {} runs of: {}",
        o.runs,
        cases.join(", ")
    );
    println!(
        "{:<16} {:>8} {:>7} {:>10} {:>8} {:>10} {:>8}",
        "case", "pods", "pages", "sent MiB", "api CPU s", "api +RSS MiB", "wall s"
    );
    let mut all: Vec<(String, Vec<Cost>)> = cases.iter().map(|c| (c.clone(), vec![])).collect();
    for run in 0..o.runs {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let case = cases[i].clone();
            let cost = if let Some(p) = case.strip_prefix("list ") {
                let s = scope(&ns, p.parse().unwrap());
                measure(&client, pid, async {
                    sweeper::pods::list(&client, &s).await.expect("list").len()
                })
                .await
            } else if case.starts_with("bare ") {
                let s = scope(&ns, sweeper::pods::PAGE_SIZE);
                measure(&client, pid, async {
                    sweeper::pods::bare_list(&client, &s)
                        .await
                        .expect("bare list")
                })
                .await
            } else {
                let (bin, url) = o.sweeper.clone().unwrap();
                let kubeconfig = testsupport::env().kubeconfig.display().to_string();
                measure(&client, pid, async {
                    let out = tokio::process::Command::new(&bin)
                        .args(["--kubeconfig", &kubeconfig, "--namespace", &ns])
                        .args(["--db-url", &url, "--output", "json", "--min-age", "0s"])
                        .output()
                        .await
                        .expect("run the sweeper");
                    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                        .unwrap_or_else(|e| {
                            panic!("sweeper: {e}: {}", String::from_utf8_lossy(&out.stderr))
                        });
                    report["summary"]["listed"].as_u64().unwrap_or(0) as usize
                })
                .await
            };
            println!(
                "{:<16} {:>8} {:>7.0} {:>10.1} {:>8.2} {:>10.1} {:>8.2}",
                case,
                cost.pods,
                cost.pages,
                mib(cost.bytes),
                cost.cpu.as_secs_f64(),
                mib(cost.rss_peak as f64),
                cost.wall.as_secs_f64()
            );
            all[i].1.push(cost);
        }
    }
    println!();
    println!("medians:");
    for (case, costs) in &all {
        let med = |f: &dyn Fn(&Cost) -> f64| {
            let mut v: Vec<f64> = costs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{:<16} {:>8} {:>7.0} {:>10.1} {:>8.2} {:>10.1} {:>8.2}",
            case,
            costs[0].pods,
            med(&|c| c.pages),
            mib(med(&|c| c.bytes)),
            med(&|c| c.cpu.as_secs_f64()),
            mib(med(&|c| c.rss_peak as f64)),
            med(&|c| c.wall.as_secs_f64())
        );
    }
}
