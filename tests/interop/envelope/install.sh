#!/usr/bin/env bash
# Creates (once) the Python venv the envelope interop tests and benchmark use: the Python
# AWS Encryption SDK and cryptography from the frozen, hashed requirements.txt. The venv
# lives in the user cache, named by the file's hash, so a changed pin gets a new venv:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/envelope-interop-<12 hex of sha256>/
# Prints the venv's path on stdout. `--force` reinstalls.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../env/lib.sh
. "$here/../../env/lib.sh"

requirements="$here/requirements.txt"
venv="$SP_CACHE/envelope-interop-$(sha256sum "$requirements" | cut -c1-12)"
sp_lock "$SP_CACHE/.install-envelope-interop.lock"
if [ "${1:-}" = "--force" ] || [ ! -f "$venv/.complete" ]; then
    py="$(sp_python311)" || sp_die "Python 3.11 not found (the requirements are frozen for it; set SECUREPIPE_PYTHON)"
    sp_log "installing the envelope interop venv into $venv"
    started=$SECONDS
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
        -r "$requirements" >&2
    "$venv/bin/python" -c 'import aws_encryption_sdk, cryptography' ||
        sp_die "envelope interop venv installed but does not import"
    touch "$venv/.complete"
    sp_log "installed the envelope interop venv in $((SECONDS - started))s"
fi
echo "$venv"
