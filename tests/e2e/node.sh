#!/usr/bin/env bash
# The kind suite's scenarios (tests/e2e/scenarios.sh) on the local stack's node: the image
# assembled by tests/env/image.sh (`make node-images`), LocalStack and the apiserver
# reached from Pods through the relay on the bridge address, the chart watching only
# this run's namespace. Needs the stack with its node (tests/env/up.sh) and env.sh
# sourced; tests/stack/node.rs runs it. Removes what it created on exit
# (SECUREPIPE_E2E_KEEP=1 keeps it for debugging).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=SCRIPTDIR/../env/lib.sh
. tests/env/lib.sh
[ -n "${SECUREPIPE_NODE_ADDRESS:-}" ] ||
    sp_die "no local node: run tests/env/up.sh (without SECUREPIPE_NODE=0) and source target/env/env.sh"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nnode scenarios FAILED: %s\n' "$*" >&2; exit 1; }
k() { "$K8S_BIN_DIR/kubectl" "$@"; }
HELM="$(tests/env/install-helm.sh)"

run_id="$(date +%s)-$$"
WORK="$SP_ROOT/target/e2e/node-$run_id"
mkdir -p "$WORK"
RELEASE="securepipe-e2e-$$"
OP_NS="securepipe-e2e-$$"
APP_NS="e2e-app-$$"
BUCKET="securepipe-e2e-$$"
ROLE_NAME="securepipe-e2e-$$"
IMAGE_REPOSITORY=docker.io/library/securepipe
IMAGE_TAG=local
POD_AWS_ENDPOINT="$SECUREPIPE_POD_AWS_ENDPOINT_URL"
WHOAMI_IMAGE=docker.io/library/securepipe-probe:local
WHOAMI_PULL_POLICY=Never
WHOAMI_ARGS="[identity]"

# The local node: no kube-proxy, so the operator reaches the apiserver through the relay
# on the bridge address (the serving certificate names it); only this run's namespace
# is watched (other suites leave resources behind in theirs).
EXTRA_VALUES="$WORK/node-values.yaml"
cat >"$EXTRA_VALUES" <<YAML
watchNamespace: $APP_NS
extraEnv:
  - { name: AWS_ACCESS_KEY_ID, value: test }
  - { name: AWS_SECRET_ACCESS_KEY, value: test }
  - { name: KUBERNETES_SERVICE_HOST, value: "$SECUREPIPE_POD_APISERVER_HOST" }
  - { name: KUBERNETES_SERVICE_PORT, value: "$SECUREPIPE_POD_APISERVER_PORT" }
YAML

aws_py() { "$(sp_localstack_venv)/bin/python" -c "import boto3, json, sys; $1" "${@:2}"; }
aws_create_bucket() { aws_py 'boto3.client("s3").create_bucket(Bucket=sys.argv[1])' "$1"; }
aws_create_role() {
    aws_py 'boto3.client("iam").create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument=sys.argv[2])' "$1" "$2"
}
aws_bucket_lifecycle() {
    aws_py 'print(json.dumps(boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=sys.argv[1])["Rules"]))' "$1"
}

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        echo "--- diagnostics (work dir $WORK) ---" >&2
        k get pods -A -o wide >&2 || true
        k get tp,rp -n "$APP_NS" -o yaml >&2 || true
        k logs -n "$OP_NS" -l app.kubernetes.io/component=operator --all-containers --prefix --tail=100 >&2 || true
        k get events -n "$OP_NS" --sort-by=.metadata.creationTimestamp 2>&1 | tail -20 >&2 || true
    fi
    if [ "${SECUREPIPE_E2E_KEEP:-0}" != 1 ]; then
        # First the resources, while the operator runs and may still remove their
        # finalizers: deleting the namespace would also delete the RoleBinding that lets
        # it (watchNamespace binds the operator's ClusterRole there).
        k delete trainingpartitions,retentionpolicies --all -n "$APP_NS" --timeout=60s >/dev/null 2>&1 || true
        k delete tenantgrant "$APP_NS" --ignore-not-found >/dev/null 2>&1 || true
        k delete namespace "$APP_NS" --wait=false >/dev/null 2>&1 || true
        "$HELM" uninstall "$RELEASE" --namespace "$OP_NS" --wait --timeout 60s >/dev/null 2>&1 || true
        k delete namespace "$OP_NS" --wait=false >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

# shellcheck source=scenarios.sh
. tests/e2e/scenarios.sh
