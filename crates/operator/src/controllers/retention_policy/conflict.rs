//! When two RetentionPolicies on one bucket would fight. They conflict when they claim the
//! same rule id, or when their rules cover overlapping prefixes (one prefix contains the
//! other) with actions that cannot both hold: different values for the same action, or an
//! expiration at or before a transition of the other rule (which then never happens).
//! Policies in conflict report it and write nothing until a person resolves it.

use securepipe_api::retention_policy::{BucketPosture, PostureMode};
use securepipe_cloud::lifecycle::RuleSpec;

use super::ownership;

/// Another policy's rule: from the cache of RetentionPolicies, or found in the bucket
/// under another policy's mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `<namespace>/<name>` of the other policy.
    pub owner: String,
    pub rule: RuleSpec,
}

/// The policy's own rule id within an S3 rule ID.
fn local_id(rule: &RuleSpec) -> &str {
    ownership::parse(&rule.id).map_or(rule.id.as_str(), |(_, local)| local)
}

fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Why two overlapping rules cannot both hold, if they cannot.
fn clash(a: &RuleSpec, b: &RuleSpec) -> Option<String> {
    if !overlaps(&a.prefix, &b.prefix) {
        return None;
    }
    let differ = |what: &str, x: Option<i32>, y: Option<i32>| match (x, y) {
        (Some(x), Some(y)) if x != y => Some(format!("{what} after {x} vs {y} days")),
        _ => None,
    };
    let expires_first = |expiring: &RuleSpec, moving: &RuleSpec| {
        let expiration = expiring.expiration_days?;
        moving
            .transitions
            .iter()
            .find(|t| t.days >= expiration)
            .map(|t| {
                format!(
                    "expiration after {expiration} days comes before the transition to {} at {} days",
                    t.storage_class, t.days
                )
            })
    };
    differ("expiration", a.expiration_days, b.expiration_days)
        .or_else(|| {
            differ(
                "noncurrent version expiration",
                a.noncurrent_version_expiration_days,
                b.noncurrent_version_expiration_days,
            )
        })
        .or_else(|| {
            differ(
                "aborting incomplete uploads",
                a.abort_incomplete_multipart_upload_days,
                b.abort_incomplete_multipart_upload_days,
            )
        })
        .or_else(|| {
            (!a.transitions.is_empty()
                && !b.transitions.is_empty()
                && a.transitions != b.transitions)
                .then(|| "different transitions".to_owned())
        })
        .or_else(|| expires_first(a, b))
        .or_else(|| expires_first(b, a))
}

/// Conflicts between this policy's `mine` and other policies' claims, one message each.
pub fn between(mine: &[RuleSpec], theirs: &[Claim]) -> Vec<String> {
    let mut found = Vec::new();
    for rule in mine {
        for claim in theirs {
            let (id, other_id) = (local_id(rule), local_id(&claim.rule));
            if id == other_id {
                found.push(format!(
                    "rule id {id} is also claimed by RetentionPolicy {}",
                    claim.owner
                ));
            } else if let Some(why) = clash(rule, &claim.rule) {
                found.push(format!(
                    "rule {id} ({}) overlaps rule {other_id} ({}) of RetentionPolicy {}: {why}",
                    rule.prefix, claim.rule.prefix, claim.owner
                ));
            }
        }
    }
    found
}

/// Conflicts among the rules of one policy.
pub fn within(rules: &[RuleSpec]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if let Some(why) = clash(a, b) {
                found.push(format!(
                    "rule {} ({}) overlaps rule {} ({}): {why}",
                    local_id(a),
                    a.prefix,
                    local_id(b),
                    b.prefix
                ));
            }
        }
    }
    found
}

/// Two policies enforcing default encryption with different keys would rewrite each
/// other's setting on every resync.
pub fn posture_between(mine: &BucketPosture, theirs: &[(String, BucketPosture)]) -> Vec<String> {
    if mine.mode != PostureMode::Enforce {
        return Vec::new();
    }
    let Some(key) = &mine.sse_kms_key_arn else {
        return Vec::new();
    };
    theirs
        .iter()
        .filter(|(_, other)| other.mode == PostureMode::Enforce)
        .filter_map(|(owner, other)| {
            let other_key = other.sse_kms_key_arn.as_ref()?;
            (other_key != key).then(|| {
                format!(
                    "bucketPosture enforces encryption with key {key}, RetentionPolicy {owner} with key {other_key}"
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use securepipe_cloud::lifecycle::TransitionSpec;

    fn rule(id: &str, prefix: &str) -> RuleSpec {
        RuleSpec {
            id: format!("securepipe/ns/p/{id}"),
            prefix: prefix.into(),
            transitions: vec![],
            expiration_days: None,
            noncurrent_version_expiration_days: None,
            abort_incomplete_multipart_upload_days: None,
        }
    }

    fn expiring(id: &str, prefix: &str, days: i32) -> RuleSpec {
        RuleSpec {
            expiration_days: Some(days),
            ..rule(id, prefix)
        }
    }

    fn theirs(rule: RuleSpec) -> Claim {
        Claim {
            owner: "other/policy".into(),
            rule: RuleSpec {
                id: rule
                    .id
                    .replace("securepipe/ns/p/", "securepipe/other/policy/"),
                ..rule
            },
        }
    }

    #[test]
    fn disjoint_prefixes_never_conflict() {
        let mine = [expiring("a", "ingestion/raw/", 90)];
        let other = [theirs(expiring("b", "training/features/", 30))];
        assert!(between(&mine, &other).is_empty());
        // A shared leading string is not enough: prefixes are folders.
        let other = [theirs(expiring("b", "ingestion/raw-old/", 30))];
        assert!(between(&mine, &other).is_empty());
    }

    #[test]
    fn the_same_rule_id_conflicts_whatever_the_prefix() {
        let mine = [expiring("raw", "ingestion/raw/", 90)];
        let other = [theirs(expiring("raw", "elsewhere/", 90))];
        let found = between(&mine, &other);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("rule id raw is also claimed by RetentionPolicy other/policy"));
    }

    #[test]
    fn overlapping_prefixes_with_different_expirations_conflict() {
        let mine = [expiring("raw", "ingestion/raw/", 90)];
        let other = [theirs(expiring("all", "ingestion/", 30))];
        let found = between(&mine, &other);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("expiration after 90 vs 30 days"),
            "{found:?}"
        );
    }

    #[test]
    fn overlapping_prefixes_that_agree_or_complement_coexist() {
        let mine = [expiring("raw", "ingestion/raw/", 90)];
        // Same action, same value: redundant, harmless.
        assert!(between(&mine, &[theirs(expiring("all", "ingestion/", 90))]).is_empty());
        // Different actions that do not interfere.
        let mut aborts = rule("uploads", "ingestion/");
        aborts.abort_incomplete_multipart_upload_days = Some(3);
        assert!(between(&mine, &[theirs(aborts)]).is_empty());
        let mut archive = rule("archive", "ingestion/");
        archive.transitions = vec![TransitionSpec {
            days: 60,
            storage_class: "GLACIER".into(),
        }];
        assert!(between(&mine, &[theirs(archive)]).is_empty());
    }

    #[test]
    fn an_expiration_before_a_transition_conflicts() {
        let mine = [expiring("raw", "ingestion/raw/", 30)];
        let mut archive = rule("archive", "ingestion/");
        archive.transitions = vec![TransitionSpec {
            days: 60,
            storage_class: "GLACIER".into(),
        }];
        let found = between(&mine, &[theirs(archive)]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("before the transition to GLACIER at 60 days"),
            "{found:?}"
        );
    }

    #[test]
    fn every_action_is_compared() {
        let mut a = rule("a", "x/");
        let mut b = rule("b", "x/y/");
        a.noncurrent_version_expiration_days = Some(1);
        b.noncurrent_version_expiration_days = Some(7);
        assert!(clash(&a, &b).unwrap().contains("noncurrent"));
        b.noncurrent_version_expiration_days = Some(1);
        a.abort_incomplete_multipart_upload_days = Some(1);
        b.abort_incomplete_multipart_upload_days = Some(2);
        assert!(clash(&a, &b).unwrap().contains("incomplete uploads"));
        b.abort_incomplete_multipart_upload_days = Some(1);
        a.transitions = vec![TransitionSpec {
            days: 30,
            storage_class: "STANDARD_IA".into(),
        }];
        b.transitions = vec![TransitionSpec {
            days: 30,
            storage_class: "ONEZONE_IA".into(),
        }];
        assert!(clash(&a, &b).unwrap().contains("transitions"));
        b.transitions = a.transitions.clone();
        assert_eq!(clash(&a, &b), None);
    }

    #[test]
    fn within_one_policy() {
        let rules = [
            expiring("raw", "ingestion/raw/", 90),
            expiring("features", "training/features/", 730),
            expiring("all", "ingestion/", 30),
        ];
        let found = within(&rules);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("rule raw (ingestion/raw/) overlaps rule all (ingestion/)"));
    }

    fn posture(mode: PostureMode, key: Option<&str>) -> BucketPosture {
        BucketPosture {
            sse_kms_key_arn: key.map(Into::into),
            versioning: true,
            block_public_access: true,
            deny_insecure_transport: true,
            mode,
        }
    }

    #[test]
    fn two_enforcers_with_different_keys_conflict() {
        let key_a = "arn:aws:kms:us-east-1:000000000000:key/0b6a8d4e-3c1f-4f7a-9d2e-5a6b7c8d9e0f";
        let key_b = "arn:aws:kms:us-east-1:000000000000:key/7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8";
        let mine = posture(PostureMode::Enforce, Some(key_a));
        let other = |mode, key| vec![("o/p".to_owned(), posture(mode, key))];
        assert_eq!(
            posture_between(&mine, &other(PostureMode::Enforce, Some(key_b))).len(),
            1
        );
        assert!(posture_between(&mine, &other(PostureMode::Enforce, Some(key_a))).is_empty());
        assert!(posture_between(&mine, &other(PostureMode::Audit, Some(key_b))).is_empty());
        assert!(posture_between(&mine, &other(PostureMode::Enforce, None)).is_empty());
        let auditor = posture(PostureMode::Audit, Some(key_a));
        assert!(posture_between(&auditor, &other(PostureMode::Enforce, Some(key_b))).is_empty());
    }
}
