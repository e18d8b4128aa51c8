//! `helm install` into the real kube-apiserver, `helm upgrade` to changed values, `helm uninstall`
//! leaving nothing behind: the steps of manifests/README.md ("Helm").
//!
//! This control plane has no kube-controller-manager: Deployments, Jobs and CronJobs create no pods,
//! and nothing garbage-collects. That changes nothing here: Helm deletes every object it created
//! itself, so "nothing behind" is checked object by object with a GET each (404), and no
//! dependents exist to be collected. Names are prefixed per run (`fullnameOverride`) and the webhook
//! only selects the test's own target namespace, so the release cannot collide with, or stamp the
//! pods of, the other tests sharing this apiserver.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use deploy_tests::*;
use serde_json::Value;

/// Every object of a release's manifest: (kind, apiVersion, name, namespace).
fn manifest(release: &str, ns: &str) -> Vec<(String, String, String, String)> {
    let o = helm(&["get", "manifest", release, "-n", ns]);
    assert!(o.ok, "{}", o.stderr);
    yaml_docs(&o.stdout)
        .iter()
        .map(|v| {
            let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
            (
                s(&v["kind"]),
                s(&v["apiVersion"]),
                s(&v["metadata"]["name"]),
                s(&v["metadata"]["namespace"]),
            )
        })
        .collect()
}

/// `kubectl get KIND NAME [-n NS] -o json`: `None` when it does not exist.
fn get(kind: &str, api_version: &str, name: &str, ns: &str) -> Option<Value> {
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    let resource = if group.is_empty() || group == "v1" {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let mut args = vec!["get", resource.as_str(), name, "-o", "json"];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    let o = kubectl(&args, None);
    if o.ok {
        Some(serde_json::from_str(&o.stdout).expect("JSON"))
    } else {
        assert!(
            o.stderr.contains("NotFound"),
            "kubectl {args:?}: {}",
            o.stderr
        );
        None
    }
}

#[tokio::test]
async fn helm_install_upgrade_uninstall() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "kpo-helm").await;
    let target = testsupport::fresh_namespace(&client, "kpo-helm-target").await;
    let name = format!("t{}", testsupport::random_suffix(6));
    let release = format!("{name}-rel");
    let chart = chart_dir().display().to_string();
    // The README's namespace step: Pod Security `restricted`.
    let o = kubectl(
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    );
    assert!(o.ok, "{}", o.stderr);
    let selector =
        format!("webhook.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={target}");
    let common = [
        format!("fullnameOverride={name}"),
        format!("targetNamespaces={{{target}}}"),
        selector,
    ];
    let mut install = vec![
        "install",
        release.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
    ];
    for s in &common {
        install.extend(["--set", s.as_str()]);
    }
    let o = helm(&install);
    assert!(o.ok, "helm install: {}", o.stderr);

    let first = manifest(&release, &ns);
    for (kind, api, n, obj_ns) in &first {
        let obj = get(kind, api, n, obj_ns)
            .unwrap_or_else(|| panic!("{kind} {obj_ns}/{n} was not created"));
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"],
            release.as_str()
        );
    }
    let kinds: Vec<&str> = first.iter().map(|o| o.0.as_str()).collect();
    for k in [
        "CronJob",
        "Job",
        "MutatingWebhookConfiguration",
        "NetworkPolicy",
        "PriorityClass",
    ] {
        assert!(
            kinds.contains(&k),
            "installed objects lack a {k}: {kinds:?}"
        );
    }
    assert!(first.iter().any(|o| o.0 == "Role" && o.3 == target));
    let job1 = format!("{name}-certs-1");
    assert!(get("Job", "batch/v1", &job1, &ns).is_some());
    let mwc = get(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        &name,
        "",
    )
    .unwrap();
    assert_eq!(
        mwc["webhooks"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        target.as_str()
    );

    // Upgrade to changed values: interval mode, another owner. The certs Job of revision 1 would
    // refuse a changed template; revision 2 gets its own Job and Helm deletes the old one.
    let mut upgrade = vec![
        "upgrade",
        release.as_str(),
        chart.as_str(),
        "-n",
        ns.as_str(),
    ];
    let more = [
        "sweeper.mode=interval".to_owned(),
        "owners={system:serviceaccount:x:y}".to_owned(),
        "image.tag=0.2.0".to_owned(),
    ];
    for s in common.iter().chain(&more) {
        upgrade.extend(["--set", s.as_str()]);
    }
    let o = helm(&upgrade);
    assert!(o.ok, "helm upgrade: {}", o.stderr);
    let second = manifest(&release, &ns);
    assert!(get("CronJob", "batch/v1", &format!("{name}-sweeper"), &ns).is_none());
    let dep = get("Deployment", "apps/v1", &format!("{name}-sweeper"), &ns)
        .expect("the interval-mode Deployment");
    let args = dep["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("--interval=10m") && args.contains("--metrics-listen=[::]:9091"),
        "{args}"
    );
    assert!(
        get("Job", "batch/v1", &job1, &ns).is_none(),
        "revision 1's certs Job is gone"
    );
    let job2 =
        get("Job", "batch/v1", &format!("{name}-certs-2"), &ns).expect("revision 2's certs Job");
    assert_eq!(
        job2["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/kpo-sweeper/kpo-sweeper:0.2.0"
    );
    let cm = get("ConfigMap", "v1", &format!("{name}-params"), &ns).unwrap();
    assert_eq!(cm["data"]["owner"], "system:serviceaccount:x:y");
    assert!(
        second
            .iter()
            .any(|o| o.0 == "NetworkPolicy" && o.2 == format!("{name}-sweeper-metrics"))
    );

    // Uninstall: every object of both revisions is gone, cluster-scoped ones included, and so is the
    // release record.
    let o = helm(&[
        "uninstall",
        release.as_str(),
        "-n",
        ns.as_str(),
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert!(o.ok, "helm uninstall: {}", o.stderr);
    for (kind, api, n, obj_ns) in first.iter().chain(&second) {
        assert!(
            get(kind, api, n, obj_ns).is_none(),
            "{kind} {obj_ns}/{n} is left behind after helm uninstall"
        );
    }
    let o = kubectl(
        &[
            "get",
            "secrets",
            "-n",
            &ns,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        o.ok && o.stdout.trim().is_empty(),
        "release records left: {}",
        o.stdout
    );
    let o = helm(&["list", "-n", ns.as_str(), "-q"]);
    assert!(o.ok && o.stdout.trim().is_empty(), "{}", o.stdout);
}
