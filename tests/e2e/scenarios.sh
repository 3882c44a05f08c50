# The end-to-end scenarios with real Pods, shared by the kind suite (tests/e2e/kind.sh, on a
# Docker host) and the local node's suite (tests/e2e/node.sh, run by tests/stack/node.rs),
# so the two cannot drift. Sourced, never run. The caller defines:
#   k ARGS...              kubectl for the cluster
#   HELM                   helm binary
#   step MSG, fail MSG     progress line; print and exit 1
#   WORK                   a scratch folder
#   RELEASE OP_NS APP_NS   chart release (containing "securepipe"), its namespace, and the
#                          namespace of the TrainingPartition and RetentionPolicy
#   IMAGE_REPOSITORY IMAGE_TAG    the operator image, present on the nodes (never pulled)
#   POD_AWS_ENDPOINT       LocalStack's URL as Pods reach it
#   EXTRA_VALUES           a values file for this cluster (applied last), or empty
#   WHOAMI_IMAGE WHOAMI_PULL_POLICY WHOAMI_ARGS   a Pod image and its args (a YAML flow
#                          list) printing the caller identity through the standard chain
#   BUCKET ROLE_NAME       created here through the hooks below
#   aws_create_bucket BUCKET; aws_create_role NAME TRUST_JSON; aws_bucket_lifecycle BUCKET
#                          (prints the lifecycle configuration as JSON)
# Checks, in order: the chart installs into a namespace enforcing PodSecurity
# "restricted", both replicas Ready, exactly one holds the Lease; a TrainingPartition gets
# Ready and its Secret has every key; a Pod in a "restricted" namespace gets the
# partition's session through the mounted config (credential_process); a RetentionPolicy
# puts its rule on the bucket; deleting the leader's Pod hands the Lease over.
# shellcheck shell=bash

ROLE_ARN="arn:aws:iam::000000000000:role/$ROLE_NAME"
DEPLOYMENT="$RELEASE-operator"

restricted_namespace() {
    k create namespace "$1"
    k label namespace "$1" pod-security.kubernetes.io/enforce=restricted \
        pod-security.kubernetes.io/warn=restricted
}

step "AWS side: bucket $BUCKET and role $ROLE_ARN (as tests/demo.sh does)"
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}'
aws_create_bucket "$BUCKET"
aws_create_role "$ROLE_NAME" "$trust"

# --- the chart ---------------------------------------------------------------------
step "Installing charts/securepipe (release $RELEASE in $OP_NS, PodSecurity restricted)"
restricted_namespace "$OP_NS"
restricted_namespace "$APP_NS"
cat >"$WORK/values.yaml" <<YAML
image:
  repository: $IMAGE_REPOSITORY
  tag: $IMAGE_TAG
  pullPolicy: Never
aws:
  region: us-east-1
  endpointUrl: $POD_AWS_ENDPOINT
  s3ForcePathStyle: true
# LocalStack accepts any key; a real cluster gets the operator's identity from IRSA.
extraEnv:
  - { name: AWS_ACCESS_KEY_ID, value: test }
  - { name: AWS_SECRET_ACCESS_KEY, value: test }
logging:
  level: info,securepipe_operator=debug
YAML
values=(--values "$WORK/values.yaml")
[ -z "$EXTRA_VALUES" ] || values+=(--values "$EXTRA_VALUES")
"$HELM" install "$RELEASE" charts/securepipe --namespace "$OP_NS" "${values[@]}" \
    --wait --timeout 5m
k rollout status -n "$OP_NS" "deployment/$DEPLOYMENT" --timeout=120s

ready="$(k get deployment -n "$OP_NS" "$DEPLOYMENT" -o jsonpath='{.status.readyReplicas}')"
[ "$ready" = 2 ] || fail "operator: $ready of 2 replicas Ready"
leader_pod() { k get lease -n "$OP_NS" "$DEPLOYMENT" -o jsonpath='{.spec.holderIdentity}'; }
leader=""
for _ in $(seq 60); do
    leader="$(leader_pod 2>/dev/null || true)"
    [ -n "$leader" ] && break
    sleep 1
done
[ -n "$leader" ] || fail "no replica holds Lease $OP_NS/$DEPLOYMENT"
pods="$(k get pods -n "$OP_NS" -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')"
case " $pods " in *" $leader "*) ;; *) fail "Lease holder $leader is not one of the operator pods ($pods)" ;; esac
echo "operator: 2/2 Ready, leader $leader"

# --- TenantGrant: what the platform team lets $APP_NS use (securepipe denies the rest) -----
step "TenantGrant $APP_NS: role $ROLE_ARN, bucket $BUCKET, partition voice, retention on ingestion/raw/"
k apply -f - <<YAML
apiVersion: securepipe.io/v1alpha1
kind: TenantGrant
metadata: { name: $APP_NS }
spec:
  namespaces: [$APP_NS]
  roleArns: [$ROLE_ARN]
  buckets: [$BUCKET]
  partitions: [voice]
  maxAccess: ReadOnly
  maxDuration: 1h
  retention:
    - {bucket: $BUCKET, prefixes: [ingestion/raw/]}
YAML

# --- TrainingPartition -------------------------------------------------------------
step "TrainingPartition $APP_NS/voice: Ready, Secret, credentials usable from a Pod"
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
# credential_process cats the mounted JSON (README, "Pods consume the Secret"), and the
# securityContext PodSecurity "restricted" requires.
k apply -n "$APP_NS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata: { name: whoami }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: { type: RuntimeDefault }
  containers:
    - name: aws
      image: $WHOAMI_IMAGE
      imagePullPolicy: $WHOAMI_PULL_POLICY
      args: $WHOAMI_ARGS
      env:
        - { name: AWS_CONFIG_FILE, value: /var/run/securepipe/aws/config }
        - { name: AWS_SHARED_CREDENTIALS_FILE, value: /dev/null }
        - { name: AWS_SDK_LOAD_CONFIG, value: "1" }
        - { name: AWS_ENDPOINT_URL, value: "$POD_AWS_ENDPOINT" }
        - { name: HOME, value: /tmp }
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: { drop: [ALL] }
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
    *"assumed-role/$ROLE_NAME/$session"*) ;;
    *) fail "the caller identity is not the partition's session $session" ;;
esac

# --- RetentionPolicy ---------------------------------------------------------------
step "RetentionPolicy $APP_NS/retention: Ready, rule on bucket $BUCKET"
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
lifecycle="$(aws_bucket_lifecycle "$BUCKET")"
echo "$lifecycle"
case "$lifecycle" in
    *"\"securepipe/$APP_NS/retention/raw-expiry\""*) ;;
    *) fail "bucket $BUCKET has no rule securepipe/$APP_NS/retention/raw-expiry" ;;
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
k rollout status -n "$OP_NS" "deployment/$DEPLOYMENT" --timeout=120s
echo "scenarios PASSED"
