#!/usr/bin/env bash
# Installs what the local node needs from Debian's packages, when missing: containerd,
# runc, the CNI plugins (bridge, host-local, loopback), busybox-static (the test image),
# gcc (the static sandbox "pause" binary), iproute2, util-linux and jq (image specs).
# Idempotent: does nothing (no apt-get update either) when every package is installed.
# Needs root, as the node does.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_CACHE/.install-node.lock"

PACKAGES="containerd runc containernetworking-plugins busybox-static gcc iproute2 util-linux jq"
missing=()
for pkg in $PACKAGES; do
    case "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" in
        "install ok installed") ;;
        *) missing+=("$pkg") ;;
    esac
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
[ "$(id -u)" = 0 ] || sp_die "installing ${missing[*]} needs root (apt-get)"
command -v apt-get >/dev/null || sp_die "no apt-get: install the Debian packages ${missing[*]} by hand"
sp_log "installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
sp_log "installed ${missing[*]}"
