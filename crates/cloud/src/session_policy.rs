//! The inline session policy passed to STS `AssumeRole`: it narrows the role to one
//! partition's feature prefix, in one region, and nothing else.

use serde_json::{Value, json};

/// AWS's limit on the plaintext inline session policy, in characters.
pub const MAX_POLICY_CHARS: usize = 2048;

/// What the session may do on the partition's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// The scope of one session.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The AWS partition of the ARNs (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub aws_partition: &'a str,
    pub bucket: &'a str,
    /// The partition's folder, ending with `/`: `<featurePrefix><partition>/`.
    pub prefix: &'a str,
    pub region: &'a str,
    pub access: Access,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error(
        "the session policy for s3://{bucket}/{prefix} is {chars} characters; AWS accepts at most {MAX_POLICY_CHARS}"
    )]
    TooLarge {
        bucket: String,
        prefix: String,
        chars: usize,
    },
    #[error(
        "the prefix {prefix:?} of bucket {bucket} must end with '/' and contain no IAM wildcard"
    )]
    InvalidPrefix { bucket: String, prefix: String },
}

/// Builds the minified session policy JSON for `scope`.
pub fn build(scope: &Scope<'_>) -> Result<String, PolicyError> {
    if !scope.prefix.ends_with('/') || scope.prefix.contains(['*', '?', '$']) {
        return Err(PolicyError::InvalidPrefix {
            bucket: scope.bucket.to_owned(),
            prefix: scope.prefix.to_owned(),
        });
    }
    let bucket_arn = format!("arn:{}:s3:::{}", scope.aws_partition, scope.bucket);
    let objects_arn = format!("{bucket_arn}/{}*", scope.prefix);
    let in_region = json!({ "StringEquals": { "aws:RequestedRegion": scope.region } });

    let mut object_actions = vec!["s3:GetObject"];
    if scope.access == Access::ReadWrite {
        object_actions.push("s3:PutObject");
    }
    let mut list_condition = in_region.clone();
    list_condition["StringLike"] = json!({ "s3:prefix": format!("{}*", scope.prefix) });

    let policy: Value = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PartitionObjects",
                "Effect": "Allow",
                "Action": object_actions,
                "Resource": objects_arn,
                "Condition": in_region,
            },
            {
                "Sid": "ListPartition",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": list_condition,
            }
        ]
    });
    let text = policy.to_string();
    let chars = text.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(PolicyError::TooLarge {
            bucket: scope.bucket.to_owned(),
            prefix: scope.prefix.to_owned(),
            chars,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(access: Access) -> Scope<'static> {
        Scope {
            aws_partition: "aws",
            bucket: "biometrics-prod",
            prefix: "training/features/team-a/",
            region: "eu-west-1",
            access,
        }
    }

    fn statements(policy: &str) -> Vec<Value> {
        let parsed: Value = serde_json::from_str(policy).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        parsed["Statement"].as_array().unwrap().clone()
    }

    fn actions(statement: &Value) -> Vec<String> {
        match &statement["Action"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
            other => panic!("unexpected Action {other}"),
        }
    }

    #[test]
    fn read_only_allows_get_and_list_on_the_prefix_only() {
        let policy = build(&scope(Access::ReadOnly)).unwrap();
        let statements = statements(&policy);
        assert_eq!(statements.len(), 2);
        assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
        let all_actions: Vec<String> = statements.iter().flat_map(actions).collect();
        assert_eq!(all_actions, ["s3:GetObject", "s3:ListBucket"]);
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:s3:::biometrics-prod/training/features/team-a/*"
        );
        assert_eq!(statements[1]["Resource"], "arn:aws:s3:::biometrics-prod");
        assert_eq!(
            statements[1]["Condition"]["StringLike"]["s3:prefix"],
            "training/features/team-a/*"
        );
    }

    #[test]
    fn read_write_adds_put_and_nothing_else() {
        let policy = build(&scope(Access::ReadWrite)).unwrap();
        let statements = statements(&policy);
        assert_eq!(actions(&statements[0]), ["s3:GetObject", "s3:PutObject"]);
        assert_eq!(actions(&statements[1]), ["s3:ListBucket"]);
    }

    #[test]
    fn every_statement_is_pinned_to_the_region() {
        for access in [Access::ReadOnly, Access::ReadWrite] {
            for statement in statements(&build(&scope(access)).unwrap()) {
                assert_eq!(
                    statement["Condition"]["StringEquals"]["aws:RequestedRegion"],
                    "eu-west-1"
                );
            }
        }
    }

    #[test]
    fn uses_the_arn_partition_given() {
        let mut china = scope(Access::ReadOnly);
        china.aws_partition = "aws-cn";
        let policy = build(&china).unwrap();
        assert!(policy.contains("arn:aws-cn:s3:::biometrics-prod"));
        assert!(!policy.contains("arn:aws:s3"));
    }

    #[test]
    fn policy_is_minified() {
        let policy = build(&scope(Access::ReadOnly)).unwrap();
        assert!(!policy.contains('\n') && !policy.contains(": "));
    }

    #[test]
    fn refuses_a_policy_over_the_limit() {
        let long_prefix = format!("{}/", "p".repeat(1900));
        let mut big = scope(Access::ReadWrite);
        big.prefix = &long_prefix;
        match build(&big) {
            Err(PolicyError::TooLarge { chars, .. }) => assert!(chars > MAX_POLICY_CHARS),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn the_largest_legal_prefix_still_fits() {
        // A 512-character prefix (the CRD's maximum) plus a 63-character partition.
        let prefix = format!("{}/{}/", "f".repeat(510), "p".repeat(63));
        let mut scope = scope(Access::ReadWrite);
        scope.prefix = &prefix;
        scope.bucket = "b23456789012345678901234567890123456789012345678901234567890123";
        let policy = build(&scope).unwrap();
        assert!(policy.chars().count() <= MAX_POLICY_CHARS);
    }

    #[test]
    fn refuses_wildcards_and_unterminated_prefixes() {
        for bad in [
            "training/*/",
            "training/x",
            "training/${aws:username}/",
            "a?/",
        ] {
            let mut s = scope(Access::ReadOnly);
            s.prefix = bad;
            assert!(
                matches!(build(&s), Err(PolicyError::InvalidPrefix { .. })),
                "{bad}"
            );
        }
    }
}
