#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the Kubernetes build module from the official
# k8s.io/kubernetes go.mod at K8S_VERSION. Run only when bumping the version;
# the result is committed so every machine resolves the same module graph.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
cd "$(dirname "${BASH_SOURCE[0]}")"

upstream_mod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
go_version="$(awk '$1 == "go" {print $2; exit}' "$upstream_mod")"

rm -f go.mod go.sum
go mod init securepipe.local/kube-build
go mod edit -go="$go_version"

# godebug lines, single-line or block form.
awk '/^godebug \(/ {blk=1; next} blk && /^\)/ {blk=0; next}
     blk {print $1} /^godebug [^(]/ {print $2}' "$upstream_mod" |
    while read -r kv; do go mod edit -godebug="$kv"; done

go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
# Every staging module (k8s.io/X => ./staging/...) becomes k8s.io/X@v0.N.M.
awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$upstream_mod" |
    while read -r m; do go mod edit -replace="${m}=${m}@${STAGING_VERSION}"; done

for tool in k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kubectl \
    go.etcd.io/etcd/server/v3; do
    go mod edit -tool="$tool"
done
go mod tidy
# The etcd server must stay at the version Kubernetes itself pins.
want="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$upstream_mod")"
got="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
if [ "$want" != "$got" ]; then
    echo "etcd server resolved to $got, kubernetes pins $want" >&2
    exit 1
fi
echo "go.mod regenerated for k8s.io/kubernetes ${K8S_VERSION} (etcd ${got})"
