//! Helpers for the tests of `manifests/`: render the kustomize overlays and the Helm chart into JSON
//! objects, run kubectl, helm and promtool (the last two built by `tests/env/build-chart-tool`, their
//! paths in the env file as `HELM=` and `PROMTOOL=`), and project objects onto the fields that must
//! agree between the two renderings.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/deploy is two levels down")
        .to_path_buf()
}

pub fn chart_dir() -> PathBuf {
    repo().join("manifests/chart")
}

/// A tool's path from the env file (`HELM`, `PROMTOOL`); panics when `tests/env/up` did not build it.
pub fn tool(var: &str) -> String {
    let p = testsupport::env().var(var).to_owned();
    assert!(
        Path::new(&p).is_file(),
        "{var}={p} does not exist: run tests/env/up (it builds helm and promtool)"
    );
    p
}

/// Output of one command.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` with `stdin`; panics only when it cannot start.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("output");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`run`], and asserts success.
pub fn run_ok(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let o = run(program, args, stdin);
    assert!(
        o.ok,
        "{program} {} failed:\n{}\n{}",
        args.join(" "),
        o.stderr,
        o.stdout
    );
    o.stdout
}

/// kubectl with the test env's kubeconfig.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Out {
    let kc = format!("--kubeconfig={}", testsupport::env().kubeconfig.display());
    let mut a = vec![kc.as_str()];
    a.extend_from_slice(args);
    run("kubectl", &a, stdin)
}

/// helm with the test env's kubeconfig.
pub fn helm(args: &[&str]) -> Out {
    let kc = format!("--kubeconfig={}", testsupport::env().kubeconfig.display());
    let mut a = vec![kc.as_str()];
    a.extend_from_slice(args);
    run(&tool("HELM"), &a, None)
}

/// The documents of a multi-document YAML stream as JSON (empty documents dropped).
pub fn yaml_docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d)
                .unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{yaml}"));
            serde_json::to_value(v).expect("YAML maps to JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// `kubectl kustomize DIR` as objects.
pub fn kustomize(dir: &Path) -> Vec<Value> {
    let d = dir.display().to_string();
    yaml_docs(&run_ok("kubectl", &["kustomize", &d], None))
}

/// `kubectl kustomize` of a user's overlay: a temp kustomization with `manifests/<resource>` as its
/// resource and `manifests/<component>` for each of `components` (e.g. `components/delete`), as
/// objects.
pub fn kustomize_with_components(resource: &str, components: &[&str]) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!(
        "kpo-kustomize-components-{}",
        testsupport::random_suffix(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // kustomize takes relative paths only: climb from the temp dir to / first.
    let up = "../".repeat(dir.components().count() - 1);
    let rel = |p: &str| {
        let abs = repo().join("manifests").join(p);
        format!("{up}{}", abs.display().to_string().trim_start_matches('/'))
    };
    let mut k = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n",
        rel(resource)
    );
    for c in components {
        k.push_str(&format!("  - {}\n", rel(c)));
    }
    std::fs::write(dir.join("kustomization.yaml"), k).unwrap();
    let d = dir.display().to_string();
    let out = run("kubectl", &["kustomize", &d], None);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.ok,
        "kubectl kustomize {resource} + {components:?}: {}",
        out.stderr
    );
    yaml_docs(&out.stdout)
}

/// `helm template kpo-sweeper manifests/chart -n kpo-sweeper` with `--set`s, as objects.
pub fn helm_template(sets: &[&str]) -> Vec<Value> {
    helm_template_release("kpo-sweeper", "kpo-sweeper", sets)
}

/// `helm template RELEASE manifests/chart -n NS` with `--set`s, as objects.
pub fn helm_template_release(release: &str, ns: &str, sets: &[&str]) -> Vec<Value> {
    yaml_docs(&helm_template_text(release, ns, sets))
}

/// `helm template RELEASE manifests/chart -n NS` with `--set`s, as YAML text.
pub fn helm_template_text(release: &str, ns: &str, sets: &[&str]) -> String {
    let chart = chart_dir().display().to_string();
    let mut args = vec!["template", release, &chart, "-n", ns];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = helm(&args);
    assert!(o.ok, "helm {} failed:\n{}", args.join(" "), o.stderr);
    o.stdout
}

/// `helm template x manifests/chart` with `--set`s that must fail: its stderr.
pub fn helm_template_refused(sets: &[&str]) -> String {
    let chart = chart_dir().display().to_string();
    let mut args = vec!["template", "x", &chart, "-n", "kpo-sweeper"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = helm(&args);
    assert!(
        !o.ok,
        "helm {} succeeded, expected a refusal",
        args.join(" ")
    );
    o.stderr
}

/// (kind, name, namespace) with the two names that legitimately differ made comparable: kustomize's
/// hash suffix on the params ConfigMap, and the certs Job's per-version (kustomize) or
/// per-revision (Helm) suffix.
pub fn key(o: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let kind = s(&o["kind"]);
    (
        kind.clone(),
        normalize_name(&kind, &s(&o["metadata"]["name"])),
        s(&o["metadata"]["namespace"]),
    )
}

fn normalize_name(kind: &str, name: &str) -> String {
    if let Some(rest) = name.strip_prefix("kpo-sweeper-params-")
        && rest.len() == 10
        && rest.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return "kpo-sweeper-params".into();
    }
    if kind == "Job" && name.starts_with("kpo-sweeper-certs-") {
        return "kpo-sweeper-certs-<release>".into();
    }
    name.to_owned()
}

/// Rewrites hashed ConfigMap references inside a value, and sorts `env` lists by name (a kustomize
/// patch appends, the chart writes in its own order; the container sees a set). The chart's pods and
/// NetworkPolicy selectors carry `app.kubernetes.io/part-of` and `instance` (the release: its policies
/// must never select another release's or Airflow's pods when it shares a namespace); kustomize's
/// namespace holds kpo-sweeper alone. Those two labels are dropped, and a `matchLabels` left empty.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("app.kubernetes.io/part-of");
            m.remove("app.kubernetes.io/instance");
            if m.get("matchLabels")
                .and_then(Value::as_object)
                .is_some_and(|l| {
                    l.keys().all(|k| {
                        k == "app.kubernetes.io/part-of" || k == "app.kubernetes.io/instance"
                    })
                })
            {
                m.remove("matchLabels");
            }
            for (k, x) in m.iter_mut() {
                // CEL ignores whitespace; YAML readers differ on the line breaks of a folded scalar
                // with more-indented lines (libyaml here, go-yaml in kustomize and the apiserver).
                if (k == "expression" || k == "messageExpression")
                    && let Value::String(e) = x
                {
                    *e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                }
                if k == "env"
                    && let Value::Array(a) = x
                {
                    a.sort_by_key(|e| e["name"].as_str().unwrap_or_default().to_owned());
                }
                normalize(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        Value::String(s) => *s = normalize_name("", s),
        _ => {}
    }
}

/// The fields that must agree between the kustomize and the Helm rendering of one object: the
/// whole pod spec of workloads (args, env, security, probes, spread), RBAC rules and bindings, the
/// webhook configuration, Services, PDBs, NetworkPolicies, monitoring objects, ConfigMap data.
pub fn projection(o: &Value) -> Value {
    let mut p = match o["kind"].as_str().unwrap_or_default() {
        "Deployment"
        | "CronJob"
        | "Job"
        | "Service"
        | "PodDisruptionBudget"
        | "NetworkPolicy"
        | "PodMonitor"
        | "PrometheusRule"
        | "Certificate"
        | "Issuer" => o["spec"].clone(),
        "Role" | "ClusterRole" => o["rules"].clone(),
        "RoleBinding" | "ClusterRoleBinding" => {
            json!({"roleRef": o["roleRef"], "subjects": o["subjects"]})
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => json!({
            "webhooks": o["webhooks"],
            "annotations": o["metadata"]["annotations"],
        }),
        "ValidatingAdmissionPolicy"
        | "MutatingAdmissionPolicy"
        | "ValidatingAdmissionPolicyBinding"
        | "MutatingAdmissionPolicyBinding" => {
            // A binding's namespaces differ on purpose: kustomize binds the namespaces the webhook
            // covers, the chart its targetNamespaces (tests/chart.rs checks both).
            let mut spec = o["spec"].clone();
            if let Some(mr) = spec["matchResources"].as_object_mut()
                && o["kind"] == "ValidatingAdmissionPolicyBinding"
            {
                mr.remove("namespaceSelector");
            }
            spec
        }
        "ConfigMap" => o["data"].clone(),
        "ServiceAccount" => json!({"automount": o["automountServiceAccountToken"]}),
        "PriorityClass" => json!({
            "value": o["value"],
            "preemptionPolicy": o["preemptionPolicy"],
            "globalDefault": o["globalDefault"],
        }),
        other => panic!("no projection for kind {other}"),
    };
    normalize(&mut p);
    p
}
