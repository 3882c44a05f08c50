#!/usr/bin/env bash
# operator-kubeconfig.sh ADMIN_KUBECONFIG OUT: writes OUT, the admin kubeconfig that
# impersonates the operator's ServiceAccount, so the apiserver enforces exactly
# config/rbac/ (used by the demo and the scale benchmark; the Rust suites do the same in
# tests/src/operator.rs).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ADMIN_KUBECONFIG OUT" >&2; exit 2; }
umask 077
awk '{ print } /^    token: / {
  print "    as: system:serviceaccount:securepipe-system:securepipe-operator"
  print "    as-groups: [system:serviceaccounts, system:serviceaccounts:securepipe-system, system:authenticated]"
}' "$1" >"$2"
grep -q '^    as: ' "$2" || { echo "$1 has no token user to impersonate from" >&2; exit 1; }
