//! `manifests/base/guards.yaml` on the real kube-apiserver: the three ValidatingAdmissionPolicies,
//! installed scoped to each test's namespace (testsupport::admission), judged on real requests made as
//! the identities that make them in production (impersonated: the Airflow worker, the sweeper's service
//! account, another user, a stamp editor named in the policy).
//!
//! * honest creator: forged `created-by` refused at CREATE; our webhook's stamp (through the base's own
//!   MutatingWebhookConfiguration, the webhook in process) and unstamped pods always admitted; a forged
//!   stamp surviving a webhook that fails open is refused;
//! * immutability: any add, change or removal of a `kpo-sweeper.io/` annotation or label on UPDATE
//!   (patch, update, status) is refused unless the requester is named in the policy's editor lists;
//! * sweeper scope: the sweeper's service account deletes KPO pods only.
//!
//! The bindings select pods by an objectSelector (the stamp guards KPO pods, the sweeper-scope guard
//! every other pod): a stamp on a pod that is not a KPO pod is not checked, and relabelling such a pod
//! as a KPO pod is refused as a stamp edit.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Error};
use policies::hook::{self, RunningWebhook};
use policies::*;
use serde_json::{Value, json};
use testsupport::admission::{self, Installed};
use tikey::stamp;

const MALLORY: &str = "mallory";
const EDITOR: &str = "stamp-repairer";
const GROUP_EDITOR: &str = "oncall-alice";
const EDITOR_GROUP: &str = "kpo-sweeper-stamp-editors";

fn kpo_labels() -> BTreeMap<String, String> {
    golden_label_sets().remove(1)
}

fn plain_labels() -> BTreeMap<String, String> {
    [("app".to_owned(), "airflow-scheduler".to_owned())].into()
}

/// A stamp as our webhook writes it, for `creator`.
fn stamp_annotations(creator: &str) -> Value {
    json!({
        stamp::TI_KEY: "score/spark_extract/asset_triggered__2021-02-21T221551.604534-0700-b2507814b/-1",
        stamp::TRY_NUMBER: "5",
        stamp::ADMITTED_AT: "1764000000",
        stamp::CREATED_BY: creator,
    })
}

async fn create(api: &Api<Pod>, p: &Value) -> Result<Pod, Error> {
    api.create(
        &PostParams::default(),
        &serde_json::from_value::<Pod>(p.clone()).unwrap(),
    )
    .await
}

/// Asserts `r` is the guards' refusal: HTTP 403 (reason Forbidden) naming `policy`, whose message
/// contains each of `says`.
fn refused<T: std::fmt::Debug>(r: Result<T, Error>, policy: &str, says: &[&str]) -> String {
    match r {
        Err(Error::Api(s)) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(
                s.message.contains(policy),
                "names the policy {policy}: {}",
                s.message
            );
            for want in says {
                assert!(
                    s.message.contains(want),
                    "message says {want:?}: {}",
                    s.message
                );
            }
            s.message
        }
        other => panic!("expected a refusal by {policy}, got {other:?}"),
    }
}

/// The test namespace with the guards installed, and clients for each identity.
struct Guarded {
    admin: Client,
    ns: String,
    installed: Installed,
    worker: Api<Pod>,
    mallory: Api<Pod>,
    editor: Api<Pod>,
    group_editor: Api<Pod>,
    sweeper: Api<Pod>,
    /// Deletes the namespace's pods (grace 0) when the test ends, pass or fail.
    _pods: testsupport::DeletePodsOnDrop,
}

impl Guarded {
    async fn new(prefix: &str, editors: &str, editor_groups: &str) -> Guarded {
        let admin = testsupport::client().await;
        let ns = testsupport::fresh_namespace(&admin, prefix).await;
        let _pods = testsupport::DeletePodsOnDrop::new(&ns);
        let all = ["create", "get", "list", "patch", "update", "delete"];
        admission::grant_pods(&admin, &ns, "airflow-worker", WORKER, &all).await;
        admission::grant_pods(&admin, &ns, "mallory", MALLORY, &all).await;
        admission::grant_pods(&admin, &ns, "editor", EDITOR, &all).await;
        admission::grant_pods(&admin, &ns, "group-editor", GROUP_EDITOR, &all).await;
        // The sweeper's Role in manifests/base: list and delete.
        admission::grant_pods(&admin, &ns, "sweeper", SWEEPER, &["list", "delete"]).await;
        let variables = BTreeMap::from([
            ("editors".to_owned(), editors.to_owned()),
            ("editorGroups".to_owned(), editor_groups.to_owned()),
        ]);
        let objs = admission::manifest_objects(&guards_manifest());
        assert_eq!(
            admission::of_kind(&objs, "ValidatingAdmissionPolicy").len(),
            3
        );
        let installed = admission::install_scoped(&admin, &objs, &ns, &variables).await;
        let api = |c: Client| Api::<Pod>::namespaced(c, &ns);
        let auth = ["system:authenticated"];
        let worker = api(testsupport::impersonating_client(WORKER, WORKER_GROUPS).await);
        let mallory = api(testsupport::impersonating_client(MALLORY, &auth).await);
        let editor = api(testsupport::impersonating_client(EDITOR, &auth).await);
        let group_editor = api(testsupport::impersonating_client(
            GROUP_EDITOR,
            &[EDITOR_GROUP, "system:authenticated"],
        )
        .await);
        let sweeper = api(testsupport::impersonating_client(SWEEPER, SWEEPER_GROUPS).await);
        Guarded {
            admin,
            ns,
            installed,
            worker,
            mallory,
            editor,
            group_editor,
            sweeper,
            _pods,
        }
    }

    /// Waits until the apiserver enforces each of the three guards (server-side dry runs).
    async fn wait_until_active(&self) {
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let forged = pod(
            "probe-forged",
            &kpo_labels(),
            Some(&stamp_annotations(MALLORY)),
        );
        let forged: Pod = serde_json::from_value(forged).unwrap();
        admission::wait_until("honest-creator guard", Duration::from_secs(30), || {
            let (api, dry, forged) = (self.worker.clone(), dry.clone(), forged.clone());
            async move { api.create(&dry, &forged).await.is_err() }
        })
        .await;
        // The stamp guards see KPO pods, the sweeper-scope guard every other pod (their bindings'
        // objectSelectors): one probe of each.
        let probe = create(
            &self.worker,
            &pod("probe", &kpo_labels(), Some(&stamp_annotations(WORKER))),
        )
        .await
        .unwrap();
        let plain_probe = create(&self.worker, &pod("probe-plain", &plain_labels(), None))
            .await
            .unwrap();
        let patch = json!({"metadata": {"annotations": {stamp::CREATED_BY: MALLORY}}});
        let dry_patch = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        admission::wait_until("immutability guard", Duration::from_secs(30), || {
            let (api, patch, pp) = (self.mallory.clone(), patch.clone(), dry_patch.clone());
            async move {
                api.patch("probe", &pp, &Patch::Merge(&patch))
                    .await
                    .is_err()
            }
        })
        .await;
        let dry_delete = DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        };
        admission::wait_until("sweeper-scope guard", Duration::from_secs(30), || {
            let (api, dp) = (self.sweeper.clone(), dry_delete.clone());
            async move { api.delete("probe-plain", &dp).await.is_err() }
        })
        .await;
        for (name, p) in [("probe", probe), ("probe-plain", plain_probe)] {
            let uid = p.metadata.uid.unwrap();
            self.worker
                .delete(name, &testsupport::force_delete_params(&uid))
                .await
                .unwrap();
        }
    }

    /// Removes the scoped guards and every pod of the namespace (grace 0).
    async fn cleanup(self) {
        self.installed.remove().await;
        let _ = Api::<Pod>::namespaced(self.admin.clone(), &self.ns)
            .delete_collection(
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
                &ListParams::default(),
            )
            .await;
    }
}

/// Runs `body` on a fresh [`Guarded`] namespace in a task, cleans up whatever happened, re-raises.
async fn guarded<F, Fut>(prefix: &str, editors: &str, groups: &str, body: F)
where
    F: FnOnce(std::sync::Arc<Guarded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let g = std::sync::Arc::new(Guarded::new(prefix, editors, groups).await);
    let g2 = g.clone();
    let result = tokio::spawn(async move {
        g2.wait_until_active().await;
        body(g2).await
    })
    .await;
    let g = std::sync::Arc::into_inner(g).expect("the test body dropped its handle");
    g.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_creator_refuses_forged_stamps_and_never_our_webhooks() {
    guarded("guard-creator", "[]", "[]", |g| async move {
        // Our webhook, through the base's MutatingWebhookConfiguration, in this namespace.
        let hook = RunningWebhook::start().await;
        let config = hook::register(&g.admin, &g.ns, hook.addr, &hook.ca_pem).await;
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let probe: Pod = serde_json::from_value(pod("hook-probe", &kpo_labels(), None)).unwrap();
        admission::wait_until("the webhook stamps", Duration::from_secs(30), || {
            let (api, dry, probe) = (g.worker.clone(), dry.clone(), probe.clone());
            async move {
                let p = api.create(&dry, &probe).await.unwrap();
                p.metadata
                    .annotations
                    .is_some_and(|a| a.contains_key(stamp::CREATED_BY))
            }
        })
        .await;

        // A KPO pod: the webhook stamps it with its creator; admitted.
        let p = create(&g.worker, &pod("kpo", &kpo_labels(), None))
            .await
            .unwrap();
        let s = stamp_of(&serde_json::to_value(&p).unwrap());
        assert_eq!(s.annotations[stamp::CREATED_BY], WORKER);
        assert!(
            s.annotations.contains_key(stamp::ADMITTED_AT),
            "our webhook stamped it"
        );
        // A KPO pod sent with someone else's stamp: the webhook overwrites it; admitted.
        let p = create(
            &g.mallory,
            &pod(
                "kpo-forged",
                &kpo_labels(),
                Some(&stamp_annotations(WORKER)),
            ),
        )
        .await
        .unwrap();
        let s = stamp_of(&serde_json::to_value(&p).unwrap());
        assert_eq!(s.annotations[stamp::CREATED_BY], MALLORY);
        // No stamp at all: admitted, KPO or not.
        create(&g.worker, &pod("plain", &plain_labels(), None))
            .await
            .unwrap();
        create(
            &g.mallory,
            &pod("plain-2", &plain_labels(), Some(&json!({"a": "b"}))),
        )
        .await
        .unwrap();
        // A pod that is not a KPO pod is outside the guards' bindings (objectSelector
        // kubernetes_pod_operator=True): it may carry any annotations, the sweeper never lists it...
        create(
            &g.mallory,
            &pod("forged", &plain_labels(), Some(&stamp_annotations(WORKER))),
        )
        .await
        .unwrap();
        // ...and it cannot become one: relabelling a stamped pod as a KPO pod is a stamp edit.
        let m = refused(
            g.mallory
                .patch(
                    "forged",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"labels": {"kubernetes_pod_operator": "True"}}}),
                    ),
                )
                .await,
            "kpo-sweeper-stamp-immutable",
            &["label kubernetes_pod_operator"],
        );
        assert!(m.contains(MALLORY), "{m}");
        hook::unregister(&g.admin, &config).await;
        hook.stop().await;

        // The webhook down (the base's configuration, failurePolicy Ignore, at a port that drops every
        // connection): KPO pods are admitted unstamped, and a stamp their creator forged is refused.
        let (dead, dead_task) = hook::dead_webhook().await;
        let config = hook::register(&g.admin, &g.ns, dead, &hook_ca()).await;
        // The apiserver sees the new configuration eventually: create KPO pods until the audit log says
        // one was admitted after the dead webhook failed open.
        let audit_log = testsupport::env().audit_log.clone();
        let mut i = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let name = format!("kpo-open-{i}");
            let p = create(&g.worker, &pod(&name, &kpo_labels(), None))
                .await
                .unwrap();
            assert!(
                stamp_of(&serde_json::to_value(&p).unwrap())
                    .annotations
                    .is_empty(),
                "admitted unstamped: no webhook stamped it"
            );
            if failed_open(&audit_log, &g.ns, &name).await {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the apiserver never called the dead webhook"
            );
            i += 1;
        }
        refused(
            create(
                &g.mallory,
                &pod(
                    "kpo-open-forged",
                    &kpo_labels(),
                    Some(&stamp_annotations(WORKER)),
                ),
            )
            .await,
            "kpo-sweeper-honest-creator",
            &[&format!("is created by {MALLORY}")],
        );
        hook::unregister(&g.admin, &config).await;
        dead_task.abort();
    })
    .await;
}

/// Whether the audit event of the create of `ns/name` says a mutating webhook failed open (the
/// apiserver's `failed-open.mutation.webhook.admission.k8s.io/…` annotation); waits up to 10 s for the
/// event itself.
async fn failed_open(log: &std::path::Path, ns: &str, name: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", log.display()));
        let event = text
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
        if let Some(v) = event {
            return v["annotations"].as_object().is_some_and(|a| {
                a.keys()
                    .any(|k| k.starts_with("failed-open.mutation.webhook"))
            });
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit event for the create of {ns}/{name} in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CA bundle nobody serves with (the dead webhook never completes a handshake anyway).
fn hook_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamps_cannot_be_edited_but_by_listed_editors() {
    guarded("guard-immutable", "[]", &format!("['{EDITOR_GROUP}']"), |g| async move {
        let stamped = create(
            &g.worker,
            &pod("stamped", &kpo_labels(), Some(&stamp_annotations(WORKER))),
        )
        .await
        .unwrap();
        // The stamp label too (created as the webhook leaves it).
        let mut l = kpo_labels();
        l.insert(stamp::STAMPED_LABEL.to_owned(), stamp::STAMPED_VALUE.to_owned());
        create(&g.worker, &pod("labelled", &l, Some(&stamp_annotations(WORKER))))
            .await
            .unwrap();
        create(&g.worker, &pod("unstamped", &kpo_labels(), None)).await.unwrap();
        let pp = PatchParams::default();
        let merge = |v: Value| Patch::Merge(v);

        // What Airflow and people do to pods passes: KPO's own cleanup label, other annotations.
        g.worker
            .patch("stamped", &pp, &merge(json!({"metadata": {"labels": {"already_checked": "True"}}})))
            .await
            .unwrap();
        g.mallory
            .patch("stamped", &pp, &merge(json!({"metadata": {"annotations": {"team": "data"}}})))
            .await
            .unwrap();
        g.mallory
            .patch("unstamped", &pp, &merge(json!({"metadata": {"labels": {"x": "y"}}})))
            .await
            .unwrap();

        let says = ["cannot be edited after creation", "variable editors"];
        // Change created-by (the worker itself, and someone else).
        for api in [&g.worker, &g.mallory] {
            let m = refused(
                api.patch(
                    "stamped",
                    &pp,
                    &merge(json!({"metadata": {"annotations": {stamp::CREATED_BY: "system:serviceaccount:x:y"}}})),
                )
                .await,
                "kpo-sweeper-stamp-immutable",
                &says,
            );
            assert!(m.contains(stamp::CREATED_BY), "{m}");
        }
        // Make the pod look older, or move it to another TI.
        refused(
            g.mallory
                .patch("stamped", &pp, &merge(json!({"metadata": {"annotations": {stamp::ADMITTED_AT: "1"}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::ADMITTED_AT],
        );
        // Remove a stamp annotation (JSON patch), or the whole stamp.
        refused(
            g.mallory
                .patch(
                    "stamped",
                    &pp,
                    &Patch::Json::<()>(
                        serde_json::from_value(json!([{"op": "remove", "path": "/metadata/annotations/kpo-sweeper.io~1ti-key"}]))
                            .unwrap(),
                    ),
                )
                .await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::TI_KEY],
        );
        refused(
            g.mallory
                .patch("stamped", &pp, &merge(json!({"metadata": {"annotations": null}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::CREATED_BY, stamp::TRY_NUMBER],
        );
        // Add a stamp (or any kpo-sweeper.io/ key) to an unstamped pod.
        refused(
            g.worker
                .patch(
                    "unstamped",
                    &pp,
                    &merge(json!({"metadata": {"annotations": {stamp::CREATED_BY: WORKER}}})),
                )
                .await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::CREATED_BY],
        );
        refused(
            g.worker
                .patch("unstamped", &pp, &merge(json!({"metadata": {"annotations": {"kpo-sweeper.io/anything": "x"}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &["kpo-sweeper.io/anything"],
        );
        // Labels: remove the stamp label, add it, change it.
        refused(
            g.mallory
                .patch("labelled", &pp, &merge(json!({"metadata": {"labels": {stamp::STAMPED_LABEL: null}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[&format!("label {}", stamp::STAMPED_LABEL)],
        );
        refused(
            g.mallory
                .patch("labelled", &pp, &merge(json!({"metadata": {"labels": {stamp::STAMPED_LABEL: "v2"}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[&format!("label {}", stamp::STAMPED_LABEL)],
        );
        refused(
            g.worker
                .patch("unstamped", &pp, &merge(json!({"metadata": {"labels": {stamp::STAMPED_LABEL: "v1"}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[&format!("label {}", stamp::STAMPED_LABEL)],
        );
        // A full update (PUT), and through the status subresource.
        let mut edited = g.worker.get("stamped").await.unwrap();
        edited
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(stamp::TRY_NUMBER.to_owned(), "6".to_owned());
        refused(
            g.worker.replace("stamped", &PostParams::default(), &edited).await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::TRY_NUMBER],
        );
        refused(
            g.mallory
                .patch_status("stamped", &pp, &merge(json!({"metadata": {"annotations": {stamp::CREATED_BY: MALLORY}}})))
                .await,
            "kpo-sweeper-stamp-immutable",
            &[stamp::CREATED_BY],
        );
        let now = g.worker.get("stamped").await.unwrap();
        assert_eq!(
            stamp_of(&serde_json::to_value(&now).unwrap()),
            stamp_of(&serde_json::to_value(&stamped).unwrap()),
            "the stamp is as created"
        );

        // A member of a group named in the policy's `editorGroups` may repair stamps.
        let repaired = g
            .group_editor
            .patch("stamped", &pp, &merge(json!({"metadata": {"annotations": {stamp::TRY_NUMBER: "6"}}})))
            .await
            .unwrap();
        assert_eq!(repaired.metadata.annotations.unwrap()[stamp::TRY_NUMBER], "6");
        // A user not (yet) named in `editors` may not; once named there, they may.
        let repair = merge(json!({"metadata": {"annotations": {stamp::CREATED_BY: WORKER, stamp::ADMITTED_AT: null}}}));
        refused(
            g.editor.patch("stamped", &pp, &repair).await,
            "kpo-sweeper-stamp-immutable",
            &[&format!("by {EDITOR}")],
        );
        // Name them in the policy's `editors` variable, as an operator would.
        let vaps: Api<ValidatingAdmissionPolicy> = Api::all(g.admin.clone());
        let name = g.installed.name("kpo-sweeper-stamp-immutable");
        let mut vap = vaps.get(&name).await.unwrap();
        for v in vap.spec.as_mut().unwrap().variables.iter_mut().flatten() {
            if v.name == "editors" {
                v.expression = format!("['someone-else', '{EDITOR}']");
            }
        }
        vaps.replace(&name, &PostParams::default(), &vap).await.unwrap();
        admission::wait_until("the editor is exempt", Duration::from_secs(30), || {
            let (api, repair) = (g.editor.clone(), repair.clone());
            async move { api.patch("stamped", &PatchParams::default(), &repair).await.is_ok() }
        })
        .await;
        let now = g.worker.get("stamped").await.unwrap();
        let a = now.metadata.annotations.unwrap();
        assert!(!a.contains_key(stamp::ADMITTED_AT));
        assert_eq!(a[stamp::CREATED_BY], WORKER);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_deletes_kpo_pods_only() {
    guarded("guard-sweeper", "[]", "[]", |g| async move {
        let kpo = create(&g.worker, &pod("kpo", &kpo_labels(), None))
            .await
            .unwrap();
        let scheduler = create(&g.worker, &pod("scheduler", &plain_labels(), None))
            .await
            .unwrap();
        let mut not_true = kpo_labels();
        not_true.insert("kubernetes_pod_operator".to_owned(), "False".to_owned());
        let other = create(&g.worker, &pod("not-kpo", &not_true, None))
            .await
            .unwrap();
        let uid = |p: &Pod| p.metadata.uid.clone().unwrap();

        for (name, p) in [("scheduler", &scheduler), ("not-kpo", &other)] {
            refused(
                g.sweeper
                    .delete(name, &testsupport::force_delete_params(&uid(p)))
                    .await,
                "kpo-sweeper-sweeper-scope",
                &[
                    "the sweeper may delete KubernetesPodOperator pods only",
                    &format!("pod {}/{name}", g.ns),
                    "suspend its CronJob",
                ],
            );
        }
        // Its real job: a KPO pod, with the UID precondition and grace 0, as the sweeper sends it.
        g.sweeper
            .delete("kpo", &testsupport::force_delete_params(&uid(&kpo)))
            .await
            .unwrap();
        assert!(
            testsupport::wait_for_pod_gone(&g.admin, &g.ns, "kpo", Duration::from_secs(10)).await
        );
        // Only the sweeper is limited: the worker deletes what it likes.
        g.worker
            .delete(
                "scheduler",
                &testsupport::force_delete_params(&uid(&scheduler)),
            )
            .await
            .unwrap();
        assert!(g.worker.get_opt("not-kpo").await.unwrap().is_some());
    })
    .await;
}
