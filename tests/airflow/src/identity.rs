//! The identity KPO uses: service account `airflow-worker` in the test namespace, a Role with the pod
//! rights KPO needs, and a kubeconfig holding a token from the TokenRequest API (no client certificate),
//! so the apiserver authenticates KPO's requests as `system:serviceaccount:<ns>:airflow-worker`.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
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

/// The Role KPO's identity gets, on either cluster.
pub const LAUNCHER_ROLE: &str = "airflow-pod-launcher";

/// What KPO does to pods (create, read, watch, patch its `already_checked` label, delete; logs; events on
/// startup and failure).
fn launcher_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &["pods"],
            &["create", "get", "list", "watch", "patch", "delete"],
        ),
        rule(&[""], &["pods/log"], &["get", "list"]),
        rule(&[""], &["pods/exec"], &["create", "get"]),
        rule(&[""], &["events"], &["get", "list", "watch"]),
    ]
}

/// Creates the service account, a Role with what KPO does to pods (create, read, watch, patch its
/// `already_checked` label, delete; logs; events on startup and failure) and its binding, then writes a
/// kubeconfig at `path` with a one-hour token for it (its current context). With `remote`, the kubeconfig
/// has a second context, [`REMOTE_CONTEXT`]: the remote cluster as that identity (what a task's
/// `cluster_context` selects). Returns the home identity.
pub async fn airflow_worker_kubeconfig(
    admin: &Client,
    ns: &str,
    path: &Path,
    remote: Option<&RemoteIdentity>,
) -> String {
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
        metadata: meta(LAUNCHER_ROLE),
        rules: Some(launcher_rules()),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&pp, &role)
        .await
        .unwrap_or_else(|e| panic!("create Role {ns}/airflow-pod-launcher: {e}"));
    let binding = RoleBinding {
        metadata: meta(LAUNCHER_ROLE),
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
    let ca = env.var("APISERVER_CA_CERT");
    let mut clusters = format!(
        "- name: kpo-test\n  cluster:\n    server: {}\n    certificate-authority: {ca}\n",
        env.var("APISERVER_URL")
    );
    let mut users = format!("- name: {WORKER_SA}\n  user:\n    token: {token}\n");
    let mut contexts = format!(
        "- name: {WORKER_SA}\n  context:\n    cluster: kpo-test\n    user: {WORKER_SA}\n    namespace: {ns}\n"
    );
    if let Some(r) = remote {
        clusters += &format!(
            "- name: kpo-remote\n  cluster:\n    server: {}\n    certificate-authority: {ca}\n",
            env.var("REMOTE_APISERVER_URL")
        );
        users += &format!(
            "- name: remote-worker\n  user:\n    client-certificate: {}\n    client-key: {}\n",
            r.cert.display(),
            r.key.display()
        );
        contexts += &format!(
            "- name: {REMOTE_CONTEXT}\n  context:\n    cluster: kpo-remote\n    user: remote-worker\n    \
             namespace: {ns}\n"
        );
    }
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}\
         current-context: {WORKER_SA}\n"
    );
    std::fs::write(path, kubeconfig).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    worker_identity(ns)
}

/// The context of the remote cluster in the worker's kubeconfig: what the remote task's `cluster_context`
/// names.
pub const REMOTE_CONTEXT: &str = "remote";

/// The identity KPO's credentials have on the remote cluster: a user the env's CA vouches for by a client
/// certificate (as a cloud IAM identity is vouched for by its provider), not a ServiceAccount of that
/// cluster, so only the remote cluster's own stamping can name it.
pub const REMOTE_KPO: &str = "airflow-worker@remote-project.iam.gserviceaccount.com";

/// KPO's credentials on the remote cluster: a client certificate of [`REMOTE_KPO`].
#[derive(Clone, Debug)]
pub struct RemoteIdentity {
    pub user: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates namespace `ns` on the remote cluster (the same name as at home, labelled as a test's), the
/// launcher Role bound to [`REMOTE_KPO`] there, and a client certificate for that user signed with the
/// env's CA (`KPO_ENV_CA_CERT` / `KPO_ENV_CA_KEY`) under `dir`.
pub async fn remote_identity(remote: &Client, ns: &str, dir: &Path) -> RemoteIdentity {
    let pp = PostParams::default();
    let n = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_owned()),
            labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(remote.clone())
        .create(&pp, &n)
        .await
        .unwrap_or_else(|e| panic!("create namespace {ns} on the remote cluster: {e}"));
    let meta = ObjectMeta {
        name: Some(LAUNCHER_ROLE.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    Api::<Role>::namespaced(remote.clone(), ns)
        .create(
            &pp,
            &Role {
                metadata: meta.clone(),
                rules: Some(launcher_rules()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create Role {ns}/{LAUNCHER_ROLE} on the remote cluster: {e}"));
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: LAUNCHER_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: REMOTE_KPO.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(remote.clone(), ns)
        .create(&pp, &binding)
        .await
        .unwrap_or_else(|e| {
            panic!("create RoleBinding {ns}/{LAUNCHER_ROLE} on the remote cluster: {e}")
        });
    let env = testsupport::env();
    let (key, csr, cert) = (
        dir.join("remote-worker.key"),
        dir.join("remote-worker.csr"),
        dir.join("remote-worker.crt"),
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run openssl {args:?}: {e} (install openssl)"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |p: &Path| p.display().to_string();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
        "-subj",
        &format!("/CN={REMOTE_KPO}"),
    ]);
    // A v3 certificate (rustls refuses v1, which `x509 -req` makes without extensions).
    let ext = dir.join("remote-worker.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-extfile",
        &p(&ext),
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        env.var("KPO_ENV_CA_CERT"),
        "-CAkey",
        env.var("KPO_ENV_CA_KEY"),
        // Not -CAcreateserial: that writes a serial file next to the shared CA.
        "-set_serial",
        &format!(
            "0x{}",
            testsupport::random_suffix(12)
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        "-days",
        "1",
        "-out",
        &p(&cert),
    ]);
    RemoteIdentity {
        user: REMOTE_KPO.to_owned(),
        cert,
        key,
    }
}
