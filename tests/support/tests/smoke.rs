//! Smoke tests of the real environment (issue 4): a pod that hangs in Terminating on a Node without a
//! kubelet and is then force-deleted with a UID precondition; a running TI written through the helper
//! into each migrated schema and read back with sqlx.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use sqlx::Connection;
use testsupport::{DbKind, TiSpec};

#[tokio::test]
async fn bound_pod_hangs_terminating_then_force_delete_with_uid_precondition_removes_it() {
    let client = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&client, "smoke").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let node = format!("node-{ns}");
    testsupport::create_node(&client, &node).await;
    testsupport::create_node(&client, &node).await; // idempotent

    let ti = TiSpec::new(
        "smoke_dag",
        "kpo_task",
        "scheduled__2024-01-01T00:00:00+00:00",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let created = pods
        .create(
            &PostParams::default(),
            &testsupport::kpo_pod("smoke-pod", &ti),
        )
        .await
        .expect("create pod");
    let uid = created.metadata.uid.clone().expect("uid");
    testsupport::bind_pod(&client, &ns, "smoke-pod", &node).await;
    testsupport::set_pod_phase(&client, &ns, "smoke-pod", "Running").await;
    let bound = pods.get("smoke-pod").await.expect("get");
    assert_eq!(
        bound.spec.as_ref().unwrap().node_name.as_deref(),
        Some(node.as_str())
    );
    assert_eq!(
        bound.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );

    // Graceful delete: no kubelet confirms it, so the pod stays, Terminating.
    pods.delete(
        "smoke-pod",
        &DeleteParams {
            grace_period_seconds: Some(1),
            ..Default::default()
        },
    )
    .await
    .expect("graceful delete");
    // Wait by the clock until the grace period is over: the pod is still there after it.
    let deadline = pods
        .get("smoke-pod")
        .await
        .expect("still there")
        .metadata
        .deletion_timestamp
        .expect("deletionTimestamp set")
        .0
        .as_second();
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while k8s_openapi::jiff::Timestamp::now().as_second() <= deadline {
        assert!(std::time::Instant::now() < give_up);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let terminating = pods.get("smoke-pod").await.expect("still there");
    assert!(
        terminating.metadata.deletion_timestamp.is_some(),
        "a bound pod deleted gracefully must stay Terminating"
    );
    assert_eq!(terminating.metadata.uid.as_deref(), Some(uid.as_str()));

    // A wrong UID precondition is refused (409), the right one removes it at once.
    let err = pods
        .delete(
            "smoke-pod",
            &testsupport::force_delete_params("00000000-0000-0000-0000-000000000000"),
        )
        .await
        .expect_err("wrong uid must conflict");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );
    pods.delete("smoke-pod", &testsupport::force_delete_params(&uid))
        .await
        .expect("force delete");
    assert!(
        testsupport::wait_for_pod_gone(&client, &ns, "smoke-pod", Duration::from_secs(10)).await,
        "grace 0 + uid precondition must remove the pod"
    );
}

#[tokio::test]
async fn impersonated_requests_are_authorized_as_that_user() {
    let client = testsupport::impersonating_client(
        "system:serviceaccount:airflow:airflow-worker",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:airflow",
            "system:authenticated",
        ],
    )
    .await;
    // No RBAC grants that service account anything: the apiserver must say 403 (not 401: it authenticated).
    let err = Api::<Pod>::namespaced(client, "default")
        .list(&Default::default())
        .await
        .expect_err("an unprivileged service account cannot list pods");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
}

async fn read_back_with_sqlx(
    kind: DbKind,
    url: &str,
) -> Vec<(String, String, String, i64, Option<i64>, Option<String>)> {
    const SQL: &str =
        "SELECT dag_id, task_id, run_id, map_index, try_number, state FROM task_instance";
    macro_rules! rows {
        ($conn:ty, $int:ty) => {{
            let mut c = <$conn>::connect(url).await.expect("connect");
            let rows: Vec<(String, String, String, $int, Option<$int>, Option<String>)> =
                sqlx::query_as(SQL).fetch_all(&mut c).await.expect("select");
            rows.into_iter()
                .map(|(d, t, r, m, n, s)| (d, t, r, i64::from(m), n.map(i64::from), s))
                .collect()
        }};
    }
    match kind {
        DbKind::Airflow3Postgres
        | DbKind::Airflow2Postgres
        | DbKind::Airflow3PostgresSchema
        | DbKind::CompatPostgres => rows!(sqlx::PgConnection, i32),
        DbKind::Airflow3MySql | DbKind::CompatMariaDb => rows!(sqlx::MySqlConnection, i32),
        DbKind::Airflow3Sqlite => rows!(sqlx::SqliteConnection, i64),
    }
}

async fn running_ti_round_trip(kind: DbKind) {
    let db = testsupport::fresh_db(kind).await;
    assert_ne!(db.url, kind.template_url(), "a fresh DB, not the template");
    let ti = TiSpec::new(
        "smoke_dag",
        "kpo_task",
        "scheduled__2024-01-01T00:00:00+00:00",
    )
    .try_number(2);
    let mapped = TiSpec::new(
        "smoke_dag",
        "kpo_mapped",
        "scheduled__2024-01-01T00:00:00+00:00",
    )
    .map_index(3);
    let other_run =
        TiSpec::new("smoke_dag", "kpo_task", "manual__2024-01-02T00:00:00+00:00").state(None);
    db.insert_ti(&ti).await;
    db.insert_ti(&mapped).await;
    db.insert_ti(&other_run).await;

    let rows = read_back_with_sqlx(kind, &db.url).await;
    assert!(
        rows.contains(&(
            "smoke_dag".into(),
            "kpo_task".into(),
            "scheduled__2024-01-01T00:00:00+00:00".into(),
            -1,
            Some(2),
            Some("running".into())
        )),
        "{kind:?}: {rows:?}"
    );
    assert_eq!(rows.len(), 3, "{kind:?}: {rows:?}");

    let mut want = vec![ti.clone(), mapped.clone(), other_run.clone()];
    want.sort_by(|a, b| {
        (&a.dag_id, &a.task_id, &a.run_id, a.map_index).cmp(&(
            &b.dag_id,
            &b.task_id,
            &b.run_id,
            b.map_index,
        ))
    });
    assert_eq!(db.ti_rows().await, want, "{kind:?}");

    let ti = ti.state(Some("success")).try_number(3);
    db.update_ti(&ti).await;
    db.update_ti(&ti).await; // same values again (MariaDB reports 0 changed rows)
    db.delete_ti(&mapped).await;
    let rows = db.ti_rows().await;
    assert_eq!(rows.len(), 2, "{kind:?}: {rows:?}");
    assert!(rows.contains(&ti), "{kind:?}: {rows:?}");

    // The template is untouched.
    let template_rows = read_back_with_sqlx(kind, kind.template_url()).await;
    assert!(
        template_rows.is_empty(),
        "{kind:?} template has TI rows: {template_rows:?}"
    );
}

#[tokio::test]
async fn running_ti_on_airflow3_postgres() {
    running_ti_round_trip(DbKind::Airflow3Postgres).await;
}

#[tokio::test]
async fn running_ti_on_airflow2_postgres() {
    running_ti_round_trip(DbKind::Airflow2Postgres).await;
}

#[tokio::test]
async fn running_ti_on_airflow3_mariadb() {
    running_ti_round_trip(DbKind::Airflow3MySql).await;
}

#[tokio::test]
async fn running_ti_on_airflow3_sqlite() {
    running_ti_round_trip(DbKind::Airflow3Sqlite).await;
}

/// The audit policy records pod requests at Metadata level (user, impersonation, annotations), which is
/// where the webhook's audit annotations land.
#[tokio::test]
async fn pod_creates_are_audited_with_the_impersonated_user() {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::ObjectMeta;

    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "audit").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let user = "system:serviceaccount:airflow:airflow-worker";
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.clone()),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta("pod-creator"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".to_owned()]),
            verbs: vec!["create".to_owned(), "get".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding = RoleBinding {
        metadata: meta("pod-creator"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: "pod-creator".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: "airflow-worker".to_owned(),
            namespace: Some("airflow".to_owned()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("rolebinding");

    let worker = testsupport::impersonating_client(
        user,
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:airflow",
            "system:authenticated",
        ],
    )
    .await;
    let ti = TiSpec::new("audit_dag", "kpo_task", "manual__2024-01-01T00:00:00+00:00");
    // RBAC propagates to the authorizer's cache quickly, but not synchronously.
    let pods: Api<Pod> = Api::namespaced(worker, &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match pods
            .create(
                &PostParams::default(),
                &testsupport::kpo_pod("audited", &ti),
            )
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 403 && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("create as {user}: {e}"),
        }
    }

    let log = &testsupport::env().audit_log;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let event = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text.lines().rev().find_map(|line| {
            let e: serde_json::Value = serde_json::from_str(line).ok()?;
            (e["verb"] == "create"
                && e["stage"] == "ResponseComplete"
                && e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["namespace"] == ns.as_str()
                && e["objectRef"]["name"] == "audited")
                .then_some(e)
        });
        if let Some(e) = found {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit event for the pod create in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(event["level"], "Metadata", "{event}");
    assert_eq!(event["impersonatedUser"]["username"], user, "{event}");
    assert_eq!(event["responseStatus"]["code"], 201, "{event}");
}
