//! `securepipe worker` against LocalStack: samples encrypted by the Python AWS Encryption SDK
//! and by `securepipe encrypt` become features equal to `securepipe features` (and within
//! 1e-3 of librosa), every raw version is deleted, bad samples are quarantined with their
//! reason, a crash at any failpoint converges on a re-run, a cut link fails the run without
//! losing anything, and the logs hold no plaintext, data key or credential.
//!
//! The crash and link tests need the debug binary built with the failpoints feature
//! (`cargo build -p securepipe-cli --features securepipe-cli/failpoints`; `make test` does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use securepipe_envelope::Header;
use securepipe_tests::audio::{cli_encrypt, wav};
use securepipe_tests::aws_link::{AwsLink, Ending};
use securepipe_tests::operator::securepipe_binary;
use securepipe_tests::repo_root;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The exit status of a worker stopped at a failpoint (`securepipe_worker::failpoint`).
const CRASH_EXIT_CODE: i32 = 86;
const FAILPOINTS: [&str; 8] = [
    "worker::after-get",
    "worker::after-decrypt",
    "worker::after-features",
    "worker::after-put",
    "worker::after-verify",
    "worker::after-delete-noncurrent",
    "worker::after-delete",
    "worker::before-attestation",
];
/// The worker's credentials in these tests: LocalStack accepts any, and the logs must not
/// contain this one.
const WORKER_SECRET: &str = "wJalrXUtnFEMI-securepipe-worker-secret-7f3a9c";

struct Stack {
    endpoint: String,
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    dir: PathBuf,
}

async fn stack(name: &str) -> Stack {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: start the local stack with tests/env/up.sh and source target/env/env.sh (make test does both)")
    });
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let dir = std::env::temp_dir().join(format!("securepipe-worker-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    Stack {
        endpoint,
        s3,
        kms: aws_sdk_kms::Client::new(&config),
        dir,
    }
}

static BUCKETS: AtomicU32 = AtomicU32::new(0);

impl Stack {
    async fn bucket(&self, versioned: bool) -> String {
        let name = format!(
            "sp-worker-{}-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis()
                % 1_000_000
        );
        self.s3
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|err| panic!("create bucket {name}: {err:?}"));
        if versioned {
            self.s3
                .put_bucket_versioning()
                .bucket(&name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("enable versioning");
        }
        name
    }

    async fn key(&self, purpose: &str) -> String {
        let created = self
            .kms
            .create_key()
            .description(format!("securepipe worker suite: {purpose}"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("KMS CreateKey: {err:?}"));
        created
            .key_metadata()
            .and_then(|m| m.arn())
            .expect("CreateKey returned no ARN")
            .to_owned()
    }

    /// Puts `bytes` and returns the version id.
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> String {
        let out = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key}: {err:?}"));
        out.version_id().unwrap_or("null").to_owned()
    }

    /// A one-second 16 kHz PCM16 sample `name`: its plaintext file, and the message
    /// `securepipe encrypt` makes of it under `arn` for `partition`.
    async fn sample(
        &self,
        arn: &str,
        partition: &str,
        name: &str,
        seed: u32,
    ) -> (PathBuf, Vec<u8>) {
        let plain = self.dir.join(format!("{name}.wav"));
        std::fs::write(&plain, wav(16_000, 1, 16, false, 1.0, seed)).expect("wav");
        let message = self.dir.join(format!("{name}.msg"));
        cli_encrypt(arn, Some(partition), &plain, &message).await;
        (plain, std::fs::read(&message).expect("msg"))
    }

    /// Puts `count` samples `s0.wav`, `s1.wav`, ... under the partition's raw folder;
    /// returns each key with its version.
    async fn raw_samples(
        &self,
        bucket: &str,
        arn: &str,
        partition: &str,
        count: u32,
        seed: u32,
    ) -> BTreeMap<String, Vec<String>> {
        let mut originals = BTreeMap::new();
        for i in 0..count {
            let (_, message) = self
                .sample(arn, partition, &format!("s{i}"), seed + i)
                .await;
            let key = format!("ingestion/raw/{partition}/s{i}.wav");
            let version = self.put(bucket, &key, message).await;
            originals.insert(key, vec![version]);
        }
        originals
    }

    /// A link to LocalStack that the test can cut or break.
    async fn link(&self) -> AwsLink {
        let upstream = self
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        AwsLink::start(upstream).await
    }

    /// Every (key, version id, is delete marker) under `prefix`.
    async fn versions(&self, bucket: &str, prefix: &str) -> Vec<(String, String, bool)> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list versions");
        let mut all: Vec<(String, String, bool)> = out
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or("null").to_owned(),
                    false,
                )
            })
            .chain(out.delete_markers().iter().map(|m| {
                (
                    m.key().unwrap_or_default().to_owned(),
                    m.version_id().unwrap_or("null").to_owned(),
                    true,
                )
            }))
            .collect();
        all.sort();
        all
    }

    async fn get(&self, bucket: &str, key: &str, version: Option<&str>) -> Option<Vec<u8>> {
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.expect("body").to_vec())
    }

    async fn metadata(&self, bucket: &str, key: &str) -> Option<BTreeMap<String, String>> {
        let out = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(
            out.metadata()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        )
    }

    async fn tags(&self, bucket: &str, key: &str, version: &str) -> BTreeMap<String, String> {
        let out = self
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .expect("get tags");
        out.tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    /// The data key of an ESDK message, unwrapped with the test's own KMS access.
    async fn data_key(&self, message: &[u8]) -> Vec<u8> {
        let (header, _) = Header::parse(message).expect("header");
        let edk = &header.encrypted_data_keys()[0];
        let context: std::collections::HashMap<String, String> = header
            .encryption_context()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(edk.ciphertext()))
            .set_encryption_context(Some(context))
            .send()
            .await
            .expect("KMS Decrypt of the data key");
        out.plaintext().expect("plaintext").as_ref().to_vec()
    }
}

/// `securepipe encrypt` with the partition context (or none).
/// The interpreter of the reference-tools venv (librosa, the AWS Encryption SDK), installed on
/// first use by tests/reference/install.sh.
async fn reference_python() -> PathBuf {
    let installed = tokio::process::Command::new(repo_root().join("tests/reference/install.sh"))
        .output()
        .await
        .expect("run tests/reference/install.sh");
    assert!(
        installed.status.success(),
        "tests/reference/install.sh: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&installed.stdout).trim()).join("bin/python")
}

/// The Python AWS Encryption SDK (tests/interop/envelope/sdk.py) encrypting a batch.
async fn python_encrypt(jobs: &[Value], dir: &Path) {
    let python = reference_python().await;
    let jobs_file = dir.join("python-jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(jobs).expect("jobs")).expect("write jobs");
    let out = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/interop/envelope/sdk.py"))
        .arg("encrypt")
        .arg(&jobs_file)
        .output()
        .await
        .expect("run sdk.py");
    assert!(
        out.status.success(),
        "sdk.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let result: Value = serde_json::from_str(line).expect("sdk.py line");
        assert_eq!(result["ok"], true, "Python encrypt: {result}");
    }
}

/// `securepipe features` on a plaintext WAV: what the worker's object must equal.
async fn expected_features(plain: &Path) -> Vec<u8> {
    let out_path = plain.with_extension("expected.npy");
    let output = tokio::process::Command::new(securepipe_binary())
        .args(["features", "--input"])
        .arg(plain)
        .arg("--output")
        .arg(&out_path)
        .output()
        .await
        .expect("run securepipe features");
    assert!(
        output.status.success(),
        "securepipe features: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out_path).expect("expected npy")
}

/// One worker run.
struct Run {
    code: Option<i32>,
    summary: Value,
    logs: String,
}

async fn run_worker(
    endpoint: &str,
    bucket: &str,
    partition: &str,
    arns: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = tokio::process::Command::new(securepipe_binary());
    command
        .args([
            "worker",
            "--bucket",
            bucket,
            "--region",
            "us-east-1",
            "--partition",
            partition,
        ])
        .args([
            "--s3-force-path-style",
            "--run-id",
            &format!("run-{}", jiff_free_now()),
        ])
        .args(arns.iter().flat_map(|arn| ["--kms-key-arn", arn]))
        .args(extra)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", WORKER_SECRET)
        .env("RUST_LOG", "debug")
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("worker finished within 240 s")
        .expect("run securepipe worker");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code(),
        summary,
        logs,
    }
}

/// Nanoseconds since the epoch, for unique run ids.
fn jiff_free_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `logs` contain any of 16 spread 24-byte pieces of `secret` (the whole key for
/// short secrets), as raw bytes, lowercase hex or base64.
fn leaks(logs: &str, secret: &[u8]) -> bool {
    use base64::Engine as _;
    let step = (secret.len() / 16).max(24);
    let raw = logs.as_bytes();
    secret.chunks(step).filter(|c| c.len() >= 24).any(|chunk| {
        let piece = &chunk[..24];
        let hex: String = piece.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&piece[..18]);
        memmem(raw, piece) || logs.contains(&hex) || logs.contains(&b64)
    })
}

fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Path below the partition, rate, channels, bits, float, and the Python SDK suite (or
/// `None`: `securepipe encrypt`).
type SampleSpec = (&'static str, u32, u16, u16, bool, Option<&'static str>);

/// A plaintext sample in the raw prefix.
struct Sample {
    key: String,
    plain: PathBuf,
    expected: Vec<u8>,
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn samples_become_features_and_every_raw_version_is_deleted() {
    let stack = stack("main").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("allowed").await;
    let partition = "voice-1";
    let raw = format!("ingestion/raw/{partition}/");
    // (path below the partition, rate, channels, bits, float, encrypted by Python?)
    let specs: [SampleSpec; 4] = [
        ("py/a.wav", 16_000, 1, 16, false, Some("0x0578")),
        ("py/deep/nested/b.wav", 22_050, 2, 24, false, Some("0x0478")),
        ("cli/c.wav", 8_000, 1, 32, true, None),
        ("cli/x/d.wav.enc", 44_100, 1, 8, false, None),
    ];
    let mut samples = Vec::new();
    let mut python_jobs = Vec::new();
    for (i, (path, rate, channels, bits, float, python)) in specs.iter().enumerate() {
        let plain = stack.dir.join(format!("{i}.wav"));
        std::fs::write(&plain, wav(*rate, *channels, *bits, *float, 2.0, i as u32)).expect("wav");
        let message = stack.dir.join(format!("{i}.msg"));
        match python {
            Some(suite) => python_jobs.push(json!({
                "input": plain, "output": message, "key_ids": [arn], "suite": suite,
                "frame_length": 4096, "context": {"securepipe:partition": partition},
            })),
            None => cli_encrypt(&arn, Some(partition), &plain, &message).await,
        }
        samples.push(Sample {
            key: format!("{raw}{path}"),
            expected: expected_features(&plain).await,
            plain,
        });
    }
    python_encrypt(&python_jobs, &stack.dir).await;
    let mut messages = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let message = std::fs::read(stack.dir.join(format!("{i}.msg"))).expect("message");
        stack.put(&bucket, &sample.key, message.clone()).await;
        messages.push(message);
    }
    // One key with three versions and a delete marker between them; the last is current.
    let plain = stack.dir.join("v.wav");
    std::fs::write(&plain, wav(16_000, 1, 16, false, 1.5, 9)).expect("wav");
    let versions_key = format!("{raw}versions.wav");
    for v in 0..3 {
        let message = stack.dir.join(format!("v{v}.msg"));
        cli_encrypt(&arn, Some(partition), &plain, &message).await;
        if v == 2 {
            stack
                .s3
                .delete_object()
                .bucket(&bucket)
                .key(&versions_key)
                .send()
                .await
                .expect("delete marker");
        }
        stack
            .put(
                &bucket,
                &versions_key,
                std::fs::read(&message).expect("msg"),
            )
            .await;
    }
    let before = stack.versions(&bucket, &versions_key).await;
    assert_eq!(before.iter().filter(|v| v.2).count(), 1, "{before:?}");
    assert_eq!(before.len(), 4, "three versions and a delete marker");
    samples.push(Sample {
        key: versions_key.clone(),
        expected: expected_features(&plain).await,
        plain,
    });

    let run = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(
        run.code,
        Some(0),
        "worker failed: {}\n{}",
        run.summary,
        run.logs
    );
    let summary = &run.summary;
    assert_eq!(summary["listed"], 5, "{summary}");
    assert_eq!(summary["shredded"], 5, "{summary}");
    assert_eq!(summary["alreadyDone"], 0, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["quarantined"], json!({}), "{summary}");
    assert!(
        stack.versions(&bucket, &raw).await.is_empty(),
        "raw versions left: {:?}",
        stack.versions(&bucket, &raw).await
    );

    let mut librosa_jobs = Vec::new();
    for sample in &samples {
        let below = sample.key.strip_prefix(&raw).expect("under raw");
        let stem = below.rsplit_once('.').map_or(below, |(stem, _)| stem);
        let feature_key = format!("training/features/{partition}/{stem}.npy");
        let stored = stack
            .get(&bucket, &feature_key, None)
            .await
            .unwrap_or_else(|| panic!("no features at {feature_key}"));
        assert!(
            stored == sample.expected,
            "{feature_key} differs from `securepipe features`"
        );
        let meta = stack.metadata(&bucket, &feature_key).await.expect("head");
        let plain = std::fs::read(&sample.plain).expect("plain");
        assert_eq!(
            meta["securepipe-plaintext-sha256"],
            sha256_hex(&plain),
            "{feature_key}"
        );
        assert_eq!(meta["securepipe-feature-kind"], "mfcc");
        assert_eq!(meta["securepipe-source-key"], sample.key);
        let npy = stack
            .dir
            .join(format!("{}.npy", sha256_hex(feature_key.as_bytes())));
        std::fs::write(&npy, &stored).expect("npy");
        librosa_jobs.push(json!({"wav": sample.plain, "npy": npy, "kind": "mfcc"}));
    }
    librosa_check(&librosa_jobs, &stack.dir).await;

    let attestation_key = summary["attestationKey"].as_str().expect("attestation key");
    assert!(
        attestation_key.starts_with(&format!("audit/{partition}/run-")),
        "{attestation_key}"
    );
    let document: Value = serde_json::from_slice(
        &stack
            .get(&bucket, attestation_key, None)
            .await
            .expect("attestation"),
    )
    .expect("attestation JSON");
    let attested: Vec<&str> = document["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["sourceKey"].as_str().expect("sourceKey"))
        .collect();
    let mut keys: Vec<&str> = samples.iter().map(|s| s.key.as_str()).collect();
    keys.sort();
    assert_eq!(attested, keys);
    let versioned = document["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .find(|s| s["sourceKey"] == versions_key.as_str())
        .expect("versions.wav attested");
    let mut deleted: Vec<String> = versioned["versionsDeleted"]
        .as_array()
        .expect("versionsDeleted")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    deleted.sort();
    let mut expected_deleted: Vec<String> = before.iter().map(|v| v.1.clone()).collect();
    expected_deleted.sort();
    assert_eq!(deleted, expected_deleted, "every version and the marker");

    // Logs (at debug level) hold no plaintext, data key or credential.
    assert!(
        !run.logs.contains(WORKER_SECRET),
        "the secret access key is in the logs"
    );
    for sample in &samples {
        let plain = std::fs::read(&sample.plain).expect("plain");
        assert!(
            !leaks(&run.logs, &plain[44..]),
            "plaintext of {} in the logs",
            sample.key
        );
    }
    for message in &messages {
        let data_key = stack.data_key(message).await;
        assert!(!leaks(&run.logs, &data_key), "a data key is in the logs");
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data_key);
        assert!(
            !run.logs.contains(&b64),
            "a data key (base64) is in the logs"
        );
    }
    assert!(
        run.logs.contains("shredded"),
        "the logs name what happened:\n{}",
        run.logs
    );

    let again = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(again.code, Some(0), "{}", again.logs);
    assert_eq!(again.summary["listed"], 0, "{}", again.summary);
}

async fn librosa_check(jobs: &[Value], dir: &Path) {
    let python = reference_python().await;
    let jobs_file = dir.join("librosa-jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(jobs).expect("jobs")).expect("write jobs");
    let out = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/stack/worker/librosa_check.py"))
        .arg(&jobs_file)
        .output()
        .await
        .expect("run librosa_check.py");
    assert!(
        out.status.success(),
        "features differ from librosa by more than 1e-3:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        jobs.len()
    );
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn bad_samples_are_quarantined_with_their_reason_and_kept() {
    let stack = stack("quarantine").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("allowed").await;
    let other_arn = stack.key("not allowed").await;
    let partition = "q-1";
    let raw = format!("ingestion/raw/{partition}/");
    let dir = &stack.dir;
    let plain = dir.join("good.wav");
    std::fs::write(&plain, wav(16_000, 1, 16, false, 1.0, 1)).expect("wav");
    let encrypt =
        |name: &'static str, key: String, context: Option<&'static str>, input: PathBuf| {
            let out = dir.join(name);
            async move {
                cli_encrypt(&key, context, &input, &out).await;
                std::fs::read(&out).expect("message")
            }
        };
    let good = encrypt("good.msg", arn.clone(), Some(partition), plain.clone()).await;
    let mut tampered = good.clone();
    let at = tampered.len() - 200;
    tampered[at] ^= 0x01;
    let truncated = good[..good.len() / 2].to_vec();
    let other_partition = encrypt("other.msg", arn.clone(), Some("q-2"), plain.clone()).await;
    let no_context = encrypt("none.msg", arn.clone(), None, plain.clone()).await;
    let other_key = encrypt("key.msg", other_arn.clone(), Some(partition), plain.clone()).await;
    let random: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let text_path = dir.join("notes.txt");
    std::fs::write(
        &text_path,
        "these are meeting notes, not audio\n".repeat(50),
    )
    .expect("text");
    let text = encrypt("text.msg", arn.clone(), Some(partition), text_path).await;
    let big_plain = dir.join("big.wav");
    std::fs::write(&big_plain, wav(48_000, 2, 32, true, 2.0, 2)).expect("wav");
    let big = encrypt("big.msg", arn.clone(), Some(partition), big_plain).await;
    assert!(good.len() < 100_000 && big.len() > 400_000);

    let bad: [(&str, Vec<u8>, &str); 8] = [
        ("tampered.wav", tampered, "authentication-failed"),
        ("truncated.wav", truncated, "truncated"),
        ("other-partition.wav", other_partition, "partition-mismatch"),
        ("no-context.wav", no_context, "partition-missing"),
        ("other-key.wav", other_key, "key-not-allowed"),
        ("random.bin", random, "not-encrypted"),
        ("notes/text.txt", text, "not-audio"),
        ("big.wav", big, "too-large"),
    ];
    let mut versions = BTreeMap::new();
    for (name, bytes, _) in &bad {
        let key = format!("{raw}{name}");
        versions.insert(key.clone(), stack.put(&bucket, &key, bytes.clone()).await);
    }
    stack.put(&bucket, &format!("{raw}good.wav"), good).await;

    let args = ["--max-object-bytes", "400000"];
    let run = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &args, &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.summary, run.logs);
    let mut reasons = serde_json::Map::new();
    for (_, _, reason) in &bad {
        reasons.insert((*reason).to_owned(), json!(1));
    }
    assert_eq!(
        run.summary["quarantined"],
        Value::Object(reasons),
        "{}",
        run.summary
    );
    assert_eq!(run.summary["shredded"], 1, "{}", run.summary);
    assert_eq!(run.summary["listed"], 9, "{}", run.summary);
    for (name, bytes, reason) in &bad {
        let key = format!("{raw}{name}");
        let version = &versions[&key];
        let tags = stack.tags(&bucket, &key, version).await;
        assert_eq!(
            tags.get("securepipe.io/quarantine").map(String::as_str),
            Some(*reason),
            "{key}"
        );
        let stored = stack
            .get(&bucket, &key, Some(version))
            .await
            .expect("still there");
        assert!(stored == *bytes, "{key}: bytes changed");
        assert_eq!(
            stack.versions(&bucket, &key).await.len(),
            1,
            "{key}: versions kept"
        );
        assert!(
            run.logs.contains(&key) && run.logs.contains(reason),
            "logs name {key} and {reason}"
        );
    }
    assert!(
        stack
            .versions(&bucket, &format!("{raw}good.wav"))
            .await
            .is_empty()
    );

    let again = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &args, &[]).await;
    assert_eq!(again.code, Some(0), "{}", again.logs);
    assert_eq!(again.summary["stillQuarantined"], 8, "{}", again.summary);
    assert_eq!(again.summary["quarantined"], json!({}), "{}", again.summary);
}

/// Every raw key either keeps all its versions or has verified features for its current
/// version (the metadata names it and S3's checksum matches the recorded one).
async fn nothing_lost(
    stack: &Stack,
    bucket: &str,
    partition: &str,
    originals: &BTreeMap<String, Vec<String>>,
) {
    for (key, versions) in originals {
        let left: Vec<String> = stack
            .versions(bucket, key)
            .await
            .into_iter()
            .filter(|v| v.0 == *key && !v.2)
            .map(|v| v.1)
            .collect();
        if versions.iter().all(|v| left.contains(v)) {
            continue;
        }
        let current = versions.last().expect("a version");
        let name = key.rsplit('/').next().expect("name");
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        let feature_key = format!("training/features/{partition}/{stem}.npy");
        let head = stack
            .s3
            .head_object()
            .bucket(bucket)
            .key(&feature_key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_or_else(|_| panic!("{key} lost versions without features at {feature_key}"));
        let meta = head.metadata().cloned().unwrap_or_default();
        assert_eq!(
            meta.get("securepipe-source-version-id"),
            Some(current),
            "{key}"
        );
        assert_eq!(
            head.checksum_sha256(),
            meta.get("securepipe-features-sha256").map(String::as_str),
            "{key}: features do not verify"
        );
        assert!(
            left.is_empty() || left.contains(current),
            "{key}: the current version went before the older ones ({left:?})"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_crash_at_any_step_converges_on_a_rerun() {
    let stack = stack("crash").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("crash").await;
    let plains: Vec<PathBuf> = (0..3u32)
        .map(|i| {
            let path = stack.dir.join(format!("{i}.wav"));
            std::fs::write(&path, wav(16_000, 1, 16, false, 1.0, 20 + i)).expect("wav");
            path
        })
        .collect();
    let mut expected = Vec::new();
    for plain in &plains {
        expected.push(expected_features(plain).await);
    }
    for (fp_index, failpoint) in FAILPOINTS.iter().enumerate() {
        let partition = format!("crash-{fp_index}");
        let raw = format!("ingestion/raw/{partition}/");
        // s0 has an older version and a delete marker before its current version.
        let mut originals: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, plain) in plains.iter().enumerate() {
            let key = format!("{raw}s{i}.wav");
            let rounds = if i == 0 { 2 } else { 1 };
            for round in 0..rounds {
                let message = stack.dir.join(format!("{fp_index}-{i}-{round}.msg"));
                cli_encrypt(&arn, Some(&partition), plain, &message).await;
                if round == 1 {
                    stack
                        .s3
                        .delete_object()
                        .bucket(&bucket)
                        .key(&key)
                        .send()
                        .await
                        .expect("marker");
                }
                let version = stack
                    .put(&bucket, &key, std::fs::read(&message).expect("msg"))
                    .await;
                originals.entry(key.clone()).or_default().push(version);
            }
        }
        let crash = format!("{failpoint}=return");
        let run = run_worker(
            &stack.endpoint,
            &bucket,
            &partition,
            &[&arn],
            &["--parallelism", "1"],
            &[("FAILPOINTS", &crash)],
        )
        .await;
        assert_eq!(
            run.code,
            Some(CRASH_EXIT_CODE),
            "{failpoint}: the worker did not stop there (is target/debug/securepipe built with --features securepipe-cli/failpoints?)\n{}",
            run.logs
        );
        nothing_lost(&stack, &bucket, &partition, &originals).await;

        let rerun = run_worker(&stack.endpoint, &bucket, &partition, &[&arn], &[], &[]).await;
        assert_eq!(
            rerun.code,
            Some(0),
            "{failpoint}: re-run failed: {}\n{}",
            rerun.summary,
            rerun.logs
        );
        // One sample at a time, and the three samples make one deletion batch at the end.
        let (listed, already_done) = match *failpoint {
            "worker::after-put" | "worker::after-verify" => (3, 1),
            "worker::after-delete-noncurrent" => (3, 3),
            "worker::after-delete" | "worker::before-attestation" => (0, 0),
            _ => (3, 0),
        };
        assert_eq!(
            rerun.summary["listed"], listed,
            "{failpoint}: {}",
            rerun.summary
        );
        assert_eq!(
            rerun.summary["alreadyDone"], already_done,
            "{failpoint}: {}",
            rerun.summary
        );
        assert!(
            stack.versions(&bucket, &raw).await.is_empty(),
            "{failpoint}: raw versions left"
        );
        for (i, want) in expected.iter().enumerate() {
            let key = format!("training/features/{partition}/s{i}.npy");
            let stored = stack
                .get(&bucket, &key, None)
                .await
                .unwrap_or_else(|| panic!("{failpoint}: no {key}"));
            assert!(
                stored == *want,
                "{failpoint}: {key} differs from a clean run"
            );
        }
    }
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_cut_link_fails_the_run_without_loss_and_a_rerun_finishes() {
    let stack = stack("link").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("link").await;
    let partition = "link-1";
    let raw = format!("ingestion/raw/{partition}/");
    let originals = stack.raw_samples(&bucket, &arn, partition, 4, 40).await;
    let link = stack.link().await;
    // The first sample pauses after its put; the link is cut while it waits.
    let endpoint = link.endpoint_url();
    let arns = [arn.as_str()];
    let worker = run_worker(
        &endpoint,
        &bucket,
        partition,
        &arns,
        &["--parallelism", "1"],
        &[("FAILPOINTS", "worker::after-put=1*sleep(3000)")],
    );
    let cutter = async {
        securepipe_tests::eventually(
            Duration::from_secs(60),
            "the first feature object",
            || async {
                let listed = stack
                    .s3
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(format!("training/features/{partition}/"))
                    .send()
                    .await
                    .ok()?;
                (listed.key_count().unwrap_or(0) > 0).then_some(())
            },
        )
        .await;
        link.cut();
    };
    let (run, ()) = tokio::join!(worker, cutter);
    assert_eq!(
        run.code,
        Some(1),
        "a cut link must fail the run: {}\n{}",
        run.summary,
        run.logs
    );
    assert!(
        run.summary["failed"].as_u64().unwrap_or(0) > 0,
        "{}",
        run.summary
    );
    assert_eq!(
        run.summary["quarantined"],
        json!({}),
        "outages are never quarantined: {}",
        run.summary
    );
    nothing_lost(&stack, &bucket, partition, &originals).await;
    assert_eq!(
        stack.versions(&bucket, &raw).await.len(),
        4,
        "nothing was deleted"
    );

    link.restore();
    let rerun = run_worker(&link.endpoint_url(), &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(rerun.code, Some(0), "{}\n{}", rerun.summary, rerun.logs);
    assert_eq!(rerun.summary["shredded"], 4, "{}", rerun.summary);
    assert_eq!(rerun.summary["alreadyDone"], 1, "{}", rerun.summary);
    assert!(stack.versions(&bucket, &raw).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_download_broken_mid_body_fails_the_sample_and_never_quarantines_it() {
    let stack = stack("cut-body").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("cut-body").await;
    let partition = "cut-body-1";
    let raw = format!("ingestion/raw/{partition}/");
    let originals = stack.raw_samples(&bucket, &arn, partition, 3, 80).await;
    let link = stack.link().await;
    // 16 KiB into a 32 KB sample, some frames in: the decryptor has released plaintext when
    // the body breaks. s0's connection closes there; s1's stays open and goes quiet (the
    // SDK's stalled stream protection ends it after its grace period, ~5 s); s2 is whole.
    link.break_downloads(&format!("{raw}s0.wav"), 16 * 1024, Ending::Close);
    link.break_downloads(&format!("{raw}s1.wav"), 16 * 1024, Ending::Stall);
    let run = run_worker(&link.endpoint_url(), &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.summary, run.logs);
    assert_eq!(run.summary["failed"], 2, "{}", run.summary);
    assert_eq!(run.summary["shredded"], 1, "{}", run.summary);
    assert_eq!(
        run.summary["quarantined"],
        json!({}),
        "a broken download is not a bad message: {}",
        run.summary
    );
    for name in ["s0", "s1"] {
        let key = format!("{raw}{name}.wav");
        let version = &originals[&key][0];
        assert!(
            stack.tags(&bucket, &key, version).await.is_empty(),
            "no quarantine tag on {key}"
        );
    }
    nothing_lost(&stack, &bucket, partition, &originals).await;

    link.forward_all();
    let rerun = run_worker(&link.endpoint_url(), &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(rerun.code, Some(0), "{}\n{}", rerun.summary, rerun.logs);
    assert_eq!(rerun.summary["shredded"], 2, "{}", rerun.summary);
    assert!(stack.versions(&bucket, &raw).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn an_unversioned_bucket_is_shredded_with_pinned_etags() {
    let stack = stack("unversioned").await;
    let bucket = stack.bucket(false).await;
    let arn = stack.key("unversioned").await;
    let partition = "plain-1";
    let raw = format!("ingestion/raw/{partition}/");
    let mut expected = Vec::new();
    for i in 0..2u32 {
        let (plain, message) = stack
            .sample(&arn, partition, &format!("s{i}"), 60 + i)
            .await;
        stack.put(&bucket, &format!("{raw}s{i}.wav"), message).await;
        expected.push(expected_features(&plain).await);
    }
    let run = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.summary, run.logs);
    assert_eq!(run.summary["shredded"], 2, "{}", run.summary);
    assert!(stack.versions(&bucket, &raw).await.is_empty());
    for (i, want) in expected.iter().enumerate() {
        let stored = stack
            .get(
                &bucket,
                &format!("training/features/{partition}/s{i}.npy"),
                None,
            )
            .await
            .expect("features");
        assert!(stored == *want);
    }
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_version_written_during_the_run_is_left_for_the_next_run() {
    let stack = stack("newer").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("newer").await;
    let partition = "newer-1";
    let raw = format!("ingestion/raw/{partition}/");
    let key = format!("{raw}s.wav");
    let feature_key = format!("training/features/{partition}/s.npy");
    let mut messages = Vec::new();
    let mut expected = Vec::new();
    for i in 0..2u32 {
        let (plain, message) = stack
            .sample(&arn, partition, &format!("v{i}"), 80 + i)
            .await;
        messages.push(message);
        expected.push(expected_features(&plain).await);
    }
    let first = stack.put(&bucket, &key, messages[0].clone()).await;

    // The worker pauses once its features are verified; the ingestion side writes a newer
    // version of the same key meanwhile.
    let arns = [arn.as_str()];
    let worker = run_worker(
        &stack.endpoint,
        &bucket,
        partition,
        &arns,
        &[],
        &[("FAILPOINTS", "worker::after-verify=1*sleep(3000)")],
    );
    let writer = async {
        securepipe_tests::eventually(Duration::from_secs(60), "the feature object", || {
            stack.metadata(&bucket, &feature_key)
        })
        .await;
        stack.put(&bucket, &key, messages[1].clone()).await
    };
    let (run, second) = tokio::join!(worker, writer);
    assert_eq!(run.code, Some(0), "{}\n{}", run.summary, run.logs);
    assert_eq!(run.summary["shredded"], 1, "{}", run.summary);
    let left = stack.versions(&bucket, &raw).await;
    assert_eq!(
        left.iter().map(|(_, v, _)| v.as_str()).collect::<Vec<_>>(),
        [second.as_str()],
        "only the version processed ({first}) is deleted; the newer one stays"
    );

    let rerun = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(rerun.code, Some(0), "{}\n{}", rerun.summary, rerun.logs);
    assert_eq!(rerun.summary["shredded"], 1, "{}", rerun.summary);
    assert_eq!(rerun.summary["alreadyDone"], 0, "{}", rerun.summary);
    assert!(stack.versions(&bucket, &raw).await.is_empty());
    let metadata = stack
        .metadata(&bucket, &feature_key)
        .await
        .expect("features");
    assert_eq!(
        metadata.get("securepipe-source-version-id"),
        Some(&second),
        "the features now name the newer version"
    );
    let stored = stack
        .get(&bucket, &feature_key, None)
        .await
        .expect("features");
    assert!(stored == expected[1], "the features are the newer sample's");
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn features_beyond_the_bounded_feature_listing_are_still_found() {
    let stack = stack("listing").await;
    let bucket = stack.bucket(true).await;
    let arn = stack.key("listing").await;
    let partition = "listing-1";
    let raw = format!("ingestion/raw/{partition}/");
    let features = format!("training/features/{partition}/");
    let mut expected = BTreeMap::new();
    let mut put_sample = async |name: &str, seed: u32| {
        let (plain, message) = stack.sample(&arn, partition, name, seed).await;
        stack
            .put(&bucket, &format!("{raw}{name}.wav"), message)
            .await;
        expected.insert(
            format!("{features}{name}.npy"),
            expected_features(&plain).await,
        );
    };

    // z's features are written and verified, then the worker crashes before deleting.
    put_sample("z", 100).await;
    let crash = run_worker(
        &stack.endpoint,
        &bucket,
        partition,
        &[&arn],
        &[],
        &[("FAILPOINTS", "worker::after-verify=return")],
    )
    .await;
    assert_eq!(crash.code, Some(CRASH_EXIT_CODE), "{}", crash.logs);

    // 2,100 other feature objects between a.npy and z.npy: more than the two pages of 1,000
    // the listing reads for a backlog of two, so it stops before z.npy.
    for first in (0..2100).step_by(50) {
        let mut puts = tokio::task::JoinSet::new();
        for i in first..first + 50 {
            let request = stack
                .s3
                .put_object()
                .bucket(&bucket)
                .key(format!("{features}m-{i:04}.npy"))
                .body(ByteStream::from_static(b"older features"));
            puts.spawn(async move { request.send().await.expect("filler feature") });
        }
        puts.join_all().await;
    }
    put_sample("a", 101).await;

    let rerun = run_worker(&stack.endpoint, &bucket, partition, &[&arn], &[], &[]).await;
    assert_eq!(rerun.code, Some(0), "{}\n{}", rerun.summary, rerun.logs);
    assert_eq!(rerun.summary["shredded"], 2, "{}", rerun.summary);
    assert_eq!(
        rerun.summary["alreadyDone"], 1,
        "z.npy, beyond where the listing stopped, was looked up and found verified: {}",
        rerun.summary
    );
    assert!(stack.versions(&bucket, &raw).await.is_empty());
    for (key, want) in &expected {
        let stored = stack.get(&bucket, key, None).await.expect("features");
        assert!(stored == *want, "{key} differs from securepipe features");
    }
}
