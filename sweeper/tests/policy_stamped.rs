//! The upstream scenario (apache/airflow #58968's `kpo_zombie_dag`) on pods stamped by
//! `manifests/overlays/admission-policy`'s MutatingAdmissionPolicy instead of the webhook, with
//! `manifests/base`'s guards on: the pods are created unstamped by the Airflow worker's identity, the
//! kube-apiserver stamps them (no `admitted-at`), and the real `sweeper` binary, running as the
//! sweeper's service account (impersonated through its kubeconfig), deletes the zombies and keeps the
//! live pods. Policies are installed scoped to the scenario's namespace (testsupport::admission).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use testsupport::admission;
use testsupport::{DbKind, TiSpec};
use tikey::stamp;

const UPSTREAM_DAG: &str = "kpo_zombie_dag";
const SWEEPER_SA: &str = "system:serviceaccount:kpo-sweeper:kpo-sweeper-sweeper";
const WORKER_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:airflow",
    "system:authenticated",
];

/// The sweeper's Role of manifests/base (pods: list, delete; events.k8s.io events: create), bound to
/// its service account's username in `ns`.
async fn grant_sweeper(s: &Scenario) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some("kpo-sweeper-sweeper".to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".to_owned()]),
                verbs: vec!["list".to_owned(), "delete".to_owned()],
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(vec!["events.k8s.io".to_owned()]),
                resources: Some(vec!["events".to_owned()]),
                verbs: vec!["create".to_owned()],
                ..PolicyRule::default()
            },
        ]),
    };
    Api::<Role>::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("kpo-sweeper-sweeper".to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: "kpo-sweeper-sweeper".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: SWEEPER_SA.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// A copy of the test kubeconfig (as JSON, which kubeconfig readers accept) whose user impersonates the
/// sweeper's service account (`as:`).
fn sweeper_kubeconfig(dir: &std::path::Path) -> PathBuf {
    let out = Command::new("kubectl")
        .arg(format!(
            "--kubeconfig={}",
            testsupport::env().kubeconfig.display()
        ))
        .args(["config", "view", "--raw", "-o", "json"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"));
    assert!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let users = config["users"].as_array_mut().expect("users");
    assert_eq!(users.len(), 1, "the test kubeconfig has one user");
    users[0]["user"]["as"] = serde_json::json!(SWEEPER_SA);
    let path = dir.join("sweeper.kubeconfig");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_kpo_zombie_dag_on_policy_stamped_pods_with_guards() {
    let s = Scenario::new("policy-upstream", DbKind::Airflow3Postgres).await;
    admission::grant_pods(
        &s.client,
        &s.ns,
        "airflow-worker",
        OWNER,
        &["create", "get"],
    )
    .await;
    grant_sweeper(&s).await;
    let root = admission::repo_root();
    let mut objs = admission::manifest_objects(
        &root.join("manifests/overlays/admission-policy/stamp-policy.yaml"),
    );
    objs.extend(admission::manifest_objects(
        &root.join("manifests/base/guards.yaml"),
    ));
    let installed = admission::install_scoped(&s.client, &objs, &s.ns, &BTreeMap::new()).await;
    let (client, ns) = (s.client.clone(), s.ns.clone());
    let result = tokio::spawn(scenario(s)).await;
    installed.remove().await;
    let _ = Api::<Pod>::namespaced(client, &ns)
        .delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
            &ListParams::default(),
        )
        .await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(s: Scenario) {
    let (client, ns, db_url) = (s.client.clone(), s.ns.clone(), s.db.url.clone());
    let worker = testsupport::impersonating_client(OWNER, WORKER_GROUPS).await;
    let pods: Api<Pod> = Api::namespaced(worker, &ns);
    // The apiserver applies new policies eventually: dry-run creates until one comes back stamped.
    let probe = testsupport::kpo_pod("probe", &TiSpec::new("d", "t", "r"));
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    admission::wait_until(
        "the MutatingAdmissionPolicy stamps",
        Duration::from_secs(30),
        || {
            let (pods, probe, dry) = (pods.clone(), probe.clone(), dry.clone());
            async move {
                let p = pods.create(&dry, &probe).await.unwrap();
                p.metadata
                    .labels
                    .is_some_and(|l| l.contains_key(stamp::STAMPED_LABEL))
            }
        },
    )
    .await;

    let zombie = TiSpec::new(UPSTREAM_DAG, "zombie_kpo_task", UPSTREAM_RUN).state(Some("success"));
    let healthy = TiSpec::new(UPSTREAM_DAG, "healthy_kpo_task", UPSTREAM_RUN);
    let m0 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN)
        .map_index(0)
        .state(Some("success"));
    let m1 = TiSpec::new(UPSTREAM_DAG, "mapped_kpo_task", UPSTREAM_RUN).map_index(1);
    let mut created = BTreeMap::new();
    for (name, ti) in [
        ("zombie-kpo-task", &zombie),
        ("healthy-kpo-task", &healthy),
        ("mapped-kpo-task-0", &m0),
        ("mapped-kpo-task-1", &m1),
    ] {
        s.db.insert_ti(ti).await;
        // Created unstamped, as KPO sends it; the policy stamps it.
        let p = pods
            .create(&PostParams::default(), &testsupport::kpo_pod(name, ti))
            .await
            .unwrap();
        let a = p.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(stamp::TI_KEY), Some(&ti.key().encode()), "{name}");
        assert_eq!(a.get(stamp::TRY_NUMBER), Some(&ti.try_number.to_string()));
        assert_eq!(a.get(stamp::CREATED_BY).map(String::as_str), Some(OWNER));
        assert!(!a.contains_key(stamp::ADMITTED_AT), "CEL has no clock");
        // A kubelet's status update passes the immutability guard.
        testsupport::set_pod_phase(&client, &ns, name, "Running").await;
        created.insert(name, p);
    }

    let dir = tempfile_dir();
    let kubeconfig = sweeper_kubeconfig(&dir);
    let kc = kubeconfig.display().to_string();
    let base = [
        "--kubeconfig",
        kc.as_str(),
        "--namespace",
        ns.as_str(),
        "--db-url",
        db_url.as_str(),
        "--owner",
        OWNER,
    ];
    // No admitted-at: the age is counted from creationTimestamp, so all are too young for 1h.
    let mut young: Vec<&str> = base.to_vec();
    young.extend(["--min-age", "1h", "--delete"]);
    let out = run_sweeper(&young, &[]).await;
    out.expect(
        0,
        &[
            ("zombie-kpo-task", "keep", "too-young", "none"),
            ("healthy-kpo-task", "keep", "too-young", "none"),
            ("mapped-kpo-task-0", "keep", "too-young", "none"),
            ("mapped-kpo-task-1", "keep", "too-young", "none"),
        ],
    );

    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--min-age", "0s", "--delete"]);
    let out = run_sweeper(&args, &[]).await;
    out.expect(
        0,
        &[
            ("zombie-kpo-task", "zombie", "no-active-ti", "deleted"),
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-0", "zombie", "no-active-ti", "deleted"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    assert_eq!(
        out.summary(),
        serde_json::json!({"listed": 4, "active_tis": 2, "zombies": 2, "deleted": 2, "failed": 0, "unstamped": 0, "newer_than_db": 0, "unknown_ti": 0})
    );
    assert_eq!(
        survivors(&client, &ns).await,
        names(&["healthy-kpo-task", "mapped-kpo-task-1"])
    );
    // The deletes were the sweeper's service account's (its kubeconfig impersonates it), so the
    // sweeper-scope guard judged them.
    for name in ["zombie-kpo-task", "mapped-kpo-task-0"] {
        assert_eq!(deleted_by(&ns, name).await, SWEEPER_SA, "{name}");
    }
    s.assert_events(&[
        (&created["zombie-kpo-task"], "no-active-ti"),
        (&created["mapped-kpo-task-0"], "no-active-ti"),
    ])
    .await;
    let again = run_sweeper(&args, &[]).await;
    again.expect(
        0,
        &[
            ("healthy-kpo-task", "keep", "active", "none"),
            ("mapped-kpo-task-1", "keep", "active", "none"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The user (impersonated, else authenticated) of the successful delete of pod `ns/name`, from the
/// apiserver's audit log (waits up to 10 s for the event).
async fn deleted_by(ns: &str, name: &str) -> String {
    let log = &testsupport::env().audit_log;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", log.display()));
        let user = text.lines().filter(|l| l.contains(name)).find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let o = &v["objectRef"];
            (v["verb"] == "delete"
                && v["stage"] == "ResponseComplete"
                && v["responseStatus"]["code"] == 200
                && o["resource"] == "pods"
                && o["namespace"] == ns
                && o["name"] == name)
                .then(|| {
                    v["impersonatedUser"]["username"]
                        .as_str()
                        .or(v["user"]["username"].as_str())
                        .unwrap_or_default()
                        .to_owned()
                })
        });
        if let Some(u) = user {
            return u;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit event for the delete of {ns}/{name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tempfile_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("kpo-policy-e2e-{}", testsupport::random_suffix(8)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
