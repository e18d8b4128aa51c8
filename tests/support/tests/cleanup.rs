//! Tests leave no pods behind: [`testsupport::DeletePodsOnDrop`] deletes a namespace's pods (grace 0,
//! bound and running ones included) when the test ends, whether it passed or panicked, and
//! [`testsupport::leftover_pods`] (the check at the end of `make test`) sees the pods a test forgets.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use testsupport::TiSpec;

/// Makes `n` KPO pods in `ns`, the first bound to a Node and Running (a kubelet-less node: only a
/// grace-0 delete removes it).
async fn make_pods(client: &kube::Client, ns: &str, n: usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for i in 0..n {
        let ti = TiSpec::new("cleanup_dag", &format!("task_{i}"), "manual__2025-01-01");
        pods.create(
            &PostParams::default(),
            &testsupport::kpo_pod(&format!("p{i}"), &ti),
        )
        .await
        .expect("create pod");
    }
    let node = format!("node-{ns}");
    testsupport::create_node(client, &node).await;
    testsupport::bind_pod(client, ns, "p0", &node).await;
    testsupport::set_pod_phase(client, ns, "p0", "Running").await;
}

async fn left_in(client: &kube::Client, ns: &str) -> usize {
    let created = Api::<Namespace>::all(client.clone())
        .get(ns)
        .await
        .expect("get namespace")
        .metadata
        .creation_timestamp;
    let left = testsupport::leftover_pods(client, created.as_ref())
        .await
        .expect("leftover_pods");
    left.get(ns).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_passing_test_leaves_no_pod_and_the_check_sees_forgotten_ones() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "cleanup-pass").await;
    {
        let _pods = testsupport::DeletePodsOnDrop::new(&ns);
        make_pods(&client, &ns, 3).await;
        // Forgotten pods are what the check reports.
        assert_eq!(left_in(&client, &ns).await, 3);
    }
    assert_eq!(left_in(&client, &ns).await, 0, "the guard deleted them");
}

#[tokio::test]
async fn a_panicking_test_leaves_no_pod() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "cleanup-panic").await;
    let (c, n) = (client.clone(), ns.clone());
    let test = tokio::spawn(async move {
        let _pods = testsupport::DeletePodsOnDrop::new(&n);
        make_pods(&c, &n, 2).await;
        assert_eq!(left_in(&c, &n).await, 2);
        panic!("the test fails after making its pods");
    });
    assert!(test.await.unwrap_err().is_panic());
    assert_eq!(left_in(&client, &ns).await, 0, "the guard deleted them");
}
