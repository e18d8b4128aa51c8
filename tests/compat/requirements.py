"""Write tests/compat/schemas/<V>/requirements.json: what a test must write so that dag, dag_bundle,
dag_version, dag_run and task_instance rows fit this release's schema (read from the migrated databases
through the psql and mariadb clients, so no driver is needed). Sorted, so a second run is byte for byte."""
import argparse
import json
import subprocess

TABLES = ["dag_bundle", "dag", "dag_version", "dag_run", "task_instance"]


def pg(url, sql):
    out = subprocess.run(["psql", "-X", "-At", "-F", "\t", url, "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def my(port, db, sql):
    out = subprocess.run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", port, "-uairflow", "-pairflow",
                          "-N", "-B", db, "-e", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def describe(rows_cols, rows_fks):
    tables = {}
    for table, column, dtype, nullable, has_default in rows_cols:
        t = tables.setdefault(table, {"columns": {}, "required": []})
        t["columns"][column] = {"type": dtype, "nullable": nullable == "YES"}
        if nullable == "NO" and has_default == "f":
            t["required"].append(column)
    for t in tables.values():
        t["required"].sort()
    for table, cols, ref, refcols in rows_fks:
        tables[table].setdefault("foreign_keys", []).append(
            {"columns": cols.split(","), "references": ref, "ref_columns": refcols.split(",")})
    for t in tables.values():
        t.get("foreign_keys", []).sort(key=lambda f: (f["references"], f["columns"]))
    return {"tables": {k: tables[k] for k in TABLES if k in tables}}


def pg_profile(url):
    names = ",".join(f"'{t}'" for t in TABLES)
    cols = pg(url, f"""SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,
        CASE WHEN c.column_default IS NULL AND c.is_identity = 'NO' AND c.is_generated = 'NEVER'
             THEN 'f' ELSE 't' END
        FROM information_schema.columns c WHERE c.table_schema = 'public' AND c.table_name IN ({names})
        ORDER BY c.table_name, c.ordinal_position""")
    fks = pg(url, f"""SELECT cl.relname,
        (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(co.conkey) WITH ORDINALITY k(att, n)
           JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.att),
        rf.relname,
        (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(co.confkey) WITH ORDINALITY k(att, n)
           JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.att)
        FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_class rf ON rf.oid = co.confrelid
        JOIN pg_namespace ns ON ns.oid = cl.relnamespace
        WHERE co.contype = 'f' AND ns.nspname = 'public' AND cl.relname IN ({names})""")
    alembic = pg(url, "SELECT version_num FROM alembic_version")[0][0]
    return alembic, describe(cols, fks)


def my_profile(port, db):
    names = ",".join(f"'{t}'" for t in TABLES)
    cols = my(port, db, f"""SELECT table_name, column_name, data_type, is_nullable,
        IF(column_default IS NULL AND extra NOT LIKE '%auto_increment%' AND extra NOT LIKE '%GENERATED%', 'f', 't')
        FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name IN ({names})
        ORDER BY table_name, ordinal_position""")
    fks = my(port, db, f"""SELECT k.table_name, GROUP_CONCAT(k.column_name ORDER BY k.ordinal_position),
        MIN(k.referenced_table_name), GROUP_CONCAT(k.referenced_column_name ORDER BY k.ordinal_position)
        FROM information_schema.key_column_usage k WHERE k.table_schema = DATABASE()
        AND k.referenced_table_name IS NOT NULL AND k.table_name IN ({names})
        GROUP BY k.table_name, k.constraint_name""")
    alembic = my(port, db, "SELECT version_num FROM alembic_version")[0][0]
    return alembic, describe(cols, fks)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--version", required=True)
    p.add_argument("--pg", required=True)
    p.add_argument("--my", default="")
    p.add_argument("--my-port", default="")
    p.add_argument("--my-note", default="")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    major, minor = (int(x) for x in a.version.split(".")[:2])
    alembic, pg_desc = pg_profile(a.pg)
    ti = pg_desc["tables"]["task_instance"]["columns"]
    doc = {
        "airflow": a.version,
        "alembic_version": alembic,
        "dag_bundle": "dag_bundle" in pg_desc["tables"],
        "dag_version": "dag_version" in pg_desc["tables"],
        "task_instance_id": ti["id"]["type"] if "id" in ti else None,
        "try_number_nullable": ti["try_number"]["nullable"],
        # Airflow 2.0-2.9 bumped try_number when the task started (and lowered it at defer); since 2.10 the
        # scheduler bumps it when it schedules the try (docs/design.md, "How Airflow moves try_number").
        "try_number_bumped_at": "start" if (major, minor) < (2, 10) else "schedule",
        "postgres": pg_desc,
    }
    if a.my:
        my_alembic, my_desc = my_profile(a.my_port, a.my)
        assert my_alembic == alembic, (my_alembic, alembic)
        doc["mariadb"] = my_desc
    else:
        doc["mariadb"] = {"not_migrated": a.my_note or "airflow db migrate failed"}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


main()
