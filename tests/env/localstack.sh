#!/usr/bin/env bash
# Stops, starts or restarts only LocalStack, e.g. for tests that take AWS away
# mid-test. start waits until S3, STS, KMS and IAM are healthy. State is fresh
# after every start.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sp_lock "$SP_ENV_DIR/.lock"

case "${1:-}" in
stop) sp_localstack_stop ;;
start) sp_localstack_start ;;
restart)
    sp_localstack_stop
    sp_localstack_start
    ;;
*)
    echo "usage: $0 stop|start|restart" >&2
    exit 2
    ;;
esac
