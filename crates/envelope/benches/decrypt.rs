//! Decrypt throughput on one thread, KMS excluded (in-process keyring), for
//! `tests/bench/envelope.sh`. Prints one tab-separated line per case:
//! `name  size_bytes  best_GB/s  median_GB/s  runs`.
//!
//! Usage: `decrypt [SIZE_MIB...]` (default 1 64).

use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use securepipe_envelope::keyring::StaticKeyring;
use securepipe_envelope::{AlgorithmSuite, Decryptor, EncryptionContext, Encryptor};

const MIN_TIME: Duration = Duration::from_secs(2);
const MIN_RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| a.parse::<usize>().map(|mib| mib << 20))
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1 << 20, 64 << 20]
    } else {
        sizes
    };
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

fn measure(
    name: &str,
    size: usize,
    mut run: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    run()?; // warm-up
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_RUNS || start.elapsed() < MIN_TIME {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let gbps = |secs: f64| size as f64 / secs / 1e9;
    println!(
        "{name}\t{size}\t{:.3}\t{:.3}\t{}",
        gbps(times[0]),
        gbps(times[times.len() / 2]),
        times.len()
    );
    Ok(())
}
