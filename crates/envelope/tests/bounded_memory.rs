//! A 1 GiB object streams through encrypt and decrypt (connected by a 1 MiB pipe) with
//! bounded memory: the process's peak resident set stays far below the object's size, so the
//! object never sits in memory even once. Its own test binary, so no other test shares the
//! peak. The keyring is an in-process one defined here (KMS is not the point).

use std::pin::Pin;
use std::task::{Context, Poll};

use securepipe_envelope::keyring::{
    DataKey, EncryptedDataKey, GeneratedDataKey, Keyring, KeyringError,
};
use securepipe_envelope::{AlgorithmSuite, Decryptor, EncryptionContext, Encryptor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const OBJECT_LEN: u64 = 1 << 30;
/// Peak RSS allowed for the whole test process.
const MAX_PEAK_RSS: u64 = 32 << 20;
/// The plaintext repeats this table; its prime length keeps frames and table unaligned.
const TABLE_LEN: usize = 65_521;

fn table() -> Vec<u8> {
    (0..TABLE_LEN)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A data key in the clear in its "wrapped" form: for this test only.
struct ClearKeyring;

impl Keyring for ClearKeyring {
    async fn generate_data_key(
        &self,
        _suite: AlgorithmSuite,
        _context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyringError> {
        Ok(GeneratedDataKey {
            data_key: DataKey::from_slice(&[7; 32]).expect("32 bytes"),
            encrypted: EncryptedDataKey::new("clear".into(), vec![], vec![7; 32]),
        })
    }

    async fn decrypt_data_key(
        &self,
        _suite: AlgorithmSuite,
        encrypted: &[EncryptedDataKey],
        _context: &EncryptionContext,
    ) -> Result<DataKey, KeyringError> {
        Ok(DataKey::from_slice(encrypted[0].ciphertext()).expect("32 bytes"))
    }
}

/// `OBJECT_LEN` bytes of the repeated table.
struct Source {
    table: Vec<u8>,
    offset: u64,
}

impl AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let at = (self.offset % TABLE_LEN as u64) as usize;
        let left = OBJECT_LEN - self.offset;
        let n = (TABLE_LEN - at).min(buf.remaining()).min(left as usize);
        buf.put_slice(&self.table[at..at + n]);
        self.offset += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Checks every byte written against the table, keeping none.
struct Sink {
    table: Vec<u8>,
    offset: u64,
    mismatch: Option<u64>,
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut done = 0;
        while done < data.len() {
            let at = (self.offset % TABLE_LEN as u64) as usize;
            let n = (TABLE_LEN - at).min(data.len() - done);
            if self.mismatch.is_none() && data[done..done + n] != self.table[at..at + n] {
                self.mismatch = Some(self.offset);
            }
            self.offset += n as u64;
            done += n;
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Peak resident set size of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib << 10
}

#[test]
fn one_gib_streams_through_encrypt_and_decrypt_in_bounded_memory() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let context: EncryptionContext = [("partition", "big")].into_iter().collect();
    let (sealed_in, sealed_out) = tokio::io::duplex(1 << 20);
    let (written, sink) = runtime.block_on(async {
        let encrypt = async {
            let encryptor = Encryptor::new(ClearKeyring);
            let mut writer = encryptor.start(&context, sealed_in).await.expect("start");
            let mut source = Source {
                table: table(),
                offset: 0,
            };
            let n = writer.copy_from(&mut source).await.expect("encrypt");
            let mut pipe = writer.finish().await.expect("finish");
            tokio::io::AsyncWriteExt::shutdown(&mut pipe)
                .await
                .expect("close pipe");
            n
        };
        let decrypt = async {
            let decryptor = Decryptor::new(ClearKeyring).require("partition", "big");
            let stream = decryptor.start(sealed_out).await.expect("header");
            let mut sink = Sink {
                table: table(),
                offset: 0,
                mismatch: None,
            };
            let n = stream.copy_to(&mut sink).await.expect("decrypt");
            assert_eq!(n, sink.offset);
            sink
        };
        tokio::join!(encrypt, decrypt)
    });
    assert_eq!(written, OBJECT_LEN);
    assert_eq!(sink.offset, OBJECT_LEN, "all plaintext came out");
    assert_eq!(sink.mismatch, None, "plaintext differs");
    let peak = peak_rss();
    assert!(
        peak < MAX_PEAK_RSS,
        "peak RSS {} MiB for a 1 GiB object",
        peak >> 20
    );
    println!("peak RSS {} MiB for a 1 GiB object", peak >> 20);
}
