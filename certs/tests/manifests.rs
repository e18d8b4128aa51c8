//! `manifests/`: every overlay renders with `kubectl kustomize`, the rendered objects server-side apply
//! to the real kube-apiserver from `tests/env/up`, they say what issue 7 asks for, and RBAC is least
//! privilege (SubjectAccessReview as the service accounts).
//!
//! Everything is applied for real except the MutatingWebhookConfiguration, which goes through
//! `--dry-run=server` (validated and defaulted by the apiserver, not stored): a stored copy would send
//! every KPO pod of every other test on this shared apiserver to a webhook Service with no endpoints.
//! The cert-manager overlay needs cert-manager's CRDs, which cannot be fetched here: the test installs a
//! minimal stand-in (`tests/data/cert-manager-crds.yaml`, field names and types only).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("certs/ has a parent")
        .to_path_buf()
}

fn kubeconfig() -> String {
    testsupport::env().kubeconfig.display().to_string()
}

/// Runs kubectl with the test env's kubeconfig; returns (success, stdout, stderr).
fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg(format!("--kubeconfig={}", kubeconfig()))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("write kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl kustomize DIR`, which must succeed.
fn render(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 YAML")
}

/// The documents of a kustomize rendering, with their top-level `kind`.
fn docs(yaml: &str) -> Vec<(String, String)> {
    yaml.split("\n---\n")
        .map(|d| {
            let kind = d
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or_else(|| panic!("document without kind: {d}"))
                .trim()
                .to_string();
            (kind, format!("{}\n", d.trim_end()))
        })
        .collect()
}

/// A stream of JSON objects (kubectl `-o json` prints one per object) flattened into objects.
fn objects(json: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(json).into_iter::<Value>() {
        let v = v.unwrap_or_else(|e| panic!("kubectl printed invalid JSON: {e}\n{json}"));
        match v["items"].as_array() {
            Some(items) if v["kind"] == "List" => out.extend(items.iter().cloned()),
            _ => out.push(v),
        }
    }
    out
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among the applied objects"))
}

/// Server-side applies a rendering: every object for real except the MutatingWebhookConfiguration and
/// the admission-policy bindings (server dry-run). Returns the objects as the apiserver answered them.
fn apply(yaml: &str) -> Vec<Value> {
    let (mwc, rest): (Vec<_>, Vec<_>) = docs(yaml)
        .into_iter()
        // Admission-policy bindings too (manifests/base/guards.yaml): stored, they would judge the pods
        // of every other test on this shared apiserver; tests/policies installs them scoped instead.
        .partition(|(k, _)| {
            matches!(
                k.as_str(),
                "MutatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicyBinding"
                    | "MutatingAdmissionPolicyBinding"
            )
        });
    let join = |d: Vec<(String, String)>| {
        d.into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join("---\n")
    };
    let mut objs = Vec::new();
    for (input, dry) in [(join(rest), false), (join(mwc), true)] {
        let mut args = vec![
            "apply",
            "--server-side",
            "--field-manager=kpo-sweeper-manifests-test",
            "--force-conflicts",
            "-o",
            "json",
            "-f",
            "-",
        ];
        if dry {
            args.push("--dry-run=server");
        }
        let (ok, out, err) = kubectl(&args, Some(&input));
        assert!(
            ok,
            "kubectl {} failed:\n{err}\ninput:\n{input}",
            args.join(" ")
        );
        objs.extend(objects(&out));
    }
    objs
}

/// A kustomization in a temp dir over `manifests/<over>` that sets the operator's parameters, the way
/// manifests/README.md tells an operator to (merge the ConfigMap, repeat the replacements).
fn param_overlay(over: &str, target_ns: &str, owner: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpo-certs-overlay-{over}-{target_ns}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // kustomize wants a relative path; temp_dir is absolute, so climb to / first.
    let up = "../".repeat(dir.components().count() - 1);
    let base = format!("{up}{}", repo().join("manifests").join(over).display());
    let k = format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {base}
configMapGenerator:
  - name: kpo-sweeper-params
    namespace: kpo-sweeper
    behavior: merge
    literals:
      - target-namespace={target_ns}
      - owner={owner}
replacements:
  - source:
      kind: ConfigMap
      name: kpo-sweeper-params
      fieldPath: data.target-namespace
    targets:
      - select:
          kind: Role
          name: kpo-sweeper-sweeper
        fieldPaths: [metadata.namespace]
      - select:
          kind: RoleBinding
          name: kpo-sweeper-sweeper
        fieldPaths: [metadata.namespace]
"#
    );
    std::fs::write(dir.join("kustomization.yaml"), k).unwrap();
    dir
}

/// One SubjectAccessReview.
async fn can(
    client: &kube::Client,
    user: &str,
    verb: &str,
    resource: &str,
    ns: &str,
    name: Option<&str>,
) -> bool {
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let (resource, sub) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let sa_ns = user.split(':').nth(2).unwrap_or_default();
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{sa_ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: sub,
                group: Some(group.into()),
                namespace: Some(ns.into()),
                name: name.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let r = api
        .create(&PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    r.status.expect("SAR status").allowed
}

/// The command line a container runs, as the binary's clap definition sees it: the `args`, plus the
/// `KPO_*` env vars the manifests set, turned into their flags (values from the ConfigMap they name).
fn command_line(objs: &[Value], container: &Value) -> Vec<String> {
    let cmd = container["command"][0].as_str().expect("command");
    let mut line = vec![cmd.rsplit('/').next().unwrap().to_string()];
    for a in container["args"].as_array().into_iter().flatten() {
        line.push(a.as_str().unwrap().to_string());
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap();
        let Some(flag) = name
            .strip_prefix("KPO_SWEEPER_")
            .or_else(|| name.strip_prefix("KPO_WEBHOOK_"))
            .or_else(|| name.strip_prefix("KPO_CERTS_"))
        else {
            continue;
        };
        let value = match e["valueFrom"]["configMapKeyRef"].as_object() {
            Some(r) => find(objs, "ConfigMap", r["name"].as_str().unwrap())["data"]
                [r["key"].as_str().unwrap()]
            .as_str()
            .expect("ConfigMap key")
            .to_string(),
            None => e["value"].as_str().expect("env value").to_string(),
        };
        let flag = format!("--{}", flag.to_ascii_lowercase().replace('_', "-"));
        if value == "true" {
            line.push(flag);
        } else {
            line.push(format!("{flag}={value}"));
        }
    }
    line
}

/// Every container of the rendering parses with the flag definitions of the binary it runs.
fn assert_command_lines_parse(objs: &[Value], containers: usize) {
    use clap::Parser;
    let mut seen = 0;
    for o in objs {
        let spec = match o["kind"].as_str() {
            Some("Deployment") | Some("Job") => &o["spec"]["template"]["spec"],
            Some("CronJob") => &o["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        for c in spec["containers"].as_array().unwrap() {
            let line = command_line(objs, c);
            let parsed = match line[0].as_str() {
                "webhook" => webhook::args::Args::try_parse_from(&line).map(|_| ()),
                "sweeper" => sweeper::Args::try_parse_from(&line).map(|_| ()),
                "certs" => certs::cli::Args::try_parse_from(&line).map(|_| ()),
                other => panic!("unknown binary {other}"),
            };
            if let Err(e) = parsed {
                panic!(
                    "{} {}: {line:?} does not parse:\n{e}",
                    o["kind"], o["metadata"]["name"]
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, containers, "containers checked");
}

const SWEEPER: &str = "system:serviceaccount:kpo-sweeper:kpo-sweeper-sweeper";
const CERTS: &str = "system:serviceaccount:kpo-sweeper:kpo-sweeper-certs";
const WEBHOOK: &str = "system:serviceaccount:kpo-sweeper:kpo-sweeper-webhook";

/// Resources and verbs the checks sweep through: everything an over-broad Role would likely grant.
const RESOURCES: &[&str] = &[
    "pods",
    "pods/log",
    "pods/exec",
    "pods/eviction",
    "pods/status",
    "secrets",
    "configmaps",
    "events",
    "events.events.k8s.io",
    "serviceaccounts",
    "services",
    "deployments.apps",
    "jobs.batch",
    "cronjobs.batch",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
];
const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Asserts that in `ns`, `user` is allowed exactly the (verb, resource) pairs of `allowed` among
/// RESOURCES × VERBS.
async fn assert_exactly(client: &kube::Client, user: &str, ns: &str, allowed: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for r in RESOURCES {
        for v in VERBS {
            let want = allowed.contains(&(*v, *r));
            if can(client, user, v, r, ns, None).await != want {
                wrong.push(format!("{v} {r} in {ns:?}: expected allowed={want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{user}:\n{}", wrong.join("\n"));
}

#[test]
fn every_overlay_renders() {
    let m = repo().join("manifests");
    let base = render(&m.join("base"));
    let cw = render(&m.join("overlays/cluster-wide"));
    let cm = render(&m.join("overlays/cert-manager"));
    let kinds = |y: &str| docs(y).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    for k in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "MutatingWebhookConfiguration",
        "Job",
        "CronJob",
    ] {
        assert!(kinds(&base).contains(&k.to_string()), "base has no {k}");
    }
    assert!(
        !kinds(&cm).contains(&"Job".to_string()),
        "cert-manager overlay keeps the certs Job"
    );
    assert!(kinds(&cm).contains(&"Certificate".to_string()));
    assert!(kinds(&cm).contains(&"Issuer".to_string()));
    assert!(cm.contains("cert-manager.io/inject-ca-from: kpo-sweeper/kpo-sweeper-webhook"));
    assert!(!cw.contains("TARGET_NAMESPACE") && !base.contains("TARGET_NAMESPACE"));
    // The chart's default image, as the release workflow pushes it (tests/deploy/tests/chart.rs
    // checks the two agree).
    assert!(base.contains("image: ghcr.io/kpo-sweeper/kpo-sweeper:0.1.0"));
    assert!(!base.contains("image: kpo-sweeper"));
}

#[tokio::test]
async fn manifests_apply_and_rbac_is_least_privilege() {
    let client = testsupport::client().await;
    let target = testsupport::fresh_namespace(&client, "kpo-manifests").await;
    let _pods_target = testsupport::DeletePodsOnDrop::new(&target);
    let other = testsupport::fresh_namespace(&client, "kpo-manifests-other").await;
    let _pods_other = testsupport::DeletePodsOnDrop::new(&other);
    let owner = format!("system:serviceaccount:{target}:airflow-worker");
    // A previous run's cluster-wide step may have left its binding behind.
    let (ok, _, err) = kubectl(
        &[
            "delete",
            "clusterrolebinding",
            "kpo-sweeper-sweeper",
            "--ignore-not-found",
        ],
        None,
    );
    assert!(ok, "{err}");

    // --- base, with the operator's parameters set from an overlay.
    let objs = apply(&render(&param_overlay("base", &target, &owner)));

    let mwc = find(&objs, "MutatingWebhookConfiguration", "kpo-sweeper");
    let hooks = mwc["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    let h = &hooks[0];
    assert_eq!(h["failurePolicy"], "Ignore");
    assert_eq!(h["sideEffects"], "None");
    assert_eq!(h["timeoutSeconds"], 3);
    assert_eq!(h["matchPolicy"], "Equivalent");
    assert_eq!(h["reinvocationPolicy"], "Never");
    assert_eq!(h["admissionReviewVersions"], serde_json::json!(["v1"]));
    assert_eq!(
        h["objectSelector"]["matchLabels"]["kubernetes_pod_operator"],
        "True"
    );
    let expr = &h["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(expr["key"], "kubernetes.io/metadata.name");
    assert_eq!(expr["operator"], "NotIn");
    assert_eq!(
        expr["values"],
        serde_json::json!(["kpo-sweeper", "kube-system"])
    );
    assert_eq!(h["rules"][0]["operations"], serde_json::json!(["CREATE"]));
    assert_eq!(h["rules"][0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(h["clientConfig"]["service"]["name"], "kpo-sweeper-webhook");

    let dep = find(&objs, "Deployment", "kpo-sweeper-webhook");
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(c["readinessProbe"]["httpGet"].is_object());
    assert!(c["livenessProbe"]["httpGet"].is_object());
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "kpo-sweeper-webhook-tls"
    );
    let pdb = find(&objs, "PodDisruptionBudget", "kpo-sweeper-webhook");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    let cj = find(&objs, "CronJob", "kpo-sweeper-sweeper");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    assert!(cj["spec"]["successfulJobsHistoryLimit"].is_number());
    let job = &cj["spec"]["jobTemplate"]["spec"];
    assert!(job["activeDeadlineSeconds"].as_i64().unwrap() > 0);
    let sc = &job["template"]["spec"]["containers"][0];
    let args: Vec<&str> = sc["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // A dry run, like the chart's default: components/delete turns deletes on.
    assert!(!args.contains(&"--delete"), "{args:?}");
    assert!(args.iter().any(|a| a.starts_with("--max-deletions=")));
    assert!(args.iter().any(|a| a.starts_with("--max-fraction=")));
    let env = sc["env"].as_array().unwrap();
    let env_of = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("sweeper has no env {n}"))
    };
    let db = &env_of("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        db["key"], "connection",
        "the Airflow chart's metadata Secret key"
    );
    let owner_ref = &env_of("KPO_SWEEPER_OWNER")["valueFrom"]["configMapKeyRef"];
    let cm = find(&objs, "ConfigMap", owner_ref["name"].as_str().unwrap());
    assert_eq!(cm["data"]["owner"], owner.as_str());
    assert_eq!(cm["data"]["target-namespace"], target.as_str());
    find(&objs, "Job", "kpo-sweeper-certs-0.1.0");
    find(&objs, "CronJob", "kpo-sweeper-certs-rotate");
    assert_command_lines_parse(&objs, 4);
    let role = find(&objs, "Role", "kpo-sweeper-sweeper");
    assert_eq!(role["metadata"]["namespace"], target.as_str());

    // RBAC: the sweeper lists and deletes pods and creates events.k8s.io Events in its target
    // namespace, and nothing else, anywhere.
    assert_exactly(
        &client,
        SWEEPER,
        &target,
        &[
            ("list", "pods"),
            ("delete", "pods"),
            ("create", "events.events.k8s.io"),
        ],
    )
    .await;
    assert_exactly(&client, SWEEPER, &other, &[]).await;
    assert_exactly(&client, SWEEPER, "kpo-sweeper", &[]).await;
    assert!(!can(&client, SWEEPER, "list", "pods", "", None).await);
    assert!(
        !can(
            &client,
            SWEEPER,
            "get",
            "secrets",
            &target,
            Some("anything")
        )
        .await
    );
    assert!(!can(&client, SWEEPER, "delete", "nodes", "", None).await);
    assert!(!can(&client, SWEEPER, "delete", "namespaces", "", Some(&target)).await);

    // certs: its own Secret (create is necessarily unrestricted by name, in its namespace only) and
    // its own MutatingWebhookConfiguration.
    let secret = "kpo-sweeper-webhook-tls";
    assert!(
        can(
            &client,
            CERTS,
            "get",
            "secrets",
            "kpo-sweeper",
            Some(secret)
        )
        .await
    );
    assert!(
        can(
            &client,
            CERTS,
            "update",
            "secrets",
            "kpo-sweeper",
            Some(secret)
        )
        .await
    );
    assert!(can(&client, CERTS, "create", "secrets", "kpo-sweeper", None).await);
    assert!(
        !can(
            &client,
            CERTS,
            "get",
            "secrets",
            "kpo-sweeper",
            Some("other")
        )
        .await
    );
    assert!(
        !can(
            &client,
            CERTS,
            "update",
            "secrets",
            "kpo-sweeper",
            Some("other")
        )
        .await
    );
    assert!(
        !can(
            &client,
            CERTS,
            "delete",
            "secrets",
            "kpo-sweeper",
            Some(secret)
        )
        .await
    );
    assert!(!can(&client, CERTS, "list", "secrets", "kpo-sweeper", None).await);
    assert!(!can(&client, CERTS, "create", "secrets", &target, None).await);
    let mwc_r = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
    assert!(can(&client, CERTS, "get", mwc_r, "", Some("kpo-sweeper")).await);
    assert!(can(&client, CERTS, "patch", mwc_r, "", Some("kpo-sweeper")).await);
    assert!(!can(&client, CERTS, "patch", mwc_r, "", Some("someone-else")).await);
    assert!(!can(&client, CERTS, "update", mwc_r, "", Some("kpo-sweeper")).await);
    assert!(!can(&client, CERTS, "delete", mwc_r, "", Some("kpo-sweeper")).await);
    assert!(!can(&client, CERTS, "list", mwc_r, "", None).await);
    // The webhook needs no API access at all.
    assert_exactly(&client, WEBHOOK, "kpo-sweeper", &[]).await;
    assert_exactly(&client, WEBHOOK, &target, &[]).await;

    // --- cluster-wide: the same two rules, in every namespace.
    let objs = apply(&render(&param_overlay(
        "overlays/cluster-wide",
        &target,
        &owner,
    )));
    assert!(
        !objs
            .iter()
            .any(|o| o["kind"] == "Role" && o["metadata"]["name"] == "kpo-sweeper-sweeper"),
        "cluster-wide keeps the namespaced Role"
    );
    let cj = find(&objs, "CronJob", "kpo-sweeper-sweeper");
    let env = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        env.iter()
            .any(|e| e["name"] == "KPO_SWEEPER_ALL_NAMESPACES" && e["value"] == "true")
    );
    assert!(!env.iter().any(|e| e["name"] == "KPO_SWEEPER_NAMESPACE"));
    assert_command_lines_parse(&objs, 4);
    let allowed = [
        ("list", "pods"),
        ("delete", "pods"),
        ("create", "events.events.k8s.io"),
    ];
    assert_exactly(&client, SWEEPER, &other, &allowed).await;
    assert!(can(&client, SWEEPER, "list", "pods", "", None).await);
    assert!(!can(&client, SWEEPER, "list", "secrets", "", None).await);
    assert!(!can(&client, SWEEPER, "delete", "nodes", "", None).await);
    let (ok, _, err) = kubectl(
        &["delete", "clusterrolebinding", "kpo-sweeper-sweeper"],
        None,
    );
    assert!(ok, "{err}");
    assert!(!can(&client, SWEEPER, "list", "pods", &other, None).await);

    // --- cert-manager: Certificate + Issuer replace the certs Job; caBundle injected by annotation.
    let crds = repo().join("certs/tests/data/cert-manager-crds.yaml");
    let crds = std::fs::read_to_string(crds).unwrap();
    let (ok, _, err) = kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=kpo-sweeper-manifests-test",
            "-f",
            "-",
        ],
        Some(&crds),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/certificates.cert-manager.io",
            "crd/issuers.cert-manager.io",
        ],
        None,
    );
    assert!(ok, "{err}");
    let objs = apply(&render(&param_overlay(
        "overlays/cert-manager",
        &target,
        &owner,
    )));
    let cert = find(&objs, "Certificate", "kpo-sweeper-webhook");
    assert_eq!(cert["spec"]["secretName"], "kpo-sweeper-webhook-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        serde_json::json!([
            "kpo-sweeper-webhook",
            "kpo-sweeper-webhook.kpo-sweeper",
            "kpo-sweeper-webhook.kpo-sweeper.svc",
            "kpo-sweeper-webhook.kpo-sweeper.svc.cluster.local"
        ])
    );
    find(&objs, "Issuer", "kpo-sweeper-ca");
    assert_command_lines_parse(&objs, 2);
    let mwc = find(&objs, "MutatingWebhookConfiguration", "kpo-sweeper");
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "kpo-sweeper/kpo-sweeper-webhook"
    );
    assert!(
        !objs.iter().any(|o| o["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("kpo-sweeper-certs")),
        "cert-manager overlay keeps certs objects"
    );
}
