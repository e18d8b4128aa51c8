//! One sweep over two clusters (issue 23, docs/design.md §8 `--context`): the real `sweeper` binary
//! against the env's two control planes (`KUBECONFIG`'s and `REMOTE_KUBECONFIG`'s, each its own etcd
//! and kube-apiserver) and one real Airflow 3.3.2 database on PostgreSQL.
//!
//! - each cluster's zombies are deleted there, with the Event in the pod's own cluster, and the
//!   `superseded` check sees the pods of both clusters;
//! - a cluster that cannot be reached (and a context the kubeconfig lacks) is reported failed, its
//!   pods neither judged nor deleted, while the others are swept; exit 1;
//! - each cluster's own circuit breaker;
//! - a context whose credentials come from an exec plugin (ExecCredential) that hands out
//!   TokenRequest tokens of a ServiceAccount with only the sweeper's RBAC: in interval mode the
//!   token is asked for again when it expires, not every run, and the new token is the one used.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::Value;
use testsupport::{DbKind, TestDb, TiSpec, admission};
use tikey::stamp::{self, Stamp};
use tokio::io::{AsyncBufReadExt, BufReader};

const DAG: &str = "multi_cluster_dag";
const RUN: &str = "scheduled__2026-01-01T00:00:00+00:00";

/// The same namespace name on both clusters (the `superseded` index matches pods by namespace,
/// key and try), the two admin clients, and the kubeconfig the sweeper reads. Every pod made in
/// the namespace on either cluster is deleted (grace 0) on drop, pass or fail.
struct TwoClusters {
    home: Client,
    remote: Client,
    ns: String,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl TwoClusters {
    async fn new(prefix: &str) -> TwoClusters {
        let home = testsupport::client().await;
        let remote = testsupport::remote_client().await;
        let ns = testsupport::fresh_namespace(&home, prefix).await;
        let n = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(remote.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {ns} on the remote cluster: {e}"));
        let dir = std::env::temp_dir().join(format!("kpo-multicluster-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        let t = TwoClusters {
            home,
            remote,
            ns,
            dir,
            kubeconfig,
        };
        t.write_kubeconfig(None, None);
        t
    }

    /// Contexts `home` and `remote` (the admin on each), `down` (a loopback port nothing listens
    /// on); with `exec`, `remote-sa`: the remote cluster through that exec plugin; with `remote_as`,
    /// `remote-as`: the remote cluster as that user (the admin impersonating it, as RBAC and the
    /// guards see a cloud identity).
    fn write_kubeconfig(&self, exec: Option<&Path>, remote_as: Option<&str>) {
        let env = testsupport::env();
        let ca = env.var("APISERVER_CA_CERT");
        let cert = env.var("ADMIN_CLIENT_CERT");
        let key = env.var("ADMIN_CLIENT_KEY");
        let down = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut y = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n\
             - name: home\n  cluster: {{server: '{}', certificate-authority: '{ca}'}}\n\
             - name: remote\n  cluster: {{server: '{}', certificate-authority: '{ca}'}}\n\
             - name: down\n  cluster: {{server: 'https://127.0.0.1:{down}', certificate-authority: '{ca}'}}\n\
             users:\n- name: admin\n  user: {{client-certificate: '{cert}', client-key: '{key}'}}\n",
            env.var("APISERVER_URL"),
            env.var("REMOTE_APISERVER_URL"),
        );
        if let Some(cmd) = exec {
            y += &format!(
                "- name: remote-sa\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
                 command: '{}'\n      interactiveMode: Never\n",
                cmd.display()
            );
        }
        if let Some(user) = remote_as {
            y += &format!(
                "- name: remote-as\n  user: {{client-certificate: '{cert}', client-key: '{key}', as: '{user}', \
                 as-groups: [system:authenticated]}}\n"
            );
        }
        y += "contexts:\n\
              - name: home\n  context: {cluster: home, user: admin}\n\
              - name: remote\n  context: {cluster: remote, user: admin}\n\
              - name: down\n  context: {cluster: down, user: admin}\n";
        if exec.is_some() {
            y += "- name: remote-sa\n  context: {cluster: remote, user: remote-sa}\n";
        }
        if remote_as.is_some() {
            y += "- name: remote-as\n  context: {cluster: remote, user: remote-as}\n";
        }
        y += "current-context: home\n";
        std::fs::write(&self.kubeconfig, y).unwrap();
    }

    fn client(&self, cluster: &str) -> &Client {
        match cluster {
            "home" => &self.home,
            "remote" => &self.remote,
            _ => unreachable!("{cluster}"),
        }
    }

    /// A KPO pod for `ti` on `cluster`, stamped by the webhook of that cluster for `OWNER`.
    async fn pod(&self, cluster: &str, name: &str, ti: &TiSpec) -> Pod {
        let mut pod = testsupport::kpo_pod(name, ti);
        let s = Stamp {
            ti_key: Some(ti.key()),
            try_number: Some(ti.try_number),
            admitted_at: Some(k8s_openapi::jiff::Timestamp::now().as_second()),
            created_by: Some(OWNER.to_owned()),
        };
        pod.metadata.annotations = Some(s.to_annotations());
        pod.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(
                stamp::STAMPED_LABEL.to_owned(),
                stamp::STAMPED_VALUE.to_owned(),
            );
        Api::<Pod>::namespaced(self.client(cluster).clone(), &self.ns)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("cannot create pod {cluster}/{}/{name}: {e}", self.ns))
    }

    async fn survivors(&self, cluster: &str) -> BTreeSet<String> {
        survivors(self.client(cluster), &self.ns).await
    }

    /// The names of the pods the ZombiePodDeleted Events on `cluster` are about.
    async fn zombie_events(&self, cluster: &str) -> BTreeSet<String> {
        Api::<Event>::namespaced(self.client(cluster).clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("ZombiePodDeleted"))
            .filter_map(|e| e.regarding.and_then(|r| r.name))
            .collect()
    }

    async fn sweep(&self, db: &TestDb, extra: &[&str]) -> Sweep {
        let kc = self.kubeconfig.display().to_string();
        let mut args = vec![
            "--kubeconfig",
            kc.as_str(),
            "--namespace",
            self.ns.as_str(),
            "--db-url",
            db.url.as_str(),
            "--owner",
            OWNER,
            "--min-age",
            "0s",
        ];
        args.extend_from_slice(extra);
        run_sweeper(&args, &[]).await
    }
}

impl Drop for TwoClusters {
    fn drop(&mut self) {
        let ns = self.ns.clone();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            rt.block_on(async {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                };
                for client in [
                    testsupport::client().await,
                    testsupport::remote_client().await,
                ] {
                    let api: Api<Pod> = Api::namespaced(client, &ns);
                    if let Err(e) = api.delete_collection(&dp, &ListParams::default()).await {
                        eprintln!("cleanup: cannot delete the pods of {ns}: {e}");
                    }
                }
            })
        })
        .join();
    }
}

/// `name -> (cluster, decision, reason, action)` of the report's pods.
fn rows(out: &Sweep) -> BTreeMap<String, (Value, String, String, String)> {
    out.report()["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|p| {
            let s = |k: &str| {
                p[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {p}"))
                    .to_owned()
            };
            (
                s("name"),
                (
                    p["cluster"].clone(),
                    s("decision"),
                    s("reason"),
                    s("action"),
                ),
            )
        })
        .collect()
}

fn row(
    cluster: &str,
    decision: &str,
    reason: &str,
    action: &str,
) -> (Value, String, String, String) {
    (
        Value::String(cluster.to_owned()),
        decision.to_owned(),
        reason.to_owned(),
        action.to_owned(),
    )
}

/// `name -> (status, listed, error)` of the report's clusters.
fn clusters(out: &Sweep) -> BTreeMap<String, (String, u64, Option<String>)> {
    out.report()["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("a named cluster").to_owned(),
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["listed"].as_u64().unwrap(),
                    c["error"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_one_database_each_swept_where_its_pods_live() {
    let t = TwoClusters::new("multi").await;
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let zombie_home = TiSpec::new(DAG, "zombie_home", RUN).state(Some("success"));
    let live_home = TiSpec::new(DAG, "live_home", RUN);
    let zombie_remote = TiSpec::new(DAG, "zombie_remote", RUN).state(Some("success"));
    let live_remote = TiSpec::new(DAG, "live_remote", RUN);
    // Retried: try 1 ran on home, try 2 (the current one) runs on remote.
    let moved = TiSpec::new(DAG, "moved", RUN).try_number(2);
    for ti in [
        &zombie_home,
        &live_home,
        &zombie_remote,
        &live_remote,
        &moved,
    ] {
        db.insert_ti(ti).await;
    }
    t.pod("home", "zombie-home", &zombie_home).await;
    t.pod("home", "live-home", &live_home).await;
    t.pod("home", "moved-try-1", &moved.clone().try_number(1))
        .await;
    t.pod("remote", "zombie-remote", &zombie_remote).await;
    t.pod("remote", "live-remote", &live_remote).await;
    t.pod("remote", "moved-try-2", &moved).await;

    // Home alone: its try-1 pod may have been reattached to (no pod of try 2 in sight).
    let alone = t.sweep(&db, &["--context", "home"]).await;
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert_eq!(
        rows(&alone),
        BTreeMap::from([
            (
                "zombie-home".into(),
                row("home", "zombie", "no-active-ti", "would-delete")
            ),
            ("live-home".into(), row("home", "keep", "active", "none")),
            (
                "moved-try-1".into(),
                row("home", "keep", "may-reattach", "none")
            ),
        ]),
        "{}",
        alone.stderr
    );

    // Both: one index over both clusters finds try 2's pod on remote; each cluster's zombies go
    // through its own apiserver, and its Events stay there.
    let out = t
        .sweep(
            &db,
            &["--context", "home", "--context", "remote", "--delete"],
        )
        .await;
    assert_eq!(out.code, 0, "stdout {}\nstderr {}", out.stdout, out.stderr);
    assert_eq!(
        rows(&out),
        BTreeMap::from([
            (
                "zombie-home".into(),
                row("home", "zombie", "no-active-ti", "deleted")
            ),
            ("live-home".into(), row("home", "keep", "active", "none")),
            (
                "moved-try-1".into(),
                row("home", "zombie", "superseded", "deleted")
            ),
            (
                "zombie-remote".into(),
                row("remote", "zombie", "no-active-ti", "deleted")
            ),
            (
                "live-remote".into(),
                row("remote", "keep", "active", "none")
            ),
            (
                "moved-try-2".into(),
                row("remote", "keep", "active", "none")
            ),
        ]),
        "{}",
        out.stderr
    );
    assert_eq!(
        clusters(&out),
        BTreeMap::from([
            ("home".into(), ("ok".into(), 3, None)),
            ("remote".into(), ("ok".into(), 3, None)),
        ])
    );
    assert_eq!(out.summary()["deleted"], 3);
    assert_eq!(t.survivors("home").await, names(&["live-home"]));
    assert_eq!(
        t.survivors("remote").await,
        names(&["live-remote", "moved-try-2"])
    );
    assert_eq!(
        t.zombie_events("home").await,
        names(&["zombie-home", "moved-try-1"])
    );
    assert_eq!(t.zombie_events("remote").await, names(&["zombie-remote"]));

    // The table names the cluster.
    let kc = t.kubeconfig.display().to_string();
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
        .args(["--kubeconfig", &kc, "--context", "home,remote", "-n", &t.ns])
        .args(["--db-url", &db.url, "--min-age", "0s", "--output", "table"])
        .env_remove("KPO_SWEEPER_CONTEXT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("CLUSTER "), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("remote ") && l.contains("moved-try-2")),
        "{text}"
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_is_reported_failed_and_the_others_are_swept() {
    let t = TwoClusters::new("multi-down").await;
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let z_home = TiSpec::new(DAG, "z_home", RUN).state(Some("failed"));
    let z_remote = TiSpec::new(DAG, "z_remote", RUN).state(Some("success"));
    for ti in [&z_home, &z_remote] {
        db.insert_ti(ti).await;
    }
    t.pod("home", "z-home", &z_home).await;
    t.pod("remote", "z-remote", &z_remote).await;

    // `down` refuses connections; `typo` is not in the kubeconfig. The env var form, comma-separated.
    let kc = t.kubeconfig.display().to_string();
    let out = run_sweeper(
        &[
            "--kubeconfig",
            &kc,
            "-n",
            &t.ns,
            "--db-url",
            &db.url,
            "--owner",
            OWNER,
            "--min-age",
            "0s",
            "--delete",
        ],
        &[("KPO_SWEEPER_CONTEXT", "home,down,typo,remote")],
    )
    .await;
    assert_eq!(out.code, 1, "stdout {}\nstderr {}", out.stdout, out.stderr);
    assert_eq!(
        rows(&out),
        BTreeMap::from([
            (
                "z-home".into(),
                row("home", "zombie", "no-active-ti", "deleted")
            ),
            (
                "z-remote".into(),
                row("remote", "zombie", "no-active-ti", "deleted")
            ),
        ])
    );
    let c = clusters(&out);
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["down", "home", "remote", "typo"]
    );
    assert_eq!(c["home"], ("ok".into(), 1, None));
    assert_eq!(c["remote"], ("ok".into(), 1, None));
    let (status, listed, why) = &c["down"];
    assert_eq!((status.as_str(), *listed), ("failed", 0));
    let why = why.as_deref().unwrap();
    assert!(
        why.contains("listing pods") && why.to_lowercase().contains("connect"),
        "{why}"
    );
    let (status, _, why) = &c["typo"];
    assert_eq!(status, "failed");
    assert!(
        why.as_deref().unwrap().contains("\"typo\" is not in"),
        "{why:?}"
    );
    assert!(
        out.stderr
            .contains("cluster down failed, its pods were neither judged nor deleted"),
        "{}",
        out.stderr
    );
    assert!(t.survivors("home").await.is_empty());
    assert!(t.survivors("remote").await.is_empty());
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_cluster_has_its_own_circuit_breaker() {
    let t = TwoClusters::new("multi-breaker").await;
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    // Two zombies on home, one on remote; --max-deletions 1 trips home's breaker only.
    let tis: Vec<TiSpec> = ["a", "b", "c"]
        .iter()
        .map(|n| TiSpec::new(DAG, n, RUN).state(Some("success")))
        .collect();
    for ti in &tis {
        db.insert_ti(ti).await;
    }
    t.pod("home", "z-a", &tis[0]).await;
    t.pod("home", "z-b", &tis[1]).await;
    t.pod("remote", "z-c", &tis[2]).await;
    let out = t
        .sweep(
            &db,
            &[
                "--context",
                "home",
                "--context",
                "remote",
                "--delete",
                "--max-deletions",
                "1",
            ],
        )
        .await;
    assert_eq!(out.code, 2, "stdout {}\nstderr {}", out.stdout, out.stderr);
    assert_eq!(
        rows(&out),
        BTreeMap::from([
            ("z-a".into(), row("home", "zombie", "no-active-ti", "none")),
            ("z-b".into(), row("home", "zombie", "no-active-ti", "none")),
            (
                "z-c".into(),
                row("remote", "zombie", "no-active-ti", "deleted")
            ),
        ])
    );
    let c = clusters(&out);
    assert_eq!(c["home"].0, "breaker");
    assert!(
        c["home"]
            .2
            .as_deref()
            .unwrap()
            .contains("--max-deletions 2")
    );
    assert_eq!(c["remote"], ("ok".into(), 1, None));
    assert!(
        out.stderr.contains("cluster home: circuit breaker tripped"),
        "{}",
        out.stderr
    );
    assert_eq!(t.survivors("home").await, names(&["z-a", "z-b"]));
    assert!(t.survivors("remote").await.is_empty());
    db.drop_database().await;
}

/// A ServiceAccount on the remote cluster with only what the sweeper needs in the namespace
/// (list and delete pods, create Events), as an admin would grant a GKE/EKS identity.
async fn sweeper_service_account(remote: &Client, ns: &str) {
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    Api::<ServiceAccount>::namespaced(remote.clone(), ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("sweeper"),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap();
    let rule = |group: &str, resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    };
    Api::<Role>::namespaced(remote.clone(), ns)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("kpo-sweeper"),
                rules: Some(vec![
                    rule("", "pods", &["list", "delete"]),
                    rule("events.k8s.io", "events", &["create"]),
                ]),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(remote.clone(), ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("kpo-sweeper"),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: "kpo-sweeper".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "sweeper".into(),
                    namespace: Some(ns.to_owned()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .unwrap();
}

/// The exec plugin: each call appends a line to `calls`, asks the remote apiserver for a token of
/// the `sweeper` ServiceAccount (TokenRequest), and hands it out as an ExecCredential that expires
/// `lifetime_secs` from now (kube-rs asks again once it is within 60 s of that).
fn write_exec_plugin(dir: &Path, ns: &str, calls: &Path, lifetime_secs: u32) -> PathBuf {
    let env = testsupport::env();
    let script = format!(
        r#"#!/usr/bin/env bash
# Test stand-in for gke-gcloud-auth-plugin / `aws eks get-token`: prints an ExecCredential.
set -euo pipefail
echo "$(date +%s.%N)" >> '{calls}'
body=$(curl -fsS --max-time 10 --cacert '{ca}' --cert '{cert}' --key '{key}' -X POST \
  -H 'Content-Type: application/json' \
  '{url}/api/v1/namespaces/{ns}/serviceaccounts/sweeper/token' \
  -d '{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{{"expirationSeconds":600}}}}')
token=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["token"])')
expires=$(date -u -d "+{lifetime_secs} seconds" +%Y-%m-%dT%H:%M:%SZ)
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"%s","expirationTimestamp":"%s"}}}}\n' "$token" "$expires"
"#,
        calls = calls.display(),
        ca = env.var("APISERVER_CA_CERT"),
        cert = env.var("ADMIN_CLIENT_CERT"),
        key = env.var("ADMIN_CLIENT_KEY"),
        url = env.var("REMOTE_APISERVER_URL"),
    );
    let path = dir.join("exec-plugin.sh");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The next run's JSON report on the sweeper's stdout (40 s at most).
async fn next_report(
    out: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    runs: usize,
) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(40), out.next_line())
        .await
        .unwrap_or_else(|_| panic!("no report within 40 s after {runs} runs"))
        .unwrap()
        .expect("the sweeper's stdout stays open");
    serde_json::from_str(&line).unwrap()
}

fn plugin_calls(calls: &Path) -> usize {
    std::fs::read_to_string(calls).map_or(0, |s| s.lines().count())
}

/// The credential IDs (the token's JTI, `authentication.kubernetes.io/credential-id`) with which
/// `user` listed pods in `ns`, from the remote apiserver's audit log.
fn credential_ids(user: &str, ns: &str) -> BTreeSet<String> {
    let log = std::fs::read_to_string(testsupport::env().var("REMOTE_APISERVER_AUDIT_LOG"))
        .expect("the remote audit log");
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["verb"] == "list"
                && e["user"]["username"] == user
                && e["objectRef"]["namespace"] == ns
                && e["stage"] == "ResponseComplete"
        })
        .filter_map(|e| {
            e["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_plugin_token_is_refreshed_on_expiry_in_interval_mode() {
    let t = TwoClusters::new("multi-exec").await;
    sweeper_service_account(&t.remote, &t.ns).await;
    let calls = t.dir.join("calls");
    // Expires 66 s after it is handed out: kube-rs asks again from 6 s on.
    let plugin = write_exec_plugin(&t.dir, &t.ns, &calls, 66);
    t.write_kubeconfig(Some(&plugin), None);
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let z = TiSpec::new(DAG, "z", RUN).state(Some("success"));
    let live = TiSpec::new(DAG, "live", RUN);
    db.insert_ti(&z).await;
    db.insert_ti(&live).await;
    t.pod("remote", "z-remote", &z).await;
    t.pod("remote", "live-remote", &live).await;

    let kc = t.kubeconfig.display().to_string();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
    cmd.args(["--kubeconfig", &kc, "--context", "remote-sa", "-n", &t.ns])
        .args([
            "--db-url",
            &db.url,
            "--owner",
            OWNER,
            "--min-age",
            "0s",
            "--delete",
        ])
        .args(["--interval", "1s", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("sweeper starts");
    let stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut all = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reports: Vec<Value> = Vec::new();
    reports.push(next_report(&mut out, 0).await);
    // kube-rs runs the plugin when it builds the client (three times: for a TLS identity, for
    // its expiry, for the token); each refresh is one more call.
    let at_build = plugin_calls(&calls);
    assert!(at_build >= 1, "the plugin was never run");
    // Then until two refreshes (about 6 s and 12 s after the build), 40 s at most.
    while plugin_calls(&calls) < at_build + 2 {
        reports.push(next_report(&mut out, reports.len()).await);
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let stderr = log.await.unwrap();
    assert!(status.success(), "{stderr}");
    while let Ok(Some(line)) = out.next_line().await {
        reports.push(serde_json::from_str(&line).unwrap());
    }
    let runs = reports.len();
    let n_calls = plugin_calls(&calls);
    // Every run reached the cluster with the plugin's token: listed both pods, deleted the zombie
    // once (first run), kept the live one.
    for r in &reports {
        assert_eq!(r["clusters"][0]["name"], "remote-sa", "{r}");
        assert_eq!(r["clusters"][0]["status"], "ok", "{r}\n{stderr}");
    }
    assert_eq!(
        reports[0]["pods"].as_array().unwrap().len(),
        2,
        "{}",
        reports[0]
    );
    assert_eq!(reports[0]["summary"]["deleted"], 1, "{}", reports[0]);
    assert_eq!(t.survivors("remote").await, names(&["live-remote"]));
    assert_eq!(t.zombie_events("remote").await, names(&["z-remote"]));
    // Asked again on expiry, not every run: a client built per run would run the plugin on
    // every run (at_build times).
    let refreshes = n_calls - at_build;
    assert!(
        (2..=3).contains(&refreshes) && runs >= refreshes + 6,
        "{runs} runs, {at_build} plugin calls at build and {refreshes} after: the token must be \
         reused until it expires, then asked for again\n{stderr}"
    );
    // And the refreshed tokens were the ones used: the remote apiserver saw the ServiceAccount
    // list pods with a token from the build and at least two refreshed ones.
    let user = format!("system:serviceaccount:{}:sweeper", t.ns);
    let ids = credential_ids(&user, &t.ns);
    assert!(ids.len() >= 3, "credential IDs of {user}: {ids:?}");
    eprintln!(
        "exec plugin: {runs} runs, {at_build} calls at client build, {refreshes} refreshes, {} tokens seen by the apiserver",
        ids.len()
    );
    db.drop_database().await;
}

/// The identity of the remote cluster's KPO (GKEStartPodOperator's Google service account there).
const REMOTE_KPO: &str = "airflow-worker@gke-project.iam.gserviceaccount.com";
/// The identity the sweeper's context has on the remote cluster.
const REMOTE_SWEEPER: &str = "kpo-sweeper@home-project.iam.gserviceaccount.com";

/// An admin client of the remote cluster impersonating `user` (authenticated).
async fn remote_as(user: &str) -> Client {
    let kc = kube::config::Kubeconfig::read_from(testsupport::env().remote_kubeconfig()).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    cfg.auth_info.impersonate = Some(user.to_owned());
    cfg.auth_info.impersonate_groups = Some(vec!["system:authenticated".to_owned()]);
    Client::try_from(cfg).unwrap()
}

/// The chart's stamping-only release for a remote cluster (sweeper.enabled=false, the stamp by
/// the MutatingAdmissionPolicy, remoteSweeper naming the sweeper's identity there), rendered by
/// helm and installed on the remote apiserver (its policies scoped to the test's namespace): the
/// pods the remote KPO identity creates carry that identity, `--owner` takes it, the rendered Role
/// is all the sweeper's remote identity needs, and the guard holds its deletes to KPO pods.
#[tokio::test(flavor = "multi_thread")]
async fn remote_stamping_only_release_stamps_the_remote_identity_and_owner_takes_it() {
    let t = TwoClusters::new("multi-stamp").await;
    t.write_kubeconfig(None, Some(REMOTE_SWEEPER));
    let chart = admission::repo_root().join("manifests/chart");
    let rendered = Command::new(testsupport::env().var("HELM"))
        .args(["template", "stamp"])
        .arg(&chart)
        .args(["-n", "kpo-sweeper", "--set", "sweeper.enabled=false"])
        .args(["--set", "stamping=policy"])
        .args(["--set", &format!("targetNamespaces={{{}}}", t.ns)])
        .args([
            "--set",
            &format!("remoteSweeper.users={{{REMOTE_SWEEPER}}}"),
        ])
        .output()
        .expect("helm runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let file = t.dir.join("stamp-release.yaml");
    std::fs::write(&file, &rendered.stdout).unwrap();
    let objs = admission::manifest_objects(&file);
    let kinds: BTreeSet<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
            "Role",
            "RoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]),
        "a stamping-only release: no sweeper, no ServiceAccount, no Secret"
    );
    for o in admission::of_kind(&objs, "Role") {
        let role: Role = serde_json::from_value(o.clone()).unwrap();
        Api::<Role>::namespaced(t.remote.clone(), &t.ns)
            .create(&PostParams::default(), &role)
            .await
            .unwrap();
    }
    for o in admission::of_kind(&objs, "RoleBinding") {
        let b: RoleBinding = serde_json::from_value(o.clone()).unwrap();
        Api::<RoleBinding>::namespaced(t.remote.clone(), &t.ns)
            .create(&PostParams::default(), &b)
            .await
            .unwrap();
    }
    let installed = admission::install_scoped(&t.remote, &objs, &t.ns, &BTreeMap::new()).await;
    let result = tokio::spawn(stamped_on_remote(t)).await;
    installed.remove().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn stamped_on_remote(t: TwoClusters) {
    admission::grant_pods(
        &t.remote,
        &t.ns,
        "airflow-worker",
        REMOTE_KPO,
        &["create", "get"],
    )
    .await;
    let worker: Api<Pod> = Api::namespaced(remote_as(REMOTE_KPO).await, &t.ns);
    let probe = testsupport::kpo_pod("probe", &TiSpec::new("d", "t", "r"));
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    admission::wait_until(
        "the remote stamp policy stamps",
        Duration::from_secs(30),
        || {
            let (w, p, d) = (worker.clone(), probe.clone(), dry.clone());
            async move {
                let p = w.create(&d, &p).await.unwrap();
                p.metadata
                    .labels
                    .is_some_and(|l| l.contains_key(stamp::STAMPED_LABEL))
            }
        },
    )
    .await;
    let db = testsupport::fresh_db(DbKind::Airflow3Postgres).await;
    let zombie = TiSpec::new(DAG, "gke_zombie", RUN).state(Some("success"));
    let live = TiSpec::new(DAG, "gke_live", RUN);
    for (name, ti) in [("gke-zombie", &zombie), ("gke-live", &live)] {
        db.insert_ti(ti).await;
        // Created unstamped, as KPO sends it, by the remote KPO identity; the policy stamps it.
        let p = worker
            .create(&PostParams::default(), &testsupport::kpo_pod(name, ti))
            .await
            .unwrap();
        let a = p.metadata.annotations.unwrap_or_default();
        assert_eq!(
            a.get(stamp::CREATED_BY).map(String::as_str),
            Some(REMOTE_KPO),
            "{name}"
        );
    }
    // A pod that is not KPO's, in the same namespace.
    let mut bystander = testsupport::kpo_pod("bystander", &live);
    bystander.metadata.labels = Some(BTreeMap::from([("app".to_owned(), "web".to_owned())]));
    Api::<Pod>::namespaced(t.remote.clone(), &t.ns)
        .create(&PostParams::default(), &bystander)
        .await
        .unwrap();

    // Only the home identity as --owner: the remote pods are another creator's.
    let only_home = t
        .sweep(
            &db,
            &["--context", "home", "--context", "remote-as", "--delete"],
        )
        .await;
    assert_eq!(only_home.code, 0, "{}", only_home.stderr);
    assert_eq!(
        rows(&only_home),
        BTreeMap::from([
            (
                "gke-zombie".into(),
                row("remote-as", "skip", "out-of-scope", "none")
            ),
            (
                "gke-live".into(),
                row("remote-as", "skip", "out-of-scope", "none")
            ),
        ])
    );
    // With the remote identity too: the remote zombie goes, through the rendered Role alone.
    let both = t
        .sweep(
            &db,
            &[
                "--context",
                "home",
                "--context",
                "remote-as",
                "--owner",
                REMOTE_KPO,
                "--delete",
            ],
        )
        .await;
    assert_eq!(both.code, 0, "{}", both.stderr);
    assert_eq!(
        rows(&both),
        BTreeMap::from([
            (
                "gke-zombie".into(),
                row("remote-as", "zombie", "no-active-ti", "deleted")
            ),
            (
                "gke-live".into(),
                row("remote-as", "keep", "active", "none")
            ),
        ])
    );
    assert_eq!(
        t.survivors("remote").await,
        names(&["bystander", "gke-live"])
    );
    assert_eq!(t.zombie_events("remote").await, names(&["gke-zombie"]));
    // The sweeper-scope guard holds the remote sweeper's identity to KPO pods, though its Role
    // lets it delete any pod of the namespace.
    let as_sweeper: Api<Pod> = Api::namespaced(remote_as(REMOTE_SWEEPER).await, &t.ns);
    admission::wait_until(
        "the guard refuses the bystander's delete",
        Duration::from_secs(30),
        || {
            let api = as_sweeper.clone();
            async move {
                let dp = DeleteParams {
                    dry_run: true,
                    ..DeleteParams::default()
                };
                match api.delete("bystander", &dp).await {
                    Err(kube::Error::Api(s)) => {
                        s.code == 403
                            && s.message
                                .contains("may delete KubernetesPodOperator pods only")
                    }
                    _ => false,
                }
            }
        },
    )
    .await;
    db.drop_database().await;
}
