//! AWS KMS key ARNs: the only form of key identifier a KMS data key's provider info holds.

use std::fmt;

/// A KMS key ARN, `arn:<partition>:kms:<region>:<account>:key/<key-id>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyArn(String);

/// A string that is not a KMS key ARN.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{arn}` is not a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID): {problem}")]
pub struct KeyArnError {
    /// The rejected string.
    pub arn: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl KeyArn {
    /// Validates `arn`. Aliases and bare key IDs are refused: the provider info KMS writes
    /// is always a key ARN, so nothing else could match it.
    ///
    /// # Errors
    /// [`KeyArnError`] naming the problem.
    pub fn parse(arn: &str) -> Result<Self, KeyArnError> {
        let fail = |problem| KeyArnError {
            arn: arn.to_owned(),
            problem,
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(fail("expected six colon-separated fields"));
        };
        if prefix != "arn" {
            return Err(fail("does not start with `arn:`"));
        }
        if partition.is_empty() || region.is_empty() || account.is_empty() {
            return Err(fail("partition, region and account must not be empty"));
        }
        if service != "kms" {
            return Err(fail("service is not `kms`"));
        }
        match resource.strip_prefix("key/") {
            Some(id) if !id.is_empty() => Ok(Self(arn.to_owned())),
            _ => Err(fail(
                "resource is not `key/<id>` (aliases are not accepted)",
            )),
        }
    }

    /// The ARN.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region field (`parse` checked there is one).
    #[must_use]
    pub fn region(&self) -> &str {
        self.0.split(':').nth(3).unwrap_or_default()
    }
}

impl fmt::Display for KeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyArn({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyArn;

    #[test]
    fn key_arns_are_accepted() {
        let arn = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(KeyArn::parse(arn).unwrap().as_str(), arn);
        let china = KeyArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1").unwrap();
        assert_eq!(china.region(), "cn-north-1");
        assert_eq!(KeyArn::parse(arn).unwrap().region(), "us-east-1");
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        for (bad, why) in [
            ("1234abcd-12ab-34cd-56ef-1234567890ab", "six"),
            ("alias/mine", "six"),
            ("arn:aws:kms:us-east-1:000000000000:alias/mine", "aliases"),
            ("arn:aws:kms:us-east-1:000000000000:key/", "aliases"),
            ("arn:aws:s3:us-east-1:000000000000:key/x", "kms"),
            ("arm:aws:kms:us-east-1:000000000000:key/x", "arn:"),
            ("arn:aws:kms::000000000000:key/x", "empty"),
        ] {
            let err = KeyArn::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
            assert_eq!(err.arn, bad);
        }
    }
}
