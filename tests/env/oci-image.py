#!/usr/bin/env python3
"""Writes a one-layer OCI image archive (an OCI layout in a tar) without a Docker engine.

Reads a JSON spec on stdin:
  {"name": "docker.io/library/securepipe:local",     # io.containerd.image.name
   "out": "/abs/path/image.oci.tar",
   "files": [{"path": "usr/local/bin/x", "src": "/abs/x", "mode": 493},
             {"path": "etc/passwd", "content": "...", "mode": 420},
             {"path": "tmp", "type": "dir", "mode": 1023},
             {"path": "bin/sh", "type": "symlink", "target": "busybox"}],
   "config": {"User": "...", "Entrypoint": [...], "Cmd": [...], "Labels": {...}, ...}}

Everything is owned by root, parent directories are added (0755), timestamps are zero:
the same inputs give the same digests. The layer is an uncompressed tar (a valid OCI
layer media type): the image only travels to a local containerd, and compressing a
debug binary would cost more CPU than it saves. `ctr images import` reads the result.
"""

import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = 0


def tar_info(path, kind, mode):
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = EPOCH
    return info


def layer_bytes(files):
    """The layer tar, entries sorted by path, parents first."""
    entries = {}
    for f in files:
        path = f["path"].strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), {"type": "dir", "mode": 0o755})
        entries[path] = f
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            f = entries[path]
            kind = f.get("type", "file")
            if kind == "dir":
                tar.addfile(tar_info(path, tarfile.DIRTYPE, f.get("mode", 0o755)))
            elif kind == "symlink":
                info = tar_info(path, tarfile.SYMTYPE, 0o777)
                info.linkname = f["target"]
                tar.addfile(info)
            else:
                if "src" in f:
                    with open(f["src"], "rb") as src:
                        data = src.read()
                    mode = f.get("mode", os.stat(f["src"]).st_mode & 0o7777)
                else:
                    data = f["content"].encode()
                    mode = f.get("mode", 0o644)
                info = tar_info(path, tarfile.REGTYPE, mode)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def main():
    spec = json.load(sys.stdin)
    layer_digest, layer = blob(layer_bytes(spec["files"]))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": spec["config"],
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tests/env/oci-image.py"}],
    }
    config_digest, config_data = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_data),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_data = blob(json.dumps(manifest, sort_keys=True).encode())
    name = spec["name"]
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_data),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    out = spec["out"]
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(path, data):
            info = tar_info(path, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        tar.addfile(tar_info("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(tar_info("blobs/sha256", tarfile.DIRTYPE, 0o755))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in ((layer_digest, layer), (config_digest, config_data),
                             (manifest_digest, manifest_data)):
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    os.replace(tmp, out)
    print(f"{name} {manifest_digest} ({len(layer) // 1024} KiB layer) -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
