//! The webhook binary against the real apiserver of `tests/env/up`: start it on loopback with a test
//! CA's certificate, register a MutatingWebhookConfiguration scoped to one namespace, and grant the
//! impersonated Airflow service account the right to create pods there.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use super::{SecretDir, free_port, http_get};

/// The webhook's name in the configuration: audit annotations appear as `stamp.kpo-sweeper.io/<key>`.
pub const WEBHOOK_NAME: &str = "stamp.kpo-sweeper.io";
/// The identity Airflow workers create pods as (impersonated).
pub const WORKER: &str = "system:serviceaccount:airflow:airflow-worker";
pub const WORKER_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:airflow",
    "system:authenticated",
];

/// The `webhook` binary, running.
pub struct WebhookProcess {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    pub log: PathBuf,
}

impl WebhookProcess {
    /// Starts `binary` on free loopback ports with the Secret-volume-like `secret`, and waits for /readyz.
    pub async fn start(
        binary: &Path,
        secret: &SecretDir,
        poll: &str,
        log: PathBuf,
    ) -> WebhookProcess {
        Self::start_with(binary, None, secret, poll, log).await
    }

    /// [`WebhookProcess::start`], with `first_arg` before the flags (a subcommand).
    pub async fn start_with(
        binary: &Path,
        first_arg: Option<&str>,
        secret: &SecretDir,
        poll: &str,
        log: PathBuf,
    ) -> WebhookProcess {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(binary)
            .args(first_arg)
            .arg(format!("--listen={addr}"))
            .arg(format!("--metrics-listen={metrics}"))
            .arg(format!("--tls-cert-file={}", secret.cert().display()))
            .arg(format!("--tls-private-key-file={}", secret.key().display()))
            .arg(format!("--cert-poll-interval={poll}"))
            .arg("--log-format=text")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while http_get(metrics, "/readyz").await.map(|r| r.0) != Ok(200) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhook never became ready; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        WebhookProcess {
            child,
            addr,
            metrics,
            log,
        }
    }

    /// SIGTERM, and the exit code.
    pub async fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().expect("running").to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("webhook exits within 15 s of SIGTERM")
            .unwrap();
        status.code()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Registers the webhook at `https://<addr>/mutate` for KPO pods created in `ns` only, trusting
/// `ca_bundle` (PEM, one or more CAs). Returns the configuration's name.
pub async fn register(client: &Client, ns: &str, addr: SocketAddr, ca_bundle: &str) -> String {
    let name = format!("kpo-sweeper-test-{ns}");
    let config = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: WEBHOOK_NAME.to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            failure_policy: Some("Ignore".to_owned()),
            timeout_seconds: Some(5),
            match_policy: Some("Equivalent".to_owned()),
            reinvocation_policy: Some("Never".to_owned()),
            client_config: WebhookClientConfig {
                url: Some(format!("https://{addr}/mutate")),
                ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
                service: None,
            },
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            object_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    tikey::labels::KPO.to_owned(),
                    tikey::labels::KPO_VALUE.to_owned(),
                )])),
                match_expressions: None,
            }),
            // Only this test's namespace: tests of other crates run against the same apiserver.
            namespace_selector: Some(LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(vec![ns.to_owned()]),
                }]),
            }),
            match_conditions: None,
        }]),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &config)
        .await
        .unwrap_or_else(|e| panic!("cannot create MutatingWebhookConfiguration {name}: {e}"));
    name
}

pub async fn unregister(client: &Client, name: &str) {
    let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// Lets [`WORKER`] create, read and delete pods in `ns` (RBAC is on).
pub async fn grant_worker(client: &Client, ns: &str) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some("airflow-worker-pods".to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".to_owned()]),
            verbs: ["create", "get", "list", "delete"]
                .map(str::to_owned)
                .to_vec(),
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("airflow-worker-pods".to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: "airflow-worker-pods".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: WORKER.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// Waits until the apiserver calls the webhook for `ns` (its configuration cache is eventually
/// consistent): server-side dry-run creates of a KPO pod until one comes back stamped.
pub async fn wait_until_active(pods: &Api<Pod>) {
    let ti = testsupport::TiSpec::new("probe_dag", "probe_task", "probe_run");
    let probe = testsupport::kpo_pod("webhook-probe", &ti);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let created = pods
            .create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &probe,
            )
            .await
            .unwrap();
        if stamp_of(&created).contains_key(tikey::stamp::TI_KEY) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the apiserver never called the webhook within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pod's `kpo-sweeper.io/` annotations.
pub fn stamp_of(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(tikey::stamp::PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether the pod carries the `kpo-sweeper.io/stamped=v1` label.
pub fn has_stamped_label(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(tikey::stamp::STAMPED_LABEL))
        .map(String::as_str)
        == Some(tikey::stamp::STAMPED_VALUE)
}
