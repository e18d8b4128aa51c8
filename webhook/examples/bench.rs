//! Benchmark (a command, not a test): `cargo run --release -p webhook --example bench`.
//!
//! 1. AdmissionReviews per second and p50/p99 latency over TLS keep-alive on loopback, load from `wrk`
//!    (a second process; Debian's `wrk`), 16 connections, the ≈ 6 KB KPO pod review of
//!    `tests/data/kpo_pod_review.json`. In the same run, the floor: the same axum + rustls stack
//!    ([`webhook::server::serve_tls`], same TLS config and certificate) answering with fixed bytes (the
//!    real response for that review) after reading, but not parsing, the body. Floor and webhook
//!    alternate for `--rounds` rounds; the figures are the means.
//! 2. Pod-create latency through the real kube-apiserver of `tests/env/up`: without a webhook, with the
//!    stamp, and with a no-op webhook on the same stack (the apiserver's own cost of calling a mutating
//!    webhook); three namespaces, each selected by at most one MutatingWebhookConfiguration, creates
//!    interleaved one at a time. Skipped with `--no-apiserver`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use tokio::net::TcpListener;
use tokio::sync::watch;
use webhook::metrics::Metrics;
use webhook::tls::{CertFiles, CertResolver, Readiness};
use webhook::{Config, Server};

#[derive(Parser, Debug)]
#[command(about = "Benchmark the webhook against its own floor and through the kube-apiserver")]
struct Opts {
    /// Seconds per measured wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Alternating floor/webhook rounds.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Pod creates per namespace for the apiserver latency.
    #[arg(long, default_value_t = 300)]
    pods: usize,
    /// Skip the kube-apiserver part.
    #[arg(long)]
    no_apiserver: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct WrkRun {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    bad: u64,
}

fn parse_latency_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mult)
}

fn parse_wrk(out: &str) -> WrkRun {
    let mut r = WrkRun::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_us = parse_latency_us(v).unwrap_or(f64::NAN);
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_us = parse_latency_us(v).unwrap_or(f64::NAN);
        } else if let Some(v) = t.strip_prefix("bad-status:") {
            r.bad = v.trim().parse().unwrap_or(u64::MAX);
        } else if t.starts_with("Socket errors") || t.starts_with("Non-2xx") {
            eprintln!("  wrk: {t}");
            r.bad = r.bad.max(1);
        }
    }
    assert!(r.rps > 0.0, "cannot read wrk's output:\n{out}");
    r
}

async fn wrk(opts: &Opts, addr: SocketAddr, seconds: u64, body: &Path, lua: &Path) -> WrkRun {
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{}", opts.threads))
        .arg(format!("-c{}", opts.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(lua)
        .arg(format!("https://{addr}/mutate"))
        .env("KPO_BENCH_BODY", body)
        .output()
        .await
        .expect("wrk (Debian package `wrk`) must be installed");
    assert!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt_us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

#[tokio::main]
async fn main() {
    let opts = Opts::parse();
    common::install_provider();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body_path = manifest.join("tests/data/kpo_pod_review.json");
    let lua = manifest.join("bench/post.lua");
    let body = std::fs::read(&body_path).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca = common::Ca::new("bench CA");
    let secret = common::SecretDir::new(&dir.path().join("tls"), &ca.leaf("webhook", false));
    let files = CertFiles {
        cert: secret.cert(),
        key: secret.key(),
    };
    let (stop_tx, stop_rx) = watch::channel(false);

    // The webhook, exactly as the binary runs it (minus the metrics listener).
    let server = Server::bind(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        cert: files.clone(),
        cert_poll_interval: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(5),
        limits: webhook::Limits::default(),
    })
    .await
    .unwrap();
    let real_addr = server.local_addr().unwrap();
    let real_state = server.state().clone();
    let mut rx = stop_rx.clone();
    let real = tokio::spawn(server.run(async move {
        webhook::server::stopped(&mut rx).await;
    }));

    // The floor: same listener code, TLS config and certificate; reads the body, parses nothing, and
    // answers with the bytes the webhook answers for this review.
    let (_, request) = webhook::mutate::parse(&body).unwrap();
    let fixed = Bytes::from(webhook::mutate::response(
        request.uid.as_str(),
        &webhook::mutate::mutate(&request, webhook::api::state::unix_now()),
    ));
    let floor_router = Router::new().route(
        "/mutate",
        post(move |_body: Bytes| {
            let fixed = fixed.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], fixed) }
        }),
    );
    let resolver = Arc::new(CertResolver::new(
        files,
        Readiness::default(),
        Metrics::default(),
    ));
    resolver.load().await.unwrap();
    let noop_router = Router::new().route(
        "/mutate",
        post(|body: Bytes| async move {
            let (_, req) = webhook::mutate::parse(&body).unwrap();
            let none = webhook::mutate::Mutation {
                outcome: webhook::mutate::Outcome::NotKpo,
                patch: Vec::new(),
                warnings: Vec::new(),
                audit: Default::default(),
                unidentified: None,
            };
            let out = webhook::mutate::response(req.uid.as_str(), &none);
            ([(header::CONTENT_TYPE, "application/json")], out)
        }),
    );
    let noop_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noop_addr = noop_listener.local_addr().unwrap();
    let noop = tokio::spawn(webhook::server::serve(
        noop_listener,
        Some(Arc::new(
            webhook::tls::server_config(resolver.clone()).unwrap(),
        )),
        noop_router,
        webhook::server::Bounds::tls(&webhook::Limits::default()),
        stop_rx.clone(),
        Duration::from_secs(5),
        Metrics::default(),
    ));
    let floor_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let floor_addr = floor_listener.local_addr().unwrap();
    let floor = tokio::spawn(webhook::server::serve(
        floor_listener,
        Some(Arc::new(webhook::tls::server_config(resolver).unwrap())),
        floor_router,
        webhook::server::Bounds::tls(&webhook::Limits::default()),
        stop_rx.clone(),
        Duration::from_secs(5),
        Metrics::default(),
    ));

    // Both answer 200 with a stamp before anything is measured.
    for addr in [floor_addr, real_addr] {
        let mut tls = common::tls_connect(addr, &common::connector(&[&ca.pem], &[]))
            .await
            .unwrap();
        let (status, resp) =
            common::http1(&mut tls, "POST", "/mutate", "application/json", &body).await;
        assert_eq!(status, 200, "{resp}");
        assert!(resp.contains("JSONPatch"), "{resp}");
    }

    println!(
        "== AdmissionReview over TLS keep-alive on loopback: wrk -t{} -c{} -d{}s, {} rounds, body {} bytes, {} cores ==",
        opts.threads,
        opts.connections,
        opts.duration,
        opts.rounds,
        body.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut floor_runs = Vec::new();
    let mut real_runs = Vec::new();
    for round in 1..=opts.rounds {
        for (name, addr, runs) in [
            ("floor", floor_addr, &mut floor_runs),
            ("webhook", real_addr, &mut real_runs),
        ] {
            wrk(&opts, addr, 2, &body_path, &lua).await; // warm-up
            let r = wrk(&opts, addr, opts.duration, &body_path, &lua).await;
            assert_eq!(r.bad, 0, "{name}: errors or non-200 answers");
            println!(
                "round {round} {name:<8} {:>9.0} req/s   p50 {:>9}   p99 {:>9}",
                r.rps,
                fmt_us(r.p50_us),
                fmt_us(r.p99_us)
            );
            runs.push(r);
        }
    }
    let mean = |runs: &[WrkRun], f: fn(&WrkRun) -> f64| {
        runs.iter().map(f).sum::<f64>() / runs.len() as f64
    };
    let (f_rps, f_p50, f_p99) = (
        mean(&floor_runs, |r| r.rps),
        mean(&floor_runs, |r| r.p50_us),
        mean(&floor_runs, |r| r.p99_us),
    );
    let (w_rps, w_p50, w_p99) = (
        mean(&real_runs, |r| r.rps),
        mean(&real_runs, |r| r.p50_us),
        mean(&real_runs, |r| r.p99_us),
    );
    println!(
        "mean   floor    {f_rps:>9.0} req/s   p50 {:>9}   p99 {:>9}",
        fmt_us(f_p50),
        fmt_us(f_p99)
    );
    println!(
        "mean   webhook  {w_rps:>9.0} req/s   p50 {:>9}   p99 {:>9}",
        fmt_us(w_p50),
        fmt_us(w_p99)
    );
    println!(
        "ratio  req/s webhook/floor = {:.2} (target >= 0.50); p99 webhook/floor = {:.2} (target <= 1.5)",
        w_rps / f_rps,
        w_p99 / f_p99
    );

    if !opts.no_apiserver {
        apiserver_latency(&opts, real_addr, noop_addr, &ca.pem, &real_state).await;
    }

    let _ = stop_tx.send(true);
    real.await.unwrap().unwrap();
    floor.await.unwrap().unwrap();
    noop.await.unwrap().unwrap();
    drop(secret);
}

/// Pod-create latency in three namespaces, creates interleaved one at a time: no webhook; the stamp;
/// and (to separate the apiserver's own cost of calling a mutating webhook from the stamp's) a no-op
/// webhook on the same stack that answers `allowed: true` without a patch.
async fn apiserver_latency(
    opts: &Opts,
    addr: SocketAddr,
    noop_addr: SocketAddr,
    ca_pem: &str,
    state: &webhook::AppState,
) {
    let admin = testsupport::client().await;
    let ns_none = testsupport::fresh_namespace(&admin, "bench-nowebhook").await;
    let _pods_ns_none = testsupport::DeletePodsOnDrop::new(&ns_none);
    let ns_stamp = testsupport::fresh_namespace(&admin, "bench-webhook").await;
    let _pods_ns_stamp = testsupport::DeletePodsOnDrop::new(&ns_stamp);
    let ns_noop = testsupport::fresh_namespace(&admin, "bench-noop").await;
    let _pods_ns_noop = testsupport::DeletePodsOnDrop::new(&ns_noop);
    let configs = [
        common::k8s::register(&admin, &ns_stamp, addr, ca_pem).await,
        common::k8s::register(&admin, &ns_noop, noop_addr, ca_pem).await,
    ];
    let api = |ns: &str| Api::<Pod>::namespaced(admin.clone(), ns);
    // (name, pods API, stamped?, latencies)
    let mut cases: Vec<(&str, Api<Pod>, bool, Vec<Duration>)> = vec![
        ("no webhook", api(&ns_none), false, Vec::new()),
        ("stamp webhook", api(&ns_stamp), true, Vec::new()),
        ("no-op webhook", api(&ns_noop), false, Vec::new()),
    ];
    common::k8s::wait_until_active(&cases[1].1).await;

    let pod = |i: usize, tag: &str| {
        let ti = testsupport::TiSpec::new(
            "bench_dag",
            &format!("task_{i}"),
            "manual__2026-11-27T00:00:00+00:00",
        );
        testsupport::kpo_pod(&format!("{tag}-{i}"), &ti)
    };
    let pp = PostParams::default();
    for i in 0..20 {
        for case in &cases {
            case.1.create(&pp, &pod(i, "warm")).await.unwrap();
        }
    }
    let m = state.metrics();
    let conns = || m.connections("h2") + m.connections("http/1.1");
    let (conns_before, h2_before, stamped_before) =
        (conns(), m.connections("h2"), m.requests("stamped"));
    let (sum_before, count_before) = handler_seconds(state).await;
    for i in 0..opts.pods {
        // Rotate which goes first, so drift hits all alike.
        for k in 0..cases.len() {
            let case = &mut cases[(i + k) % 3];
            let start = Instant::now();
            let created = case.1.create(&pp, &pod(i, "p")).await.unwrap();
            let took = start.elapsed();
            let stamped = common::k8s::stamp_of(&created).contains_key(tikey::stamp::TI_KEY);
            assert_eq!(stamped, case.2, "pod {i} in {}: stamped={stamped}", case.0);
            case.3.push(took);
        }
    }
    for config in &configs {
        common::k8s::unregister(&admin, config).await;
    }
    let (new_conns, new_h2) = (conns() - conns_before, m.connections("h2") - h2_before);
    let reviews = m.requests("stamped") - stamped_before;
    let (sum_after, count_after) = handler_seconds(state).await;
    let handler_mean_us = (sum_after - sum_before) / (count_after - count_before).max(1.0) * 1e6;
    println!(
        "== Pod create through kube-apiserver {} ({} creates per namespace, one at a time, interleaved) ==",
        testsupport::env().var("KUBE_VERSION"),
        opts.pods
    );
    println!(
        "stamp webhook: {reviews} reviews over {new_conns} new TLS connections ({new_h2} HTTP/2); \
         mean time from request headers to response in its handler {handler_mean_us:.0} µs"
    );
    let mut p50s = Vec::new();
    for case in &mut cases {
        case.3.sort();
        let (p50, p99) = (percentile(&case.3, 0.50), percentile(&case.3, 0.99));
        p50s.push((us(p50), us(p99)));
        println!(
            "{:<14}  p50 {:>9}   p99 {:>9}",
            case.0,
            fmt_us(us(p50)),
            fmt_us(us(p99))
        );
    }
    println!(
        "added by the stamp webhook   p50 {:>9}   p99 {:>9}   (target < 1 ms at p50)",
        fmt_us(p50s[1].0 - p50s[0].0),
        fmt_us(p50s[1].1 - p50s[0].1)
    );
    println!(
        "added by a no-op webhook     p50 {:>9}   p99 {:>9}   (the apiserver's own cost of a webhook call)",
        fmt_us(p50s[2].0 - p50s[0].0),
        fmt_us(p50s[2].1 - p50s[0].1)
    );
}

/// `kpo_webhook_admission_duration_seconds` sum and count, read through the webhook's own `/metrics`.
async fn handler_seconds(state: &webhook::AppState) -> (f64, f64) {
    use tower::ServiceExt as _;
    let req = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = webhook::router(state.clone()).oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("kpo_webhook_admission_duration_seconds_sum "),
        value("kpo_webhook_admission_duration_seconds_count "),
    )
}
