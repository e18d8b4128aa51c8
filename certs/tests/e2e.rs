//! `certs install` and `certs rotate` against the real kube-apiserver from `tests/env/up`.
//!
//! Each test makes its own namespace, Secret and MutatingWebhookConfiguration (named after the
//! namespace, selecting only that namespace), so they run beside every other test on the shared
//! apiserver. The last test runs the real webhook (the `webhook` crate's server, in-process) on the
//! Secret's files, written the way the kubelet writes a Secret volume, while pods are created without
//! pause, and rotates twice: no admission may fail and every KPO pod must be stamped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certs::cluster::{self, Change, Target};
use certs::pki::{self, CertInfo};
use certs::plan::{Policy, Reason};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const H: i64 = 3_600;
const D: i64 = 86_400;

/// A webhook configuration of `hooks` webhooks that only ever sees KPO pods of `ns`.
async fn webhook_config(
    client: &kube::Client,
    ns: &str,
    hooks: usize,
    url: Option<&str>,
) -> String {
    let name = format!("kpo-certs-test-{ns}");
    let client_config = match url {
        Some(u) => json!({"url": u}),
        None => {
            json!({"service": {"name": "kpo-sweeper-webhook", "namespace": ns, "path": "/mutate"}})
        }
    };
    let webhooks: Vec<_> = (0..hooks)
        .map(|i| {
            json!({
                "name": format!("stamp{i}.kpo-sweeper.io"),
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                // Fail, not the shipped Ignore: a TLS failure must show up as a failed create.
                "failurePolicy": if url.is_some() { "Fail" } else { "Ignore" },
                "timeoutSeconds": 10,
                "matchPolicy": "Equivalent",
                "reinvocationPolicy": "Never",
                "clientConfig": client_config,
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["pods"], "scope": "Namespaced"}],
                "objectSelector": {"matchLabels": {"kubernetes_pod_operator": "True"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            })
        })
        .collect();
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"kpo-sweeper.io/test": "certs"}},
        "webhooks": webhooks,
    }))
    .unwrap();
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.create(&PostParams::default(), &mwc).await.unwrap();
    name
}

async fn delete_webhook_config(client: &kube::Client, name: &str) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

fn target(ns: &str, config: &str) -> Target {
    Target {
        namespace: ns.into(),
        secret: "kpo-sweeper-webhook-tls".into(),
        webhook_config: config.into(),
    }
}

/// The caBundle of every webhook of the configuration, parsed.
async fn bundles(client: &kube::Client, config: &str) -> Vec<Vec<CertInfo>> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.get(config)
        .await
        .unwrap()
        .webhooks
        .unwrap()
        .iter()
        .map(|w| {
            let b = w.client_config.ca_bundle.as_ref().expect("caBundle set");
            pki::parse_bundle(std::str::from_utf8(&b.0).unwrap()).unwrap()
        })
        .collect()
}

async fn secret(client: &kube::Client, t: &Target) -> Secret {
    Api::<Secret>::namespaced(client.clone(), &t.namespace)
        .get(&t.secret)
        .await
        .unwrap()
}

/// The Secret is a kubernetes.io/tls Secret whose serving cert is for `names`, matches its key and
/// was signed by its ca.crt, and every webhook's caBundle starts with that CA. Returns the material.
async fn assert_consistent(client: &kube::Client, t: &Target, names: &[String]) -> pki::Material {
    let s = secret(client, t).await;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let m = cluster::material_of(&s).expect("tls.crt, tls.key, ca.crt, ca.key");
    let ca = CertInfo::parse(&m.ca_cert).unwrap();
    let tls = CertInfo::parse(&m.tls_cert).unwrap();
    assert!(ca.is_ca);
    assert!(tls.signed_by(&ca), "tls.crt not signed by ca.crt");
    assert!(pki::key_matches(&tls, &m.tls_key));
    assert!(pki::key_matches(&ca, &m.ca_key));
    assert!(pki::sans_match(&tls, names), "SANs {:?}", tls.sans);
    for b in bundles(client, &t.webhook_config).await {
        assert_eq!(
            b[0].der, ca.der,
            "caBundle does not start with the Secret's CA"
        );
    }
    m
}

fn certs_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certs"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run certs");
    assert!(
        out.status.success(),
        "certs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Logs to a pipe (a Pod's log, CI) are plain text: no terminal colour codes.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.is_empty() && !stderr.contains('\x1b'),
        "certs {args:?} logged ANSI escapes (or nothing) to a pipe: {stderr:?}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn install_sets_secret_and_every_cabundle_and_twice_is_a_no_op() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "kpo-certs-install").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let config = webhook_config(&client, &ns, 2, None).await;
    let t = target(&ns, &config);
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let out_dir = std::env::temp_dir().join(format!("kpo-certs-install-{ns}"));
    let out_dir_s = out_dir.display().to_string();
    let args = [
        "install",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        &ns,
        "--service",
        "kpo-sweeper-webhook",
        "--secret",
        &t.secret,
        "--webhook-config",
        &config,
        "--out-dir",
        &out_dir_s,
    ];

    let first = certs_cli(&args);
    assert!(
        first.starts_with(&format!("secret {ns}/kpo-sweeper-webhook-tls: created")),
        "{first}"
    );
    assert!(
        first.contains(": updated (caBundle: 1 CA(s), 0 dropped)"),
        "{first}"
    );
    let names = pki::service_names("kpo-sweeper-webhook", &ns, &[]);
    let m = assert_consistent(&client, &t, &names).await;
    let b = bundles(&client, &config).await;
    assert_eq!(b.len(), 2, "both webhooks");
    assert!(b.iter().all(|b| b.len() == 1));
    for (file, want) in [
        ("ca.crt", &m.ca_cert),
        ("tls.crt", &m.tls_cert),
        ("tls.key", &m.tls_key),
    ] {
        assert_eq!(&std::fs::read_to_string(out_dir.join(file)).unwrap(), want);
    }
    let rv = secret(&client, &t).await.metadata.resource_version;

    let second = certs_cli(&args);
    assert!(second.starts_with("unchanged:"), "{second}");
    assert_eq!(secret(&client, &t).await.metadata.resource_version, rv);
    assert_eq!(assert_consistent(&client, &t, &names).await, m);

    // Someone empties one caBundle: install puts it back and leaves the Secret alone.
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let mut mwc = api.get(&config).await.unwrap();
    mwc.webhooks.as_mut().unwrap()[1].client_config.ca_bundle = None;
    api.replace(&config, &PostParams::default(), &mwc)
        .await
        .unwrap();
    let third = certs_cli(&args);
    assert!(
        third.contains(&format!("secret {ns}/kpo-sweeper-webhook-tls: unchanged")),
        "{third}"
    );
    assert!(third.contains(&format!("mutatingwebhookconfiguration {config}: updated")));
    assert_eq!(assert_consistent(&client, &t, &names).await, m);

    // A missing configuration is an error that says what to do.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certs"))
        .args(["install", "--kubeconfig", &kubeconfig, "--namespace", &ns])
        .args(["--webhook-config", "kpo-certs-test-does-not-exist"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("apply the manifests first"));

    delete_webhook_config(&client, &config).await;
    let _ = std::fs::remove_dir_all(out_dir);
}

fn install_policy(names: &[String]) -> Policy {
    Policy {
        names: names.to_vec(),
        validity: 2 * H,
        ca_validity: 4 * H,
        renew_before: 0,
        ca_renew_before: 0,
        ca_overlap: H,
    }
}

fn rotate_policy(names: &[String], ca_overlap: i64) -> Policy {
    Policy {
        names: names.to_vec(),
        validity: 365 * D,
        ca_validity: 3650 * D,
        renew_before: 30 * D,
        ca_renew_before: 90 * D,
        ca_overlap,
    }
}

#[tokio::test]
async fn rotate_twice_carries_old_and_new_ca_then_drops_the_old() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "kpo-certs-rotate").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let config = webhook_config(&client, &ns, 2, None).await;
    let t = target(&ns, &config);
    let names = pki::service_names("kpo-sweeper-webhook", &ns, &[]);
    let settle = Duration::from_millis(200);

    // A CA that expires in 4h: inside rotate's 90-day threshold.
    let r0 = cluster::reconcile(&client, &t, &install_policy(&names), settle)
        .await
        .unwrap();
    assert_eq!(r0.secret, Change::Created);
    let m0 = assert_consistent(&client, &t, &names).await;
    let ca0 = CertInfo::parse(&m0.ca_cert).unwrap();

    // Rotation 1: a new CA and serving cert; the caBundle carries the new CA and the old one.
    let r1 = cluster::reconcile(&client, &t, &rotate_policy(&names, H), settle)
        .await
        .unwrap();
    assert_eq!(r1.ca_renewed, Some(Reason::Expiring));
    assert_eq!(r1.serving_renewed, Some(Reason::NewCa));
    assert_eq!((r1.secret, r1.webhook), (Change::Updated, Change::Updated));
    let m1 = assert_consistent(&client, &t, &names).await;
    assert_ne!(m1.ca_cert, m0.ca_cert);
    for b in bundles(&client, &config).await {
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].der, ca0.der, "old CA still trusted");
        // Whichever pair a webhook pod serves right now verifies.
        assert!(CertInfo::parse(&m0.tls_cert).unwrap().signed_by(&b[1]));
        assert!(CertInfo::parse(&m1.tls_cert).unwrap().signed_by(&b[0]));
    }

    // Within the overlap: nothing to do.
    let r2 = cluster::reconcile(&client, &t, &rotate_policy(&names, H), settle)
        .await
        .unwrap();
    assert!(r2.unchanged(), "{r2}");

    // Rotation 2, once the overlap is over: the old CA leaves the caBundle, the Secret stays.
    let r3 = cluster::reconcile(&client, &t, &rotate_policy(&names, 0), settle)
        .await
        .unwrap();
    assert_eq!(
        (r3.secret, r3.webhook),
        (Change::Unchanged, Change::Updated)
    );
    assert_eq!(r3.dropped_cas, 1);
    assert_eq!(assert_consistent(&client, &t, &names).await, m1);
    for b in bundles(&client, &config).await {
        assert_eq!(b.len(), 1);
    }
    let r4 = cluster::reconcile(&client, &t, &rotate_policy(&names, 0), settle)
        .await
        .unwrap();
    assert!(r4.unchanged(), "{r4}");

    delete_webhook_config(&client, &config).await;
}

/// Copies the Secret's tls.crt and tls.key into `dir` whenever they change, with the `..data` swap
/// the kubelet does for a Secret volume (the webhook's cert reload must survive it).
async fn kubelet_sim(
    client: kube::Client,
    t: Target,
    dir: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) {
    let mut last: Option<(String, String)> = None;
    while !stop.load(Ordering::Relaxed) {
        let s = secret(&client, &t).await;
        if let Some(m) = cluster::material_of(&s) {
            let now = (m.tls_cert.clone(), m.tls_key.clone());
            if last.as_ref() != Some(&now) {
                certs::files::write_projected(
                    &dir,
                    &[("tls.crt", &now.0, false), ("tls.key", &now.1, true)],
                )
                .unwrap();
                last = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the webhook serves `tls_cert`.
async fn wait_serving(resolver: &webhook::tls::CertResolver, tls_cert: &str) {
    let want = CertInfo::parse(tls_cert).unwrap().der;
    let deadline = Instant::now() + Duration::from_secs(30);
    while resolver.current_leaf().map(|c| c.to_vec()) != Some(want.clone()) {
        assert!(
            Instant::now() < deadline,
            "webhook never loaded the new pair"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_twice_under_a_stream_of_pod_creates_fails_no_admission() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "kpo-certs-stream").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let dir = std::env::temp_dir().join(format!("kpo-certs-stream-{ns}"));
    let _ = std::fs::remove_dir_all(&dir);
    let names = pki::service_names("kpo-sweeper-webhook", &ns, &["127.0.0.1".into()]);
    let settle = Duration::from_secs(2);

    // The webhook on loopback (port 0, so no race for a port); the apiserver calls it by URL (no
    // Service routing without kube-proxy). It starts before its files exist, as a pod whose Secret
    // volume is not there yet would, and picks them up when they appear.
    let server = webhook::Server::bind(webhook::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        cert: webhook::tls::CertFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        },
        cert_poll_interval: Duration::from_millis(200),
        drain_timeout: Duration::from_secs(2),
        limits: webhook::Limits::default(),
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let resolver = server.resolver().clone();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = shutdown_rx.await;
    }));
    let config = webhook_config(&client, &ns, 1, Some(&format!("https://{addr}/mutate"))).await;
    let t = target(&ns, &config);

    cluster::reconcile(&client, &t, &install_policy(&names), settle)
        .await
        .unwrap();
    let m0 = assert_consistent(&client, &t, &names).await;
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = tokio::spawn(kubelet_sim(
        client.clone(),
        t.clone(),
        dir.clone(),
        stop.clone(),
    ));
    wait_serving(&resolver, &m0.tls_cert).await;

    // The stream: one KPO pod after another until told to stop.
    let created = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stream = {
        let (client, ns, stop) = (client.clone(), ns.clone(), stop.clone());
        let (created, failures) = (created.clone(), failures.clone());
        tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let ti = testsupport::TiSpec::new("certs_rotation", "stream", &format!("run_{i}"));
                match pods
                    .create(
                        &PostParams::default(),
                        &testsupport::kpo_pod(&format!("p-{i}"), &ti),
                    )
                    .await
                {
                    Ok(_) => {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(format!("p-{i}: {e}")),
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let wait_for_more = |n: usize| {
        let created = created.clone();
        async move {
            let target = created.load(Ordering::Relaxed) + n;
            let deadline = Instant::now() + Duration::from_secs(60);
            while created.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "pod creates stalled");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for_more(10).await;

    // Rotation 1: new CA. The caBundle gets both CAs first, then the Secret changes, then the kubelet
    // copy, then the webhook's reload: admissions go on all along.
    let r1 = cluster::reconcile(&client, &t, &rotate_policy(&names, 0), settle)
        .await
        .unwrap();
    assert_eq!(r1.ca_renewed, Some(Reason::Expiring));
    assert_eq!(r1.bundle_cas, 2);
    wait_for_more(5).await;
    wait_serving(&resolver, &r1.material.tls_cert).await;
    wait_for_more(10).await;

    // Rotation 2: the webhook serves the new pair, so the old CA is dropped.
    let r2 = cluster::reconcile(&client, &t, &rotate_policy(&names, 0), settle)
        .await
        .unwrap();
    assert_eq!(
        (r2.secret, r2.webhook),
        (Change::Unchanged, Change::Updated)
    );
    assert_eq!(r2.bundle_cas, 1);
    wait_for_more(20).await;

    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    kubelet.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "failed admissions:\n{}",
        failures.join("\n")
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), created.load(Ordering::Relaxed));
    assert!(list.items.len() >= 45);
    let unstamped: Vec<_> = list
        .items
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            let ann = p.metadata.annotations.clone().unwrap_or_default();
            labels.get(tikey::stamp::STAMPED_LABEL).map(String::as_str)
                != Some(tikey::stamp::STAMPED_VALUE)
                || !ann.contains_key(tikey::stamp::TI_KEY)
        })
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    assert!(unstamped.is_empty(), "unstamped pods: {unstamped:?}");

    delete_webhook_config(&client, &config).await;
    let _ = shutdown_tx.send(());
    serving.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
