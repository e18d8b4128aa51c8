//! `manifests/overlays/admission-policy`: the MutatingAdmissionPolicy stamps pods in the real
//! kube-apiserver exactly as our webhook does, minus `kpo-sweeper.io/admitted-at` (CEL has no clock).
//!
//! Every KPO label set of tikey's golden data (made by the real cncf-kubernetes provider), and the edge
//! cases the webhook handles (no map_index, legacy `execution_date` pods, missing or malformed
//! try_number/map_index, integers with leading zeros or past int64, stale or forged stamps at CREATE,
//! annotations absent or present, not-KPO pods), are created through the apiserver with the policy
//! installed (scoped to the test's namespace), as the Airflow worker's identity (impersonated). Each
//! stored pod's labels and annotations are compared with the pod our webhook's router makes of the same
//! request.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use policies::*;
use serde_json::{Value, json};
use testsupport::admission;
use tikey::stamp;

const OTHER: &str = "system:serviceaccount:other-airflow:airflow-worker";
const OTHER_GROUPS: &[&str] = &["system:serviceaccounts", "system:authenticated"];

/// Creates `pod` through `api` and returns the stored object as JSON.
async fn create(api: &Api<Pod>, pod: &Value) -> Value {
    let p: Pod = serde_json::from_value(pod.clone()).unwrap();
    let created = api
        .create(&PostParams::default(), &p)
        .await
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", pod["metadata"]["name"]));
    serde_json::to_value(created).unwrap()
}

/// The metadata maps the policy and the webhook both own: all labels, and all annotations but
/// `kpo-sweeper.io/admitted-at`.
fn comparable(pod: &Value) -> (Value, Value) {
    let mut ann = pod["metadata"]["annotations"].clone();
    if let Some(a) = ann.as_object_mut() {
        a.remove(stamp::ADMITTED_AT);
        if a.is_empty() {
            ann = Value::Null;
        }
    }
    (pod["metadata"]["labels"].clone(), ann)
}

/// Waits until the apiserver applies the policy in `ns` (server-side dry-run creates of a KPO pod).
async fn wait_until_stamping(api: &Api<Pod>) {
    let probe: Pod =
        serde_json::from_value(pod("policy-probe", &golden_label_sets()[0], None)).unwrap();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    admission::wait_until(
        "the MutatingAdmissionPolicy stamps",
        Duration::from_secs(30),
        || {
            let (api, probe, dry) = (api.clone(), probe.clone(), dry.clone());
            async move {
                let p = api.create(&dry, &probe).await.unwrap();
                p.metadata
                    .labels
                    .is_some_and(|l| l.contains_key(stamp::STAMPED_LABEL))
            }
        },
    )
    .await;
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Edge cases beyond the golden sets: (name, labels, annotations at CREATE).
fn edge_cases() -> Vec<(&'static str, BTreeMap<String, String>, Option<Value>)> {
    let base = labels(&[
        ("kubernetes_pod_operator", "True"),
        ("airflow_version", "3.3.2"),
        ("airflow_kpo_in_cluster", "False"),
        ("dag_id", "billing.hourly"),
        ("task_id", "extract_gcs"),
        ("run_id", "scheduled__2026-11-19T0100000000-5d3f1b2a0"),
        ("try_number", "2"),
    ]);
    let with = |edits: &[(&str, Option<&str>)]| {
        let mut l = base.clone();
        for (k, v) in edits {
            match v {
                Some(v) => l.insert((*k).to_owned(), (*v).to_owned()),
                None => l.remove(*k),
            };
        }
        l
    };
    let forged = json!({
        stamp::TI_KEY: "other/dag/run/-1",
        stamp::TRY_NUMBER: "9",
        stamp::ADMITTED_AT: "1000",
        stamp::CREATED_BY: "system:serviceaccount:x:forger",
        "team": "data"
    });
    vec![
        ("unmapped", base.clone(), None),
        ("mapped", with(&[("map_index", Some("12"))]), None),
        ("map-zero", with(&[("map_index", Some("0"))]), None),
        (
            "other-annotations",
            base.clone(),
            Some(json!({"team": "data"})),
        ),
        ("empty-annotations", base.clone(), Some(json!({}))),
        ("forged-stamp", base.clone(), Some(forged.clone())),
        (
            "legacy-execution-date",
            with(&[
                ("run_id", None),
                ("execution_date", Some("2021-01-01T0000000000-8b8f15d9c")),
            ]),
            None,
        ),
        (
            "legacy-with-stale-stamp",
            with(&[
                ("run_id", None),
                ("execution_date", Some("2021-01-01T0000000000-8b8f15d9c")),
            ]),
            Some(forged.clone()),
        ),
        ("no-dag-id", with(&[("dag_id", None)]), None),
        ("no-task-id", with(&[("task_id", None)]), Some(forged)),
        ("no-try-number", with(&[("try_number", None)]), None),
        ("try-not-int", with(&[("try_number", Some("one"))]), None),
        (
            "try-leading-zeros",
            with(&[("try_number", Some("007"))]),
            None,
        ),
        (
            "try-many-zeros",
            with(&[(
                "try_number",
                Some("000000000000000000000000000000000000000000000000000000000000003"),
            )]),
            None,
        ),
        ("try-zero", with(&[("try_number", Some("0"))]), None),
        (
            "try-int64-max",
            with(&[("try_number", Some("9223372036854775807"))]),
            None,
        ),
        (
            "try-past-int64",
            with(&[("try_number", Some("9223372036854775808"))]),
            None,
        ),
        (
            "try-20-digits",
            with(&[("try_number", Some("12345678901234567890"))]),
            None,
        ),
        (
            "map-leading-zeros",
            with(&[("map_index", Some("0042"))]),
            None,
        ),
        ("map-not-int", with(&[("map_index", Some("1.5"))]), None),
        (
            "map-past-int64",
            with(&[("map_index", Some("99999999999999999999"))]),
            None,
        ),
        ("empty-dag-id", with(&[("dag_id", Some(""))]), None),
        (
            "kpo-lowercase-true",
            with(&[("kubernetes_pod_operator", Some("true"))]),
            None,
        ),
        (
            "not-kpo",
            with(&[("kubernetes_pod_operator", None)]),
            Some(json!({"team": "data"})),
        ),
    ]
}

/// Runs `body`, then removes the scoped policy and the test's pods whatever happened, then re-raises.
async fn with_policy<F, Fut>(admin: &Client, ns: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let objs = admission::manifest_objects(&stamp_policy_manifest());
    let installed = admission::install_scoped(admin, &objs, ns, &BTreeMap::new()).await;
    let result = tokio::spawn(body(ns.to_owned())).await;
    installed.remove().await;
    let _ = Api::<Pod>::namespaced(admin.clone(), ns)
        .delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
            &ListParams::default(),
        )
        .await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_stamps_every_golden_label_set_as_the_webhook_does() {
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "stamp-policy").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    admission::grant_pods(&admin, &ns, "airflow-worker", WORKER, &["create", "get"]).await;
    admission::grant_pods(&admin, &ns, "other-airflow", OTHER, &["create", "get"]).await;
    with_policy(&admin, &ns, |ns| async move {
        let worker = testsupport::impersonating_client(WORKER, WORKER_GROUPS).await;
        let other = testsupport::impersonating_client(OTHER, OTHER_GROUPS).await;
        let as_worker: Api<Pod> = Api::namespaced(worker, &ns);
        let as_other: Api<Pod> = Api::namespaced(other, &ns);
        wait_until_stamping(&as_worker).await;

        let golden = golden_label_sets();
        let (mut mapped, mut unmapped) = (0, 0);
        for (i, l) in golden.iter().enumerate() {
            let sent = pod(&format!("golden-{i}"), l, None);
            let stored = create(&as_worker, &sent).await;
            let (want, warnings) = webhook_stamped(&sent, &ns, WORKER).await;
            assert!(
                warnings.is_empty(),
                "golden set {i} is identifiable: {warnings:?}"
            );
            assert_eq!(
                comparable(&stored),
                comparable(&want),
                "golden set {i}: the policy's stamp differs from the webhook's\nlabels {l:?}"
            );
            // And both are tikey's key: the contract the sweeper reads.
            let s = stamp_of(&stored);
            let (key, try_number) = tikey::TiKey::from_pod_labels(l).unwrap();
            assert_eq!(s.annotations[stamp::TI_KEY], key.encode(), "golden set {i}");
            assert_eq!(s.annotations[stamp::TRY_NUMBER], try_number.to_string());
            assert_eq!(s.annotations[stamp::CREATED_BY], WORKER);
            assert!(!s.annotations.contains_key(stamp::ADMITTED_AT));
            assert_eq!(s.labels[stamp::STAMPED_LABEL], stamp::STAMPED_VALUE);
            if key.map_index >= 0 {
                mapped += 1;
            } else {
                unmapped += 1;
            }
        }
        assert!(
            mapped > 0 && unmapped > 0,
            "golden sets cover mapped and unmapped pods"
        );

        let mut unidentifiable = 0;
        for (name, l, annotations) in edge_cases() {
            for (who, api) in [(WORKER, &as_worker), (OTHER, &as_other)] {
                let sent = pod(
                    &format!("{name}-{}", if who == WORKER { "w" } else { "o" }),
                    &l,
                    annotations.as_ref(),
                );
                let stored = create(api, &sent).await;
                let (want, warnings) = webhook_stamped(&sent, &ns, who).await;
                assert_eq!(
                    comparable(&stored),
                    comparable(&want),
                    "{name} created by {who}: the policy's stamp differs from the webhook's"
                );
                let s = stamp_of(&stored);
                let kpo = l.get("kubernetes_pod_operator").map(String::as_str) == Some("True");
                assert_eq!(s.labels.contains_key(stamp::STAMPED_LABEL), kpo, "{name}");
                if kpo {
                    assert_eq!(s.annotations[stamp::CREATED_BY], who, "{name}");
                    assert!(!s.annotations.contains_key(stamp::ADMITTED_AT), "{name}");
                    let identified = tikey::TiKey::from_pod_labels(&l).is_ok();
                    assert_eq!(
                        s.annotations.contains_key(stamp::TI_KEY),
                        identified,
                        "{name}"
                    );
                    assert_eq!(warnings.is_empty(), identified, "{name}");
                    if !identified && who == WORKER {
                        unidentifiable += 1;
                    }
                }
            }
        }
        assert!(unidentifiable >= 8, "edge cases cover unidentifiable pods");
    })
    .await;
}
