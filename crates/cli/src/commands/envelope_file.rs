//! Files and arguments shared by `encrypt` and `decrypt`.
//!
//! The output is written under a temporary name beside its destination and renamed into
//! place only when the whole message has succeeded, so a failed run never leaves a partial
//! file at the destination (for `decrypt`: unauthenticated plaintext).

use std::io;
use std::path::{Path, PathBuf};

use securepipe_envelope::EncryptionContext;
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Write buffer: frames are 4 KiB by default, a file write per frame would be slow.
const WRITE_BUFFER: usize = 256 << 10;

/// A `KEY=VALUE` command-line argument (split at the first `=`; the key must not be empty).
pub(super) fn parse_pair(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "expected KEY=VALUE with a non-empty KEY, got `{arg}`"
        )),
    }
}

/// The context made of `pairs`, or the first key given twice.
pub(super) fn context_from(pairs: &[(String, String)]) -> Result<EncryptionContext, String> {
    let mut context = EncryptionContext::new();
    for (key, value) in pairs {
        if context.contains_key(key) {
            return Err(key.clone());
        }
        context.insert(key, value);
    }
    Ok(context)
}

/// An output file being written under a temporary name; removed on drop unless committed.
pub(super) struct PendingOutput {
    temp: PathBuf,
    dest: PathBuf,
    writer: BufWriter<File>,
    committed: bool,
}

impl PendingOutput {
    /// Creates the temporary file beside `dest` with permission bits `mode` (before umask).
    pub(super) async fn create(dest: &Path, mode: u32) -> io::Result<Self> {
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".securepipe-partial-{}", std::process::id()));
        let temp = dest.with_file_name(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .await?;
        Ok(Self {
            temp,
            dest: dest.to_owned(),
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            committed: false,
        })
    }

    pub(super) fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// Flushes and syncs the file, then renames it to the destination.
    pub(super) async fn commit(mut self) -> io::Result<()> {
        self.writer.flush().await?;
        self.writer.get_ref().sync_all().await?;
        tokio::fs::rename(&self.temp, &self.dest).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingOutput {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the file is ours and incomplete.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PendingOutput, context_from, parse_pair};

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_pair("a="), Ok(("a".into(), String::new())));
        assert!(parse_pair("=b").is_err());
        assert!(parse_pair("ab").is_err());
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let pairs = [("a".to_owned(), "1".to_owned()), ("b".into(), "2".into())];
        let context = context_from(&pairs).unwrap();
        assert_eq!((context.get("a"), context.get("b")), (Some("1"), Some("2")));
        let twice = [("a".to_owned(), "1".to_owned()), ("a".into(), "1".into())];
        assert_eq!(context_from(&twice), Err("a".to_owned()));
    }

    #[tokio::test]
    async fn output_appears_only_when_committed() {
        use tokio::io::AsyncWriteExt;
        let dir = std::env::temp_dir().join(format!("securepipe-pending-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.bin");
        let mut pending = PendingOutput::create(&dest, 0o600).await.unwrap();
        pending.writer().write_all(b"partial").await.unwrap();
        drop(pending);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "dropped: no file"
        );

        let mut pending = PendingOutput::create(&dest, 0o600).await.unwrap();
        pending.writer().write_all(b"whole").await.unwrap();
        pending.commit().await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
