//! `demo-seed NAMESPACE CREATOR`: plays the upstream DAG `kpo_zombie_dag` (apache/airflow#58968) into the
//! local environment, as Airflow and KPO would: a DAG run with four KPO task instances in a fresh SQLite
//! Airflow 3.3 metadata DB (the real schema from `airflow db migrate`), their pods created through the
//! apiserver as the Airflow worker's service account (so the webhook stamps them), then two of the tasks
//! finish while their pods' sidecars never exit. Prints the DB URL (Airflow's SQLAlchemy form) last.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use testsupport::{DbKind, TiSpec, fresh_db, impersonating_client, kpo_pod};

const DAG: &str = "kpo_zombie_dag";
const RUN: &str = "manual__2025-12-02T10:00:00+00:00";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(ns), Some(creator)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: demo-seed NAMESPACE CREATOR   (e.g. system:serviceaccount:airflow:airflow-worker)"
        );
        std::process::exit(2);
    };
    let sa_ns = creator.split(':').nth(2).unwrap_or("airflow").to_owned();
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{sa_ns}"),
        "system:authenticated".to_owned(),
    ];
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();

    let db = fresh_db(DbKind::Airflow3Sqlite).await;
    let tis = [
        ("zombie-kpo-task", TiSpec::new(DAG, "zombie_kpo_task", RUN)),
        (
            "healthy-kpo-task",
            TiSpec::new(DAG, "healthy_kpo_task", RUN),
        ),
        (
            "mapped-kpo-task-0",
            TiSpec::new(DAG, "mapped_kpo_task", RUN).map_index(0),
        ),
        (
            "mapped-kpo-task-1",
            TiSpec::new(DAG, "mapped_kpo_task", RUN).map_index(1),
        ),
    ];
    println!("# DAG run {DAG} / {RUN}: four KPO task instances start (state running, try 1)");
    for (_, ti) in &tis {
        db.insert_ti(ti).await;
    }
    let client = impersonating_client(&creator, &groups).await;
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    println!("# KPO creates their pods as {creator} (the webhook stamps them at admission)");
    for (name, ti) in &tis {
        pods.create(&PostParams::default(), &kpo_pod(name, ti))
            .await
            .unwrap_or_else(|e| panic!("create pod {ns}/{name}: {e}"));
    }
    println!(
        "# zombie_kpo_task and mapped_kpo_task[0] finish (success); their sidecars never exit, so the pods stay"
    );
    for (_, ti) in [&tis[0], &tis[2]] {
        db.update_ti(&ti.clone().state(Some("success"))).await;
    }
    for row in db.ti_rows().await {
        println!(
            "#   task_instance {}/{}/{} map_index={} try={} state={}",
            row.dag_id,
            row.task_id,
            row.run_id,
            row.map_index,
            row.try_number,
            row.state.as_deref().unwrap_or("NULL")
        );
    }
    println!("{}", db.sqlalchemy_url);
}
