//! End to end on the real kube-apiserver of `tests/env/up` (docs/design.md §6): the `webhook` binary on
//! loopback, called by the apiserver through a MutatingWebhookConfiguration with a test CA's caBundle
//! (failurePolicy Ignore, objectSelector `kubernetes_pod_operator=True`, scoped to the test's namespace).
//! Pods are created as the Airflow worker's service account (impersonated). A missing environment fails
//! these tests (testsupport panics), it never skips them.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::k8s::*;
use common::{Ca, SecretDir, wait_for_leaf};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;
use testsupport::{TiSpec, kpo_pod};
use tikey::stamp;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs `body`, then deletes the webhook configuration whatever happened, then re-raises a panic.
async fn with_cleanup<F>(admin: &Client, config: &str, body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(body).await;
    unregister(admin, config).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The audit event of the `create` of pod `ns/name` (ResponseComplete), waiting up to 10 s for it.
async fn audit_event(log: &Path, ns: &str, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", log.display()));
        let found = text
            .lines()
            .rev()
            .filter(|l| l.contains(name))
            .find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                let o = &v["objectRef"];
                (v["verb"] == "create"
                    && v["stage"] == "ResponseComplete"
                    && o["resource"] == "pods"
                    && o["namespace"] == ns
                    && o["name"] == name
                    && o.get("subresource").is_none())
                .then_some(v)
            });
        if let Some(v) = found {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit event for the create of {ns}/{name} in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn plain_pod(name: &str) -> Pod {
    let mut p = kpo_pod(name, &TiSpec::new("d", "t", "r"));
    p.metadata.labels = Some(BTreeMap::from([(
        "app".to_owned(),
        "not-airflow".to_owned(),
    )]));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpo_pods_are_stamped_through_the_apiserver_and_creation_fails_open() {
    common::install_provider();
    let env = testsupport::env();
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "webhook-e2e").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    grant_worker(&admin, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("e2e CA");
    let secret = SecretDir::new(&dir.path().join("tls"), &ca.leaf("webhook", false));
    let hook = WebhookProcess::start(
        Path::new(env!("CARGO_BIN_EXE_webhook")),
        &secret,
        "1s",
        dir.path().join("webhook.log"),
    )
    .await;
    let config = register(&admin, &ns, hook.addr, &ca.pem).await;
    let audit_log = env.audit_log.clone();
    let admin2 = admin.clone();
    with_cleanup(&admin, &config.clone(), async move {
        let _dir = dir;
        let worker = testsupport::impersonating_client(WORKER, WORKER_GROUPS).await;
        let pods: Api<Pod> = Api::namespaced(worker, &ns);
        let stored: Api<Pod> = Api::namespaced(admin2, &ns);
        wait_until_active(&pods).await;

        // A KPO pod: the full stamp, as the worker identity.
        let ti = TiSpec::new(
            "billing.hourly",
            "extract/gcs",
            "scheduled__2026-11-19T01:00:00+00:00",
        )
        .map_index(3)
        .try_number(2);
        let before = now();
        pods.create(&PostParams::default(), &kpo_pod("kpo-1", &ti))
            .await
            .unwrap();
        let after = now();
        let pod = stored.get("kpo-1").await.unwrap();
        let s = stamp_of(&pod);
        assert_eq!(s[stamp::TI_KEY], ti.key().encode(), "{s:?}");
        assert_eq!(s[stamp::TRY_NUMBER], "2");
        assert_eq!(s[stamp::CREATED_BY], WORKER);
        let at: i64 = s[stamp::ADMITTED_AT].parse().unwrap();
        assert!(
            (before..=after).contains(&at),
            "admitted-at {at} not in [{before}, {after}]"
        );
        assert!(has_stamped_label(&pod));
        // The sweeper's reading of it agrees with the labels.
        let decoded = stamp::Stamp::from_annotations(pod.metadata.annotations.as_ref().unwrap())
            .unwrap()
            .unwrap();
        let (key, try_number) =
            tikey::TiKey::from_pod_labels(pod.metadata.labels.as_ref().unwrap()).unwrap();
        assert_eq!(decoded.ti_key, Some(key));
        assert_eq!(decoded.try_number, Some(try_number));

        // The audit log holds the same facts for this create, under the webhook's name.
        let event = audit_event(&audit_log, &ns, "kpo-1").await;
        let ann = &event["annotations"];
        let key = |k: &str| format!("{WEBHOOK_NAME}/{k}");
        assert_eq!(ann[key("ti-key")], ti.key().encode(), "{event}");
        assert_eq!(ann[key("try-number")], "2");
        assert_eq!(ann[key("created-by")], WORKER);
        assert_eq!(ann[key("admitted-at")], at.to_string());
        assert_eq!(event["impersonatedUser"]["username"], WORKER);

        // A stale stamp in the manifest is overwritten.
        let mut stale = kpo_pod("kpo-stale", &ti.clone().try_number(4));
        stale.metadata.annotations = Some(BTreeMap::from([
            (stamp::TI_KEY.to_owned(), "other/other/other/-1".to_owned()),
            (stamp::CREATED_BY.to_owned(), "someone-else".to_owned()),
            ("keep".to_owned(), "me".to_owned()),
        ]));
        pods.create(&PostParams::default(), &stale).await.unwrap();
        let pod = stored.get("kpo-stale").await.unwrap();
        let s = stamp_of(&pod);
        assert_eq!(s[stamp::TI_KEY], ti.key().encode());
        assert_eq!(s[stamp::TRY_NUMBER], "4");
        assert_eq!(s[stamp::CREATED_BY], WORKER);
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()["keep"], "me");

        // A KPO pod without identity: epoch and creator, no key.
        let mut legacy = kpo_pod("kpo-legacy", &ti);
        let labels = legacy.metadata.labels.as_mut().unwrap();
        labels.remove("run_id");
        labels.insert(
            "execution_date".to_owned(),
            "2021-01-01T0000000000-0a1b2c3d4".to_owned(),
        );
        pods.create(&PostParams::default(), &legacy).await.unwrap();
        let pod = stored.get("kpo-legacy").await.unwrap();
        let s = stamp_of(&pod);
        assert!(!s.contains_key(stamp::TI_KEY), "{s:?}");
        assert!(!s.contains_key(stamp::TRY_NUMBER), "{s:?}");
        assert_eq!(s[stamp::CREATED_BY], WORKER);
        assert!(s.contains_key(stamp::ADMITTED_AT));
        assert!(has_stamped_label(&pod));

        // A server-side dry run shows the stamp (and stores nothing).
        let dry = pods
            .create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &kpo_pod("kpo-dry", &ti),
            )
            .await
            .unwrap();
        assert_eq!(stamp_of(&dry)[stamp::TI_KEY], ti.key().encode());
        assert!(stored.get_opt("kpo-dry").await.unwrap().is_none());

        // A pod that is not KPO's is untouched (the objectSelector keeps it from the webhook).
        pods.create(&PostParams::default(), &plain_pod("plain-1"))
            .await
            .unwrap();
        let pod = stored.get("plain-1").await.unwrap();
        assert!(stamp_of(&pod).is_empty());
        assert!(!has_stamped_label(&pod));
        let event = audit_event(&audit_log, &ns, "plain-1").await;
        assert!(
            !event["annotations"]
                .as_object()
                .is_some_and(|a| a.keys().any(|k| k.starts_with(WEBHOOK_NAME))),
            "{event}"
        );

        // The webhook stops (SIGTERM, exit 0): creation still succeeds, unstamped (fail-open).
        let log = hook.log_text();
        assert_eq!(hook.stop().await, Some(0));
        let started = std::time::Instant::now();
        pods.create(&PostParams::default(), &kpo_pod("kpo-down", &ti))
            .await
            .unwrap();
        let took = started.elapsed();
        let pod = stored.get("kpo-down").await.unwrap();
        assert!(stamp_of(&pod).is_empty(), "stamped with the webhook down?");
        assert!(
            took < Duration::from_secs(5),
            "create took {took:?} with the webhook down"
        );
        // No log line per good request.
        assert!(!log.contains("kpo-1"), "{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_during_600_pod_creates_loses_nothing() {
    const PODS: usize = 600;
    const CONCURRENCY: usize = 8;
    const ROTATE_AFTER: usize = 100;
    common::install_provider();
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "webhook-rotate").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    grant_worker(&admin, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    // A CA rotation as the certs tool does it: the caBundle trusts old and new CA during the overlap.
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let bundle = format!("{}{}", old_ca.pem, new_ca.pem);
    let mut secret = SecretDir::new(&dir.path().join("tls"), &old_ca.leaf("webhook-old", false));
    let hook = WebhookProcess::start(
        Path::new(env!("CARGO_BIN_EXE_webhook")),
        &secret,
        "200ms",
        dir.path().join("webhook.log"),
    )
    .await;
    let config = register(&admin, &ns, hook.addr, &bundle).await;
    let admin2 = admin.clone();
    with_cleanup(&admin, &config.clone(), async move {
        let _dir = &dir;
        let worker = testsupport::impersonating_client(WORKER, WORKER_GROUPS).await;
        let pods: Api<Pod> = Api::namespaced(worker, &ns);
        wait_until_active(&pods).await;

        let done = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let epoch = std::time::Instant::now();
        let mut creators = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (pods, done, next) = (pods.clone(), done.clone(), next.clone());
            creators.spawn(async move {
                // (index, started after, error)
                let mut results = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= PODS {
                        return results;
                    }
                    let ti = TiSpec::new("rotation_dag", &format!("task_{i}"), "manual__2026-11-27T00:00:00+00:00");
                    let started = epoch.elapsed();
                    let r = pods.create(&PostParams::default(), &kpo_pod(&format!("rot-{i}"), &ti)).await;
                    results.push((i, started, r.err().map(|e| e.to_string())));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }

        // Rotate mid-stream, the kubelet's way, and note when the new certificate is served.
        while done.load(Ordering::SeqCst) < ROTATE_AFTER {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let new_leaf = new_ca.leaf("webhook-new", false);
        secret.swap(&new_leaf);
        assert!(
            wait_for_leaf(hook.addr, &[&new_ca.pem], &new_leaf.der, Duration::from_secs(10)).await,
            "the new certificate was never served"
        );
        let served_new_at = epoch.elapsed();
        let done_at_rotation = done.load(Ordering::SeqCst);

        let mut results = Vec::new();
        while let Some(r) = creators.join_next().await {
            results.extend(r.unwrap());
        }
        assert_eq!(results.len(), PODS);
        let failed: Vec<_> = results.iter().filter(|r| r.2.is_some()).collect();
        assert!(failed.is_empty(), "{} failed creates, e.g. {:?}", failed.len(), failed.first());

        let stored: Api<Pod> = Api::namespaced(admin2, &ns);
        let list = stored.list(&ListParams::default()).await.unwrap();
        let by_name: BTreeMap<String, Pod> = list
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap(), p))
            .collect();
        let mut after_new = 0;
        let mut unstamped = Vec::new();
        for (i, started, _) in &results {
            let name = format!("rot-{i}");
            let pod = by_name.get(&name).unwrap_or_else(|| panic!("{name} not stored"));
            let stamped = stamp_of(pod).contains_key(stamp::TI_KEY) && has_stamped_label(pod);
            if *started > served_new_at {
                after_new += 1;
            }
            if !stamped {
                unstamped.push((name, *started > served_new_at));
            }
        }
        assert!(
            after_new >= 100,
            "only {after_new} creates started after the new certificate was served (rotation after {done_at_rotation})"
        );
        eprintln!(
            "rotation: new certificate served after {done_at_rotation} creates, at {served_new_at:?}; \
             {after_new} of {PODS} creates started after it"
        );
        // Every pod is stamped: those created after the new certificate was served, and the others too.
        assert!(unstamped.is_empty(), "unstamped pods (name, after new cert): {unstamped:?}");
        assert_eq!(hook.stop().await, Some(0));
    })
    .await;
}
