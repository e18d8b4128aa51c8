//! kpo-sweeper end to end with real Airflow (docs/design.md §6, issues 12 and 22): the real
//! KubernetesPodOperator, run by Airflow 3.3.2 or 2.11.2 from the environment's venvs, creates pods on the
//! kwok nodes that `tests/env/up` starts; our `webhook` binary stamps them at admission; Airflow's own
//! mechanisms (a killed worker, its heartbeat timeout, a retry) turn some of them into zombies; our `sweeper`
//! binary then judges them against the same Airflow metadata database.
//!
//! - [`kwok`]: the fake nodes (env key `KWOK_NODES`), their taint, pods that run there.
//! - [`procs`]: the workspace binaries (built by cargo, located from its JSON messages) and daemons that are
//!   killed with their whole process group, plus every process that carries the run's marker.
//! - [`identity`]: the `airflow-worker` service account, its Role, and a kubeconfig with a bound token.
//! - [`hook`]: certificates from the `certs` binary, the `webhook` binary, its MutatingWebhookConfiguration.
//! - [`airflow`]: an Airflow deployment of one [`airflow::Release`] (3.3.2: api-server, dag-processor,
//!   scheduler; 2.11.2: scheduler; both with the LocalExecutor) on a fresh copy of that release's template
//!   database on PostgreSQL.
//! - [`story`]: the upstream story, told by one release: workers killed, a retry reattaches, the sweeper
//!   deletes exactly the zombies. Each release's test is this story.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

pub mod airflow;
pub mod hook;
pub mod identity;
pub mod kwok;
pub mod procs;
pub mod story;

use std::future::Future;
use std::time::Duration;

/// Polls `probe` every 250 ms until it returns `Some`, up to `timeout`; panics naming `what` (and the last
/// state `probe` reported through `state`) otherwise. Every wait in these tests is on a condition.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let end = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(state) => {
                if tokio::time::Instant::now() >= end {
                    panic!("timed out after {timeout:?} waiting for {what}; last state: {state}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
