//! The multi-cluster LIST benchmark (not a test): does `--context a --context b` wait for the
//! slowest cluster's LIST, or for their sum?
//!
//! Loads `--pods N` KPO pods (default 10,000) into a namespace on each of the env's two control
//! planes (`tests/env/up`: `KUBECONFIG` and `REMOTE_KUBECONFIG`), the remote one optionally
//! behind a TCP proxy that holds every client-to-server write for `--latency MS` (a far cluster:
//! each request, and so each 500-pod page, pays it once). Then, `--runs` times, through the
//! sweeper's library (the dry run's plan, one empty Airflow 3.3.2 DB):
//! * sequential: a plan over `home` alone, then one over `remote` alone: the sum of their LIST
//!   phases;
//! * concurrent: one plan over both: its LIST phase (wall), and each cluster's own `list_ms`.
//!
//! It prints each run and the medians: concurrent / sequential sum, and concurrent / the slowest
//! single LIST. The pods are deleted at the end (grace 0) unless `--keep`.
//!
//! Usage: cargo run --release -p sweeper --example multicluster_bench -- [--pods N] [--latency MS]
//!        [--runs N] [--keep]
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::time::Duration;

use clap::Parser as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use testsupport::{DbKind, TiSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAG: &str = "multicluster_bench_dag";
const RUN: &str = "scheduled__2026-01-01T00:00:00+00:00";
/// No scheduler answers to it: the pods stay Pending and untouched (see sweeper_bench.rs).
const NO_SCHEDULER: &str = "kpo-sweeper-bench-unscheduled";

struct Opts {
    pods: usize,
    latency: Duration,
    runs: usize,
    keep: bool,
}

fn opts() -> Opts {
    let usage = "usage: multicluster_bench [--pods N] [--latency MS] [--runs N] [--keep]";
    let mut o = Opts {
        pods: 10_000,
        latency: Duration::ZERO,
        runs: 5,
        keep: false,
    };
    let mut a = std::env::args().skip(1);
    while let Some(f) = a.next() {
        let mut num = || a.next().and_then(|v| v.parse::<u64>().ok()).expect(usage);
        match f.as_str() {
            "--pods" => o.pods = num() as usize,
            "--latency" => o.latency = Duration::from_millis(num()),
            "--runs" => o.runs = num() as usize,
            "--keep" => o.keep = true,
            _ => panic!("{usage}"),
        }
    }
    o
}

/// A loopback TCP proxy to `target` that holds each client-to-server chunk for `delay` before
/// passing it on (TLS passes through untouched). Returns its port.
async fn latency_proxy(target: String, delay: Duration) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = l.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(delay).await;
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

async fn ensure_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("cannot create namespace {name}: {e}"),
    }
}

async fn create_pods(client: &kube::Client, ns: &str, n: usize) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(1..=n)
        .map(|i| {
            let api = api.clone();
            async move {
                let ti = TiSpec::new(DAG, &format!("task_{i}"), RUN);
                let mut pod = testsupport::kpo_pod(&format!("bench-{i}"), &ti);
                pod.spec.as_mut().unwrap().scheduler_name = Some(NO_SCHEDULER.to_owned());
                api.create(&PostParams::default(), &pod)
                    .await
                    .unwrap_or_else(|e| panic!("create bench-{i} in {ns}: {e}"));
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<()>>()
        .await;
}

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
                let _ = api.delete(&format!("bench-{i}"), &dp).await;
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<()>>()
        .await;
}

/// A kubeconfig with contexts `home` and `remote` (the latter through `remote_url`).
fn kubeconfig(path: &std::path::Path, remote_url: &str) {
    let env = testsupport::env();
    let (ca, cert, key) = (
        env.var("APISERVER_CA_CERT"),
        env.var("ADMIN_CLIENT_CERT"),
        env.var("ADMIN_CLIENT_KEY"),
    );
    let y = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n\
         - name: home\n  cluster: {{server: '{}', certificate-authority: '{ca}'}}\n\
         - name: remote\n  cluster: {{server: '{remote_url}', certificate-authority: '{ca}'}}\n\
         users:\n- name: admin\n  user: {{client-certificate: '{cert}', client-key: '{key}'}}\n\
         contexts:\n\
         - name: home\n  context: {{cluster: home, user: admin}}\n\
         - name: remote\n  context: {{cluster: remote, user: admin}}\n\
         current-context: home\n",
        env.var("APISERVER_URL"),
    );
    std::fs::write(path, y).unwrap();
}

/// One dry-run plan over `contexts`: its LIST phase (wall) and each cluster's own LIST time.
async fn plan(kc: &str, ns: &str, db: &str, contexts: &[&str]) -> (Duration, Vec<Duration>) {
    let mut argv = vec!["sweeper", "--kubeconfig", kc, "-n", ns, "--db-url", db];
    for c in contexts {
        argv.extend(["--context", c]);
    }
    let args = sweeper::Args::try_parse_from(argv).unwrap();
    let clusters = sweeper::connect(&args).await.unwrap();
    let out = sweeper::plan_on(args, clusters)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    for c in &out.report.clusters {
        assert_eq!(
            c.status,
            sweeper::report::ClusterStatus::Ok,
            "{:?}: {:?}",
            c.name,
            c.error
        );
    }
    let each = out
        .report
        .clusters
        .iter()
        .map(|c| Duration::from_millis(c.list_ms))
        .collect();
    (out.phases.list.unwrap(), each)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = opts();
    let env = testsupport::env();
    let home = testsupport::client().await;
    let remote = testsupport::remote_client().await;
    let ns = format!("mc-bench-{}", testsupport::random_suffix(6));
    ensure_namespace(&home, &ns).await;
    ensure_namespace(&remote, &ns).await;
    println!(
        "loading {} pods into {ns} on each cluster (home {}, remote {})",
        o.pods,
        env.var("APISERVER_URL"),
        env.var("REMOTE_APISERVER_URL")
    );
    tokio::join!(
        create_pods(&home, &ns, o.pods),
        create_pods(&remote, &ns, o.pods)
    );
    let remote_url = if o.latency.is_zero() {
        env.var("REMOTE_APISERVER_URL").to_owned()
    } else {
        let target = env
            .var("REMOTE_APISERVER_URL")
            .trim_start_matches("https://")
            .to_owned();
        let port = latency_proxy(target, o.latency).await;
        println!(
            "remote behind a proxy that holds each request {} (127.0.0.1:{port})",
            ms(o.latency)
        );
        format!("https://127.0.0.1:{port}")
    };
    let dir = std::env::temp_dir().join(format!("kpo-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let kc_path = dir.join("kubeconfig");
    kubeconfig(&kc_path, &remote_url);
    let kc = kc_path.display().to_string();
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;

    // One unmeasured round: connections, caches.
    let _ = plan(&kc, &ns, &db.url, &["home", "remote"]).await;
    let (mut seq, mut conc, mut slowest) = (Vec::new(), Vec::new(), Vec::new());
    println!(
        "run  home alone  remote alone  sequential sum  concurrent wall (home, remote inside it)"
    );
    for r in 1..=o.runs {
        // Alternate which goes first.
        let mut both = (Duration::ZERO, Vec::new());
        if r % 2 == 1 {
            both = plan(&kc, &ns, &db.url, &["home", "remote"]).await;
        }
        let (h, _) = plan(&kc, &ns, &db.url, &["home"]).await;
        let (rm, _) = plan(&kc, &ns, &db.url, &["remote"]).await;
        if r % 2 == 0 {
            both = plan(&kc, &ns, &db.url, &["home", "remote"]).await;
        }
        let (wall, each) = both;
        println!(
            "{r:>3}  {:>10}  {:>12}  {:>14}  {:>15} ({}, {})",
            ms(h),
            ms(rm),
            ms(h + rm),
            ms(wall),
            ms(each[0]),
            ms(each[1])
        );
        seq.push(h + rm);
        conc.push(wall);
        slowest.push(h.max(rm));
    }
    let (s, c, m) = (median(&mut seq), median(&mut conc), median(&mut slowest));
    println!(
        "median: sequential sum {}, concurrent {}, slowest alone {}: concurrent/sum {:.2}, concurrent/slowest {:.2}",
        ms(s),
        ms(c),
        ms(m),
        c.as_secs_f64() / s.as_secs_f64(),
        c.as_secs_f64() / m.as_secs_f64()
    );
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(&dir);
    if !o.keep {
        tokio::join!(
            delete_pods(&home, &ns, o.pods),
            delete_pods(&remote, &ns, o.pods)
        );
        let left = Api::<Pod>::namespaced(home.clone(), &ns)
            .list(&ListParams::default().limit(1))
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        println!("pods deleted ({left} left on home)");
    }
}
