#!/usr/bin/env bash
# The sweeper's benchmark (not part of `make test`): 50,000 KPO pods in the local apiserver and
# 1,000,000 task instances (50,000 active) in a fresh Airflow 3.x PostgreSQL DB; prints the sweeper's
# dry-run wall time and peak RSS next to a bare metadata-only LIST plus the bare active-TI query, and
# the ratio (target <= 1.2; peak RSS target <= 100 MB).
#
#   sweeper/bench/run.sh [--pods N] [--tis N] [--active N] [--runs N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/env/up >/dev/null
target="${CARGO_TARGET_DIR:-$PWD/target}"
CARGO_TARGET_DIR="$target" cargo build --release --quiet -p sweeper --bin sweeper --example sweeper_bench
exec "$target/release/examples/sweeper_bench" "$target/release/sweeper" "$@"
