//! Tests leave no pods behind (docs/design.md §6). The env is reused across runs and no garbage collector
//! runs here (no kube-controller-manager), so a pod a test forgets stays in etcd forever: it slows every
//! cluster-wide LIST, and the scheduler retries it when it is schedulable.
//!
//! - [`DeletePodsOnDrop`]: a guard that deletes every pod of one namespace (grace 0) when it is dropped,
//!   whether the test passed or panicked. Take one right after [`crate::fresh_namespace`].
//! - [`leftover_pods`]: the pods still in test namespaces, for the check at the end of `make test`
//!   (`cargo run -p testsupport --bin leftover-pods`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};

use crate::TEST_LABEL;

/// Deletes every pod in its namespace, with grace 0, when dropped (pass or panic).
#[must_use = "the pods are deleted when this guard is dropped: bind it to a variable (`let _pods = …`)"]
pub struct DeletePodsOnDrop {
    ns: String,
}

impl DeletePodsOnDrop {
    pub fn new(ns: &str) -> DeletePodsOnDrop {
        DeletePodsOnDrop { ns: ns.to_owned() }
    }
}

impl Drop for DeletePodsOnDrop {
    fn drop(&mut self) {
        let ns = self.ns.clone();
        // Its own runtime on its own thread: the test's runtime may be the one dropping us, and a
        // current-thread runtime cannot block on itself.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            rt.block_on(delete_pods_in(&ns))
        })
        .join();
        if let Ok(Err(e)) = joined {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Deletes every pod of `ns` with grace 0 (no kubelet here: grace 0 removes them at once).
pub async fn delete_pods_in(ns: &str) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(crate::client().await, ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    api.delete_collection(&dp, &ListParams::default())
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot delete the pods of namespace {ns}: {e}"))
}

/// The number of pods in each namespace labelled [`TEST_LABEL`] (created at or after `since`, when
/// given), for the namespaces that hold any.
pub async fn leftover_pods(
    client: &Client,
    since: Option<&Time>,
) -> Result<BTreeMap<String, usize>, kube::Error> {
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(TEST_LABEL))
        .await?;
    let ours: BTreeSet<String> = namespaces
        .items
        .into_iter()
        .filter(
            |ns| match (since, ns.metadata.creation_timestamp.as_ref()) {
                (Some(since), Some(created)) => created.0 >= since.0,
                _ => true,
            },
        )
        .filter_map(|ns| ns.metadata.name)
        .collect();
    let mut left = BTreeMap::new();
    // One cluster-wide LIST, not one per namespace: tests make hundreds of namespaces.
    let pods = Api::<Pod>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?;
    for pod in pods.items {
        if let Some(ns) = pod.metadata.namespace
            && ours.contains(&ns)
        {
            *left.entry(ns).or_insert(0) += 1;
        }
    }
    Ok(left)
}
