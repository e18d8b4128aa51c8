# syntax=docker/dockerfile:1.7
#
# kpo-sweeper: one image, three static binaries (/usr/local/bin/webhook, sweeper, certs).
#
# Why one image: the three are built from one workspace and one Cargo.lock, share nearly every
# dependency (kube, rustls/ring, tokio, tikey), and must move in lockstep (the webhook writes the stamp the
# sweeper reads). One build, one tag to mirror, scan and pin; each manifest picks its binary with `command`.
#
# One definition, two ways to build it; both give the same layout:
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 -t kpo-sweeper:0.1.0 .
#       the `build` stage below runs `make image-rootfs` (static musl binaries cross-built with
#       cargo-zigbuild, CA roots, /etc/passwd with the nonroot user) for each target platform;
#   make image
#       runs the same `make image-rootfs` on the host for amd64 and arm64 and gives each result to
#       buildah as the build context named `build`, which replaces the stage of that name (no registry
#       is reached: the final stage is `FROM scratch`). Output: target/image/kpo-sweeper.oci.tar.
# tests/image unpacks that archive and runs the binaries from its root filesystem.

# ---- build: the root filesystem (make image-rootfs) ----------------------------------------------------
# Runs on the build machine's platform and cross-builds for the target's (zig is the C compiler and
# linker for ring's and SQLite's C parts, for both architectures).
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Caches (BuildKit): the registry, the zig venv and cargo-zigbuild (KPO_CACHE), and the target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/root/.cache/kpo-sweeper,sharing=locked \
    make image-rootfs ARCH=$TARGETARCH ROOTFS_OUT=/
# The stage's result is /rootfs; `make image` gives buildah target/image/ARCH, which holds rootfs/.

# ---- the image: scratch, static binaries, non-root -----------------------------------------------------
# No shell, no package manager, no libc (the binaries need none): CA certificates, /etc/passwd and
# /etc/group with `nonroot` (65532), which the manifests also set (runAsNonRoot, runAsUser 65532).
FROM scratch
ARG TARGETARCH
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/kpo-sweeper/kpo-sweeper
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="kpo-sweeper" \
      org.opencontainers.image.description="Ends zombie KubernetesPodOperator pods: stamping webhook, sweeper, certs" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
# 8443: webhook HTTPS (POST /mutate); 9090: webhook plain HTTP (/metrics, /healthz, /readyz).
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/webhook"]
