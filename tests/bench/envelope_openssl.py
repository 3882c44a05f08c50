"""OpenSSL's AES-256-GCM decrypt (through Python `cryptography`, AESGCM.decrypt_into) on one
thread, for tests/bench/envelope.sh. Prints the same tab-separated lines as the Rust bench:
`name  size_bytes  best_GB/s  median_GB/s  runs`.

Usage: envelope_openssl.py SIZE_MIB...
       envelope_openssl.py --primitives SIZE_MIB...

With --primitives: OpenSSL's SHA-384 (hashlib) as the same GB/s lines, and one ECDSA P-384
verification of a prehashed message (`cryptography`) as a `name  0  best_us  median_us  runs`
line, the peers of the Rust bench's --primitives lines.
"""

import os
import sys
import time

import hashlib

import cryptography
from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_TIME = 2.0
MIN_RUNS = 5
FRAME = 4096
TAG = 16


def timed(run):
    run()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < MIN_RUNS or time.perf_counter() - start < MIN_TIME:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    return times


def measure(name, size, run):
    times = timed(run)
    gbps = lambda secs: size / secs / 1e9
    print(
        "%s\t%d\t%.3f\t%.3f\t%d"
        % (name, size, gbps(times[0]), gbps(times[len(times) // 2]), len(times)),
        flush=True,
    )


def primitives(sizes):
    version = backend.openssl_version_text()
    for mib in sizes:
        size = mib << 20
        message = (bytes(range(251)) * (size // 251 + 1))[:size]
        measure("SHA-384 OpenSSL (hashlib, %s)" % version, size,
                lambda: hashlib.sha384(message).digest())
    key = ec.generate_private_key(ec.SECP384R1())
    prehash = hashlib.sha384(b"header and body").digest()
    algorithm = ec.ECDSA(Prehashed(hashes.SHA384()))
    signature = key.sign(prehash, algorithm)
    public = key.public_key()
    times = timed(lambda: public.verify(signature, prehash, algorithm))
    print("ECDSA P-384 verify, prehashed: OpenSSL (cryptography %s)\t0\t%.1f\t%.1f\t%d"
          % (cryptography.__version__, times[0] * 1e6, times[len(times) // 2] * 1e6, len(times)),
          flush=True)


def main():
    if sys.argv[1] == "--primitives":
        primitives(map(int, sys.argv[2:]))
        return
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
