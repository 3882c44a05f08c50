//! Whether the TenantGrants cover what a resource asks for, without any I/O. A resource
//! is covered when one grant that applies to its namespace allows all of it (grants are
//! not combined: a role from one and a bucket from another is not a grant). Otherwise the
//! verdict names what the closest grant leaves out, so the `NotGranted` condition tells
//! the tenant which field to change or which grant to ask for.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use securepipe_api::tenant_grant::{TenantGrant, TenantGrantSpec};
use securepipe_api::training_partition::Access;

/// The namespace a resource lives in, as grants select it.
#[derive(Clone, Copy, Debug)]
pub struct Namespace<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// What a TrainingPartition asks for.
#[derive(Clone, Debug)]
pub struct PartitionRequest<'a> {
    pub role_arn: &'a str,
    pub bucket: &'a str,
    pub partition: &'a str,
    pub feature_prefix: &'a str,
    pub access: Access,
    pub duration: Duration,
    pub session_tag_keys: Vec<&'a str>,
    pub extraction: Option<ExtractionRequest<'a>>,
}

/// What extract-and-shred asks for.
#[derive(Clone, Copy, Debug)]
pub struct ExtractionRequest<'a> {
    pub raw_prefix: &'a str,
    pub kms_key_arn: &'a str,
}

/// What a RetentionPolicy asks for.
#[derive(Clone, Debug)]
pub struct RetentionRequest<'a> {
    pub bucket: &'a str,
    pub rule_prefixes: Vec<&'a str>,
    pub posture: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The named grant allows everything asked for.
    Covered { grant: String },
    /// No grant does; the message says what is missing.
    NotGranted { message: String },
}

/// Whether `grant` applies to `namespace`: named in `namespaces`, or selected by
/// `namespaceSelector` (with Kubernetes' semantics: an empty selector selects all).
pub fn applies(grant: &TenantGrantSpec, namespace: Namespace<'_>) -> bool {
    grant
        .namespaces
        .iter()
        .any(|n| n.as_str() == namespace.name)
        || grant
            .namespace_selector
            .as_ref()
            .is_some_and(|selector| selects(selector, namespace.labels))
}

/// Label selector matching (`matchLabels` and `matchExpressions`). An operator this code
/// does not know selects nothing: a grant fails closed.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let by_expression = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| meets(requirement, labels));
    by_label && by_expression
}

fn meets(requirement: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&requirement.key);
    let listed = |v: &String| {
        requirement
            .values
            .iter()
            .flatten()
            .any(|allowed| allowed == v)
    };
    match requirement.operator.as_str() {
        "In" => value.is_some_and(listed),
        "NotIn" => !value.is_some_and(listed),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters
/// (including none) and every other character for itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // The last `*` seen, and where in `name` it started matching.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            // Let the last `*` absorb one more character and retry from there.
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A partition pattern of a grant, with `${namespace}` expanded.
fn expand(pattern: &str, namespace: &str) -> String {
    pattern.replace("${namespace}", namespace)
}

fn access_rank(access: Access) -> u8 {
    match access {
        Access::ReadOnly => 0,
        Access::ReadWrite => 1,
    }
}

/// What `grant` leaves out of `request` (empty: it covers it).
pub fn partition_gaps(
    grant: &TenantGrantSpec,
    namespace: &str,
    request: &PartitionRequest<'_>,
) -> Vec<String> {
    let mut gaps = Vec::new();
    if !grant
        .role_arns
        .iter()
        .any(|r| r.as_str() == request.role_arn)
    {
        gaps.push(format!("spec.roleArn {}", request.role_arn));
    }
    if !grant.buckets.iter().any(|b| b.as_str() == request.bucket) {
        gaps.push(format!("spec.bucket {}", request.bucket));
    }
    if !grant
        .partitions
        .iter()
        .any(|p| glob_matches(&expand(p, namespace), request.partition))
    {
        gaps.push(format!("partition {}", request.partition));
    }
    if !grant
        .feature_prefixes
        .iter()
        .any(|p| request.feature_prefix.starts_with(p.as_str()))
    {
        gaps.push(format!("spec.featurePrefix {}", request.feature_prefix));
    }
    if access_rank(request.access) > access_rank(grant.max_access) {
        gaps.push(format!("spec.access {:?}", request.access));
    }
    if request.duration > Duration::from(grant.max_duration) {
        gaps.push(format!(
            "spec.credentials.duration {:?} (at most {:?})",
            request.duration,
            Duration::from(grant.max_duration)
        ));
    }
    for key in &request.session_tag_keys {
        if !grant.session_tag_keys.iter().any(|k| k.as_str() == *key) {
            gaps.push(format!("session tag {key}"));
        }
    }
    if let Some(extraction) = &request.extraction {
        match &grant.extraction {
            None => gaps.push("spec.extraction".to_owned()),
            Some(granted) => {
                if !granted
                    .raw_prefixes
                    .iter()
                    .any(|p| extraction.raw_prefix.starts_with(p.as_str()))
                {
                    gaps.push(format!("spec.rawPrefix {}", extraction.raw_prefix));
                }
                if !granted
                    .kms_key_arns
                    .iter()
                    .any(|k| k.as_str() == extraction.kms_key_arn)
                {
                    gaps.push(format!(
                        "spec.extraction.kmsKeyArn {}",
                        extraction.kms_key_arn
                    ));
                }
            }
        }
    }
    gaps
}

/// What `grant` leaves out of a RetentionPolicy's `request`.
pub fn retention_gaps(grant: &TenantGrantSpec, request: &RetentionRequest<'_>) -> Vec<String> {
    let Some(granted) = grant
        .retention
        .iter()
        .find(|r| r.bucket.as_str() == request.bucket)
    else {
        return vec![format!("lifecycle of bucket {}", request.bucket)];
    };
    let mut gaps: Vec<String> = request
        .rule_prefixes
        .iter()
        .filter(|prefix| {
            !granted
                .prefixes
                .iter()
                .any(|p| prefix.starts_with(p.as_str()))
        })
        .map(|prefix| format!("rule prefix {prefix:?}"))
        .collect();
    if request.posture && !granted.posture {
        gaps.push("spec.bucketPosture".to_owned());
    }
    gaps
}

/// The verdict for a TrainingPartition in `namespace`.
pub fn partition(
    grants: &[TenantGrant],
    namespace: Namespace<'_>,
    request: &PartitionRequest<'_>,
) -> Verdict {
    decide(grants, namespace, |spec| {
        partition_gaps(spec, namespace.name, request)
    })
}

/// The verdict for a RetentionPolicy in `namespace`.
pub fn retention(
    grants: &[TenantGrant],
    namespace: Namespace<'_>,
    request: &RetentionRequest<'_>,
) -> Verdict {
    decide(grants, namespace, |spec| retention_gaps(spec, request))
}

/// Covered by the first applicable grant without gaps; otherwise the gaps of the grant
/// that leaves out the least (ties: the first by name).
fn decide(
    grants: &[TenantGrant],
    namespace: Namespace<'_>,
    gaps: impl Fn(&TenantGrantSpec) -> Vec<String>,
) -> Verdict {
    let mut applicable: Vec<(&str, Vec<String>)> = grants
        .iter()
        .filter(|grant| applies(&grant.spec, namespace))
        .map(|grant| {
            let name = grant.metadata.name.as_deref().unwrap_or_default();
            (name, gaps(&grant.spec))
        })
        .collect();
    applicable.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(b.0)));
    match applicable.first() {
        None => Verdict::NotGranted {
            message: format!("no TenantGrant applies to namespace {}", namespace.name),
        },
        Some((name, gaps)) if gaps.is_empty() => Verdict::Covered {
            grant: (*name).to_owned(),
        },
        Some((name, gaps)) => Verdict::NotGranted {
            message: format!("TenantGrant {name} does not grant {}", gaps.join(", ")),
        },
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn grant(name: &str, yaml: &str) -> TenantGrant {
        TenantGrant {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: serde_yaml::from_str(yaml).unwrap(),
        }
    }

    const VOICE: &str = r#"
namespaces: [voice-ml]
roleArns: ["arn:aws:iam::111122223333:role/securepipe-training"]
buckets: [biometrics-prod]
partitions: ["${namespace}-*", shared]
maxAccess: ReadOnly
maxDuration: 1h
sessionTagKeys: [team]
extraction:
  kmsKeyArns: ["arn:aws:kms:eu-west-1:111122223333:key/1111"]
retention:
  - bucket: biometrics-prod
    prefixes: ["ingestion/raw/voice-ml-"]
"#;

    fn no_labels() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn request() -> PartitionRequest<'static> {
        PartitionRequest {
            role_arn: "arn:aws:iam::111122223333:role/securepipe-training",
            bucket: "biometrics-prod",
            partition: "voice-ml-en",
            feature_prefix: "training/features/",
            access: Access::ReadOnly,
            duration: Duration::from_secs(3600),
            session_tag_keys: vec!["team"],
            extraction: None,
        }
    }

    fn verdict(grants: &[TenantGrant], namespace: &str, request: &PartitionRequest<'_>) -> Verdict {
        let labels = no_labels();
        partition(
            grants,
            Namespace {
                name: namespace,
                labels: &labels,
            },
            request,
        )
    }

    fn not_granted(verdict: Verdict) -> String {
        match verdict {
            Verdict::NotGranted { message } => message,
            Verdict::Covered { grant } => panic!("covered by {grant}"),
        }
    }

    #[test]
    fn globs_match_whole_names() {
        for (pattern, name, matches) in [
            ("voice-ml-*", "voice-ml-en", true),
            ("voice-ml-*", "voice-ml-", true),
            ("voice-ml-*", "voice-ml", false),
            ("voice-ml-*", "team-b", false),
            ("*", "anything", true),
            ("*", "", true),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "abcx", false),
            ("a*b*c", "aXbYbZc", true),
            ("shared", "shared", true),
            ("shared", "shared2", false),
            ("shared", "share", false),
            ("*-en", "voice-ml-en", true),
            ("*-en", "voice-ml-de", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn a_request_inside_the_grant_is_covered() {
        let grants = [grant("voice", VOICE)];
        assert_eq!(
            verdict(&grants, "voice-ml", &request()),
            Verdict::Covered {
                grant: "voice".into()
            }
        );
        let shared = PartitionRequest {
            partition: "shared",
            ..request()
        };
        assert!(matches!(
            verdict(&grants, "voice-ml", &shared),
            Verdict::Covered { .. }
        ));
    }

    #[test]
    fn namespace_expands_per_namespace_so_another_team_is_not_covered() {
        let mut grants = [grant("voice", VOICE)];
        grants[0].spec.namespaces.push("team-b".into());
        // team-b may use team-b-*, never voice-ml-*.
        let message = not_granted(verdict(&grants, "team-b", &request()));
        assert!(message.contains("partition voice-ml-en"), "{message}");
        let own = PartitionRequest {
            partition: "team-b-x",
            ..request()
        };
        assert!(matches!(
            verdict(&grants, "team-b", &own),
            Verdict::Covered { .. }
        ));
    }

    #[test]
    fn every_field_outside_the_grant_is_named() {
        let grants = [grant("voice", VOICE)];
        let cases: Vec<(PartitionRequest<'static>, &str)> = vec![
            (
                PartitionRequest {
                    role_arn: "arn:aws:iam::999999999999:role/other",
                    ..request()
                },
                "spec.roleArn arn:aws:iam::999999999999:role/other",
            ),
            (
                PartitionRequest {
                    bucket: "team-b-data",
                    ..request()
                },
                "spec.bucket team-b-data",
            ),
            (
                PartitionRequest {
                    partition: "team-b-en",
                    ..request()
                },
                "partition team-b-en",
            ),
            (
                PartitionRequest {
                    feature_prefix: "ingestion/raw/",
                    ..request()
                },
                "spec.featurePrefix ingestion/raw/",
            ),
            (
                PartitionRequest {
                    access: Access::ReadWrite,
                    ..request()
                },
                "spec.access ReadWrite",
            ),
            (
                PartitionRequest {
                    duration: Duration::from_secs(7200),
                    ..request()
                },
                "spec.credentials.duration 7200s",
            ),
            (
                PartitionRequest {
                    session_tag_keys: vec!["team", "cost-center"],
                    ..request()
                },
                "session tag cost-center",
            ),
            (
                PartitionRequest {
                    extraction: Some(ExtractionRequest {
                        raw_prefix: "ingestion/raw/",
                        kms_key_arn: "arn:aws:kms:eu-west-1:111122223333:key/2222",
                    }),
                    ..request()
                },
                "spec.extraction.kmsKeyArn arn:aws:kms:eu-west-1:111122223333:key/2222",
            ),
            (
                PartitionRequest {
                    extraction: Some(ExtractionRequest {
                        raw_prefix: "other/",
                        kms_key_arn: "arn:aws:kms:eu-west-1:111122223333:key/1111",
                    }),
                    ..request()
                },
                "spec.rawPrefix other/",
            ),
        ];
        for (asked, missing) in cases {
            let message = not_granted(verdict(&grants, "voice-ml", &asked));
            assert!(
                message.starts_with("TenantGrant voice does not grant "),
                "{message}"
            );
            assert!(message.contains(missing), "{missing}: {message}");
            // Exactly one thing is missing in each case.
            assert!(!message.contains(", "), "{message}");
        }
    }

    #[test]
    fn extraction_needs_an_extraction_grant() {
        let mut grants = [grant("voice", VOICE)];
        grants[0].spec.extraction = None;
        let asked = PartitionRequest {
            extraction: Some(ExtractionRequest {
                raw_prefix: "ingestion/raw/",
                kms_key_arn: "arn:aws:kms:eu-west-1:111122223333:key/1111",
            }),
            ..request()
        };
        assert!(not_granted(verdict(&grants, "voice-ml", &asked)).contains("spec.extraction"));
        grants[0].spec.extraction = grant("g", VOICE).spec.extraction;
        assert!(matches!(
            verdict(&grants, "voice-ml", &asked),
            Verdict::Covered { .. }
        ));
    }

    #[test]
    fn no_grant_means_default_deny() {
        let message = not_granted(verdict(&[], "voice-ml", &request()));
        assert_eq!(message, "no TenantGrant applies to namespace voice-ml");
        let grants = [grant("voice", VOICE)];
        let message = not_granted(verdict(&grants, "intruder", &request()));
        assert_eq!(message, "no TenantGrant applies to namespace intruder");
    }

    #[test]
    fn grants_are_not_combined_and_the_closest_one_is_reported() {
        // One grant has the role, the other the bucket: neither covers both.
        let roles = grant(
            "a-roles",
            r#"{namespaces: [voice-ml], roleArns: ["arn:aws:iam::111122223333:role/securepipe-training"], buckets: [other], partitions: ["*"]}"#,
        );
        let buckets = grant(
            "b-buckets",
            r#"{namespaces: [voice-ml], roleArns: ["arn:aws:iam::111122223333:role/x"], buckets: [biometrics-prod], partitions: ["*"], sessionTagKeys: [team]}"#,
        );
        let message = not_granted(verdict(
            &[roles.clone(), buckets.clone()],
            "voice-ml",
            &request(),
        ));
        // a-roles misses the bucket and the tag; b-buckets only the role: b-buckets is closest.
        assert!(
            message.starts_with("TenantGrant b-buckets does not grant spec.roleArn"),
            "{message}"
        );
        // Once one grant covers all, it is the verdict whatever the order.
        let full = grant("voice", VOICE);
        for order in [
            vec![roles.clone(), buckets.clone(), full.clone()],
            vec![full.clone(), roles, buckets],
        ] {
            assert_eq!(
                verdict(&order, "voice-ml", &request()),
                Verdict::Covered {
                    grant: "voice".into()
                }
            );
        }
    }

    #[test]
    fn selectors_follow_kubernetes_semantics_and_fail_closed() {
        let labels: BTreeMap<String, String> = [
            ("team".to_owned(), "voice".to_owned()),
            ("tier".to_owned(), "prod".to_owned()),
        ]
        .into();
        let selector = |yaml: &str| -> LabelSelector { serde_yaml::from_str(yaml).unwrap() };
        for (yaml, selected) in [
            ("{}", true),
            ("{matchLabels: {team: voice}}", true),
            ("{matchLabels: {team: voice, tier: dev}}", false),
            (
                "{matchExpressions: [{key: team, operator: In, values: [voice, asr]}]}",
                true,
            ),
            (
                "{matchExpressions: [{key: team, operator: In, values: [asr]}]}",
                false,
            ),
            (
                "{matchExpressions: [{key: team, operator: NotIn, values: [asr]}]}",
                true,
            ),
            (
                "{matchExpressions: [{key: owner, operator: NotIn, values: [x]}]}",
                true,
            ),
            (
                "{matchExpressions: [{key: team, operator: NotIn, values: [voice]}]}",
                false,
            ),
            ("{matchExpressions: [{key: tier, operator: Exists}]}", true),
            (
                "{matchExpressions: [{key: owner, operator: Exists}]}",
                false,
            ),
            (
                "{matchExpressions: [{key: owner, operator: DoesNotExist}]}",
                true,
            ),
            (
                "{matchExpressions: [{key: team, operator: DoesNotExist}]}",
                false,
            ),
            (
                "{matchExpressions: [{key: team, operator: Gt, values: ['1']}]}",
                false,
            ),
            (
                "{matchLabels: {team: voice}, matchExpressions: [{key: tier, operator: In, values: [dev]}]}",
                false,
            ),
        ] {
            assert_eq!(selects(&selector(yaml), &labels), selected, "{yaml}");
        }
        let mut by_label = grant("voice", VOICE);
        by_label.spec.namespaces.clear();
        by_label.spec.namespace_selector = Some(selector("{matchLabels: {team: voice}}"));
        let applies_to = |name: &str, labels: &BTreeMap<String, String>| {
            applies(&by_label.spec, Namespace { name, labels })
        };
        assert!(applies_to("voice-ml", &labels));
        assert!(!applies_to("voice-ml", &no_labels()));
    }

    #[test]
    fn retention_needs_the_bucket_the_prefixes_and_posture_granted() {
        let grants = [grant("voice", VOICE)];
        let labels = no_labels();
        let namespace = Namespace {
            name: "voice-ml",
            labels: &labels,
        };
        let asked = |bucket, prefixes: Vec<&'static str>, posture| RetentionRequest {
            bucket,
            rule_prefixes: prefixes,
            posture,
        };
        assert!(matches!(
            retention(
                &grants,
                namespace,
                &asked("biometrics-prod", vec!["ingestion/raw/voice-ml-en/"], false)
            ),
            Verdict::Covered { .. }
        ));
        for (request, missing) in [
            (
                asked("team-b-data", vec!["x/"], false),
                "lifecycle of bucket team-b-data",
            ),
            (
                asked("biometrics-prod", vec!["ingestion/raw/"], false),
                "rule prefix \"ingestion/raw/\"",
            ),
            (
                asked("biometrics-prod", vec![""], false),
                "rule prefix \"\"",
            ),
            (
                asked("biometrics-prod", vec!["ingestion/raw/voice-ml-en/"], true),
                "spec.bucketPosture",
            ),
        ] {
            let message = not_granted(retention(&grants, namespace, &request));
            assert!(message.contains(missing), "{missing}: {message}");
        }
    }
}
