//! The image as it ships (`make image`, make test builds it first): its index and labels, its root
//! filesystem, the arm64 binaries under Debian's qemu-user-static, and the three binaries run from the
//! amd64 root filesystem the way a cluster runs them (docs/design.md, "Image" and "Tests").
//!
//! "The way a cluster runs them": `unshare -m -p -f --root=ROOTFS --setuid 65532 --setgid 65532`
//! (a mount and PID namespace, the image's root filesystem as `/`, the image's user), an environment
//! holding only KUBERNETES_SERVICE_HOST/PORT, and a ServiceAccount token (TokenRequest), the cluster CA
//! and the namespace at /var/run/secrets/kubernetes.io/serviceaccount, where the kubelet puts them. Each
//! binary has its own ServiceAccount with the rules the manifests give it; nothing runs with the
//! admin's credentials. No Docker engine runs here (podman's runtime cannot start in this sandbox), so
//! this is the runtime's work done by hand: the binaries, their files and their user are the image's own.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::FutureExt;
use image_tests::*;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use testsupport::{DbKind, TiSpec};
use tikey::stamp::{self, Stamp};

/// The Airflow workers' identity: it creates the KPO pods, the webhook stamps it, `--owner` names it.
const OWNER: &str = "system:serviceaccount:airflow:airflow-worker";
/// The upstream DAG of apache/airflow#58968 and a manual run of it.
const UPSTREAM_DAG: &str = "kpo_zombie_dag";
const UPSTREAM_RUN: &str = "manual__2025-12-02T10:00:00+00:00";

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("image-{name}-{}", testsupport::random_suffix(6)));
    assert!(!d.exists());
    d
}

#[test]
fn index_holds_amd64_and_arm64_with_the_labels() {
    let index = index();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index:#}"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let version = workspace_version();
    for arch in ARCHES {
        let cfg = image_config(arch);
        assert_eq!(cfg["architecture"], arch, "{cfg:#}");
        assert_eq!(cfg["os"], "linux");
        let c = &cfg["config"];
        assert_eq!(c["User"], "65532:65532", "{cfg:#}");
        assert_eq!(c["Entrypoint"], json!(["/usr/local/bin/webhook"]));
        let labels = &c["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], version.as_str());
        assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
        let source = labels["org.opencontainers.image.source"]
            .as_str()
            .unwrap_or_default();
        assert!(source.starts_with("https://"), "source label {source:?}");
        // One layer: the root filesystem of `make image-rootfs`.
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }
    // The Dockerfile's default VERSION (a `docker buildx build` without --build-arg) follows the crates.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG VERSION={version}\n")),
        "the Dockerfile's ARG VERSION default must be the workspace version {version}"
    );
}

#[test]
fn rootfs_is_static_binaries_ca_roots_and_nonroot_without_a_shell() {
    for arch in ARCHES {
        let dir = scratch(&format!("layout-{arch}"));
        let u = unpack(arch, &dir);
        let root = &u.rootfs;
        // As a runtime would start it: user 65532, the webhook as entrypoint.
        let process = &u.runtime_config["process"];
        assert_eq!(process["user"]["uid"], NONROOT, "{process:#}");
        assert_eq!(process["user"]["gid"], NONROOT, "{process:#}");
        assert_eq!(process["args"], json!(["/usr/local/bin/webhook"]));

        // Exactly these files, no shell, no package manager, no libc.
        let mut files = Vec::new();
        walk(root, root, &mut files);
        files.sort();
        assert_eq!(
            files,
            [
                "etc/group",
                "etc/passwd",
                "etc/ssl/certs/ca-certificates.crt",
                "usr/local/bin/certs",
                "usr/local/bin/sweeper",
                "usr/local/bin/webhook",
            ],
            "{arch}: the root filesystem's files"
        );
        for sh in ["bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"] {
            assert!(!root.join(sh).exists(), "{arch}: {sh} exists");
        }
        let tmp = std::fs::metadata(root.join("tmp")).expect("/tmp");
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "{arch}: /tmp");

        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("nonroot:x:65532:65532:")),
            "{passwd}"
        );
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
        assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
        let ca = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        assert!(
            ca.matches("-----BEGIN CERTIFICATE-----").count() > 50,
            "{arch}: the CA roots"
        );

        for b in BINARIES {
            let path = root.join("usr/local/bin").join(b);
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o755, "{arch} {b}");
            assert_eq!(
                (meta.uid(), meta.gid()),
                (0, 0),
                "{arch} {b}: owned by root"
            );
            let e = elf(&std::fs::read(&path).unwrap());
            assert_eq!(e.machine, elf_machine(arch), "{arch} {b}");
            assert!(!e.dynamic, "{arch} {b} is dynamically linked");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            walk(root, &e.path(), files);
        } else {
            files.push(e.path().strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// The arm64 binaries run (Debian's qemu-user-static), and `certs generate` does real work there: ring's
/// AArch64 code makes a CA and a serving certificate.
#[test]
fn arm64_binaries_run_under_qemu() {
    let dir = scratch("arm64-qemu");
    let u = unpack("arm64", &dir);
    let bin = u.rootfs.join("usr/local/bin");
    let version = workspace_version();
    for b in BINARIES {
        for arg in ["--version", "--help"] {
            let out = run(Command::new("qemu-aarch64-static")
                .arg(bin.join(b))
                .arg(arg)
                .env_clear());
            let stdout = String::from_utf8_lossy(&out.stdout);
            if arg == "--version" {
                assert_eq!(stdout.trim(), format!("{b} {version}"), "{b} {arg}");
            } else {
                assert!(stdout.contains("Usage:"), "{b} {arg}: {stdout}");
            }
        }
    }
    let out_dir = dir.join("certs-out");
    run(Command::new("qemu-aarch64-static")
        .arg(bin.join("certs"))
        .args(["generate", "--extra-san", "127.0.0.1", "--out-dir"])
        .arg(&out_dir)
        .env_clear());
    for f in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        let text = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{f}: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- the three binaries, in cluster ---------------------------------------------------------------

/// The `listen=` and `metrics=` addresses of the webhook's "serving" log line (text format): it binds
/// port 0 and says which ports it got (no bind-then-release race).
fn bound_ports(log: &str) -> Option<(u16, u16)> {
    let line = log.lines().find(|l| l.contains(" serving "))?;
    let port = |field: &str| -> Option<u16> {
        let v = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(field))?;
        v.rsplit(':').next()?.parse().ok()
    };
    Some((port("listen=")?, port("metrics=")?))
}

/// A TokenRequest token of ServiceAccount `ns/sa`, as the kubelet requests one for a pod.
async fn token(client: &Client, ns: &str, sa: &str) -> String {
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        }),
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &tr)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {ns}/{sa}: {e}"))
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// [`pod_rootfs`] for a container of ServiceAccount `ns/sa`.
async fn sa_rootfs(
    client: &Client,
    image: &Path,
    into: &Path,
    ns: &str,
    sa: &str,
    ca: &[u8],
) -> PathBuf {
    let token = token(client, ns, sa).await;
    pod_rootfs(image, into, ns, Some(&token), ca)
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

async fn create<K>(api: &Api<K>, obj: Value) -> K
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let o: K = serde_json::from_value(obj.clone()).unwrap_or_else(|e| panic!("{e}: {obj}"));
    api.create(&PostParams::default(), &o)
        .await
        .unwrap_or_else(|e| panic!("cannot create {obj}: {e}"))
}

/// The ServiceAccounts and RBAC of the manifests (manifests/base certs.yaml and sweeper.yaml), in `ns`:
/// certs gets its Secret and its webhook configuration, the sweeper lists and deletes pods and creates
/// Events; the webhook needs no API access. The ClusterRole and its binding are named
/// `kpo-image-test-certs-<ns>`.
async fn rbac(client: &Client, ns: &str, secret: &str, mwc: &str) {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    for sa in [
        "kpo-sweeper-certs",
        "kpo-sweeper-sweeper",
        "kpo-sweeper-webhook",
    ] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    let sa_subject = |sa: &str| json!([{"kind": "ServiceAccount", "name": sa, "namespace": ns}]);
    create(
        &roles,
        json!({"metadata": {"name": "kpo-sweeper-certs"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]}),
    )
    .await;
    create(
        &roles,
        json!({"metadata": {"name": "kpo-sweeper-sweeper"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}]}),
    )
    .await;
    for r in ["kpo-sweeper-certs", "kpo-sweeper-sweeper"] {
        create(
            &bindings,
            json!({"metadata": {"name": r}, "subjects": sa_subject(r),
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": r}}),
        )
        .await;
    }
    let cr_name = format!("kpo-image-test-certs-{ns}");
    create(
        &Api::<ClusterRole>::all(client.clone()),
        json!({"metadata": {"name": cr_name, "labels": {testsupport::TEST_LABEL: "image"}}, "rules": [
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
             "resourceNames": [mwc], "verbs": ["get", "patch"]}]}),
    )
    .await;
    create(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        json!({"metadata": {"name": cr_name, "labels": {testsupport::TEST_LABEL: "image"}},
               "subjects": sa_subject("kpo-sweeper-certs"),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cr_name}}),
    )
    .await;
}

/// A webhook configuration (no caBundle yet: `certs` sets it) calling the webhook on loopback by URL, for
/// KPO pods of `ns` only. The port is set once the webhook has bound one (`set_webhook_port`); until
/// then the URL names port 1, where nothing listens. `failurePolicy: Fail` here (the manifests ship Ignore): a webhook that cannot be
/// reached or trusted shows up as a failed create, never as an unstamped pod.
async fn webhook_config(client: &Client, name: &str, ns: &str) {
    let port = 1;
    create(
        &Api::<MutatingWebhookConfiguration>::all(client.clone()),
        json!({
            "metadata": {"name": name, "labels": {testsupport::TEST_LABEL: "image"}},
            "webhooks": [{
                "name": "stamp.kpo-sweeper.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["pods"], "scope": "Namespaced"}],
                "objectSelector": {"matchLabels": {"kubernetes_pod_operator": "True"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            }],
        }),
    )
    .await;
}

async fn set_webhook_port(client: &Client, name: &str, port: u16) {
    let api = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let mut c = api.get(name).await.unwrap();
    for w in c.webhooks.iter_mut().flatten() {
        w.client_config.url = Some(format!("https://127.0.0.1:{port}/mutate"));
    }
    api.replace(name, &PostParams::default(), &c)
        .await
        .unwrap_or_else(|e| panic!("cannot set the webhook's URL in {name}: {e}"));
}

/// Deletes every pod of `ns` with grace 0 (the control plane here garbage-collects nothing).
async fn delete_pods(client: &Client, ns: &str) {
    let _ = Api::<Pod>::namespaced(client.clone(), ns)
        .delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
            &ListParams::default(),
        )
        .await;
}

/// certs writes the Secret and the caBundle; the webhook, serving that Secret's certificate, stamps the
/// pods the Airflow worker creates through the apiserver; the sweeper sweeps the upstream scenario
/// (apache/airflow#58968). All three from the image's amd64 root filesystem, in-cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_webhook_and_sweeper_run_in_cluster_from_the_rootfs() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "image").await;
    let mwc = format!("kpo-image-test-{ns}");
    let dir = scratch("in-cluster");
    let result = AssertUnwindSafe(in_cluster(&client, &ns, &mwc, &dir))
        .catch_unwind()
        .await;
    // Pass or fail: no pod, webhook configuration or cluster-scoped RBAC is left behind.
    delete_pods(&client, &ns).await;
    let dp = DeleteParams::default();
    let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete(&mwc, &dp)
        .await;
    let cr = format!("kpo-image-test-certs-{ns}");
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&cr, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(&cr, &dp)
        .await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

async fn in_cluster(client: &Client, ns: &str, mwc: &str, dir: &Path) {
    let Apiserver { port: api_port, ca } = apiserver();
    let secret = "kpo-sweeper-webhook-tls";
    let image = unpack("amd64", &dir.join("image"));
    rbac(client, ns, secret, mwc).await;
    webhook_config(client, mwc, ns).await;

    // certs: the Secret and the caBundle, as the certs Job's ServiceAccount.
    let certs_root = sa_rootfs(
        client,
        &image.rootfs,
        &dir.join("certs"),
        ns,
        "kpo-sweeper-certs",
        &ca,
    )
    .await;
    let out = run(&mut in_pod(
        &certs_root,
        api_port,
        &[
            "/usr/local/bin/certs",
            "install",
            "--namespace",
            ns,
            "--secret",
            secret,
            "--webhook-config",
            mwc,
            "--extra-san",
            "127.0.0.1",
            "--settle",
            "0s",
        ],
    ));
    eprintln!(
        "certs install:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Api::<Secret>::namespaced(client.clone(), ns)
        .get(secret)
        .await
        .expect("certs created the Secret");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = s.data.expect("Secret data");
    let config = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(mwc)
        .await
        .unwrap();
    let bundle = config.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("certs set the caBundle");
    assert_eq!(bundle.0, data["ca.crt"].0, "caBundle is the Secret's CA");

    // The webhook, on the Secret's files (where a Secret volume would put them), as 65532.
    let webhook_root = sa_rootfs(
        client,
        &image.rootfs,
        &dir.join("webhook"),
        ns,
        "kpo-sweeper-webhook",
        &ca,
    )
    .await;
    let tls = webhook_root.join("etc/webhook/tls");
    std::fs::create_dir_all(&tls).unwrap();
    for f in ["tls.crt", "tls.key"] {
        std::fs::write(tls.join(f), &data[f].0).unwrap();
        std::fs::set_permissions(tls.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let log = dir.join("webhook.log");
    let mut webhook = tokio::process::Command::from(in_pod(
        &webhook_root,
        api_port,
        &[
            "/usr/local/bin/webhook",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--tls-cert-file",
            "/etc/webhook/tls/tls.crt",
            "--tls-private-key-file",
            "/etc/webhook/tls/tls.key",
        ],
    ));
    webhook
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    let mut webhook = webhook.spawn().expect("start the webhook");
    let start = Instant::now();
    let mut ports = None;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        ports = ports.or_else(|| bound_ports(&text));
        if let Some((_, metrics)) = ports
            && http_get(metrics, "/readyz")
                .is_some_and(|r| r.split_whitespace().nth(1) == Some("200"))
        {
            break;
        }
        if let Ok(Some(st)) = webhook.try_wait() {
            panic!(
                "the webhook exited ({st}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the webhook is not ready within 30 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (webhook_port, metrics_port) = ports.unwrap();
    set_webhook_port(client, mwc, webhook_port).await;

    // The upstream scenario: the Airflow worker creates four KPO pods through the apiserver.
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let zombie = TiSpec::new(UPSTREAM_DAG, "zombie_kpo_task", UPSTREAM_RUN).state(Some("success"));
    let healthy = TiSpec::new(UPSTREAM_DAG, "healthy_kpo_task", UPSTREAM_RUN);
    let m0 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN)
        .map_index(0)
        .state(Some("success"));
    let m1 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN).map_index(1);
    for ti in [&zombie, &healthy, &m0, &m1] {
        db.insert_ti(ti).await;
    }
    testsupport::admission::grant_pods(client, ns, "airflow-worker", OWNER, &["create"]).await;
    let worker = testsupport::impersonating_client(
        OWNER,
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:airflow",
            "system:authenticated",
        ],
    )
    .await;
    let pods = [
        ("zombie-kpo-task", &zombie),
        ("healthy-kpo-task", &healthy),
        ("mapped-kpo-task-0", &m0),
        ("mapped-kpo-task-1", &m1),
    ];
    let mut created = BTreeMap::new();
    for (name, ti) in pods {
        let pod = Api::<Pod>::namespaced(worker.clone(), ns)
            .create(&PostParams::default(), &testsupport::kpo_pod(name, ti))
            .await
            .unwrap_or_else(|e| panic!("the worker cannot create {name}: {e}"));
        // Stamped by the webhook from the image.
        let ann = pod.metadata.annotations.clone().unwrap_or_default();
        let s = Stamp::from_annotations(&ann)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name} is not stamped: {ann:?}"));
        assert_eq!(s.ti_key.as_ref(), Some(&ti.key()), "{name}: {ann:?}");
        assert_eq!(s.try_number, Some(ti.try_number), "{name}");
        assert_eq!(s.created_by.as_deref(), Some(OWNER), "{name}");
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()[stamp::STAMPED_LABEL],
            stamp::STAMPED_VALUE,
            "{name}"
        );
        testsupport::set_pod_phase(client, ns, name, "Running").await;
        created.insert(name, pod);
    }
    let metrics = http_get(metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("kpo_webhook"),
        "webhook metrics:\n{metrics}"
    );

    // The sweeper, as its CronJob runs it: in-cluster, its own ServiceAccount, the DB URL.
    let sweeper_root = sa_rootfs(
        client,
        &image.rootfs,
        &dir.join("sweeper"),
        ns,
        "kpo-sweeper-sweeper",
        &ca,
    )
    .await;
    let sweep = in_pod(
        &sweeper_root,
        api_port,
        &[
            "/usr/local/bin/sweeper",
            "--namespace",
            ns,
            "--min-age",
            "0s",
            "--delete",
            "--owner",
            OWNER,
            "--output",
            "json",
        ],
    )
    .env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", &db.sqlalchemy_url)
    .output()
    .expect("run the sweeper");
    let stdout = String::from_utf8_lossy(&sweep.stdout);
    let stderr = String::from_utf8_lossy(&sweep.stderr);
    assert_eq!(sweep.status.code(), Some(0), "sweeper:\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: not the JSON report:\n{stdout}\n{stderr}"));
    let rows: BTreeMap<String, (String, String, String)> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("name"), (s("decision"), s("reason"), s("action")))
        })
        .collect();
    let want: BTreeMap<String, (String, String, String)> = [
        ("zombie-kpo-task", "zombie", "no-active-ti", "deleted"),
        ("healthy-kpo-task", "keep", "active", "none"),
        ("mapped-kpo-task-0", "zombie", "no-active-ti", "deleted"),
        ("mapped-kpo-task-1", "keep", "active", "none"),
    ]
    .iter()
    .map(|(n, d, r, a)| (n.to_string(), (d.to_string(), r.to_string(), a.to_string())))
    .collect();
    assert_eq!(rows, want, "sweeper report; stderr:\n{stderr}");
    let mut left: Vec<String> = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    left.sort();
    assert_eq!(left, ["healthy-kpo-task", "mapped-kpo-task-1"]);
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ZombiePodDeleted"))
        .collect();
    let mut regarding: Vec<String> = events
        .iter()
        .filter_map(|e| e.regarding.as_ref()?.uid.clone())
        .collect();
    regarding.sort();
    let mut want_uids: Vec<String> = ["zombie-kpo-task", "mapped-kpo-task-0"]
        .iter()
        .map(|n| created[n].metadata.uid.clone().unwrap())
        .collect();
    want_uids.sort();
    assert_eq!(regarding, want_uids, "one Event per deleted pod");

    let _ = webhook.start_kill();
    let _ = webhook.wait().await;
}
