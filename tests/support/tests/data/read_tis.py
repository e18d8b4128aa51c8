"""Read task instances and DAG runs back through Airflow's own ORM (the venv's Airflow).

Usage: python read_tis.py SQLALCHEMY_URL...   -> one JSON line per URL on stdout, in order
"""
import json
import os
import sys
import tempfile

os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sys.argv[1]
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kpo-read-tis-"))

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from airflow.models.dagrun import DagRun  # noqa: E402
from airflow.models.taskinstance import TaskInstance  # noqa: E402


def read(url):
    out = {"url": url, "task_instances": [], "dag_runs": []}
    engine = create_engine(url)
    with Session(engine) as session:
        for ti in session.query(TaskInstance).order_by(TaskInstance.task_id).all():
            out["task_instances"].append({
                "id": str(getattr(ti, "id", None) or ""),
                "dag_id": ti.dag_id,
                "task_id": ti.task_id,
                "run_id": ti.run_id,
                "map_index": ti.map_index,
                "try_number": ti.try_number,
                "state": None if ti.state is None else str(ti.state),
                "started": ti.start_date is not None,
                "dag_version_id": str(getattr(ti, "dag_version_id", None) or ""),
                "dag_run_state": None if ti.dag_run is None else str(ti.dag_run.state),
            })
        for dr in session.query(DagRun).order_by(DagRun.run_id).all():
            out["dag_runs"].append({"dag_id": dr.dag_id, "run_id": dr.run_id, "run_type": str(dr.run_type)})
    engine.dispose()
    return out


for url in sys.argv[1:]:
    print(json.dumps(read(url)), flush=True)
