//! Real Airflow 2.11.2 end to end (issue 22, point 4): the same story as tests/kpo_zombie_dag.rs, through
//! the same harness (`airflow_e2e::story`), told by Airflow 2.11.2 (`airflow scheduler` with the
//! LocalExecutor: its workers fork `airflow tasks run --local` supervisors, which fork the task processes)
//! with provider cncf-kubernetes 10.25.0, whose `Requires-Dist` allows Airflow >= 2.11.0. A test binary of
//! its own, so `cargo test` runs it after the 3.3.2 one, never beside it (two Airflows on two cores).

use airflow_e2e::airflow::AIRFLOW_2_11_2;
use airflow_e2e::story::{Clusters, kpo_zombie_story};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_airflow_2_11_2_kpo_zombies_are_swept_and_live_pods_kept() {
    kpo_zombie_story(&AIRFLOW_2_11_2, Clusters::Home).await;
}
