//! The local kube-apiserver: clients, namespaces, and what a kubelet or scheduler would otherwise do.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Namespace, Node, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::env::env;

/// Label put on every namespace and Node these helpers create.
pub const TEST_LABEL: &str = "kpo-sweeper.io/test";

fn install_crypto_provider() {
    // kube's rustls uses the process-wide provider; ring only (never aws-lc-rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn admin_config() -> Config {
    admin_config_from(&env().kubeconfig).await
}

async fn admin_config_from(path: &std::path::Path) -> Config {
    install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the test kubeconfig {}: {e}: run tests/env/up (make test does)",
            path.display()
        )
    });
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "bad test kubeconfig {}: {e}: run tests/env/up (make test does)",
                path.display()
            )
        });
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    config
}

async fn checked_client(config: Config, what: &str) -> Client {
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .unwrap_or_else(|e| panic!("cannot build a kube client for {url}: {e}"));
    // Fail here, with a clear message, rather than in the middle of a test.
    if let Err(e) = client.apiserver_version().await {
        panic!(
            "the test kube-apiserver at {url} does not answer ({what}): {e}: \
             run tests/env/up (make test does)"
        );
    }
    client
}

/// An admin client (`system:masters`) of the local apiserver, from the env file's kubeconfig only.
pub async fn client() -> Client {
    checked_client(admin_config().await, "admin").await
}

/// An admin client of the second control plane (`REMOTE_KUBECONFIG`: its own etcd and
/// kube-apiserver, context `remote`), for the multi-cluster sweep.
pub async fn remote_client() -> Client {
    checked_client(
        admin_config_from(&env().remote_kubeconfig()).await,
        "remote admin",
    )
    .await
}

/// The admin credentials impersonating `user` in `groups` (Impersonate-User/Group headers), e.g.
/// `("system:serviceaccount:airflow:airflow-worker", &["system:serviceaccounts",
/// "system:serviceaccounts:airflow", "system:authenticated"])`: requests are authorized (RBAC) and
/// audited as that user, and admission webhooks see it in `userInfo`.
pub async fn impersonating_client(user: &str, groups: &[&str]) -> Client {
    let mut config = admin_config().await;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = if groups.is_empty() {
        None
    } else {
        Some(groups.iter().map(|g| (*g).to_owned()).collect())
    };
    checked_client(config, user).await
}

/// Creates a namespace named `<prefix>-<random>` and returns its name. Namespaces are never deleted by
/// these helpers: with no kube-controller-manager a deleted namespace stays Terminating anyway.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(50)
        .collect();
    let prefix = prefix.trim_matches('-');
    let prefix = if prefix.is_empty() { "t" } else { prefix };
    let name = format!("{prefix}-{}", crate::random_suffix(8));
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([(TEST_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
    name
}

/// Creates a Node object named `name` (no kubelet behind it); an existing one is fine.
pub async fn create_node(client: &Client, name: &str) {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [
                    (TEST_LABEL.to_owned(), "true".to_owned()),
                    ("kubernetes.io/hostname".to_owned(), name.to_owned()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    match Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("cannot create Node {name}: {e}"),
    }
}

/// Binds pod `ns/pod` to `node` through the `pods/binding` subresource, as the scheduler would. A bound
/// pod deleted gracefully then stays Terminating, as on a node whose kubelet is gone.
pub async fn bind_pod(client: &Client, ns: &str, pod: &str, node: &str) {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    };
    Api::<Pod>::namespaced(client.clone(), ns)
        .create_subresource::<_, serde_json::Value>(
            "binding",
            pod,
            &PostParams::default(),
            &binding,
        )
        .await
        .unwrap_or_else(|e| panic!("cannot bind pod {ns}/{pod} to Node {node}: {e}"));
}

/// Sets `status.phase` of pod `ns/pod` (`Pending`, `Running`, `Succeeded`, `Failed`) through the status
/// subresource, as a kubelet would.
pub async fn set_pod_phase(client: &Client, ns: &str, pod: &str, phase: &str) {
    let patch = serde_json::json!({ "status": { "phase": phase } });
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("cannot set phase {phase} on pod {ns}/{pod}: {e}"));
}

/// Waits until pod `ns/pod` is gone (404), up to `timeout`; returns whether it is.
pub async fn wait_for_pod_gone(client: &Client, ns: &str, pod: &str, timeout: Duration) -> bool {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let end = tokio::time::Instant::now() + timeout;
    loop {
        match api.get_opt(pod).await {
            Ok(None) => return true,
            Ok(Some(_)) => {}
            Err(e) => panic!("cannot read pod {ns}/{pod}: {e}"),
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `DeleteParams` with grace 0 and a UID precondition: what the sweeper sends.
pub fn force_delete_params(uid: &str) -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}
