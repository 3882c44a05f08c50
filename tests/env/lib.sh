# Shared settings and helpers for the local test stack. Sourced, never run.
# shellcheck shell=bash
# The settings below are used by the scripts that source this file.
# shellcheck disable=SC2034

SP_ENV_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SP_ROOT="$(cd "$SP_ENV_SRC/../.." && pwd)"
SP_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/securepipe"
SP_ENV_DIR="${SECUREPIPE_ENV_DIR:-$SP_ROOT/target/env}"

K8S_VERSION="v1.37.2"
K8S_BIN_DIR="$SP_CACHE/k8s-$K8S_VERSION/bin"
LOCALSTACK_VERSION="4.4.0"
LOCALSTACK_REQUIREMENTS="$SP_ENV_SRC/localstack-requirements.txt"

ETCD_PORT="${SECUREPIPE_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${SECUREPIPE_ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${SECUREPIPE_APISERVER_PORT:-16443}"
KCM_PORT="${SECUREPIPE_KCM_PORT:-16257}"
LOCALSTACK_PORT="${SECUREPIPE_LOCALSTACK_PORT:-4566}"

PKI_DIR="$SP_ENV_DIR/pki"
PID_DIR="$SP_ENV_DIR/pids"
LOG_DIR="$SP_ENV_DIR/logs"

# sp_lock FILE: holds an exclusive lock on FILE until the calling script exits,
# so concurrent runs (two test suites, say) wait for each other.
sp_lock() {
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock 9
}

sp_log() { printf '[securepipe env] %s\n' "$*" >&2; }
sp_die() { sp_log "ERROR: $*"; exit 1; }

# --- Kubernetes binaries -------------------------------------------------

# The binaries build-kube.sh builds: the control plane, the node and kubectl.
SP_KUBE_BINS="etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"

# True when all binaries exist and report the pinned version.
sp_kube_bins_ok() {
    local b out
    for b in $SP_KUBE_BINS; do
        [ -x "$K8S_BIN_DIR/$b" ] || return 1
    done
    # Capture first: grep -q closing the pipe early would trip pipefail.
    for b in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
        out="$("$K8S_BIN_DIR/$b" --version 2>/dev/null)" || return 1
        [ "$out" = "Kubernetes $K8S_VERSION" ] || return 1
    done
    out="$("$K8S_BIN_DIR/kubectl" version --client 2>/dev/null)" || return 1
    case "$out" in *"Client Version: $K8S_VERSION"*) ;; *) return 1 ;; esac
    "$K8S_BIN_DIR/etcd" --version >/dev/null 2>&1 || return 1
}

# --- LocalStack venv -----------------------------------------------------

sp_localstack_venv() {
    local sum
    sum="$(sha256sum "$LOCALSTACK_REQUIREMENTS" | cut -c1-12)"
    printf '%s/localstack-%s-%s\n' "$SP_CACHE" "$LOCALSTACK_VERSION" "$sum"
}

# Prints a Python 3.11 interpreter (LocalStack 4.4.0 is pinned against 3.11).
sp_python311() {
    local py
    for py in "${SECUREPIPE_PYTHON:-}" python3.11 python3; do
        [ -n "$py" ] || continue
        if "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

# --- Processes -----------------------------------------------------------
# A pid file holds "PID STARTTIME": the start time (field 22 of /proc/PID/stat)
# tells our process apart from a later one that happens to reuse the PID.

sp_proc_starttime() {
    local stat f
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    # Fields after the ")" that closes the command name: f[0] is field 3
    # (state; Z is a dead process), f[19] is field 22 (start time).
    read -ra f <<<"${stat##*) }"
    [ "${f[0]}" != Z ] || return 1
    printf '%s\n' "${f[19]}"
}

# Prints the PID of service $1 when it is running and is the one we started.
sp_pid_of() {
    local file="$PID_DIR/$1.pid" pid start now
    [ -f "$file" ] || return 1
    read -r pid start <"$file" || return 1
    [ -n "$pid" ] && [ -n "$start" ] || return 1
    now="$(sp_proc_starttime "$pid")" || return 1
    [ "$now" = "$start" ] || return 1
    printf '%s\n' "$pid"
}

sp_running() { sp_pid_of "$1" >/dev/null; }

# sp_start NAME CMD...: starts CMD in its own session, detached from the
# caller's terminal and stdout, logging to $LOG_DIR/NAME.log.
sp_start() {
    local name="$1" pid start
    shift
    mkdir -p "$PID_DIR" "$LOG_DIR"
    # Background jobs of a non-interactive shell are not group leaders, so
    # setsid does not fork again and $! is the service's own PID.
    # 9>&- keeps the lock of sp_lock out of the long-lived service.
    setsid "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 9>&- &
    pid=$!
    start="$(sp_proc_starttime "$pid")" || {
        sp_log_tail "$name"
        sp_die "$name exited immediately"
    }
    printf '%s %s\n' "$pid" "$start" >"$PID_DIR/$name.pid"
    sp_log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

# sp_stop NAME [TIMEOUT]: TERM the service's process group, KILL it after
# TIMEOUT seconds (default $SECUREPIPE_STOP_TIMEOUT or 15).
sp_stop() {
    local name="$1" timeout="${2:-${SECUREPIPE_STOP_TIMEOUT:-15}}" pid i
    if ! pid="$(sp_pid_of "$name")"; then
        rm -f "$PID_DIR/$name.pid"
        return 0
    fi
    sp_log "stopping $name (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-100))"
    # The service leads its own session and process group (see sp_start).
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        sp_running "$name" || break
        sleep 0.1
    done
    if sp_running "$name"; then
        sp_log "$name still running ${timeout}s after TERM; sending KILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            sp_running "$name" || break
            sleep 0.1
        done
    fi
    rm -f "$PID_DIR/$name.pid"
}

sp_log_tail() {
    local log="$LOG_DIR/$1.log"
    if [ -f "$log" ]; then
        sp_log "last lines of $log:"
        tail -n "${SECUREPIPE_LOG_TAIL:-40}" "$log" >&2
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
sp_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

sp_require_free_port() {
    if sp_port_busy "$2"; then
        sp_die "port 127.0.0.1:$2 for $1 is already in use (a stack started from another tree, or with its pid files deleted?). Stop that process, or pick another port with the SECUREPIPE_*_PORT variables."
    fi
}

# sp_wait NAME TIMEOUT_SECONDS CHECK...: polls CHECK until it succeeds; on
# timeout or when the service dies, prints its log tail and fails.
sp_wait() {
    local name="$1" timeout="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! sp_running "$name"; then
            sp_log_tail "$name"
            sp_die "$name exited while waiting for it to become ready"
        fi
        if ((SECONDS >= deadline)); then
            sp_log_tail "$name"
            sp_die "$name not ready after ${timeout}s"
        fi
        sleep 0.5
    done
}

# --- LocalStack process ----------------------------------------------------

sp_localstack_healthy() {
    curl -fsS --max-time 3 "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" |
        python3 -c '
import json, sys
services = json.load(sys.stdin).get("services", {})
ok = all(services.get(s) in ("available", "running") for s in ("s3", "sts", "kms", "iam"))
sys.exit(0 if ok else 1)'
}

sp_localstack_warm() {
    AWS_ENDPOINT_URL="http://127.0.0.1:$LOCALSTACK_PORT" AWS_DEFAULT_REGION=us-east-1 \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
        "$(sp_localstack_venv)/bin/python" -c '
import boto3
for service, call in [("sts", "get_caller_identity"), ("s3", "list_buckets"),
                      ("kms", "list_keys"), ("iam", "list_roles")]:
    getattr(boto3.client(service), call)()'
}

# Starts LocalStack unless it runs already; does not wait (see below).
sp_localstack_launch() {
    local venv data
    sp_running localstack && return 0
    venv="$(sp_localstack_venv)"
    [ -x "$venv/bin/python" ] || sp_die "LocalStack venv missing at $venv (run tests/env/install-localstack.sh)"
    sp_require_free_port localstack "$LOCALSTACK_PORT"
    data="$SP_ENV_DIR/localstack"
    # Fresh state on every start.
    rm -rf "$data"
    mkdir -p "$data/fs/etc/localstack" "$data/volume"
    # Test-only init scripts (ready.d/securepipe_sts_sessions.py exposes what LocalStack
    # recorded for an AssumeRole, which no AWS API returns).
    cp -R "$SP_ENV_SRC/localstack-init" "$data/fs/etc/localstack/init"
    # Host mode (this machine may look like a container to LocalStack), no
    # Docker, no persistence, no DNS server, no downloads, no analytics.
    # hypercorn: LocalStack 4.4.0's default (twisted) server ignores the host of
    # GATEWAY_LISTEN and listens on every interface.
    sp_start localstack env \
        GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" \
        GATEWAY_SERVER=hypercorn \
        SERVICES=s3,sts,kms,iam \
        PERSISTENCE=0 \
        DNS_ADDRESS=0 \
        SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 \
        OVERRIDE_IN_DOCKER=0 \
        FILESYSTEM_ROOT="$data/fs" \
        LOCALSTACK_VOLUME_DIR="$data/volume" \
        "$venv/bin/python" -m localstack.runtime.main
}

# Waits until LocalStack is healthy and has loaded the four services.
sp_localstack_wait() {
    sp_wait localstack "${SECUREPIPE_LOCALSTACK_TIMEOUT:-120}" sp_localstack_healthy
    # Services load on first use (EAGER_SERVICE_LOADING does nothing in host
    # mode), which takes seconds: do it now rather than in the first test.
    sp_localstack_warm || {
        sp_log_tail localstack
        sp_die "localstack does not answer S3/STS/KMS/IAM calls"
    }
    sp_wait localstack 30 sp_localstack_init_done
    curl -fsS --max-time 3 "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/init/ready" |
        grep -q '"SUCCESSFUL"' || {
        sp_log_tail localstack
        sp_die "localstack's ready.d script (tests/env/localstack-init) did not run successfully"
    }
    sp_log "localstack ready on http://127.0.0.1:$LOCALSTACK_PORT"
}

# True once LocalStack has run its ready.d init scripts.
sp_localstack_init_done() {
    curl -fsS --max-time 3 "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/init/ready" |
        python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin).get("completed") else 1)'
}

# LocalStack spends about 5 s in shutdown hooks after TERM; its state is
# thrown away anyway, so it gets KILL sooner.
sp_localstack_stop() {
    sp_stop localstack "${SECUREPIPE_LOCALSTACK_STOP_TIMEOUT:-2}"
}

sp_localstack_start() {
    sp_localstack_launch
    sp_localstack_wait
}

# --- SeaweedFS: an S3 that enforces session policies --------------------------
# LocalStack records an AssumeRole's inline policy but does not enforce it; SeaweedFS
# evaluates it, so the tenancy suite replays the operator's policies there. One `weed mini`
# process serves S3 and STS on SEAWEEDFS_PORT; its master, volume, filer and admin parts
# take the next ports (see sp_seaweedfs_launch), all on 127.0.0.1.

SEAWEEDFS_VERSION="4.48"
SEAWEEDFS_BIN="$SP_CACHE/seaweedfs-$SEAWEEDFS_VERSION/weed"
SEAWEEDFS_PORT="${SECUREPIPE_SEAWEEDFS_PORT:-18333}"
# The role the suites assume there; it may do s3:* (the session policy is what narrows it).
SEAWEEDFS_ROLE_ARN="arn:aws:iam::000000000000:role/securepipe-enforced"

sp_seaweedfs_ok() {
    local out
    [ -x "$SEAWEEDFS_BIN" ] || return 1
    out="$("$SEAWEEDFS_BIN" version 2>/dev/null)" || return 1
    case "$out" in *" $SEAWEEDFS_VERSION "*) ;; *) return 1 ;; esac
}

# The ports weed mini listens on: S3/STS, then its other parts; the admin server's gRPC
# port is its HTTP port + 10000, which weed's plugin worker dials whatever it is told.
sp_seaweedfs_ports() {
    local p="$SEAWEEDFS_PORT"
    echo "$p $((p + 1)) $((p + 2)) $((p + 3)) $((p + 4)) $((p + 5)) $((p + 6)) $((p + 7)) $((p + 8)) $((p + 10008))"
}

# The admin identity (setup only) and the STS signing key, kept with the other credentials.
sp_seaweedfs_secret() { # NAME
    local file="$PKI_DIR/seaweedfs-$1"
    [ -s "$file" ] || (umask 077 && openssl rand -hex 24 >"$file")
    cat "$file"
}

# Starts SeaweedFS with fresh data unless it runs already; does not wait.
sp_seaweedfs_launch() {
    local dir="$SP_ENV_DIR/seaweedfs" port p signing_key
    sp_running seaweedfs && return 0
    sp_seaweedfs_ok || sp_die "seaweedfs missing at $SEAWEEDFS_BIN (run tests/env/install-seaweedfs.sh)"
    for port in $(sp_seaweedfs_ports); do
        sp_require_free_port seaweedfs "$port"
    done
    rm -rf "$dir"
    mkdir -p "$dir/data"
    signing_key="$(sp_seaweedfs_secret signing-key)"
    (
        umask 077
        cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "admin",
  "credentials": [{"accessKey": "securepipe-admin", "secretKey": "$(sp_seaweedfs_secret admin)"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
        cat >"$dir/iam.json" <<JSON
{"sts": {"tokenDuration": 3600000000000, "maxSessionLength": 43200000000000,
         "issuer": "securepipe-local-seaweedfs",
         "signingKey": "$(printf '%s' "${signing_key:0:32}" | base64 -w0)"},
 "policy": {"defaultEffect": "Deny", "storeType": "memory"},
 "roles": [{"roleName": "securepipe-enforced", "roleArn": "$SEAWEEDFS_ROLE_ARN",
   "trustPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
     "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole"]}]},
   "attachedPolicies": ["everything-in-s3"]}],
 "policies": [{"name": "everything-in-s3", "document": {"Version": "2012-10-17", "Statement": [
   {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
   {"Effect": "Allow", "Action": "sts:ValidateSession", "Resource": "*"}]}}]}
JSON
    )
    p="$SEAWEEDFS_PORT"
    # -ip/-ip.bind: the defaults are the machine's address and 0.0.0.0. No telemetry (on by
    # default, it reports to the internet), no WebDAV, admin UI, Iceberg or Lance servers.
    # Every bucket takes volumes of its own: small ones, as many as the disk holds (the
    # default count ran out after a few dozen test buckets: "No writable volumes").
    sp_start seaweedfs "$SEAWEEDFS_BIN" mini -dir="$dir/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
        -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.volumeSizeLimitMB=64 -volume.max=0 \
        -s3.port="$p" -s3.port.grpc=$((p + 1)) -master.port=$((p + 2)) \
        -master.port.grpc=$((p + 3)) -volume.port=$((p + 4)) -volume.port.grpc=$((p + 5)) \
        -filer.port=$((p + 6)) -filer.port.grpc=$((p + 7)) -admin.port=$((p + 8)) \
        -s3.config="$dir/s3.json" -s3.iam.config="$dir/iam.json"
}

# S3 answers (403 to an anonymous request) once weed mini has started all its parts.
sp_seaweedfs_answers() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$SEAWEEDFS_PORT/")"
    [ "$code" = 403 ]
}

sp_seaweedfs_wait() {
    sp_wait seaweedfs "${SECUREPIPE_SEAWEEDFS_TIMEOUT:-60}" sp_seaweedfs_answers
    sp_log "seaweedfs ready on http://127.0.0.1:$SEAWEEDFS_PORT"
}
