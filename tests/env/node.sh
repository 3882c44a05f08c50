#!/usr/bin/env bash
# The local node: kube-scheduler, containerd (own config, root, state and socket under
# target/env/node), a bridge CNI network without a default route or masquerade, a kubelet
# registered as node "securepipe-node", and a TCP relay that makes the apiserver and
# LocalStack (both on 127.0.0.1) reachable from Pods at the bridge address.
#
#   node.sh pki     tokens and certificates the node needs (up.sh, before the apiserver)
#   node.sh start   start what is not running, wait until the node is Ready (up.sh)
#   node.sh stop    stop everything and remove what it left: processes, shims, mounts,
#                   network namespaces, the bridge, cgroups (down.sh; safe to repeat)
#   node.sh env     the variables env.sh exports for the node
#
# Needs root (as the kubelet does). Why each setting: ../shared/notes/real-node.md.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node-lib.sh source-path=SCRIPTDIR
. "$SP_ENV_SRC/node-lib.sh"

server="https://127.0.0.1:$APISERVER_PORT"

# --- pki ----------------------------------------------------------------------------
# Prints "changed" when the apiserver must restart to read what changed.
node_pki() {
    local changed=""
    cd "$PKI_DIR"
    umask 077 # this subcommand only writes keys and certificates
    if ! grep -q ',system:node:' tokens.csv; then
        printf '%s,system:node:%s,kubelet,system:nodes\n' "$(openssl rand -hex 32)" "$SP_NODE_NAME" >>tokens.csv
        changed=1
    fi
    if ! grep -q ',system:kube-scheduler,' tokens.csv; then
        printf '%s,system:kube-scheduler,kube-scheduler\n' "$(openssl rand -hex 32)" >>tokens.csv
        changed=1
    fi
    # The apiserver's client certificate for the kubelet (logs, exec).
    if [ ! -f kubelet-client.crt ]; then
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout kubelet-client.key -out kubelet-client.csr \
            -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >kubelet-client.ext
        openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 3650 -extfile kubelet-client.ext -out kubelet-client.crt 2>/dev/null
        rm -f kubelet-client.csr kubelet-client.ext ca.srl
        changed=1
    fi
    # Pods reach the apiserver through the relay on the bridge address: the serving
    # certificate must name it (stacks created before the node lack it).
    if ! openssl x509 -in serving.crt -noout -checkip "$SP_NODE_ADDRESS" | grep -q 'does match'; then
        openssl req -new -key serving.key -subj "/CN=kube-apiserver" -out serving.csr
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=$(openssl x509 -in serving.crt -noout -ext subjectAltName | tail -n +2 |
                sed 's/^ *//; s/IP Address:/IP:/g'),IP:$SP_NODE_ADDRESS" >serving.ext
        openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 3650 -extfile serving.ext -out serving.crt 2>/dev/null
        rm -f serving.csr ca.srl
        changed=1
    fi
    [ -z "$changed" ] || echo changed
}

token_of() { awk -F, -v u="$1" '$2 == u {print $1}' "$PKI_DIR/tokens.csv"; }

write_kubeconfig() { # FILE USER TOKEN
    (umask 077 && cat >"$1") <<EOF
apiVersion: v1
kind: Config
clusters:
- name: securepipe-local
  cluster: {server: "$server", certificate-authority: "$PKI_DIR/ca.crt"}
users:
- name: $2
  user: {token: "$3"}
contexts:
- name: securepipe-local
  context: {cluster: securepipe-local, user: "$2"}
current-context: securepipe-local
EOF
}

kubectl_admin() { "$K8S_BIN_DIR/kubectl" --kubeconfig "$SP_ENV_DIR/kubeconfig" "$@"; }

# --- images -------------------------------------------------------------------------
# The sandbox image (a static pause binary) and a busybox image for test Pods, built
# from the Debian packages into the cache, keyed by their inputs.
node_images() {
    local dir key pause busybox applets
    key="$(cat "$SP_ENV_SRC/node/pause.c" "$SP_ENV_SRC/oci-image.py" /bin/busybox | sha256sum | cut -c1-12)"
    dir="$SP_CACHE/node-images-$key"
    if [ ! -f "$dir/busybox.oci.tar" ]; then
        sp_log "building the pause and busybox images into $dir"
        mkdir -p "$dir"
        gcc -static -Os -s -Wall -Wextra -Werror -o "$dir/pause" "$SP_ENV_SRC/node/pause.c"
        pause="$(jq -n --arg name "$SP_PAUSE_IMAGE" --arg out "$dir/pause.oci.tar" --arg src "$dir/pause" \
            '{name: $name, out: $out, files: [{path: "pause", src: $src, mode: 493}],
              config: {User: "65535:65535", Entrypoint: ["/pause"]}}')"
        python3 "$SP_ENV_SRC/oci-image.py" <<<"$pause"
        # Every applet as a symlink, so `sh -c`, `cat` and `sleep` work as usual.
        applets="$(/bin/busybox --list | jq -R '{path: ("bin/" + .), type: "symlink", target: "busybox"}' |
            jq -s 'map(select(.path != "bin/busybox"))')"
        busybox="$(jq -n --arg name "$SP_BUSYBOX_IMAGE" --arg out "$dir/busybox.oci.tar" \
            --argjson applets "$applets" \
            '{name: $name, out: $out,
              files: ([{path: "bin/busybox", src: "/bin/busybox", mode: 493},
                       {path: "tmp", type: "dir", mode: 1023}] + $applets),
              config: {Cmd: ["/bin/sh"], Env: ["PATH=/bin"]}}')"
        python3 "$SP_ENV_SRC/oci-image.py" <<<"$busybox"
    fi
    sp_ctr images import "$dir/pause.oci.tar" >/dev/null
    sp_ctr images import "$dir/busybox.oci.tar" >/dev/null
}

# --- network ------------------------------------------------------------------------
bridge_up() {
    local route
    route="$(ip -o route show "$SP_POD_CIDR" | grep -v " dev $SP_BRIDGE " || true)"
    [ -z "$route" ] ||
        sp_die "the pod subnet $SP_POD_CIDR is already routed ($route): another stack's node? Run its down.sh, or set SECUREPIPE_POD_CIDR"
    if ! ip link show "$SP_BRIDGE" >/dev/null 2>&1; then
        ip link add name "$SP_BRIDGE" type bridge
    fi
    ip addr show dev "$SP_BRIDGE" | grep -q "inet $SP_NODE_ADDRESS/" ||
        ip addr add "$SP_NODE_ADDRESS/${SP_POD_CIDR#*/}" dev "$SP_BRIDGE"
    ip link set "$SP_BRIDGE" up
}

write_cni_config() {
    mkdir -p "$SP_NODE_DIR/cni/net.d" "$SP_NODE_DIR/cni/ipam"
    # isGateway false: the bridge keeps the address set above, and the plugin does not
    # turn on ip_forward. No ipMasq, no routes: Pods reach the pod network only.
    jq -n --arg name "$SP_CNI_NETWORK" --arg bridge "$SP_BRIDGE" --arg subnet "$SP_POD_CIDR" \
        --arg gw "$SP_NODE_ADDRESS" --arg data "$SP_NODE_DIR/cni/ipam" \
        '{cniVersion: "0.4.0", name: $name, plugins: [{
            type: "bridge", bridge: $bridge, isGateway: false, ipMasq: false, hairpinMode: true,
            ipam: {type: "host-local", dataDir: $data, ranges: [[{subnet: $subnet, gateway: $gw}]]}}]}' \
        >"$SP_NODE_DIR/cni/net.d/10-securepipe.conflist"
}

# --- cgroups (v1 hierarchies, or the unified one) ----------------------------------
cgroup_dirs() {
    local h
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [ -d "$h$SP_CGROUP_ROOT" ] && printf '%s\n' "$h$SP_CGROUP_ROOT"
    done
    return 0
}

cgroup_root_create() {
    local h
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        mkdir -p "/sys/fs/cgroup/$SP_CGROUP_ROOT"
        return 0
    fi
    for h in /sys/fs/cgroup/*/; do
        [ -f "${h}cgroup.procs" ] || continue
        mkdir -p "$h$SP_CGROUP_ROOT"
    done
    # A v1 cpuset cgroup admits no task before it has CPUs and memory nodes.
    if [ -f "/sys/fs/cgroup/cpuset/$SP_CGROUP_ROOT/cpuset.cpus" ]; then
        cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$SP_CGROUP_ROOT/cpuset.cpus"
        cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$SP_CGROUP_ROOT/cpuset.mems"
    fi
}

# PIDs of every process in this node's cgroups (the Pods' processes).
cgroup_pids() {
    local d
    while read -r d; do
        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
    done < <(cgroup_dirs) | sort -u
}

# --- containerd ----------------------------------------------------------------------
write_containerd_config() {
    local c="$SP_NODE_DIR/containerd"
    mkdir -p "$c"
    cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$SP_CONTAINERD_STATE"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SP_CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SP_PAUSE_IMAGE"
  # Exec and logs streams, on loopback only (the kubelet relays them).
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE in this container: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  # Network namespaces under the state folder, so stop can find and unmount them.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$SP_CNI_BIN_DIR"
    conf_dir = "$SP_NODE_DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$SP_CONTAINERD_STATE/runc"
EOF
}

containerd_start() {
    sp_running containerd && return 0
    [ ! -S "$SP_CONTAINERD_SOCK" ] || rm -f "$SP_CONTAINERD_SOCK"
    write_containerd_config
    # Image pulls go to a proxy on loopback that is not there: an image missing on the
    # node fails at once instead of reaching a registry outside the machine.
    sp_start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
        containerd --config "$SP_NODE_DIR/containerd/config.toml"
    sp_wait containerd 30 sp_ctr version
}

# --- relay: bridge address -> loopback ---------------------------------------------
relay_start() {
    sp_running node-relay && return 0
    sp_start node-relay python3 "$SP_ENV_SRC/node/relay.py" "$SP_NODE_ADDRESS" \
        "$APISERVER_PORT" "$LOCALSTACK_PORT"
    relay_ready() { (exec 3<>"/dev/tcp/$SP_NODE_ADDRESS/$APISERVER_PORT") 2>/dev/null; }
    sp_wait node-relay 15 relay_ready
}

# --- scheduler and kubelet ------------------------------------------------------------
scheduler_start() {
    sp_running kube-scheduler && return 0
    sp_require_free_port kube-scheduler "$SCHEDULER_PORT"
    write_kubeconfig "$SP_NODE_DIR/kube-scheduler.kubeconfig" system:kube-scheduler \
        "$(token_of system:kube-scheduler)"
    sp_start kube-scheduler "$K8S_BIN_DIR/kube-scheduler" \
        --kubeconfig="$SP_NODE_DIR/kube-scheduler.kubeconfig" \
        --bind-address=127.0.0.1 \
        --secure-port="$SCHEDULER_PORT" \
        --leader-elect=false
    scheduler_healthy() { [ "$(curl -fsSk --max-time 3 "https://127.0.0.1:$SCHEDULER_PORT/healthz")" = ok ]; }
    sp_wait kube-scheduler 60 scheduler_healthy
}

write_kubelet_config() {
    cat >"$SP_NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Bound to the bridge address only (the apiserver prefers the InternalIP, this address).
address: $SP_NODE_ADDRESS
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI_DIR/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: "unix://$SP_CONTAINERD_SOCK"
# cgroup v1 host, PID 1 is not systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$SP_CGROUP_ROOT
failSwapOn: false
# Imported images cannot be pulled back: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
podLogsDir: "$SP_NODE_DIR/pod-logs"
# No DNS server is reachable from Pods; give them none.
resolvConf: ""
# Secret volumes follow renewals within seconds.
syncFrequency: 10s
maxPods: 50
serializeImagePulls: false
EOF
}

kubelet_start() {
    sp_running kubelet && return 0
    write_kubeconfig "$SP_NODE_DIR/kubelet.kubeconfig" "system:node:$SP_NODE_NAME" \
        "$(token_of "system:node:$SP_NODE_NAME")"
    write_kubelet_config
    mkdir -p "$SP_KUBELET_DIR" "$SP_NODE_DIR/pod-logs"
    sp_start kubelet "$K8S_BIN_DIR/kubelet" \
        --config="$SP_NODE_DIR/kubelet.yaml" \
        --kubeconfig="$SP_NODE_DIR/kubelet.kubeconfig" \
        --root-dir="$SP_KUBELET_DIR" \
        --cert-dir="$SP_KUBELET_DIR/pki" \
        --hostname-override="$SP_NODE_NAME" \
        --node-ip="$SP_NODE_ADDRESS" \
        --v=1
}

node_ready() {
    [ "$(kubectl_admin get node "$SP_NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

node_start() {
    local started=$SECONDS
    [ "$(id -u)" = 0 ] || sp_die "the node needs root (kubelet, containerd); SECUREPIPE_NODE=0 runs the control plane only"
    "$SP_ENV_SRC/install-node.sh"
    mkdir -p "$SP_NODE_DIR"
    bridge_up
    write_cni_config
    cgroup_root_create
    containerd_start
    node_images
    relay_start
    scheduler_start
    kubelet_start
    sp_wait kubelet 90 node_ready
    sp_log "node $SP_NODE_NAME Ready in $((SECONDS - started))s (Pods on $SP_POD_CIDR, bridge $SP_BRIDGE)"
}

# --- stop ---------------------------------------------------------------------------
# "PID SOCKET" of each containerd shim started for this node (its arguments name this
# node's socket); containerd 1.6 puts a shim's socket at /run/containerd/s/<sha256 of
# "<containerd socket>/<namespace>/<id>">.
shims_of_this_node() {
    local cmdline pid args id
    for cmdline in /proc/[0-9]*/cmdline; do
        pid="${cmdline#/proc/}"
        pid="${pid%/cmdline}"
        args="$(tr '\0' '\n' 2>/dev/null <"$cmdline")" || continue
        case "$(grep -Fx -A1 -- -address <<<"$args")" in
            *$'\n'"$SP_CONTAINERD_SOCK") ;;
            *) continue ;;
        esac
        id="$(grep -Fx -A1 -- -id <<<"$args" | tail -n 1)"
        printf '%s /run/containerd/s/%s\n' "$pid" \
            "$(printf '%s' "$SP_CONTAINERD_SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
    done
}

kill_pids() { # SIGNAL PID...
    local sig=$1
    shift
    [ "$#" -gt 0 ] || return 0
    kill "-$sig" "$@" 2>/dev/null || true
}

node_stop() {
    local pids shim_pids sockets sandboxes i
    # Nothing of this stack's node is there: leave the host-wide paths below alone (a
    # node of another stack may be using them).
    if [ ! -d "$SP_NODE_DIR" ] && [ -z "$(cgroup_dirs)" ] && ! ip link show "$SP_BRIDGE" >/dev/null 2>&1; then
        for name in kubelet kube-scheduler node-relay containerd; do
            sp_stop "$name"
        done
        return 0
    fi
    # 1. Nothing may restart containers: the kubelet goes first, then the scheduler.
    sp_stop kubelet
    sp_stop kube-scheduler
    sp_stop node-relay
    # 2. The Pods' processes: every process in this node's cgroups.
    for ((i = 0; i < 50; i++)); do
        mapfile -t pids < <(cgroup_pids)
        [ "${#pids[@]}" -gt 0 ] || break
        kill_pids KILL "${pids[@]}"
        sleep 0.1
    done
    # 3. The shims (they outlive containerd), found through the bundles they serve.
    shim_pids=()
    sockets=()
    if [ -d "$SP_CONTAINERD_STATE/io.containerd.runtime.v2.task" ]; then
        while read -r f; do
            shim_pids+=("$(cat "$f")")
        done < <(find "$SP_CONTAINERD_STATE/io.containerd.runtime.v2.task" -name shim.pid)
        while read -r f; do
            sockets+=("$(sed 's|^unix://||' "$f")")
        done < <(find "$SP_CONTAINERD_STATE/io.containerd.runtime.v2.task" -name address)
    fi
    # The Pods' sandboxes, whose CNI results (one per network) libcni caches outside.
    sandboxes=()
    if [ -d "$SP_CONTAINERD_STATE/io.containerd.grpc.v1.cri/sandboxes" ]; then
        mapfile -t sandboxes < <(ls "$SP_CONTAINERD_STATE/io.containerd.grpc.v1.cri/sandboxes")
    fi
    sp_stop containerd
    # Also a shim whose bundle containerd already removed (containerd 1.6 can leave one
    # behind for a deleted Pod): the one that serves this node's socket.
    while read -r pid socket; do
        shim_pids+=("$pid")
        sockets+=("$socket")
    done < <(shims_of_this_node)
    for pid in "${shim_pids[@]}"; do
        # Only a process that still is a containerd shim.
        case "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" in
            *containerd-shim*) kill -KILL "$pid" 2>/dev/null || true ;;
        esac
    done
    # 4. Mounts under the node's folder (rootfs overlays, Secret tmpfs, shm, netns),
    #    deepest first.
    if [ -d "$SP_NODE_DIR" ]; then
        for ((i = 0; i < 10; i++)); do
            mapfile -t mounts < <(awk -v p="$SP_NODE_DIR/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
            [ "${#mounts[@]}" -gt 0 ] || break
            for m in "${mounts[@]}"; do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
            done
        done
    fi
    # 5. The bridge (the Pods' veths went with their namespaces), the cgroups, the
    #    files containerd and the CNI plugins keep outside the node's folder.
    if ip link show "$SP_BRIDGE" >/dev/null 2>&1; then
        ip link del "$SP_BRIDGE"
    fi
    while read -r d; do
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done < <(cgroup_dirs)
    for s in "${sockets[@]}"; do
        case "$s" in /run/containerd/s/*) rm -f "$s" ;; esac
    done
    for id in "${sandboxes[@]}"; do
        rm -f "/var/lib/cni/results/$SP_CNI_NETWORK-$id-eth0" "/var/lib/cni/results/cni-loopback-$id-lo"
    done
    # The kubelet's device manager socket has a fixed path (not under --root-dir).
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
    rmdir /var/lib/cni/results /var/lib/cni /run/containerd/s /run/containerd/fifo \
        /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd \
        /var/lib/kubelet/device-plugins /var/lib/kubelet /run/mount 2>/dev/null || true
    rm -rf "$SP_NODE_DIR"
    leftovers
}

# Fails loudly when anything of the node is still there.
leftovers() {
    local left=()
    [ -z "$(cgroup_dirs)" ] || left+=("cgroups $(cgroup_dirs | tr '\n' ' ')")
    [ -z "$(shims_of_this_node)" ] || left+=("containerd shims $(shims_of_this_node | tr '\n' ' ')")
    ! ip link show "$SP_BRIDGE" >/dev/null 2>&1 || left+=("bridge $SP_BRIDGE")
    ! grep -q " $SP_NODE_DIR/" /proc/self/mountinfo || left+=("mounts under $SP_NODE_DIR")
    [ ! -e "$SP_NODE_DIR" ] || left+=("$SP_NODE_DIR")
    if [ "${#left[@]}" -gt 0 ]; then
        sp_die "node stop left: ${left[*]}"
    fi
}

node_env() {
    [ "$SP_NODE_ENABLED" = 1 ] || return 0
    cat <<EOF
# The local node (tests/env/node.sh).
export SECUREPIPE_NODE_NAME='$SP_NODE_NAME'
export SECUREPIPE_NODE_ADDRESS='$SP_NODE_ADDRESS'
export SECUREPIPE_CONTAINERD_SOCKET='$SP_CONTAINERD_SOCK'
# What Pods use for LocalStack and the apiserver (the relay on the bridge address).
export SECUREPIPE_POD_AWS_ENDPOINT_URL='http://$SP_NODE_ADDRESS:$LOCALSTACK_PORT'
export SECUREPIPE_POD_APISERVER_HOST='$SP_NODE_ADDRESS'
export SECUREPIPE_POD_APISERVER_PORT='$APISERVER_PORT'
EOF
}

case "${1:-}" in
    pki) node_pki ;;
    start) node_start ;;
    stop) node_stop ;;
    env) node_env ;;
    *) sp_die "usage: node.sh pki|start|stop|env" ;;
esac
