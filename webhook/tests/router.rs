//! The router, driven with `tower::ServiceExt::oneshot` (no port, no TLS): every case of the stamp and
//! of bad input. Responses are checked the strong way: the returned JSON patch is applied with
//! `json-patch` to the pod that was sent, and the patched pod is compared with what the stamp must be.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use tikey::TiKey;
use tower::ServiceExt as _;
use webhook::tls::Readiness;
use webhook::{AppState, MAX_BODY_BYTES};

const NOW: i64 = 1_764_000_000;
const CREATOR: &str = "system:serviceaccount:airflow:airflow-worker";

fn state() -> AppState {
    AppState::new(Readiness::ready()).with_clock(|| NOW)
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn send(state: &AppState, req: Request<Body>) -> Reply {
    let resp = webhook::router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        content_type,
        body,
    }
}

async fn post_raw(state: &AppState, body: impl Into<Body>, content_type: Option<&str>) -> Reply {
    let mut req = Request::post("/mutate");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    send(state, req.body(body.into()).unwrap()).await
}

async fn post(state: &AppState, review: &Value) -> Reply {
    post_raw(
        state,
        serde_json::to_vec(review).unwrap(),
        Some("application/json"),
    )
    .await
}

/// An AdmissionReview as the apiserver sends it, for `object` (null for DELETE).
fn review(object: Value, operation: &str) -> Value {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Pod")
        .to_owned();
    let resource = if kind == "Pod" {
        "pods".to_owned()
    } else {
        format!("{}s", kind.to_lowercase())
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b7c2d1e-uid",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "requestKind": {"group": "", "version": "v1", "kind": kind},
            "requestResource": {"group": "", "version": "v1", "resource": resource},
            "name": "p", "namespace": "airflow", "operation": operation,
            "userInfo": {"username": CREATOR, "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

fn pod(labels: &Value) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "namespace": "airflow", "labels": labels},
        "spec": {"containers": [{"name": "base", "image": "alpine"}]}
    })
}

fn kpo_labels() -> Value {
    json!({
        "kubernetes_pod_operator": "True", "airflow_version": "3.3.2", "airflow_kpo_in_cluster": "True",
        "dag_id": "billing", "task_id": "extract", "run_id": "manual__2026-01-01T0000000000-abcdef012",
        "try_number": "3"
    })
}

/// The response's `response`, checked for what every answer has: `allowed: true`, the uid echoed.
fn response_of(reply: &Reply) -> &Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(reply.body["kind"], "AdmissionReview");
    let r = &reply.body["response"];
    assert_eq!(r["allowed"], true);
    assert_eq!(r["uid"], "0b7c2d1e-uid");
    assert!(r.get("status").is_none_or(|s| s.get("code").is_none()));
    r
}

/// Decodes the base64 JSON patch and applies it to `object`.
fn apply(object: &Value, response: &Value) -> (Value, Vec<Value>) {
    assert_eq!(response["patchType"], "JSONPatch");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(
            response["patch"]
                .as_str()
                .expect("patch is a base64 string"),
        )
        .unwrap();
    let ops: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
    let mut doc = object.clone();
    json_patch::patch(&mut doc, &patch).expect("the patch applies to the object sent");
    (doc, ops)
}

fn assert_no_patch(reply: &Reply) {
    let r = response_of(reply);
    for field in ["patch", "patchType", "warnings", "auditAnnotations"] {
        assert!(r.get(field).is_none(), "unexpected {field} in {r}");
    }
}

/// What a full stamp adds to `original`.
fn stamped(original: &Value, ti_key: &str, try_number: &str) -> Value {
    let mut want = original.clone();
    let meta = want["metadata"].as_object_mut().unwrap();
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap();
    ann.insert("kpo-sweeper.io/ti-key".into(), json!(ti_key));
    ann.insert("kpo-sweeper.io/try-number".into(), json!(try_number));
    ann.insert("kpo-sweeper.io/admitted-at".into(), json!(NOW.to_string()));
    ann.insert("kpo-sweeper.io/created-by".into(), json!(CREATOR));
    meta["labels"]["kpo-sweeper.io/stamped"] = json!("v1");
    want
}

#[derive(serde::Deserialize)]
struct Golden {
    cases: Vec<GoldenCase>,
}

#[derive(serde::Deserialize)]
struct GoldenCase {
    labels: BTreeMap<String, String>,
    input: GoldenInput,
}

#[derive(serde::Deserialize)]
struct GoldenInput {
    dag_id: String,
    task_id: String,
    run_id: String,
    map_index: i64,
    try_number: i64,
}

fn golden() -> Golden {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tikey/golden/kpo_labels.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let g: Golden = serde_json::from_str(&text).unwrap();
    assert!(
        g.cases.len() >= 100,
        "golden file has {} cases",
        g.cases.len()
    );
    g
}

#[tokio::test]
async fn every_golden_kpo_label_set_gets_the_full_stamp() {
    let state = state();
    for case in golden().cases {
        let labels = serde_json::to_value(&case.labels).unwrap();
        let pod = pod(&labels);
        let reply = post(&state, &review(pod.clone(), "CREATE")).await;
        let r = response_of(&reply);
        let i = &case.input;
        // The key made from the pod's labels equals the one the sweeper makes from the DB row.
        let want_key = TiKey::from_db(&i.dag_id, &i.task_id, &i.run_id, i.map_index).encode();
        let (patched, _) = apply(&pod, r);
        assert_eq!(
            patched,
            stamped(&pod, &want_key, &i.try_number.to_string()),
            "labels {:?}",
            case.labels
        );
        assert_eq!(
            r["auditAnnotations"],
            json!({"ti-key": want_key, "try-number": i.try_number.to_string(),
                   "admitted-at": NOW.to_string(), "created-by": CREATOR})
        );
        assert!(r.get("warnings").is_none());
    }
    assert!(state.metrics().requests("stamped") >= 100);
}

#[tokio::test]
async fn realistic_kpo_pod_is_stamped_and_nothing_else_changes() {
    let state = state();
    let text = include_str!("data/kpo_pod_review.json");
    let review: Value = serde_json::from_str(text).unwrap();
    let pod = review["request"]["object"].clone();
    let reply = post_raw(&state, text, Some("application/json")).await;
    let r = &reply.body["response"];
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(r["uid"], review["request"]["uid"]);
    assert_eq!(r["allowed"], true);
    let (patched, ops) = apply(&pod, r);
    let key = "billing_hourly_v10/extract_report.billing_gcs.daily_score/scheduled__2026-11-19T0100000000-7a3c1e5b2/7";
    assert_eq!(patched, stamped(&pod, key, "2"));
    // No annotations on the pod: one op creates the map, one adds the label.
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(ops[0]["path"], "/metadata/annotations");
    assert_eq!(ops[1]["path"], "/metadata/labels/kpo-sweeper.io~1stamped");
}

#[tokio::test]
async fn existing_annotations_get_escaped_adds_and_stale_stamps_are_overwritten() {
    let state = state();
    let mut p = pod(&kpo_labels());
    p["metadata"]["labels"]["kpo-sweeper.io/stamped"] = json!("v0");
    p["metadata"]["annotations"] = json!({
        "team": "billing",
        "kpo-sweeper.io/ti-key": "old/old/old/-1",
        "kpo-sweeper.io/try-number": "1",
        "kpo-sweeper.io/admitted-at": "1",
        "kpo-sweeper.io/created-by": "someone-else"
    });
    let reply = post(&state, &review(p.clone(), "CREATE")).await;
    let (patched, ops) = apply(&p, response_of(&reply));
    let key = "billing/extract/manual__2026-01-01T0000000000-abcdef012/-1";
    assert_eq!(patched, stamped(&p, key, "3"));
    assert_eq!(patched["metadata"]["annotations"]["team"], "billing");
    let paths: Vec<&str> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/metadata/annotations/kpo-sweeper.io~1ti-key",
            "/metadata/annotations/kpo-sweeper.io~1try-number",
            "/metadata/annotations/kpo-sweeper.io~1admitted-at",
            "/metadata/annotations/kpo-sweeper.io~1created-by",
            "/metadata/labels/kpo-sweeper.io~1stamped",
        ]
    );
    assert!(ops.iter().all(|o| o["op"] == "add"));
}

#[tokio::test]
async fn absent_null_or_empty_annotations_are_handled() {
    let state = state();
    let key = "billing/extract/manual__2026-01-01T0000000000-abcdef012/-1";
    for annotations in [None, Some(Value::Null), Some(json!({}))] {
        let mut p = pod(&kpo_labels());
        if let Some(a) = &annotations {
            p["metadata"]["annotations"] = a.clone();
        }
        let reply = post(&state, &review(p.clone(), "CREATE")).await;
        let (patched, _) = apply(&p, response_of(&reply));
        let mut base = p.clone();
        base["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        assert_eq!(
            patched,
            stamped(&base, key, "3"),
            "annotations {annotations:?}"
        );
    }
}

#[tokio::test]
async fn mapped_task_key_carries_the_map_index() {
    let state = state();
    let mut labels = kpo_labels();
    labels["map_index"] = json!("12");
    let p = pod(&labels);
    let reply = post(&state, &review(p.clone(), "CREATE")).await;
    let (patched, _) = apply(&p, response_of(&reply));
    assert_eq!(
        patched["metadata"]["annotations"]["kpo-sweeper.io/ti-key"],
        "billing/extract/manual__2026-01-01T0000000000-abcdef012/12"
    );
}

#[tokio::test]
async fn kpo_pod_without_identity_gets_epoch_creator_and_a_warning() {
    let state = state();
    let without = |k: &str| {
        let mut l = kpo_labels();
        l.as_object_mut().unwrap().remove(k);
        l
    };
    let mut legacy = without("run_id");
    legacy["execution_date"] = json!("2024-01-01T0000000000-abc");
    let mut bad_try = kpo_labels();
    bad_try["try_number"] = json!("one");
    let mut bad_map = kpo_labels();
    bad_map["map_index"] = json!("+1");
    let cases = [
        (without("run_id"), "no `run_id` label"),
        (without("dag_id"), "no `dag_id` label"),
        (without("try_number"), "no `try_number` label"),
        (legacy, "provider < 3.1.0"),
        (bad_try, "label `try_number` is not an integer"),
        (bad_map, "label `map_index` is not an integer"),
    ];
    for (labels, why) in cases {
        let mut p = pod(&labels);
        // Stale identity from a copied manifest must not survive.
        p["metadata"]["annotations"] = json!({"kpo-sweeper.io/ti-key": "a/b/c/-1", "kpo-sweeper.io/try-number": "9", "x": "y"});
        let reply = post(&state, &review(p.clone(), "CREATE")).await;
        let r = response_of(&reply);
        let (patched, _) = apply(&p, r);
        let mut want = p.clone();
        want["metadata"]["annotations"] = json!({
            "x": "y",
            "kpo-sweeper.io/admitted-at": NOW.to_string(),
            "kpo-sweeper.io/created-by": CREATOR,
        });
        want["metadata"]["labels"]["kpo-sweeper.io/stamped"] = json!("v1");
        assert_eq!(patched, want, "{why}");
        let warnings = r["warnings"].as_array().expect("a warning");
        assert_eq!(warnings.len(), 1);
        let w = warnings[0].as_str().unwrap();
        assert!(w.contains(why), "{w:?} should say {why:?}");
        assert!(w.len() <= 120, "{w:?}");
        assert_eq!(
            r["auditAnnotations"],
            json!({"admitted-at": NOW.to_string(), "created-by": CREATOR})
        );
    }
    assert_eq!(state.metrics().requests("unidentifiable"), 6);
    assert_eq!(state.metrics().requests("stamped"), 0);
}

#[tokio::test]
async fn dry_run_creates_are_stamped_too() {
    let state = state();
    let p = pod(&kpo_labels());
    let mut rv = review(p.clone(), "CREATE");
    rv["request"]["dryRun"] = json!(true);
    let reply = post(&state, &rv).await;
    let (patched, _) = apply(&p, response_of(&reply));
    assert_eq!(
        patched["metadata"]["annotations"]["kpo-sweeper.io/ti-key"],
        "billing/extract/manual__2026-01-01T0000000000-abcdef012/-1"
    );
}

#[tokio::test]
async fn non_pods_non_creates_and_non_kpo_pods_get_no_patch() {
    let state = state();
    let mut cases = Vec::new();
    // Not KPO: label absent, another value, no labels at all, null labels.
    let mut not_kpo = kpo_labels();
    not_kpo["kubernetes_pod_operator"] = json!("False");
    cases.push(review(pod(&not_kpo), "CREATE"));
    let mut lower = kpo_labels();
    lower["kubernetes_pod_operator"] = json!("true");
    cases.push(review(pod(&lower), "CREATE"));
    let mut plain = kpo_labels();
    plain
        .as_object_mut()
        .unwrap()
        .remove("kubernetes_pod_operator");
    cases.push(review(pod(&plain), "CREATE"));
    let mut no_labels = pod(&json!({}));
    no_labels["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    cases.push(review(no_labels, "CREATE"));
    cases.push(review(pod(&Value::Null), "CREATE"));
    // KPO pods, but not a CREATE.
    for op in ["UPDATE", "CONNECT"] {
        cases.push(review(pod(&kpo_labels()), op));
    }
    cases.push(review(Value::Null, "DELETE"));
    // Not a pod.
    cases.push(review(
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "labels": kpo_labels()}}),
        "CREATE",
    ));
    // A pod subresource CREATE (eviction, binding).
    let mut eviction = review(
        json!({"kind": "Eviction", "apiVersion": "policy/v1", "metadata": {"name": "p", "labels": kpo_labels()}}),
        "CREATE",
    );
    eviction["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "pods"});
    eviction["request"]["subResource"] = json!("eviction");
    cases.push(eviction);
    let mut binding = review(pod(&kpo_labels()), "CREATE");
    binding["request"]["subResource"] = json!("binding");
    cases.push(binding);
    let n = cases.len() as u64;
    for rv in cases {
        let reply = post(&state, &rv).await;
        assert_no_patch(&reply);
    }
    assert_eq!(state.metrics().requests("not-kpo"), n);
}

#[tokio::test]
async fn escaped_json_and_field_order_are_accepted() {
    let state = state();
    // Go's encoding/json escapes <, > and &; the object may come before the kind.
    let body = r#"{"request":{"object":{"metadata":{"labels":{"kubernetes_pod_operator":"True","dag_id":"d","task_id":"t","run_id":"r","try_number":"1"}}},
        "operation":"CREATE","uid":"u\u00261","userInfo":{"username":"alice\u003cadmin\u003e"},
        "resource":{"group":"","version":"v1","resource":"pods"},"kind":{"group":"","version":"v1","kind":"Pod"}},
        "kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
    let reply = post_raw(&state, body, Some("application/json; charset=utf-8")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let r = &reply.body["response"];
    assert_eq!(r["uid"], "u&1");
    assert_eq!(r["auditAnnotations"]["created-by"], "alice<admin>");
    assert_eq!(r["auditAnnotations"]["ti-key"], "d/t/r/-1");
}

async fn assert_bad_request(state: &AppState, reply: Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
    let msg = reply.body["error"].as_str().expect("an error message");
    assert!(
        !msg.is_empty() && !msg.contains('\n') && msg.len() < 400,
        "{msg:?}"
    );
    let _ = state;
}

#[tokio::test]
async fn bad_input_is_a_400_with_one_line_reason() {
    let state = state();
    let good = serde_json::to_vec(&review(pod(&kpo_labels()), "CREATE")).unwrap();

    let r = post_raw(&state, "not json {", Some("application/json")).await;
    assert_bad_request(&state, r, "not-admission-review").await;
    let r = post_raw(&state, "", Some("application/json")).await;
    assert_bad_request(&state, r, "not-admission-review").await;
    let r = post_raw(&state, "[1,2]", Some("application/json")).await;
    assert_bad_request(&state, r, "not-admission-review").await;
    let r = post_raw(&state, r#"{"foo": 1}"#, Some("application/json")).await;
    assert_bad_request(&state, r, "wrong-review-type").await;
    let mut beta = review(pod(&kpo_labels()), "CREATE");
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let r = post(&state, &beta).await;
    assert_bad_request(&state, r, "wrong-review-type").await;
    let r = post_raw(
        &state,
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        Some("application/json"),
    )
    .await;
    assert_bad_request(&state, r, "missing-request").await;
    let r = post_raw(
        &state,
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#,
        Some("application/json"),
    )
    .await;
    assert_bad_request(&state, r, "missing-request").await;
    // A request without uid (or with a wrongly typed one) cannot be answered.
    let mut no_uid = review(pod(&kpo_labels()), "CREATE");
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let r = post(&state, &no_uid).await;
    assert_bad_request(&state, r, "not-admission-review").await;
    let mut bad_labels = review(pod(&kpo_labels()), "CREATE");
    bad_labels["request"]["object"]["metadata"]["labels"]["dag_id"] = json!(5);
    let r = post(&state, &bad_labels).await;
    assert_bad_request(&state, r, "not-admission-review").await;

    // Content type.
    let r = post_raw(&state, good.clone(), Some("text/plain")).await;
    assert_bad_request(&state, r, "unsupported-media-type").await;
    let r = post_raw(&state, good.clone(), Some("application/yaml")).await;
    assert_bad_request(&state, r, "unsupported-media-type").await;
    let r = post_raw(&state, good.clone(), None).await;
    assert_bad_request(&state, r, "unsupported-media-type").await;

    // Over 3 MiB: read up to the limit (no content-length here), or refused on the declared length.
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let r = post_raw(&state, big, Some("application/json")).await;
    assert_bad_request(&state, r, "body-too-large").await;
    let declared = Request::post("/mutate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, (MAX_BODY_BYTES + 1).to_string())
        .body(Body::from(good.clone()))
        .unwrap();
    let r = send(&state, declared).await;
    assert_bad_request(&state, r, "body-too-large").await;
    // Exactly at the limit is read (and then judged on content).
    let mut at_limit = good.clone();
    at_limit.resize(MAX_BODY_BYTES, b' ');
    let r = post_raw(&state, at_limit, Some("application/json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    assert_eq!(state.metrics().requests("bad-request"), 14);
    assert_eq!(state.metrics().requests("stamped"), 1);
}

#[tokio::test]
async fn routing_errors_are_json_and_never_500() {
    let state = state();
    let r = send(&state, Request::get("/mutate").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["reason"], "method-not-allowed");
    let r = send(&state, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["reason"], "not-found");
    let r = send(
        &state,
        Request::post("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Routing errors are not admission requests.
    assert_eq!(state.metrics().requests("bad-request"), 0);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let not_ready = AppState::new(Readiness::default());
    let r = send(
        &not_ready,
        Request::get("/readyz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["reason"], "not-ready");
    let r = send(
        &not_ready,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let state = state();
    let r = send(&state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    post(&state, &review(pod(&kpo_labels()), "CREATE")).await;
    post_raw(&state, "x", Some("application/json")).await;
    let r = send(
        &state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/openmetrics-text"));
    let text = r.body.as_str().unwrap();
    for line in [
        r#"kpo_webhook_admission_requests_total{outcome="stamped"} 1"#,
        r#"kpo_webhook_admission_requests_total{outcome="bad-request"} 1"#,
        r#"kpo_webhook_admission_requests_total{outcome="not-kpo"} 0"#,
        r#"kpo_webhook_admission_requests_total{outcome="unidentifiable"} 0"#,
        r#"kpo_webhook_bad_requests_total{reason="not-admission-review"} 1"#,
        "kpo_webhook_admission_duration_seconds_count 2",
        r#"kpo_webhook_tls_reloads_total{result="error"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // The plain-HTTP router serves health and metrics, not /mutate.
    let plain = webhook::api::plain_router(state.clone());
    let resp = plain
        .oneshot(Request::post("/mutate").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
