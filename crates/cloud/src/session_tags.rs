//! The session tags that identify whose session it is. Minting sets them, revocation
//! denies by them and every Job's session carries them: the keys are spelled here only.

use std::collections::BTreeMap;

/// The partition whose data the session reaches.
pub const PARTITION: &str = "securepipe:partition";
/// The namespace of the TrainingPartition the session was minted for.
pub const NAMESPACE: &str = "securepipe:namespace";
/// The name of that TrainingPartition.
pub const NAME: &str = "securepipe:name";
/// Its UID: unique for the object's whole life and never reused, so revocation denies by
/// it (the partition, access and role may have changed since a session was minted).
pub const UID: &str = "securepipe:uid";

/// Tag key prefixes only the operator (and AWS) may use. Compared without letter case: IAM
/// treats tag keys case-insensitively, so `SecurePipe:namespace` would spoof the real one.
pub const RESERVED_PREFIXES: [&str; 2] = ["securepipe:", "aws:"];

/// Whether a tenant may not set the tag `key`.
pub fn is_reserved(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    RESERVED_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// The identifying tags of every session minted for a TrainingPartition (credentials and
/// worker sessions alike).
pub fn identifying(
    namespace: &str,
    name: &str,
    uid: &str,
    partition: &str,
) -> BTreeMap<String, String> {
    [
        (PARTITION, partition),
        (NAMESPACE, namespace),
        (NAME, name),
        (UID, uid),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// The IAM condition key that matches a session tag, `aws:PrincipalTag/<key>`.
pub fn principal_tag(key: &str) -> String {
    format!("aws:PrincipalTag/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_are_reserved_in_any_letter_case() {
        for key in [
            "securepipe:name",
            "SecurePipe:namespace",
            "SECUREPIPE:x",
            "aws:x",
            "AWS:PrincipalTag",
            "Aws:y",
        ] {
            assert!(is_reserved(key), "{key}");
        }
        for key in [
            "team",
            "securepipe",
            "aws",
            "x-securepipe:y",
            "awsx:y",
            "cost:aws:",
        ] {
            assert!(!is_reserved(key), "{key}");
        }
        for key in identifying("ml", "speech", "0f9e", "p1").keys() {
            assert!(
                is_reserved(key),
                "the operator's own tags are reserved: {key}"
            );
        }
    }

    #[test]
    fn a_session_is_identified_by_partition_namespace_name_and_uid() {
        let tags = identifying("ml", "speech", "0f9e", "p1");
        assert_eq!(tags.len(), 4);
        assert_eq!(tags["securepipe:uid"], "0f9e");
        assert_eq!(tags["securepipe:partition"], "p1");
        assert_eq!(tags["securepipe:namespace"], "ml");
        assert_eq!(tags["securepipe:name"], "speech");
        assert_eq!(
            principal_tag(PARTITION),
            "aws:PrincipalTag/securepipe:partition"
        );
    }
}
