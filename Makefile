# securepipe — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := target/env/env.sh
CARGO ?= cargo

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
	$(CARGO) build --locked -p securepipe-cli
	source $(ENV) && $(CARGO) test --workspace --locked -- --ignored

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet --locked -p securepipe-cli -- crdgen --output-dir crds

## Runs the operator on the local stack with the example resources and shows what it did.
demo: stack-up node-images
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

## The image the Dockerfile describes, without a Docker engine: an OCI archive
## (target/image/securepipe.oci.tar) of the release binary, its shared libraries, passwd
## and CA files, imported into the local node when it runs (tests/env/image.sh). The
## Dockerfile stays the way to build it on a Docker host; tests/stack/node.rs checks that
## both describe the same entrypoint, user and labels.
.PHONY: image node-images
image:
	$(CARGO) build --release --locked -p securepipe-cli
	tests/env/image.sh securepipe target/release/securepipe

## What `make test` runs on the node: the same image from the debug binary it builds anyway
## (a release build takes far longer on 2 cores), and the suites' AWS probe (an example of
## the tests crate, built as `cargo test --workspace` builds it, so nothing is built twice).
stack-test: node-images
node-images:
	$(CARGO) build --locked -p securepipe-cli
	$(CARGO) test --workspace --locked --no-run
	tests/env/image.sh securepipe target/debug/securepipe
	tests/env/image.sh probe target/debug/examples/aws_probe
