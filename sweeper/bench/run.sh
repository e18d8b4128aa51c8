#!/usr/bin/env bash
# The sweeper's benchmark (not part of `make test`): 50,000 KPO pods in the local apiserver and, on
# PostgreSQL and on MariaDB, a fresh Airflow 3.3.2 DB whose task_instance grows from 1,000,000 to
# 10,000,000 rows (50,000 active). At each size it prints the sweeper's dry-run wall time and peak
# RSS next to the I/O floor (a bare metadata-only LIST plus the bare active-TI query), the ratios,
# and the EXPLAIN (PostgreSQL: ANALYZE, BUFFERS) of each statement the sweeper sends.
# Targets (issue 11): 10M <= 1.2x 1M; sweeper <= 1.1x the floor at 1M; peak RSS <= 64 MB.
#
#   sweeper/bench/run.sh [--pods N] [--active N] [--sizes N,N] [--dbs pg,mariadb] [--pgbouncer]
#                        [--runs N] [--warmup N] [--keep] [--keep-db] [--namespace NS]
#
# With --rows first: the cost of the candidates' rows query (decision table rows 9-11) instead,
# examples/rows_bench.rs: task_instance at 1M and 10M rows, one task holding 100,000 runs (Airflow's
# own run_ids, then a user's), 500 candidates over 50 tasks; buffers/pages, server and wall ms.
#   sweeper/bench/run.sh --rows [--sizes N,N] [--dbs pg,mariadb] [--runs N] [--keep-db]
#
# With --cost first: what one sweep's LIST costs the apiserver, by page size (examples/list_cost.rs),
# on a namespace holding the bench's pods (a run with --namespace NS --keep leaves them):
#   sweeper/bench/run.sh --cost --namespace NS [--page-sizes 500,1000,5000,0] [--runs N]
#                        [--db-url URL]   (also the sweeper binary's dry run against that database)
#
# With --soak first: interval mode over time (examples/interval_soak.rs): RSS, peak, fds and threads
# after each of --loops loops, on a namespace and database a run with --keep-db --namespace NS left:
#   sweeper/bench/run.sh --soak --namespace NS --db-url URL [--loops 300] [--interval 1s]
#
# With --mem first: which structure holds a dry run's bytes (examples/mem_breakdown.rs), per pod:
#   sweeper/bench/run.sh --mem --namespace NS
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/env/up >/dev/null
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [[ "${1:-}" == --rows ]]; then
  shift
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --example rows_bench
  exec "$target/release/examples/rows_bench" "$@"
fi
if [[ "${1:-}" == --cost ]]; then
  shift
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --bin sweeper --example list_cost
  args=("$@")
  [[ " $* " == *" --db-url "* ]] && args+=(--sweeper "$target/release/sweeper")
  exec "$target/release/examples/list_cost" "${args[@]}"
fi
if [[ "${1:-}" == --mem ]]; then
  shift
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --example mem_breakdown
  exec "$target/release/examples/mem_breakdown" "$@"
fi
if [[ "${1:-}" == --soak ]]; then
  shift
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --bin sweeper --example interval_soak
  exec "$target/release/examples/interval_soak" "$target/release/sweeper" "$@"
fi
CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --bin sweeper --example sweeper_bench
exec "$target/release/examples/sweeper_bench" "$target/release/sweeper" "$@"
