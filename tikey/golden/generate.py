"""Golden vectors for tikey, produced by Airflow's own code.

Run through `tikey/golden/generate` (it provides a venv with the pinned apache-airflow and
apache-airflow-providers-cncf-kubernetes). Deterministic: a fixed seed, sorted keys, one case per line,
so a re-run reproduces the committed files byte for byte.

Writes:
  safe_label_values.json  inputs and outputs of make_safe_label_value (pod_generator.py)
  kpo_labels.json         the labels KubernetesPodOperator.build_pod_request_obj puts on the pod it builds,
                          with the raw (dag_id, task_id, run_id, map_index, try_number) they came from
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
