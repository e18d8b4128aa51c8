"""Golden vectors for tikey, produced by Airflow's own code.

Run through `tikey/golden/generate` (it provides a venv with the pinned apache-airflow and
apache-airflow-providers-cncf-kubernetes). Deterministic: a fixed seed, sorted keys, one case per line,
so a re-run reproduces the committed files byte for byte.

Writes:
  safe_label_values.json  inputs and outputs of make_safe_label_value (pod_generator.py)
  kpo_labels.json         the labels KubernetesPodOperator.build_pod_request_obj puts on the pod it builds,
                          with the raw (dag_id, task_id, run_id, map_index, try_number) they came from
With --labels-only (one venv per provider release, see `generate`), only $GOLDEN_OUT
(kpo_labels.provider-X.Y.Z.json): the labels build_pod_request_obj of that provider release puts on pods
for a fixed list of task instances (label_inputs), the same list for every release, so the files compare.

Runs on every Python from 3.8 to 3.13 and every provider from 2.x on: the context handed to
build_pod_request_obj carries every key any of those releases reads (ti, run_id, dag, task, ts).
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from types import SimpleNamespace

SEED = 58968  # apache/airflow#58968
OUT = os.path.dirname(os.path.abspath(__file__))


def write_kubeconfig() -> None:
    # build_pod_request_obj asks the kube hook whether it runs in-cluster, which loads a kubeconfig.
    # Any syntactically valid one will do: nothing connects to it.
    path = os.path.join(tempfile.mkdtemp(prefix="tikey-golden-"), "kubeconfig")
    with open(path, "w") as f:
        f.write(
            "apiVersion: v1\nkind: Config\ncurrent-context: golden\n"
            "clusters: [{name: golden, cluster: {server: 'https://127.0.0.1:1'}}]\n"
            "users: [{name: golden, user: {token: golden}}]\n"
            "contexts: [{name: golden, context: {cluster: golden, user: golden}}]\n"
        )
    os.environ["KUBECONFIG"] = path


# ---------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t\n"
UNICODE_POOLS = [
    "日本語中文한국어漢字データ処理",  # CJK, Hangul
    "😀🚀🎉🧪💥🦀",  # astral plane (4-byte UTF-8)
    "\u0301\u0308\u0327\u20dd",  # combining marks
    "مرحباשלום",  # RTL (Arabic, Hebrew)
    "\u200f\u200e\u202e",  # bidi controls
    "éüñçøåßÆÖ",  # Latin-1 letters: alphabetic to Python, not to the label regex
    "١٢٣٤",  # Arabic-Indic digits: digits to Python, not to the label regex
    "\u00a0\u2003\u3000",  # non-ASCII spaces
]
RUN_TYPES = ["scheduled", "manual", "asset_triggered", "dataset_triggered", "backfill"]
WORDS = [
    "etl", "extract", "load", "transform", "kpo", "zombie", "healthy", "mapped", "sensor", "spark",
    "daily", "hourly", "sync", "report", "billing", "ml", "train", "score", "export", "s3", "gcs",
]


def iso_ts(rng: random.Random) -> str:
    y, mo, d = rng.randint(2019, 2027), rng.randint(1, 12), rng.randint(1, 28)
    h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    base = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    frac = rng.choice(["", f".{rng.randint(0, 999999):06d}"])
    tz = rng.choice(["+00:00", "+00:00", "Z", "+05:30", "-07:00"])
    return base + frac + tz


def run_id(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.8:
        return f"{rng.choice(RUN_TYPES)}__{iso_ts(rng)}"
    if kind < 0.9:
        return f"manual__{iso_ts(rng)}_{''.join(rng.choice(ALNUM) for _ in range(8))}"
    return rng.choice(["my-custom-run", "run 42", "trigger/from/api", "backfill__" + iso_ts(rng)])


def dag_id(rng: random.Random) -> str:
    n = rng.randint(1, 6)
    sep = rng.choice(["_", "_", "-", "."])
    s = sep.join(rng.choice(WORDS) for _ in range(n))
    if rng.random() < 0.2:
        s += f"_v{rng.randint(1, 20)}"
    return s


def task_id(rng: random.Random) -> str:
    parts = [f"{rng.choice(WORDS)}_{rng.choice(WORDS)}" for _ in range(rng.randint(1, 4))]
    return ".".join(parts)  # task groups give dotted ids


def random_text(rng: random.Random, length: int, pool: str) -> str:
    return "".join(rng.choice(pool) for _ in range(length))


def safe_label_inputs(rng: random.Random) -> list[str]:
    xs: list[str] = [
        "", " ", "\n", "-", "_", ".", "a", "A", "0", "kpo_zombie_dag", "zombie_kpo_task",
        "scheduled__2024-01-01T00:00:00+00:00", "manual__2025-12-02T10:11:12.123456+00:00",
        "asset_triggered__2025-06-01T00:00:00+00:00", "backfill__2024-03-03T03:03:03+00:00",
        "group.sub_group.task-1", "trailing newline\n", "dag_id\n", "  padded  ", "--dash--", "__u__",
        "..dots..", "a" * 62, "a" * 63, "a" * 64, "a" * 300, "é", "日本", "😀", "a😀b", "a\u0301",
    ]
    # Realistic ids.
    for _ in range(1500):
        xs.append(rng.choice([dag_id, task_id, run_id])(rng))
    # Random printable ASCII, lengths 0-300.
    for _ in range(1600):
        xs.append(random_text(rng, rng.randint(0, 300), PRINTABLE))
    # Non-ASCII: pure, and mixed with ASCII.
    for _ in range(800):
        pool = rng.choice(UNICODE_POOLS)
        if rng.random() < 0.5:
            pool += ALNUM + "-_."
        xs.append(random_text(rng, rng.randint(0, 120), pool))
    # Leading/trailing punctuation and whitespace around realistic ids.
    for _ in range(600):
        core = rng.choice([dag_id, task_id, run_id])(rng)
        junk = " \t\n-_.!@#$%^&*()[]{}:;,/\\|~`'\"?<>+="
        xs.append(random_text(rng, rng.randint(0, 4), junk) + core + random_text(rng, rng.randint(0, 4), junk))
    # Lengths around the 63-character limit, already clean (unchanged until > 63).
    for n in list(range(55, 75)) * 10:
        s = rng.choice(ALNUM) + random_text(rng, max(n - 2, 0), ALNUM + "-_.") + rng.choice(ALNUM)
        xs.append(s[:n])
    # Strings that normalize to exactly 63 or 64 characters after stripping one bad character.
    for n in [63, 64] * 150:
        s = rng.choice(ALNUM) + random_text(rng, n - 2, ALNUM + "-_.") + rng.choice(ALNUM)
        i = rng.randint(1, n - 1)
        xs.append(s[:i] + rng.choice(":+/ é") + s[i:])
    # Only characters the regex removes.
    for _ in range(100):
        xs.append(random_text(rng, rng.randint(1, 20), " -_.:+/!éü😀\n"))
    return xs


# ---------------------------------------------------------------------------------------------------
# Airflow
# ---------------------------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:] == ["--labels-only"]:
        labels_only(os.environ["GOLDEN_OUT"])
        return
    write_kubeconfig()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="tikey-golden-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    import airflow
    from airflow.providers.cncf.kubernetes import __version__ as provider_version
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

    rng = random.Random(SEED)
    versions = {"apache-airflow": airflow.__version__, "apache-airflow-providers-cncf-kubernetes": provider_version}

    inputs = safe_label_inputs(rng)
    cases = [{"input": s, "output": make_safe_label_value(s)} for s in inputs]
    dump(
        "safe_label_values.json",
        {"generator": "tikey/golden/generate.py", "seed": SEED, "versions": versions, "count": len(cases)},
        cases,
    )

    op = KubernetesPodOperator(task_id="golden", name="golden", image="alpine", do_xcom_push=True)
    label_cases = []
    for i in range(400):
        raw = {
            "dag_id": dag_id(rng) if i % 7 else random_text(rng, rng.randint(1, 80), ALNUM + "-_.:/ é😀"),
            "task_id": task_id(rng),
            "run_id": run_id(rng),
            "map_index": rng.choice([-1, -1, -1, 0, 1, 2, 7, 41, 1023, 99999]),
            "try_number": rng.choice([0, 1, 1, 1, 2, 3, 5, 12]),
        }
        if i % 11 == 0:
            raw["dag_id"] = "d" * rng.randint(60, 250)  # long ids: truncated with the hash
        context = {
            "ti": SimpleNamespace(
                dag_id=raw["dag_id"], task_id=raw["task_id"], map_index=raw["map_index"],
                try_number=raw["try_number"],
            ),
            "run_id": raw["run_id"],
            "dag": SimpleNamespace(dag_id=raw["dag_id"]),
        }
        pod = op.build_pod_request_obj(context)
        label_cases.append({"input": raw, "labels": dict(sorted(pod.metadata.labels.items()))})
    dump(
        "kpo_labels.json",
        {"generator": "tikey/golden/generate.py", "seed": SEED, "versions": versions, "count": len(label_cases)},
        label_cases,
    )


# ---------------------------------------------------------------------------------------------------
# One provider release (--labels-only)
# ---------------------------------------------------------------------------------------------------


def label_inputs() -> list[dict]:
    """The task instances every provider release labels: hand-picked edge cases, then random ones.

    Each: the raw dag_id, task_id, run_id, map_index and try_number as the metadata DB holds them, the
    run's logical date as Airflow renders `ts` (what providers < 3.1.0 labelled pods with), and, for a
    SubDAG's task (Airflow 2.x), its parent's dag_id.
    """
    rng = random.Random(SEED + 1)
    ts0 = "2024-01-01T00:00:00+00:00"
    fixed = [
        # (dag_id, task_id, run_id, map_index, try_number)
        ("kpo_zombie_dag", "zombie_kpo_task", "scheduled__" + ts0, -1, 1),
        ("kpo_zombie_dag", "zombie_kpo_task", "scheduled__" + ts0, -1, 0),  # 3.x: not yet scheduled
        ("kpo_zombie_dag", "zombie_kpo_task", "scheduled__" + ts0, -1, 2),
        ("kpo_zombie_dag", "zombie_kpo_task", "scheduled__" + ts0, -1, 12),
        ("kpo_zombie_dag", "zombie_kpo_task", "manual__2025-12-02T10:11:12.123456+00:00", -1, 1),
        ("kpo_zombie_dag", "zombie_kpo_task", "manual__2025-12-02T10:11:12+00:00_AbCdEf12", -1, 3),
        ("kpo_zombie_dag", "mapped_kpo_task", "scheduled__" + ts0, 0, 1),
        ("kpo_zombie_dag", "mapped_kpo_task", "scheduled__" + ts0, 1, 1),
        ("kpo_zombie_dag", "mapped_kpo_task", "scheduled__" + ts0, 41, 2),
        ("kpo_zombie_dag", "mapped_kpo_task", "manual__2025-12-02T10:11:12.123456+00:00", 1023, 4),
        ("kpo_zombie_dag", "mapped_kpo_task", "scheduled__" + ts0, 99999, 1),
        ("kpo_zombie_dag", "group.sub_group.task-1", "backfill__2024-03-03T03:03:03+00:00", -1, 1),
        ("kpo_zombie_dag", "t", "dataset_triggered__2024-06-01T00:00:00.000001+00:00", -1, 1),
        ("kpo_zombie_dag", "t", "asset_triggered__2025-06-01T00:00:00+00:00", -1, 1),
        ("kpo_zombie_dag", "t", "my-custom-run", -1, 1),  # a valid label value: kept as it is
        ("kpo_zombie_dag", "t", "run 42", -1, 1),
        ("kpo_zombie_dag", "t", "trigger/from/api", -1, 1),
        ("kpo_zombie_dag", "t", "_leading_underscore_", 2, 1),
        ("kpo_zombie_dag", "t", "x" * 63, -1, 1),  # exactly the limit: kept
        ("kpo_zombie_dag", "t", "x" * 64, -1, 1),  # one over: cut to 53 + hash
        ("d" * 63, "t" * 63, "scheduled__" + ts0, -1, 1),
        ("d" * 64, "t" * 64, "scheduled__" + ts0, 3, 1),
        ("d" * 250, "group." * 40 + "task", "manual__" + ts0 + "_" + "r" * 200, 5, 7),
        ("dag.with.dots", "task-with-dashes", "scheduled__" + ts0, -1, 1),
        ("dag_é_unicode", "task_😀", "manual__2026-01-01T00:00:00+05:30", -1, 1),
        ("日本語のDAG", "データ処理", "scheduled__" + ts0, 0, 1),
        ("parent_dag.sub_dag", "sub_task", "scheduled__" + ts0, -1, 1),  # a SubDAG's task (2.x)
    ]
    out = []
    for d, t, r, m, n in fixed:
        out.append({"dag_id": d, "task_id": t, "run_id": r, "map_index": m, "try_number": n})
    for i in range(300):
        out.append({
            "dag_id": dag_id(rng) if i % 7 else random_text(rng, rng.randint(1, 80), ALNUM + "-_.:/ é😀"),
            "task_id": task_id(rng),
            "run_id": run_id(rng),
            "map_index": rng.choice([-1, -1, -1, 0, 1, 2, 7, 41, 1023, 99999]),
            "try_number": rng.choice([0, 1, 1, 1, 2, 3, 5, 12]),
        })
        if i % 11 == 0:
            out[-1]["dag_id"] = "d" * rng.randint(60, 250)
    for raw in out:
        # `ts`: the run's logical date as Airflow renders it (UTC isoformat); the run_id's own timestamp
        # when it has one (Airflow's ids embed the logical date), else a random one.
        stamp = raw["run_id"].split("__", 1)[1][:32] if "__" in raw["run_id"] else ""
        if not (len(stamp) >= 25 and stamp[4] == "-" and stamp.endswith("+00:00")):
            stamp = f"{rng.randint(2019, 2027):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00+00:00"
        raw["ts"] = stamp
        if raw["dag_id"].startswith("parent_dag."):
            raw["parent_dag_id"] = raw["dag_id"].split(".", 1)[0]
    return out


def kpo_class():
    try:  # provider >= 5.0
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    except ImportError:
        from airflow.providers.cncf.kubernetes.operators.kubernetes_pod import KubernetesPodOperator
    return KubernetesPodOperator


class _Launched(Exception):
    pass


class _StopAtLaunch:
    """The pod launcher of providers < 3.0: keeps the labels of the pod it is asked to start, and stops."""

    labels: dict = {}

    def start_pod(self, pod, **_kwargs):
        self.labels = dict(pod.metadata.labels)
        raise _Launched()

    def delete_pod(self, _pod):
        pass


def launched_labels(op, context: dict) -> dict:
    """The labels on the pod a provider < 3.0 KubernetesPodOperator.execute would start."""
    op.pod = op.create_pod_request_obj()
    launcher = _StopAtLaunch()
    try:
        op.create_new_pod_for_operator(op.create_labels_for_pod(context), launcher)
    except _Launched:
        return launcher.labels
    raise RuntimeError("create_new_pod_for_operator returned without starting the pod")


def labels_only(out: str) -> None:
    write_kubeconfig()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="tikey-golden-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # Provider 6.x asks the hook's connection for the namespace; without a metadata DB it must come from
    # the environment. An empty connection: no namespace, no cluster settings (labels do not depend on it).
    os.environ.setdefault("AIRFLOW_CONN_KUBERNETES_DEFAULT", "kubernetes://")
    import platform
    import warnings
    from importlib.metadata import version

    warnings.simplefilter("ignore")  # deprecation chatter of old releases on newer Pythons
    import airflow

    versions = {
        "apache-airflow": airflow.__version__,
        "apache-airflow-providers-cncf-kubernetes": version("apache-airflow-providers-cncf-kubernetes"),
        "python": platform.python_version(),
    }
    kpo = kpo_class()
    # Providers < 3.0 have no build_pod_request_obj: execute() builds the pod (create_pod_request_obj),
    # its labels (create_labels_for_pod), and create_new_pod_for_operator merges them and hands the pod
    # to the launcher. That path runs here, up to the launcher, which keeps the pod's labels and stops it.
    legacy = not hasattr(kpo, "build_pod_request_obj")
    extra = {"is_delete_operator_pod": True} if legacy else {}
    op = kpo(task_id="golden", name="golden", image="alpine", do_xcom_push=True, **extra)
    cases = []
    for raw in label_inputs():
        parent = raw.get("parent_dag_id")
        dag = SimpleNamespace(
            dag_id=raw["dag_id"],
            is_subdag=parent is not None,
            parent_dag=SimpleNamespace(dag_id=parent) if parent else None,
        )
        context = {
            "ti": SimpleNamespace(
                dag_id=raw["dag_id"], task_id=raw["task_id"], run_id=raw["run_id"],
                map_index=raw["map_index"], try_number=raw["try_number"],
            ),
            "run_id": raw["run_id"],
            "ts": raw["ts"],
            "dag": dag,
            "task": SimpleNamespace(task_id=raw["task_id"]),
        }
        if legacy:
            labels = launched_labels(op, context)
        else:
            labels = op.build_pod_request_obj(context).metadata.labels
        cases.append({"input": raw, "labels": dict(sorted(labels.items()))})
    dump(out, {"generator": "tikey/golden/generate.py --labels-only", "versions": versions, "count": len(cases)}, cases)


def dump(name: str, header: dict, cases: list) -> None:
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)},\n")
        f.write('  "cases": [\n')
        for i, c in enumerate(cases):
            sep = "," if i + 1 < len(cases) else ""
            f.write("    " + json.dumps(c, sort_keys=True, ensure_ascii=True) + sep + "\n")
        f.write("  ]\n}\n")
    print(f"wrote {path}: {len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
