//! The kwok nodes of `tests/env/up` (env keys `KWOK_NODES`, `KWOK_NODE_TAINT`) and pods that run there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Toleration};
use kube::api::ObjectMeta;

/// Pod annotation read by the `base-exit` stage (tests/env/kwok/kwok.yaml): how long `base` runs (a Go
/// duration such as `45s`; default 3 s).
pub const BASE_RUNS_FOR: &str = "kwok.kpo-sweeper.io/base-runs-for";

/// The fake nodes' names (`KWOK_NODES`, comma separated); panics when the env file has none.
pub fn nodes() -> Vec<String> {
    let v = testsupport::env().var("KWOK_NODES");
    let nodes: Vec<String> = v
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        nodes.len() >= 2,
        "KWOK_NODES={v:?}: tests/env/up starts at least two kwok nodes"
    );
    nodes
}

/// `(key, value, effect)` of the taint on every kwok node (`KWOK_NODE_TAINT`, `key=value:Effect`).
pub fn taint() -> (String, String, String) {
    let t = testsupport::env().var("KWOK_NODE_TAINT");
    let (kv, effect) = t
        .split_once(':')
        .unwrap_or_else(|| panic!("KWOK_NODE_TAINT={t:?} is not key=value:Effect"));
    let (k, v) = kv
        .split_once('=')
        .unwrap_or_else(|| panic!("KWOK_NODE_TAINT={t:?} is not key=value:Effect"));
    (k.to_owned(), v.to_owned(), effect.to_owned())
}

/// The toleration of that taint, which only these tests' pods carry.
pub fn toleration() -> Toleration {
    let (key, value, effect) = taint();
    Toleration {
        key: Some(key),
        operator: Some("Equal".to_owned()),
        value: Some(value),
        effect: Some(effect),
        ..Toleration::default()
    }
}

/// A bare pod (no nodeName: the scheduler places it) with the kwok toleration and one busybox container
/// per name; `grace` is its terminationGracePeriodSeconds.
pub fn pod(name: &str, containers: &[&str], grace: i64, annotations: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                testsupport::TEST_LABEL.to_owned(),
                "true".to_owned(),
            )])),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    name: (*c).to_owned(),
                    image: Some("busybox:1.36".to_owned()),
                    command: Some(vec!["sh".to_owned(), "-c".to_owned()]),
                    args: Some(vec!["sleep infinity".to_owned()]),
                    ..Container::default()
                })
                .collect(),
            restart_policy: Some("Never".to_owned()),
            termination_grace_period_seconds: Some(grace),
            tolerations: Some(vec![toleration()]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// `(name, state)` of each container status: `running`, `terminated(<exit code>)` or `waiting`.
pub fn container_states(pod: &Pod) -> Vec<(String, String)> {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| {
            let st = c.state.as_ref();
            let state = if st.and_then(|s| s.running.as_ref()).is_some() {
                "running".to_owned()
            } else if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
                format!("terminated({})", t.exit_code)
            } else {
                "waiting".to_owned()
            };
            (c.name.clone(), state)
        })
        .collect()
}

/// The pod's phase ("" when it has none yet).
pub fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}
