//! `manifests/overlays/admission-policy` renders (`kubectl kustomize`) to the base minus every piece of
//! the webhook server, plus the MutatingAdmissionPolicy, whose binding selects exactly the namespaces the
//! base's MutatingWebhookConfiguration selects; the base carries the three guards.

use policies::*;
use serde_json::Value;
use testsupport::admission::{self, of_kind};

fn names(objs: &[Value], kind: &str) -> Vec<String> {
    of_kind(objs, kind)
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn overlay_replaces_the_webhook_server_with_the_policy() {
    let root = admission::repo_root().join("manifests");
    let base = admission::manifest_objects(&root.join("base"));
    let overlay = admission::manifest_objects(&root.join("overlays/admission-policy"));

    let guards = [
        "kpo-sweeper-honest-creator",
        "kpo-sweeper-stamp-immutable",
        "kpo-sweeper-sweeper-scope",
    ];
    for objs in [&base, &overlay] {
        let mut vap = names(objs, "ValidatingAdmissionPolicy");
        vap.sort();
        assert_eq!(vap, guards);
        let mut bindings = names(objs, "ValidatingAdmissionPolicyBinding");
        bindings.sort();
        assert_eq!(bindings, guards);
        assert!(names(objs, "CronJob").contains(&"kpo-sweeper-sweeper".to_owned()));
        assert!(names(objs, "Role").contains(&"kpo-sweeper-sweeper".to_owned()));
    }

    // Nothing of the webhook server or its certificates is left.
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "MutatingWebhookConfiguration",
        "Job",
    ] {
        assert!(
            names(&overlay, kind).is_empty(),
            "overlay still has a {kind}"
        );
    }
    for o in &overlay {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert!(
            !name.starts_with("kpo-sweeper-webhook") && !name.starts_with("kpo-sweeper-certs"),
            "overlay still has {} {name}",
            o["kind"]
        );
    }
    assert_eq!(
        names(&overlay, "MutatingAdmissionPolicy"),
        ["kpo-sweeper-stamp"]
    );
    let binding = of_kind(&overlay, "MutatingAdmissionPolicyBinding");
    assert_eq!(binding.len(), 1);
    assert_eq!(binding[0]["spec"]["policyName"], "kpo-sweeper-stamp");

    // Same namespaces and pods as the webhook: the base's webhook configuration's selectors.
    let mwc = of_kind(&base, "MutatingWebhookConfiguration")[0]["webhooks"][0].clone();
    assert_eq!(
        binding[0]["spec"]["matchResources"]["namespaceSelector"],
        mwc["namespaceSelector"]
    );
    let policy = of_kind(&overlay, "MutatingAdmissionPolicy")[0];
    let spec = &policy["spec"];
    assert_eq!(
        spec["matchConstraints"]["objectSelector"],
        mwc["objectSelector"]
    );
    assert_eq!(spec["failurePolicy"], mwc["failurePolicy"]);
    assert_eq!(spec["reinvocationPolicy"], mwc["reinvocationPolicy"]);
    let rule = &spec["matchConstraints"]["resourceRules"][0];
    assert_eq!(rule["operations"], mwc["rules"][0]["operations"]);
    assert_eq!(rule["resources"], mwc["rules"][0]["resources"]);
    assert_eq!(spec["mutations"][0]["patchType"], "JSONPatch");
    // The same policy as the file the stamp tests install (YAML folding aside: kustomize re-emits the
    // folded CEL with other line breaks).
    let file = admission::manifest_objects(&stamp_policy_manifest());
    assert_eq!(
        squeeze(&of_kind(&file, "MutatingAdmissionPolicy")[0]["spec"]),
        squeeze(&policy["spec"])
    );
}

/// `v` with every run of whitespace in its strings made one space.
fn squeeze(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.split_whitespace().collect::<Vec<_>>().join(" ")),
        Value::Array(a) => Value::Array(a.iter().map(squeeze).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), squeeze(v))).collect()),
        other => other.clone(),
    }
}
