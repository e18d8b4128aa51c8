//! The identity KPO uses: service account `airflow-worker` in the test namespace, a Role with the pod
//! rights KPO needs, and a kubeconfig holding a token from the TokenRequest API (no client certificate),
//! so the apiserver authenticates KPO's requests as `system:serviceaccount:<ns>:airflow-worker`.

use std::path::Path;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// The service account's name.
pub const WORKER_SA: &str = "airflow-worker";

/// `system:serviceaccount:<ns>:airflow-worker`: what the webhook records as `created-by`.
pub fn worker_identity(ns: &str) -> String {
    format!("system:serviceaccount:{ns}:{WORKER_SA}")
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// Creates the service account, a Role with what KPO does to pods (create, read, watch, patch its
/// `already_checked` label, delete; logs; events on startup and failure) and its binding, then writes a
/// kubeconfig at `path` with a one-hour token for it. Returns the identity.
pub async fn airflow_worker_kubeconfig(admin: &Client, ns: &str, path: &Path) -> String {
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(
            &pp,
            &ServiceAccount {
                metadata: meta(WORKER_SA),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create ServiceAccount {ns}/{WORKER_SA}: {e}"));
    let role = Role {
        metadata: meta("airflow-pod-launcher"),
        rules: Some(vec![
            rule(
                &[""],
                &["pods"],
                &["create", "get", "list", "watch", "patch", "delete"],
            ),
            rule(&[""], &["pods/log"], &["get", "list"]),
            rule(&[""], &["pods/exec"], &["create", "get"]),
            rule(&[""], &["events"], &["get", "list", "watch"]),
        ]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&pp, &role)
        .await
        .unwrap_or_else(|e| panic!("create Role {ns}/airflow-pod-launcher: {e}"));
    let binding = RoleBinding {
        metadata: meta("airflow-pod-launcher"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: "airflow-pod-launcher".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: WORKER_SA.to_owned(),
            namespace: Some(ns.to_owned()),
            api_group: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&pp, &binding)
        .await
        .unwrap_or_else(|e| panic!("create RoleBinding {ns}/airflow-pod-launcher: {e}"));
    let tr = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request(
            WORKER_SA,
            &pp,
            &TokenRequest {
                metadata: ObjectMeta::default(),
                spec: Some(TokenRequestSpec {
                    audiences: None,
                    expiration_seconds: Some(3600),
                    bound_object_ref: None,
                }),
                status: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {ns}/{WORKER_SA}: {e}"));
    let token = tr
        .status
        .and_then(|s| s.token)
        .expect("TokenRequest answered without a token");
    let env = testsupport::env();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kpo-test\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: {WORKER_SA}\n  user:\n    token: {token}\n\
         contexts:\n- name: {WORKER_SA}\n  context:\n    cluster: kpo-test\n    user: {WORKER_SA}\n    \
         namespace: {ns}\ncurrent-context: {WORKER_SA}\n",
        server = env.var("APISERVER_URL"),
        ca = env.var("APISERVER_CA_CERT"),
    );
    std::fs::write(path, kubeconfig).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    worker_identity(ns)
}
