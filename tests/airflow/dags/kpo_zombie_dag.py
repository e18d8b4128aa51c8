"""kpo_zombie_dag: the shape of the reproduction in apache/airflow#58968, for kpo-sweeper's end-to-end tests.

Three KubernetesPodOperator tasks, run by the real provider against the test environment's apiserver, with
pods that the kwok nodes of tests/env/up "run" (tests/env/kwok/kwok.yaml: a container named `base` exits 0
a few seconds after it starts, every other container runs until the pod is deleted):

- zombie_kpo_task: `base` plus a `sidecar` that never exits. KPO waits for the pod to finish, which it never
  does: the task runs until its worker dies.
- healthy_kpo_task: only `base`, which runs for KPO_E2E_HEALTHY_BASE_RUNS_FOR (default 3s) and exits;
  retries=1, so a killed first try is retried, and the second try reattaches to the first try's pod.
- mapped_kpo_task: expanded over two pod specs, index 0 shaped like zombie_kpo_task, index 1 a short `base`.

The tests (tests/airflow/src/story.rs, told by Airflow 3.3.2 and 2.11.2) set, for the DAG parser and the
workers:
KPO_E2E_NAMESPACE, KPO_E2E_KUBECONFIG (a token kubeconfig of service account airflow-worker),
KPO_E2E_TOLERATION_KEY / _VALUE (the kwok nodes' taint) and KPO_E2E_HEALTHY_BASE_RUNS_FOR.

With KPO_E2E_REMOTE_CONTEXT set (the 3.3.2 test: the remote cluster's context in KPO_E2E_KUBECONFIG, whose
current context is the home cluster), two more tasks run their pods on the remote cluster through
`config_file` + `cluster_context`, as GKE/EKS/AKS users' KPO tasks do:

- remote_zombie_kpo_task: shaped like zombie_kpo_task.
- remote_live_kpo_task: only `base`, which runs for KPO_E2E_REMOTE_LIVE_RUNS_FOR and exits; retries=0.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

try:  # Airflow 3: the task SDK
    from airflow.sdk import dag
except ImportError:  # Airflow 2 (2.11.2 in tests/airflow/tests/kpo_zombie_dag_airflow2.rs)
    from airflow.decorators import dag

NAMESPACE = os.environ.get("KPO_E2E_NAMESPACE", "airflow")
KUBECONFIG = os.environ.get("KPO_E2E_KUBECONFIG")
TOLERATION = k8s.V1Toleration(
    key=os.environ.get("KPO_E2E_TOLERATION_KEY", "kpo-sweeper.io/kwok"),
    operator="Equal",
    value=os.environ.get("KPO_E2E_TOLERATION_VALUE", "true"),
    effect="NoSchedule",
)
HEALTHY_BASE_RUNS_FOR = os.environ.get("KPO_E2E_HEALTHY_BASE_RUNS_FOR", "3s")
REMOTE_CONTEXT = os.environ.get("KPO_E2E_REMOTE_CONTEXT")
REMOTE_LIVE_RUNS_FOR = os.environ.get("KPO_E2E_REMOTE_LIVE_RUNS_FOR", "3s")
# Read by the kwok stage that ends `base` (tests/env/kwok/kwok.yaml).
BASE_RUNS_FOR = "kwok.kpo-sweeper.io/base-runs-for"


def container(name: str, command: str) -> k8s.V1Container:
    return k8s.V1Container(name=name, image="busybox:1.36", command=["sh", "-c"], args=[command])


def never_finishing_pod() -> k8s.V1Pod:
    """`base` ends after a few seconds; `sidecar` ignores every signal and never ends."""
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(),
        spec=k8s.V1PodSpec(
            containers=[
                container("base", "sleep 3"),
                container("sidecar", "trap '' TERM INT; sleep infinity"),
            ],
        ),
    )


def finishing_pod(base_runs_for: str) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(annotations={BASE_RUNS_FOR: base_runs_for}),
        spec=k8s.V1PodSpec(
            containers=[container("base", f"sleep {base_runs_for}")],
            termination_grace_period_seconds=86400,
            restart_policy="Never",
        ),
    )


# What every task shares: the worker's identity (a token kubeconfig, never in-cluster), the namespace, the
# kwok toleration; no log streaming and no XCom sidecar (kwok serves neither logs nor exec).
COMMON = dict(
    namespace=NAMESPACE,
    config_file=KUBECONFIG,
    in_cluster=False,
    tolerations=[TOLERATION],
    get_logs=False,
    do_xcom_push=False,
    startup_timeout_seconds=300,
    log_events_on_startup=False,
)


@dag(
    dag_id="kpo_zombie_dag",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["kpo-sweeper", "e2e"],
)
def kpo_zombie_dag():
    KubernetesPodOperator(
        task_id="zombie_kpo_task",
        full_pod_spec=never_finishing_pod(),
        retries=0,
        **COMMON,
    )
    KubernetesPodOperator(
        task_id="healthy_kpo_task",
        full_pod_spec=finishing_pod(HEALTHY_BASE_RUNS_FOR),
        retries=1,
        retry_delay=timedelta(seconds=0),
        **COMMON,
    )
    KubernetesPodOperator.partial(task_id="mapped_kpo_task", retries=0, **COMMON).expand_kwargs(
        [
            {"full_pod_spec": never_finishing_pod()},
            {"full_pod_spec": finishing_pod("3s")},
        ]
    )
    if REMOTE_CONTEXT:
        KubernetesPodOperator(
            task_id="remote_zombie_kpo_task",
            full_pod_spec=never_finishing_pod(),
            retries=0,
            cluster_context=REMOTE_CONTEXT,
            **COMMON,
        )
        KubernetesPodOperator(
            task_id="remote_live_kpo_task",
            full_pod_spec=finishing_pod(REMOTE_LIVE_RUNS_FOR),
            retries=0,
            cluster_context=REMOTE_CONTEXT,
            **COMMON,
        )


kpo_zombie_dag()
