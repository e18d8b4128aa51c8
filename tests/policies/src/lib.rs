//! kpo-sweeper's admission policies on the real kube-apiserver of `tests/env/up`: the
//! ValidatingAdmissionPolicy guards of `manifests/base/guards.yaml` (`tests/guards.rs`) and the
//! MutatingAdmissionPolicy of `manifests/overlays/admission-policy` (`tests/stamp_policy.rs`), and a
//! pod-create latency benchmark (`examples/policy_bench.rs`).
//!
//! This library holds what those share: what **our webhook** writes for a pod (its real router, driven
//! with `tower::ServiceExt::oneshot`; the returned JSON patch applied with `json-patch`), the stamp of a
//! pod, KPO pods as JSON, and tikey's golden label sets. The policies themselves are installed with
//! [`testsupport::admission`].
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use tikey::stamp;
use tower::ServiceExt as _;
use webhook::AppState;
use webhook::tls::Readiness;

pub mod hook;

/// The identity Airflow workers create pods as (impersonated in the tests).
pub const WORKER: &str = "system:serviceaccount:airflow:airflow-worker";
pub const WORKER_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:airflow",
    "system:authenticated",
];
/// The sweeper's identity as manifests/base deploys it (the sweeper-scope guard names it).
pub const SWEEPER: &str = "system:serviceaccount:kpo-sweeper:kpo-sweeper-sweeper";
pub const SWEEPER_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:kpo-sweeper",
    "system:authenticated",
];

/// `manifests/base/guards.yaml`.
pub fn guards_manifest() -> PathBuf {
    testsupport::admission::repo_root().join("manifests/base/guards.yaml")
}

/// `manifests/overlays/admission-policy/stamp-policy.yaml`.
pub fn stamp_policy_manifest() -> PathBuf {
    testsupport::admission::repo_root()
        .join("manifests/overlays/admission-policy/stamp-policy.yaml")
}

/// A pod, as JSON, with `labels` and (when given) `annotations`; one container, nothing else.
pub fn pod(name: &str, labels: &BTreeMap<String, String>, annotations: Option<&Value>) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "base", "image": "busybox:1.36"}], "restartPolicy": "Never"}
    });
    if let Some(a) = annotations {
        p["metadata"]["annotations"] = a.clone();
    }
    p
}

/// The label sets KPO (cncf-kubernetes 10.25.0) built in tikey's golden data, `tikey/golden/kpo_labels.json`.
pub fn golden_label_sets() -> Vec<BTreeMap<String, String>> {
    let path = testsupport::admission::repo_root().join("tikey/golden/kpo_labels.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let sets: Vec<BTreeMap<String, String>> = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| serde_json::from_value(c["labels"].clone()).expect("labels are strings"))
        .collect();
    assert_eq!(
        Some(sets.len() as u64),
        v["count"].as_u64(),
        "golden case count"
    );
    sets
}

/// The `kpo-sweeper.io/` annotations and labels of a pod (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StampParts {
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The `kpo-sweeper.io/` parts of `pod`.
pub fn stamp_of(pod: &Value) -> StampParts {
    let ours = |field: &str| -> BTreeMap<String, String> {
        pod["metadata"][field]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(stamp::PREFIX))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    StampParts {
        annotations: ours("annotations"),
        labels: ours("labels"),
    }
}

/// The AdmissionReview the apiserver sends for the CREATE of `pod` in `namespace` by `username`.
pub fn create_review(pod: &Value, namespace: &str, username: &str) -> Value {
    let mut object = pod.clone();
    object["metadata"]["namespace"] = json!(namespace);
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// What our webhook makes of the CREATE of `pod` by `username`: its real router answers the review, and
/// the JSON patch it returns (if any) is applied to `pod`. Returns the patched pod and the warnings.
pub async fn webhook_stamped(pod: &Value, namespace: &str, username: &str) -> (Value, Vec<String>) {
    let state = AppState::new(Readiness::ready());
    let body = serde_json::to_vec(&create_review(pod, namespace, username)).unwrap();
    let req = Request::post("/mutate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = webhook::router(state).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let review: Value = serde_json::from_slice(&bytes).unwrap();
    let r = &review["response"];
    assert_eq!(r["allowed"], true, "the webhook always allows: {r}");
    let mut out = pod.clone();
    if let Some(p) = r["patch"].as_str() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p)
            .expect("base64 patch");
        let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("a JSON patch");
        json_patch::patch(&mut out, &patch).expect("the webhook's patch applies to the pod sent");
    }
    let warnings = r["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    (out, warnings)
}

/// `parts` without `kpo-sweeper.io/admitted-at`: the one annotation the policy cannot write (CEL has
/// no clock).
pub fn without_admitted_at(mut parts: StampParts) -> StampParts {
    parts.annotations.remove(stamp::ADMITTED_AT);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhook_stamp_of_a_golden_pod_is_tikeys() {
        let labels = golden_label_sets().remove(0);
        let (out, warnings) = webhook_stamped(&pod("p", &labels, None), "ns", WORKER).await;
        assert!(warnings.is_empty());
        let s = stamp_of(&out);
        let (key, try_number) = tikey::TiKey::from_pod_labels(&labels).unwrap();
        assert_eq!(s.annotations[stamp::TI_KEY], key.encode());
        assert_eq!(s.annotations[stamp::TRY_NUMBER], try_number.to_string());
        assert_eq!(s.annotations[stamp::CREATED_BY], WORKER);
        assert!(s.annotations.contains_key(stamp::ADMITTED_AT));
        assert_eq!(s.labels[stamp::STAMPED_LABEL], stamp::STAMPED_VALUE);
        assert!(
            !without_admitted_at(s)
                .annotations
                .contains_key(stamp::ADMITTED_AT)
        );
    }
}
