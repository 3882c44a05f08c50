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

step "Applying the examples (examples/) into namespace securepipe-demo"
kubectl create namespace securepipe-demo --dry-run=client -o yaml | kubectl apply -f -
kubectl apply --server-side -n securepipe-demo -f examples/

step "kubectl get tp,rp"
kubectl get tp,rp -n securepipe-demo

step "An invalid resource is rejected at admission, naming the field"
kubectl apply --dry-run=server -n securepipe-demo -f tests/admission/invalid/duration-too-short.yaml || true
