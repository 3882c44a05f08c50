#!/usr/bin/env bash
# The end-to-end suite with real Pods (`make e2e-kind`), for hosts with a Docker engine:
# builds the image (Dockerfile), creates a kind cluster, runs LocalStack inside it,
# loads the image and runs tests/e2e/scenarios.sh (shared with the local node's suite):
#   - charts/securepipe pointed at that LocalStack, in a namespace enforcing PodSecurity
#     "restricted": both replicas Ready, exactly one holds the Lease;
#   - a TrainingPartition gets Ready and its Secret appears;
#   - a Pod (amazon/aws-cli) that mounts the Secret as a volume runs
#     `aws sts get-caller-identity` through the Secret's `config` (credential_process)
#     and gets the partition's assumed-role session;
#   - a RetentionPolicy gets Ready and its lifecycle rule is on the bucket;
#   - deleting the leader's Pod hands the Lease to the other replica.
# The cluster is deleted on exit (SECUREPIPE_E2E_KEEP=1 keeps it for debugging).
#
# Without a Docker engine it prints "kind suite NOT RUN: ..." and exits 3, or 0 when
# SECUREPIPE_E2E_OPTIONAL=1 (what `make test` sets, so CI shows the line plainly).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=SCRIPTDIR/../env/lib.sh
. tests/env/lib.sh

# Pinned: kind, its node image (the default image of that kind release), the images
# the suite runs. Bump together.
KIND_VERSION="v0.33.0"
KIND_NODE_IMAGE="${SECUREPIPE_KIND_NODE_IMAGE:-kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5}"
LOCALSTACK_IMAGE="docker.io/localstack/localstack:4.4.0"
AWS_CLI_IMAGE="docker.io/amazon/aws-cli:2.27.0"

NOT_RUN_EXIT=3
if ! docker info >/dev/null 2>&1; then
    echo "kind suite NOT RUN: no Docker engine reachable (docker info failed)"
    if [ "${SECUREPIPE_E2E_OPTIONAL:-0}" = 1 ]; then
        exit 0
    fi
    exit "$NOT_RUN_EXIT"
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\nkind suite FAILED: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------
KIND_BIN="$SP_CACHE/kind-$KIND_VERSION/kind"
install_kind() {
    local out
    [ -x "$KIND_BIN" ] && [ "$("$KIND_BIN" version -q 2>/dev/null)" = "${KIND_VERSION#v}" ] && return 0
    command -v go >/dev/null || fail "go is required to build kind $KIND_VERSION"
    sp_log "building kind $KIND_VERSION into $(dirname "$KIND_BIN")"
    mkdir -p "$(dirname "$KIND_BIN")"
    out="$(mktemp -d "$SP_CACHE/kind-build.XXXXXX")"
    GOBIN="$out" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath \
        go install -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
    mv -f "$out/kind" "$KIND_BIN"
    rm -rf "$out"
}
step "Tools: kind $KIND_VERSION, helm, kubectl"
install_kind
HELM="$(tests/env/install-helm.sh)"
KUBECTL="$K8S_BIN_DIR/kubectl"
[ -x "$KUBECTL" ] || KUBECTL="$(command -v kubectl)" || fail "kubectl not found (tests/env/up.sh builds one)"

# --- cluster -----------------------------------------------------------------------
run_id="$(date +%s)-$$"
CLUSTER="securepipe-e2e-$$"
IMAGE="securepipe:e2e-$run_id"
WORK="$SP_ROOT/target/e2e/$run_id"
mkdir -p "$WORK"
export KUBECONFIG="$WORK/kubeconfig"
APP_NS=e2e
OP_NS=securepipe-system
LS_ENDPOINT="http://localstack.localstack.svc.cluster.local:4566"
BUCKET="securepipe-e2e-$$"

k() { "$KUBECTL" "$@"; }

diagnostics() {
    echo "--- diagnostics (work dir $WORK) ---" >&2
    k get pods,deploy,svc,lease -A -o wide >&2 || true
    k get tp,rp -n "$APP_NS" -o yaml >&2 || true
    k logs -n "$OP_NS" -l app.kubernetes.io/component=operator --all-containers --prefix --tail=200 >&2 || true
    k get events -A --sort-by=.metadata.creationTimestamp 2>&1 | tail -40 >&2 || true
}
cleanup() {
    local status=$?
    [ "$status" -eq 0 ] || diagnostics
    if [ "${SECUREPIPE_E2E_KEEP:-0}" = 1 ]; then
        echo "keeping kind cluster $CLUSTER (KUBECONFIG=$KUBECONFIG); delete with: $KIND_BIN delete cluster --name $CLUSTER"
    else
        "$KIND_BIN" delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
        docker image rm "$IMAGE" >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

step "Building the image $IMAGE (Dockerfile)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
DOCKER_BUILDKIT=1 docker build --build-arg "VERSION=$version" -t "$IMAGE" .

step "Creating kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
"$KIND_BIN" create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --kubeconfig "$KUBECONFIG" --wait 180s
"$KIND_BIN" load docker-image --name "$CLUSTER" "$IMAGE"

# --- LocalStack inside the cluster ------------------------------------------------
step "LocalStack $LOCALSTACK_IMAGE in namespace localstack"
k create namespace localstack
k apply -n localstack -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: localstack }
spec:
  replicas: 1
  selector: { matchLabels: { app: localstack } }
  template:
    metadata: { labels: { app: localstack } }
    spec:
      containers:
        - name: localstack
          image: $LOCALSTACK_IMAGE
          env:
            - { name: SERVICES, value: "s3,sts,kms,iam" }
            - { name: DISABLE_EVENTS, value: "1" }
          ports: [{ name: gateway, containerPort: 4566 }]
          readinessProbe:
            httpGet: { path: /_localstack/health, port: gateway }
            periodSeconds: 2
            failureThreshold: 90
---
apiVersion: v1
kind: Service
metadata: { name: localstack }
spec:
  selector: { app: localstack }
  ports: [{ name: gateway, port: 4566, targetPort: gateway }]
YAML
k rollout status -n localstack deployment/localstack --timeout=300s

# aws NAME ARGS...: runs the AWS CLI in a Pod with LocalStack's test credentials and
# prints its output.
aws_pod() {
    local name=$1
    shift
    k run "$name" -n localstack --image "$AWS_CLI_IMAGE" --restart=Never --quiet \
        --env AWS_ACCESS_KEY_ID=test --env AWS_SECRET_ACCESS_KEY=test \
        --env AWS_REGION=us-east-1 --env "AWS_ENDPOINT_URL=$LS_ENDPOINT" \
        --attach --rm --pod-running-timeout=5m -- "$@"
}

# --- the scenarios (tests/e2e/scenarios.sh, shared with the local node's suite) -------
aws_create_bucket() { aws_pod setup-bucket s3api create-bucket --bucket "$1"; }
aws_create_role() { aws_pod setup-role iam create-role --role-name "$1" --assume-role-policy-document "$2"; }
aws_bucket_lifecycle() { aws_pod read-lifecycle s3api get-bucket-lifecycle-configuration --bucket "$1" --output json; }
RELEASE=securepipe
IMAGE_REPOSITORY="${IMAGE%%:*}"
IMAGE_TAG="${IMAGE#*:}"
POD_AWS_ENDPOINT="$LS_ENDPOINT"
# Secret access in the scenarios' namespace only (the chart binds none by default).
EXTRA_VALUES="$WORK/kind-values.yaml"
printf 'rbac:\n  tenantNamespaces: [%s]\n' "$APP_NS" >"$EXTRA_VALUES"
WHOAMI_IMAGE="$AWS_CLI_IMAGE"
WHOAMI_PULL_POLICY=IfNotPresent
WHOAMI_ARGS="[sts, get-caller-identity, --output, json]"
ROLE_NAME=securepipe-e2e
# shellcheck source=scenarios.sh
. tests/e2e/scenarios.sh

echo
echo "kind suite PASSED (cluster $CLUSTER, image $IMAGE)"
