#!/usr/bin/env bash
# `make demo`: installs the CRDs on the local stack, runs the operator (as its
# ServiceAccount, RBAC from config/rbac/), applies the examples and shows what it did.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
. target/env/env.sh

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "kube-apiserver $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1) and LocalStack at $AWS_ENDPOINT_URL"
step "Installing the CRDs (crds/)"
kubectl apply --server-side --force-conflicts -f crds/ # the stack suites apply them too
kubectl wait --for=condition=Established --timeout=60s crd/trainingpartitions.securepipe.io crd/retentionpolicies.securepipe.io crd/tenantgrants.securepipe.io

# --- Operator (begin) ---------------------------------------------------------------------
step "Starting the operator as system:serviceaccount:securepipe-system:securepipe-operator"
kubectl apply --server-side -f config/rbac/ >/dev/null
# Secret access in the demo's namespace only: the tenant role bound there (config/rbac/tenant-role.yaml).
kubectl create namespace securepipe-demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create rolebinding securepipe-operator-tenant -n securepipe-demo --clusterrole=securepipe-operator-tenant \
  --serviceaccount=securepipe-system:securepipe-operator --dry-run=client -o yaml | kubectl apply -f - >/dev/null
operator_kubeconfig=target/env/demo-operator.kubeconfig
demo_port=${SECUREPIPE_DEMO_PORT:-18080} # the demo operator's health and metrics, on loopback
tests/env/operator-kubeconfig.sh "$KUBECONFIG" "$operator_kubeconfig"
operator_log=target/env/logs/demo-operator.log
# Worker Jobs run the image `make node-images` imported into the node, and reach LocalStack
# through the relay on the node's bridge address.
worker_args=()
if [ -n "${SECUREPIPE_POD_AWS_ENDPOINT_URL:-}" ]; then
  worker_args=(--worker-image docker.io/library/securepipe:local --worker-image-pull-policy Never
    --worker-aws-endpoint-url "$SECUREPIPE_POD_AWS_ENDPOINT_URL"
    --worker-cpu-request 50m --worker-memory-request 64Mi --worker-memory-limit 512Mi)
fi
KUBECONFIG=$operator_kubeconfig RUST_LOG=info target/debug/securepipe operator \
  --namespace securepipe-demo --lease-namespace securepipe-system --listen 127.0.0.1:$demo_port \
  --s3-force-path-style "${worker_args[@]}" \
  >"$operator_log" 2>&1 &
operator_pid=$!
trap 'kill -TERM "$operator_pid" 2>/dev/null || true; wait "$operator_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:$demo_port/readyz >/dev/null 2>&1 && break
  kill -0 "$operator_pid" 2>/dev/null || { cat "$operator_log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS http://127.0.0.1:$demo_port/readyz && echo " (pid $operator_pid, log $operator_log)"
# --- Operator (end) -----------------------------------------------------------------------

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

# --- TrainingPartition: roles (begin) ---------------------------------------------------
step "Creating the TrainingPartition example roles in LocalStack IAM"
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}'
grep -h -E '^  roleArn:' examples/tp-*.yaml | awk '{print $2}' | sort -u | while read -r arn; do
  role_path=${arn#*:role}; name=${role_path##*/}; path=${role_path%"$name"}
  if "$AWS_CLI" iam get-role --role-name "$name" >/dev/null 2>&1; then
    echo "role $name exists"
  else
    "$AWS_CLI" iam create-role --role-name "$name" --path "$path" \
      --assume-role-policy-document "$trust" >/dev/null && echo "role $arn created"
  fi
done
# --- TrainingPartition: roles (end) -----------------------------------------------------

# --- Extraction: a raw sample (begin) ----------------------------------------------------
# TrainingPartition speaker-id (examples/tp-speaker-id-logmel.yaml) extracts from
# s3://biometrics-prod/ingestion/raw/speaker-id/ with its KMS key. LocalStack gets that key
# (its fixed id), and one WAV encrypted for the partition lands under the raw prefix
# before the examples are applied, so the first scan finds it.
extraction_demo=false
if [ -n "${SECUREPIPE_NODE_NAME:-}" ]; then
  extraction_demo=true
  step "Extraction: one encrypted raw sample for TrainingPartition speaker-id"
  key_arn=$(awk '/kmsKeyArn:/ {print $2}' examples/tp-speaker-id-logmel.yaml)
  if ! "$AWS_CLI" kms describe-key --key-id "$key_arn" >/dev/null 2>&1; then
    "$AWS_CLI" kms create-key --tags "TagKey=_custom_id_,TagValue=${key_arn##*/}" \
      --description "securepipe demo: speaker-id raw samples" >/dev/null && echo "KMS key $key_arn created"
  fi
  sample_dir=target/env/demo-sample
  mkdir -p "$sample_dir"
  python3 - "$sample_dir/demo-0001.wav" <<'PY'
import math, struct, sys, wave
rate = 16000
with wave.open(sys.argv[1], "wb") as out:  # one second of a voiced 140 Hz tone
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(rate)
    out.writeframes(b"".join(struct.pack("<h", int(6000 * sum(math.sin(2 * math.pi * 140 * h * i / rate) / h for h in range(1, 5)))) for i in range(rate)))
PY
  target/debug/securepipe encrypt --key-id "$key_arn" --context securepipe:partition=speaker-id \
    --input "$sample_dir/demo-0001.wav" --output "$sample_dir/demo-0001.wav.enc"
  shredded_before=$(kubectl get tp speaker-id -n securepipe-demo -o jsonpath='{.status.extraction.shredded}' 2>/dev/null || true)
  "$AWS_CLI" s3 cp --quiet "$sample_dir/demo-0001.wav.enc" s3://biometrics-prod/ingestion/raw/speaker-id/demo-0001.wav
  echo "uploaded s3://biometrics-prod/ingestion/raw/speaker-id/demo-0001.wav (ESDK message, context securepipe:partition=speaker-id)"
fi
# --- Extraction: a raw sample (end) ------------------------------------------------------

step "Applying the examples (examples/, with the TenantGrants that cover them) into namespace securepipe-demo"
kubectl create namespace securepipe-demo --dry-run=client -o yaml | kubectl apply -f -
kubectl apply --server-side -n securepipe-demo -f examples/

step "kubectl get tp,rp"
kubectl get tp,rp -n securepipe-demo

# --- TrainingPartition: credentials (begin) ---------------------------------------------
step "TrainingPartition voice-prod: waiting for Ready, then its Secret"
kubectl wait -n securepipe-demo --for=condition=Ready --timeout=60s trainingpartition --all
kubectl get tp -n securepipe-demo
secret=$(kubectl get tp voice-prod -n securepipe-demo -o jsonpath='{.status.credentials.secretName}')
kubectl describe secret "$secret" -n securepipe-demo   # sizes only, never values
step "The credentials work: sts get-caller-identity with the Secret's keys"
field() { kubectl get secret "$secret" -n securepipe-demo -o "jsonpath={.data.$1}" | base64 -d; }
AWS_ACCESS_KEY_ID=$(field AWS_ACCESS_KEY_ID) AWS_SECRET_ACCESS_KEY=$(field AWS_SECRET_ACCESS_KEY) \
  AWS_SESSION_TOKEN=$(field AWS_SESSION_TOKEN) "$AWS_CLI" sts get-caller-identity
step "Events"
kubectl get events -n securepipe-demo --sort-by=.metadata.creationTimestamp | tail -15
step "Operator metrics (excerpt)"
curl -fsS http://127.0.0.1:$demo_port/metrics | grep -E '^securepipe_(reconciles|credentials_minted|assume_role_seconds_count)'
# --- TrainingPartition: credentials (end) -----------------------------------------------

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

# --- The node: a Pod uses the TrainingPartition's credentials (begin) --------------------
# A real Pod on the local stack's node (tests/env/node.sh) mounts voice-prod's Secret and
# runs the AWS probe (image securepipe-probe:local, `make node-images`); the SDK's standard
# chain reads the mounted config, whose credential_process cats the mounted JSON.
if [ -n "${SECUREPIPE_NODE_NAME:-}" ]; then
  step "A Pod on node $SECUREPIPE_NODE_NAME uses $secret through credential_process"
  kubectl delete pod whoami -n securepipe-demo --ignore-not-found --wait=true >/dev/null
  kubectl apply -n securepipe-demo -f - <<YAML
apiVersion: v1
kind: Pod
metadata: { name: whoami }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: probe
      image: docker.io/library/securepipe-probe:local
      imagePullPolicy: Never
      args: [identity]
      env:
        - { name: AWS_CONFIG_FILE, value: /var/run/securepipe/aws/config }
        - { name: AWS_ENDPOINT_URL, value: "$SECUREPIPE_POD_AWS_ENDPOINT_URL" }
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
      volumeMounts:
        - { name: aws, mountPath: /var/run/securepipe/aws, readOnly: true }
  volumes:
    - name: aws
      secret: { secretName: $secret }
YAML
  kubectl wait -n securepipe-demo --for=jsonpath='{.status.phase}'=Succeeded --timeout=60s pod/whoami
  kubectl get pod whoami -n securepipe-demo -o wide
  echo "its output (the access key id and the partition's assumed-role session):"
  kubectl logs whoami -n securepipe-demo
else
  step "No node in this stack (SECUREPIPE_NODE=0): the Pod part is skipped"
fi
# --- The node: a Pod uses the TrainingPartition's credentials (end) ----------------------

# --- Extraction: raw sample -> Job -> feature (begin) ------------------------------------
# The operator scanned speaker-id's raw prefix with the worker's own session, started a Job
# on the node, and reads its result back into status, Events and metrics.
if [ "$extraction_demo" = true ]; then
  step "Extraction: waiting for speaker-id's worker Job to shred the sample (interval 30s)"
  for _ in $(seq 240); do
    now=$(kubectl get tp speaker-id -n securepipe-demo -o jsonpath='{.status.extraction.shredded}')
    [ "${now:-0}" -gt "${shredded_before:-0}" ] && break
    sleep 0.5
  done
  [ "${now:-0}" -gt "${shredded_before:-0}" ] || {
    echo "no sample shredded within 120 s:" >&2
    kubectl get tp speaker-id -n securepipe-demo -o jsonpath='{.status}' >&2; echo >&2
    kubectl get jobs,pods -n securepipe-demo -l app.kubernetes.io/component=extraction-worker >&2
    exit 1
  }
  kubectl get jobs,pods -n securepipe-demo -l securepipe.io/training-partition=speaker-id
  kubectl get tp speaker-id -n securepipe-demo -o wide
  echo "status.extraction: $(kubectl get tp speaker-id -n securepipe-demo -o jsonpath='{.status.extraction}')"
  echo "Extracting: $(kubectl get tp speaker-id -n securepipe-demo -o jsonpath='{.status.conditions[?(@.type=="Extracting")].message}')"
  step "The raw prefix is empty; the feature file and the attestation are there"
  echo "s3://biometrics-prod/ingestion/raw/speaker-id/:"
  "$AWS_CLI" s3 ls --recursive s3://biometrics-prod/ingestion/raw/speaker-id/ || true
  echo "s3://biometrics-prod/training/features/speaker-id/:"
  "$AWS_CLI" s3 ls --recursive s3://biometrics-prod/training/features/speaker-id/
  echo "s3://biometrics-prod/audit/speaker-id/ (attestations):"
  "$AWS_CLI" s3 ls --recursive s3://biometrics-prod/audit/speaker-id/ | tail -3
  kubectl get events -n securepipe-demo --field-selector involvedObject.name=speaker-id \
    --sort-by=.metadata.creationTimestamp | grep -E 'Extraction|Samples|Worker' | tail -5
  curl -fsS http://127.0.0.1:$demo_port/metrics | grep -E '^securepipe_(samples_shredded|extraction_job_seconds_count)'
fi
# --- Extraction: raw sample -> Job -> feature (end) --------------------------------------
