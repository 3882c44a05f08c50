# securepipe — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := target/env/env.sh
CARGO ?= cargo
## Features of the stack suites' `securepipe` build and of their `cargo test`, the same in both
## so nothing compiles twice: the worker's crash points (never in a release build).
WORKSPACE_FEATURES := --features securepipe-cli/failpoints

.PHONY: test demo lint fmt-check clippy unit stack-up stack-down stack-test crds bench dsp-random-check

## Everything CI runs: formatting, lints, unit tests, then the stack suites against a real
## kube-apiserver and LocalStack (brought up here; left running for the next run).
test: lint unit dsp-random-check stack-up stack-test

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## 40 random WAVs (rates, lengths, formats, channels, options) through `securepipe features`,
## compared with librosa 0.11 at 1e-3. A fixed seed keeps CI deterministic; explore others with
## `make -C tests/golden/dsp random-check SEED=N`. First run creates the librosa venv (~1-2 min).
dsp-random-check:
	$(MAKE) -C tests/golden/dsp random-check PROFILE=dev CASES=40 SEED=20261123

stack-up:
	tests/env/up.sh

stack-down:
	tests/env/down.sh

## The tests marked `#[ignore = "needs the local stack ..."]`. The operator suites run the
## real `securepipe` binary, so it is built first.
stack-test:
	$(CARGO) build --locked -p securepipe-cli $(WORKSPACE_FEATURES)
	source $(ENV) && $(CARGO) test --workspace --locked $(WORKSPACE_FEATURES) -- --ignored

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet --locked -p securepipe-cli -- crdgen --output-dir crds

## Runs the operator on the local stack with the example resources and shows what it did.
demo: stack-up
	$(CARGO) build --locked -p securepipe-cli
	tests/demo.sh

## Envelope encryption: the Python AWS Encryption SDK venv the interop suite uses (cached,
## ~2 min cold), and a brief coverage-guided fuzz run of the message parser (nightly +
## cargo-fuzz; `make fuzz-envelope FUZZ_SECONDS=3600` for a long one).
FUZZ_SECONDS ?= 60
.PHONY: envelope-interop-venv fuzz-envelope bench-envelope
stack-test: envelope-interop-venv
test: fuzz-envelope

envelope-interop-venv:
	tests/interop/envelope/install.sh >/dev/null

fuzz-envelope:
	crates/envelope/fuzz/run.sh $(FUZZ_SECONDS)

## Decrypt throughput, securepipe vs OpenSSL, 1 MiB and 64 MiB, one core.
bench-envelope:
	tests/bench/envelope.sh

## 1,000 TrainingPartitions at once against the release operator: time to all Ready,
## AssumeRole calls, peak RSS (PARTITIONS=N for another count).
PARTITIONS ?= 1000
.PHONY: bench-partitions
bench-partitions: stack-up
	$(CARGO) build --release --locked -p securepipe-cli
	SECUREPIPE_BIN=target/release/securepipe tests/bench/partitions.sh $(PARTITIONS)

## Helm chart (charts/securepipe): `helm lint --strict` of every values variant, its RBAC ==
## config/rbac/, its crds/ == crds/, a hardened Deployment, and `kubectl apply --dry-run=server`
## of every rendered object on the local stack (tests/stack/chart.rs). helm v3.22.0 is built
## from the Go module proxy into the cache (tests/env/install-helm.sh: ~5 min cold, 0 s cached).
## `make test` runs this suite inside stack-test (its tests are #[ignore]d stack tests);
## chart-check runs only it, with the workspace's features so nothing is rebuilt.
.PHONY: helm chart-check e2e-kind e2e-kind-optional
test: e2e-kind-optional
stack-test: helm

helm:
	tests/env/install-helm.sh >/dev/null

chart-check: helm stack-up
	$(CARGO) build --locked -p securepipe-cli
	source $(ENV) && $(CARGO) test --workspace --locked --test chart -- --include-ignored

## The kind suite with real Pods (needs a Docker engine): image, kind cluster, LocalStack in
## it, the chart, a TrainingPartition and a RetentionPolicy (tests/e2e/kind.sh). Without a
## Docker engine it says "kind suite NOT RUN" and fails; `make test` runs it as optional.
e2e-kind:
	tests/e2e/kind.sh

e2e-kind-optional:
	SECUREPIPE_E2E_OPTIONAL=1 tests/e2e/kind.sh
