//! The e2e harness: a namespace and an Airflow DB per scenario, KPO pods created through the real
//! apiserver, and the real `sweeper` binary run with `--output json`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use testsupport::{DbKind, TestDb, TiSpec};
use tikey::stamp::{self, Stamp};

/// The Airflow workers' identity (the stamp's created-by, `--owner`).
pub const OWNER: &str = "system:serviceaccount:airflow:airflow-worker";
pub const OTHER_OWNER: &str = "system:serviceaccount:other-airflow:airflow-worker";
/// The upstream DAG's run (apache/airflow #58968): a manual run, normalized with a hash suffix.
pub const UPSTREAM_RUN: &str = "manual__2025-12-02T10:00:00+00:00";

pub struct Scenario {
    pub client: Client,
    pub ns: String,
    pub db: TestDb,
    /// Every pod the scenario made goes with it, grace 0, whether the test passed or failed: the env
    /// is reused and nothing here garbage-collects pods (a kube-scheduler retries them forever).
    _pods: testsupport::DeletePodsOnDrop,
}

/// How to stamp a pod.
#[derive(Clone, Copy)]
pub enum Stamping {
    /// As the webhook would, creator [`OWNER`].
    Ours,
    /// As the webhook would, for another deployment's worker.
    Theirs,
    /// Created without the webhook.
    None,
}

impl Scenario {
    pub async fn new(prefix: &str, kind: DbKind) -> Scenario {
        Scenario::with_db(prefix, testsupport::fresh_db(kind).await).await
    }

    /// A scenario on a database the test made (a release's schema loaded from its dump).
    pub async fn with_db(prefix: &str, db: TestDb) -> Scenario {
        let client = testsupport::client().await;
        let ns = testsupport::fresh_namespace(&client, prefix).await;
        let _pods = testsupport::DeletePodsOnDrop::new(&ns);
        Scenario {
            client,
            ns,
            db,
            _pods,
        }
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates a KPO pod for `ti` (labels as KPO builds them), stamped as `stamping` says.
    pub async fn pod(&self, name: &str, ti: &TiSpec, stamping: Stamping) -> Pod {
        self.pod_in(&self.ns, name, ti, stamping, |_| {}).await
    }

    pub async fn pod_in(
        &self,
        ns: &str,
        name: &str,
        ti: &TiSpec,
        stamping: Stamping,
        edit: impl FnOnce(&mut Pod),
    ) -> Pod {
        let mut pod = testsupport::kpo_pod(name, ti);
        let creator = match stamping {
            Stamping::Ours => Some(OWNER),
            Stamping::Theirs => Some(OTHER_OWNER),
            Stamping::None => None,
        };
        if let Some(creator) = creator {
            let s = Stamp {
                ti_key: Some(ti.key()),
                try_number: Some(ti.try_number),
                admitted_at: Some(k8s_openapi::jiff::Timestamp::now().as_second()),
                created_by: Some(creator.to_owned()),
            };
            pod.metadata.annotations = Some(s.to_annotations());
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(
                    stamp::STAMPED_LABEL.to_owned(),
                    stamp::STAMPED_VALUE.to_owned(),
                );
        }
        edit(&mut pod);
        Api::<Pod>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("cannot create pod {ns}/{name}: {e}"))
    }

    /// KPO's own cleanup: the `already_checked=True` label.
    pub async fn mark_checked(&self, name: &str) {
        let patch = serde_json::json!({"metadata": {"labels": {"already_checked": "True"}}});
        self.pods()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("cannot label {name} already_checked: {e}"));
    }

    pub async fn set_phase(&self, name: &str, phase: &str) {
        testsupport::set_pod_phase(&self.client, &self.ns, name, phase).await;
    }

    /// Names of the pods still in the namespace (Terminating ones included).
    pub async fn survivors(&self) -> BTreeSet<String> {
        survivors(&self.client, &self.ns).await
    }

    /// Runs the sweeper on this scenario's namespace and DB (sqlx URL) with `--min-age 0s`.
    pub async fn sweep(&self, extra: &[&str]) -> Sweep {
        let mut args = vec![
            "--namespace",
            self.ns.as_str(),
            "--db-url",
            self.db.url.as_str(),
            "--min-age",
            "0s",
        ];
        args.extend_from_slice(extra);
        run_sweeper(&args, &[]).await
    }

    /// The events.k8s.io/v1 Events in the namespace with reason ZombiePodDeleted.
    pub async fn zombie_events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("ZombiePodDeleted"))
            .collect()
    }

    /// Asserts exactly one ZombiePodDeleted Event per pod in `deleted` (by name and UID), with the
    /// controller, action, rule and TI key.
    pub async fn assert_events(&self, deleted: &[(&Pod, &str)]) {
        let events = self.zombie_events().await;
        assert_eq!(
            events.len(),
            deleted.len(),
            "one Event per deleted pod: {events:#?}"
        );
        for (pod, reason) in deleted {
            let name = pod.metadata.name.as_deref().unwrap();
            let uid = pod.metadata.uid.as_deref().unwrap();
            let ev: Vec<&Event> = events
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .collect();
            assert_eq!(ev.len(), 1, "exactly one Event for {name}: {events:#?}");
            let ev = ev[0];
            let regarding = ev.regarding.as_ref().unwrap();
            assert_eq!(regarding.kind.as_deref(), Some("Pod"));
            assert_eq!(regarding.uid.as_deref(), Some(uid));
            assert_eq!(
                ev.reporting_controller.as_deref(),
                Some("kpo-sweeper.io/sweeper")
            );
            assert!(
                ev.reporting_instance
                    .as_deref()
                    .is_some_and(|i| !i.is_empty())
            );
            assert_eq!(ev.action.as_deref(), Some("Delete"));
            assert_eq!(ev.type_.as_deref(), Some("Normal"));
            let note = ev.note.as_deref().unwrap_or_default();
            let labels = pod.metadata.labels.as_ref().unwrap();
            let key = tikey::TiKey::from_pod_labels(labels).unwrap().0.encode();
            assert!(
                note.contains(reason) && note.contains(&key),
                "note {note:?} must name {reason} and {key}"
            );
        }
    }
}

/// `(decision, reason, action)` of each pod of a library run's report, by name.
pub fn rows_of(
    out: &sweeper::Outcome,
) -> BTreeMap<
    String,
    (
        sweeper::decide::Verdict,
        sweeper::decide::Reason,
        sweeper::report::Action,
    ),
> {
    out.report
        .pods
        .iter()
        .map(|r| (r.name.to_owned(), (r.decision, r.reason, r.action)))
        .collect()
}

impl Scenario {
    /// `sweeper::Args` for a library run on this scenario, with `--min-age 0s --owner OWNER` and
    /// `extra`.
    pub fn args(&self, extra: &[&str]) -> sweeper::Args {
        use clap::Parser;
        let kubeconfig = testsupport::env().kubeconfig.display().to_string();
        let mut v = vec![
            "sweeper",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &self.ns,
            "--db-url",
            &self.db.url,
            "--owner",
            OWNER,
            "--min-age",
            "0s",
        ];
        v.extend_from_slice(extra);
        sweeper::Args::try_parse_from(v).unwrap()
    }
}

pub async fn survivors(client: &Client, ns: &str) -> BTreeSet<String> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// An ownerReference to a Job (KubernetesJobOperator's pods).
pub fn job_owner() -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".to_owned(),
        kind: "Job".to_owned(),
        name: "kpo-job".to_owned(),
        uid: "11111111-2222-3333-4444-555555555555".to_owned(),
        controller: Some(true),
        ..Default::default()
    }
}

/// Deletes `name` gracefully with `grace` seconds: bound to a Node without a kubelet, it then stays
/// Terminating.
pub async fn graceful_delete(client: &Client, ns: &str, name: &str, grace: u32) {
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(grace),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("cannot delete {ns}/{name}: {e}"));
}

/// One run of the real binary.
#[derive(Debug)]
pub struct Sweep {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Sweep {
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not the JSON report ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// `(decision, reason, action)` of each pod in the report, by name.
    pub fn rows(&self) -> BTreeMap<String, (String, String, String)> {
        let r = self.report();
        r["pods"]
            .as_array()
            .expect("pods")
            .iter()
            .map(|p| {
                let s = |k: &str| {
                    p[k].as_str()
                        .unwrap_or_else(|| panic!("{k} in {p}"))
                        .to_owned()
                };
                (s("name"), (s("decision"), s("reason"), s("action")))
            })
            .collect()
    }

    /// Asserts the exit code, and that the report has exactly these pods with these
    /// (decision, reason, action).
    pub fn expect(&self, code: i32, rows: &[(&str, &str, &str, &str)]) {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let want: BTreeMap<String, (String, String, String)> = rows
            .iter()
            .map(|(n, d, r, a)| {
                (
                    (*n).to_owned(),
                    ((*d).to_owned(), (*r).to_owned(), (*a).to_owned()),
                )
            })
            .collect();
        assert_eq!(self.rows(), want, "report rows; stderr:\n{}", self.stderr);
    }

    pub fn summary(&self) -> Value {
        self.report()["summary"].clone()
    }
}

/// Runs the real binary with `--kubeconfig <test env> --output json` and `args`, in an environment
/// without any `KPO_SWEEPER_*` or `AIRFLOW__*` variable but `env`.
pub async fn run_sweeper(args: &[&str], env: &[(&str, &str)]) -> Sweep {
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
    if !args.contains(&"--kubeconfig") {
        cmd.args(["--kubeconfig", kubeconfig.as_str()]);
    }
    cmd.args(["--output", "json"]).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sweeper finished within 120 s")
        .expect("sweeper runs");
    Sweep {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
