#!/usr/bin/env bash
# Builds helm from the Go module proxy into a versioned cache outside the repo and prints
# the binary's path on stdout. Reuses the binary when it is present and reports the
# pinned version. Used by tests/chart/check.sh and tests/e2e/kind.sh.
#
# Cold (empty Go build and module cache) this takes a few minutes on 2 cores; see
# tests/chart/README.md for the measured time.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION="v3.22.0"
HELM_DIR="$SP_CACHE/helm-$HELM_VERSION"
HELM_BIN="$HELM_DIR/helm"

helm_ok() {
    local out
    [ -x "$HELM_BIN" ] || return 1
    out="$("$HELM_BIN" version --template '{{.Version}}' 2>/dev/null)" || return 1
    [ "$out" = "$HELM_VERSION" ]
}

sp_lock "$SP_CACHE/.install-helm.lock"

if [ "${1:-}" != "--force" ] && helm_ok; then
    echo "$HELM_BIN"
    exit 0
fi
command -v go >/dev/null || sp_die "go is required to build helm $HELM_VERSION"

sp_log "building helm $HELM_VERSION into $HELM_DIR (a few minutes from a cold Go cache)"
started=$SECONDS
mkdir -p "$HELM_DIR"
out="$(mktemp -d "$SP_CACHE/helm-build.XXXXXX")"
trap 'rm -rf "$out"' EXIT
# `go install pkg@version` builds exactly the module graph helm's go.mod pins.
# helm reads its version from this variable; without it, it would say "v3.22" only.
GOBIN="$out" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath \
    go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv -f "$out/helm" "$HELM_BIN"
helm_ok || sp_die "built $HELM_BIN does not report $HELM_VERSION"
sp_log "built helm $HELM_VERSION in $((SECONDS - started))s"
echo "$HELM_BIN"
