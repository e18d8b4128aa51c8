//! Benchmark (a command, not a test): pod-create latency through the real kube-apiserver of
//! `tests/env/up`, in one run, for each way of stamping and with and without the guards:
//!
//! * `none`: no stamping, no guards;
//! * `webhook`: our webhook (in process, TLS on loopback) through `manifests/base`'s
//!   MutatingWebhookConfiguration;
//! * `policy`: `manifests/overlays/admission-policy`'s MutatingAdmissionPolicy;
//! * `guards`, `webhook+guards`, `policy+guards`: the same with `manifests/base/guards.yaml`.
//!
//! And the cases that take the webhook's cost apart (each through the same configuration, pointed at
//! another server on the same TLS stack and certificate, with its own webhook name so the
//! apiserver's per-webhook metrics tell them apart):
//!
//! * `prestamped`: no admission at all, but the client sends the pod with the stamp already in it
//!   (what a bigger stored object costs by itself);
//! * `webhook-noop`: a webhook that parses the review as ours does and answers `allowed: true`
//!   without a patch (the apiserver's cost of calling any mutating webhook);
//! * `webhook-nochange`: a webhook answering a JSON patch that leaves the pod as it is (re-adds the
//!   `kubernetes_pod_operator: "True"` label): the apiserver applies it (object to JSON, patch, JSON
//!   to object, defaulting); the pod stays as it was, yet the apiserver counts it as changed and runs
//!   its mutating admission chain a second time, as for any patch (the `re-runs` column);
//! * `webhook-plain`: our stamp, answered by a bare handler (the body read by axum, no bounds,
//!   timeouts or metrics): what our server's own request handling costs;
//! * `webhook-noaudit`: the same without `auditAnnotations` (what they cost);
//! * `webhook-http1`: our real router on a server that offers only HTTP/1.1 by ALPN.
//!
//! One namespace per case (policies and webhook configuration scoped to it); creates of a KPO pod
//! (KPO's shape: two containers, a volume) run one at a time, interleaved across the cases, rotating
//! which goes first. Prints p50 and p99 per case and what each adds to `none`, the decomposition of
//! the webhook's added p50, then (unless `--breakdown 0`) a second phase: per case, `--breakdown` creates
//! in a row between two scrapes of the apiserver's `/metrics`, and what the apiserver says it spent;
//! and (unless `--direct 0`) round trips straight to our servers, without the apiserver.
//!
//! `cargo run --release -p policies --example policy_bench -- --pods 300`
//!
//! It uses the control plane of the env file (`KPO_TEST_ENV_FILE`, default
//! `/tmp/kpo-sweeper-env/env.sh`); a copy of that file whose `KUBECONFIG=` names `REMOTE_KUBECONFIG` runs
//! it on the env's second control plane (same apiserver build), e.g. while the first is busy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{self, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use policies::hook::{self, RunningWebhook};
use testsupport::admission::{self, Installed};
use tikey::stamp;
use tokio::net::TcpListener;
use tokio::sync::watch;
use webhook::metrics::Metrics;
use webhook::mutate::{self, Mutation, Outcome, PatchOp, PatchValue};
use webhook::tls::{CertResolver, Readiness};

#[derive(Parser, Debug)]
#[command(
    about = "Pod-create latency: no stamping, webhook, MutatingAdmissionPolicy, each with and without the guards, and the webhook's cost taken apart"
)]
struct Opts {
    /// Measured pod creates per case.
    #[arg(long, default_value_t = 300)]
    pods: usize,
    /// Warm-up creates per case (not measured).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Creates per case in the second phase (one case at a time, the apiserver's /metrics scraped
    /// before and after each); 0 skips it.
    #[arg(long, default_value_t = 100)]
    breakdown: usize,
    /// Round trips straight to our servers (no apiserver) per server; 0 skips them.
    #[arg(long, default_value_t = 2000)]
    direct: usize,
}

/// What a case's namespace has in front of the pod's storage.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Nothing,
    /// Our webhook (the real server).
    Webhook,
    Policy,
    /// Nothing, but the pod is sent already stamped.
    Prestamped,
    Variant(Variant),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Noop,
    NoChange,
    /// Our stamp, answered by a bare handler (no body bounds, timeouts or metrics).
    Plain,
    NoAudit,
    /// The real router, HTTP/1.1 only.
    Http1,
}

impl Variant {
    fn path(self) -> &'static str {
        match self {
            Variant::Noop => "/noop",
            Variant::NoChange => "/nochange",
            Variant::Plain => "/plain",
            Variant::NoAudit => "/noaudit",
            Variant::Http1 => "/mutate",
        }
    }

    fn hook_name(self) -> &'static str {
        match self {
            Variant::Noop => "noop.bench.kpo-sweeper.io",
            Variant::NoChange => "nochange.bench.kpo-sweeper.io",
            Variant::Plain => "plain.bench.kpo-sweeper.io",
            Variant::NoAudit => "noaudit.bench.kpo-sweeper.io",
            Variant::Http1 => "http1.bench.kpo-sweeper.io",
        }
    }
}

struct Case {
    name: &'static str,
    how: How,
    ns: String,
    api: Api<Pod>,
    /// Whether a KPO pod comes back stamped.
    stamped: bool,
    /// The webhook's name in the apiserver's metrics, when one is called.
    hook: Option<String>,
    took: Vec<Duration>,
    /// Deletes the case's pods (grace 0) however the bench ends, a panic included.
    _cleanup: testsupport::DeletePodsOnDrop,
}

/// Handler time of the variants' server, per route (sum in ns, count).
#[derive(Default)]
struct Handled {
    noop: (AtomicU64, AtomicU64),
    nochange: (AtomicU64, AtomicU64),
    plain: (AtomicU64, AtomicU64),
    noaudit: (AtomicU64, AtomicU64),
}

impl Handled {
    fn of(&self, v: Variant) -> Option<&(AtomicU64, AtomicU64)> {
        match v {
            Variant::Noop => Some(&self.noop),
            Variant::NoChange => Some(&self.nochange),
            Variant::Plain => Some(&self.plain),
            Variant::NoAudit => Some(&self.noaudit),
            Variant::Http1 => None,
        }
    }

    /// (sum in seconds, count) so far for `v`.
    fn read(&self, v: Variant) -> Option<(f64, f64)> {
        self.of(v).map(|(s, c)| {
            (
                s.load(Ordering::Relaxed) as f64 / 1e9,
                c.load(Ordering::Relaxed) as f64,
            )
        })
    }
}

/// A variant's answer to one review: parsed as our handler parses it, then answered as `v` says.
async fn variant_answer(v: Variant, handled: Arc<Handled>, body: Bytes) -> Response {
    let start = Instant::now();
    let Ok((_, req)) = mutate::parse(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let m = match v {
        Variant::Noop => Mutation {
            outcome: Outcome::NotKpo,
            patch: Vec::new(),
            warnings: Vec::new(),
            audit: BTreeMap::new(),
            unidentified: None,
        },
        Variant::NoChange => Mutation {
            outcome: Outcome::NotKpo,
            // The pod already has this label with this value (the objectSelector only sends those).
            patch: vec![PatchOp::Add {
                path: "/metadata/labels/kubernetes_pod_operator",
                value: PatchValue::Str("True".to_owned()),
            }],
            warnings: Vec::new(),
            audit: BTreeMap::new(),
            unidentified: None,
        },
        Variant::Plain | Variant::Http1 => mutate::mutate(&req, webhook::api::state::unix_now()),
        Variant::NoAudit => {
            let mut m = mutate::mutate(&req, webhook::api::state::unix_now());
            m.audit.clear();
            m
        }
    };
    let out = mutate::response(req.uid.as_str(), &m);
    if let Some((sum, count)) = handled.of(v) {
        sum.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    }
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

fn variants_router(handled: Arc<Handled>) -> Router {
    let mut r = Router::new();
    for v in [
        Variant::Noop,
        Variant::NoChange,
        Variant::Plain,
        Variant::NoAudit,
    ] {
        r = r.route(
            v.path(),
            post(move |State(h): State<Arc<Handled>>, body: Bytes| variant_answer(v, h, body)),
        );
    }
    r.with_state(handled)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One Prometheus text sample: name, labels, value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn sample(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some((head, Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut rest = rest.strip_suffix('}')?;
    while let Some((k, after)) = rest.split_once("=\"") {
        // Label values here never hold an escaped quote.
        let (v, after) = after.split_once('"')?;
        labels.push((k.trim_start_matches(','), v));
        rest = after;
    }
    Some((name, labels, value))
}

/// The sum over the series of `name` whose labels include `want`.
fn total(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(sample)
        .filter(|(n, labels, _)| *n == name && want.iter().all(|w| labels.iter().any(|l| l == w)))
        .map(|(_, _, v)| v)
        .sum()
}

/// (sum, count) of histogram `name` over the series whose labels include `want`.
fn histo(text: &str, name: &str, want: &[(&str, &str)]) -> (f64, f64) {
    (
        total(text, &format!("{name}_sum"), want),
        total(text, &format!("{name}_count"), want),
    )
}

async fn apiserver_metrics(client: &kube::Client) -> String {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    client
        .request_text(req)
        .await
        .expect("GET /metrics from the apiserver (the env's admin may read it)")
}

/// The Prometheus text of our webhook's own metrics.
async fn webhook_metrics(state: &webhook::AppState) -> String {
    let resp = webhook::api::handlers::metrics(State(state.clone())).await;
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Phase two's figures for a case, read from the apiserver's (and our) metrics: (sum in s, count) of
/// each histogram.
#[derive(Default, Clone, Copy)]
struct Burst {
    /// apiserver_request_duration_seconds, POST pods.
    request: (f64, f64),
    /// apiserver_request_sli_duration_seconds, POST pods (leaves out the webhook calls).
    sli: (f64, f64),
    admit: (f64, f64),
    validate: (f64, f64),
    /// Passes of the mutating admission chain (the MutatingAdmissionWebhook plugin's admit count).
    admit_passes: f64,
    /// apiserver_admission_webhook_admission_duration_seconds for the case's webhook.
    hook_call: (f64, f64),
    /// Our server's own handler time, when the case calls one of ours.
    handler: Option<(f64, f64)>,
}

/// Creates in a row per case and round in phase two.
const BREAKDOWN_ROUND: usize = 20;

impl Burst {
    /// The running totals in `text` (the apiserver's /metrics) and `ours` (our webhook's).
    fn read(case: &Case, text: &str, ours: &str, handled: &Handled) -> Burst {
        let pod_post = [("verb", "POST"), ("resource", "pods"), ("subresource", "")];
        let hook_call = case.hook.as_deref().map_or((0.0, 0.0), |n| {
            histo(
                text,
                "apiserver_admission_webhook_admission_duration_seconds",
                &[("name", n), ("type", "admit")],
            )
        });
        let handler = match case.how {
            How::Webhook | How::Variant(Variant::Http1) => {
                Some(histo(ours, "kpo_webhook_admission_duration_seconds", &[]))
            }
            How::Variant(v) => handled.read(v),
            _ => None,
        };
        let step = |t: &'static str| {
            histo(
                text,
                "apiserver_admission_step_admission_duration_seconds",
                &[("operation", "CREATE"), ("type", t)],
            )
        };
        Burst {
            request: histo(text, "apiserver_request_duration_seconds", &pod_post),
            sli: histo(text, "apiserver_request_sli_duration_seconds", &pod_post),
            admit: step("admit"),
            validate: step("validate"),
            admit_passes: total(
                text,
                "apiserver_admission_controller_admission_duration_seconds_count",
                &[
                    ("operation", "CREATE"),
                    ("type", "admit"),
                    ("name", "MutatingAdmissionWebhook"),
                ],
            ),
            hook_call,
            handler,
        }
    }

    fn minus(&self, before: &Burst) -> Burst {
        let d = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0, a.1 - b.1);
        Burst {
            request: d(self.request, before.request),
            sli: d(self.sli, before.sli),
            admit: d(self.admit, before.admit),
            validate: d(self.validate, before.validate),
            admit_passes: self.admit_passes - before.admit_passes,
            hook_call: d(self.hook_call, before.hook_call),
            handler: self.handler.zip(before.handler).map(|(a, b)| d(a, b)),
        }
    }

    fn add(&mut self, o: &Burst) {
        let a = |x: &mut (f64, f64), y: (f64, f64)| {
            x.0 += y.0;
            x.1 += y.1;
        };
        a(&mut self.request, o.request);
        a(&mut self.sli, o.sli);
        a(&mut self.admit, o.admit);
        a(&mut self.validate, o.validate);
        self.admit_passes += o.admit_passes;
        a(&mut self.hook_call, o.hook_call);
        if let Some(h) = o.handler {
            a(self.handler.get_or_insert((0.0, 0.0)), h);
        }
    }
}

/// The state whose metrics time the handler a case calls.
fn ours_state<'a>(
    case: &Case,
    hook: &'a webhook::AppState,
    h1: &'a webhook::AppState,
) -> &'a webhook::AppState {
    match case.how {
        How::Variant(Variant::Http1) => h1,
        _ => hook,
    }
}

fn mean_ms((sum, count): (f64, f64)) -> f64 {
    if count > 0.0 {
        sum / count * 1e3
    } else {
        f64::NAN
    }
}

#[tokio::main]
async fn main() {
    let opts = Opts::parse();
    let admin = testsupport::client().await;
    let guards = admission::manifest_objects(&policies::guards_manifest());
    let policy = admission::manifest_objects(&policies::stamp_policy_manifest());
    let manifest_hook = admission::manifest_objects(
        &admission::repo_root().join("manifests/base/mutatingwebhookconfiguration.yaml"),
    )[0]["webhooks"][0]["name"]
        .as_str()
        .expect("the manifest's webhook has a name")
        .to_owned();
    let hook = RunningWebhook::start().await;

    // The variants: same listener code, TLS config and certificate as the webhook.
    let resolver = Arc::new(CertResolver::new(
        hook.cert_files(),
        Readiness::default(),
        Metrics::default(),
    ));
    resolver
        .load()
        .await
        .expect("the webhook's certificate loads");
    let (stop_tx, stop_rx) = watch::channel(false);
    let handled = Arc::new(Handled::default());
    let variants_metrics = Metrics::default();
    let variants_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let variants_addr = variants_listener.local_addr().unwrap();
    let variants = tokio::spawn(webhook::server::serve(
        variants_listener,
        Some(Arc::new(
            webhook::tls::server_config(resolver.clone()).unwrap(),
        )),
        variants_router(handled.clone()),
        webhook::server::Bounds::tls(&webhook::Limits::default()),
        stop_rx.clone(),
        Duration::from_secs(2),
        variants_metrics.clone(),
    ));
    // HTTP/1.1 only: ALPN offers nothing else, and the listener serves nothing else.
    let mut h1_tls = webhook::tls::server_config(resolver).unwrap();
    h1_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let h1_state = webhook::AppState::new(Readiness::ready());
    let h1_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h1_addr = h1_listener.local_addr().unwrap();
    let h1 = tokio::spawn(webhook::server::serve(
        h1_listener,
        Some(Arc::new(h1_tls)),
        webhook::router(h1_state.clone()),
        webhook::server::Bounds {
            http2: false,
            ..webhook::server::Bounds::tls(&webhook::Limits::default())
        },
        stop_rx.clone(),
        Duration::from_secs(2),
        h1_state.metrics().clone(),
    ));

    let mut cases = Vec::new();
    let mut installed: Vec<Installed> = Vec::new();
    let mut configs = Vec::new();
    let none = BTreeMap::new();
    for (name, how, guarded) in [
        ("none", How::Nothing, false),
        ("webhook", How::Webhook, false),
        ("policy", How::Policy, false),
        ("guards", How::Nothing, true),
        ("webhook+guards", How::Webhook, true),
        ("policy+guards", How::Policy, true),
        ("prestamped", How::Prestamped, false),
        ("webhook-noop", How::Variant(Variant::Noop), false),
        ("webhook-nochange", How::Variant(Variant::NoChange), false),
        ("webhook-plain", How::Variant(Variant::Plain), false),
        ("webhook-noaudit", How::Variant(Variant::NoAudit), false),
        ("webhook-http1", How::Variant(Variant::Http1), false),
    ] {
        let ns = testsupport::fresh_namespace(&admin, &format!("bench-{}", name.replace('+', "-")))
            .await;
        let mut hook_name = None;
        match how {
            How::Webhook if guarded => {
                // Its own name, so the apiserver's per-webhook metrics keep it apart.
                let n = "stamp-guards.bench.kpo-sweeper.io";
                let url = format!("https://{}/mutate", hook.addr);
                configs.push(hook::register_url(&admin, &ns, &url, &hook.ca_pem, Some(n)).await);
                hook_name = Some(n.to_owned());
            }
            How::Webhook => {
                configs.push(hook::register(&admin, &ns, hook.addr, &hook.ca_pem).await);
                hook_name = Some(manifest_hook.clone());
            }
            How::Policy => {
                installed.push(admission::install_scoped(&admin, &policy, &ns, &none).await);
            }
            How::Variant(v) => {
                let addr = if v == Variant::Http1 {
                    h1_addr
                } else {
                    variants_addr
                };
                let url = format!("https://{addr}{}", v.path());
                let n = v.hook_name();
                configs.push(hook::register_url(&admin, &ns, &url, &hook.ca_pem, Some(n)).await);
                hook_name = Some(n.to_owned());
            }
            How::Nothing | How::Prestamped => {}
        }
        if guarded {
            installed.push(admission::install_scoped(&admin, &guards, &ns, &none).await);
        }
        let stamped = match how {
            How::Webhook | How::Policy | How::Prestamped => true,
            How::Variant(v) => matches!(v, Variant::Plain | Variant::NoAudit | Variant::Http1),
            How::Nothing => false,
        };
        cases.push(Case {
            name,
            how,
            api: Api::namespaced(admin.clone(), &ns),
            _cleanup: testsupport::DeletePodsOnDrop::new(&ns),
            ns,
            stamped,
            hook: hook_name,
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
    // The pod a case sends: as KPO makes it, or (prestamped) with the stamp our webhook would write
    // for the admin's request already in it (made before the clock starts).
    let username = Api::<SelfSubjectReview>::all(admin.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("a SelfSubjectReview says who the admin is")
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .expect("the admin has a username");
    let to_send = |case: &Case, p: Pod| {
        let (how, ns, user) = (case.how, case.ns.clone(), username.clone());
        async move {
            if how != How::Prestamped {
                return p;
            }
            let v = serde_json::to_value(&p).unwrap();
            let (stamped, _) = policies::webhook_stamped(&v, &ns, &user).await;
            serde_json::from_value(stamped).unwrap()
        }
    };
    let pp = PostParams::default();
    // Until every case's stamping is in effect (the apiserver loads configurations eventually), then
    // the warm-up.
    for case in &cases {
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let probe = to_send(case, pod(0, "probe")).await;
        admission::wait_until(case.name, Duration::from_secs(30), || {
            let (api, dry, p, want) = (case.api.clone(), dry.clone(), probe.clone(), case.stamped);
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
            let p = to_send(case, pod(i, "warm")).await;
            case.api.create(&pp, &p).await.unwrap();
        }
    }
    let load_before = loadavg();
    let (text, ours, h1_ours) = (
        apiserver_metrics(&admin).await,
        webhook_metrics(&hook.state).await,
        webhook_metrics(&h1_state).await,
    );
    let main_before: Vec<Burst> = cases
        .iter()
        .map(|c| {
            let o = if c.how == How::Variant(Variant::Http1) {
                &h1_ours
            } else {
                &ours
            };
            Burst::read(c, &text, o, &handled)
        })
        .collect();
    for i in 0..opts.pods {
        let n = cases.len();
        for k in 0..n {
            let case = &mut cases[(i + k) % n];
            let p = to_send(case, pod(i, "p")).await;
            let start = Instant::now();
            let created = case.api.create(&pp, &p).await.unwrap();
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
    let load_after = loadavg();
    let (text, ours, h1_ours) = (
        apiserver_metrics(&admin).await,
        webhook_metrics(&hook.state).await,
        webhook_metrics(&h1_state).await,
    );
    let main: Vec<Burst> = cases
        .iter()
        .zip(&main_before)
        .map(|(c, before)| {
            let o = if c.how == How::Variant(Variant::Http1) {
                &h1_ours
            } else {
                &ours
            };
            Burst::read(c, &text, o, &handled).minus(before)
        })
        .collect();

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
            "{:<17} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   added p50 {:>+6.2} ms   p99 {:>+6.2} ms",
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
    println!("load average before/after the measured creates: {load_before} / {load_after}");

    // The webhook's added p50, taken apart (differences of p50s: indicative, not additive to the µs).
    let p = |name: &str| figures[name].0;
    let handler_text = webhook_metrics(&hook.state).await;
    let handler = histo(&handler_text, "kpo_webhook_admission_duration_seconds", &[]);
    println!("-- the webhook's added p50, taken apart (ms) --");
    for (label, ms) in [
        (
            "calling a webhook that answers allowed, no patch (webhook-noop - none)",
            p("webhook-noop") - base50,
        ),
        (
            "a patch, even one changing nothing, and the chain run twice (nochange - noop)",
            p("webhook-nochange") - p("webhook-noop"),
        ),
        (
            "our stamp instead of that patch: a bigger pod (webhook - webhook-nochange)",
            p("webhook") - p("webhook-nochange"),
        ),
        (
            "  compare: a bigger pod, no admission at all (prestamped - none)",
            p("prestamped") - base50,
        ),
        ("= webhook - none", w50 - base50),
        (
            "our server's body bounds, timeouts, metrics (webhook - webhook-plain)",
            w50 - p("webhook-plain"),
        ),
        (
            "audit annotations (webhook-plain - webhook-noaudit)",
            p("webhook-plain") - p("webhook-noaudit"),
        ),
        (
            "HTTP/1.1 instead of HTTP/2 (webhook-http1 - webhook)",
            p("webhook-http1") - w50,
        ),
    ] {
        println!("  {label:<78} {ms:>+6.2}");
    }
    println!(
        "  our handler (mean of kpo_webhook_admission_duration_seconds: from the request's headers, waiting for its body, to the answer) {:.3}",
        mean_ms(handler)
    );
    println!(
        "-- per webhook, over the interleaved creates (mean ms): the apiserver's call (apiserver_admission_webhook_admission_duration_seconds: review built, HTTP call, patch applied) / our handler --"
    );
    for (c, b) in cases.iter().zip(&main) {
        if c.hook.is_some() {
            println!(
                "  {:<17} call {:>6.3}   handler {}",
                c.name,
                mean_ms(b.hook_call),
                b.handler.map_or_else(
                    || "-".to_owned(),
                    |h| format!(
                        "{:.3}{}",
                        mean_ms(h),
                        if c.how == How::Webhook {
                            " (webhook and webhook+guards together)"
                        } else {
                            ""
                        }
                    )
                ),
            );
        }
    }
    let conns = |m: &Metrics| {
        format!(
            "{} h2, {} http/1.1 connections",
            m.connections("h2"),
            m.connections("http/1.1")
        )
    };
    println!(
        "  connections from the apiserver: webhook {} for {} reviews; variants {}; http1 {} for {} reviews",
        conns(hook.state.metrics()),
        hook.state.metrics().requests("stamped"),
        conns(&variants_metrics),
        conns(h1_state.metrics()),
        h1_state.metrics().requests("stamped"),
    );

    if opts.direct > 0 {
        let targets = [
            ("webhook", format!("https://{}/mutate", hook.addr)),
            (
                "webhook-plain",
                format!("https://{variants_addr}{}", Variant::Plain.path()),
            ),
            (
                "webhook-noop",
                format!("https://{variants_addr}{}", Variant::Noop.path()),
            ),
        ];
        let p50s = direct_round_trips(&targets, &hook.ca_pem, opts.direct).await;
        println!(
            "-- straight to our servers, no apiserver: {} POSTs of a KPO pod's review each, one HTTP/2 connection, sequential, interleaved (p50 ms; load {}) --",
            opts.direct,
            loadavg()
        );
        for ((name, _), p50) in targets.iter().zip(p50s) {
            println!("  {name:<17} {p50:.3}");
        }
    }

    if opts.breakdown > 0 {
        let rounds = opts.breakdown.div_ceil(BREAKDOWN_ROUND).max(1);
        println!(
            "== The apiserver's own metrics, per case: {} creates each, {rounds} rounds of up to {BREAKDOWN_ROUND} creates in a row per case \
             (deltas of /metrics between a case's creates; means in ms) ==",
            opts.breakdown
        );
        let mut sums: Vec<Burst> = cases.iter().map(|_| Burst::default()).collect();
        let mut took: Vec<Vec<Duration>> = cases.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let from = round * BREAKDOWN_ROUND;
            let to = (from + BREAKDOWN_ROUND).min(opts.breakdown);
            let n = cases.len();
            for k in 0..n {
                let c = (round + k) % n;
                let case = &cases[c];
                let ours = ours_state(case, &hook.state, &h1_state);
                let before = Burst::read(
                    case,
                    &apiserver_metrics(&admin).await,
                    &webhook_metrics(ours).await,
                    &handled,
                );
                for i in from..to {
                    let p = to_send(case, pod(i, "b")).await;
                    let start = Instant::now();
                    case.api.create(&pp, &p).await.unwrap();
                    took[c].push(start.elapsed());
                }
                let after = Burst::read(
                    case,
                    &apiserver_metrics(&admin).await,
                    &webhook_metrics(ours).await,
                    &handled,
                );
                sums[c].add(&after.minus(&before));
            }
        }
        println!(
            "{:<17} {:>6} {:>8} {:>9} {:>9} {:>6} {:>6} {:>8} {:>7} {:>10} {:>7} {:>8} {:>6}",
            "case",
            "p50",
            "request",
            "excl.hook",
            "hook call",
            "HTTP",
            "other",
            "handler",
            "admit",
            "admit-hook",
            "re-runs",
            "validate",
            "calls"
        );
        for (c, case) in cases.iter().enumerate() {
            let b = &sums[c];
            took[c].sort();
            // Per admission (every CREATE in the cluster passes each step once).
            let steps = b.admit.1.max(1.0);
            // The webhook's HTTP call (what the SLI leaves out), per pod create.
            let http = (b.request.0 - b.sli.0) / b.request.1.max(1.0) * 1e3;
            println!(
                "{:<17} {:>6.2} {:>8.2} {:>9.2} {:>9.3} {:>6.3} {:>6.3} {:>8} {:>7.3} {:>10.3} {:>7.2} {:>8.3} {:>6.0}",
                case.name,
                ms(percentile(&took[c], 0.5)),
                mean_ms(b.request),
                mean_ms(b.sli),
                mean_ms(b.hook_call),
                http,
                mean_ms(b.hook_call) - http,
                b.handler
                    .map_or_else(|| "-".to_owned(), |h| format!("{:.3}", mean_ms(h))),
                mean_ms(b.admit),
                (b.admit.0 - b.hook_call.0) / steps * 1e3,
                // Passes of the mutating chain beyond one per admission, per pod create.
                (b.admit_passes - b.admit.1) / b.request.1.max(1.0),
                mean_ms(b.validate),
                b.request.1,
            );
        }
        println!(
            "(p50: of these creates, client side; request: the apiserver's apiserver_request_duration_seconds of POST pods; \
             excl.hook: its _sli_ twin, which leaves out the webhook's HTTP call; hook call: \
             apiserver_admission_webhook_admission_duration_seconds (review built, HTTP call, patch applied), made of \
             HTTP: request - excl.hook (the review sent, answered, the answer decoded) and other: the rest (the review \
             built and encoded; with a patch, the pod encoded to JSON, patched, decoded, compared, defaulted); handler: ours, body read to answer; admit, validate: the admission steps' mean per admission; admit-hook: the \
             mutating step without the hook call; re-runs: extra passes of the mutating admission chain per pod \
             create (1: the apiserver ran every mutating admission plugin again after a patch, even one that changed nothing); calls: \
             POST pods the apiserver counted, more than the creates when someone else created pods meanwhile; admit, \
             validate and re-runs count every CREATE in the cluster)"
        );
    }

    for name in &configs {
        hook::unregister(&admin, name).await;
    }
    for i in installed {
        i.remove().await;
    }
    let _ = stop_tx.send(true);
    let _ = variants.await;
    let _ = h1.await;
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

/// Round trips straight to our servers, without the apiserver: one HTTP/2 connection per target (TLS
/// trusting `ca_pem`), `n` sequential POSTs of a KPO pod's review to each, interleaved. Returns the
/// p50 per target, in ms.
async fn direct_round_trips(targets: &[(&str, String)], ca_pem: &str, n: usize) -> Vec<f64> {
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let ti = testsupport::TiSpec::new("bench_dag", "task_0", "manual__2026-11-27T00:00:00+00:00");
    let pod = serde_json::to_value(testsupport::kpo_pod("direct-0", &ti)).unwrap();
    let body = Bytes::from(
        serde_json::to_vec(&policies::create_review(&pod, "bench", policies::WORKER)).unwrap(),
    );
    let mut senders = Vec::new();
    for (_, url) in targets {
        let uri: http::Uri = url.parse().unwrap();
        let addr: std::net::SocketAddr = uri.authority().unwrap().as_str().parse().unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let tls = connector
            .connect(
                rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
                tcp,
            )
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        senders.push((sender, uri));
    }
    let mut took: Vec<Vec<Duration>> = targets.iter().map(|_| Vec::new()).collect();
    for i in 0..n {
        for k in 0..senders.len() {
            let t = (i + k) % senders.len();
            let (sender, uri) = &mut senders[t];
            let req = http::Request::post(uri.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .unwrap();
            let start = Instant::now();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{}", targets[t].0);
            resp.into_body().collect().await.unwrap();
            took[t].push(start.elapsed());
        }
    }
    took.into_iter()
        .map(|mut v| {
            v.sort();
            ms(percentile(&v, 0.5))
        })
        .collect()
}

/// The 1-minute load average, as /proc/loadavg says.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
