# Settings of the local node (tests/env/node.sh). Sourced after lib.sh, never run.
# shellcheck shell=bash
# shellcheck disable=SC2034

# SECUREPIPE_NODE=0: run only the control plane and LocalStack (Pods stay Pending).
SP_NODE_ENABLED="${SECUREPIPE_NODE:-1}"

# Everything host-wide the node creates is named after this stack's state folder, so two
# stacks (two worktrees) never share a bridge, a cgroup or a CNI network.
SP_NODE_ID="$(printf '%s' "$SP_ENV_DIR" | sha256sum | cut -c1-8)"
SP_NODE_DIR="$SP_ENV_DIR/node"
SP_NODE_NAME="securepipe-node"
SP_BRIDGE="spbr-$SP_NODE_ID"
SP_CNI_NETWORK="securepipe-$SP_NODE_ID"
SP_CGROUP_ROOT="securepipe-$SP_NODE_ID"
# A /24 for Pods, 10.244.<first byte of the same hash>.0/24, so a bridge left behind by
# another tree's stack (a killed session) does not claim the same subnet. The host's end
# of the bridge is .1. Pods get no default route.
SP_POD_CIDR="${SECUREPIPE_POD_CIDR:-10.244.$((16#${SP_NODE_ID:0:2})).0/24}"
SP_NODE_ADDRESS="${SP_POD_CIDR%.*}.1"

SP_CNI_BIN_DIR=/usr/lib/cni
SP_CONTAINERD_SOCK="$SP_NODE_DIR/containerd/containerd.sock"
SP_CONTAINERD_STATE="$SP_NODE_DIR/containerd/state"
SP_KUBELET_DIR="$SP_NODE_DIR/kubelet"

KUBELET_PORT="${SECUREPIPE_KUBELET_PORT:-16250}"
SCHEDULER_PORT="${SECUREPIPE_SCHEDULER_PORT:-16259}"

# Images the node holds (imported, never pulled).
SP_PAUSE_IMAGE="docker.io/library/securepipe-pause:1"
SP_BUSYBOX_IMAGE="docker.io/library/securepipe-busybox:1"
SP_IMAGE="docker.io/library/securepipe:local"

# sp_ctr ARGS...: containerd's client on this node's socket, in the CRI namespace.
sp_ctr() { ctr --address "$SP_CONTAINERD_SOCK" --namespace k8s.io "$@"; }
