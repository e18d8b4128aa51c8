//! The kustomize steps of manifests/README.md on the real kube-apiserver: `kubectl apply -k`, then
//! the next version over it, then `kubectl delete -k`; and the hardening as the apiserver stores it
//! (Pod Security labels, NetworkPolicies with the metrics-namespace parameter, PriorityClass, spread,
//! IPv6 listen addresses).
//!
//! Isolation on the shared apiserver: a temp overlay (the way the README sets parameters) gives every
//! object a per-run name prefix and namespace, points the sweeper's Role at a fresh target namespace,
//! and narrows the webhook configuration and the guards' bindings to that namespace, so no other test's
//! pod is sent to it or judged by them.
//! No kube-controller-manager runs here: the deleted Namespace stays Terminating, and a finished Job's
//! TTL never fires (the old version's Job is deleted by hand, the README's fallback).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::path::{Path, PathBuf};

use deploy_tests::*;
use serde_json::Value;

const VERSION: &str = "0.1.0";

/// A temp overlay over manifests/overlays/interval (base + the sweeper Deployment and its metrics
/// NetworkPolicy): `version` is the image tag; a version other than the base's also renames the
/// certs Job, as the next release's manifests do.
fn overlay(prefix: &str, ns: &str, target: &str, metrics_ns: &str, version: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpo-kustomize-{prefix}-{version}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let up = "../".repeat(dir.components().count() - 1);
    let base = format!(
        "{up}{}",
        repo().join("manifests/overlays/interval").display()
    );
    let rename = if version == VERSION {
        String::new()
    } else {
        format!(
            r#"  - target: {{kind: Job, name: kpo-sweeper-certs-{VERSION}}}
    patch: |-
      - op: replace
        path: /metadata/name
        value: kpo-sweeper-certs-{version}
"#
        )
    };
    let k = format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {ns}
namePrefix: {prefix}-
resources:
  - {base}
configMapGenerator:
  - name: kpo-sweeper-params
    namespace: kpo-sweeper
    behavior: merge
    literals:
      - target-namespace={target}
      - metrics-namespace={metrics_ns}
images:
  - name: ghcr.io/kpo-sweeper/kpo-sweeper
    newTag: {version}
patches:
  - target: {{kind: MutatingWebhookConfiguration}}
    patch: |-
      - op: replace
        path: /webhooks/0/namespaceSelector
        value: {{matchLabels: {{kubernetes.io/metadata.name: {target}}}}}
  - target: {{kind: ValidatingAdmissionPolicyBinding}}
    patch: |-
      - op: replace
        path: /spec/matchResources/namespaceSelector
        value: {{matchLabels: {{kubernetes.io/metadata.name: {target}}}}}
{rename}replacements:
  - source: {{kind: ConfigMap, name: kpo-sweeper-params, fieldPath: data.target-namespace}}
    targets:
      - select: {{kind: Role, name: kpo-sweeper-sweeper}}
        fieldPaths: [metadata.namespace]
      - select: {{kind: RoleBinding, name: kpo-sweeper-sweeper}}
        fieldPaths: [metadata.namespace]
  - source: {{kind: ConfigMap, name: kpo-sweeper-params, fieldPath: data.metrics-namespace}}
    targets:
      - select: {{kind: NetworkPolicy, name: kpo-sweeper-webhook}}
        fieldPaths:
          - spec.ingress.1.from.0.namespaceSelector.matchLabels.[kubernetes.io/metadata.name]
      - select: {{kind: NetworkPolicy, name: kpo-sweeper-sweeper-metrics}}
        fieldPaths:
          - spec.ingress.0.from.0.namespaceSelector.matchLabels.[kubernetes.io/metadata.name]
"#
    );
    std::fs::write(dir.join("kustomization.yaml"), k).unwrap();
    dir
}

fn get(kind: &str, name: &str, ns: &str) -> Option<Value> {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    let o = kubectl(&args, None);
    if o.ok {
        return Some(serde_json::from_str(&o.stdout).unwrap());
    }
    assert!(
        o.stderr.contains("NotFound"),
        "kubectl {args:?}: {}",
        o.stderr
    );
    None
}

/// (kind with group, name, namespace) of each object of a rendering.
fn objects(dir: &Path) -> Vec<(String, String, String)> {
    kustomize(dir)
        .iter()
        .map(|o| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let api = s(&o["apiVersion"]);
            let kind = match api.split_once('/') {
                Some((g, _)) => format!("{}.{g}", s(&o["kind"])),
                None => s(&o["kind"]),
            };
            (
                kind,
                s(&o["metadata"]["name"]),
                s(&o["metadata"]["namespace"]),
            )
        })
        .collect()
}

#[test]
fn the_certs_job_is_named_after_the_image_tag() {
    let objs = kustomize(&repo().join("manifests/base"));
    let job = objs
        .iter()
        .find(|o| o["kind"] == "Job")
        .expect("the certs Job");
    let image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    let tag = image.rsplit(':').next().unwrap();
    assert_eq!(tag, VERSION);
    assert_eq!(
        job["metadata"]["name"],
        format!("kpo-sweeper-certs-{tag}").as_str()
    );
}

#[tokio::test]
async fn apply_upgrade_delete_and_hardening_as_stored() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = testsupport::client().await;
    let target = testsupport::fresh_namespace(&client, "kpo-kz-target").await;
    let prometheus = testsupport::fresh_namespace(&client, "kpo-kz-prom").await;
    let prefix = format!("t{}", testsupport::random_suffix(6));
    let ns = format!("{prefix}-kpo-sweeper");
    let v1 = overlay(&prefix, &ns, &target, &prometheus, VERSION);
    let v1_dir = v1.display().to_string();

    let o = kubectl(&["apply", "-k", &v1_dir], None);
    assert!(o.ok, "kubectl apply -k: {}", o.stderr);

    // Pod Security on the namespace.
    let nso = get("namespace", &ns, "").unwrap();
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            nso["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}")],
            "restricted"
        );
    }
    // NetworkPolicies: default deny, 8443 from anywhere, metrics only from the parameter's namespace.
    let deny = get(
        "networkpolicy",
        &format!("{prefix}-kpo-sweeper-default-deny-ingress"),
        &ns,
    )
    .unwrap();
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    assert!(deny["spec"]["ingress"].is_null());
    let wh = get(
        "networkpolicy",
        &format!("{prefix}-kpo-sweeper-webhook"),
        &ns,
    )
    .unwrap();
    let ing = wh["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ing.len(), 2);
    assert!(ing[0]["from"].is_null(), "8443 from anywhere: {}", ing[0]);
    assert_eq!(ing[0]["ports"][0]["port"], 8443);
    assert_eq!(
        ing[1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        prometheus.as_str()
    );
    assert_eq!(ing[1]["ports"][0]["port"], 9090);
    let sw = get(
        "networkpolicy",
        &format!("{prefix}-kpo-sweeper-sweeper-metrics"),
        &ns,
    )
    .unwrap();
    assert_eq!(sw["spec"]["ingress"][0]["ports"][0]["port"], 9091);
    assert_eq!(
        sw["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        prometheus.as_str()
    );
    // PriorityClass, spread, IPv6-capable listen addresses.
    let pc = get(
        "priorityclass",
        &format!("{prefix}-kpo-sweeper-webhook"),
        "",
    )
    .unwrap();
    assert_eq!(pc["value"], 1000000);
    let dep = get("deployment", &format!("{prefix}-kpo-sweeper-webhook"), &ns).unwrap();
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], pc["metadata"]["name"]);
    let spread: Vec<(String, String)> = pod["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["topologyKey"].as_str().unwrap().to_owned(),
                c["whenUnsatisfiable"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        spread,
        [
            (
                "kubernetes.io/hostname".to_owned(),
                "DoNotSchedule".to_owned()
            ),
            (
                "topology.kubernetes.io/zone".to_owned(),
                "ScheduleAnyway".to_owned()
            )
        ]
    );
    let args = pod["containers"][0]["args"].to_string();
    assert!(args.contains("--listen=[::]:8443") && args.contains("--metrics-listen=[::]:9090"));
    let role = get("role", &format!("{prefix}-kpo-sweeper-sweeper"), &target).unwrap();
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["list", "delete"])
    );

    // The next version with the old Job's name would be refused (a Job's template is immutable):
    // that is why the Job's name carries the version.
    let bad_dir = std::env::temp_dir().join(format!("kpo-kustomize-{prefix}-same-name"));
    let _ = std::fs::remove_dir_all(&bad_dir);
    std::fs::create_dir_all(&bad_dir).unwrap();
    std::fs::write(
        bad_dir.join("kustomization.yaml"),
        std::fs::read_to_string(v1.join("kustomization.yaml"))
            .unwrap()
            .replace(&format!("newTag: {VERSION}"), "newTag: 0.2.0"),
    )
    .unwrap();
    let o = kubectl(&["apply", "-k", &bad_dir.display().to_string()], None);
    assert!(
        !o.ok && o.stderr.contains("field is immutable"),
        "a changed template under the same Job name is refused: {}",
        o.stderr
    );

    // The upgrade as the README says: apply the next version's manifests.
    let v2 = overlay(&prefix, &ns, &target, &prometheus, "0.2.0");
    let v2_dir = v2.display().to_string();
    let o = kubectl(&["apply", "-k", &v2_dir], None);
    assert!(o.ok, "kubectl apply -k (next version): {}", o.stderr);
    let job2 = get("job", &format!("{prefix}-kpo-sweeper-certs-0.2.0"), &ns).expect("the new Job");
    assert_eq!(
        job2["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/kpo-sweeper/kpo-sweeper:0.2.0"
    );
    let dep = get("deployment", &format!("{prefix}-kpo-sweeper-webhook"), &ns).unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/kpo-sweeper/kpo-sweeper:0.2.0"
    );
    // Without a TTL controller here, the finished old Job is deleted by hand (README's fallback).
    let old_job = format!("{prefix}-kpo-sweeper-certs-{VERSION}");
    let o = kubectl(&["-n", &ns, "delete", "job", &old_job], None);
    assert!(o.ok, "{}", o.stderr);

    // Uninstall: every object is gone but the namespace, which stays Terminating here.
    let o = kubectl(&["delete", "-k", &v2_dir, "--wait=false"], None);
    assert!(o.ok, "kubectl delete -k: {}", o.stderr);
    for (kind, name, obj_ns) in objects(&v2) {
        match get(&kind, &name, &obj_ns) {
            None => {}
            Some(o) if kind == "Namespace" => {
                assert!(o["metadata"]["deletionTimestamp"].is_string(), "{o}")
            }
            Some(_) => panic!("{kind} {obj_ns}/{name} is left behind after kubectl delete -k"),
        }
    }
    assert!(get("job", &old_job, &ns).is_none());
}
