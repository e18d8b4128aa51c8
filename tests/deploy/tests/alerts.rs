//! The alerts: `promtool check rules` and `promtool test rules` (manifests/overlays/monitoring/
//! alerts_test.yaml: each alert firing and not firing) on the PrometheusRule exactly as kustomize
//! and as the chart render it. promtool is built from the Prometheus Go module by
//! tests/env/build-chart-tool.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use deploy_tests::*;
use serde_json::Value;

fn rules_of(objs: &[Value]) -> Value {
    let rule = objs
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    serde_json::json!({"groups": rule["spec"]["groups"]})
}

/// Writes `rules` and the unit tests into a temp dir and runs promtool on them.
fn promtool_on(label: &str, rules: &Value) {
    let promtool = tool("PROMTOOL");
    let dir = std::env::temp_dir().join(format!(
        "kpo-alerts-{label}-{}",
        testsupport::random_suffix(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // JSON is YAML: promtool reads it as is.
    let rules_path = dir.join("rules.yaml");
    std::fs::write(&rules_path, serde_json::to_string_pretty(rules).unwrap()).unwrap();
    let tests_path = dir.join("alerts_test.yaml");
    std::fs::copy(
        repo().join("manifests/overlays/monitoring/alerts_test.yaml"),
        &tests_path,
    )
    .unwrap();
    let o = run(
        &promtool,
        &["check", "rules", rules_path.to_str().unwrap()],
        None,
    );
    assert!(
        o.ok,
        "{label}: promtool check rules:\n{}{}",
        o.stdout, o.stderr
    );
    let o = run(
        &promtool,
        &["test", "rules", tests_path.to_str().unwrap()],
        None,
    );
    assert!(
        o.ok,
        "{label}: promtool test rules:\n{}{}",
        o.stdout, o.stderr
    );
    assert!(o.stdout.contains("SUCCESS"), "{}", o.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kustomize_alerts_pass_promtool() {
    let objs = kustomize(&repo().join("manifests/overlays/monitoring"));
    promtool_on("kustomize", &rules_of(&objs));
}

#[test]
fn chart_alerts_pass_promtool() {
    let objs = helm_template(&["sweeper.mode=interval", "monitoring.enabled=true"]);
    promtool_on("helm", &rules_of(&objs));
}

#[test]
fn every_alert_has_a_runbook_and_unit_tests_both_ways() {
    let objs = kustomize(&repo().join("manifests/overlays/monitoring"));
    let rules = rules_of(&objs);
    let readme = std::fs::read_to_string(repo().join("manifests/README.md")).unwrap();
    let tests =
        std::fs::read_to_string(repo().join("manifests/overlays/monitoring/alerts_test.yaml"))
            .unwrap();
    let tests = yaml_docs(&tests).remove(0);
    let mut n = 0;
    for g in rules["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let Some(alert) = r["alert"].as_str() else {
                continue;
            };
            n += 1;
            assert!(
                readme.contains(&format!("### {alert}")),
                "manifests/README.md has no runbook section `### {alert}`"
            );
            let anchor = format!("manifests/README.md#{}", alert.to_lowercase());
            assert_eq!(r["annotations"]["runbook"], anchor.as_str(), "{alert}");
            let (mut firing, mut quiet) = (false, false);
            for t in tests["tests"].as_array().unwrap() {
                for a in t["alert_rule_test"].as_array().into_iter().flatten() {
                    if a["alertname"] != alert {
                        continue;
                    }
                    match a["exp_alerts"].as_array().map(Vec::len) {
                        Some(0) | None => quiet = true,
                        Some(_) => firing = true,
                    }
                }
            }
            assert!(
                firing && quiet,
                "{alert}: unit tests firing={firing} not-firing={quiet}"
            );
        }
    }
    assert!(n >= 10, "{n} alerts");
}
