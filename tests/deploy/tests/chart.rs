//! The Helm chart (`manifests/chart/`): `helm lint`, and `helm template` for each mode checked
//! object by object against the kustomize overlay of the same mode: the same objects (kind, name,
//! namespace) and the same pod specs (args, env, security, probes), RBAC rules and bindings, webhook
//! configuration, NetworkPolicies, monitoring objects and parameters.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;

use deploy_tests::*;
use serde_json::Value;

/// Every mode: the chart's `--set`s and the overlay that renders the same objects.
const MODES: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("overlays/cluster-wide", &["clusterWide=true"]),
    ("overlays/cert-manager", &["certs.mode=cert-manager"]),
    ("overlays/interval", &["sweeper.mode=interval"]),
    (
        "overlays/monitoring",
        &["sweeper.mode=interval", "monitoring.enabled=true"],
    ),
];

#[test]
fn helm_lint_passes_in_every_mode() {
    let chart = chart_dir().display().to_string();
    for (_, sets) in MODES {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        for s in *sets {
            args.extend(["--set", s]);
        }
        let o = helm(&args);
        assert!(o.ok, "helm {}:\n{}{}", args.join(" "), o.stdout, o.stderr);
    }
}

#[test]
fn helm_refuses_unknown_modes() {
    let chart = chart_dir().display().to_string();
    for (set, needle) in [
        (
            "sweeper.mode=daemon",
            "sweeper.mode must be cronjob or interval",
        ),
        (
            "certs.mode=vault",
            "certs.mode must be self or cert-manager",
        ),
    ] {
        let o = helm(&["template", "x", &chart, "--set", set]);
        assert!(!o.ok && o.stderr.contains(needle), "{set}: {}", o.stderr);
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

#[test]
fn helm_template_matches_kustomize_in_every_mode() {
    for (overlay, sets) in MODES {
        let kz = by_key(kustomize(&repo().join("manifests").join(overlay)));
        let hm = by_key(helm_template(sets));
        let kz_keys: Vec<_> = kz.keys().collect();
        let hm_keys: Vec<_> = hm.keys().collect();
        assert_eq!(
            hm_keys, kz_keys,
            "{overlay} vs helm {sets:?}: different objects"
        );
        for (k, o) in &kz {
            let want = projection(o);
            let got = projection(&hm[k]);
            assert_eq!(
                got,
                want,
                "{overlay} vs helm {sets:?}: {k:?} differs\nhelm:\n{}\nkustomize:\n{}",
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            );
        }
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
/// with metrics on an IPv6-capable address.
#[test]
fn interval_mode_command_lines_parse() {
    use clap::Parser;
    for objs in [
        kustomize(&repo().join("manifests/overlays/interval")),
        helm_template(&["sweeper.mode=interval"]),
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
        assert!(args.delete && !args.owners.is_empty(), "{line:?}");
    }
}
