#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# and kubectl from the
# official Go modules (k8s.io/kubernetes, module graph pinned by
# tests/env/kube-build/go.mod) into a versioned cache outside the repo.
# Reuses the binaries when they are present and report the pinned version.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_CACHE/.build-kube.lock"

if [ "${1:-}" != "--force" ] && sp_kube_bins_ok; then
    sp_log "kubernetes $K8S_VERSION binaries present in $K8S_BIN_DIR"
    exit 0
fi
command -v go >/dev/null || sp_die "go is required to build the kubernetes binaries"

sp_log "building kubernetes $K8S_VERSION binaries into $K8S_BIN_DIR (about 20-30 min on 2 cores from a cold Go cache)"
started=$SECONDS
mkdir -p "$K8S_BIN_DIR"
out="$(mktemp -d "$K8S_BIN_DIR/../build.XXXXXX")"
trap 'rm -rf "$out"' EXIT

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION"
    ldflags+=" -X $pkg.gitMajor=$(echo "$K8S_VERSION" | cut -d. -f1 | tr -d v)"
    ldflags+=" -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
    ldflags+=" -X $pkg.gitTreeState=clean"
done

# One invocation so shared packages compile once. The go.mod is committed and
# must not change (-mod=readonly); GOTOOLCHAIN=local never fetches a toolchain.
(
    cd "$SP_ENV_SRC/kube-build"
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
        go build -trimpath -ldflags "$ldflags" -o "$out/" \
        go.etcd.io/etcd/server/v3 \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kubectl
)
# go names the etcd server binary after its module path element: "server".
mv "$out/server" "$out/etcd"
for b in $SP_KUBE_BINS; do
    mv -f "$out/$b" "$K8S_BIN_DIR/$b"
done
sp_kube_bins_ok || sp_die "built binaries in $K8S_BIN_DIR fail their version check"
sp_log "built kubernetes binaries in $((SECONDS - started))s"
