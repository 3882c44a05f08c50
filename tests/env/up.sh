#!/usr/bin/env bash
# Starts the local test stack on loopback: etcd, kube-apiserver,
# kube-controller-manager, LocalStack (S3, STS, KMS, IAM), SeaweedFS (an S3
# that enforces session policies) and a node (node.sh; SECUREPIPE_NODE=0 skips
# it). Builds or installs what is missing first.
# Idempotent: running services are kept.
# Then: . target/env/env.sh
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_ENV_DIR/.lock"

# The Go build is CPU-bound and the pip install mostly waits on downloads:
# on a cold machine run them side by side.
"$SP_ENV_SRC/install-localstack.sh" &
install_pid=$!
"$SP_ENV_SRC/install-seaweedfs.sh" &
seaweedfs_install_pid=$!
"$SP_ENV_SRC/build-kube.sh" || { wait "$install_pid" "$seaweedfs_install_pid" || true; exit 1; }
wait "$install_pid" || sp_die "LocalStack install failed"
wait "$seaweedfs_install_pid" || sp_die "SeaweedFS install failed"
mkdir -p "$PKI_DIR" "$PID_DIR" "$LOG_DIR"

# --- credentials (kept across restarts; delete target/env to renew) ------
if [ ! -f "$PKI_DIR/serving.crt" ] || [ ! -f "$PKI_DIR/sa.key" ] ||
    [ ! -f "$PKI_DIR/tokens.csv" ]; then
    sp_log "generating CA, serving certificate, service-account key and tokens in $PKI_DIR"
    (
        cd "$PKI_DIR"
        umask 077
        ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=securepipe-local-ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req "${ec[@]}" -keyout serving.key -out serving.csr \
            -subj "/CN=kube-apiserver" 2>/dev/null
        cat >serving.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1
EXT
        openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 3650 -extfile serving.ext -out serving.crt 2>/dev/null
        rm -f serving.csr ca.srl
        # One EC key signs and verifies service-account tokens.
        openssl ecparam -name prime256v1 -genkey -noout -out sa.key
        printf '%s,admin,admin,system:masters\n' "$(openssl rand -hex 32)" >tokens.csv
        printf '%s,system:kube-controller-manager,kube-controller-manager,system:masters\n' \
            "$(openssl rand -hex 32)" >>tokens.csv
    )
fi
# The node's tokens and certificates (node.sh): the apiserver restarts to read new ones.
if [ "$("$SP_ENV_SRC/node.sh" pki)" = changed ]; then
    sp_stop kube-controller-manager
    sp_stop kube-apiserver
fi
admin_token="$(awk -F, '$2 == "admin" {print $1}' "$PKI_DIR/tokens.csv")"
kcm_token="$(awk -F, '$2 == "system:kube-controller-manager" {print $1}' "$PKI_DIR/tokens.csv")"
server="https://127.0.0.1:$APISERVER_PORT"

write_kubeconfig() { # FILE USER TOKEN
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: securepipe-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $2
  user:
    token: $3
contexts:
- name: securepipe-local
  context:
    cluster: securepipe-local
    user: $2
current-context: securepipe-local
EOF
    chmod 600 "$1"
}
write_kubeconfig "$SP_ENV_DIR/kubeconfig" admin "$admin_token"
write_kubeconfig "$SP_ENV_DIR/kube-controller-manager.kubeconfig" \
    system:kube-controller-manager "$kcm_token"

# LocalStack takes longest to come up: launch it now, wait for it last.
sp_localstack_launch
sp_seaweedfs_launch

# --- etcd (fresh data on every start) -------------------------------------
if ! sp_running etcd; then
    # A fresh etcd lacks what a running apiserver bootstrapped: restart both.
    sp_stop kube-controller-manager
    sp_stop kube-apiserver
    sp_require_free_port etcd "$ETCD_PORT"
    sp_require_free_port etcd-peer "$ETCD_PEER_PORT"
    rm -rf "$SP_ENV_DIR/etcd"
    sp_start etcd "$K8S_BIN_DIR/etcd" \
        --name=securepipe \
        --data-dir="$SP_ENV_DIR/etcd" \
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster="securepipe=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync
fi
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
sp_wait etcd 60 etcd_healthy

# --- kube-apiserver -------------------------------------------------------
if ! sp_running kube-apiserver; then
    sp_require_free_port kube-apiserver "$APISERVER_PORT"
    sp_start kube-apiserver "$K8S_BIN_DIR/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --endpoint-reconciler-type=none \
        --secure-port="$APISERVER_PORT" \
        --cert-dir="$PKI_DIR" \
        --tls-cert-file="$PKI_DIR/serving.crt" \
        --tls-private-key-file="$PKI_DIR/serving.key" \
        --client-ca-file="$PKI_DIR/ca.crt" \
        --token-auth-file="$PKI_DIR/tokens.csv" \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction \
        --kubelet-preferred-address-types=InternalIP \
        --kubelet-client-certificate="$PKI_DIR/kubelet-client.crt" \
        --kubelet-client-key="$PKI_DIR/kubelet-client.key" \
        --service-cluster-ip-range=10.96.0.0/24 \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI_DIR/sa.key" \
        --service-account-signing-key-file="$PKI_DIR/sa.key" \
        --allow-privileged=true
fi
api_get() { curl -fsS --max-time 3 --cacert "$PKI_DIR/ca.crt" -H "Authorization: Bearer $admin_token" "$server$1"; }
api_ready() { [ "$(api_get /readyz)" = ok ]; }
sp_wait kube-apiserver 120 api_ready

# --- kube-controller-manager ------------------------------------------------
if ! sp_running kube-controller-manager; then
    sp_require_free_port kube-controller-manager "$KCM_PORT"
    kcm_kubeconfig="$SP_ENV_DIR/kube-controller-manager.kubeconfig"
    sp_start kube-controller-manager "$K8S_BIN_DIR/kube-controller-manager" \
        --kubeconfig="$kcm_kubeconfig" \
        --authentication-kubeconfig="$kcm_kubeconfig" \
        --authorization-kubeconfig="$kcm_kubeconfig" \
        --bind-address=127.0.0.1 \
        --secure-port="$KCM_PORT" \
        --tls-cert-file="$PKI_DIR/serving.crt" \
        --tls-private-key-file="$PKI_DIR/serving.key" \
        --controllers='*' \
        --service-account-private-key-file="$PKI_DIR/sa.key" \
        --root-ca-file="$PKI_DIR/ca.crt" \
        --cluster-signing-cert-file="$PKI_DIR/ca.crt" \
        --cluster-signing-key-file="$PKI_DIR/ca.key" \
        --use-service-account-credentials=false \
        --leader-elect=false
fi
kcm_healthy() { [ "$(curl -fsS --max-time 3 --cacert "$PKI_DIR/ca.crt" "https://127.0.0.1:$KCM_PORT/healthz")" = ok ]; }
sp_wait kube-controller-manager 60 kcm_healthy
# The serviceaccount controller is working once "default" has its account.
default_sa() { api_get /api/v1/namespaces/default/serviceaccounts/default; }
sp_wait kube-controller-manager 60 default_sa

# --- LocalStack, SeaweedFS -----------------------------------------------------
sp_localstack_wait
sp_seaweedfs_wait

# --- the node (SECUREPIPE_NODE=0: control plane only) ------------------------------
if [ "${SECUREPIPE_NODE:-1}" = 1 ]; then
    "$SP_ENV_SRC/node.sh" start
fi

# --- environment for tests ----------------------------------------------------
cat >"$SP_ENV_DIR/env.sh" <<EOF
# Generated by tests/env/up.sh: source it to talk to the local stack.
export SECUREPIPE_ENV_DIR='$SP_ENV_DIR'
export KUBECONFIG='$SP_ENV_DIR/kubeconfig'
export AWS_ENDPOINT_URL='http://127.0.0.1:$LOCALSTACK_PORT'
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
# SeaweedFS, the S3 that enforces session policies (its admin identity is for test setup).
export SECUREPIPE_SEAWEEDFS_ENDPOINT='http://127.0.0.1:$SEAWEEDFS_PORT'
export SECUREPIPE_SEAWEEDFS_ROLE_ARN='$SEAWEEDFS_ROLE_ARN'
export SECUREPIPE_SEAWEEDFS_ACCESS_KEY_ID=securepipe-admin
export SECUREPIPE_SEAWEEDFS_SECRET_ACCESS_KEY='$(sp_seaweedfs_secret admin)'
case "\$PATH" in
'$K8S_BIN_DIR':*) ;;
*) export PATH='$K8S_BIN_DIR':"\$PATH" ;;
esac
EOF
"$SP_ENV_SRC/node.sh" env >>"$SP_ENV_DIR/env.sh"
sp_log "stack is up: apiserver $server, LocalStack http://127.0.0.1:$LOCALSTACK_PORT, SeaweedFS http://127.0.0.1:$SEAWEEDFS_PORT; . $SP_ENV_DIR/env.sh"
