//! Interop with the Python AWS Encryption SDK (pinned in tests/reference/requirements.txt)
//! through LocalStack's KMS, in both directions, for both suites, sizes around the frame
//! length and several encryption contexts: every message one side writes, the other side
//! decrypts to the same bytes and reports the same suite, frame length and context.
//!
//! The venv comes from tests/reference/install.sh (instant when it exists; `make test`
//! runs it before the stack suites so a cold install is visible there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_kms::Client;
use securepipe_envelope::keyring::KeyringError;
use securepipe_envelope::{
    AlgorithmSuite, ContentType, DecryptError, Decryptor, EncryptionContext, Encryptor, KmsKeyring,
    PUBLIC_KEY_CONTEXT_KEY,
};
use securepipe_tests::repo_root;
use serde_json::{Value, json};

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::AesGcm256HkdfSha512Commit,
    AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
];
const SIZES: [usize; 6] = [0, 1, 4095, 4096, 4097, 1 << 20];

/// The contexts every (suite, size) pair is tried with: the worker's, several pairs, keys
/// whose UTF-8 order differs from their UTF-16 order, and none at all.
fn contexts() -> Vec<EncryptionContext> {
    let pairs: [&[(&str, &str)]; 4] = [
        &[("partition", "voice-eu-1")],
        &[
            ("partition", "p-7"),
            ("tenant", "acme"),
            ("purpose", "training"),
            ("Z", "upper sorts first"),
        ],
        &[
            ("partition", "ünïcode/ключ"),
            ("\u{ff5e}wide", "after é in UTF-8"),
            ("é", "✓ 𝄞"),
        ],
        &[],
    ];
    pairs.iter().map(|p| p.iter().copied().collect()).collect()
}

fn suite_hex(suite: AlgorithmSuite) -> String {
    format!("0x{:04X}", suite.id())
}

/// Deterministic, non-repeating bytes (splitmix64), different per `seed`.
fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The Python side: the venv's interpreter and tests/interop/envelope/sdk.py.
struct PythonSdk {
    python: PathBuf,
    script: PathBuf,
}

impl PythonSdk {
    fn install() -> Self {
        let out = Command::new(repo_root().join("tests/reference/install.sh"))
            .output()
            .unwrap_or_else(|err| panic!("run tests/reference/install.sh: {err}"));
        assert!(
            out.status.success(),
            "tests/reference/install.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let venv = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Self {
            python: venv.join("bin/python"),
            script: repo_root().join("tests/interop/envelope/sdk.py"),
        }
    }

    /// Runs a batch of jobs; one JSON result per job.
    fn run(&self, mode: &str, jobs: &[Value], dir: &Path) -> Vec<Value> {
        let jobs_file = dir.join(format!("{mode}-jobs.json"));
        std::fs::write(&jobs_file, serde_json::to_vec(jobs).expect("jobs JSON"))
            .expect("write jobs file");
        let out = Command::new(&self.python)
            .arg(&self.script)
            .arg(mode)
            .arg(&jobs_file)
            .output()
            .unwrap_or_else(|err| panic!("run {}: {err}", self.python.display()));
        assert!(
            out.status.success(),
            "sdk.py {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("sdk.py result line"))
            .collect();
        assert_eq!(results.len(), jobs.len(), "one result per job");
        results
    }
}

async fn kms() -> Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: start the local stack with tests/env/up.sh and source target/env/env.sh (make test does both)"
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::new(&config)
}

async fn create_key(client: &Client, purpose: &str) -> String {
    let created = client
        .create_key()
        .description(format!("securepipe envelope interop: {purpose}"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("KMS CreateKey: {err:?}"));
    created
        .key_metadata()
        .map(|m| m.arn().unwrap_or_default().to_owned())
        .filter(|arn| !arn.is_empty())
        .expect("CreateKey returned no ARN")
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "securepipe-envelope-interop-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

fn context_json(context: &EncryptionContext) -> Value {
    Value::Object(
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

fn reported_context(result: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(result["context"].clone()).expect("context in sdk.py result")
}

/// One message of the matrix.
struct Case {
    name: String,
    suite: AlgorithmSuite,
    frame_length: u32,
    context: EncryptionContext,
    data: Vec<u8>,
}

fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for suite in SUITES {
        for (ci, context) in contexts().into_iter().enumerate() {
            for size in SIZES {
                cases.push(Case {
                    name: format!("{suite} ctx{ci} {size}B frame4096"),
                    suite,
                    frame_length: 4096,
                    context: context.clone(),
                    data: plaintext(size, cases.len() as u64),
                });
            }
        }
        // Other frame lengths (the Python SDK writes only multiples of 128), and (Python
        // side only) non-framed bodies.
        for (size, frame_length) in [(4097, 128), (100_000, 65_536), (4097, 0), (0, 0)] {
            cases.push(Case {
                name: format!("{suite} ctx0 {size}B frame{frame_length}"),
                suite,
                frame_length,
                context: contexts()[0].clone(),
                data: plaintext(size, cases.len() as u64),
            });
        }
    }
    cases
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn python_sdk_messages_decrypt_in_securepipe() {
    let sdk = PythonSdk::install();
    let client = kms().await;
    let arn = create_key(&client, "python to securepipe").await;
    let dir = work_dir("py-to-sp");
    let cases = matrix();
    let jobs: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let input = dir.join(format!("{i}.plain"));
            std::fs::write(&input, &case.data).expect("write plaintext");
            json!({
                "input": input, "output": dir.join(format!("{i}.msg")), "key_ids": [arn],
                "suite": suite_hex(case.suite), "frame_length": case.frame_length,
                "context": context_json(&case.context),
            })
        })
        .collect();
    let results = sdk.run("encrypt", &jobs, &dir);

    let keyring = KmsKeyring::new(client.clone(), [&arn]).expect("keyring");
    let mut passed = 0;
    for (i, (case, result)) in cases.iter().zip(&results).enumerate() {
        assert_eq!(
            result["ok"], true,
            "{}: Python encrypt: {result}",
            case.name
        );
        let message = std::fs::read(dir.join(format!("{i}.msg"))).expect("read message");
        let mut decryptor = Decryptor::new(&keyring).require_all(&case.context);
        if case.context.is_empty() {
            decryptor = decryptor.require("partition", "anything");
            let err = decryptor.decrypt_to_vec(&message).await.unwrap_err();
            assert!(
                matches!(err, DecryptError::RequiredContext(_)),
                "{}: {err}",
                case.name
            );
            decryptor = Decryptor::new(&keyring);
        }
        let out = decryptor
            .decrypt_to_vec(&message)
            .await
            .unwrap_or_else(|err| panic!("{}: securepipe decrypt: {err}", case.name));
        assert!(
            out.plaintext.as_bytes() == case.data,
            "{}: bytes differ",
            case.name
        );
        let header = &out.header;
        assert_eq!(header.suite(), case.suite, "{}", case.name);
        assert_eq!(header.frame_length(), case.frame_length, "{}", case.name);
        let expected_type = if case.frame_length == 0 {
            ContentType::NonFramed
        } else {
            ContentType::Framed
        };
        assert_eq!(header.content_type(), expected_type, "{}", case.name);
        let ours: BTreeMap<String, String> = header
            .encryption_context()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(ours, reported_context(result), "{}: context", case.name);
        assert_eq!(
            ours.contains_key(PUBLIC_KEY_CONTEXT_KEY),
            case.suite.is_signed(),
            "{}",
            case.name
        );
        passed += 1;
    }
    assert_eq!(
        passed, 56,
        "2 suites x (4 contexts x 6 sizes + 4 other framings)"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn securepipe_messages_decrypt_in_the_python_sdk() {
    let sdk = PythonSdk::install();
    let client = kms().await;
    let arn = create_key(&client, "securepipe to python").await;
    let dir = work_dir("sp-to-py");
    // The encryptor writes framed messages only, with any frame length from 1 byte.
    let mut cases: Vec<Case> = matrix()
        .into_iter()
        .filter(|c| c.frame_length > 0)
        .collect();
    for suite in SUITES {
        cases.push(Case {
            name: format!("{suite} ctx1 4097B frame1"),
            suite,
            frame_length: 1,
            context: contexts()[1].clone(),
            data: plaintext(4097, 1000 + u64::from(suite.id())),
        });
    }
    let keyring = KmsKeyring::new(client.clone(), [&arn]).expect("keyring");
    let mut jobs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let encryptor = Encryptor::new(&keyring)
            .with_suite(case.suite)
            .with_frame_length(case.frame_length)
            .expect("frame length");
        let message = encryptor
            .encrypt_to_vec(&case.context, &case.data)
            .await
            .unwrap_or_else(|err| panic!("{}: securepipe encrypt: {err}", case.name));
        let input = dir.join(format!("{i}.msg"));
        std::fs::write(&input, &message).expect("write message");
        jobs.push(json!({
            "input": input, "output": dir.join(format!("{i}.plain")), "key_ids": [arn],
        }));
    }
    let results = sdk.run("decrypt", &jobs, &dir);
    for (i, (case, result)) in cases.iter().zip(&results).enumerate() {
        assert_eq!(
            result["ok"], true,
            "{}: Python decrypt: {result}",
            case.name
        );
        let plain = std::fs::read(dir.join(format!("{i}.plain"))).expect("read plaintext");
        assert!(plain == case.data, "{}: bytes differ", case.name);
        assert_eq!(result["suite"], suite_hex(case.suite), "{}", case.name);
        assert_eq!(result["frame_length"], case.frame_length, "{}", case.name);
        let mut expected: BTreeMap<String, String> = case
            .context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let theirs = reported_context(result);
        if case.suite.is_signed() {
            let key = theirs
                .get(PUBLIC_KEY_CONTEXT_KEY)
                .unwrap_or_else(|| panic!("{}: no public key in the context", case.name));
            expected.insert(PUBLIC_KEY_CONTEXT_KEY.to_owned(), key.clone());
        }
        assert_eq!(theirs, expected, "{}: context", case.name);
    }
    assert_eq!(
        cases.len(),
        54,
        "2 suites x (4 contexts x 6 sizes + 3 frame lengths)"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn key_policy_and_tampering_hold_across_implementations() {
    let sdk = PythonSdk::install();
    let client = kms().await;
    let key_a = create_key(&client, "policy A").await;
    let key_b = create_key(&client, "policy B").await;
    let dir = work_dir("policy");
    let data = plaintext(10_000, 99);
    let input = dir.join("data.plain");
    std::fs::write(&input, &data).expect("write plaintext");
    let context = json!({"partition": "p1"});
    let jobs = [
        json!({"input": input, "output": dir.join("a.msg"), "key_ids": [key_a],
               "suite": "0x0578", "frame_length": 4096, "context": context}),
        json!({"input": input, "output": dir.join("ab.msg"), "key_ids": [key_a, key_b],
               "suite": "0x0478", "frame_length": 4096, "context": context}),
    ];
    for result in sdk.run("encrypt", &jobs, &dir) {
        assert_eq!(result["ok"], true, "Python encrypt: {result}");
    }
    let only_a = std::fs::read(dir.join("a.msg")).expect("read");
    let a_and_b = std::fs::read(dir.join("ab.msg")).expect("read");

    // Only keys on the allowed list unwrap data keys.
    let allow_b = KmsKeyring::new(client.clone(), [&key_b]).expect("keyring");
    let err = Decryptor::new(&allow_b)
        .decrypt_to_vec(&only_a)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            DecryptError::Keyring(KeyringError::NoAllowedKey { found }) if found == &[format!("aws-kms:{key_a}")]
        ),
        "{err}"
    );
    let out = Decryptor::new(&allow_b)
        .require("partition", "p1")
        .decrypt_to_vec(&a_and_b)
        .await
        .expect("the second data key is wrapped by B");
    assert!(out.plaintext.as_bytes() == data);
    // A required pair the message changes is refused (before KMS: see the envelope unit tests).
    let err = Decryptor::new(&allow_b)
        .require("partition", "p2")
        .decrypt_to_vec(&a_and_b)
        .await
        .unwrap_err();
    assert!(matches!(err, DecryptError::RequiredContext(_)), "{err}");

    // A securepipe message with one flipped byte in the final frame: the Python SDK rejects it
    // too, and writes no plaintext.
    let keyring = KmsKeyring::new(client.clone(), [&key_a]).expect("keyring");
    let ctx: EncryptionContext = [("partition", "p1")].into_iter().collect();
    let mut message = Encryptor::new(&keyring)
        .encrypt_to_vec(&ctx, &data)
        .await
        .expect("encrypt");
    let at = message.len() - 150;
    message[at] ^= 0x10;
    std::fs::write(dir.join("tampered.msg"), &message).expect("write");
    let jobs = [
        json!({"input": dir.join("tampered.msg"), "output": dir.join("tampered.plain"),
                       "key_ids": [key_a]}),
    ];
    let result = &sdk.run("decrypt", &jobs, &dir)[0];
    assert_eq!(result["ok"], false, "Python accepted a tampered message");
    assert!(!dir.join("tampered.plain").exists());
    assert!(
        Decryptor::new(&keyring)
            .decrypt_to_vec(&message)
            .await
            .is_err()
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

/// KMS keys live in one region: a key ARN from another region than the client's default is
/// called in its own region, by securepipe as by the Python SDK.
#[tokio::test]
#[ignore = "needs the local stack (tests/env/up.sh); make test runs it"]
async fn a_key_in_another_region_is_called_in_its_region() {
    let sdk = PythonSdk::install();
    let default_client = kms().await;
    let default_region = default_client.config().region().map(ToString::to_string);
    assert_eq!(
        default_region.as_deref(),
        Some("us-east-1"),
        "env.sh sets us-east-1"
    );
    let eu_config = default_client
        .config()
        .to_builder()
        .region(aws_sdk_kms::config::Region::new("eu-west-1"))
        .build();
    let arn = create_key(&Client::from_conf(eu_config), "eu-west-1 key").await;
    assert!(arn.contains(":eu-west-1:"), "{arn}");

    let keyring = KmsKeyring::new(default_client, [&arn]).expect("keyring");
    let context = contexts()[0].clone();
    let data = plaintext(10_000, 77);
    let message = Encryptor::new(&keyring)
        .encrypt_to_vec(&context, &data)
        .await
        .unwrap_or_else(|err| panic!("encrypt under {arn}: {err}"));
    let decrypted = Decryptor::new(&keyring)
        .decrypt_to_vec(&message)
        .await
        .unwrap_or_else(|err| panic!("decrypt under {arn}: {err}"));
    assert!(
        decrypted.plaintext.as_bytes() == data,
        "round trip through eu-west-1"
    );

    let dir = work_dir("other-region");
    let input = dir.join("0.msg");
    std::fs::write(&input, &message).expect("write message");
    let job = json!({ "input": input, "output": dir.join("0.plain"), "key_ids": [arn] });
    let results = sdk.run("decrypt", &[job], &dir);
    assert_eq!(results[0]["ok"], true, "Python decrypt: {}", results[0]);
    assert!(std::fs::read(dir.join("0.plain")).expect("read plaintext") == data);
    std::fs::remove_dir_all(dir).expect("cleanup");
}
