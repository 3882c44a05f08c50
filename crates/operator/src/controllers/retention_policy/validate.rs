//! The checks admission makes, made again in code (an older CRD may be installed, or the
//! object may predate a rule), plus the ones only S3 knows. A spec that fails gets a clear
//! condition naming the field; it never becomes a malformed PUT.

use std::collections::HashSet;
use std::time::Duration;

use securepipe_api::retention_policy::{LifecycleRule, RetentionPolicySpec, StorageClass};
use securepipe_cloud::lifecycle::{MAX_RULE_ID_CHARS, MAX_RULES, RuleSpec, TransitionSpec};

use super::conflict;
use super::ownership::Owner;

/// The shortest resync interval accepted.
pub const MIN_RESYNC: Duration = Duration::from_secs(10);
/// S3's minimum age for transitions to the infrequent-access classes.
const IA_MIN_DAYS: i32 = 30;
const MAX_DAYS: i32 = 36_500;

/// The S3 rules a valid spec asks for (IDs already marked as `owner`'s), or every problem
/// found, each naming its field.
pub fn rules(spec: &RetentionPolicySpec, owner: &Owner) -> Result<Vec<RuleSpec>, Vec<String>> {
    let mut problems = Vec::new();
    if spec.rules.is_empty() {
        problems.push("spec.rules: at least one rule is required".to_owned());
    }
    if spec.rules.len() > MAX_RULES {
        problems.push(format!(
            "spec.rules: {} rules; S3 accepts at most {MAX_RULES} per bucket",
            spec.rules.len()
        ));
    }
    let resync: Duration = spec.resync_interval.into();
    if spec.resync_interval.is_negative() || resync < MIN_RESYNC {
        problems.push(format!(
            "spec.resyncInterval: {} is shorter than the minimum of 10s",
            spec.resync_interval
        ));
    }
    let mut seen = HashSet::new();
    for (index, rule) in spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{index}]");
        if !seen.insert(rule.id.as_str()) {
            problems.push(format!("{field}.id: {:?} is used by another rule", rule.id));
        }
        check_rule(rule, owner, &field, &mut problems);
    }
    let built: Vec<RuleSpec> = spec
        .rules
        .iter()
        .map(|rule| rule_spec(rule, owner))
        .collect();
    if problems.is_empty() {
        // Overlapping rules of one policy that would cancel each other out.
        for clash in conflict::within(&built) {
            problems.push(format!("spec.rules: {clash}"));
        }
    }
    if problems.is_empty() {
        Ok(built)
    } else {
        Err(problems)
    }
}

/// The S3 model of one rule.
pub fn rule_spec(rule: &LifecycleRule, owner: &Owner) -> RuleSpec {
    RuleSpec {
        id: owner.rule_id(&rule.id),
        prefix: rule.prefix.to_string(),
        transitions: rule
            .transitions
            .iter()
            .map(|t| TransitionSpec {
                days: t.days,
                storage_class: t.storage_class.as_str().to_owned(),
            })
            .collect(),
        expiration_days: rule.expiration_days,
        noncurrent_version_expiration_days: rule.noncurrent_version_expiration_days,
        abort_incomplete_multipart_upload_days: rule.abort_incomplete_multipart_upload_days,
    }
    .normalized()
}

fn check_rule(rule: &LifecycleRule, owner: &Owner, field: &str, problems: &mut Vec<String>) {
    let id = &rule.id;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        problems.push(format!(
            "{field}.id: {id:?} may contain only letters, digits, '.', '_' and '-'"
        ));
    }
    let s3_id_chars = owner.rule_id(id).chars().count();
    if s3_id_chars > MAX_RULE_ID_CHARS {
        problems.push(format!(
            "{field}.id: the S3 rule ID {}<id> would be {s3_id_chars} characters; S3 accepts at most {MAX_RULE_ID_CHARS}",
            owner.prefix()
        ));
    }
    check_prefix(&rule.prefix, field, problems);

    if rule.transitions.is_empty()
        && rule.expiration_days.is_none()
        && rule.noncurrent_version_expiration_days.is_none()
        && rule.abort_incomplete_multipart_upload_days.is_none()
    {
        problems.push(format!(
            "{field}: a rule needs at least one action: transitions, expirationDays, noncurrentVersionExpirationDays or abortIncompleteMultipartUploadDays"
        ));
    }
    for (name, days) in [
        ("expirationDays", rule.expiration_days),
        (
            "noncurrentVersionExpirationDays",
            rule.noncurrent_version_expiration_days,
        ),
        (
            "abortIncompleteMultipartUploadDays",
            rule.abort_incomplete_multipart_upload_days,
        ),
    ] {
        if let Some(days) = days
            && !(1..=MAX_DAYS).contains(&days)
        {
            problems.push(format!("{field}.{name}: {days} is outside 1..={MAX_DAYS}"));
        }
    }
    check_transitions(rule, field, problems);
}

fn check_prefix(prefix: &str, field: &str, problems: &mut Vec<String>) {
    let field = format!("{field}.prefix");
    let mut problem = |why: &str| problems.push(format!("{field}: {prefix:?} {why}"));
    if prefix.is_empty() || prefix.len() > 512 {
        problem("must be 1 to 512 characters");
    }
    if prefix.starts_with('/') {
        problem("must not start with '/'");
    }
    if !prefix.ends_with('/') {
        problem("must end with '/'");
    }
    if prefix.contains("..") || prefix.contains("//") {
        problem("must not contain '..' or an empty segment");
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._=+-".contains(c))
    {
        problem("may contain only letters, digits and / . _ = + -");
    }
}

fn is_infrequent_access(class: StorageClass) -> bool {
    matches!(class, StorageClass::STANDARD_IA | StorageClass::ONEZONE_IA)
}

/// Position in S3's transition waterfall; a transition may only go further down.
fn waterfall_rank(class: StorageClass) -> u8 {
    match class {
        StorageClass::STANDARD_IA => 0,
        StorageClass::INTELLIGENT_TIERING => 1,
        StorageClass::ONEZONE_IA => 2,
        StorageClass::GLACIER_IR => 3,
        StorageClass::GLACIER => 4,
        StorageClass::DEEP_ARCHIVE => 5,
    }
}

/// Whether S3 supports a lifecycle transition from `from` to `to`.
fn transition_supported(from: StorageClass, to: StorageClass) -> bool {
    // One Zone-IA cannot move to Glacier Instant Retrieval, although it ranks above it.
    let unsupported = from == StorageClass::ONEZONE_IA && to == StorageClass::GLACIER_IR;
    waterfall_rank(to) > waterfall_rank(from) && !unsupported
}

fn check_transitions(rule: &LifecycleRule, field: &str, problems: &mut Vec<String>) {
    let mut previous: Option<(usize, i32, StorageClass)> = None;
    for (index, transition) in rule.transitions.iter().enumerate() {
        let here = format!("{field}.transitions[{index}]");
        let (days, class) = (transition.days, transition.storage_class);
        if !(0..=MAX_DAYS).contains(&days) {
            problems.push(format!("{here}.days: {days} is outside 0..={MAX_DAYS}"));
        }
        if is_infrequent_access(class) && days < IA_MIN_DAYS {
            problems.push(format!(
                "{here}.days: transitions to {} need days >= {IA_MIN_DAYS} (S3 rejects fewer)",
                class.as_str()
            ));
        }
        if let Some((previous_index, previous_days, previous_class)) = previous {
            if days <= previous_days {
                problems.push(format!(
                    "{here}.days: transitions must be in strictly ascending order of days ({days} follows {previous_days})"
                ));
            } else if is_infrequent_access(class) && days - previous_days < IA_MIN_DAYS {
                problems.push(format!(
                    "{here}.days: objects must stay {IA_MIN_DAYS} days in {} (transitions[{previous_index}]) before moving to {}",
                    previous_class.as_str(),
                    class.as_str()
                ));
            }
            if !transition_supported(previous_class, class) {
                problems.push(format!(
                    "{here}.storageClass: S3 does not transition from {} to {}",
                    previous_class.as_str(),
                    class.as_str()
                ));
            }
        }
        previous = Some((index, days, class));
    }
    if let (Some(expiration), Some((_, last_days, _))) = (rule.expiration_days, previous)
        && expiration <= last_days
    {
        problems.push(format!(
            "{field}.expirationDays: {expiration} must be greater than the days of every transition ({last_days})"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use securepipe_api::retention_policy::Transition;

    fn owner() -> Owner {
        Owner::new("ml", "prod")
    }

    fn transition(days: i32, storage_class: StorageClass) -> Transition {
        Transition {
            days,
            storage_class,
        }
    }

    fn raw_rule() -> LifecycleRule {
        LifecycleRule {
            id: "raw-samples".into(),
            prefix: "ingestion/raw/".into(),
            transitions: vec![
                transition(30, StorageClass::STANDARD_IA),
                transition(60, StorageClass::GLACIER),
            ],
            expiration_days: Some(90),
            noncurrent_version_expiration_days: Some(1),
            abort_incomplete_multipart_upload_days: Some(1),
        }
    }

    fn spec(rules: Vec<LifecycleRule>) -> RetentionPolicySpec {
        serde_json::from_value(serde_json::json!({
            "bucket": "biometrics-prod",
            "region": "us-east-1",
            "rules": rules,
        }))
        .unwrap()
    }

    fn problems(rules: Vec<LifecycleRule>) -> Vec<String> {
        super::rules(&spec(rules), &owner()).unwrap_err()
    }

    fn assert_problem(rules: Vec<LifecycleRule>, field: &str, words: &str) {
        let problems = problems(rules);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(field) && p.contains(words)),
            "expected a problem at {field} saying {words:?}, got {problems:#?}"
        );
    }

    #[test]
    fn the_biometric_layout_is_valid() {
        let features = LifecycleRule {
            id: "features".into(),
            prefix: "training/features/".into(),
            transitions: vec![],
            expiration_days: Some(730),
            noncurrent_version_expiration_days: None,
            abort_incomplete_multipart_upload_days: None,
        };
        let built = super::rules(&spec(vec![raw_rule(), features]), &owner()).unwrap();
        assert_eq!(built.len(), 2);
        assert_eq!(built[0].id, "securepipe/ml/prod/raw-samples");
        assert_eq!(built[0].prefix, "ingestion/raw/");
        assert_eq!(built[0].transitions[1].storage_class, "GLACIER");
        assert_eq!(built[1].expiration_days, Some(730));
    }

    #[test]
    fn transitions_are_normalized_when_built() {
        let mut rule = raw_rule();
        rule.transitions.reverse();
        let built = rule_spec(&rule, &owner());
        assert_eq!(built.transitions[0].days, 30);
    }

    #[test]
    fn infrequent_access_needs_thirty_days() {
        for class in [StorageClass::STANDARD_IA, StorageClass::ONEZONE_IA] {
            let mut rule = raw_rule();
            rule.transitions = vec![transition(29, class)];
            assert_problem(
                vec![rule],
                "spec.rules[0].transitions[0].days",
                "days >= 30",
            );
        }
        let mut glacier_at_zero = raw_rule();
        glacier_at_zero.transitions = vec![transition(0, StorageClass::GLACIER)];
        assert!(super::rules(&spec(vec![glacier_at_zero]), &owner()).is_ok());
    }

    #[test]
    fn infrequent_access_needs_thirty_days_after_the_previous_transition() {
        let mut rule = raw_rule();
        rule.transitions = vec![
            transition(30, StorageClass::STANDARD_IA),
            transition(45, StorageClass::ONEZONE_IA),
        ];
        assert_problem(
            vec![rule],
            "spec.rules[0].transitions[1].days",
            "stay 30 days",
        );
    }

    #[test]
    fn transitions_must_ascend() {
        let mut rule = raw_rule();
        rule.transitions = vec![
            transition(60, StorageClass::GLACIER),
            transition(60, StorageClass::DEEP_ARCHIVE),
        ];
        assert_problem(
            vec![rule],
            "spec.rules[0].transitions[1].days",
            "strictly ascending",
        );
    }

    #[test]
    fn transitions_follow_the_waterfall() {
        let mut upward = raw_rule();
        upward.transitions = vec![
            transition(30, StorageClass::GLACIER),
            transition(60, StorageClass::STANDARD_IA),
        ];
        assert_problem(
            vec![upward],
            "spec.rules[0].transitions[1].storageClass",
            "from GLACIER to STANDARD_IA",
        );
        let mut onezone_to_ir = raw_rule();
        onezone_to_ir.transitions = vec![
            transition(30, StorageClass::ONEZONE_IA),
            transition(60, StorageClass::GLACIER_IR),
        ];
        assert_problem(
            vec![onezone_to_ir],
            "spec.rules[0].transitions[1].storageClass",
            "from ONEZONE_IA to GLACIER_IR",
        );
        assert!(transition_supported(
            StorageClass::STANDARD_IA,
            StorageClass::INTELLIGENT_TIERING
        ));
        assert!(transition_supported(
            StorageClass::GLACIER_IR,
            StorageClass::DEEP_ARCHIVE
        ));
        assert!(!transition_supported(
            StorageClass::INTELLIGENT_TIERING,
            StorageClass::STANDARD_IA
        ));
    }

    #[test]
    fn expiration_comes_after_every_transition() {
        let mut rule = raw_rule();
        rule.expiration_days = Some(60);
        assert_problem(vec![rule], "spec.rules[0].expirationDays", "greater than");
    }

    #[test]
    fn a_rule_needs_an_action() {
        let rule = LifecycleRule {
            id: "idle".into(),
            prefix: "x/".into(),
            transitions: vec![],
            expiration_days: None,
            noncurrent_version_expiration_days: None,
            abort_incomplete_multipart_upload_days: None,
        };
        assert_problem(vec![rule], "spec.rules[0]", "at least one action");
    }

    #[test]
    fn day_counts_are_bounded() {
        let mut rule = raw_rule();
        rule.noncurrent_version_expiration_days = Some(0);
        rule.abort_incomplete_multipart_upload_days = Some(-3);
        let problems = problems(vec![rule]);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("spec.rules[0].noncurrentVersionExpirationDays"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("spec.rules[0].abortIncompleteMultipartUploadDays"))
        );
    }

    #[test]
    fn ids_are_unique_and_plain() {
        let mut twin = raw_rule();
        twin.prefix = "other/".into();
        assert_problem(
            vec![raw_rule(), twin],
            "spec.rules[1].id",
            "used by another rule",
        );
        let mut slashed = raw_rule();
        slashed.id = "a/b".into();
        assert_problem(vec![slashed], "spec.rules[0].id", "only letters");
    }

    #[test]
    fn s3_rule_ids_fit_in_255_characters() {
        let mut long = raw_rule();
        long.id = "r".repeat(250);
        assert_problem(vec![long], "spec.rules[0].id", "at most 255");
    }

    #[test]
    fn prefixes_are_checked() {
        for bad in ["/abs/", "no-slash", "a//b/", "a/../b/", "a/*/", ""] {
            let mut rule = raw_rule();
            rule.prefix = bad.into();
            assert_problem(vec![rule], "spec.rules[0].prefix", "");
        }
    }

    #[test]
    fn resync_interval_has_a_floor() {
        let mut short = spec(vec![raw_rule()]);
        short.resync_interval = kube::core::Duration::from(Duration::from_secs(5));
        let problems = super::rules(&short, &owner()).unwrap_err();
        assert!(
            problems[0].starts_with("spec.resyncInterval"),
            "{problems:?}"
        );
        short.resync_interval = kube::core::Duration::from(Duration::from_secs(10));
        assert!(super::rules(&short, &owner()).is_ok());
    }

    #[test]
    fn too_many_rules_are_refused() {
        let many: Vec<LifecycleRule> = (0..=MAX_RULES)
            .map(|i| LifecycleRule {
                id: format!("r{i}"),
                prefix: format!("p{i}/").as_str().into(),
                ..raw_rule()
            })
            .collect();
        assert_problem(many, "spec.rules", "at most 1000");
    }

    #[test]
    fn overlapping_rules_of_one_policy_must_agree() {
        let mut broad = raw_rule();
        broad.id = "broad".into();
        broad.prefix = "ingestion/".into();
        broad.transitions = vec![];
        broad.expiration_days = Some(30);
        assert_problem(vec![raw_rule(), broad], "spec.rules", "expiration");
    }
}
