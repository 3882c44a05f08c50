# securepipe — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := target/env/env.sh
CARGO ?= cargo
## The workspace's features in every debug build here (clippy, unit tests, the binary the
## stack suites and the demo run), the same everywhere so nothing compiles twice: the worker's
## crash points (FAILPOINTS=..., tests/stack/worker.rs). Release builds never enable them.
WORKSPACE_FEATURES := --features securepipe-cli/failpoints

.PHONY: test demo lint fmt-check clippy unit binary dsp-random-check stack-up stack-down \
	stack-test crds reference-venv

## Everything CI runs, in timed phases (tests/ci/test.sh): formatting, lints, unit tests,
## the DSP check against librosa, then the local stack, `make demo` on it, and every stack
## suite against a real kube-apiserver and LocalStack (left running for the next run).
test:
	tests/ci/test.sh

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked $(WORKSPACE_FEATURES) -- -D warnings

## Unit tests, including the replay of the committed fuzz corpus (crates/envelope/fuzz/corpus).
unit:
	$(CARGO) test --workspace --locked $(WORKSPACE_FEATURES)

## The debug `securepipe` the stack suites and the demo run. Built for the whole workspace, so
## every dependency has the same features as in `unit` and nothing is compiled twice.
binary:
	$(CARGO) build --workspace --locked $(WORKSPACE_FEATURES)

## 40 random WAVs (rates, lengths, formats, channels, options) through `securepipe features`,
## compared with librosa 0.11 at 1e-3. A fixed seed keeps CI deterministic; explore others with
## `make -C tests/golden/dsp random-check SEED=N`.
dsp-random-check: binary reference-venv
	$(MAKE) -C tests/golden/dsp random-check PROFILE=dev CASES=40 SEED=20261123 \
	    FEATURES="$(WORKSPACE_FEATURES)"

## The Python reference tools (librosa, the AWS Encryption SDK): one cached venv, ~2 min cold.
reference-venv:
	tests/reference/install.sh >/dev/null

stack-up:
	tests/env/up.sh

stack-down:
	tests/env/down.sh

## Every test marked `#[ignore = "needs the local stack ..."]`, in one cargo invocation (the
## same features as `unit`, so nothing is recompiled); each suite's time is recorded as a
## phase (tests/ci/suite-phases.sh). The operator suites run the real `securepipe` binary, so
## it is built first. One suite: `source target/env/env.sh && cargo test --workspace --test
## retention -- --ignored`.
stack-test: binary reference-venv helm stack-up
	source $(ENV) && $(CARGO) test --workspace --locked --no-fail-fast $(WORKSPACE_FEATURES) -- --ignored 2>&1 | \
	    tests/ci/suite-phases.sh

## The Argo CD health checks (charts/securepipe/argocd/resource_customizations) run in
## gopher-lua as Argo CD runs them, and kstatus (Flux) on the same objects, over the cases the
## stack suites recorded; every condition reason needs a case (tests/gitops, Go modules from
## the module proxy into Go's default caches).
.PHONY: gitops-test health-cases
GITOPS_GO := cd tests/gitops && export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" &&
gitops-test:
	$(GITOPS_GO) go vet ./... && go test -count=1 ./...

## Re-records those cases: the suites that write them run with SECUREPIPE_HEALTH_CASES set
## (tests/src/gitops.rs), then tests/gitops/cmd/gather writes testdata/ and health_test.yaml.
HEALTH_SUITES := --test training_partition --test tenancy --test retention --test extraction
health-cases: binary stack-up
	rm -rf target/health-cases charts/securepipe/argocd/resource_customizations/securepipe.io/*/testdata \
	    charts/securepipe/argocd/resource_customizations/securepipe.io/*/health_test.yaml
	source $(ENV) && SECUREPIPE_HEALTH_CASES=$(CURDIR)/target/health-cases $(CARGO) test --workspace \
	    --locked $(WORKSPACE_FEATURES) $(HEALTH_SUITES) -- --ignored
	$(GITOPS_GO) go run ./cmd/gather $(CURDIR)/target/health-cases
	$(MAKE) --no-print-directory gitops-test

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet --locked -p securepipe-cli -- crdgen --output-dir crds

## Runs the operator on the local stack with the example resources and shows what it did.
demo: stack-up binary node-images
	tests/demo.sh

## A coverage-guided fuzz run of the envelope message parser (nightly + cargo-fuzz, installed
## into the cache on first use); `make test` replays the committed corpus instead.
## `make fuzz-envelope FUZZ_SECONDS=3600` for a long one.
FUZZ_SECONDS ?= 60
.PHONY: fuzz-envelope bench-envelope
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
## `make test` runs this suite with the other stack suites; chart-check runs only it.
.PHONY: helm chart-check e2e-kind e2e-kind-optional
helm:
	tests/env/install-helm.sh >/dev/null

chart-check: helm stack-up binary
	source $(ENV) && $(CARGO) test --workspace --locked $(WORKSPACE_FEATURES) --test chart -- --include-ignored

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
## the tests crate: `make unit` built it already, with the same features).
stack-test: node-images
node-images: binary
	$(CARGO) test --workspace --locked $(WORKSPACE_FEATURES) --no-run
	tests/env/image.sh securepipe target/debug/securepipe
	tests/env/image.sh probe target/debug/examples/aws_probe
