//! The one revocation policy of a role, as data: groups of TrainingPartition UIDs, each
//! group denying every session tagged with one of its UIDs and issued before the group's
//! cut-off. Pure: parsed from and rendered to the inline policy's JSON.
//!
//! Size stays bounded: a group whose cut-off is older than the longest session (12 h) can
//! no longer match a live session and is pruned, and deletions share a group per hour
//! (their cut-off is rounded up to the hour, which is safe because a deleted object never
//! mints again), so a role holds at most 13 deletion groups plus a few exact ones.

use std::collections::BTreeSet;

use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};
use serde_json::{Value, json};

use crate::session_tags;

/// The longest session STS issues; a cut-off older than this denies nothing alive.
pub const LONGEST_SESSION: SignedDuration = SignedDuration::from_hours(12);
/// IAM's quota on the characters (whitespace excluded) of all of a role's inline
/// policies together.
pub const INLINE_POLICY_QUOTA: usize = 10_240;

/// Which of a TrainingPartition's sessions to deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cutoff {
    /// The TrainingPartition is being deleted: every session it ever had. The cut-off is
    /// the end of the current hour (its UID never mints again), so the hour's deletions
    /// share one statement.
    Deleted,
    /// The TrainingPartition lives on (its grant was withdrawn): exactly the sessions
    /// issued up to this instant, so a session minted after a new grant stays valid.
    IssuedUpTo(Timestamp),
}

impl Cutoff {
    /// The `aws:TokenIssueTime` bound (`DateLessThan`), at whole seconds.
    pub fn bound(self, now: Timestamp) -> Timestamp {
        let (at, unit, step) = match self {
            Self::Deleted => (now, Unit::Hour, SignedDuration::from_hours(1)),
            Self::IssuedUpTo(at) => (at, Unit::Second, SignedDuration::from_secs(1)),
        };
        // Rounded up past `at`, so a session issued within `at`'s second or hour is covered.
        let floor = at
            .round(TimestampRound::new().smallest(unit).mode(RoundMode::Trunc))
            .unwrap_or(at);
        floor.checked_add(step).unwrap_or(floor)
    }
}

/// UIDs whose sessions issued before `before` are denied.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    before: Timestamp,
    uids: BTreeSet<String>,
}

/// A role's revocation policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    /// Sorted by cut-off, at most one per cut-off.
    groups: Vec<Group>,
    /// Statements securepipe did not write (someone edited the policy): kept verbatim, a
    /// deny is never dropped because it is not understood.
    foreign: Vec<Value>,
}

impl Document {
    /// Parses the policy as IAM returns it (possibly URL-encoded). `None` when the text is
    /// not a policy document at all.
    pub fn parse(text: &str) -> Option<Self> {
        let decoded = if text.trim_start().starts_with('{') {
            text.to_owned()
        } else {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .ok()?
                .into_owned()
        };
        let value: Value = serde_json::from_str(&decoded).ok()?;
        let statements = match value.get("Statement")? {
            Value::Array(all) => all.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            _ => return None,
        };
        let mut document = Self::default();
        for statement in statements {
            match group_of(&statement) {
                Some(group) => {
                    for uid in group.uids {
                        document.insert(&uid, group.before);
                    }
                }
                None => document.foreign.push(statement),
            }
        }
        Some(document)
    }

    /// Adds `uid` with cut-off `before`. A UID already denied up to a later cut-off stays
    /// as it is; one denied up to an earlier cut-off moves to the later one.
    pub fn insert(&mut self, uid: &str, before: Timestamp) {
        if self
            .groups
            .iter()
            .any(|g| g.before >= before && g.uids.contains(uid))
        {
            return;
        }
        for group in &mut self.groups {
            group.uids.remove(uid);
        }
        match self.groups.iter_mut().find(|g| g.before == before) {
            Some(group) => {
                group.uids.insert(uid.to_owned());
            }
            None => {
                self.groups.push(Group {
                    before,
                    uids: BTreeSet::from([uid.to_owned()]),
                });
                self.groups.sort_by_key(|g| g.before);
            }
        }
        self.groups.retain(|g| !g.uids.is_empty());
    }

    /// Drops the groups whose cut-off lies [`LONGEST_SESSION`] or more before `now`: every
    /// session they denied was issued before the cut-off, so it has expired.
    pub fn prune(&mut self, now: Timestamp) {
        let oldest = now.checked_sub(LONGEST_SESSION).unwrap_or(now);
        self.groups.retain(|g| g.before > oldest);
    }

    /// Whether `uid` is denied for sessions issued before `before`.
    pub fn denies(&self, uid: &str, before: Timestamp) -> bool {
        self.groups
            .iter()
            .any(|g| g.before >= before && g.uids.contains(uid))
    }

    /// The policy JSON, minified.
    pub fn render(&self) -> String {
        let mut statements: Vec<Value> = self.groups.iter().map(statement).collect();
        statements.extend(self.foreign.iter().cloned());
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.foreign.is_empty()
    }
}

/// The size IAM counts against the quota: the document without whitespace outside strings
/// (our rendering has none).
pub fn quota_size(rendered: &str) -> usize {
    rendered.chars().filter(|c| !c.is_whitespace()).count()
}

fn sid(before: Timestamp) -> String {
    // Sids are alphanumeric.
    format!("SecurepipeRevoke{}", before.strftime("%Y%m%dT%H%M%SZ"))
}

fn statement(group: &Group) -> Value {
    let uids: Vec<&String> = group.uids.iter().collect();
    json!({
        "Sid": sid(group.before),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": { session_tags::principal_tag(session_tags::UID): uids },
            "DateLessThan": { "aws:TokenIssueTime": group.before.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() },
        },
    })
}

/// The group a statement securepipe wrote stands for; `None` for anything else.
fn group_of(statement: &Value) -> Option<Group> {
    let before: Timestamp = statement
        .pointer("/Condition/DateLessThan/aws:TokenIssueTime")?
        .as_str()?
        .parse()
        .ok()?;
    if statement.get("Sid")?.as_str()? != sid(before)
        || statement.get("Effect")? != "Deny"
        || statement.get("Action")? != "*"
        || statement.get("Resource")? != "*"
    {
        return None;
    }
    let condition = statement.get("Condition")?.as_object()?;
    let equals = condition.get("StringEquals")?.as_object()?;
    if condition.len() != 2 || equals.len() != 1 {
        return None;
    }
    let uids = match equals.get(&session_tags::principal_tag(session_tags::UID))? {
        Value::String(one) => BTreeSet::from([one.clone()]),
        Value::Array(all) => all
            .iter()
            .map(|uid| uid.as_str().map(str::to_owned))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(Group { before, uids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn deletions_round_up_to_the_hour_and_withdrawals_to_the_second() {
        let now = at("2026-11-30T08:15:30.5Z");
        assert_eq!(Cutoff::Deleted.bound(now), at("2026-11-30T09:00:00Z"));
        assert_eq!(
            Cutoff::IssuedUpTo(now).bound(now),
            at("2026-11-30T08:15:31Z")
        );
        assert_eq!(
            Cutoff::Deleted.bound(at("2026-11-30T08:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
    }

    #[test]
    fn the_rendered_statement_denies_by_uid_tag_and_issue_time() {
        let mut document = Document::default();
        document.insert("uid-1", at("2026-11-30T09:00:00Z"));
        let value: Value = serde_json::from_str(&document.render()).unwrap();
        let statement = &value["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Action"], "*");
        assert_eq!(statement["Resource"], "*");
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:PrincipalTag/securepipe:uid"],
            json!(["uid-1"])
        );
        assert_eq!(
            statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-11-30T09:00:00Z"
        );
        assert!(
            statement["Condition"]["StringEquals"]
                .get("aws:PrincipalTag/securepipe:partition")
                .is_none(),
            "the tenant-chosen partition must not narrow the deny"
        );
    }

    #[test]
    fn it_round_trips_also_url_encoded() {
        let mut document = Document::default();
        document.insert("a", at("2026-11-30T09:00:00Z"));
        document.insert("b", at("2026-11-30T09:00:00Z"));
        document.insert("c", at("2026-11-30T08:10:01Z"));
        let rendered = document.render();
        assert_eq!(Document::parse(&rendered), Some(document.clone()));
        let encoded =
            percent_encoding::utf8_percent_encode(&rendered, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(Document::parse(&encoded), Some(document));
        assert_eq!(Document::parse("not json"), None);
    }

    #[test]
    fn a_uid_moves_to_a_later_cutoff_and_never_to_an_earlier_one() {
        let mut document = Document::default();
        document.insert("a", at("2026-11-30T08:10:01Z"));
        document.insert("a", at("2026-11-30T09:00:00Z"));
        assert_eq!(document.groups.len(), 1);
        assert!(document.denies("a", at("2026-11-30T09:00:00Z")));
        let before = document.clone();
        document.insert("a", at("2026-11-30T08:30:00Z"));
        assert_eq!(document, before);
    }

    #[test]
    fn groups_older_than_the_longest_session_are_pruned() {
        let mut document = Document::default();
        document.insert("old", at("2026-11-29T20:00:00Z"));
        document.insert("edge", at("2026-11-29T20:00:01Z"));
        document.insert("new", at("2026-11-30T08:00:00Z"));
        document.prune(at("2026-11-30T08:00:00Z"));
        assert!(!document.denies("old", at("2026-11-29T20:00:00Z")));
        assert!(document.denies("edge", at("2026-11-29T20:00:01Z")));
        assert!(document.denies("new", at("2026-11-30T08:00:00Z")));
    }

    #[test]
    fn foreign_statements_are_kept() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
        let mut document = Document::parse(text).unwrap();
        document.insert("a", at("2026-11-30T09:00:00Z"));
        let value: Value = serde_json::from_str(&document.render()).unwrap();
        assert_eq!(value["Statement"].as_array().unwrap().len(), 2);
        assert!(document.render().contains(r#""Sid":"Mine""#));
    }

    /// A day of deletions on one role, a thousand an hour: the policy never holds more
    /// than 13 hourly statements, and its size depends on the UIDs of the last 12 h only.
    #[test]
    fn a_busy_role_stays_bounded() {
        let start = at("2026-11-30T00:00:00Z");
        let mut document = Document::default();
        let mut largest_groups = 0;
        for minute in 0..(24 * 60) {
            let now = start + SignedDuration::from_mins(minute);
            document.insert(&format!("uid-{minute}"), Cutoff::Deleted.bound(now));
            document.prune(now);
            largest_groups = largest_groups.max(document.groups.len());
        }
        assert!(largest_groups <= 13, "{largest_groups}");
        // 40 deletions in an hour stay far below the quota.
        let mut forty = Document::default();
        for n in 0..40 {
            forty.insert(
                &format!("0f9e8d7c-6b5a-4c3d-2e1f-{n:012}"),
                Cutoff::Deleted.bound(start),
            );
        }
        assert!(quota_size(&forty.render()) < 2_000, "{}", forty.render());
    }
}
