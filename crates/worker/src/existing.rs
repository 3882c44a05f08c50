//! Which feature objects already exist, from one bounded listing of the partition's feature
//! folder. Only a re-run after a crash finds features of the version it processes, so a
//! sample whose feature key is known to be absent needs no HEAD before its GET: one
//! request less per sample, for one listing page per 1,000 samples.
//!
//! The listing starts just before the smallest wanted key and reads at most as many pages
//! as the wanted keys could fill, plus one: a partition with many older features costs no
//! more than its backlog. Keys beyond where it stopped may exist and get their HEAD.
//! A wrong "absent" would cost work, never data: the features are recomputed, byte-equal,
//! and verified again before any deletion.

use std::collections::HashSet;

use securepipe_cloud::objects::{ObjectError, ObjectStore};

pub struct ExistingFeatures {
    keys: HashSet<String>,
    /// The last key read when the listing stopped early; `None` when it reached the end.
    listed_through: Option<String>,
}

impl ExistingFeatures {
    /// Lists the feature keys under `feature_root` from the smallest of `wanted` on.
    pub async fn list(
        store: &ObjectStore,
        feature_root: &str,
        wanted: &[String],
    ) -> Result<Self, ObjectError> {
        let Some(smallest) = wanted.iter().min() else {
            return Ok(Self {
                keys: HashSet::new(),
                listed_through: None,
            });
        };
        let start_after = before(smallest);
        let max_pages = wanted.len() / 1000 + 2;
        let (keys, complete) = store
            .list_keys_after(feature_root, start_after, max_pages)
            .await?;
        let listed_through = if complete {
            None
        } else {
            // An early stop read at least one full page.
            keys.last().cloned()
        };
        Ok(Self {
            keys: keys.into_iter().collect(),
            listed_through,
        })
    }

    /// Whether `key` may exist, so that its HEAD is needed.
    pub fn may_exist(&self, key: &str) -> bool {
        self.keys.contains(key)
            || self
                .listed_through
                .as_deref()
                .is_some_and(|last| key > last)
    }
}

/// A key that sorts just before `key`: `key` without its last character (a proper prefix
/// sorts first). `None` for a one-character key.
fn before(key: &str) -> Option<&str> {
    let last = key.chars().next_back()?;
    let shorter = &key[..key.len() - last.len_utf8()];
    (!shorter.is_empty()).then_some(shorter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(keys: &[&str], listed_through: Option<&str>) -> ExistingFeatures {
        ExistingFeatures {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            listed_through: listed_through.map(str::to_owned),
        }
    }

    #[test]
    fn a_complete_listing_answers_for_every_key() {
        let existing = index(&["f/p/a.npy"], None);
        assert!(existing.may_exist("f/p/a.npy"));
        assert!(!existing.may_exist("f/p/b.npy"));
        assert!(!existing.may_exist("f/p/zzz.npy"));
    }

    #[test]
    fn keys_beyond_an_early_stop_may_exist() {
        let existing = index(&["f/p/a.npy", "f/p/m.npy"], Some("f/p/m.npy"));
        assert!(!existing.may_exist("f/p/b.npy"));
        assert!(existing.may_exist("f/p/m.npy"));
        assert!(existing.may_exist("f/p/n.npy"));
    }

    #[test]
    fn the_listing_starts_before_the_smallest_key() {
        assert_eq!(before("f/p/a.npy"), Some("f/p/a.np"));
        assert!(before("f/p/a.npy").is_some_and(|b| b < "f/p/a.npy"));
        assert_eq!(before("f/p/é"), Some("f/p/"));
        assert_eq!(before("x"), None);
        assert_eq!(before(""), None);
    }
}
