//! Which lifecycle rules are securepipe's, and whose. A rule a RetentionPolicy manages is
//! stored under the ID `securepipe/<namespace>/<name>/<rule id>`; a rule without the
//! `securepipe/` mark belongs to someone else (Terraform, ACK, a console click) and is
//! never changed or removed.
//!
//! S3 allows 255 characters per rule ID. When `securepipe/<namespace>/<name>/` alone would
//! take more than half of that, the policy is named by a digest instead:
//! `securepipe/~<16 hex digits>/<rule id>`. The form depends only on the namespace and
//! name, so a policy's rules keep their IDs whatever rules it gains later.

use sha2::{Digest, Sha256};

/// The mark every securepipe-owned rule ID starts with.
pub const MARK: &str = "securepipe/";
/// The longest owner prefix written out in full.
const MAX_PLAIN_PREFIX_CHARS: usize = 128;

/// A policy as the owner of lifecycle rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `securepipe/<namespace>/<name>/` or `securepipe/~<digest>/`.
    prefix: String,
    /// `<namespace>/<name>`, for messages.
    display: String,
}

impl Owner {
    pub fn new(namespace: &str, name: &str) -> Self {
        let plain = format!("{MARK}{namespace}/{name}/");
        let prefix = if plain.chars().count() <= MAX_PLAIN_PREFIX_CHARS {
            plain
        } else {
            let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{MARK}~{hex}/")
        };
        Self {
            prefix,
            display: format!("{namespace}/{name}"),
        }
    }

    /// The S3 rule ID of this policy's rule `id`.
    pub fn rule_id(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Whether the S3 rule ID names one of this policy's rules.
    pub fn owns(&self, s3_id: &str) -> bool {
        s3_id
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    }

    /// `<namespace>/<name>`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The owner prefix, for length checks.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A securepipe-marked S3 rule ID split into its owner prefix (the key that
/// [`Owner::prefix`] returns) and the policy's rule id; `None` for rules securepipe does
/// not own.
pub fn parse(s3_id: &str) -> Option<(&str, &str)> {
    if !s3_id.starts_with(MARK) {
        return None;
    }
    let (owner, rule) = s3_id.rsplit_once('/')?;
    if rule.is_empty() || owner.len() <= MARK.len() {
        return None;
    }
    Some((&s3_id[..owner.len() + 1], rule))
}

/// A readable owner for a parsed owner prefix: `<namespace>/<name>`, or the digest form.
pub fn display_prefix(owner_prefix: &str) -> &str {
    owner_prefix
        .strip_prefix(MARK)
        .unwrap_or(owner_prefix)
        .trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_policy() {
        let owner = Owner::new("ml-prod", "biometrics");
        assert_eq!(owner.rule_id("raw"), "securepipe/ml-prod/biometrics/raw");
        assert_eq!(owner.display(), "ml-prod/biometrics");
        assert!(owner.owns("securepipe/ml-prod/biometrics/raw"));
    }

    #[test]
    fn ownership_is_exact() {
        let owner = Owner::new("ml-prod", "biometrics");
        for not_ours in [
            "raw",
            "securepipe/ml-prod/biometrics/",
            "securepipe/ml-prod/biometrics-2/raw",
            "securepipe/ml-prod/biometrics/raw/extra",
            "securepipe/ml/prod/biometrics/raw",
            "SECUREPIPE/ml-prod/biometrics/raw",
            "terraform/securepipe/ml-prod/biometrics/raw",
        ] {
            assert!(!owner.owns(not_ours), "{not_ours}");
        }
        // Same name, another namespace: another owner.
        assert!(!Owner::new("ml-dev", "biometrics").owns("securepipe/ml-prod/biometrics/raw"));
    }

    #[test]
    fn long_names_use_a_digest_and_stay_within_s3s_limit() {
        let name = "n".repeat(253);
        let owner = Owner::new("a-namespace", &name);
        let id = owner.rule_id(&"r".repeat(200));
        assert!(id.starts_with("securepipe/~"), "{id}");
        assert!(id.chars().count() <= 255);
        assert!(owner.owns(&id));
        // Deterministic, and different for different policies.
        assert_eq!(owner, Owner::new("a-namespace", &name));
        assert_ne!(
            Owner::new("a-namespace", &name).prefix(),
            Owner::new("b-namespace", &name).prefix()
        );
    }

    #[test]
    fn the_plain_form_is_kept_up_to_its_limit() {
        // securepipe/ (11) + 63 + / + 53 + / = 129 characters: one too many.
        let namespace = "n".repeat(63);
        assert!(
            Owner::new(&namespace, &"m".repeat(52))
                .prefix()
                .starts_with("securepipe/nnn")
        );
        assert!(
            Owner::new(&namespace, &"m".repeat(53))
                .prefix()
                .starts_with("securepipe/~")
        );
    }

    #[test]
    fn parse_splits_owner_and_rule() {
        let owner = Owner::new("ns", "p");
        let id = owner.rule_id("raw");
        assert_eq!(parse(&id), Some((owner.prefix(), "raw")));
        assert_eq!(display_prefix(owner.prefix()), "ns/p");
        let long = Owner::new("ns", &"x".repeat(200));
        let id = long.rule_id("raw");
        assert_eq!(parse(&id), Some((long.prefix(), "raw")));
        for foreign in [
            "raw",
            "securepipe/",
            "securepipe/raw/",
            "logs/securepipe/a/b/c",
        ] {
            assert_eq!(parse(foreign), None, "{foreign}");
        }
    }
}
