#!/usr/bin/env bash
# Prints the stack suites `make test` runs, one per line: every [[test]] of the tests crate
# (tests/stack/*.rs), then "in-crate" for the #[ignore]d stack tests inside the crates.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
awk -F'"' '/^\[\[test\]\]/ {in_test = 1; next} in_test && /^name *=/ {print $2; in_test = 0}' tests/Cargo.toml
echo in-crate
