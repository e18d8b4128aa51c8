//! Admission policies from `manifests/` on the shared test apiserver: the ValidatingAdmissionPolicy
//! guards of `manifests/base/guards.yaml` and the MutatingAdmissionPolicy of
//! `manifests/overlays/admission-policy`, read from the repository's YAML (kubectl turns it into JSON)
//! and installed **scoped to one test namespace**: every test of every crate shares one apiserver, so a
//! binding as the manifests write it would judge other tests' pods.
//!
//! Scoping changes only names and bindings: each policy and binding gets a suffix, each binding's
//! `policyName` follows, each binding's `matchResources.namespaceSelector` gets one more requirement
//! (`kubernetes.io/metadata.name In [<ns>]`, kept ANDed with whatever the manifest selects). The
//! policies' CEL, match constraints, match
//! conditions, failure policies and the bindings' actions are the manifests' own (a test may replace a
//! policy variable's expression, as an operator would: the stamp editors).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::Value;

use crate::env::env;

/// The repository's root (this crate is `tests/support`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support sits two levels below the repository root")
        .to_path_buf()
}

/// The objects of a YAML manifest file (or a directory rendered with `kubectl kustomize`), as JSON.
pub fn manifest_objects(path: &Path) -> Vec<Value> {
    let kubeconfig = env().kubeconfig.display().to_string();
    let out = if path.is_dir() {
        let yaml = Command::new("kubectl")
            .arg("kustomize")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"));
        assert!(
            yaml.status.success(),
            "kubectl kustomize {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&yaml.stderr)
        );
        let dir = std::env::temp_dir().join(format!("kpo-manifest-{}", crate::random_suffix(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rendered.yaml");
        std::fs::write(&file, &yaml.stdout).unwrap();
        let objs = manifest_objects(&file);
        let _ = std::fs::remove_dir_all(&dir);
        return objs;
    } else {
        Command::new("kubectl")
            .arg(format!("--kubeconfig={kubeconfig}"))
            .args(["create", "--dry-run=client", "-o", "json", "-f"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"))
    };
    assert!(
        out.status.success(),
        "kubectl cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut objs = Vec::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let v = v.unwrap_or_else(|e| panic!("kubectl printed invalid JSON: {e}"));
        match v["items"].as_array() {
            Some(items) if v["kind"] == "List" => objs.extend(items.iter().cloned()),
            _ => objs.push(v),
        }
    }
    objs
}

/// The objects of `kind` among `objs`.
pub fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// Policies and bindings installed by [`install_scoped`]; [`Installed::remove`] deletes them.
pub struct Installed {
    client: Client,
    /// (kind, name) of every cluster-scoped object created.
    created: Vec<(String, String)>,
    /// The suffix appended to every name.
    pub suffix: String,
}

impl Installed {
    /// The scoped name of a manifest object named `name`.
    pub fn name(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }

    /// Deletes what was installed (best effort: a leftover binding only selects its dead namespace).
    pub async fn remove(self) {
        let dp = DeleteParams::default();
        for (kind, name) in self.created.iter().rev() {
            let c = self.client.clone();
            let _ = match kind.as_str() {
                "ValidatingAdmissionPolicy" => Api::<ValidatingAdmissionPolicy>::all(c)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "ValidatingAdmissionPolicyBinding" => {
                    Api::<ValidatingAdmissionPolicyBinding>::all(c)
                        .delete(name, &dp)
                        .await
                        .map(|_| ())
                }
                "MutatingAdmissionPolicy" => Api::<MutatingAdmissionPolicy>::all(c)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "MutatingAdmissionPolicyBinding" => Api::<MutatingAdmissionPolicyBinding>::all(c)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                _ => Ok(()),
            };
        }
    }
}

/// `matchResources` with `kubernetes.io/metadata.name In [ns]` added to its namespace selector.
fn scope_to(mr: Option<MatchResources>, ns: &str) -> MatchResources {
    let mut mr = mr.unwrap_or_default();
    let mut sel = mr.namespace_selector.take().unwrap_or_default();
    sel.match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![ns.to_owned()]),
        });
    mr.namespace_selector = Some(LabelSelector {
        match_labels: sel.match_labels,
        match_expressions: sel.match_expressions,
    });
    mr
}

/// Installs every ValidatingAdmissionPolicy, MutatingAdmissionPolicy and binding of `objs`, scoped to
/// namespace `ns` (see the module doc). `variables` replaces the CEL expression of each policy variable
/// it names (how an operator lists the stamp editors). Returns what to remove afterwards.
pub async fn install_scoped(
    client: &Client,
    objs: &[Value],
    ns: &str,
    variables: &BTreeMap<String, String>,
) -> Installed {
    let suffix = crate::random_suffix(6);
    let scoped = |name: &Option<String>| format!("{}-{suffix}", name.as_deref().unwrap_or("x"));
    let pp = PostParams::default();
    let mut created = Vec::new();
    let fresh_meta = |name: String| ObjectMeta {
        name: Some(name),
        labels: Some([(crate::TEST_LABEL.to_owned(), "true".to_owned())].into()),
        ..ObjectMeta::default()
    };
    let parse = |v: &Value| -> Value {
        let mut v = v.clone();
        // Fields the server owns, if kubectl printed any.
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("creationTimestamp");
        }
        for var in v["spec"]["variables"].as_array_mut().into_iter().flatten() {
            if let Some(e) = var["name"].as_str().and_then(|n| variables.get(n)) {
                var["expression"] = Value::String(e.clone());
            }
        }
        v
    };
    for o in objs {
        let kind = o["kind"].as_str().unwrap_or_default();
        match kind {
            "ValidatingAdmissionPolicy" => {
                let mut p: ValidatingAdmissionPolicy = serde_json::from_value(parse(o)).unwrap();
                let name = scoped(&p.metadata.name);
                p.metadata = fresh_meta(name.clone());
                p.status = None;
                Api::<ValidatingAdmissionPolicy>::all(client.clone())
                    .create(&pp, &p)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create {kind} {name}: {e}"));
                created.push((kind.to_owned(), name));
            }
            "MutatingAdmissionPolicy" => {
                let mut p: MutatingAdmissionPolicy = serde_json::from_value(parse(o)).unwrap();
                let name = scoped(&p.metadata.name);
                p.metadata = fresh_meta(name.clone());
                Api::<MutatingAdmissionPolicy>::all(client.clone())
                    .create(&pp, &p)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create {kind} {name}: {e}"));
                created.push((kind.to_owned(), name));
            }
            _ => {}
        }
    }
    for o in objs {
        let kind = o["kind"].as_str().unwrap_or_default();
        match kind {
            "ValidatingAdmissionPolicyBinding" => {
                let mut b: ValidatingAdmissionPolicyBinding =
                    serde_json::from_value(parse(o)).unwrap();
                let name = scoped(&b.metadata.name);
                b.metadata = fresh_meta(name.clone());
                let spec = &mut b.spec;
                spec.policy_name = scoped(&Some(spec.policy_name.clone()));
                spec.match_resources = Some(scope_to(spec.match_resources.take(), ns));
                assert!(
                    spec.param_ref.is_none(),
                    "scoping a binding's paramRef is not implemented"
                );
                Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                    .create(&pp, &b)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create {kind} {name}: {e}"));
                created.push((kind.to_owned(), name));
            }
            "MutatingAdmissionPolicyBinding" => {
                let mut b: MutatingAdmissionPolicyBinding =
                    serde_json::from_value(parse(o)).unwrap();
                let name = scoped(&b.metadata.name);
                b.metadata = fresh_meta(name.clone());
                let spec = b.spec.as_mut().expect("binding has a spec");
                spec.policy_name = Some(scoped(&spec.policy_name));
                spec.match_resources = Some(scope_to(spec.match_resources.take(), ns));
                assert!(
                    spec.param_ref.is_none(),
                    "scoping a binding's paramRef is not implemented"
                );
                Api::<MutatingAdmissionPolicyBinding>::all(client.clone())
                    .create(&pp, &b)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create {kind} {name}: {e}"));
                created.push((kind.to_owned(), name));
            }
            _ => {}
        }
    }
    assert!(
        !created.is_empty(),
        "no admission policy among the manifest's objects"
    );
    Installed {
        client: client.clone(),
        created,
        suffix,
    }
}

/// Grants `user` the pod `verbs` in `ns` (a Role and RoleBinding named `role`; RBAC is on and the
/// aggregated ClusterRoles are empty without kube-controller-manager).
pub async fn grant_pods(client: &Client, ns: &str, role: &str, user: &str, verbs: &[&str]) {
    let r = Role {
        metadata: ObjectMeta {
            name: Some(role.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".to_owned(), "pods/status".to_owned()]),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &r)
        .await
        .unwrap_or_else(|e| panic!("cannot create Role {ns}/{role}: {e}"));
    let b = RoleBinding {
        metadata: ObjectMeta {
            name: Some(role.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: user.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &b)
        .await
        .unwrap_or_else(|e| panic!("cannot create RoleBinding {ns}/{role}: {e}"));
}

/// Polls `probe` every 100 ms until it returns true, at most `timeout`; panics with `what` otherwise.
/// (The apiserver picks up new policies and bindings through an informer: eventually.)
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if probe().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
