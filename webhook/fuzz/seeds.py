#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus (corpus/*/seed-*) from real KPO data: the realistic pod review of
webhook/tests/data/kpo_pod_review.json, with the label sets that Airflow's own KPO code produced
(tikey/golden/kpo_labels.json) swapped in, plus the shapes the webhook must tell apart (not KPO, legacy
labels, a stale stamp, DELETE, a subresource, no annotations). Deterministic; run from anywhere.
Files found by AFL++ (corpus/*/afl-*) are kept as they are."""
import copy, json, pathlib

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
review = json.loads((root / "webhook/tests/data/kpo_pod_review.json").read_text())
golden = json.loads((root / "tikey/golden/kpo_labels.json").read_text())["cases"]

adm = here / "corpus/admission"
tik = here / "corpus/tikey"
for d in (adm, tik):
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()

def write(d, name, data):
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())

def with_labels(labels):
    r = copy.deepcopy(review)
    r["request"]["object"]["metadata"]["labels"] = labels
    return r

write(adm, "000-kpo-review.json", json.dumps(review))
# Every 10th golden case: 40 real label sets (long ids cut with the md5 suffix, mapped tasks, odd run ids).
for i, case in enumerate(golden[::10]):
    write(adm, f"{i + 1:03d}-golden.json", json.dumps(with_labels(case["labels"])))
    write(tik, f"{i + 1:03d}-labels.txt", "\n".join(f"{k}={v}" for k, v in sorted(case["labels"].items())))
    lab = case["labels"]
    key = "/".join([lab["dag_id"], lab["task_id"], lab["run_id"], lab.get("map_index", "-1")])
    write(tik, f"{i + 1:03d}-key.txt", key)
    stamp = {"kpo-sweeper.io/ti-key": key, "kpo-sweeper.io/try-number": lab.get("try_number", "1"),
             "kpo-sweeper.io/admitted-at": "1764000000",
             "kpo-sweeper.io/created-by": "system:serviceaccount:airflow:airflow-worker"}
    write(tik, f"{i + 1:03d}-stamp.txt", "\n".join(f"{k}={v}" for k, v in stamp.items()))
    write(tik, f"{i + 1:03d}-raw.txt", case["input"]["dag_id"])

base = review["request"]["object"]["metadata"]["labels"]
r = with_labels({"app": "not-airflow"}); write(adm, "100-not-kpo.json", json.dumps(r))
legacy = dict(base); legacy.pop("run_id", None); legacy["execution_date"] = "2021-01-01T0000000000-0a1b2c3d4"
write(adm, "101-legacy.json", json.dumps(with_labels(legacy)))
bad_try = dict(base); bad_try["try_number"] = "one"
write(adm, "102-bad-try.json", json.dumps(with_labels(bad_try)))
r = copy.deepcopy(review)
r["request"]["object"]["metadata"]["annotations"] = {"kpo-sweeper.io/ti-key": "a/b/c/-1", "keep": "me"}
write(adm, "103-stale-stamp.json", json.dumps(r))
r = copy.deepcopy(review); r["request"]["object"]["metadata"].pop("annotations", None)
write(adm, "104-no-annotations.json", json.dumps(r))
r = copy.deepcopy(review); r["request"]["operation"] = "DELETE"; r["request"]["oldObject"] = r["request"]["object"]; r["request"]["object"] = None
write(adm, "105-delete.json", json.dumps(r))
r = copy.deepcopy(review); r["request"]["subResource"] = "binding"
write(adm, "106-subresource.json", json.dumps(r))
r = copy.deepcopy(review); r["request"]["object"]["metadata"]["labels"]["map_index"] = "7"
write(adm, "107-mapped.json", json.dumps(r))
write(adm, "108-empty.json", "{}")
write(adm, "109-compact.json", json.dumps(review, separators=(",", ":")))
write(tik, "100-key-hash-form.txt", "-0a1b2c3d4/t/r/-1")
write(tik, "101-key-bad-map-index.txt", "d/t/r/-2")
