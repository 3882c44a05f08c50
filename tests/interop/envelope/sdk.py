"""The Python AWS Encryption SDK side of the envelope interop tests.

Runs a batch of jobs in one process (importing boto3 costs more than a job):

    sdk.py encrypt JOBS.json   each job: {"input", "output", "key_ids": [ARN, ...],
                               "suite": "0x0478" | "0x0578", "frame_length": N,
                               "context": {k: v}}
    sdk.py decrypt JOBS.json   each job: {"input", "output", "key_ids": [ARN, ...]}

KMS is reached through the standard AWS settings (AWS_ENDPOINT_URL, AWS_REGION, credentials),
so the same script works against LocalStack and AWS. Prints one JSON line per job:
{"ok": true, "suite": "0x0578", "frame_length": 4096, "context": {...}} or
{"ok": false, "error": "..."}; a failed job writes no output file. Exits non-zero only when
the batch itself cannot run.
"""

import json
import os
import sys

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy

SUITES = {
    "0x0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    "0x0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}

CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
SESSION = botocore.session.Session()


def provider(key_ids):
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=key_ids, botocore_session=SESSION
    )


def header_summary(header):
    return {
        "suite": "0x%04X" % header.algorithm.algorithm_id,
        "frame_length": header.frame_length,
        "context": dict(header.encryption_context),
    }


def encrypt(job):
    with open(job["input"], "rb") as f:
        plaintext = f.read()
    ciphertext, header = CLIENT.encrypt(
        source=plaintext,
        key_provider=provider(job["key_ids"]),
        encryption_context=job["context"],
        algorithm=SUITES[job["suite"]],
        frame_length=job["frame_length"],
    )
    with open(job["output"], "wb") as f:
        f.write(ciphertext)
    return header_summary(header)


def decrypt(job):
    with open(job["input"], "rb") as f:
        ciphertext = f.read()
    plaintext, header = CLIENT.decrypt(
        source=ciphertext, key_provider=provider(job["key_ids"])
    )
    with open(job["output"], "wb") as f:
        f.write(plaintext)
    return header_summary(header)


def main():
    mode, jobs_path = sys.argv[1], sys.argv[2]
    run = {"encrypt": encrypt, "decrypt": decrypt}[mode]
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        try:
            result = {"ok": True, **run(job)}
        except Exception as err:  # each job reports its own failure; the batch goes on
            if os.path.exists(job["output"]):
                os.remove(job["output"])
            result = {"ok": False, "error": "%s: %s" % (type(err).__name__, err)}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
