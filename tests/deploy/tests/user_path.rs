//! The user's path of the README's "Install in your cluster", on the real kube-apiserver, with the image
//! `make image` built: Airflow's namespace holding the official Airflow chart's metadata Secret
//! (`<release>-airflow-metadata`, key `connection`, its SQLAlchemy URL through PgBouncer in transaction
//! mode), `helm install` with `sweeper.namespace` set to Airflow's namespace and the image's reference
//! (the archive's own name, `repository:tag`), then the chart's CronJob run as a cluster runs it: the
//! stored CronJob names that image; its container starts from the image's root filesystem (the host's
//! platform, unpacked as a runtime unpacks it) with the container's command, args and env (ConfigMap
//! and Secret references resolved from the apiserver, the Secret's value untouched), as the pod's user,
//! with a TokenRequest token of the CronJob's ServiceAccount, the cluster CA and the namespace at
//! /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT set: the sweeper
//! finds its in-cluster config as in a pod (`image_tests::container`, `unshare --root`). It judges the
//! upstream scenario (apache/airflow#58968) right as a dry run — the chart's default — then deletes the
//! two zombies after `helm upgrade --reuse-values --set sweeper.delete=true`. That proves the chart's
//! image reference, RBAC (list, delete, Events), Secret wiring and arguments, and that its guards let
//! the sweeper do its job. Without the archive (`make image`; `make test` builds it first) it fails
//! saying so.
//!
//! Isolation: this control plane is shared, and a deleted namespace stays Terminating forever (no
//! kube-controller-manager), so "airflow" is a fresh `airflow-<random>` namespace; the release name is
//! random too, and the webhook and guards select only that namespace. No webhook pod runs here (no
//! kubelet for the chart's Deployment): the KPO pods are created as the Airflow worker's service account
//! with the stamp our webhook would write for it, and the configured webhook fails open. Every pod is
//! deleted (grace 0) and the release uninstalled at the end, pass or fail.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use deploy_tests::*;
use image_tests::Unpacked;
use serde_json::{Value, json};
use testsupport::{DbKind, TiSpec};

const DAG: &str = "kpo_zombie_dag";
const RUN: &str = "manual__2025-12-02T10:00:00+00:00";

fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let o = kubectl(args, stdin);
    assert!(o.ok, "kubectl {}: {}", args.join(" "), o.stderr);
    o.stdout
}

fn get_json(args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&a, None)).unwrap()
}

/// The official Airflow chart's metadata Secret (templates/secrets/metadata-connection-secret.yaml):
/// `<release>-airflow-metadata`, Opaque, key `connection` = `postgresql://user:pass@host:port/db?sslmode=…`,
/// with its labels. Here the host and port are the env's PgBouncer, the database the test's own.
fn airflow_metadata_secret(ns: &str, connection: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "airflow-airflow-metadata",
            "namespace": ns,
            "labels": {"tier": "airflow", "release": "airflow", "chart": "airflow", "heritage": "Helm"},
        },
        "stringData": {"connection": connection},
    })
}

/// A KPO pod for `ti` as KPO creates it, with the stamp our webhook writes for `creator`.
fn stamped_pod(name: &str, ti: &TiSpec, creator: &str, now: i64) -> Value {
    let mut p = serde_json::to_value(testsupport::kpo_pod(name, ti)).unwrap();
    p["metadata"]["annotations"] = json!({
        "kpo-sweeper.io/ti-key": ti.key().encode(),
        "kpo-sweeper.io/try-number": ti.try_number.to_string(),
        "kpo-sweeper.io/admitted-at": now.to_string(),
        "kpo-sweeper.io/created-by": creator,
    });
    p["metadata"]["labels"]["kpo-sweeper.io/stamped"] = json!("v1");
    p
}

/// The image as a node has it: its reference (the archive's name) and this platform's root filesystem.
struct Image {
    reference: String,
    unpacked: Unpacked,
}

/// A container's env as the kubelet builds it from the stored object: plain values, ConfigMap and
/// Secret references resolved in `ns` (a Secret's value base64-decoded, as the kubelet hands it over).
fn resolve_env(ns: &str, container: &Value) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let key = e["name"].as_str().unwrap().to_owned();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_owned()
        } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
            let cm = get_json(&["configmap", r["name"].as_str().unwrap(), "-n", ns]);
            cm["data"][r["key"].as_str().unwrap()]
                .as_str()
                .unwrap_or_else(|| panic!("ConfigMap {} has no key {}", r["name"], r["key"]))
                .to_owned()
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            let tmpl = format!(
                "{{{{index .data \"{}\" | base64decode}}}}",
                r["key"].as_str().unwrap()
            );
            kubectl_ok(
                &[
                    "get",
                    "secret",
                    r["name"].as_str().unwrap(),
                    "-n",
                    ns,
                    "-o",
                    &format!("go-template={tmpl}"),
                ],
                None,
            )
        } else {
            panic!("env {key}: no value the test can resolve: {e}");
        };
        env.push((key, value));
    }
    env
}

/// `runAsUser`/`runAsGroup` (`field`) of the container, else of the pod, else the image's user.
fn run_as(pod: &Value, container: &Value, field: &str, image_default: u64) -> u32 {
    container["securityContext"][field]
        .as_u64()
        .or_else(|| pod["securityContext"][field].as_u64())
        .unwrap_or(image_default)
        .try_into()
        .unwrap()
}

/// Runs one Job of CronJob `ns/name` as a node would: the container of the stored CronJob started
/// from the image's root filesystem (a fresh copy, as each container gets), in-cluster. Returns the
/// exit code, the JSON report and stderr.
fn run_like_the_cronjob(
    ns: &str,
    name: &str,
    image: &Image,
    rootfs: &Path,
) -> (i32, Value, String) {
    let cj = get_json(&["cronjob", name, "-n", ns]);
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container: {pod:#}");
    let c = &containers[0];
    assert_eq!(
        c["image"].as_str(),
        Some(image.reference.as_str()),
        "the CronJob asks for another image than the one `make image` built"
    );

    // What this test does not do a kubelet's work for must be absent, or the run would differ from a
    // node's without a failure.
    for field in ["envFrom", "volumeMounts", "workingDir"] {
        assert!(c[field].is_null(), "the container has {field}: {c:#}");
    }

    // The process: the container's command (else the image's entrypoint) and args.
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    let mut argv = strings(&c["command"]);
    if argv.is_empty() {
        argv = strings(&image.unpacked.runtime_config["process"]["args"]);
    }
    argv.extend(strings(&c["args"]));
    assert_eq!(argv[0], "/usr/local/bin/sweeper", "the image's sweeper");
    let user = &image.unpacked.runtime_config["process"]["user"];
    let uid = run_as(pod, c, "runAsUser", user["uid"].as_u64().unwrap());
    let gid = run_as(pod, c, "runAsGroup", user["gid"].as_u64().unwrap());

    // The ServiceAccount's token, unless the pod or its ServiceAccount turns the mount off.
    let sa = pod["serviceAccountName"].as_str().unwrap();
    let automount = pod["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| {
            get_json(&["serviceaccount", sa, "-n", ns])["automountServiceAccountToken"].as_bool()
        })
        .unwrap_or(true);
    let token = automount.then(|| {
        // A TokenRequest, as the kubelet's projected token is.
        kubectl_ok(&["create", "token", sa, "-n", ns, "--duration=15m"], None)
    });
    let api = image_tests::apiserver();
    let root = image_tests::pod_rootfs(
        &image.unpacked.rootfs,
        rootfs,
        ns,
        token.as_deref(),
        &api.ca,
    );

    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = image_tests::container(&root, api.port, uid, gid, &argv);
    // The image's env (its config's Env), then the container's.
    for kv in strings(&image.unpacked.runtime_config["process"]["env"]) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.envs(resolve_env(ns, c));
    let out = cmd.output().expect("run the sweeper from the image");
    let _ = std::fs::remove_dir_all(&root);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "{} from {} as {uid}:{gid}, {argv:?} ({}):\n{stderr}",
        image.reference,
        root.display(),
        out.status
    );
    // NOTES.txt finds the report in the pod's log (stdout and stderr together) by this prefix.
    let reports = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.starts_with("{\"version\""))
        .count();
    assert_eq!(reports, 1, "one report line:\n{stdout}\n{stderr}");
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{argv:?}: no JSON report ({e}):\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// (name → (decision, reason, action)) of a report.
fn decisions(report: &Value) -> BTreeMap<String, (String, String, String)> {
    report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("name"), (s("decision"), s("reason"), s("action")))
        })
        .collect()
}

fn expect(report: &Value, rows: &[(&str, &str, &str, &str)]) {
    let want: BTreeMap<String, (String, String, String)> = rows
        .iter()
        .map(|(n, d, r, a)| {
            (
                (*n).to_owned(),
                ((*d).to_owned(), (*r).to_owned(), (*a).to_owned()),
            )
        })
        .collect();
    assert_eq!(decisions(report), want, "report:\n{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_in_airflows_namespace_dry_run_then_delete() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The image first (no namespace made yet): without `make image` this fails saying so. The node's
    // runtime unpacks this machine's platform of it.
    let reference = image_tests::reference();
    let release = format!("kpo-sweeper-{}", testsupport::random_suffix(6));
    let dir = std::env::temp_dir().join(format!("kpo-user-path-{release}"));
    let unpacked = std::panic::catch_unwind(|| {
        image_tests::unpack(image_tests::host_arch(), &dir.join("image"))
    })
    .unwrap_or_else(|p| {
        let _ = std::fs::remove_dir_all(&dir);
        std::panic::resume_unwind(p)
    });
    let image = Image {
        reference,
        unpacked,
    };

    let client = testsupport::client().await;
    let airflow = testsupport::fresh_namespace(&client, "airflow").await;
    let ns = testsupport::fresh_namespace(&client, "kpo-sweeper").await;
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    );
    let (airflow2, ns2, release2, dir2) =
        (airflow.clone(), ns.clone(), release.clone(), dir.clone());
    let body = tokio::spawn(async move { user_path(airflow2, ns2, release2, dir2, image).await });
    let result = body.await;

    // Pass or fail: every pod of Airflow's namespace (grace 0), the release, the temp files.
    let _ = kubectl(
        &[
            "delete",
            "pods",
            "--all",
            "-n",
            &airflow,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ],
        None,
    );
    let _ = helm(&["uninstall", &release, "-n", &ns]);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn user_path(airflow: String, ns: String, release: String, dir: PathBuf, image: Image) {
    let client = testsupport::client().await;
    let worker = format!("system:serviceaccount:{airflow}:airflow-worker");
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{airflow}"),
        "system:authenticated".to_owned(),
    ];

    // Airflow's side: its metadata database (Airflow 3.3.2's schema) with the upstream DAG's task
    // instances, reached through PgBouncer, and the official chart's Secret pointing there.
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let zombie = TiSpec::new(DAG, "zombie_kpo_task", RUN).state(Some("success"));
    let healthy = TiSpec::new(DAG, "healthy_kpo_task", RUN);
    let m0 = TiSpec::new(DAG, "mapped_kpo_task", RUN)
        .map_index(0)
        .state(Some("success"));
    let m1 = TiSpec::new(DAG, "mapped_kpo_task", RUN).map_index(1);
    for ti in [&zombie, &healthy, &m0, &m1] {
        db.insert_ti(ti).await;
    }
    let pgbouncer = db.pgbouncer_url();
    let connection = format!(
        "postgresql://{}?sslmode=disable",
        pgbouncer
            .strip_prefix("postgres://")
            .expect("a postgres:// URL")
    );
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&airflow_metadata_secret(&airflow, &connection).to_string()),
    );

    // The install, as the README says: the chart in its own namespace, the sweeper in Airflow's, the
    // image under the name the archive gives it (a mirror's name goes into the same two values).
    let chart = chart_dir().display().to_string();
    let (repository, tag) = image_tests::split_reference(&image.reference);
    let sets = [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        format!("sweeper.namespace={airflow}"),
        format!("targetNamespaces={{{airflow}}}"),
        format!("owners={{{worker}}}"),
        // The scenario's pods are seconds old; the default 10m would keep them all as too-young.
        "sweeper.minAge=0s".to_owned(),
        // Shared apiserver: stamp only this test's Airflow namespace.
        format!("webhook.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={airflow}"),
    ];
    let mut install = vec![
        "install",
        release.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
    ];
    for s in &sets {
        install.extend(["--set", s.as_str()]);
    }
    let o = helm(&install);
    assert!(o.ok, "helm install: {}", o.stderr);
    assert!(o.stdout.contains("DRY RUN"), "NOTES:\n{}", o.stdout);
    let cronjob = format!("{release}-sweeper");

    // The KPO pods, created by the Airflow worker's service account (the guards check the stamp's
    // creator), stamped as our webhook stamps them, Running as kwok would make them.
    testsupport::admission::grant_pods(&client, &airflow, "airflow-worker", &worker, &["create"])
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut as_worker = vec![format!("--as={worker}")];
    as_worker.extend(groups.iter().map(|g| format!("--as-group={g}")));
    for (name, ti) in [
        ("zombie-kpo-task", &zombie),
        ("healthy-kpo-task", &healthy),
        ("mapped-kpo-task-0", &m0),
        ("mapped-kpo-task-1", &m1),
    ] {
        let mut a: Vec<&str> = as_worker.iter().map(String::as_str).collect();
        a.extend(["create", "-n", airflow.as_str(), "-f", "-"]);
        kubectl_ok(&a, Some(&stamped_pod(name, ti, &worker, now).to_string()));
        testsupport::set_pod_phase(&client, &airflow, name, "Running").await;
    }

    // 1. The chart's default: a dry run that names the two zombies and keeps the live pods.
    let (code, report, stderr) =
        run_like_the_cronjob(&airflow, &cronjob, &image, &dir.join("job-dry-run"));
    assert_eq!(code, 0, "dry run failed:\n{stderr}");
    assert_eq!(report["dry_run"], true);
    expect(
        &report,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "would-delete"),
            ("healthy-kpo-task", "keep", "active", "none"),
            (
                "mapped-kpo-task-0",
                "zombie",
                "no-active-ti",
                "would-delete",
            ),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert!(
        !stderr.contains("airflow:airflow@"),
        "the DB password is logged:\n{stderr}"
    );
    let pods = |ns: &str| -> BTreeSet<String> {
        get_json(&["pods", "-n", ns])["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(pods(&airflow).len(), 4, "a dry run deletes nothing");

    // 2. Deletes on, as NOTES.txt says.
    let o = helm(&[
        "upgrade",
        release.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
        "--reuse-values",
        "--set",
        "sweeper.delete=true",
    ]);
    assert!(o.ok, "helm upgrade: {}", o.stderr);
    let (code, report, stderr) =
        run_like_the_cronjob(&airflow, &cronjob, &image, &dir.join("job-delete"));
    assert_eq!(code, 0, "the deleting run failed:\n{stderr}");
    assert_eq!(report["dry_run"], false);
    expect(
        &report,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "deleted"),
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-0", "zombie", "no-active-ti", "deleted"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        pods(&airflow),
        BTreeSet::from([
            "healthy-kpo-task".to_owned(),
            "mapped-kpo-task-1".to_owned()
        ])
    );
    // One Event per deleted pod, written with the chart's RBAC.
    let events: BTreeSet<String> = get_json(&["events.events.k8s.io", "-n", &airflow])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "ZombiePodDeleted")
        .map(|e| e["regarding"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        events,
        BTreeSet::from(["zombie-kpo-task".to_owned(), "mapped-kpo-task-0".to_owned()])
    );
}
