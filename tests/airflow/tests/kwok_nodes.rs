//! The nodes that run pods (issue 12, part 1): kube-scheduler places pods on the kwok nodes of
//! `tests/env/up`, and kwok plays their kubelet with the stages of tests/env/kwok/kwok.yaml. A missing
//! environment fails these tests (testsupport panics), it never skips them.

use std::time::{Duration, Instant};

use airflow_e2e::{kwok, wait_for};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

async fn create(pods: &Api<Pod>, pod: &Pod) {
    pods.create(&PostParams::default(), pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {:?}: {e}", pod.metadata.name));
}

async fn get(pods: &Api<Pod>, name: &str) -> Result<Pod, String> {
    pods.get(name).await.map_err(|e| e.to_string())
}

fn states(pod: &Pod) -> String {
    format!(
        "phase {:?} node {:?} containers {:?}",
        kwok::phase(pod),
        pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        kwok::container_states(pod)
    )
}

async fn force_delete_all(pods: &Api<Pod>) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let _ = pods
        .delete_collection(&dp, &kube::api::ListParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kwok_nodes_are_ready_tainted_and_selected_by_label() {
    let admin: Client = testsupport::client().await;
    let nodes: Api<Node> = Api::all(admin);
    let (key, value, effect) = kwok::taint();
    for name in kwok::nodes() {
        let node = nodes
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("kwok node {name} (KWOK_NODES): {e}"));
        let ready = node
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "kwok node {name} is not Ready: {:?}", node.status);
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        assert!(
            taints.iter().any(|t| t.key == key
                && t.value.as_deref() == Some(value.as_str())
                && t.effect == effect),
            "kwok node {name} lacks the taint {key}={value}:{effect}: {taints:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_exits_sidecars_run_on_and_graceful_deletes_wait_out_their_grace() {
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "kwok-nodes").await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let kwok_nodes = kwok::nodes();

    // base + sidecar: scheduled onto a kwok node, Running, then base exits 0 and the sidecar runs on.
    create(
        &pods,
        &kwok::pod("with-sidecar", &["base", "sidecar"], 3, &[]),
    )
    .await;
    // base alone: Succeeded once base exits.
    create(&pods, &kwok::pod("base-only", &["base"], 30, &[])).await;
    // A pod without the toleration: the scheduler finds no node for it (kwok nodes are tainted, other
    // tests' Nodes have no allocatable pods), so it never runs.
    let mut untolerated = kwok::pod("untolerated", &["base"], 30, &[]);
    untolerated.spec.as_mut().unwrap().tolerations = None;
    create(&pods, &untolerated).await;

    let running = wait_for(
        "with-sidecar to run on a kwok node",
        Duration::from_secs(60),
        || async {
            let p = get(&pods, "with-sidecar").await?;
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let all_running = kwok::container_states(&p)
                .iter()
                .all(|(_, s)| s == "running");
            if kwok::phase(&p) == "Running"
                && all_running
                && node.as_ref().is_some_and(|n| kwok_nodes.contains(n))
            {
                Ok(Instant::now())
            } else {
                Err(states(&p))
            }
        },
    )
    .await;
    let p = wait_for(
        "base of with-sidecar to exit while the sidecar runs",
        Duration::from_secs(60),
        || async {
            let p = get(&pods, "with-sidecar").await?;
            let st = kwok::container_states(&p);
            if st.contains(&("base".to_owned(), "terminated(0)".to_owned())) {
                Ok(p)
            } else {
                Err(states(&p))
            }
        },
    )
    .await;
    let ran_for = running.elapsed();
    assert!(
        ran_for >= Duration::from_secs(2),
        "base exited {ran_for:?} after the pod ran; the stage says 3 s"
    );
    assert_eq!(kwok::phase(&p), "Running", "{}", states(&p));
    assert!(
        kwok::container_states(&p).contains(&("sidecar".to_owned(), "running".to_owned())),
        "{}",
        states(&p)
    );
    wait_for("base-only to succeed", Duration::from_secs(60), || async {
        let p = get(&pods, "base-only").await?;
        if kwok::phase(&p) == "Succeeded" {
            Ok(())
        } else {
            Err(states(&p))
        }
    })
    .await;
    wait_for(
        "the scheduler to report untolerated as unschedulable",
        Duration::from_secs(60),
        || async {
            let p = get(&pods, "untolerated").await?;
            let unschedulable = p
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                });
            if unschedulable {
                Ok(())
            } else {
                Err(states(&p))
            }
        },
    )
    .await;
    let p = get(&pods, "untolerated").await.unwrap();
    assert_eq!(p.spec.as_ref().unwrap().node_name, None, "{}", states(&p));

    // The sidecar pod still runs some time later: after base's exit, nothing ends it but a delete.
    let p = get(&pods, "with-sidecar").await.unwrap();
    assert_eq!(kwok::phase(&p), "Running", "{}", states(&p));

    // A graceful delete (grace 3 s, the pod's own) leaves it Terminating until its deletionTimestamp.
    let asked = Instant::now();
    pods.delete("with-sidecar", &DeleteParams::default())
        .await
        .unwrap();
    let p = get(&pods, "with-sidecar")
        .await
        .expect("still there, Terminating");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert!(
        testsupport::wait_for_pod_gone(&admin, &ns, "with-sidecar", Duration::from_secs(30)).await,
        "with-sidecar still Terminating 30 s after a delete with grace 3 s"
    );
    let took = asked.elapsed();
    let deadline = p.metadata.deletion_timestamp.as_ref().unwrap().0;
    let gone_at = k8s_openapi::jiff::Timestamp::now();
    // deletionTimestamp has second precision (delete time + 3 s, truncated): kwok removed the pod once it
    // passed, not before, and not much later.
    assert!(
        gone_at >= deadline && took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "with-sidecar (grace 3 s, deletionTimestamp {deadline}) was removed at {gone_at}, {took:?} after the delete"
    );

    // A delete with grace 0 removes a running pod at once.
    create(
        &pods,
        &kwok::pod("forced", &["base", "sidecar"], 86400, &[]),
    )
    .await;
    wait_for("forced to run", Duration::from_secs(60), || async {
        let p = get(&pods, "forced").await?;
        if kwok::phase(&p) == "Running" {
            Ok(())
        } else {
            Err(states(&p))
        }
    })
    .await;
    let grace0 = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("forced", &grace0).await.unwrap();
    let left = pods.get_opt("forced").await.unwrap();
    assert!(
        left.is_none(),
        "forced is still there right after a grace-0 delete: {:?}",
        left.map(|p| states(&p))
    );
    force_delete_all(&pods).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_bound_to_other_nodes_stay_kubelet_less() {
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "kwok-outside").await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let node = format!("no-kubelet-{}", testsupport::random_suffix(6));
    testsupport::create_node(&admin, &node).await;
    let mut pod = kwok::pod("bound", &["base", "sidecar"], 1, &[]);
    pod.spec.as_mut().unwrap().node_name = Some(node.clone());
    create(&pods, &pod).await;
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let p = get(&pods, "bound").await.expect("Terminating");
    let deadline = p
        .metadata
        .deletion_timestamp
        .as_ref()
        .expect("a deletionTimestamp")
        .0;
    // Past its deletionTimestamp (plus kwok's reaction time) nobody removed it: no kwok stage touches a pod
    // on a Node outside kwok's label selector, and its status stays untouched.
    wait_for(
        "2 s past the deletionTimestamp",
        Duration::from_secs(30),
        || async {
            let now = k8s_openapi::jiff::Timestamp::now();
            if now.as_second() >= deadline.as_second() + 2 {
                Ok(())
            } else {
                Err(format!("now {now}, deletionTimestamp {deadline}"))
            }
        },
    )
    .await;
    let p = get(&pods, "bound").await.expect("still Terminating");
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.clone()).as_deref(),
        Some("Pending")
    );
    assert!(kwok::container_states(&p).is_empty(), "{}", states(&p));
    force_delete_all(&pods).await;
}
