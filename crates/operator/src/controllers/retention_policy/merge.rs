//! The pure heart of the controller: given the bucket's lifecycle rules and the rules this
//! policy wants, the document to write. Rules this policy does not own (other tools', other
//! policies') are kept exactly as read and in their order; this policy's rules follow.
//! Owned rules are compared semantically ([`StoredRule::spec`] normalizes order and
//! filter forms), so a document that already says the same thing is not written again.

use std::collections::BTreeMap;

use securepipe_cloud::lifecycle::{RuleSpec, StoredRule};

use super::ownership::Owner;

/// How an owned rule in the bucket differs from the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The policy's rule is not in the bucket.
    Missing(String),
    /// The bucket's rule says something else (or something securepipe never writes).
    Changed(String),
    /// The bucket holds a rule under this policy's mark that the policy no longer has.
    Unexpected(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(id) => write!(f, "{id} missing"),
            Self::Changed(id) => write!(f, "{id} changed"),
            Self::Unexpected(id) => write!(f, "{id} not in the policy"),
        }
    }
}

/// The document to write and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The whole lifecycle configuration: unowned rules as read, then the policy's rules.
    pub document: Vec<StoredRule>,
    /// Empty when the bucket already says what the policy says (nothing to write).
    pub differences: Vec<Difference>,
}

impl Plan {
    pub fn needs_write(&self) -> bool {
        !self.differences.is_empty()
    }
}

/// Merges `desired` (rule IDs already marked as `owner`'s) into the bucket's `current`
/// rules.
pub fn plan(current: &[StoredRule], owner: &Owner, desired: &[RuleSpec]) -> Plan {
    let mut owned: BTreeMap<&str, Vec<Option<RuleSpec>>> = BTreeMap::new();
    let mut document = Vec::with_capacity(current.len() + desired.len());
    for rule in current {
        match rule.id() {
            Some(id) if owner.owns(id) => owned.entry(id).or_default().push(rule.spec()),
            _ => document.push(rule.clone()),
        }
    }
    let mut differences = Vec::new();
    for want in desired {
        match owned.remove(want.id.as_str()).as_deref() {
            None => differences.push(Difference::Missing(want.id.clone())),
            Some([Some(have)]) if have == want => {}
            // Changed, outside securepipe's model, or duplicated.
            Some(_) => differences.push(Difference::Changed(want.id.clone())),
        }
        document.push(StoredRule::from_spec(want));
    }
    differences.extend(
        owned
            .into_keys()
            .map(|id| Difference::Unexpected(id.to_owned())),
    );
    Plan {
        document,
        differences,
    }
}

/// The bucket's rules without this policy's, or `None` when it holds none of them.
pub fn without_owned(current: &[StoredRule], owner: &Owner) -> Option<Vec<StoredRule>> {
    let kept: Vec<StoredRule> = current
        .iter()
        .filter(|rule| !rule.id().is_some_and(|id| owner.owns(id)))
        .cloned()
        .collect();
    (kept.len() != current.len()).then_some(kept)
}

/// The S3 IDs of this policy's rules present in `current`, in bucket order.
pub fn owned_ids(current: &[StoredRule], owner: &Owner) -> Vec<String> {
    current
        .iter()
        .filter_map(StoredRule::id)
        .filter(|id| owner.owns(id))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{
        ExpirationStatus, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
        NoncurrentVersionTransition, Tag, TransitionStorageClass,
    };
    use proptest::prelude::*;
    use securepipe_cloud::lifecycle::TransitionSpec;

    fn owner() -> Owner {
        Owner::new("ml", "prod")
    }

    fn spec(id: &str, prefix: &str, expiration: i32) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            prefix: prefix.into(),
            transitions: vec![
                TransitionSpec {
                    days: 30,
                    storage_class: "STANDARD_IA".into(),
                },
                TransitionSpec {
                    days: 60,
                    storage_class: "GLACIER".into(),
                },
            ],
            expiration_days: Some(expiration),
            noncurrent_version_expiration_days: Some(1),
            abort_incomplete_multipart_upload_days: None,
        }
    }

    fn ours(id: &str, expiration: i32) -> RuleSpec {
        spec(&owner().rule_id(id), &format!("{id}/"), expiration)
    }

    /// A rule another tool wrote, using features securepipe never writes.
    fn foreign(id: &str) -> StoredRule {
        let rule = LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(
                LifecycleRuleFilter::builder()
                    .and(
                        LifecycleRuleAndOperator::builder()
                            .prefix("logs/")
                            .tags(Tag::builder().key("team").value("ops").build().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .noncurrent_version_transitions(
                NoncurrentVersionTransition::builder()
                    .noncurrent_days(40)
                    .storage_class(TransitionStorageClass::Glacier)
                    .build(),
            )
            .build()
            .unwrap();
        StoredRule::from_sdk(rule)
    }

    fn stored(spec: &RuleSpec) -> StoredRule {
        StoredRule::from_spec(spec)
    }

    fn ids(rules: &[StoredRule]) -> Vec<&str> {
        rules.iter().map(|r| r.id().unwrap_or("<none>")).collect()
    }

    #[test]
    fn an_empty_bucket_gets_the_policy() {
        let desired = [ours("raw", 90), ours("features", 730)];
        let plan = plan(&[], &owner(), &desired);
        assert_eq!(
            plan.differences,
            vec![
                Difference::Missing(desired[0].id.clone()),
                Difference::Missing(desired[1].id.clone())
            ]
        );
        assert_eq!(
            ids(&plan.document),
            ["securepipe/ml/prod/raw", "securepipe/ml/prod/features"]
        );
        assert_eq!(plan.document[0].spec().as_ref(), Some(&desired[0]));
    }

    #[test]
    fn unowned_rules_are_kept_exactly_and_in_order() {
        let other_policy = stored(&spec("securepipe/ml/other/raw", "elsewhere/", 5));
        let current = [
            foreign("terraform-logs"),
            other_policy.clone(),
            foreign("console-rule"),
        ];
        let desired = [ours("raw", 90)];
        let plan = plan(&current, &owner(), &desired);
        assert!(plan.needs_write());
        assert_eq!(&plan.document[..3], &current[..]);
        assert_eq!(plan.document.len(), 4);
    }

    #[test]
    fn a_rule_without_an_id_is_unowned() {
        let mut anonymous = foreign("x").as_sdk().clone();
        anonymous.id = None;
        let current = [StoredRule::from_sdk(anonymous)];
        let plan = plan(&current, &owner(), &[ours("raw", 90)]);
        assert_eq!(plan.document[0], current[0]);
    }

    #[test]
    fn the_same_rules_in_another_order_need_no_write() {
        let desired = [ours("raw", 90), ours("features", 730)];
        let current = [
            stored(&desired[1]),
            foreign("terraform-logs"),
            stored(&desired[0]),
        ];
        let plan = plan(&current, &owner(), &desired);
        assert!(!plan.needs_write(), "{:?}", plan.differences);
    }

    #[test]
    fn normalized_forms_need_no_write() {
        let desired = [ours("raw", 90)];
        let mut reordered = stored(&desired[0]).as_sdk().clone();
        if let Some(t) = reordered.transitions.as_mut() {
            t.reverse();
        }
        let plan = plan(&[StoredRule::from_sdk(reordered)], &owner(), &desired);
        assert!(!plan.needs_write());
    }

    #[test]
    fn a_changed_rule_is_restored() {
        let desired = [ours("raw", 90), ours("features", 730)];
        let current = [stored(&desired[0]), stored(&ours("features", 365))];
        let plan = plan(&current, &owner(), &desired);
        assert_eq!(
            plan.differences,
            vec![Difference::Changed(desired[1].id.clone())]
        );
        assert_eq!(plan.document[1].spec().as_ref(), Some(&desired[1]));
    }

    #[test]
    fn a_deleted_rule_is_restored() {
        let desired = [ours("raw", 90), ours("features", 730)];
        let current = [foreign("tf"), stored(&desired[1])];
        let plan = plan(&current, &owner(), &desired);
        assert_eq!(
            plan.differences,
            vec![Difference::Missing(desired[0].id.clone())]
        );
        assert_eq!(
            ids(&plan.document),
            [
                "tf",
                "securepipe/ml/prod/raw",
                "securepipe/ml/prod/features"
            ]
        );
    }

    #[test]
    fn owned_rules_outside_the_model_are_replaced() {
        let desired = [ours("raw", 90)];
        let mut disabled = stored(&desired[0]).as_sdk().clone();
        disabled.status = ExpirationStatus::Disabled;
        let mut tagged = stored(&desired[0]).as_sdk().clone();
        tagged.filter = foreign("x").as_sdk().filter.clone();
        for changed in [disabled, tagged] {
            let plan = plan(&[StoredRule::from_sdk(changed)], &owner(), &desired);
            assert_eq!(
                plan.differences,
                vec![Difference::Changed(desired[0].id.clone())]
            );
            assert_eq!(plan.document, vec![stored(&desired[0])]);
        }
    }

    #[test]
    fn a_duplicated_owned_rule_is_rewritten_once() {
        let desired = [ours("raw", 90)];
        let current = [stored(&desired[0]), stored(&desired[0])];
        let plan = plan(&current, &owner(), &desired);
        assert!(plan.needs_write());
        assert_eq!(plan.document, vec![stored(&desired[0])]);
    }

    #[test]
    fn rules_dropped_from_the_policy_are_removed() {
        let desired = [ours("raw", 90)];
        let current = [stored(&desired[0]), stored(&ours("old", 10)), foreign("tf")];
        let plan = plan(&current, &owner(), &desired);
        assert_eq!(
            plan.differences,
            vec![Difference::Unexpected("securepipe/ml/prod/old".into())]
        );
        assert_eq!(ids(&plan.document), ["tf", "securepipe/ml/prod/raw"]);
    }

    #[test]
    fn another_policy_with_a_similar_name_is_not_ours() {
        let desired = [ours("raw", 90)];
        let neighbour = stored(&spec("securepipe/ml/prod-2/raw", "raw/", 1));
        let plan = plan(std::slice::from_ref(&neighbour), &owner(), &desired);
        assert_eq!(plan.document[0], neighbour);
        assert_eq!(
            plan.differences,
            vec![Difference::Missing(desired[0].id.clone())]
        );
    }

    #[test]
    fn removal_keeps_everything_else() {
        let current = [
            foreign("tf"),
            stored(&ours("raw", 90)),
            stored(&spec("securepipe/ml/other/raw", "raw/", 5)),
            stored(&ours("features", 730)),
        ];
        let kept = without_owned(&current, &owner()).unwrap();
        assert_eq!(kept, vec![current[0].clone(), current[2].clone()]);
        assert_eq!(without_owned(&kept, &owner()), None);
        assert_eq!(
            without_owned(&[stored(&ours("raw", 90))], &owner()),
            Some(vec![])
        );
        assert_eq!(
            owned_ids(&current, &owner()),
            ["securepipe/ml/prod/raw", "securepipe/ml/prod/features"]
        );
    }

    fn arb_owned() -> impl Strategy<Value = Vec<RuleSpec>> {
        proptest::collection::btree_map("[a-z]{1,6}", 1..400i32, 0..6).prop_map(|rules| {
            rules
                .into_iter()
                .map(|(id, days)| ours(&id, days))
                .collect()
        })
    }

    proptest! {
        /// For any bucket (foreign rules, stale and changed owned rules, any order) and any
        /// policy: the plan keeps every unowned rule unchanged and in order, holds exactly
        /// the policy's rules, and planning again on its result writes nothing.
        #[test]
        fn merge_properties(
            foreign_ids in proptest::collection::vec("[a-z]{1,6}", 0..5),
            present in arb_owned(),
            desired in arb_owned(),
            seed in any::<u64>(),
        ) {
            let mut current: Vec<StoredRule> = foreign_ids.iter().map(|id| foreign(id)).collect();
            let foreign_count = current.len();
            // Interleave owned rules deterministically from the seed.
            for (i, rule) in present.iter().enumerate() {
                let at = (seed as usize).wrapping_add(i * 7) % (current.len() + 1);
                current.insert(at, stored(rule));
            }
            let plan = plan(&current, &owner(), &desired);
            let unowned_in: Vec<&StoredRule> = current.iter()
                .filter(|r| !owner().owns(r.id().unwrap_or_default())).collect();
            prop_assert_eq!(unowned_in.len(), foreign_count);
            let unowned_out: Vec<&StoredRule> = plan.document.iter()
                .filter(|r| !owner().owns(r.id().unwrap_or_default())).collect();
            prop_assert_eq!(&unowned_in, &unowned_out);
            let owned_out: Vec<RuleSpec> = plan.document.iter()
                .filter(|r| owner().owns(r.id().unwrap_or_default()))
                .filter_map(StoredRule::spec).collect();
            prop_assert_eq!(&owned_out, &desired);
            prop_assert_eq!(plan.needs_write(), present != desired);
            let again = super::plan(&plan.document, &owner(), &desired);
            prop_assert!(!again.needs_write());
            prop_assert_eq!(again.document, plan.document);
        }
    }
}
