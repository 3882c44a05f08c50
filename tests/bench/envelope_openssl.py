"""OpenSSL's AES-256-GCM decrypt (through Python `cryptography`, AESGCM.decrypt_into) on one
thread, for tests/bench/envelope.sh. Prints the same tab-separated lines as the Rust bench:
`name  size_bytes  best_GB/s  median_GB/s  runs`.

Usage: envelope_openssl.py SIZE_MIB...
"""

import os
import sys
import time

import cryptography
from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_TIME = 2.0
MIN_RUNS = 5
FRAME = 4096
TAG = 16


def measure(name, size, run):
    run()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < MIN_RUNS or time.perf_counter() - start < MIN_TIME:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    gbps = lambda secs: size / secs / 1e9
    print(
        "%s\t%d\t%.3f\t%.3f\t%d"
        % (name, size, gbps(times[0]), gbps(times[len(times) // 2]), len(times)),
        flush=True,
    )


def main():
    version = "%s, %s" % (cryptography.__version__, backend.openssl_version_text())
    aead = AESGCM(bytes([3]) * 32)
    nonce = bytes([1]) * 12
    for mib in map(int, sys.argv[1:]):
        size = mib << 20
        plaintext = bytes(i % 251 for i in range(251)) * (size // 251 + 1)
        plaintext = plaintext[:size]
        ciphertext = aead.encrypt(nonce, plaintext, b"")
        out = bytearray(size)

        def one_shot():
            aead.decrypt_into(nonce, ciphertext, b"", out)

        measure("OpenSSL one-shot decrypt_into (cryptography %s)" % version, size, one_shot)
        if out != plaintext:
            raise SystemExit("OpenSSL one-shot: wrong plaintext")

        # The same bytes as 4096-byte frames, one decrypt_into call per frame (Python's loop
        # overhead included): what a Python implementation of the framed format would pay.
        frames = [
            aead.encrypt(nonce, plaintext[i : i + FRAME], b"")
            for i in range(0, size, FRAME)
        ]
        view = memoryview(out)

        def framed():
            for n, frame in enumerate(frames):
                aead.decrypt_into(nonce, frame, b"", view[n * FRAME : n * FRAME + len(frame) - TAG])

        measure("OpenSSL decrypt_into per 4096-byte frame (Python loop)", size, framed)
        if out != plaintext:
            raise SystemExit("OpenSSL framed: wrong plaintext")


if __name__ == "__main__":
    main()
