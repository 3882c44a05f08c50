"""Writes the worker benchmark's raw samples: N WAVs of speech-like audio (10 s unless
--seconds says otherwise, 16 kHz, 16-bit mono: harmonics at a syllable-rate envelope plus
noise), encrypted by the AWS Encryption SDK with its default suite (0x0578) and the partition
context, uploaded under ingestion/raw/<partition>/ for each partition given.

  samples.py [--seconds S] BUCKET KMS_KEY_ARN COUNT PARTITION...
"""

import io
import sys
import wave
from concurrent.futures import ThreadPoolExecutor

import aws_encryption_sdk
import boto3
import numpy as np
from aws_encryption_sdk.identifiers import CommitmentPolicy

args = sys.argv[1:]
SECONDS = 10.0
if args[:1] == ["--seconds"]:
    SECONDS, args = float(args[1]), args[2:]
bucket, arn, count, partitions = args[0], args[1], int(args[2]), args[3:]
RATE = 16_000
CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
KEYS = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
s3 = boto3.client("s3")


def speech(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * SECONDS)) / RATE
    f0 = 100 + 60 * rng.random() + 20 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(h * phase) / h for h in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * (3 + rng.random()) * t), 0, None) ** 2
    y = 0.25 * envelope * voiced + 0.01 * rng.standard_normal(t.size)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def upload(job):
    partition, i = job
    message, _ = CLIENT.encrypt(source=speech(i), key_provider=KEYS,
                                encryption_context={"securepipe:partition": partition})
    s3.put_object(Bucket=bucket, Key=f"ingestion/raw/{partition}/s{i:04d}.wav", Body=message)


with ThreadPoolExecutor(4) as pool:
    list(pool.map(upload, [(p, i) for p in partitions for i in range(count)]))
