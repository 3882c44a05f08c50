#!/usr/bin/env bash
# Prints the path of a Python venv with tests/golden/dsp/requirements.txt installed, creating
# it on first use. The venv lives outside the repo, named by a hash of the requirements, so a
# changed pin gets a fresh venv: ${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/dsp-venv-<hash>.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements="$here/requirements.txt"
python=${PYTHON:-python3}
hash=$( { "$python" --version; cat "$requirements"; } | sha256sum | cut -c1-16)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/securepipe/dsp-venv-$hash"
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    touch "$venv/.complete"
fi
echo "$venv"
