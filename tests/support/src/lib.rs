//! End-to-end test support for kpo-sweeper.
//!
//! Every test here runs against the real parts that `tests/env/up` starts (docs/design.md §6): a kube-apiserver
//! on etcd, PostgreSQL and MariaDB with the schema `airflow db migrate` made, and SQLite files. The env file
//! that `up` writes (`/tmp/kpo-sweeper-env/env.sh`, or `$KPO_TEST_ENV_FILE`) says where they are.
//!
//! A missing service is a test **failure** with a message that says what to run, never a skip. The ambient
//! `KUBECONFIG` is never read: a developer's real cluster is never touched.
//!
//! - [`env`], [`client`], [`impersonating_client`], [`fresh_namespace`]: the apiserver.
//! - [`admission`]: the admission policies of `manifests/`, installed scoped to one test namespace.
//! - [`fresh_db`], [`TestDb`], [`TiSpec`]: a fresh database per test, copied from a migrated template, and
//!   task-instance rows that satisfy the real schema's foreign keys and NOT NULL columns (3.x and 2.10).
//! - [`fresh_db_from_dump`], [`CompatSchema`]: a fresh database holding one Airflow release's schema (2.3 to
//!   3.3), loaded from the dumps tests/compat/generate committed, rows written to fit that release.
//! - [`DeletePodsOnDrop`]: tests leave no pods behind; [`leftover_pods`] checks it at the end of `make test`.
//! - [`kpo_pod`], [`create_node`], [`bind_pod`], [`set_pod_phase`]: KPO-shaped pods, and what a kubelet
//!   would otherwise do to them.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

pub mod admission;
mod cleanup;
mod db;
mod env;
mod k8s;
mod pod;
mod rand;

pub use cleanup::{DeletePodsOnDrop, delete_pods_in, leftover_pods};
pub use db::{
    CompatColumn, CompatEngine, CompatSchema, DbKind, TestDb, TiSpec, fresh_bench_db, fresh_db,
    fresh_db_from_dump,
};
pub use env::{DEFAULT_ENV_FILE, ENV_FILE_VAR, TestEnv, env};
pub use k8s::{
    TEST_LABEL, bind_pod, client, create_node, force_delete_params, fresh_namespace,
    impersonating_client, remote_client, set_pod_phase, wait_for_pod_gone,
};
pub use pod::{AIRFLOW_VERSION_LABEL, KPO_IN_CLUSTER_LABEL, XCOM_SIDECAR_CMD, kpo_labels, kpo_pod};
pub use rand::random_suffix;
