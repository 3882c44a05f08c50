"""The Python peer of the worker benchmark: the per-object flow as such pipelines are
written today, with the same parallelism as the worker.

  peer.py BUCKET PARTITION KMS_KEY_ARN PARALLELISM [--no-work]

Per object: boto3 get -> aws-encryption-sdk decrypt -> librosa.feature.mfcc -> put .npy ->
delete. With --no-work it makes the same S3 and KMS calls (get, kms:Decrypt of the data key,
put, delete) on kept connections but skips the message decryption and the DSP: the ceiling
LocalStack allows.
Prints the number of objects done.
"""

import io
import sys
from concurrent.futures import ThreadPoolExecutor

import aws_encryption_sdk
import boto3
import numpy as np
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

bucket, partition, arn, parallelism = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
no_work = "--no-work" in sys.argv
CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
KEYS = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
s3 = boto3.client("s3")
kms = boto3.client("kms")
if no_work:
    # The ceiling: LocalStack closes each connection unless the request asks to keep it
    # (as the worker's do); boto3 does not ask, so without this every call reconnects.
    def keep_alive(request, **_):
        request.headers["Connection"] = "keep-alive"

    for client in (s3, kms):
        client.meta.events.register("before-send", keep_alive)
raw = f"ingestion/raw/{partition}/"
if not no_work:
    import librosa
    import soundfile


def process(key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if no_work:
        header, _ = deserialize_header(io.BytesIO(body))
        edk = next(iter(header.encrypted_data_keys))
        context = dict(header.encryption_context)
        kms.decrypt(CiphertextBlob=edk.encrypted_data_key, EncryptionContext=context,
                    KeyId=arn)
        npy = b"\x93NUMPY" + bytes(20 * 313 * 4)
    else:
        plaintext, header = CLIENT.decrypt(source=body, key_provider=KEYS)
        assert header.encryption_context["securepipe:partition"] == partition
        y, sr = soundfile.read(io.BytesIO(plaintext), dtype="float32")
        out = io.BytesIO()
        np.save(out, librosa.feature.mfcc(y=y, sr=sr))
        npy = out.getvalue()
    s3.put_object(Bucket=bucket, Key=f"training/features/{partition}/{key[len(raw):-4]}.npy",
                  Body=npy)
    s3.delete_object(Bucket=bucket, Key=key)


keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix=raw) for o in page.get("Contents", [])]
with ThreadPoolExecutor(parallelism) as pool:
    list(pool.map(process, keys))
print(len(keys))
