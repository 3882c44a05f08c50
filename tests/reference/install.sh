#!/usr/bin/env bash
# Creates (once) the one Python venv of reference tools that the tests and benchmarks
# compare securepipe with: librosa (DSP golden files, random check, benchmarks) and the
# Python AWS Encryption SDK with boto3 (envelope interop, benchmarks). Installed from the
# frozen, hashed requirements.txt into the user cache, named by the file's hash, so a
# changed pin gets a new venv:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/reference-<12 hex of sha256>/
# Prints the venv's path on stdout. `--force` reinstalls.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../env/lib.sh
. "$here/../env/lib.sh"

requirements="$here/requirements.txt"
venv="$SP_CACHE/reference-$(sha256sum "$requirements" | cut -c1-12)"
sp_lock "$SP_CACHE/.install-reference.lock"
if [ "${1:-}" = "--force" ] || [ ! -f "$venv/.complete" ]; then
    py="$(sp_python311)" || sp_die "Python 3.11 not found (the requirements are frozen for it; set SECUREPIPE_PYTHON)"
    sp_log "installing the reference-tools venv into $venv"
    started=$SECONDS
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
        -r "$requirements" >&2
    "$venv/bin/python" -c 'import librosa, soundfile, aws_encryption_sdk, boto3, cryptography' ||
        sp_die "reference-tools venv installed but does not import"
    touch "$venv/.complete"
    sp_log "installed the reference-tools venv in $((SECONDS - started))s"
fi
echo "$venv"
