#!/usr/bin/env bash
# The end-to-end suite with real Pods (`make e2e-kind`), for hosts with a Docker engine:
# builds the image (Dockerfile), creates a kind cluster, runs LocalStack inside it,
# loads the image, installs charts/securepipe pointed at that LocalStack, and checks:
#   - the operator Deployment: both replicas Ready, exactly one holds the Lease;
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
ROLE_ARN="arn:aws:iam::000000000000:role/securepipe-e2e"
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

step "AWS side: bucket $BUCKET and role $ROLE_ARN (as tests/demo.sh does)"
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}'
aws_pod setup-bucket s3api create-bucket --bucket "$BUCKET"
aws_pod setup-role iam create-role --role-name securepipe-e2e --assume-role-policy-document "$trust"

# --- the chart ---------------------------------------------------------------------
step "Installing charts/securepipe (release securepipe in $OP_NS)"
cat >"$WORK/values.yaml" <<YAML
image:
  repository: ${IMAGE%%:*}
  tag: ${IMAGE#*:}
  pullPolicy: Never
aws:
  region: us-east-1
  endpointUrl: $LS_ENDPOINT
  s3ForcePathStyle: true
# LocalStack accepts any key; a real cluster gets the operator's identity from IRSA.
extraEnv:
  - { name: AWS_ACCESS_KEY_ID, value: test }
  - { name: AWS_SECRET_ACCESS_KEY, value: test }
logging:
  level: info,securepipe_operator=debug
YAML
"$HELM" install securepipe charts/securepipe --namespace "$OP_NS" --create-namespace \
    --values "$WORK/values.yaml" --wait --timeout 5m
k rollout status -n "$OP_NS" deployment/securepipe-operator --timeout=120s

ready="$(k get deployment -n "$OP_NS" securepipe-operator -o jsonpath='{.status.readyReplicas}')"
[ "$ready" = 2 ] || fail "operator: $ready of 2 replicas Ready"
leader_pod() { k get lease -n "$OP_NS" securepipe-operator -o jsonpath='{.spec.holderIdentity}'; }
for _ in $(seq 60); do
    leader="$(leader_pod 2>/dev/null || true)"
    [ -n "$leader" ] && break
    sleep 1
done
[ -n "$leader" ] || fail "no replica holds Lease $OP_NS/securepipe-operator"
pods="$(k get pods -n "$OP_NS" -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')"
case " $pods " in *" $leader "*) ;; *) fail "Lease holder $leader is not one of the operator pods ($pods)" ;; esac
echo "operator: 2/2 Ready, leader $leader"

# --- TrainingPartition -------------------------------------------------------------
step "TrainingPartition e2e/voice: Ready, Secret, credentials usable from a Pod"
k create namespace "$APP_NS"
k apply -n "$APP_NS" -f - <<YAML
apiVersion: securepipe.io/v1alpha1
kind: TrainingPartition
metadata: { name: voice }
spec:
  bucket: $BUCKET
  region: us-east-1
  roleArn: $ROLE_ARN
YAML
k wait -n "$APP_NS" --for=condition=Ready --timeout=120s trainingpartition/voice
secret="$(k get tp -n "$APP_NS" voice -o jsonpath='{.status.credentials.secretName}')"
[ -n "$secret" ] || fail "TrainingPartition voice reports no Secret"
# shellcheck disable=SC2016 # a go-template, not a shell expansion
keys="$(k get secret -n "$APP_NS" "$secret" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')"
for key in config credential-process.json AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN; do
    case " $keys " in *" $key "*) ;; *) fail "Secret $secret lacks key $key (has: $keys)" ;; esac
done
echo "Secret $APP_NS/$secret: $keys"

# The Pod has no credentials of its own: only the mounted config, whose
# credential_process cats the mounted JSON (README, "Pods consume the Secret").
k apply -n "$APP_NS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata: { name: whoami }
spec:
  restartPolicy: Never
  containers:
    - name: aws
      image: $AWS_CLI_IMAGE
      args: [sts, get-caller-identity, --output, json]
      env:
        - { name: AWS_CONFIG_FILE, value: /var/run/securepipe/aws/config }
        - { name: AWS_SHARED_CREDENTIALS_FILE, value: /dev/null }
        - { name: AWS_SDK_LOAD_CONFIG, value: "1" }
        - { name: AWS_ENDPOINT_URL, value: "$LS_ENDPOINT" }
      volumeMounts:
        - { name: aws, mountPath: /var/run/securepipe/aws, readOnly: true }
  volumes:
    - name: aws
      secret: { secretName: $secret }
YAML
k wait -n "$APP_NS" --for=jsonpath='{.status.phase}'=Succeeded --timeout=300s pod/whoami ||
    { k logs -n "$APP_NS" whoami >&2 || true; fail "pod whoami did not succeed"; }
identity="$(k logs -n "$APP_NS" whoami)"
echo "$identity"
session="$(k get tp -n "$APP_NS" voice -o jsonpath='{.status.credentials.sessionName}')"
case "$identity" in
    *"assumed-role/securepipe-e2e/$session"*) ;;
    *) fail "get-caller-identity did not return the partition's session $session" ;;
esac

# --- RetentionPolicy ---------------------------------------------------------------
step "RetentionPolicy e2e/retention: Ready, rule on bucket $BUCKET"
k apply -n "$APP_NS" -f - <<YAML
apiVersion: securepipe.io/v1alpha1
kind: RetentionPolicy
metadata: { name: retention }
spec:
  bucket: $BUCKET
  region: us-east-1
  rules:
    - id: raw-expiry
      prefix: ingestion/raw/
      expirationDays: 90
      noncurrentVersionExpirationDays: 7
YAML
k wait -n "$APP_NS" --for=condition=Ready --timeout=120s retentionpolicy/retention
lifecycle="$(aws_pod read-lifecycle s3api get-bucket-lifecycle-configuration --bucket "$BUCKET" --output json)"
echo "$lifecycle"
case "$lifecycle" in
    *'"securepipe/e2e/retention/raw-expiry"'*) ;;
    *) fail "bucket $BUCKET has no rule securepipe/e2e/retention/raw-expiry" ;;
esac

# --- failover ----------------------------------------------------------------------
step "Deleting the leader's Pod $leader: the other replica takes the Lease"
k delete pod -n "$OP_NS" "$leader" --wait=false
new_leader=""
for _ in $(seq 90); do
    new_leader="$(leader_pod 2>/dev/null || true)"
    [ -n "$new_leader" ] && [ "$new_leader" != "$leader" ] && break
    sleep 1
done
if [ -z "$new_leader" ] || [ "$new_leader" = "$leader" ]; then
    fail "the Lease stayed with $leader"
fi
echo "new leader: $new_leader"
k rollout status -n "$OP_NS" deployment/securepipe-operator --timeout=120s

echo
echo "kind suite PASSED (cluster $CLUSTER, image $IMAGE)"
