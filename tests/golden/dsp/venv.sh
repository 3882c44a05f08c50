#!/usr/bin/env bash
# Kept for scripts written against the old entry point: the librosa venv is now the one
# reference-tools venv (tests/reference/install.sh), whose path this prints.
exec "$(dirname "${BASH_SOURCE[0]}")/../../reference/install.sh" "$@"
