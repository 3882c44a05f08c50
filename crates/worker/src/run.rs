//! One run over a partition: list the raw prefix, take this shard's current versions, run
//! `--parallelism` samples at once while the shredder deletes verified samples' raw versions
//! in batches, then write the attestation and return the summary.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt as _;
use securepipe_cloud::objects::{ObjectError, ObjectStore, ObjectVersion};
use securepipe_cloud::{Aws, AwsSettings};
use securepipe_envelope::keyring::KmsKeyringError;
use securepipe_envelope::{Decryptor, KmsKeyring};
use serde::Serialize;

use crate::existing::ExistingFeatures;
use crate::failpoint;
use crate::quarantine::Reason;
use crate::sample::{self, Context, Listed, Outcome, PARTITION_CONTEXT_KEY, Record, SampleError};
use crate::settings::Settings;
use crate::shred;

/// What stops a run before or after the samples (a sample's own failure never does).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use the KMS keys {}", .arns.join(", "))]
    Keyring {
        arns: Vec<String>,
        source: KmsKeyringError,
    },
    #[error("invalid feature parameters")]
    Params(#[source] securepipe_dsp::ParamsError),
    #[error("cannot list the raw samples")]
    List(#[source] ObjectError),
    #[error("cannot list the existing features")]
    ListFeatures(#[source] ObjectError),
    #[error("cannot read the bucket's versioning")]
    Versioning(#[source] ObjectError),
}

/// The one-line result of a run (stdout and the termination log).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Current raw versions this shard found under the partition.
    pub listed: u64,
    /// Features written, verified and every raw version deleted, in this run.
    pub shredded: u64,
    /// Of `shredded`: features an interrupted earlier run had already verified.
    pub already_done: u64,
    /// Newly quarantined in this run, by reason.
    pub quarantined: BTreeMap<&'static str, u64>,
    /// Skipped because an earlier run quarantined them.
    pub still_quarantined: u64,
    /// Left for the next run (transient failures and concurrent changes).
    pub failed: u64,
    /// Where the attestation was written; absent when writing it failed.
    pub attestation_key: Option<String>,
}

impl Summary {
    /// Every listed object was shredded, already done or quarantined, and the attestation
    /// is written.
    pub fn complete(&self) -> bool {
        self.failed == 0 && self.attestation_key.is_some()
    }
}

/// The attestation document: `<attestation-prefix><partition>/<run-id>.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Attestation<'a> {
    run_id: &'a str,
    bucket: &'a str,
    partition: &'a str,
    shard_index: u32,
    shard_count: u32,
    securepipe_version: &'static str,
    feature_kind: &'static str,
    params_sha256: &'a str,
    started_at: &'a str,
    finished_at: String,
    samples: &'a [Record],
    quarantined: &'a [QuarantineRecord],
    summary: &'a Summary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineRecord {
    source_key: String,
    source_version_id: String,
    reason: &'static str,
}

/// Runs over the partition. `Err` only when nothing could be attempted.
pub async fn run(settings: Settings, aws_settings: AwsSettings) -> Result<Summary, RunError> {
    #[cfg(feature = "failpoints")]
    let _failpoints = failpoint::setup();
    let started_at = sample::now();
    settings
        .features
        .params(48_000)
        .validate()
        .map_err(RunError::Params)?;
    let aws = Aws::from_env(aws_settings).await;
    let store = ObjectStore::new(&aws, &settings.region, &settings.bucket);
    let keyring =
        KmsKeyring::new(aws.kms(&settings.region), &settings.kms_key_arns).map_err(|source| {
            RunError::Keyring {
                arns: settings.kms_key_arns.clone(),
                source,
            }
        })?;
    let decryptor =
        Decryptor::new(keyring).require(PARTITION_CONTEXT_KEY, settings.partition.clone());
    let versioned = store.is_versioned().await.map_err(RunError::Versioning)?;
    let entries = store
        .list_versions(&settings.raw_root)
        .await
        .map_err(RunError::List)?;
    let objects: Vec<Listed> = current_versions(&entries)
        .into_iter()
        .filter(|object| settings.takes(&object.key))
        .collect();
    tracing::info!(bucket = %settings.bucket, prefix = %settings.raw_root, listed = objects.len(),
        versioned, shard = settings.shard_index, shards = settings.shard_count, "listed raw samples");
    let feature_keys: Vec<String> = objects
        .iter()
        .filter_map(|object| settings.feature_key(&object.key))
        .collect();
    let existing = ExistingFeatures::list(&store, &settings.feature_root, &feature_keys)
        .await
        .map_err(RunError::ListFeatures)?;

    let ctx = Context {
        params_sha256: settings.params_sha256(),
        settings,
        store,
        decryptor,
        versioned,
        existing,
    };
    let mut tally = Tally {
        summary: Summary {
            listed: objects.len() as u64,
            ..Summary::default()
        },
        records: Vec::new(),
        quarantined: Vec::new(),
    };
    let (to_shred, verified) = tokio::sync::mpsc::unbounded_channel();
    // The shredder runs until this block ends and drops the sender, so a send cannot fail.
    let samples = async {
        let to_shred = to_shred;
        futures::stream::iter(objects)
            .map(|object| sample::process(&ctx, object))
            .buffer_unordered(ctx.settings.parallelism)
            .for_each(|outcome| {
                match outcome {
                    Outcome::Verified(sample) => {
                        let _ = to_shred.send(sample);
                    }
                    Outcome::Quarantined(object, reason) => tally.quarantined(object, reason),
                    Outcome::StillQuarantined => tally.summary.still_quarantined += 1,
                    Outcome::Failed => tally.summary.failed += 1,
                }
                futures::future::ready(())
            })
            .await;
    };
    let ((), shredded) = tokio::join!(samples, shred::shred(&ctx, verified));
    for (_, result) in shredded {
        tally.shredded(result);
    }
    let Tally {
        mut summary,
        mut records,
        mut quarantined,
    } = tally;
    records.sort_by(|a, b| a.source_key.cmp(&b.source_key));
    quarantined.sort_by(|a, b| a.source_key.cmp(&b.source_key));
    failpoint::point("worker::before-attestation");

    let key = ctx.settings.attestation_key();
    let mut attested = summary.clone();
    attested.attestation_key = Some(key.clone());
    let document = Attestation {
        run_id: &ctx.settings.run_id,
        bucket: &ctx.settings.bucket,
        partition: &ctx.settings.partition,
        shard_index: ctx.settings.shard_index,
        shard_count: ctx.settings.shard_count,
        securepipe_version: env!("CARGO_PKG_VERSION"),
        feature_kind: sample::kind_name(ctx.settings.kind),
        params_sha256: &ctx.params_sha256,
        started_at: &started_at,
        finished_at: sample::now(),
        samples: &records,
        quarantined: &quarantined,
        summary: &attested,
    };
    match write_attestation(&ctx.store, &key, &document).await {
        Ok(()) => summary.attestation_key = Some(key),
        Err(err) => {
            tracing::error!(key, error = %sample::DisplayChain(&err), "cannot write the attestation");
        }
    }
    Ok(summary)
}

/// The outcomes counted so far, and what the attestation lists.
struct Tally {
    summary: Summary,
    records: Vec<Record>,
    quarantined: Vec<QuarantineRecord>,
}

impl Tally {
    fn quarantined(&mut self, object: Listed, reason: Reason) {
        *self.summary.quarantined.entry(reason.as_str()).or_default() += 1;
        self.quarantined.push(QuarantineRecord {
            source_key: object.key,
            source_version_id: object.version_id,
            reason: reason.as_str(),
        });
    }

    fn shredded(&mut self, result: Result<Record, SampleError>) {
        match result {
            Ok(record) => {
                self.summary.shredded += 1;
                self.summary.already_done += u64::from(record.resumed);
                self.records.push(record);
            }
            Err(_) => self.summary.failed += 1,
        }
    }
}

async fn write_attestation(
    store: &ObjectStore,
    key: &str,
    document: &Attestation<'_>,
) -> Result<(), ObjectError> {
    use base64::Engine as _;
    use sha2::Digest as _;
    // Serializing plain strings and numbers cannot fail.
    let body = serde_json::to_vec_pretty(document).unwrap_or_default();
    let checksum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
    store
        .put(key, body, &checksum, "application/json", &BTreeMap::new())
        .await
        .map(|_| ())
}

/// The current version of each key, with the key's older versions and delete markers: keys
/// whose latest entry is a delete marker (deleted by the ingestion side) and folder
/// placeholders (`.../`) are not samples.
fn current_versions(entries: &[ObjectVersion]) -> Vec<Listed> {
    let mut older: HashMap<&str, Vec<String>> = HashMap::new();
    for entry in entries.iter().filter(|v| !v.is_latest) {
        older
            .entry(entry.key.as_str())
            .or_default()
            .push(entry.version_id.clone());
    }
    entries
        .iter()
        .filter(|v| v.is_latest && !v.is_delete_marker && !v.key.ends_with('/'))
        .map(|v| Listed {
            key: v.key.clone(),
            version_id: v.version_id.clone(),
            etag: v.etag.clone(),
            size: v.size,
            older: older.remove(v.key.as_str()).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, version: &str, latest: bool, marker: bool) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version_id: version.into(),
            etag: format!("\"{key}{version}\""),
            size: 10,
            is_latest: latest,
            is_delete_marker: marker,
        }
    }

    #[test]
    fn only_live_current_versions_are_samples() {
        let entries = [
            entry("raw/p/a.wav", "3", true, false),
            entry("raw/p/a.wav", "2", false, true),
            entry("raw/p/a.wav", "1", false, false),
            entry("raw/p/gone.wav", "2", true, true),
            entry("raw/p/gone.wav", "1", false, false),
            entry("raw/p/folder/", "1", true, false),
        ];
        let listed = current_versions(&entries);
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].key.as_str(), listed[0].version_id.as_str()),
            ("raw/p/a.wav", "3")
        );
        assert_eq!(listed[0].older, ["2", "1"]);
    }

    #[test]
    fn the_summary_is_one_camel_case_line() {
        let mut summary = Summary {
            listed: 3,
            shredded: 1,
            already_done: 1,
            failed: 1,
            ..Summary::default()
        };
        summary.quarantined.insert("truncated", 1);
        let line = serde_json::to_string(&summary).unwrap();
        assert_eq!(
            line,
            r#"{"listed":3,"shredded":1,"alreadyDone":1,"quarantined":{"truncated":1},"stillQuarantined":0,"failed":1,"attestationKey":null}"#
        );
        assert!(!summary.complete());
        summary.failed = 0;
        summary.attestation_key = Some("audit/p/r.json".into());
        assert!(summary.complete());
    }
}
