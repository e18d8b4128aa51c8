//! Our webhook in front of the test namespace, as an operator would run it: certificates from the `certs`
//! binary (`certs generate`), the `webhook` binary on loopback, and a MutatingWebhookConfiguration with the
//! CA as caBundle (failurePolicy Ignore, KPO pods only, this namespace only).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use crate::procs::{Daemon, binaries};

/// A loopback port that was free a moment ago (the `webhook` binary takes `--listen ADDR:PORT` and does
/// not report a port 0 it bound, so the port is chosen here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The running webhook and its registration; dropping it unregisters (best effort) and stops it.
pub struct Webhook {
    pub daemon: Daemon,
    pub config_name: String,
    client: Client,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.config_name.clone();
        // Drop cannot await: a short-lived thread with its own runtime deletes the configuration.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let _ = Api::<MutatingWebhookConfiguration>::all(client)
                        .delete(&name, &DeleteParams::default())
                        .await;
                });
            }
        })
        .join();
    }
}

/// Generates certificates with `certs generate`, starts `webhook` on loopback, registers it for KPO pods
/// created in `ns`, and waits until the apiserver calls it (a dry-run create comes back stamped).
pub async fn start(admin: &Client, ns: &str, dir: &Path) -> Webhook {
    let bins = binaries();
    let certs = dir.join("certs");
    let out = Command::new(&bins.certs)
        .args(["generate", "--out-dir"])
        .arg(&certs)
        .args(["--extra-san", "127.0.0.1", "--log-format", "text"])
        .output()
        .expect("run certs generate");
    assert!(
        out.status.success(),
        "certs generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let metrics = free_port();
    let daemon = Daemon::spawn(
        "webhook",
        Command::new(&bins.webhook)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--metrics-listen=127.0.0.1:{metrics}"))
            .arg(format!(
                "--tls-cert-file={}",
                certs.join("tls.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                certs.join("tls.key").display()
            ))
            .arg("--log-format=text"),
        &dir.join("webhook.log"),
    );
    let ca = std::fs::read(certs.join("ca.crt")).expect("certs generate wrote ca.crt");
    let name = format!("kpo-sweeper-airflow-e2e-{ns}");
    let config = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "stamp.kpo-sweeper.io".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            failure_policy: Some("Ignore".to_owned()),
            timeout_seconds: Some(5),
            match_policy: Some("Equivalent".to_owned()),
            reinvocation_policy: Some("Never".to_owned()),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/mutate")),
                ca_bundle: Some(ByteString(ca)),
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
    Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .create(&PostParams::default(), &config)
        .await
        .unwrap_or_else(|e| panic!("create MutatingWebhookConfiguration {name}: {e}"));
    let hook = Webhook {
        daemon,
        config_name: name,
        client: admin.clone(),
    };
    // The apiserver loads webhook configurations asynchronously; the webhook needs a moment to listen.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), ns);
    let probe = testsupport::kpo_pod(
        "webhook-probe",
        &testsupport::TiSpec::new("probe_dag", "probe_task", "probe_run"),
    );
    crate::wait_for(
        "the apiserver to call our webhook",
        Duration::from_secs(30),
        || async {
            let dry = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            let created = pods.create(&dry, &probe).await.map_err(|e| e.to_string())?;
            let stamped = created
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(tikey::stamp::TI_KEY));
            if stamped {
                Ok(())
            } else {
                Err(format!(
                    "dry-run pod not stamped yet; webhook log:\n{}",
                    hook.daemon.log_tail(5)
                ))
            }
        },
    )
    .await;
    hook
}
