//! GitOps: `helm template | kubectl apply`, as Argo CD and Flux's kustomize path apply a chart, run twice
//! in a row on the real kube-apiserver, for three releases side by side — the first with the webhook,
//! the second (`webhook.enabled=false`) a sweeper for a second Airflow, the third stamping by the
//! MutatingAdmissionPolicy (`stamping=policy`: the apiserver compiles its CEL). Every apply succeeds,
//! and every object is its own release's (no release overwrote another's: no name in common),
//! cluster-scoped ones included.
//!
//! Isolation on the shared apiserver: release names are random (the chart derives every name from
//! them), the namespaces fresh, and the webhook and guards select only this test's target namespaces.
//! Everything applied is deleted at the end, pass or fail (`kubectl delete -f` of the same rendering).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use deploy_tests::*;
use serde_json::Value;

struct Rendered {
    release: String,
    file: std::path::PathBuf,
    objs: Vec<Value>,
}

fn render(release: &str, ns: &str, sets: &[String]) -> Rendered {
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let yaml = helm_template_text(release, ns, &sets);
    let file = std::env::temp_dir().join(format!("kpo-gitops-{release}.yaml"));
    std::fs::write(&file, &yaml).unwrap();
    Rendered {
        release: release.to_owned(),
        file,
        objs: yaml_docs(&yaml),
    }
}

fn apply(r: &Rendered) -> Out {
    kubectl(&["apply", "-f", &r.file.display().to_string()], None)
}

/// (kind, name, namespace) → the stored object's `app.kubernetes.io/instance` label.
fn instance_of(o: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (kind, name, ns) = (
        s(&o["kind"]),
        s(&o["metadata"]["name"]),
        s(&o["metadata"]["namespace"]),
    );
    let group = s(&o["apiVersion"])
        .split_once('/')
        .map(|(g, _)| g.to_owned())
        .unwrap_or_default();
    let resource = if group.is_empty() {
        kind.clone()
    } else {
        format!("{kind}.{group}")
    };
    let mut args = vec!["get", resource.as_str(), name.as_str(), "-o", "json"];
    if !ns.is_empty() {
        args.extend(["-n", ns.as_str()]);
    }
    let o = kubectl(&args, None);
    assert!(o.ok, "{kind} {ns}/{name}: {}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    s(&v["metadata"]["labels"]["app.kubernetes.io/instance"])
}

#[tokio::test]
async fn helm_template_kubectl_apply_twice_for_three_releases() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "kpo-gitops").await;
    let airflow_a = testsupport::fresh_namespace(&client, "kpo-gitops-airflow-a").await;
    let airflow_b = testsupport::fresh_namespace(&client, "kpo-gitops-airflow-b").await;
    let airflow_c = testsupport::fresh_namespace(&client, "kpo-gitops-airflow-c").await;
    let suffix = testsupport::random_suffix(6);
    let (rel_a, rel_b, rel_c) = (
        format!("a{suffix}"),
        format!("b{suffix}"),
        format!("c{suffix}"),
    );
    let only = |target: &str| {
        format!("webhook.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={target}")
    };
    let a = render(
        &rel_a,
        &ns,
        &[
            only(&airflow_a),
            format!("targetNamespaces={{{airflow_a}}}"),
            format!("sweeper.namespace={airflow_a}"),
        ],
    );
    let b = render(
        &rel_b,
        &ns,
        &[
            "webhook.enabled=false".to_owned(),
            format!("targetNamespaces={{{airflow_b}}}"),
            format!("sweeper.namespace={airflow_b}"),
            format!("owners={{system:serviceaccount:{airflow_b}:airflow-worker}}"),
        ],
    );
    let c = render(
        &rel_c,
        &ns,
        &[
            "stamping=policy".to_owned(),
            only(&airflow_c),
            format!("targetNamespaces={{{airflow_c}}}"),
            format!("owners={{system:serviceaccount:{airflow_c}:airflow-worker}}"),
        ],
    );
    assert!(
        c.objs
            .iter()
            .any(|o| o["kind"] == "MutatingAdmissionPolicy")
    );
    let result = std::panic::catch_unwind(|| {
        for round in 1..=2 {
            for r in [&a, &b, &c] {
                let o = apply(r);
                assert!(
                    o.ok,
                    "kubectl apply #{round} of {}: {}\n{}",
                    r.release, o.stderr, o.stdout
                );
            }
        }
        for r in [&a, &b, &c] {
            assert!(!r.objs.is_empty());
            for o in &r.objs {
                assert_eq!(
                    instance_of(o),
                    r.release,
                    "{} {} was overwritten by the other release",
                    o["kind"],
                    o["metadata"]["name"]
                );
            }
        }
    });
    for r in [&c, &b, &a] {
        let o = kubectl(
            &[
                "delete",
                "--ignore-not-found",
                "--wait=false",
                "-f",
                &r.file.display().to_string(),
            ],
            None,
        );
        assert!(o.ok || result.is_err(), "kubectl delete: {}", o.stderr);
        let _ = std::fs::remove_file(&r.file);
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
