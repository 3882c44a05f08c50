#!/usr/bin/env bash
# `make test`: everything CI checks, in timed phases (see phases.sh).
#
# The slow installs that need no Rust build (the Kubernetes binaries, helm, LocalStack and
# the reference-tools venv, all cached under ${XDG_CACHE_HOME:-~/.cache}/securepipe/) start
# in the background first and overlap with the Rust build; each phase that needs one waits
# for it; so do the Argo CD / kstatus health checks (tests/gitops: Go, about 2 min with a
# cold Go build cache, seconds warm). Then: formatting, clippy, unit tests, the DSP check
# against librosa, the local
# stack, `make demo` on that stack (the first command a newcomer types, as they type it),
# every stack suite, and the kind suite where a Docker engine exists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
started=$SECONDS
own_summary=false
[ -n "${SP_PHASES_FILE:-}" ] || own_summary=true
# shellcheck source=phases.sh
. tests/ci/phases.sh
make=(make --no-print-directory)
logs=target/logs

sp_phase_bg "kubernetes binaries" "$logs/build-kube.log" tests/env/build-kube.sh
sp_phase_bg "helm" "$logs/install-helm.log" tests/env/install-helm.sh
sp_phase_bg "localstack venv" "$logs/install-localstack.log" tests/env/install-localstack.sh
sp_phase_bg "reference venv" "$logs/install-reference.log" tests/reference/install.sh
sp_phase_bg "gitops health checks" "$logs/gitops-test.log" "${make[@]}" gitops-test

sp_phase "fmt" "${make[@]}" fmt-check
sp_phase "clippy" "${make[@]}" clippy
sp_phase "unit tests" "${make[@]}" unit
sp_phase_wait "gitops health checks"
sp_phase "securepipe binary" "${make[@]}" binary
sp_phase_wait "reference venv"
sp_phase "dsp random check" "${make[@]}" dsp-random-check

sp_phase_wait "kubernetes binaries"
sp_phase_wait "localstack venv"
sp_phase "stack up" "${make[@]}" stack-up
sp_phase "make demo" "${make[@]}" demo
sp_phase_wait "helm"
sp_phase "stack suites" "${make[@]}" stack-test
sp_phase "kind suite" "${make[@]}" e2e-kind-optional

if $own_summary; then
    sp_phase_summary "$started"
fi
