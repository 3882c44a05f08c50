#!/usr/bin/env bash
# Quick smoke test of a running stack (tests/env/up.sh first): server
# version, a namespace gets its default ServiceAccount, the Job and garbage
# collection controllers run, and LocalStack serves S3, STS, KMS and IAM.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck disable=SC1091
. "$SP_ENV_DIR/env.sh"

fail() { sp_die "selfcheck: $*"; }

server="$(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
[ "$server" = "$K8S_VERSION" ] || fail "server version $server, want $K8S_VERSION"

ns="selfcheck-$$"
kubectl create namespace "$ns" >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do
    kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.2
done
kubectl -n "$ns" get serviceaccount default >/dev/null || fail "no default ServiceAccount in $ns"

# The Job controller creates a Pod (it never runs: there is no kubelet);
# deleting the Job lets the garbage collector remove that Pod.
kubectl -n "$ns" create job probe --image=busybox -- true >/dev/null
for _ in $(seq 50); do
    [ -n "$(kubectl -n "$ns" get pods -l job-name=probe -o name)" ] && break
    sleep 0.2
done
[ -n "$(kubectl -n "$ns" get pods -l job-name=probe -o name)" ] || fail "Job controller created no Pod"
kubectl -n "$ns" delete job probe --cascade=background >/dev/null
for _ in $(seq 100); do
    [ -z "$(kubectl -n "$ns" get pods -l job-name=probe -o name)" ] && break
    sleep 0.2
done
[ -z "$(kubectl -n "$ns" get pods -l job-name=probe -o name)" ] || fail "garbage collector left the Job's Pod"

AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$(sp_localstack_venv)/bin/python" - <<'PY' || fail "LocalStack calls failed"
import json, boto3
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
iam, sts, s3, kms = (boto3.client(s) for s in ("iam", "sts", "s3", "kms"))
name = "selfcheck"
try:
    arn = iam.get_role(RoleName=name)["Role"]["Arn"]
except iam.exceptions.NoSuchEntityException:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
creds = sts.assume_role(RoleArn=arn, RoleSessionName="selfcheck", DurationSeconds=900)["Credentials"]
assert creds["SessionToken"]
s3.create_bucket(Bucket=name)
s3.put_object(Bucket=name, Key="k", Body=b"ok")
assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"ok"
key = kms.create_key()["KeyMetadata"]["KeyId"]
blob = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"p": "1"})["CiphertextBlob"]
kms.decrypt(CiphertextBlob=blob, EncryptionContext={"p": "1"})
PY
sp_log "selfcheck passed: kubernetes $server, ServiceAccount, Job and GC controllers, S3/STS/KMS/IAM"
