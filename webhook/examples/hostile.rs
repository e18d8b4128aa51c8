//! Benchmark (a command, not a test): the webhook process under a hostile load while the real
//! kube-apiserver of `tests/env/up` creates pods through it (issue 13).
//!
//!     cargo run --release -p webhook --example hostile [-- --seconds 60 --webhook PATH]
//!
//! The webhook runs as its own process: this example re-executes itself as the webhook (the same
//! `webhook::args::Args::run` as the `webhook` binary), or runs `--webhook PATH` (another build, e.g.
//! the one before the bounds). The load is [`common::hostile::Plan::issue`]'s: 1,000 idle TLS
//! connections, 200 clients sending a 3 MiB body at 1 KB/s, 20 sending 3 MiB bodies as fast as they
//! can, 50 HTTP/2 connections × 32 streams posting 3 MiB bodies (h2load). Printed: the webhook's peak
//! RSS, pods stamped / created during the attack, pod-create p50/p99 unloaded and loaded.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::hostile::{Attack, Plan, big_review, creates_for, peak_rss_mib};
use common::k8s::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

#[derive(Parser, Debug)]
#[command(about = "The webhook under a hostile load, with pod creates through the kube-apiserver")]
struct Opts {
    /// Seconds of pod creates, unloaded and then under attack.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent pod creates.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The webhook binary to measure (default: this example, serving as the webhook).
    #[arg(long)]
    webhook: Option<PathBuf>,
}

fn main() {
    // Re-executed as the webhook: `hostile serve <webhook flags>`.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "serve") {
        common::install_provider();
        let wargs = webhook::args::Args::parse_from(
            std::iter::once(std::ffi::OsString::from("webhook")).chain(args),
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        if let Err(e) = rt.block_on(wargs.run()) {
            eprintln!("webhook: {e}");
            std::process::exit(1);
        }
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(Opts::parse()));
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench(opts: Opts) {
    common::install_provider();
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "bench-hostile").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    grant_worker(&admin, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = common::Ca::new("hostile bench CA");
    let secret = common::SecretDir::new(&dir.path().join("tls"), &ca.leaf("webhook", false));
    let (binary, serve_arg) = match &opts.webhook {
        Some(p) => (p.clone(), None),
        None => (std::env::current_exe().unwrap(), Some("serve")),
    };
    let hook = WebhookProcess::start_with(
        &binary,
        serve_arg,
        &secret,
        "5s",
        dir.path().join("webhook.log"),
    )
    .await;
    let pid = hook.child.id().unwrap();
    let config = register(&admin, &ns, hook.addr, &ca.pem).await;
    let worker = testsupport::impersonating_client(WORKER, WORKER_GROUPS).await;
    let pods: Api<Pod> = Api::namespaced(worker, &ns);
    wait_until_active(&pods).await;
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, big_review(common::KPO_REVIEW, 3 * 1024 * 1024)).unwrap();
    let seconds = Duration::from_secs(opts.seconds);

    let mut calm = creates_for(&pods, "calm", opts.concurrency, seconds).await;
    let rss_calm = peak_rss_mib(pid);
    let plan = Plan::issue();
    let attack = Attack::start(hook.addr, hook.metrics, &ca.pem, &plan, &body_file);
    tokio::time::sleep(Duration::from_secs(5)).await; // let it build up
    let mut loaded = creates_for(&pods, "loaded", opts.concurrency, seconds).await;
    let stats = attack.stats.clone();
    let h2load = attack.stop().await;
    let rss = peak_rss_mib(pid);
    let alive = common::http_get(hook.metrics, "/readyz").await.map(|r| r.0) == Ok(200);
    let (_, metrics_text) = common::http_get(hook.metrics, "/metrics")
        .await
        .unwrap_or_default();

    let list = Api::<Pod>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let stamped = |prefix: &str| {
        list.items
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .filter(|p| stamp_of(p).contains_key(tikey::stamp::TI_KEY))
            .count()
    };
    let failed = |c: &[common::hostile::Create]| c.iter().filter(|c| c.error.is_some()).count();
    println!(
        "== webhook under hostile load: {} idle TLS conns, {} slow clients at {} B/s, {} fast clients, \
         h2load {}x{} streams, {} MiB bodies; {} pod creates at a time, {} s each phase, {} cores ==",
        plan.idle,
        plan.slow,
        plan.slow_rate,
        plan.fast,
        plan.h2_clients,
        plan.h2_streams,
        plan.body_bytes >> 20,
        opts.concurrency,
        opts.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "webhook: {}",
        opts.webhook
            .as_ref()
            .map_or("this build".to_owned(), |p| p.display().to_string())
    );
    println!(
        "peak RSS (VmHWM): {rss_calm:.1} MiB before the attack, {rss:.1} MiB after it (target < 100 MiB)"
    );
    println!(
        "stamped/created: unloaded {}/{} ({} failed creates), under attack {}/{} ({} failed creates)",
        stamped("calm-"),
        calm.len(),
        failed(&calm),
        stamped("loaded-"),
        loaded.len(),
        failed(&loaded)
    );
    for (name, c) in [("unloaded", &mut calm), ("loaded", &mut loaded)] {
        let mut t: Vec<Duration> = c.iter().map(|c| c.took).collect();
        t.sort();
        println!(
            "pod create {name:<9} n={:<5} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
            t.len(),
            ms(pct(&t, 0.5)),
            ms(pct(&t, 0.99)),
            ms(t.last().copied().unwrap_or_default())
        );
    }
    let p99 = |c: &[common::hostile::Create]| {
        let mut t: Vec<Duration> = c.iter().map(|c| c.took).collect();
        t.sort();
        ms(pct(&t, 0.99))
    };
    println!(
        "p99 loaded/unloaded = {:.2} (target < 2)",
        p99(&loaded) / p99(&calm).max(f64::MIN_POSITIVE)
    );
    println!("attackers: {}", stats.summary());
    for run in h2load {
        println!("h2load run: {run}");
    }
    for l in metrics_text.lines().filter(|l| {
        l.starts_with("kpo_webhook_shed_total")
            || l.starts_with("kpo_webhook_connections_total")
            || l.starts_with("kpo_webhook_bad_requests_total")
    }) {
        println!("metric: {l}");
    }
    println!(
        "webhook /readyz after the attack: {}",
        if alive { "200" } else { "FAILED" }
    );
    unregister(&admin, &config).await;
    let code = hook.stop().await;
    println!("webhook exit code on SIGTERM: {code:?}");
}
