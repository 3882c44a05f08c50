#!/usr/bin/env bash
# Installs LocalStack community from the frozen, hashed requirements file into
# a venv in the user cache whose name carries the file's hash, so a changed
# file gets a new venv and an unchanged one is reused.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_CACHE/.install-localstack.lock"

venv="$(sp_localstack_venv)"
if [ "${1:-}" != "--force" ] && [ -f "$venv/.complete" ]; then
    sp_log "LocalStack venv present at $venv"
    exit 0
fi
py="$(sp_python311)" || sp_die "Python 3.11 not found (LocalStack $LOCALSTACK_VERSION needs it; set SECUREPIPE_PYTHON)"
sp_log "installing LocalStack $LOCALSTACK_VERSION into $venv"
started=$SECONDS
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
    -r "$LOCALSTACK_REQUIREMENTS"
"$venv/bin/python" -c 'import localstack.runtime.main' ||
    sp_die "LocalStack installed but does not import"
touch "$venv/.complete"
sp_log "installed LocalStack in $((SECONDS - started))s"
