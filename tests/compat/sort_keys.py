"""Filter a mariadb-dump: inside each CREATE TABLE, the key and constraint lines in a fixed order.

MariaDB lists a table's indexes in the order they were created, and Airflow creates a fresh database's
indexes by iterating SQLAlchemy's `Table.indexes`, a set ordered by object identity, so two runs list them
in different orders. The order of these lines means nothing to the server; sorting them (primary key,
unique keys, other keys, constraints, each group by text) makes the dump reproducible."""
import sys

GROUPS = ("PRIMARY KEY", "UNIQUE KEY", "KEY", "FULLTEXT KEY", "SPATIAL KEY", "CONSTRAINT")


def group(line):
    body = line.strip()
    for i, g in enumerate(GROUPS):
        if body.startswith(g + " ") or body.startswith(g + "("):
            return i
    return None


def flush(block, out):
    cols = [l for l in block if group(l) is None]
    keys = sorted((l for l in block if group(l) is not None), key=lambda l: (group(l), l.strip().rstrip(",")))
    lines = [l.rstrip("\n").rstrip(",") for l in cols + keys]
    for i, l in enumerate(lines):
        out.write(l + ("," if i < len(lines) - 1 else "") + "\n")


def main():
    out = sys.stdout
    block = None
    for line in sys.stdin:
        if block is None:
            out.write(line)
            if line.startswith("CREATE TABLE "):
                block = []
        elif line.startswith(")"):
            flush(block, out)
            out.write(line)
            block = None
        else:
            block.append(line)


main()
