//! The Helm chart (`manifests/chart/`): `helm lint`, and `helm template` for each mode checked
//! object by object against the kustomize overlay of the same mode: the same objects (kind, name,
//! namespace) and the same pod specs (args, env, security, probes), RBAC rules and bindings, webhook
//! configuration, NetworkPolicies, monitoring objects and parameters.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;

use deploy_tests::*;
use serde_json::Value;

/// Every mode: the chart's `--set`s and the overlay that renders the same objects. Both default to a
/// dry run (no `--delete`) and to the published image (`ghcr.io/kpo-sweeper/kpo-sweeper` at the
/// chart's appVersion); DELETE_MODES turns deletes on in both.
const MODES: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("overlays/cluster-wide", &["clusterWide=true"]),
    ("overlays/cert-manager", &["certs.mode=cert-manager"]),
    ("overlays/interval", &["sweeper.mode=interval"]),
    (
        "overlays/monitoring",
        &["sweeper.mode=interval", "monitoring.enabled=true"],
    ),
    ("overlays/admission-policy", &["stamping=policy"]),
];

/// Deletes on: an overlay with `components/delete` against the chart's `sweeper.delete=true`, for the
/// CronJob and the interval Deployment.
const DELETE_MODES: &[(&str, &[&str])] = &[
    ("base", &["sweeper.delete=true"]),
    (
        "overlays/cluster-wide",
        &["clusterWide=true", "sweeper.delete=true"],
    ),
    (
        "overlays/interval",
        &["sweeper.mode=interval", "sweeper.delete=true"],
    ),
    (
        "overlays/monitoring",
        &[
            "sweeper.mode=interval",
            "monitoring.enabled=true",
            "sweeper.delete=true",
        ],
    ),
];

/// The chart's own modes beyond the overlays: the defaults (a dry run), a sweeper in Airflow's
/// namespace, a sweeper-only or webhook-only release, one replica.
const CHART_ONLY: &[&[&str]] = &[
    &[],
    &["sweeper.namespace=airflow"],
    &["webhook.enabled=false", "sweeper.namespace=airflow"],
    &["sweeper.enabled=false", "monitoring.enabled=true"],
    &[
        "webhook.replicas=1",
        "stamping=policy",
        "sweeper.mode=interval",
    ],
];

#[test]
fn helm_lint_passes_in_every_mode() {
    let chart = chart_dir().display().to_string();
    for sets in MODES
        .iter()
        .chain(DELETE_MODES)
        .map(|(_, s)| *s)
        .chain(CHART_ONLY.iter().copied())
    {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        for s in sets {
            args.extend(["--set", s]);
        }
        let o = helm(&args);
        assert!(o.ok, "helm {}:\n{}{}", args.join(" "), o.stdout, o.stderr);
    }
}

/// Unknown modes: the schema refuses them (naming the allowed values) before validate.yaml would.
#[test]
fn helm_refuses_unknown_modes() {
    for (set, needle) in [
        (
            "sweeper.mode=daemon",
            "at '/sweeper/mode': value must be one of 'cronjob', 'interval'",
        ),
        (
            "certs.mode=vault",
            "at '/certs/mode': value must be one of 'self', 'cert-manager'",
        ),
    ] {
        let err = helm_template_refused(&[set]);
        assert!(err.contains(needle), "{set}: {err}");
    }
}

fn by_key(objs: Vec<Value>) -> BTreeMap<(String, String, String), Value> {
    let mut m = BTreeMap::new();
    for o in objs {
        // The chart installs into an existing namespace (helm -n; the README labels it).
        if o["kind"] == "Namespace" {
            continue;
        }
        let k = key(&o);
        assert!(m.insert(k.clone(), o).is_none(), "{k:?} twice");
    }
    m
}

/// The kustomize rendering `kz` (named `what`) and `helm template` with `sets`: the same objects,
/// each with the same projection.
fn assert_same_objects(what: &str, kz: Vec<Value>, sets: &[&str]) {
    let kz = by_key(kz);
    let hm = by_key(helm_template(sets));
    let kz_keys: Vec<_> = kz.keys().collect();
    let hm_keys: Vec<_> = hm.keys().collect();
    assert_eq!(
        hm_keys, kz_keys,
        "{what} vs helm {sets:?}: different objects"
    );
    for (k, o) in &kz {
        let want = projection(o);
        let got = projection(&hm[k]);
        assert_eq!(
            got,
            want,
            "{what} vs helm {sets:?}: {k:?} differs\nhelm:\n{}\nkustomize:\n{}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }
}

#[test]
fn helm_template_matches_kustomize_in_every_mode() {
    for (overlay, sets) in MODES {
        assert_same_objects(
            overlay,
            kustomize(&repo().join("manifests").join(overlay)),
            sets,
        );
    }
}

/// The sweeper's args of a rendering: the CronJob's or the interval Deployment's.
fn sweeper_args(objs: &[Value]) -> Vec<String> {
    let o = objs
        .iter()
        .find(|o| {
            o["metadata"]["name"] == "kpo-sweeper-sweeper"
                && (o["kind"] == "CronJob" || o["kind"] == "Deployment")
        })
        .expect("the sweeper's CronJob or Deployment");
    let spec = if o["kind"] == "CronJob" {
        &o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &o["spec"]["template"]["spec"]
    };
    spec["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// kustomize, like the chart, is a dry run until deletes are turned on: the base and every overlay
/// render no `--delete`; `components/delete` adds it, and then matches the chart's
/// `sweeper.delete=true` object by object.
#[test]
fn kustomize_is_a_dry_run_until_components_delete() {
    for (overlay, _) in MODES {
        let args = sweeper_args(&kustomize(&repo().join("manifests").join(overlay)));
        assert!(!args.iter().any(|a| a == "--delete"), "{overlay}: {args:?}");
    }
    for (overlay, sets) in DELETE_MODES {
        let objs = kustomize_with_components(overlay, &["components/delete"]);
        let args = sweeper_args(&objs);
        assert_eq!(
            args.iter().filter(|a| *a == "--delete").count(),
            1,
            "{overlay} + components/delete: {args:?}"
        );
        assert_same_objects(&format!("{overlay} + components/delete"), objs, sets);
    }
}

/// One image reference everywhere: the chart's default (`image.repository` at its appVersion), the
/// kustomize base and the interval overlay, the name `make image` gives the archive (Makefile
/// IMAGE_REPOSITORY), and what the release workflow pushes (`ghcr.io/<owner>/kpo-sweeper` at the
/// workspace version; the owner here is the placeholder `kpo-sweeper`).
#[test]
fn one_image_reference_everywhere() {
    let version = image_tests::workspace_version();
    let chart_yaml = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    assert!(
        chart_yaml.contains(&format!("\nappVersion: \"{version}\"\n")),
        "Chart.yaml's appVersion is not the workspace version {version}:\n{chart_yaml}"
    );
    let want = format!("ghcr.io/kpo-sweeper/kpo-sweeper:{version}");
    let images = |objs: &[Value]| -> Vec<String> {
        let mut v = Vec::new();
        collect_images(&serde_json::json!(objs), &mut v);
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(
        images(&helm_template(&[])),
        std::slice::from_ref(&want),
        "the chart's default"
    );
    for overlay in ["base", "overlays/interval"] {
        assert_eq!(
            images(&kustomize(&repo().join("manifests").join(overlay))),
            std::slice::from_ref(&want),
            "{overlay}"
        );
    }
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    assert!(
        makefile.contains("\nIMAGE_REPOSITORY ?= ghcr.io/kpo-sweeper/kpo-sweeper\n")
            && makefile.contains("\nIMAGE_REF := $(IMAGE_REPOSITORY):$(VERSION)\n"),
        "the Makefile names the archive's image otherwise than the chart"
    );
    let workflow = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(
        workflow.contains("IMAGE: ghcr.io/${{ needs.version.outputs.owner }}/kpo-sweeper\n"),
        "the release workflow pushes another repository than ghcr.io/<owner>/kpo-sweeper"
    );
    // The packaged chart's default image is the pushed one, whoever owns the repository: the
    // workflow rewrites values.yaml's line (and checks it did) before `helm package`.
    let rewrite = r#"sed -i "s|^  repository: ghcr.io/kpo-sweeper/kpo-sweeper\$|  repository: $IMAGE|" manifests/chart/values.yaml"#;
    let package = workflow.find("helm package manifests/chart");
    assert!(
        workflow.find(rewrite).is_some_and(|at| Some(at) < package),
        "the release workflow must rewrite the chart's image.repository before helm package"
    );
    let values = std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap();
    assert_eq!(
        values
            .lines()
            .filter(|l| *l == "  repository: ghcr.io/kpo-sweeper/kpo-sweeper")
            .count(),
        1,
        "values.yaml's image.repository line is what the release workflow rewrites"
    );
}

fn collect_images(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "image"
                    && let Value::String(s) = x
                {
                    out.push(s.clone());
                }
                collect_images(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_images(x, out)),
        _ => {}
    }
}

#[test]
fn chart_values_reach_the_objects() {
    let objs = helm_template(&[
        "owners={system:serviceaccount:a:w,system:serviceaccount:b:w}",
        "targetNamespaces={team-a,team-b}",
        "database.secretName=my-db",
        "database.secretKey=url",
        "sweeper.schedule=*/5 * * * *",
        "image.repository=registry.example/kpo-sweeper",
        "image.tag=9.9.9",
    ]);
    let find = |kind: &str, name: &str, ns: &str| {
        objs.iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && o["metadata"]["namespace"].as_str().unwrap_or("") == ns
            })
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
    };
    find("Role", "kpo-sweeper-sweeper", "team-a");
    find("RoleBinding", "kpo-sweeper-sweeper", "team-b");
    let cm = find("ConfigMap", "kpo-sweeper-params", "kpo-sweeper");
    assert_eq!(
        cm["data"]["owner"],
        "system:serviceaccount:a:w,system:serviceaccount:b:w"
    );
    assert_eq!(cm["data"]["target-namespace"], "team-a,team-b");
    let cj = find("CronJob", "kpo-sweeper-sweeper", "kpo-sweeper");
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    let c = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example/kpo-sweeper:9.9.9");
    let db = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        .unwrap();
    assert_eq!(db["valueFrom"]["secretKeyRef"]["name"], "my-db");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["key"], "url");
}

/// The interval-mode sweeper's command line (args, and env read from the params ConfigMap) parses
/// with the sweeper's own flag definitions, in kustomize and in the chart, and asks for interval mode
/// with metrics on an IPv6-capable address; a dry run by default, deleting with `components/delete` or
/// `sweeper.delete=true`.
#[test]
fn interval_mode_command_lines_parse() {
    use clap::Parser;
    for (objs, delete) in [
        (
            kustomize(&repo().join("manifests/overlays/interval")),
            false,
        ),
        (helm_template(&["sweeper.mode=interval"]), false),
        (
            kustomize_with_components("overlays/interval", &["components/delete"]),
            true,
        ),
        (
            helm_template(&["sweeper.mode=interval", "sweeper.delete=true"]),
            true,
        ),
    ] {
        let dep = objs
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kpo-sweeper-sweeper")
            .expect("the sweeper Deployment");
        let cm = objs
            .iter()
            .find(|o| o["kind"] == "ConfigMap")
            .expect("the params ConfigMap");
        let c = &dep["spec"]["template"]["spec"]["containers"][0];
        let mut line = vec!["sweeper".to_owned()];
        for a in c["args"].as_array().unwrap() {
            line.push(a.as_str().unwrap().to_owned());
        }
        for e in c["env"].as_array().unwrap() {
            let Some(flag) = e["name"].as_str().unwrap().strip_prefix("KPO_SWEEPER_") else {
                continue;
            };
            let value = match e["valueFrom"]["configMapKeyRef"]["key"].as_str() {
                Some(k) => cm["data"][k].as_str().unwrap().to_owned(),
                None => e["value"].as_str().unwrap().to_owned(),
            };
            let flag = format!("--{}", flag.to_ascii_lowercase().replace('_', "-"));
            line.push(if value == "true" {
                flag
            } else {
                format!("{flag}={value}")
            });
        }
        let args = sweeper::Args::try_parse_from(&line)
            .unwrap_or_else(|e| panic!("{line:?} does not parse:\n{e}"));
        assert_eq!(args.interval.every, Some(600), "{line:?}");
        assert_eq!(
            args.interval.metrics_listen,
            Some("[::]:9091".parse().unwrap()),
            "{line:?}"
        );
        assert_eq!(args.delete, delete, "{line:?}");
        assert!(!args.owners.is_empty(), "{line:?}");
    }
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str, ns: &str) -> &'a Value {
    objs.iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str().unwrap_or("") == ns
        })
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
}

/// Every pod spec among `objs` (Deployments, Jobs, CronJobs), with its owner's kind and name.
fn pod_templates(objs: &[Value]) -> Vec<(String, &Value)> {
    objs.iter()
        .filter_map(|o| {
            let t = match o["kind"].as_str()? {
                "Deployment" | "Job" => &o["spec"]["template"],
                "CronJob" => &o["spec"]["jobTemplate"]["spec"]["template"],
                _ => return None,
            };
            Some((format!("{} {}", o["kind"], o["metadata"]["name"]), t))
        })
        .collect()
}

/// The schema (values.schema.json) refuses a malformed value before any template runs, naming the
/// value and what it must be.
#[test]
fn schema_rejects_malformed_values_with_a_clear_message() {
    let cases: [(&str, &[&str]); 7] = [
        ("sweeper.delete=yes", &["sweeper", "delete", "boolean"]),
        ("webhook.replicas=two", &["replicas", "integer"]),
        ("stamping=sidecar", &["stamping", "webhook", "policy"]),
        ("sweeper.minAge=ten minutes", &["minAge"]),
        ("targetNamespaces={Airflow_NS}", &["targetNamespaces"]),
        ("sweeper.namespce=airflow", &["namespce"]),
        ("imagePullSecrets={regcred}", &["imagePullSecrets"]),
    ];
    for (set, says) in cases {
        let err = helm_template_refused(&[set]);
        assert!(
            err.contains("schema"),
            "{set}: not the schema's refusal:\n{err}"
        );
        for w in says {
            assert!(
                err.contains(w),
                "{set}: the message does not say {w:?}:\n{err}"
            );
        }
    }
}

/// templates/validate.yaml refuses combinations that cannot work and says what to set.
#[test]
fn impossible_combinations_are_refused_with_what_to_set() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["sweeper.enabled=false", "webhook.enabled=false"],
            "Set sweeper.enabled=true",
        ),
        (&["targetNamespaces=null"], "set targetNamespaces"),
        (
            &["sweeper.delete=true", "owners=null"],
            "sweeper.delete=true needs owners",
        ),
        (&["database.secretName="], "set database.secretName"),
        (
            &["targetNamespaces={kpo-sweeper}"],
            "with sweeper.namespace=kpo-sweeper",
        ),
        (
            &["guards.validationActions={Deny,Warn}"],
            "set [Deny] or [Warn, Audit]",
        ),
    ];
    for (sets, says) in cases {
        let err = helm_template_refused(sets);
        assert!(
            err.contains(says),
            "{sets:?}: the message does not say {says:?}:\n{err}"
        );
    }
    // The same combinations made workable, as the messages say.
    helm_template(&["sweeper.enabled=false"]);
    helm_template(&["webhook.enabled=false"]);
    helm_template(&["clusterWide=true", "targetNamespaces=null"]);
    helm_template(&["guards.validationActions={Warn,Audit}"]);
}

/// A fresh install reports only: no --delete; `sweeper.delete=true` adds it; NOTES.txt says how to
/// read the first report and how to turn deletes on.
#[test]
fn a_fresh_install_is_a_dry_run_and_the_notes_say_what_next() {
    let args = |objs: &[Value]| {
        find(objs, "CronJob", "kpo-sweeper-sweeper", "kpo-sweeper")["spec"]["jobTemplate"]["spec"]
            ["template"]["spec"]["containers"][0]["args"]
            .to_string()
    };
    assert!(!args(&helm_template(&[])).contains("--delete"));
    assert!(args(&helm_template(&["sweeper.delete=true"])).contains("\"--delete\""));

    let chart = chart_dir().display().to_string();
    // Offline: with a cluster in reach, helm 4 checks the ownership of objects of the same names
    // that other tests applied (the PriorityClass is cluster-scoped). The last --kubeconfig wins.
    let offline = std::env::temp_dir().join(format!("kpo-empty-kubeconfig-{}", std::process::id()));
    std::fs::write(
        &offline,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let offline_flag = format!("--kubeconfig={}", offline.display());
    let o = helm(&[
        &offline_flag,
        "install",
        "kpo-sweeper",
        &chart,
        "-n",
        "kpo-sweeper",
        "--dry-run=client",
        "--set",
        "sweeper.namespace=airflow",
    ]);
    let _ = std::fs::remove_file(&offline);
    assert!(o.ok, "{}", o.stderr);
    let notes = o.stdout.split("NOTES:").nth(1).expect("NOTES printed");
    for want in [
        "DRY RUN",
        "kubectl -n airflow create job --from=cronjob/kpo-sweeper-sweeper",
        "kubectl -n airflow logs job/kpo-sweeper-first | grep '^{\"version\"' | jq",
        "would-delete",
        "--set sweeper.delete=true",
        "airflow-airflow-metadata",
    ] {
        assert!(notes.contains(want), "NOTES lack {want:?}:\n{notes}");
    }
}

/// Two releases next to each other — the first with the webhook, the second (webhook.enabled=false)
/// a sweeper for a second Airflow — have no object in common, cluster-scoped ones included, whether
/// they share the release namespace or not.
#[test]
fn two_releases_have_no_object_in_common() {
    for (ns_b, sweeper_ns_b) in [("kpo-sweeper", "airflow-b"), ("kpo-sweeper-b", "")] {
        let a = helm_template_release("kpo-sweeper", "kpo-sweeper", &["sweeper.namespace=airflow"]);
        let sweeper_ns = format!("sweeper.namespace={sweeper_ns_b}");
        let b = helm_template_release(
            "airflow-b",
            ns_b,
            &[
                "webhook.enabled=false",
                sweeper_ns.as_str(),
                "targetNamespaces={airflow-b}",
                "owners={system:serviceaccount:airflow-b:airflow-worker}",
                "database.secretName=airflow-b-airflow-metadata",
            ],
        );
        let keys = |objs: &[Value]| -> BTreeMap<(String, String, String), String> {
            objs.iter()
                .map(|o| {
                    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (
                        (
                            s(&o["kind"]),
                            s(&o["metadata"]["namespace"]),
                            s(&o["metadata"]["name"]),
                        ),
                        s(&o["metadata"]["labels"]["app.kubernetes.io/instance"]),
                    )
                })
                .collect()
        };
        let (ka, kb) = (keys(&a), keys(&b));
        assert_eq!(ka.len(), a.len(), "release A renders an object twice");
        assert_eq!(kb.len(), b.len(), "release B renders an object twice");
        let common: Vec<_> = ka.keys().filter(|k| kb.contains_key(*k)).collect();
        assert!(common.is_empty(), "objects in common: {common:?}");
        assert!(kb.values().all(|i| i == "airflow-b"), "{kb:?}");
        // B is a sweeper only: no webhook, no stamp policy, no certs.
        assert!(
            !b.iter().any(|o| o["kind"] == "MutatingWebhookConfiguration"
                || o["kind"] == "MutatingAdmissionPolicy"
                || o["kind"] == "PriorityClass"
                || o["metadata"]["name"].as_str().unwrap().contains("certs")),
            "{kb:?}"
        );
        find(
            &b,
            "CronJob",
            "airflow-b-kpo-sweeper-sweeper",
            if sweeper_ns_b.is_empty() {
                ns_b
            } else {
                sweeper_ns_b
            },
        );
        find(&b, "Role", "airflow-b-kpo-sweeper-sweeper", "airflow-b");
    }
}

/// The guards' bindings select the target namespaces and, by an objectSelector, the pods each guards;
/// never every pod of the cluster. Also in manifests/base (the namespaces the webhook covers).
#[test]
fn guard_bindings_are_scoped_to_namespaces_and_pods() {
    let kpo = serde_json::json!({"matchLabels": {"kubernetes_pod_operator": "True"}});
    let not_kpo = serde_json::json!({"matchExpressions": [
        {"key": "kubernetes_pod_operator", "operator": "NotIn", "values": ["True"]}]});
    let check = |objs: &[Value], ns_selector: &Value, what: &str| {
        let bindings: Vec<_> = objs
            .iter()
            .filter(|o| o["kind"] == "ValidatingAdmissionPolicyBinding")
            .collect();
        assert_eq!(bindings.len(), 3, "{what}");
        for b in bindings {
            let name = b["metadata"]["name"].as_str().unwrap();
            let mr = &b["spec"]["matchResources"];
            assert_eq!(&mr["namespaceSelector"], ns_selector, "{what}: {name}");
            let want = if name.ends_with("-sweeper-scope") {
                &not_kpo
            } else {
                &kpo
            };
            assert_eq!(&mr["objectSelector"], want, "{what}: {name}");
        }
    };
    let targets = serde_json::json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}]});
    check(
        &helm_template(&["targetNamespaces={team-a,team-b}"]),
        &targets,
        "chart",
    );
    let stamped = serde_json::json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kpo-sweeper", "kube-system"]}]});
    check(
        &helm_template(&["clusterWide=true"]),
        &stamped,
        "chart, clusterWide",
    );
    check(
        &kustomize(&repo().join("manifests/base")),
        &stamped,
        "kustomize base",
    );
    // validationActions reach every binding.
    for b in helm_template(&["guards.validationActions={Warn,Audit}"])
        .iter()
        .filter(|o| o["kind"] == "ValidatingAdmissionPolicyBinding")
    {
        assert_eq!(
            b["spec"]["validationActions"],
            serde_json::json!(["Warn", "Audit"])
        );
    }
    // The sweeper-scope guard names the sweeper where it runs.
    let objs = helm_template(&["sweeper.namespace=airflow"]);
    let scope = find(
        &objs,
        "ValidatingAdmissionPolicy",
        "kpo-sweeper-sweeper-scope",
        "",
    );
    assert!(
        scope["spec"]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains("'system:serviceaccount:airflow:kpo-sweeper-sweeper'"),
        "{}",
        scope["spec"]["matchConditions"]
    );
}

/// The PodDisruptionBudget exists only with more than one webhook replica (minAvailable 1 of 1 would
/// block every node drain).
#[test]
fn pdb_only_with_more_than_one_replica() {
    let pdbs = |sets: &[&str]| {
        helm_template(sets)
            .iter()
            .filter(|o| o["kind"] == "PodDisruptionBudget")
            .count()
    };
    assert_eq!(pdbs(&["webhook.replicas=1"]), 0);
    assert_eq!(pdbs(&["webhook.replicas=2"]), 1);
    assert_eq!(pdbs(&[]), 1);
}

/// With the sweeper in Airflow's namespace, the chart's NetworkPolicies there select this release's
/// pods only: Airflow's own pods (scheduler, workers, KPO pods) are never denied.
#[test]
fn network_policies_select_only_this_releases_pods() {
    let objs = helm_template(&["sweeper.namespace=airflow", "sweeper.mode=interval"]);
    let nps: Vec<_> = objs
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    assert!(
        nps.iter().any(|o| o["metadata"]["namespace"] == "airflow"),
        "no NetworkPolicy guards the sweeper in airflow"
    );
    for np in &nps {
        let sel = &np["spec"]["podSelector"]["matchLabels"];
        let name = np["metadata"]["name"].as_str().unwrap();
        let ours = sel["app.kubernetes.io/instance"] == "kpo-sweeper"
            || sel["app.kubernetes.io/name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kpo-sweeper-"));
        assert!(ours, "{name} selects more than this release's pods: {sel}");
    }
    // An Airflow pod (the official chart's labels) matches none of them; the release's pods match.
    let airflow_pod: BTreeMap<&str, &str> = [
        ("tier", "airflow"),
        ("component", "worker"),
        ("release", "airflow"),
    ]
    .into();
    for np in &nps {
        let sel = np["spec"]["podSelector"]["matchLabels"]
            .as_object()
            .unwrap();
        assert!(
            !sel.iter()
                .all(|(k, v)| airflow_pod.get(k.as_str()) == v.as_str().as_ref()),
            "{} selects Airflow's pods",
            np["metadata"]["name"]
        );
    }
    for (what, t) in pod_templates(&objs) {
        let l = &t["metadata"]["labels"];
        assert_eq!(l["app.kubernetes.io/part-of"], "kpo-sweeper", "{what}");
        assert_eq!(l["app.kubernetes.io/instance"], "kpo-sweeper", "{what}");
    }
}

/// imagePullSecrets, nodeSelector, tolerations, affinity, podAnnotations and podLabels reach every
/// pod; the ServiceAccount annotations, extra env, volumes and mounts reach the sweeper; the default
/// image is the published one, tagged with the chart's appVersion.
#[test]
fn pod_values_reach_every_pod() {
    let default = helm_template(&[]);
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let app = chart["appVersion"].as_str().unwrap();
    for (what, t) in pod_templates(&default) {
        assert_eq!(
            t["spec"]["containers"][0]["image"],
            format!("ghcr.io/kpo-sweeper/kpo-sweeper:{app}"),
            "{what}"
        );
    }
    for mode in ["cronjob", "interval"] {
        let mode_set = format!("sweeper.mode={mode}");
        let objs = helm_template(&[
            mode_set.as_str(),
            "imagePullSecrets[0].name=regcred",
            "nodeSelector.pool=system",
            "tolerations[0].key=dedicated",
            "tolerations[0].operator=Exists",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=arch",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            "podAnnotations.team=data",
            "podLabels.cost-center=cc42",
            "sweeper.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/r",
            "sweeper.extraEnv[0].name=PGSSLROOTCERT",
            "sweeper.extraEnv[0].value=/etc/db-ca/ca.crt",
            "sweeper.extraVolumes[0].name=db-ca",
            "sweeper.extraVolumes[0].secret.secretName=db-ca",
            "sweeper.extraVolumeMounts[0].name=db-ca",
            "sweeper.extraVolumeMounts[0].mountPath=/etc/db-ca",
        ]);
        let pods = pod_templates(&objs);
        assert_eq!(pods.len(), 4, "webhook, certs Job and CronJob, sweeper");
        for (what, t) in &pods {
            let spec = &t["spec"];
            assert_eq!(spec["imagePullSecrets"][0]["name"], "regcred", "{what}");
            assert_eq!(spec["nodeSelector"]["pool"], "system", "{what}");
            assert_eq!(spec["tolerations"][0]["key"], "dedicated", "{what}");
            assert!(spec["affinity"]["nodeAffinity"].is_object(), "{what}");
            assert_eq!(t["metadata"]["annotations"]["team"], "data", "{what}");
            assert_eq!(t["metadata"]["labels"]["cost-center"], "cc42", "{what}");
        }
        let (_, sweeper) = pods
            .iter()
            .find(|(w, _)| w.contains("kpo-sweeper-sweeper"))
            .expect("the sweeper");
        let c = &sweeper["spec"]["containers"][0];
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "PGSSLROOTCERT" && e["value"] == "/etc/db-ca/ca.crt"),
            "{mode}: {}",
            c["env"]
        );
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/etc/db-ca", "{mode}");
        assert_eq!(
            sweeper["spec"]["volumes"][0]["secret"]["secretName"], "db-ca",
            "{mode}"
        );
        let sa = find(
            &objs,
            "ServiceAccount",
            "kpo-sweeper-sweeper",
            "kpo-sweeper",
        );
        assert_eq!(
            sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/r"
        );
    }
}

/// sweeper.namespace moves the sweeper, its ServiceAccount and parameters next to Airflow's Secret;
/// the RoleBinding names that ServiceAccount; the webhook stays in the release namespace.
#[test]
fn the_sweeper_lives_in_sweeper_namespace() {
    let objs = helm_template(&["sweeper.namespace=airflow"]);
    find(&objs, "ServiceAccount", "kpo-sweeper-sweeper", "airflow");
    find(&objs, "ConfigMap", "kpo-sweeper-params", "airflow");
    let cj = find(&objs, "CronJob", "kpo-sweeper-sweeper", "airflow");
    let env = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"];
    let db = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        .unwrap();
    assert_eq!(
        db["valueFrom"]["secretKeyRef"]["name"],
        "airflow-airflow-metadata"
    );
    assert_eq!(db["valueFrom"]["secretKeyRef"]["key"], "connection");
    let rb = find(&objs, "RoleBinding", "kpo-sweeper-sweeper", "airflow");
    assert_eq!(rb["subjects"][0]["namespace"], "airflow");
    find(&objs, "Deployment", "kpo-sweeper-webhook", "kpo-sweeper");
}

/// Issue 23: the stamping-only release for a remote cluster that another cluster's sweeper sweeps
/// (`sweeper --context`): `sweeper.enabled=false` with `remoteSweeper` renders the stamp, the guards
/// and the RBAC of the remote sweeper's identity (User and Group subjects; a ClusterRole with
/// clusterWide), and no sweeper of its own; the sweeper-scope guard covers that identity.
/// sweeper/tests/multicluster.rs installs the same rendering on the second apiserver.
#[test]
fn remote_stamping_only_release() {
    const USER: &str = "kpo-sweeper@home-project.iam.gserviceaccount.com";
    let objs = helm_template(&[
        "sweeper.enabled=false",
        "targetNamespaces={jobs,batch}",
        &format!("remoteSweeper.users={{{USER}}}"),
        "remoteSweeper.groups={sweepers}",
    ]);
    for kind in ["CronJob", "ServiceAccount", "Secret"] {
        assert!(
            !objs.iter().any(|o| o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .ends_with("-sweeper")),
            "no {kind} of a sweeper in a stamping-only release"
        );
    }
    assert!(
        objs.iter()
            .any(|o| o["kind"] == "MutatingWebhookConfiguration"),
        "the webhook stamps"
    );
    for ns in ["jobs", "batch"] {
        let role = find(&objs, "Role", "kpo-sweeper-remote-sweeper", ns);
        assert_eq!(
            role["rules"],
            serde_json::json!([
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}
            ])
        );
        let binding = find(&objs, "RoleBinding", "kpo-sweeper-remote-sweeper", ns);
        assert_eq!(
            binding["subjects"],
            serde_json::json!([
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sweepers"}
            ])
        );
    }
    let scope = find(
        &objs,
        "ValidatingAdmissionPolicy",
        "kpo-sweeper-sweeper-scope",
        "",
    );
    let cond = scope["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(
        cond.contains(USER)
            && cond.contains("\"sweepers\"")
            && !cond.contains("system:serviceaccount"),
        "{cond}"
    );
    // With its own sweeper too, the guard covers both.
    let objs = helm_template(&[&format!("remoteSweeper.users={{{USER}}}")]);
    let scope = find(
        &objs,
        "ValidatingAdmissionPolicy",
        "kpo-sweeper-sweeper-scope",
        "",
    );
    let cond = scope["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(
        cond.contains(USER)
            && cond.contains("system:serviceaccount:kpo-sweeper:kpo-sweeper-sweeper"),
        "{cond}"
    );
    // clusterWide: one ClusterRole and its binding.
    let objs = helm_template(&[
        "sweeper.enabled=false",
        "clusterWide=true",
        &format!("remoteSweeper.users={{{USER}}}"),
    ]);
    find(&objs, "ClusterRole", "kpo-sweeper-remote-sweeper", "");
    let crb = find(
        &objs,
        "ClusterRoleBinding",
        "kpo-sweeper-remote-sweeper",
        "",
    );
    assert_eq!(crb["subjects"][0]["name"], USER);
    // Nowhere to grant it: refused with what to set.
    let err = helm_template_refused(&[
        "sweeper.enabled=false",
        "targetNamespaces=null",
        &format!("remoteSweeper.users={{{USER}}}"),
    ]);
    assert!(
        err.contains("remoteSweeper is set but targetNamespaces is empty"),
        "{err}"
    );
    // Without remoteSweeper nothing of it is rendered.
    assert!(!helm_template(&[]).iter().any(|o| {
        o["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .ends_with("-remote-sweeper")
    }));
}
