#!/usr/bin/env bash
# Scale benchmark (on demand, not part of make test): N TrainingPartitions (default 1,000)
# applied at once to the local stack, one operator process (the debug build unless
# SECUREPIPE_BIN names another) running as its ServiceAccount. Prints the time until all
# are Ready, the AssumeRole calls made, and the operator's peak RSS, against the targets
# (all Ready <= 30 s, peak RSS <= 64 MiB, exactly N AssumeRole calls).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
count=${1:-1000}
tests/env/up.sh >/dev/null
# shellcheck source=/dev/null
. target/env/env.sh
bin=${SECUREPIPE_BIN:-target/debug/securepipe}
[ -n "${SECUREPIPE_BIN:-}" ] || cargo build --locked --quiet -p securepipe-cli

ns=bench-$(date +%s)
work=target/bench/$ns
mkdir -p "$work"
kubectl apply --server-side -f crds/ >/dev/null
kubectl apply --server-side -f config/rbac/ >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl create rolebinding securepipe-leader-election -n "$ns" \
  --clusterrole=securepipe-leader-election \
  --serviceaccount=securepipe-system:securepipe-operator >/dev/null
aws_cli=("${XDG_CACHE_HOME:-$HOME/.cache}"/securepipe/localstack-4.4.0-*/bin/aws)
role_arn=$("${aws_cli[0]}" iam create-role --role-name "trainer-$ns" --query Role.Arn --output text \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}')

tests/env/operator-kubeconfig.sh "$KUBECONFIG" "$work/kubeconfig"
KUBECONFIG=$work/kubeconfig RUST_LOG=warn "$bin" operator --namespace "$ns" --lease-namespace "$ns" \
  --listen 127.0.0.1:18090 >"$work/operator.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
until curl -fsS http://127.0.0.1:18090/readyz >/dev/null 2>&1; do sleep 0.2; done

# One kubectl sends its objects one after another; APPLY_CLIENTS of them in parallel make
# "applied at once" (APPLY_CLIENTS=1 measures a single sequential apply).
clients=${APPLY_CLIENTS:-8}
for i in $(seq 1 "$count"); do
  printf -- '---\napiVersion: securepipe.io/v1alpha1\nkind: TrainingPartition\nmetadata: {name: p%04d}\nspec: {bucket: bench-bucket, region: us-east-1, roleArn: "%s"}\n' "$i" "$role_arn" \
    >>"$work/partitions-$((i % clients)).yaml"
done

start=$(date +%s.%N)
appliers=()
for file in "$work"/partitions-*.yaml; do
  kubectl apply --server-side -n "$ns" -f "$file" >/dev/null &
  appliers+=($!)
done
for applier in "${appliers[@]}"; do wait "$applier"; done # not the operator's pid
applied=$(date +%s.%N)
while :; do
  ready=$(kubectl get tp -n "$ns" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
  [ "$ready" -ge "$count" ] && break
  sleep 0.5
done
done_at=$(date +%s.%N)
sleep 2 # let in-flight reconciles settle before reading the counters
metrics=$(curl -fsS http://127.0.0.1:18090/metrics)
calls=$(awk '/^securepipe_assume_role_seconds_count/ {print $2}' <<<"$metrics")
minted=$(awk '/^securepipe_credentials_minted_total/ {print $2}' <<<"$metrics")
peak_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
secrets=$(kubectl get secrets -n "$ns" -l app.kubernetes.io/managed-by=securepipe -o name | wc -l)

awk -v n="$count" -v k="$clients" -v s="$start" -v a="$applied" -v d="$done_at" -v c="$calls" -v m="$minted" \
  -v rss="$peak_kib" -v sec="$secrets" 'BEGIN {
  all = d - s; mib = rss / 1024
  printf "%-34s %12s %10s %s\n", "measure", "value", "target", "verdict"
  printf "%-34s %11.1fs %10s %s\n", "kubectl apply (" k " clients)", a - s, "-", ""
  printf "%-34s %11.1fs %10s %s\n", "apply start -> all Ready", all, "<= 30s", (all <= 30 ? "ok" : "MISSED")
  printf "%-34s %12d %10d %s\n", "AssumeRole calls", c, n, (c == n ? "ok" : "MISSED")
  printf "%-34s %12d %10d %s\n", "credentials minted", m, n, (m == n ? "ok" : "MISSED")
  printf "%-34s %12d %10d %s\n", "credentials Secrets", sec, n, (sec == n ? "ok" : "MISSED")
  printf "%-34s %10.1fMiB %10s %s\n", "operator peak RSS (VmHWM)", mib, "<= 64MiB", (mib <= 64 ? "ok" : "MISSED")
}'
