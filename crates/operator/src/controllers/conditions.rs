//! Writing a status's conditions in one reconcile, the same way for every kind: each with
//! the reconcile's generation and time and a bounded message, plus the patterns the kinds
//! share (a condition left as it was; `Stalled` or retrying).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use securepipe_api::condition::{self, Condition, Desired, Status, reasons, types};

/// Conditions messages are for people; keep them readable and well under the API limit.
pub const MAX_MESSAGE_CHARS: usize = 2000;

pub struct Conditions<'s> {
    conditions: &'s mut Vec<Condition>,
    generation: Option<i64>,
    now: Time,
}

impl<'s> Conditions<'s> {
    pub fn new(conditions: &'s mut Vec<Condition>, generation: Option<i64>, now: Time) -> Self {
        Self {
            conditions,
            generation,
            now,
        }
    }

    pub fn set(&mut self, type_: &str, status: Status, reason: &str, message: String) {
        condition::set(
            self.conditions,
            Desired {
                type_,
                status,
                reason,
                message: bounded(message),
            },
            self.generation,
            self.now.clone(),
        );
    }

    /// Leaves a condition this outcome says nothing about as it was; adds it as
    /// `Unknown` when it was never set, so every condition is always listed.
    pub fn keep(&mut self, type_: &str) {
        if condition::find(self.conditions, type_).is_none() {
            self.set(type_, Status::Unknown, reasons::NOT_CHECKED, String::new());
        }
    }

    /// `Stalled` with `reason` when retrying cannot fix the failure (someone must act),
    /// else `Stalled` False while the operator retries.
    pub fn stalled(&mut self, stalled: bool, reason: &str, message: String) {
        if stalled {
            self.set(types::STALLED, Status::True, reason, message);
        } else {
            self.set(
                types::STALLED,
                Status::False,
                reasons::RETRYING,
                format!("{reason}: retrying"),
            );
        }
    }
}

fn bounded(mut message: String) -> String {
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS - 3).collect();
        message.push_str("...");
    }
    message
}
