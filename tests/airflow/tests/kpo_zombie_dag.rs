//! Real Airflow 3.3.2 end to end (issue 12, part 2): the story of `airflow_e2e::story` (workers SIGKILLed,
//! a retry reattaches, the sweeper deletes exactly the zombies and keeps the reattached pod) told by
//! Airflow 3.3.2 (api-server, dag-processor, scheduler with the LocalExecutor) with provider
//! cncf-kubernetes 10.25.0. `make demo-airflow` runs it narrated.

use airflow_e2e::airflow::AIRFLOW_3_3_2;
use airflow_e2e::story::{Clusters, kpo_zombie_story};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_airflow_kpo_zombies_are_swept_and_live_pods_kept() {
    kpo_zombie_story(&AIRFLOW_3_3_2, Clusters::HomeAndRemote).await;
}
