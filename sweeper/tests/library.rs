//! The sweeper's parts against the real services: the TI source on every schema, the re-read race
//! (a TI that becomes active between the plan and the delete keeps its pod), the UID precondition,
//! and paging (on the real apiserver, and a 410 Gone mid-list from a scripted one).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use clap::Parser;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use sqlx::Connection;
use sweeper::db::{Db, DbUrl};
use sweeper::decide::{ActiveTi, Decision, PodMeta, Reason, Verdict};
use sweeper::report::Action;
use testsupport::{DbKind, TiSpec};
use tikey::TiKey;

const RUN: &str = "scheduled__2025-05-01T00:00:00+00:00";

/// A dag_id longer than 63 characters: its label is truncated and hashed.
fn long_dag() -> String {
    format!("a_very_long_dag_id_{}", "x".repeat(60))
}

async fn active_tis_on(kind: DbKind) {
    let db = testsupport::fresh_db(kind).await;
    let t = |task: &str| TiSpec::new("src_dag", task, RUN);
    let active = [
        t("running"),
        t("null_state").state(None),
        t("awaiting_input").state(Some("awaiting_input")),
        t("up_for_retry").state(Some("up_for_retry")).try_number(3),
        t("deferred").state(Some("deferred")),
        t("queued").state(Some("queued")).try_number(2),
        t("mapped").map_index(2),
        TiSpec::new(&long_dag(), "long", RUN),
    ];
    let terminal = ["success", "failed", "skipped", "upstream_failed", "removed"]
        .map(|s| t(&format!("t_{s}")).state(Some(s)));
    for ti in active.iter().chain(&terminal) {
        db.insert_ti(ti).await;
    }
    let url = DbUrl::parse(&db.url).unwrap();
    let mut conn = Db::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let map = conn
        .active_tis()
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let want: BTreeMap<TiKey, ActiveTi> = active
        .iter()
        .map(|ti| (ti.key(), ActiveTi::new(ti.try_number, ti.state.as_deref())))
        .collect();
    let got: BTreeMap<TiKey, ActiveTi> = map.into_iter().collect();
    assert_eq!(got, want, "{kind:?}");
    assert!(
        got.keys()
            .any(|k| k.dag_id.len() == 63 && sweeper::db::looks_hashed(&k.dag_id))
    );
    // The sweep's own read: every active row is read and counted, and only the rows whose key a
    // pod names are kept, keyed by the pods' own keys (a terminal or unknown key is not kept).
    let pods_keys = [
        t("running").key(),
        TiSpec::new(&long_dag(), "long", RUN).key(),
        t("t_success").key(),
        t("no_such_task").key(),
    ];
    let wanted: HashSet<&TiKey> = pods_keys.iter().collect();
    let (kept, rows) = conn
        .active_tis_for(&wanted)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    assert_eq!(rows, active.len(), "{kind:?}: every active row is counted");
    let kept: BTreeMap<TiKey, ActiveTi> = kept
        .into_iter()
        .map(|(k, ti)| {
            assert!(
                pods_keys.iter().any(|p| std::ptr::eq(p, k)),
                "{kind:?}: {k} is the pod's own key"
            );
            (k.clone(), ti)
        })
        .collect();
    let want_kept: BTreeMap<TiKey, ActiveTi> = got
        .iter()
        .filter(|(k, _)| pods_keys[..2].contains(k))
        .map(|(k, ti)| (k.clone(), ti.clone()))
        .collect();
    assert_eq!(want_kept.len(), 2, "{kind:?}");
    assert_eq!(kept, want_kept, "{kind:?}");

    // The candidates' rows, whatever their state (also each batch's re-read); a hashed dag_id
    // is looked up by the raw ids the dag table holds.
    conn.known_dags().await.unwrap();
    let plain: HashSet<TiKey> = [
        t("running").key(),
        t("t_success").key(),
        t("mapped").map_index(2).key(),
    ]
    .into();
    let rows = conn.reread(&plain).await.unwrap();
    let got: BTreeSet<TiKey> = rows.active.into_keys().cloned().collect();
    assert_eq!(
        got,
        [t("running").key(), t("mapped").map_index(2).key()].into(),
        "{kind:?}"
    );
    let ended: BTreeSet<TiKey> = rows.ended.keys().map(|k| (*k).clone()).collect();
    assert_eq!(ended, [t("t_success").key()].into(), "{kind:?}");
    assert_eq!(
        rows.ended[&t("t_success").key()].min_try,
        Some(1),
        "{kind:?}"
    );
    let hashed: HashSet<TiKey> = [
        TiSpec::new(&long_dag(), "long", RUN).key(),
        t("t_failed").key(),
        t("queued").key(),
    ]
    .into();
    let rows = conn.reread(&hashed).await.unwrap();
    let ended: BTreeSet<TiKey> = rows.ended.into_keys().cloned().collect();
    assert_eq!(ended, [t("t_failed").key()].into(), "{kind:?}");
    let got: BTreeSet<TiKey> = rows.active.into_keys().cloned().collect();
    assert_eq!(
        got,
        [
            TiSpec::new(&long_dag(), "long", RUN).key(),
            t("queued").key()
        ]
        .into(),
        "{kind:?}"
    );
    // A user's own run_id (hashed in its label, not rebuildable): found through dag_run, then
    // looked up by its key; a label no run has comes back empty.
    let user = TiSpec::new("src_dag", "user_run", "my run: 2024/05 #1").state(Some("failed"));
    db.insert_ti(&user).await;
    let missing = TiSpec::new("src_dag", "user_run", "no such run!").key();
    let keys = [user.key(), missing].into();
    let rows = conn
        .reread(&keys)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let ended: BTreeSet<TiKey> = rows.ended.into_keys().cloned().collect();
    assert_eq!(ended, [user.key()].into(), "{kind:?}");
    assert!(rows.active.is_empty(), "{kind:?}");
    let no_keys = HashSet::new();
    let none = conn.reread(&no_keys).await.unwrap();
    assert!(none.active.is_empty() && none.ended.is_empty());
}

#[tokio::test]
async fn active_tis_airflow3_postgres() {
    active_tis_on(DbKind::Airflow3Postgres).await;
}

#[tokio::test]
async fn active_tis_airflow2_postgres() {
    active_tis_on(DbKind::Airflow2Postgres).await;
}

#[tokio::test]
async fn active_tis_airflow3_mariadb() {
    active_tis_on(DbKind::Airflow3MySql).await;
}

#[tokio::test]
async fn active_tis_airflow3_sqlite() {
    active_tis_on(DbKind::Airflow3Sqlite).await;
}

/// Airflow 2.x's nullable try_number: NULL reads as 0.
#[tokio::test]
async fn airflow2_null_try_number_reads_as_zero() {
    let db = testsupport::fresh_db(DbKind::Airflow2Postgres).await;
    let ti = TiSpec::new("a2_dag", "null_try", RUN);
    db.insert_ti(&ti).await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE task_instance SET try_number = NULL WHERE task_id = 'null_try'")
        .execute(&mut c)
        .await
        .unwrap();
    let mut conn = Db::connect(&DbUrl::parse(&db.url).unwrap()).await.unwrap();
    let map = conn.active_tis().await.unwrap();
    assert_eq!(map[&ti.key()].try_number, 0);
}

/// A TI that becomes active between the first read and the delete (cleared, or retried and
/// running) keeps its pod: the re-read right before deleting sees it.
#[tokio::test]
async fn reread_keeps_a_pod_whose_ti_became_active_after_the_plan() {
    let s = Scenario::new("reread", DbKind::Airflow3Postgres).await;
    let revived = TiSpec::new("reread_dag", "revived", RUN).state(Some("success"));
    let cleared = TiSpec::new(&long_dag(), "cleared", RUN).state(Some("failed"));
    let dead = TiSpec::new("reread_dag", "dead", RUN).state(Some("success"));
    for (name, ti) in [
        ("revived", &revived),
        ("cleared", &cleared),
        ("dead", &dead),
    ] {
        s.db.insert_ti(ti).await;
        s.pod(name, ti, Stamping::Ours).await;
    }
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let args = sweeper::Args::try_parse_from([
        "sweeper",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        &s.ns,
        "--db-url",
        &s.db.url,
        "--delete",
        "--owner",
        OWNER,
        "--min-age",
        "0s",
    ])
    .unwrap();
    let plan = sweeper::plan(args).await.unwrap();
    assert!(
        plan.decisions.iter().all(Decision::is_zombie),
        "{:?}",
        plan.decisions
    );
    // Between the plan and the delete: one TI is retried and runs, one is cleared.
    s.db.update_ti(&revived.clone().state(Some("running")))
        .await;
    s.db.update_ti(&cleared.clone().state(None)).await;
    let out = plan.finish().await.unwrap();
    assert_eq!(out.exit, 0);
    let rows: BTreeMap<&str, (Verdict, Reason, Action)> = out
        .report
        .pods
        .iter()
        .map(|r| (r.name, (r.decision, r.reason, r.action)))
        .collect();
    assert_eq!(
        rows,
        [
            ("cleared", (Verdict::Keep, Reason::Active, Action::None)),
            (
                "dead",
                (Verdict::Zombie, Reason::NoActiveTi, Action::Deleted)
            ),
            ("revived", (Verdict::Keep, Reason::Active, Action::None)),
        ]
        .into()
    );
    assert_eq!(s.survivors().await, names(&["cleared", "revived"]));
}

/// A pod replaced under the same name (UID precondition fails: 409) or already gone (404) is
/// counted, not deleted, and gets no Event.
#[tokio::test]
async fn uid_precondition_conflict_and_gone_are_counted_not_deleted() {
    let s = Scenario::new("uid", DbKind::Airflow3Sqlite).await;
    let ti = TiSpec::new("uid_dag", "t", RUN);
    let live = s.pod("reused-name", &ti, Stamping::Ours).await;
    let labels = live.metadata.labels.clone().unwrap();
    let meta = |name: &str, uid: &str| {
        PodMeta::from_parts(
            s.ns.clone(),
            name,
            uid,
            &labels,
            &BTreeMap::new(),
            false,
            Some(0),
            None,
        )
    };
    let zombie = Decision {
        verdict: Verdict::Zombie,
        reason: Reason::NoActiveTi,
        stuck_terminating: false,
    };
    // The pod the sweeper judged had another UID: a new pod took its name since.
    let stale = meta("reused-name", "00000000-0000-0000-0000-000000000001");
    let missing = meta("never-existed", "00000000-0000-0000-0000-000000000002");
    let targets = [
        sweeper::act::Target {
            pod: &stale,
            decision: zombie,
        },
        sweeper::act::Target {
            pod: &missing,
            decision: zombie,
        },
    ];
    let cfg = sweeper::act::ActConfig {
        grace_period: 0,
        instance: "test".into(),
        send_by: None,
        concurrency: sweeper::act::CONCURRENCY,
    };
    let outcomes = sweeper::act::delete_all(&s.client, &targets, &cfg).await;
    assert_eq!(
        outcomes,
        [sweeper::act::Outcome::Conflict, sweeper::act::Outcome::Gone]
    );
    assert_eq!(s.survivors().await, names(&["reused-name"]));
    assert!(s.zombie_events().await.is_empty());

    // With its real UID it goes, with its Event.
    let current = meta("reused-name", live.metadata.uid.as_deref().unwrap());
    let outcomes = sweeper::act::delete_all(
        &s.client,
        &[sweeper::act::Target {
            pod: &current,
            decision: zombie,
        }],
        &cfg,
    )
    .await;
    assert_eq!(outcomes, [sweeper::act::Outcome::Deleted]);
    assert!(s.survivors().await.is_empty());
    s.assert_events(&[(&live, "no-active-ti")]).await;
}

/// Pages of 2 over 7 KPO pods, a non-KPO pod and a completed KPO pod: every KPO pod once; the
/// completed one only with --include-completed.
#[tokio::test]
async fn paged_metadata_list_sees_every_kpo_pod_once() {
    let s = Scenario::new("paging", DbKind::Airflow3Sqlite).await;
    let node = format!("node-{}", s.ns);
    testsupport::create_node(&s.client, &node).await;
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let name = format!("kpo-{i}");
        s.pod(
            &name,
            &TiSpec::new("page_dag", &format!("t{i}"), RUN),
            Stamping::Ours,
        )
        .await;
        want.insert(name);
    }
    s.pod(
        "done",
        &TiSpec::new("page_dag", "done", RUN),
        Stamping::Ours,
    )
    .await;
    testsupport::bind_pod(&s.client, &s.ns, "done", &node).await;
    s.set_phase("done", "Succeeded").await;
    let mut plain = testsupport::kpo_pod("not-kpo", &TiSpec::new("page_dag", "x", RUN));
    plain
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove("kubernetes_pod_operator");
    Api::<Pod>::namespaced(s.client.clone(), &s.ns)
        .create(&PostParams::default(), &plain)
        .await
        .unwrap();

    let mut scope = sweeper::pods::ListScope {
        namespaces: Some(vec![s.ns.clone()]),
        include_completed: false,
        page_size: 2,
    };
    let got: BTreeSet<String> = sweeper::pods::list(&s.client, &scope)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        sweeper::pods::bare_list(&s.client, &scope).await.unwrap(),
        7
    );
    scope.include_completed = true;
    let listed = sweeper::pods::list(&s.client, &scope).await.unwrap();
    assert_eq!(listed.len(), 8);
    want.insert("done".into());
    assert_eq!(
        listed.into_iter().map(|p| p.name).collect::<BTreeSet<_>>(),
        want
    );
}

/// A scripted apiserver: page 1 (continue `c1`), then `410 Gone` for `c1` once, then page 1 and
/// page 2 again. The listing restarts cleanly: each pod once, none from the expired attempt twice.
#[tokio::test]
async fn list_restarts_cleanly_after_410_gone() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let gone_sent = Arc::new(Mutex::new(false));
    let log = seen.clone();
    let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let uri = req.uri().to_string();
        log.lock().unwrap().push(uri.clone());
        let gone_sent = gone_sent.clone();
        async move {
            let item = |n: &str| {
                format!(
                    r#"{{"metadata":{{"name":"{n}","namespace":"ns","uid":"u-{n}","creationTimestamp":"2025-01-01T00:00:00Z",
                      "labels":{{"dag_id":"d","task_id":"{n}","run_id":"r","try_number":"1","kubernetes_pod_operator":"True"}}}}}}"#
                )
            };
            let (status, body) = if uri.contains("continue=c1") {
                let mut g = gone_sent.lock().unwrap();
                if *g {
                    (
                        200,
                        format!(r#"{{"metadata":{{}},"items":[{}]}}"#, item("p3")),
                    )
                } else {
                    *g = true;
                    (
                        410,
                        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"The provided continue parameter is too old","reason":"Expired","code":410}"#.to_owned(),
                    )
                }
            } else {
                (
                    200,
                    format!(
                        r#"{{"metadata":{{"continue":"c1"}},"items":[{},{}]}}"#,
                        item("p1"),
                        item("p2")
                    ),
                )
            };
            Ok::<_, Infallible>(
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.into_bytes()))
                    .unwrap(),
            )
        }
    });
    let client = kube::Client::new(svc, "default");
    let scope = sweeper::pods::ListScope {
        namespaces: Some(vec!["ns".into()]),
        include_completed: false,
        page_size: 2,
    };
    let pods = sweeper::pods::list(&client, &scope).await.unwrap();
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p1", "p2", "p3"]);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    assert!(
        calls[0].contains("labelSelector=kubernetes_pod_operator%3DTrue"),
        "{}",
        calls[0]
    );
    assert!(
        calls[0].contains("fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"),
        "{}",
        calls[0]
    );
    assert!(
        calls[0].contains("limit=2") && !calls[0].contains("continue"),
        "{}",
        calls[0]
    );
    assert!(
        calls[2].contains("limit=2") && !calls[2].contains("continue"),
        "restart from the top: {}",
        calls[2]
    );
}
