//! Benchmark (a command, not a test): pod-create latency through the real kube-apiserver of
//! `tests/env/up`, in one run, for each way of stamping and with and without the guards:
//!
//! * `none`: no stamping, no guards;
//! * `webhook`: our webhook (in process, TLS on loopback) through `manifests/base`'s
//!   MutatingWebhookConfiguration;
//! * `policy`: `manifests/overlays/admission-policy`'s MutatingAdmissionPolicy;
//! * `guards`, `webhook+guards`, `policy+guards`: the same with `manifests/base/guards.yaml`.
//!
//! One namespace per case (policies and webhook configuration scoped to it); creates of a KPO pod
//! (KPO's shape: two containers, a volume) run one at a time, interleaved across the cases, rotating
//! which goes first. Prints p50 and p99 per case and what each adds to `none`.
//!
//! `cargo run --release -p policies --example policy_bench -- --pods 300`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use policies::hook::{self, RunningWebhook};
use testsupport::admission::{self, Installed};
use tikey::stamp;

#[derive(Parser, Debug)]
#[command(
    about = "Pod-create latency: no stamping, webhook, MutatingAdmissionPolicy, each with and without the guards"
)]
struct Opts {
    /// Measured pod creates per case.
    #[arg(long, default_value_t = 300)]
    pods: usize,
    /// Warm-up creates per case (not measured).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
}

struct Case {
    name: &'static str,
    ns: String,
    api: Api<Pod>,
    /// Whether a KPO pod comes back stamped.
    stamped: bool,
    took: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let opts = Opts::parse();
    let admin = testsupport::client().await;
    let guards = admission::manifest_objects(&policies::guards_manifest());
    let policy = admission::manifest_objects(&policies::stamp_policy_manifest());
    let hook = RunningWebhook::start().await;

    let mut cases = Vec::new();
    let mut installed: Vec<Installed> = Vec::new();
    let mut configs = Vec::new();
    let none = BTreeMap::new();
    for (name, webhook, stamp_policy, guarded) in [
        ("none", false, false, false),
        ("webhook", true, false, false),
        ("policy", false, true, false),
        ("guards", false, false, true),
        ("webhook+guards", true, false, true),
        ("policy+guards", false, true, true),
    ] {
        let ns = testsupport::fresh_namespace(&admin, &format!("bench-{}", name.replace('+', "-")))
            .await;
        if webhook {
            configs.push(hook::register(&admin, &ns, hook.addr, &hook.ca_pem).await);
        }
        if stamp_policy {
            installed.push(admission::install_scoped(&admin, &policy, &ns, &none).await);
        }
        if guarded {
            installed.push(admission::install_scoped(&admin, &guards, &ns, &none).await);
        }
        cases.push(Case {
            name,
            api: Api::namespaced(admin.clone(), &ns),
            ns,
            stamped: webhook || stamp_policy,
            took: Vec::new(),
        });
    }

    let pod = |i: usize, tag: &str| {
        let ti = testsupport::TiSpec::new(
            "bench_dag",
            &format!("task_{i}"),
            "manual__2026-11-27T00:00:00+00:00",
        );
        testsupport::kpo_pod(&format!("{tag}-{i}"), &ti)
    };
    let pp = PostParams::default();
    // Until every case's stamping is in effect (the apiserver loads configurations eventually), then
    // the warm-up.
    for case in &cases {
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        admission::wait_until(case.name, Duration::from_secs(30), || {
            let (api, dry, p, want) =
                (case.api.clone(), dry.clone(), pod(0, "probe"), case.stamped);
            async move {
                let got = api.create(&dry, &p).await.unwrap();
                got.metadata
                    .labels
                    .is_some_and(|l| l.contains_key(stamp::STAMPED_LABEL))
                    == want
            }
        })
        .await;
    }
    for i in 0..opts.warmup {
        for case in &cases {
            case.api.create(&pp, &pod(i, "warm")).await.unwrap();
        }
    }
    for i in 0..opts.pods {
        let n = cases.len();
        for k in 0..n {
            let case = &mut cases[(i + k) % n];
            let start = Instant::now();
            let created = case.api.create(&pp, &pod(i, "p")).await.unwrap();
            let took = start.elapsed();
            let stamped = created
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(stamp::STAMPED_LABEL));
            assert_eq!(stamped, case.stamped, "pod {i} in {}", case.name);
            case.took.push(took);
        }
    }

    println!(
        "== Pod create through kube-apiserver {} ({} creates per case, one at a time, interleaved; {} cores) ==",
        testsupport::env().var("KUBE_VERSION"),
        opts.pods,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut figures = BTreeMap::new();
    for case in &mut cases {
        case.took.sort();
        let (p50, p99) = (
            ms(percentile(&case.took, 0.5)),
            ms(percentile(&case.took, 0.99)),
        );
        figures.insert(case.name, (p50, p99));
    }
    let (base50, base99) = figures["none"];
    for case in &cases {
        let (p50, p99) = figures[case.name];
        println!(
            "{:<15} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   added p50 {:>+6.2} ms   p99 {:>+6.2} ms",
            case.name,
            p50 - base50,
            p99 - base99
        );
    }
    let (w50, _) = figures["webhook"];
    let (pol50, _) = figures["policy"];
    println!(
        "policy/webhook added p50 ratio: {:.2}",
        (pol50 - base50) / (w50 - base50)
    );

    for name in &configs {
        hook::unregister(&admin, name).await;
    }
    for i in installed {
        i.remove().await;
    }
    hook.stop().await;
    for case in &cases {
        let _ = Api::<Pod>::namespaced(admin.clone(), &case.ns)
            .delete_collection(
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
                &ListParams::default(),
            )
            .await;
    }
}
