#!/usr/bin/env bash
# `make demo`: installs the CRDs on the local stack, applies the examples and shows them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
. target/env/env.sh

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "kube-apiserver $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1) and LocalStack at $AWS_ENDPOINT_URL"
step "Installing the CRDs (crds/)"
kubectl apply --server-side -f crds/
kubectl wait --for=condition=Established --timeout=60s crd/trainingpartitions.securepipe.io crd/retentionpolicies.securepipe.io

# --- RetentionPolicy: buckets (begin) ---------------------------------------------------
# The RetentionPolicy examples name buckets; create them in LocalStack so the operator can
# apply their rules. The aws CLI comes from the LocalStack virtualenv (tests/env).
aws_candidates=("${XDG_CACHE_HOME:-$HOME/.cache}"/securepipe/localstack-4.4.0-*/bin/aws)
AWS_CLI=${aws_candidates[0]}
[ -x "$AWS_CLI" ] || { echo "no aws CLI in the LocalStack virtualenv: run tests/env/up.sh" >&2; exit 1; }
step "Creating the RetentionPolicy example buckets in LocalStack"
grep -h -E '^  (bucket|region):' examples/rp-*.yaml | awk '{print $2}' | paste - - | sort -u |
  while read -r bucket region; do
    if "$AWS_CLI" s3api head-bucket --bucket "$bucket" 2>/dev/null; then
      echo "bucket $bucket exists"
    elif [ "$region" = us-east-1 ]; then
      "$AWS_CLI" s3api create-bucket --bucket "$bucket" --region "$region" >/dev/null && echo "bucket $bucket created"
    else
      "$AWS_CLI" s3api create-bucket --bucket "$bucket" --region "$region" \
        --create-bucket-configuration "LocationConstraint=$region" >/dev/null && echo "bucket $bucket created ($region)"
    fi
  done
# --- RetentionPolicy: buckets (end) -----------------------------------------------------

step "Applying the examples (examples/) into namespace securepipe-demo"
kubectl create namespace securepipe-demo --dry-run=client -o yaml | kubectl apply -f -
kubectl apply --server-side -n securepipe-demo -f examples/

step "kubectl get tp,rp"
kubectl get tp,rp -n securepipe-demo

step "An invalid resource is rejected at admission, naming the field"
kubectl apply --dry-run=server -n securepipe-demo -f tests/admission/invalid/duration-too-short.yaml || true

# --- RetentionPolicy: the biometric layout's lifecycle document (begin) -----------------
# rp/biometrics-prod (examples/rp-biometric-layout.yaml): raw samples under ingestion/raw/
# go to STANDARD_IA at 30 days and GLACIER at 60 and expire at 90; features under
# training/features/ expire at 730 days. rp/biometrics-prod-exports owns two more rules on
# the same bucket; each policy's rules carry an ID securepipe/<namespace>/<name>/<rule>.
step "RetentionPolicy biometrics-prod: waiting for Ready"
if ! kubectl wait -n securepipe-demo --for=condition=Ready --timeout=90s \
  retentionpolicy/biometrics-prod retentionpolicy/biometrics-prod-exports; then
  echo "not Ready yet (is the operator running?):" >&2
  kubectl get rp -n securepipe-demo -o wide >&2
fi
kubectl get rp -n securepipe-demo
step "The lifecycle configuration of bucket biometrics-prod (aws s3api get-bucket-lifecycle-configuration)"
"$AWS_CLI" s3api get-bucket-lifecycle-configuration --bucket biometrics-prod
# --- RetentionPolicy: the biometric layout's lifecycle document (end) -------------------
