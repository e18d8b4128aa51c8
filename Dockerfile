# syntax=docker/dockerfile:1.7
#
# kpo-sweeper: one image, three static binaries (/usr/local/bin/webhook, sweeper, certs).
#
# Why one image: the three are built from one workspace and one Cargo.lock, share nearly every
# dependency (kube, rustls/ring, tokio, tikey), and must move in lockstep (the webhook writes the stamp the
# sweeper reads). One build, one tag to mirror, scan and pin; each manifest picks its binary with `command`.
# The three static binaries weigh ~40 MB together; three images would triple the pulls and the tags to keep equal.
#
# Build:   docker build -t kpo-sweeper:0.1.0 .
# The build step (the `cargo build` line below) is exercised without Docker by certs/tests/static_build.rs,
# which runs the same command from this file and checks the three binaries are static and run.

# ---- build: static musl binaries ---------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
# musl-tools: the musl C compiler for ring's and SQLite's C parts.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binaries are copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p webhook -p sweeper -p certs \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-musl/release/webhook \
       target/x86_64-unknown-linux-musl/release/sweeper \
       target/x86_64-unknown-linux-musl/release/certs /out/

# ---- run: distroless static, non-root -----------------------------------------------------------------
# No shell, no package manager, no libc (the binaries need none); CA certificates and /etc/passwd with
# the `nonroot` user (65532), which the manifests also set (runAsNonRoot, runAsUser 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webhook /out/sweeper /out/certs /usr/local/bin/
USER 65532:65532
# 8443: webhook HTTPS (POST /mutate); 9090: webhook plain HTTP (/metrics, /healthz, /readyz).
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/webhook"]
