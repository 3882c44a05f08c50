# syntax=docker/dockerfile:1.7
# One image for the operator and the worker Jobs: the `securepipe` binary.
#   docker build -t securepipe:dev .
#   docker run --rm securepipe:dev --help
# Builder and runtime share Debian 13 (trixie), so the binary's glibc matches the base.

ARG RUST_VERSION=1.95.0

# --- build -------------------------------------------------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-slim-trixie AS build
WORKDIR /src

# The toolchain first: rust-toolchain.toml pins it (and rustfmt/clippy); this layer only
# changes when the pin does.
COPY rust-toolchain.toml ./
RUN rustup toolchain install && rustc --version

# Then the sources. The cargo registry and the target directory are BuildKit cache mounts,
# so an edit to one crate rebuilds that crate, not the ~350 dependencies.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# `tests` is a workspace member: cargo needs its manifest and target files to resolve
# the workspace, although nothing from it is built here.
COPY tests/Cargo.toml tests/Cargo.toml
COPY tests/src tests/src
COPY tests/stack tests/stack
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p securepipe-cli \
    && install -D -m 0755 target/release/securepipe /out/securepipe

# --- runtime -----------------------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates (/etc/ssl/certs, for AWS and the
# apiserver over TLS), tzdata; no shell, no package manager.
FROM gcr.io/distroless/cc-debian13:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="securepipe" \
      org.opencontainers.image.description="Kubernetes operator for secure ML training data pipelines: prefix-scoped STS credentials, extract-and-shred workers, S3 retention as code" \
      org.opencontainers.image.source="https://github.com/securepipe/securepipe" \
      org.opencontainers.image.url="https://github.com/securepipe/securepipe" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/securepipe /usr/local/bin/securepipe
# 65532 is distroless's `nonroot`; numeric so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# The operator's /healthz, /readyz and /metrics (`--listen`, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/securepipe"]
CMD ["operator"]
