//! String types shared by both resources. Each carries its admission rules in its schema,
//! so a rule is written once and every field of that type gets it.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Declares a transparent `String` newtype whose schema is the given JSON (with its CEL
/// rules); the type displays as its value and dereferences to `str`.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $schema:tt) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

validated_string!(
    /// An S3 bucket name (general purpose bucket naming rules).
    BucketName,
    {
        "type": "string",
        "minLength": 3,
        "maxLength": 63,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z0-9][a-z0-9.-]*[a-z0-9]$')",
             "message": "bucket name must use only lowercase letters, digits, '.' and '-', and begin and end with a letter or digit"},
            {"rule": "!self.contains('..')",
             "message": "bucket name must not contain two adjacent periods"},
            {"rule": "!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",
             "message": "bucket name must not be formatted as an IP address"},
            {"rule": "!(self.startsWith('xn--') || self.startsWith('sthree-') || self.startsWith('amzn-s3-demo-'))",
             "message": "bucket name must not start with a reserved prefix (xn--, sthree-, amzn-s3-demo-)"},
            {"rule": "!(self.endsWith('-s3alias') || self.endsWith('--ol-s3') || self.endsWith('.mrap') || self.endsWith('--x-s3') || self.endsWith('--table-s3'))",
             "message": "bucket name must not end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)"}
        ]
    }
);

validated_string!(
    /// An AWS region code such as `us-east-1` or `us-gov-west-1`.
    AwsRegion,
    {
        "type": "string",
        "maxLength": 32,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z]{2}(-(gov|iso|isob|isoe|isof|eusc))?-[a-z]+-[0-9]{1,2}$')",
             "message": "must be an AWS region code such as us-east-1"}
        ]
    }
);

validated_string!(
    /// The ARN of an IAM role: `arn:aws:iam::<account>:role/<path/name>`.
    IamRoleArn,
    {
        "type": "string",
        "maxLength": 2048,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$')",
             "message": "must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>"}
        ]
    }
);

validated_string!(
    /// The ARN of a KMS key (not an alias): `arn:aws:kms:<region>:<account>:key/<key id>`.
    KmsKeyArn,
    {
        "type": "string",
        "maxLength": 2048,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$')",
             "message": "must be a KMS key ARN: arn:aws:kms:<region>:<12-digit account>:key/<key id> (aliases are not accepted)"}
        ]
    }
);

validated_string!(
    /// An S3 key prefix that names a folder: `ingestion/raw/`. It is placed into IAM
    /// policies, so IAM wildcards (`*`, `?`) and policy variables (`$`) are refused.
    S3Prefix,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 512,
        "x-kubernetes-validations": [
            {"rule": "!self.startsWith('/')", "message": "prefix must not start with '/'"},
            {"rule": "self.endsWith('/')", "message": "prefix must end with '/'"},
            {"rule": "!self.contains('..')", "message": "prefix must not contain '..'"},
            {"rule": "!self.contains('//')", "message": "prefix must not contain an empty segment ('//')"},
            {"rule": "self.matches('^[A-Za-z0-9/._=+-]*$')",
             "message": "prefix may contain only letters, digits and / . _ = + - (IAM wildcards and policy variables are not allowed)"}
        ]
    }
);

validated_string!(
    /// A partition name: one path segment of the S3 layout, such as `team-a` or `2026.q1`.
    PartitionName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 63,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$')",
             "message": "partition must be lowercase letters, digits, '.', '_' or '-', beginning and ending with a letter or digit"},
            {"rule": "!self.contains('..')", "message": "partition must not contain '..'"}
        ]
    }
);

validated_string!(
    /// The name of a Kubernetes object (a DNS-1123 subdomain), such as a Secret's name.
    ObjectName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 253,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
             "message": "must be a lowercase DNS-1123 subdomain (letters, digits, '-' and '.')"}
        ]
    }
);

validated_string!(
    /// A namespace's name (a DNS-1123 label).
    NamespaceName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 63,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
             "message": "must be a namespace name (lowercase letters, digits and '-')"}
        ]
    }
);

validated_string!(
    /// A partition name or glob granted to tenants: `*` matches any run of characters and
    /// `${namespace}` stands for the tenant's namespace (`${namespace}-*`).
    PartitionPattern,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "x-kubernetes-validations": [
            {"rule": "self.matches('^([a-z0-9._*-]|[$][{]namespace[}])+$')",
             "message": "must be lowercase letters, digits, '.', '_', '-', '*' and ${namespace}"}
        ]
    }
);

validated_string!(
    /// A session tag key tenants may set: 1 to 128 characters, never under the reserved
    /// prefixes `securepipe:` or `aws:` in any letter case.
    SessionTagKey,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "x-kubernetes-validations": [
            {"rule": "!self.lowerAscii().startsWith('securepipe:') && !self.lowerAscii().startsWith('aws:')",
             "message": "must not start with the reserved prefixes securepipe: or aws: (any letter case)"}
        ]
    }
);

validated_string!(
    /// A lifecycle rule prefix as granted; may be empty (the whole bucket).
    RulePrefix,
    {
        "type": "string",
        "maxLength": 1024
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_serialize_as_plain_strings() {
        let bucket = BucketName::from("my-bucket");
        assert_eq!(serde_json::to_string(&bucket).unwrap(), "\"my-bucket\"");
        let back: BucketName = serde_json::from_str("\"other\"").unwrap();
        assert_eq!(back.as_str(), "other");
        assert_eq!(back.to_string(), "other");
    }

    #[test]
    fn every_rule_has_a_message() {
        let mut generator = SchemaGenerator::default();
        for schema in [
            BucketName::json_schema(&mut generator),
            AwsRegion::json_schema(&mut generator),
            IamRoleArn::json_schema(&mut generator),
            KmsKeyArn::json_schema(&mut generator),
            S3Prefix::json_schema(&mut generator),
            PartitionName::json_schema(&mut generator),
            ObjectName::json_schema(&mut generator),
            NamespaceName::json_schema(&mut generator),
            PartitionPattern::json_schema(&mut generator),
            SessionTagKey::json_schema(&mut generator),
        ] {
            let rules = schema
                .get("x-kubernetes-validations")
                .and_then(|v| v.as_array())
                .expect("validations");
            assert!(!rules.is_empty());
            for rule in rules {
                assert!(
                    rule.get("message")
                        .and_then(|m| m.as_str())
                        .is_some_and(|m| !m.is_empty())
                );
            }
        }
    }
}
