#!/usr/bin/env bash
# Stops the processes tests/env/up.sh started (by recorded PID, checking each
# is still the process we started) and removes their pid files.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_ENV_DIR/.lock"

# Reverse start order: the node first (its Pods, kubelet, containerd and all they
# leave), clients of the apiserver next, etcd last.
"$SP_ENV_SRC/node.sh" stop
sp_localstack_stop
sp_stop seaweedfs
for name in kube-controller-manager kube-apiserver etcd; do
    sp_stop "$name"
done
sp_log "stack stopped"
