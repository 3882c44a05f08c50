#!/usr/bin/env bash
# Assembles an image without a Docker engine, as an OCI archive in target/image/, and
# imports it into the local node when the node runs.
#
#   image.sh securepipe [BINARY]   the image the Dockerfile describes: the `securepipe`
#                                  binary (default target/release/securepipe), non-root
#                                  65532, CA certificates, entrypoint `securepipe`
#   image.sh probe BINARY          the suites' AWS probe (tests/examples/aws_probe.rs)
#                                  on busybox, whose `cat` and `sh` credential_process needs
#
# A dynamically linked binary (every Rust binary here links glibc) gets the shared
# libraries it loads copied from this machine, at their paths, like distroless/cc holds
# them. tests/stack/node.rs checks that the image and the Dockerfile agree on entrypoint,
# command, user, ports and labels.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node-lib.sh source-path=SCRIPTDIR
. "$SP_ENV_SRC/node-lib.sh"

kind="${1:-}"
out_dir="$SP_ROOT/target/image"
mkdir -p "$out_dir"

# JSON file entries for BINARY's shared libraries and its ELF interpreter.
shared_libraries() {
    ldd "$1" 2>/dev/null | awk '
        $2 == "=>" && $3 ~ /^\// { print $3 }
        $1 ~ /^\// { print $1 }' | sort -u |
        jq -R '{path: ., src: ., mode: 493}' | jq -s .
}

# distroless's passwd and group: root, and nonroot as 65532.
passwd_files() {
    jq -n '[
        {path: "etc/passwd", mode: 420,
         content: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
        {path: "etc/group", mode: 420, content: "root:x:0:\nnonroot:x:65532:\n"},
        {path: "etc/ssl/certs/ca-certificates.crt", src: "/etc/ssl/certs/ca-certificates.crt", mode: 420},
        {path: "home/nonroot", type: "dir", mode: 448},
        {path: "tmp", type: "dir", mode: 1023}]'
}

case "$kind" in
    securepipe)
        binary="${2:-$SP_ROOT/target/release/securepipe}"
        name="$SP_IMAGE"
        archive="$out_dir/securepipe.oci.tar"
        version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$SP_ROOT/Cargo.toml" | head -1)"
        # The Dockerfile's LABEL, USER, EXPOSE, ENTRYPOINT and CMD, and distroless's env.
        config="$(jq -n --arg version "$version" '{
            User: "65532:65532",
            Entrypoint: ["/usr/local/bin/securepipe"],
            Cmd: ["operator"],
            ExposedPorts: {"8080/tcp": {}},
            Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            WorkingDir: "/home/nonroot",
            Labels: {
                "org.opencontainers.image.title": "securepipe",
                "org.opencontainers.image.description": "Kubernetes operator for secure ML training data pipelines: prefix-scoped STS credentials, extract-and-shred workers, S3 retention as code",
                "org.opencontainers.image.source": "https://github.com/securepipe/securepipe",
                "org.opencontainers.image.url": "https://github.com/securepipe/securepipe",
                "org.opencontainers.image.licenses": "Apache-2.0",
                "org.opencontainers.image.version": $version}}')"
        files="$(jq -n --arg src "$binary" '[{path: "usr/local/bin/securepipe", src: $src, mode: 493}]')"
        ;;
    probe)
        binary="${2:?usage: image.sh probe BINARY}"
        name="docker.io/library/securepipe-probe:local"
        archive="$out_dir/probe.oci.tar"
        config='{"User": "65532:65532", "Entrypoint": ["/usr/local/bin/aws_probe"], "Env": ["PATH=/bin"]}'
        files="$(/bin/busybox --list | jq -R '{path: ("bin/" + .), type: "symlink", target: "busybox"}' |
            jq -s --arg src "$binary" 'map(select(.path != "bin/busybox")) +
                [{path: "bin/busybox", src: "/bin/busybox", mode: 493},
                 {path: "usr/local/bin/aws_probe", src: $src, mode: 493}]')"
        ;;
    *) sp_die "usage: image.sh securepipe [BINARY] | image.sh probe BINARY" ;;
esac
[ -x "$binary" ] || sp_die "$binary not found: build it first (make image builds the release binary)"

jq -n --arg name "$name" --arg out "$archive" --argjson config "$config" \
    --argjson files "$files" --argjson libs "$(shared_libraries "$binary")" \
    --argjson base "$(passwd_files)" \
    '{name: $name, out: $out, config: $config, files: ($base + $libs + $files)}' |
    python3 "$SP_ENV_SRC/oci-image.py"

if [ -S "$SP_CONTAINERD_SOCK" ] && sp_ctr version >/dev/null 2>&1; then
    sp_ctr images import "$archive" >/dev/null
    sp_log "imported $name into the node"
else
    sp_log "the node is not running: $archive not imported (tests/env/up.sh starts it)"
fi
