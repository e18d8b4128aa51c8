# kpo-sweeper: `make test` is the test command, `make demo` the demo (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV_FILE := /tmp/kpo-sweeper-env/env.sh

.PHONY: test lint fmt unit env-up env-down demo demo-airflow bench golden \
	image image-rootfs image-toolchain image-tools workflow-lint

KPO_CACHE ?= $(HOME)/.cache/kpo-sweeper

## test: bring the local environment up (tests/env/up), then fmt check, clippy, the image (tests/image
## unpacks and runs it), the release workflow's lint, every test, and the leftover-pods check.
test: env-up lint image workflow-lint
	cargo test --workspace --locked --no-run
	# The hostile-load test runs the webhook as it ships (a release build no older than its sources).
	cargo build --release --locked -p webhook --bin webhook
	# Then no test namespace made by this run may still hold a pod (tests delete theirs, pass or fail):
	# the check runs even when a test failed, and either failure fails the run.
	since=$$(date -u +%Y-%m-%dT%H:%M:%SZ); rc=0; \
	set -a; . $(ENV_FILE); set +a; cargo test --workspace --locked || rc=$$?; \
	cargo run -q --locked -p testsupport --bin leftover-pods -- --since "$$since" || rc=1; \
	exit $$rc

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
## The same story told by Airflow 2.11.2: cargo test -p airflow-e2e --test kpo_zombie_dag_airflow2 -- --nocapture
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

# ---- the image (docs/design.md, "Image") --------------------------------------------------------------
# One definition, two ways to run it. The Dockerfile's final stage is `FROM scratch` + `COPY --from=build
# /rootfs/ /`. With Docker, its `build` stage runs `make image-rootfs` inside rust:1.95-bookworm; here,
# `make image` runs the same `make image-rootfs` on this machine and hands its output to buildah as the
# build context named `build`, which replaces that stage (BuildKit and buildah both let a named context
# override a stage of the same name). Nothing is pulled: the final stage builds offline.
IMAGE_DIR := target/image
IMAGE_ARCHIVE := $(IMAGE_DIR)/kpo-sweeper.oci.tar
IMAGE_ARCHES := amd64 arm64
# The workspace's version: the three binaries' crates, which must agree (the image's version label).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' webhook/Cargo.toml)
IMAGE_SOURCE ?= https://github.com/kpo-sweeper/kpo-sweeper
# The image's name in the archive (its `org.opencontainers.image.ref.name`): the chart's default
# image.repository, at the version (the chart's appVersion), as the release workflow pushes it to
# ghcr.io/<owner>/kpo-sweeper. `ctr -n k8s.io images import` of the archive (kind, k3s, a node's
# containerd) gives the node an image under exactly the name the chart's pods ask for.
IMAGE_REPOSITORY ?= ghcr.io/kpo-sweeper/kpo-sweeper
IMAGE_REF := $(IMAGE_REPOSITORY):$(VERSION)
ZIG_VERSION := 0.15.2
ZIGBUILD_VERSION := 0.24.1
ZIG_VENV := $(KPO_CACHE)/venv-ziglang-$(ZIG_VERSION)
ZIGBUILD_ROOT := $(KPO_CACHE)/cargo-zigbuild-$(ZIGBUILD_VERSION)
# Cargo's own fingerprints make this a cache by content: a warm build relinks only what changed.
IMAGE_CARGO_TARGET_DIR ?= $(KPO_CACHE)/target-image
RUST_TARGET_amd64 := x86_64-unknown-linux-musl
RUST_TARGET_arm64 := aarch64-unknown-linux-musl
BUILDAH = buildah --root $(CURDIR)/$(IMAGE_DIR)/storage --runroot $(CURDIR)/$(IMAGE_DIR)/run --storage-driver vfs

## image: the one image (webhook, sweeper, certs) for linux/amd64 and linux/arm64, as an OCI image index
## in target/image/kpo-sweeper.oci.tar, named IMAGE_REF (ghcr.io/kpo-sweeper/kpo-sweeper:VERSION, the
## chart's default image).
image: image-tools
	@t0=$$(date +%s); \
	for c in webhook sweeper certs; do v=$$(sed -n 's/^version = "\(.*\)"/\1/p' $$c/Cargo.toml); \
	  test "$$v" = "$(VERSION)" || { echo "image: $$c is at $$v, webhook at $(VERSION): one version for the image" >&2; exit 1; }; done; \
	for a in $(IMAGE_ARCHES); do $(MAKE) --no-print-directory image-rootfs ARCH=$$a; done; \
	t1=$$(date +%s); \
	key=$$( { echo "$(IMAGE_REF) $(IMAGE_SOURCE) $(IMAGE_ARCHES)"; sha256sum Dockerfile; \
	          cd $(IMAGE_DIR) && find $(IMAGE_ARCHES) -printf '%p %m %y\n' | sort && \
	          find $(IMAGE_ARCHES) -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-64); \
	if [ -f $(IMAGE_ARCHIVE) ] && [ "$$(cat $(IMAGE_ARCHIVE).key 2>/dev/null)" = "$$key" ]; then \
	  echo "image: reuse $(IMAGE_ARCHIVE) (same Dockerfile, version and root filesystems)"; \
	else \
	  rm -rf $(IMAGE_DIR)/storage $(IMAGE_DIR)/run $(IMAGE_DIR)/empty $(IMAGE_ARCHIVE) $(IMAGE_ARCHIVE).key; \
	  mkdir -p $(IMAGE_DIR)/empty; \
	  $(BUILDAH) manifest create kpo-sweeper:$(VERSION) >/dev/null; \
	  for a in $(IMAGE_ARCHES); do \
	    $(BUILDAH) bud --quiet --os linux --arch $$a --build-arg TARGETARCH=$$a --build-arg TARGETOS=linux \
	      --build-arg VERSION=$(VERSION) --build-arg SOURCE=$(IMAGE_SOURCE) \
	      --build-context build=$(IMAGE_DIR)/$$a --timestamp 0 --format oci \
	      --manifest kpo-sweeper:$(VERSION) -f Dockerfile $(IMAGE_DIR)/empty >/dev/null; done; \
	  $(BUILDAH) manifest push --quiet --all --format oci kpo-sweeper:$(VERSION) \
	    oci-archive:$(CURDIR)/$(IMAGE_ARCHIVE):$(IMAGE_REF); \
	  rm -rf $(IMAGE_DIR)/storage $(IMAGE_DIR)/run $(IMAGE_DIR)/empty; \
	  echo "$$key" > $(IMAGE_ARCHIVE).key; \
	fi; \
	echo "image: $(IMAGE_ARCHIVE) ($$(du -h $(IMAGE_ARCHIVE) | cut -f1)), $(IMAGE_REF) $(IMAGE_ARCHES):" \
	  "binaries and root filesystems $$((t1 - t0)) s, image $$(( $$(date +%s) - t1 )) s"

## image-rootfs ARCH=amd64|arm64 [ROOTFS_OUT=dir]: the image's root filesystem for one architecture in
## ROOTFS_OUT/rootfs (default target/image/ARCH): three static musl binaries, CA roots, the nonroot
## user (65532), /tmp; no shell. The Dockerfile's build stage runs this same target.
ROOTFS_OUT ?= $(IMAGE_DIR)/$(ARCH)
image-rootfs: image-toolchain
	@test -n "$(RUST_TARGET_$(ARCH))" || { echo "image-rootfs: ARCH=amd64 or ARCH=arm64" >&2; exit 2; }
	PATH="$(ZIG_VENV)/bin:$(ZIGBUILD_ROOT)/bin:$$PATH" CARGO_TARGET_DIR="$(IMAGE_CARGO_TARGET_DIR)" \
	  cargo zigbuild --release --locked --target $(RUST_TARGET_$(ARCH)) -p webhook -p sweeper -p certs
	rm -rf $(ROOTFS_OUT)/rootfs
	install -d -m 0755 $(ROOTFS_OUT)/rootfs/usr/local/bin $(ROOTFS_OUT)/rootfs/etc/ssl/certs
	install -d -m 1777 $(ROOTFS_OUT)/rootfs/tmp
	install -m 0755 $(addprefix $(IMAGE_CARGO_TARGET_DIR)/$(RUST_TARGET_$(ARCH))/release/,webhook sweeper certs) \
	  $(ROOTFS_OUT)/rootfs/usr/local/bin/
	install -m 0644 /etc/ssl/certs/ca-certificates.crt $(ROOTFS_OUT)/rootfs/etc/ssl/certs/ca-certificates.crt
	printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
	  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > $(ROOTFS_OUT)/rootfs/etc/passwd
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' > $(ROOTFS_OUT)/rootfs/etc/group
	chmod 0644 $(ROOTFS_OUT)/rootfs/etc/passwd $(ROOTFS_OUT)/rootfs/etc/group

## image-toolchain: what image-rootfs needs, installed when missing: the musl targets, zig (PyPI's
## `ziglang`, in a venv) and cargo-zigbuild (crates.io), both cached by version under ~/.cache/kpo-sweeper.
image-toolchain:
	@command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	@test -r /etc/ssl/certs/ca-certificates.crt \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates; }
	@for t in $(RUST_TARGET_amd64) $(RUST_TARGET_arm64); do \
	  rustup target list --installed | grep -qx $$t || rustup target add $$t; done
	@test -x $(ZIG_VENV)/bin/python3 && $(ZIG_VENV)/bin/python3 -m ziglang version >/dev/null 2>&1 \
	  || { rm -rf $(ZIG_VENV) && python3 -m venv $(ZIG_VENV) && $(ZIG_VENV)/bin/pip install -q ziglang==$(ZIG_VERSION); }
	@test -x $(ZIGBUILD_ROOT)/bin/cargo-zigbuild \
	  || cargo install --locked --quiet --root $(ZIGBUILD_ROOT) cargo-zigbuild --version $(ZIGBUILD_VERSION)

## image-tools: Debian's buildah, skopeo, umoci and qemu-user-static, installed when missing.
image-tools:
	@missing=""; for p in buildah skopeo umoci qemu-user-static; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "image-tools: apt-get install$$missing"; apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

## workflow-lint: actionlint (built from its Go module, cached by version) on .github/workflows, with
## Debian's shellcheck for the `run:` scripts.
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(KPO_CACHE)/actionlint-$(ACTIONLINT_VERSION)/actionlint
workflow-lint:
	@command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; }
	@test -x $(ACTIONLINT) || GOBIN=$(dir $(ACTIONLINT)) GOTOOLCHAIN=local GOFLAGS=-mod=mod \
	  PATH="/usr/local/go/bin:$$PATH" go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	$(ACTIONLINT) -no-color .github/workflows/*.yml
