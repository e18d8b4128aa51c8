# kpo-sweeper: `make test` is the test command, `make demo` the demo (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV_FILE := /tmp/kpo-sweeper-env/env.sh

.PHONY: test lint fmt unit env-up env-down demo demo-airflow bench golden

## test: bring the local environment up (tests/env/up), then fmt check, clippy and every test.
test: env-up lint
	cargo test --workspace --locked --no-run
	# The hostile-load test runs the webhook as it ships (a release build no older than its sources).
	cargo build --release --locked -p webhook --bin webhook
	set -a; . $(ENV_FILE); set +a; cargo test --workspace --locked

## lint: rustfmt and clippy, warnings are errors.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## unit: only the tests that need no servers (tikey's golden vectors and property tests, pure modules).
unit:
	cargo test -p tikey --locked

## env-up / env-down: start (or reuse) / stop the local kube-apiserver, etcd, PostgreSQL, MariaDB, SQLite.
env-up:
	tests/env/up | tee /tmp/kpo-sweeper-env-up.log
	test "$$(tail -n 1 /tmp/kpo-sweeper-env-up.log)" = "$(ENV_FILE)"

env-down:
	tests/env/down

## demo: the upstream scenario (apache/airflow#58968) end to end on the local control plane.
demo: env-up
	tests/demo/run

## demo-airflow: the same scenario run by real Airflow 3.3.2 and its KubernetesPodOperator on kwok nodes,
## zombies made by killed workers, narrated (the test tests/airflow/tests/kpo_zombie_dag.rs; ~4 min warm).
demo-airflow: env-up
	set -a; . $(ENV_FILE); set +a; cargo test --locked -p airflow-e2e --test kpo_zombie_dag -- --nocapture

## bench: the figures the issues ask for (not part of `make test`; all but tikey's need `make env-up`).
bench: env-up
	cargo bench -p tikey
	cargo run --release -p webhook --example bench
	cargo run --release -p webhook --example hostile
	cargo run --release -p policies --example policy_bench
	sweeper/bench/run.sh

## golden: regenerate tikey's golden vectors from Airflow's own code (then `git diff tikey/golden`).
golden:
	tikey/golden/generate

fmt:
	cargo fmt --all
