//! The user metadata on a feature object: which raw version it came from, what it is, and
//! its own checksum. A stored feature object counts as done only when this metadata names
//! the raw version being processed and S3's checksum equals the one recorded here.

use std::collections::BTreeMap;

use securepipe_cloud::objects::ObjectHead;

pub const SOURCE_KEY: &str = "securepipe-source-key";
pub const SOURCE_VERSION_ID: &str = "securepipe-source-version-id";
pub const SOURCE_ETAG: &str = "securepipe-source-etag";
pub const PLAINTEXT_SHA256: &str = "securepipe-plaintext-sha256";
pub const SAMPLE_RATE: &str = "securepipe-sample-rate";
pub const FEATURE_KIND: &str = "securepipe-feature-kind";
pub const PARAMS_SHA256: &str = "securepipe-params-sha256";
pub const FEATURES_SHA256: &str = "securepipe-features-sha256";
pub const VERSION: &str = "securepipe-version";

/// The raw version a feature object must name, and the parameters it must have used.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    pub key: &'a str,
    pub version_id: &'a str,
    pub etag: &'a str,
    pub params_sha256: &'a str,
}

/// What the metadata of a verified feature object says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub plaintext_sha256: String,
    /// Base64, as S3 reports `x-amz-checksum-sha256`.
    pub features_sha256: String,
    pub sample_rate: u32,
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    source: &Source<'_>,
    plaintext_sha256: &str,
    sample_rate: u32,
    kind: &str,
    features_sha256: &str,
) -> BTreeMap<String, String> {
    [
        (SOURCE_KEY, encode_header_value(source.key)),
        (SOURCE_VERSION_ID, source.version_id.to_owned()),
        (SOURCE_ETAG, source.etag.trim_matches('"').to_owned()),
        (PLAINTEXT_SHA256, plaintext_sha256.to_owned()),
        (SAMPLE_RATE, sample_rate.to_string()),
        (FEATURE_KIND, kind.to_owned()),
        (PARAMS_SHA256, source.params_sha256.to_owned()),
        (FEATURES_SHA256, features_sha256.to_owned()),
        (VERSION, env!("CARGO_PKG_VERSION").to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Checks a stored feature object against its source: the metadata names this raw version
/// (and ETag) and parameters, and S3's stored checksum equals the recorded one (and, when
/// given, the one just sent and its size). `Err` says what differs.
pub fn verify(
    head: &ObjectHead,
    source: &Source<'_>,
    sent: Option<(&str, u64)>,
) -> Result<Verified, String> {
    let meta = |name: &str| {
        head.metadata
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    if meta(SOURCE_VERSION_ID) != source.version_id
        || meta(SOURCE_ETAG) != source.etag.trim_matches('"')
    {
        return Err(format!(
            "names source version {:?} (ETag {:?}), not {} ({})",
            meta(SOURCE_VERSION_ID),
            meta(SOURCE_ETAG),
            source.version_id,
            source.etag
        ));
    }
    if meta(PARAMS_SHA256) != source.params_sha256 {
        return Err("was computed with other feature parameters".to_owned());
    }
    let stored = head.checksum_sha256.as_deref().unwrap_or_default();
    if stored.is_empty() || stored != meta(FEATURES_SHA256) {
        return Err(format!(
            "stored checksum {stored:?} differs from the recorded {:?}",
            meta(FEATURES_SHA256)
        ));
    }
    if let Some((checksum, size)) = sent
        && (stored != checksum || head.size != size)
    {
        return Err(format!(
            "stored {} bytes with checksum {stored}, sent {size} bytes with {checksum}",
            head.size
        ));
    }
    Ok(Verified {
        plaintext_sha256: meta(PLAINTEXT_SHA256).to_owned(),
        features_sha256: stored.to_owned(),
        sample_rate: meta(SAMPLE_RATE).parse().unwrap_or(0),
    })
}

/// User metadata travels as HTTP header values: printable ASCII is kept, every other byte
/// (and `%`) is percent-encoded.
fn encode_header_value(value: &str) -> String {
    use std::fmt::Write;
    value
        .bytes()
        .fold(String::with_capacity(value.len()), |mut out, b| {
            if (0x20..0x7f).contains(&b) && b != b'%' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source<'static> {
        Source {
            key: "ingestion/raw/p1/ä.wav",
            version_id: "v1",
            etag: "\"abc\"",
            params_sha256: "p",
        }
    }

    fn head(metadata: BTreeMap<String, String>, checksum: &str, size: u64) -> ObjectHead {
        ObjectHead {
            size,
            checksum_sha256: Some(checksum.to_owned()),
            metadata,
        }
    }

    #[test]
    fn a_matching_object_verifies_and_any_difference_is_named() {
        let metadata = build(&source(), "plain", 16_000, "mfcc", "sum=");
        assert_eq!(metadata[SOURCE_KEY], "ingestion/raw/p1/%C3%A4.wav");
        assert_eq!(metadata[SOURCE_ETAG], "abc");
        let ok = head(metadata.clone(), "sum=", 10);
        let verified = verify(&ok, &source(), Some(("sum=", 10))).unwrap();
        assert_eq!(
            verified,
            Verified {
                plaintext_sha256: "plain".into(),
                features_sha256: "sum=".into(),
                sample_rate: 16_000
            }
        );
        assert!(verify(&ok, &source(), None).is_ok());

        let other_version = Source {
            version_id: "v2",
            ..source()
        };
        assert!(
            verify(&ok, &other_version, None)
                .unwrap_err()
                .contains("not v2")
        );
        let other_params = Source {
            params_sha256: "q",
            ..source()
        };
        assert!(verify(&ok, &other_params, None).is_err());
        assert!(verify(&head(metadata.clone(), "other=", 10), &source(), None).is_err());
        assert!(verify(&ok, &source(), Some(("sum=", 11))).is_err());
        let mut no_checksum = ok.clone();
        no_checksum.checksum_sha256 = None;
        assert!(verify(&no_checksum, &source(), None).is_err());
    }
}
