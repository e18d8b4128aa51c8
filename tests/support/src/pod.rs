//! KPO-shaped pods, built the way cncf-kubernetes 10.25.0 builds them (`operators/pod.py`
//! `build_pod_request_obj`, `_get_ti_pod_labels`, `utils/xcom_sidecar.py`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSpec, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use tikey::labels;
use tikey::make_safe_label_value;

use crate::db::TiSpec;

/// `airflow_version` label KPO adds (Airflow's version, `+` replaced by `-`); the golden label sets were
/// made with Airflow 3.3.2.
pub const AIRFLOW_VERSION_LABEL: (&str, &str) = ("airflow_version", "3.3.2");
/// `airflow_kpo_in_cluster` label KPO adds (`str(hook.is_in_cluster)`); `False` as in the golden sets.
pub const KPO_IN_CLUSTER_LABEL: (&str, &str) = ("airflow_kpo_in_cluster", "False");
/// The xcom sidecar's command: it traps SIGINT and loops forever otherwise (docs/design.md §1).
pub const XCOM_SIDECAR_CMD: &str = r#"trap "exit 0" INT; while true; do sleep 1; done;"#;
const XCOM_SIDECAR_IMAGE: &str = "alpine:3.24.2";

/// The labels KPO puts on the pod of `ti`: each value of `_get_ti_pod_labels` through
/// `make_safe_label_value` (`map_index` only when >= 0), plus `airflow_version` and
/// `airflow_kpo_in_cluster`.
pub fn kpo_labels(ti: &TiSpec) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        l.insert(k.to_owned(), make_safe_label_value(v));
    };
    put(labels::DAG_ID, &ti.dag_id);
    put(labels::TASK_ID, &ti.task_id);
    put(labels::RUN_ID, &ti.run_id);
    put(labels::KPO, labels::KPO_VALUE);
    if ti.map_index >= 0 {
        put(labels::MAP_INDEX, &ti.map_index.to_string());
    }
    put(labels::TRY_NUMBER, &ti.try_number.to_string());
    l.insert(
        AIRFLOW_VERSION_LABEL.0.to_owned(),
        AIRFLOW_VERSION_LABEL.1.to_owned(),
    );
    l.insert(
        KPO_IN_CLUSTER_LABEL.0.to_owned(),
        KPO_IN_CLUSTER_LABEL.1.to_owned(),
    );
    l
}

/// A bare pod as KPO creates it for `ti` (do_xcom_push on): [`kpo_labels`], a `base` container, the
/// `airflow-xcom-sidecar` container (alpine, looping until SIGINT), the `xcom` emptyDir mounted at
/// `/airflow/xcom` in both, `restartPolicy: Never`. No namespace: the caller's `Api` sets it.
pub fn kpo_pod(name: &str, ti: &TiSpec) -> Pod {
    let xcom_mount = VolumeMount {
        name: "xcom".to_owned(),
        mount_path: "/airflow/xcom".to_owned(),
        ..VolumeMount::default()
    };
    let base = Container {
        name: "base".to_owned(),
        image: Some("busybox:1.36".to_owned()),
        command: Some(vec!["sh".to_owned(), "-c".to_owned()]),
        args: Some(vec![
            "echo '{}' > /airflow/xcom/return.json; sleep 3600".to_owned(),
        ]),
        volume_mounts: Some(vec![xcom_mount.clone()]),
        ..Container::default()
    };
    let sidecar = Container {
        name: "airflow-xcom-sidecar".to_owned(),
        image: Some(XCOM_SIDECAR_IMAGE.to_owned()),
        command: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            XCOM_SIDECAR_CMD.to_owned(),
        ]),
        volume_mounts: Some(vec![xcom_mount]),
        resources: Some(ResourceRequirements {
            requests: Some(
                [
                    ("cpu".to_owned(), Quantity("1m".to_owned())),
                    ("memory".to_owned(), Quantity("10Mi".to_owned())),
                ]
                .into(),
            ),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(kpo_labels(ti)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![base, sidecar],
            restart_policy: Some("Never".to_owned()),
            volumes: Some(vec![Volume {
                name: "xcom".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_pod_has_no_map_index_label_and_parses_back() {
        let ti = TiSpec::new("dag", "task", "scheduled__2024-01-01T00:00:00+00:00").try_number(3);
        let pod = kpo_pod("p", &ti);
        let labels = pod.metadata.labels.unwrap();
        assert!(!labels.contains_key("map_index"));
        assert_eq!(
            labels["run_id"],
            "scheduled__2024-01-01T0000000000-654f198ec"
        );
        let (key, try_number) = tikey::TiKey::from_pod_labels(&labels).unwrap();
        assert_eq!(key, ti.key());
        assert_eq!(try_number, 3);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.containers[1].name, "airflow-xcom-sidecar");
    }

    #[test]
    fn mapped_pod_has_map_index_label() {
        let ti = TiSpec::new("d", "t", "r").map_index(7);
        let labels = kpo_labels(&ti);
        assert_eq!(labels["map_index"], "7");
        assert_eq!(
            tikey::TiKey::from_pod_labels(&labels).unwrap().0.map_index,
            7
        );
    }
}
