//! Decrypt throughput on one thread, KMS excluded (in-process keyring), for
//! `tests/bench/envelope.sh`. Prints one tab-separated line per case:
//! `name  size_bytes  best_GB/s  median_GB/s  runs`.
//!
//! Usage: `decrypt [SIZE_MIB...]` (default 1 64).
//!
//! `decrypt --primitives SIZE_MIB...` instead compares the implementations suite 0x0578 can
//! use for its signature, on the same input: SHA-384 by `sha2` (its AVX2 backend, detected at
//! run time) and by `aws-lc-rs` (AWS-LC's assembly), as `name  size_bytes  best_GB/s
//! median_GB/s  runs` lines; then one ECDSA P-384 verification of a prehashed message by
//! `p384` and by `aws-lc-rs`, as `name  0  best_us  median_us  runs` lines.

use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use securepipe_envelope::keyring::StaticKeyring;
use securepipe_envelope::{AlgorithmSuite, Decryptor, EncryptionContext, Encryptor};

const MIN_TIME: Duration = Duration::from_secs(2);
const MIN_RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let primitives = std::env::args().any(|a| a == "--primitives");
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench" && a != "--primitives")
        .map(|a| a.parse::<usize>().map(|mib| mib << 20))
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1 << 20, 64 << 20]
    } else {
        sizes
    };
    if primitives {
        return compare_primitives(&sizes);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let context: EncryptionContext = [("partition", "bench")].into_iter().collect();

    for size in sizes {
        let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        for suite in [
            AlgorithmSuite::AesGcm256HkdfSha512Commit,
            AlgorithmSuite::AesGcm256HkdfSha512CommitEcdsaP384,
        ] {
            let encryptor = Encryptor::new(StaticKeyring::new([9; 32])).with_suite(suite);
            let message = runtime.block_on(encryptor.encrypt_to_vec(&context, &plaintext))?;
            let decryptor =
                Decryptor::new(StaticKeyring::new([9; 32])).require("partition", "bench");
            let name = format!("securepipe decrypt_to_vec {suite} frame 4096");
            measure(&name, size, || {
                let out = runtime
                    .block_on(decryptor.decrypt_to_vec(&message))
                    .map_err(|e| e.to_string())?;
                if out.plaintext.len() != size {
                    return Err("wrong plaintext length".into());
                }
                Ok(())
            })?;
            let name = format!("securepipe stream->sink {suite} frame 4096");
            measure(&name, size, || {
                runtime.block_on(async {
                    let stream = decryptor
                        .start(&message[..])
                        .await
                        .map_err(|e| e.to_string())?;
                    let n = stream
                        .copy_to(&mut tokio::io::sink())
                        .await
                        .map_err(|e| e.to_string())?;
                    if n as usize != size {
                        return Err("wrong plaintext length".to_owned());
                    }
                    Ok(())
                })
            })?;
        }
        // The cipher alone: one AES-256-GCM decryption of the whole buffer, as OpenSSL is timed.
        let aead = Aes256Gcm::new((&[3u8; 32]).into());
        let nonce = Nonce::from([1u8; 12]);
        let mut ciphertext = plaintext.clone();
        let tag: Tag = aead
            .encrypt_inout_detached(&nonce, b"", ciphertext.as_mut_slice().into())
            .map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; size];
        measure("aes-gcm 0.11 one-shot decrypt (no framing)", size, || {
            buffer.copy_from_slice(&ciphertext);
            aead.decrypt_inout_detached(&nonce, b"", buffer.as_mut_slice().into(), &tag)
                .map_err(|e| e.to_string())
        })?;
    }
    Ok(())
}

/// SHA-384 throughput and P-384 verification time, each implementation on the same input.
fn compare_primitives(sizes: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    use aws_lc_rs::digest::{SHA384, digest};
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ParsedPublicKey};
    use p384::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use p384::ecdsa::{Signature, SigningKey};
    use p384::elliptic_curve::Generate as _;
    use sha2::{Digest, Sha384};

    for &size in sizes {
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        if Sha384::digest(&message).as_slice() != digest(&SHA384, &message).as_ref() {
            return Err("the two SHA-384 implementations disagree".into());
        }
        measure("SHA-384 sha2 0.11 (AVX2 backend)", size, || {
            std::hint::black_box(Sha384::digest(&message));
            Ok(())
        })?;
        measure("SHA-384 aws-lc-rs 1.19 (AWS-LC asm)", size, || {
            std::hint::black_box(digest(&SHA384, &message));
            Ok(())
        })?;
    }

    let key = SigningKey::try_generate()?;
    let point = key.verifying_key().to_sec1_point(true);
    let prehash = digest(&SHA384, b"header and body");
    let signature: Signature = key.sign_prehash(prehash.as_ref())?;
    let der = signature.to_der();
    let verifying = *key.verifying_key();
    measure_us("ECDSA P-384 verify, prehashed: p384 0.14", || {
        verifying
            .verify_prehash(prehash.as_ref(), &signature)
            .map_err(|e| e.to_string())
    })?;
    let parsed = ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, point.as_bytes())
        .map_err(|e| e.to_string())?;
    measure_us("ECDSA P-384 verify, prehashed: aws-lc-rs 1.19", || {
        parsed
            .verify_digest_sig(&prehash, der.as_bytes())
            .map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Best and median time of one `run` in microseconds, as a `name  0  best  median  runs` line.
fn measure_us(name: &str, mut run: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let times = timed(&mut run)?;
    println!(
        "{name}\t0\t{:.1}\t{:.1}\t{}",
        times[0] * 1e6,
        times[times.len() / 2] * 1e6,
        times.len()
    );
    Ok(())
}

/// Run times in seconds, sorted, after one warm-up run.
fn timed(run: &mut impl FnMut() -> Result<(), String>) -> Result<Vec<f64>, String> {
    run()?; // warm-up
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_RUNS || start.elapsed() < MIN_TIME {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn measure(
    name: &str,
    size: usize,
    mut run: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let times = timed(&mut run)?;
    let gbps = |secs: f64| size as f64 / secs / 1e9;
    println!(
        "{name}\t{size}\t{:.3}\t{:.3}\t{}",
        gbps(times[0]),
        gbps(times[times.len() / 2]),
        times.len()
    );
    Ok(())
}
