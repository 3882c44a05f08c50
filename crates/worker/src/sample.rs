//! One raw object through every step: features already there? → get (pinned) → decrypt
//! (required partition context) → decode and features → put → verify → delete every raw
//! version. Returns what happened; the run goes on whatever one sample does.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use securepipe_cloud::objects::{ObjectError, ObjectStore, Pin};
use securepipe_envelope::{DecryptError, Decryptor, KmsKeyring};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::failpoint;
use crate::features::{self, FeatureError};
use crate::metadata::{self, Source, Verified};
use crate::quarantine::{QUARANTINE_TAG, Reason};
use crate::settings::Settings;

/// The encryption context pair every raw sample must carry: its partition.
pub const PARTITION_CONTEXT_KEY: &str = "securepipe:partition";

/// What a run shares between samples.
pub struct Context {
    pub settings: Settings,
    pub store: ObjectStore,
    pub decryptor: Decryptor<KmsKeyring>,
    /// Versioning is or was enabled: versions are pinned and deleted by VersionId.
    pub versioned: bool,
    pub params_sha256: String,
}

/// The current version of a raw key, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub version_id: String,
    pub etag: String,
    pub size: u64,
}

/// The attestation record of one shredded sample.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub source_key: String,
    pub source_version_id: String,
    pub versions_deleted: Vec<String>,
    pub plaintext_sha256: String,
    pub feature_key: String,
    /// Base64 SHA-256 of the feature object, as S3 stores it.
    pub feature_sha256: String,
    pub sample_rate: u32,
    /// The features were already written and verified by an earlier, interrupted run.
    pub resumed: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// How one sample ended.
#[derive(Debug)]
pub enum Outcome {
    Shredded(Record),
    /// Quarantined by this run.
    Quarantined(Reason),
    /// Already carries the quarantine tag; skipped.
    StillQuarantined,
    /// Not finished (transient or not); retried by the next run, never quarantined.
    Failed,
}

/// Why a sample could not be finished this run.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("cannot decrypt s3://{bucket}/{key}")]
    Decrypt {
        bucket: String,
        key: String,
        source: DecryptError,
    },
    #[error("features of {key} were not computed")]
    Features { key: String, source: FeatureError },
    #[error("the stored features {feature_key} do not verify: {problem}")]
    Verify {
        feature_key: String,
        problem: String,
    },
    #[error(
        "{key} changed during the run (its latest version is no longer {version_id}); left for the next run"
    )]
    Changed { key: String, version_id: String },
    #[error("versions {versions:?} of {key} are still listed after their deletion")]
    Leftover { key: String, versions: Vec<String> },
    #[error("the feature task for {key} stopped")]
    Task {
        key: String,
        source: tokio::task::JoinError,
    },
}

/// What stops the steps early.
enum Stop {
    Quarantine(Reason),
    AlreadyQuarantined,
    Fail(SampleError),
}

impl From<SampleError> for Stop {
    fn from(err: SampleError) -> Self {
        Self::Fail(err)
    }
}

impl From<ObjectError> for Stop {
    fn from(err: ObjectError) -> Self {
        Self::Fail(err.into())
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Runs every step for `object` and logs the outcome (keys and reasons, never contents).
pub async fn process(ctx: &Context, object: &Listed) -> Outcome {
    let started_at = now();
    let result = steps(ctx, object, &started_at).await;
    let key = object.key.as_str();
    let version = object.version_id.as_str();
    match result {
        Ok(record) => {
            tracing::info!(key, version, feature_key = %record.feature_key,
                versions_deleted = record.versions_deleted.len(), resumed = record.resumed,
                "shredded");
            Outcome::Shredded(record)
        }
        Err(Stop::AlreadyQuarantined) => {
            tracing::info!(key, version, "skipped: quarantined by an earlier run");
            Outcome::StillQuarantined
        }
        Err(Stop::Quarantine(reason)) => match quarantine(ctx, object, reason).await {
            Ok(true) => {
                tracing::warn!(key, version, reason = reason.as_str(), "quarantined");
                Outcome::Quarantined(reason)
            }
            Ok(false) => Outcome::StillQuarantined,
            Err(err) => {
                tracing::error!(key, version, reason = reason.as_str(), error = %DisplayChain(&err),
                    "cannot tag the object for quarantine");
                Outcome::Failed
            }
        },
        Err(Stop::Fail(err)) => {
            tracing::error!(key, version, error = %DisplayChain(&err), "failed; left for the next run");
            Outcome::Failed
        }
    }
}

async fn steps(ctx: &Context, object: &Listed, started_at: &str) -> Result<Record, Stop> {
    let settings = &ctx.settings;
    let key = object.key.as_str();
    let feature_key = settings
        .feature_key(key)
        .ok_or_else(|| Stop::Quarantine(Reason::NotEncrypted))?;
    let source = Source {
        key,
        version_id: &object.version_id,
        etag: &object.etag,
        params_sha256: &ctx.params_sha256,
    };

    // The feature HEAD and the raw GET go out together, one round trip less per sample; the
    // body is used only when no verified features of this version exist. An object over the
    // size limit is never read.
    let pin = if ctx.versioned {
        Pin::Version(object.version_id.clone())
    } else {
        Pin::ETag(object.etag.clone())
    };
    let fetch = async {
        if object.size > settings.max_object_bytes {
            return Ok(None);
        }
        ctx.store
            .get(key, Some(&pin), settings.max_object_bytes)
            .await
            .map(Some)
    };
    let (head, fetched) = tokio::join!(ctx.store.head(&feature_key), fetch);

    // Features of this exact version already verified (a re-run after a crash): only the
    // deletion is left.
    if let Some(head) = head?
        && let Ok(verified) = metadata::verify(&head, &source, None)
    {
        let versions_deleted = delete_raw(ctx, object).await?;
        return Ok(record(
            object,
            feature_key,
            verified,
            versions_deleted,
            true,
            started_at,
        ));
    }
    let fetched = fetched?.ok_or(Stop::Quarantine(Reason::TooLarge))?;
    if fetched.tag_count > 0 {
        let tags = ctx.store.tags(key, version_of(ctx, object)).await?;
        if tags.contains_key(QUARANTINE_TAG) {
            return Err(Stop::AlreadyQuarantined);
        }
    }
    failpoint::point("worker::after-get");

    let decrypted = ctx
        .decryptor
        .decrypt_to_vec(&fetched.bytes)
        .await
        .map_err(|err| match Reason::of_decrypt_error(&err) {
            Some(reason) => {
                tracing::debug!(key, reason = reason.as_str(), error = %DisplayChain(&err), "rejected message");
                Stop::Quarantine(reason)
            }
            None => Stop::Fail(SampleError::Decrypt {
                bucket: settings.bucket.clone(),
                key: key.to_owned(),
                source: err,
            }),
        })?;
    drop(fetched);
    failpoint::point("worker::after-decrypt");

    let kind = settings.kind;
    let options = settings.features.clone();
    let plaintext = decrypted.plaintext;
    // The plaintext moves into the task and is zeroized when it drops there.
    let computed = tokio::task::spawn_blocking(move || {
        features::compute(&plaintext, kind, &options)
    })
    .await
    .map_err(|source| SampleError::Task {
        key: key.to_owned(),
        source,
    })?
    .map_err(|err| match err {
        FeatureError::Encode(_) => Stop::Fail(SampleError::Features {
            key: key.to_owned(),
            source: err,
        }),
        _ => {
            tracing::debug!(key, error = %DisplayChain(&err), "plaintext is not usable audio");
            Stop::Quarantine(Reason::NotAudio)
        }
    })?;
    failpoint::point("worker::after-features");

    let checksum = BASE64.encode(Sha256::digest(&computed.npy));
    let size = computed.npy.len() as u64;
    let meta: BTreeMap<String, String> = metadata::build(
        &source,
        &computed.plaintext_sha256,
        computed.sample_rate,
        kind_name(kind),
        &checksum,
    );
    ctx.store
        .put(
            &feature_key,
            computed.npy,
            &checksum,
            "application/octet-stream",
            &meta,
        )
        .await?;
    failpoint::point("worker::after-put");

    let head = ctx
        .store
        .head(&feature_key)
        .await?
        .ok_or_else(|| SampleError::Verify {
            feature_key: feature_key.clone(),
            problem: "not found after the put".to_owned(),
        })?;
    let verified =
        metadata::verify(&head, &source, Some((&checksum, size))).map_err(|problem| {
            SampleError::Verify {
                feature_key: feature_key.clone(),
                problem,
            }
        })?;
    failpoint::point("worker::after-verify");

    let versions_deleted = delete_raw(ctx, object).await?;
    Ok(record(
        object,
        feature_key,
        verified,
        versions_deleted,
        false,
        started_at,
    ))
}

fn record(
    object: &Listed,
    feature_key: String,
    verified: Verified,
    versions_deleted: Vec<String>,
    resumed: bool,
    started_at: &str,
) -> Record {
    Record {
        source_key: object.key.clone(),
        source_version_id: object.version_id.clone(),
        versions_deleted,
        plaintext_sha256: verified.plaintext_sha256,
        feature_key,
        feature_sha256: verified.features_sha256,
        sample_rate: verified.sample_rate,
        resumed,
        started_at: started_at.to_owned(),
        finished_at: now(),
    }
}

pub fn kind_name(kind: securepipe_dsp::FeatureKind) -> &'static str {
    match kind {
        securepipe_dsp::FeatureKind::Mfcc => "mfcc",
        securepipe_dsp::FeatureKind::LogMel => "logmel",
    }
}

fn version_of<'a>(ctx: &Context, object: &'a Listed) -> Option<&'a str> {
    ctx.versioned.then_some(object.version_id.as_str())
}

/// Deletes every version of the raw key up to the processed one, only while the processed
/// version is still the latest: older versions and delete markers first, the processed
/// version last (so an interrupted deletion leaves it current, and the next run finds its
/// verified features), then lists again to confirm they are gone.
async fn delete_raw(ctx: &Context, object: &Listed) -> Result<Vec<String>, SampleError> {
    let store = &ctx.store;
    let key = object.key.as_str();
    if !ctx.versioned {
        store.delete_current(key, &object.etag).await?;
        failpoint::point("worker::after-delete");
        let left = store.versions_of(key).await?;
        if left.iter().any(|v| v.etag == object.etag) {
            return Err(SampleError::Leftover {
                key: key.to_owned(),
                versions: vec!["null".to_owned()],
            });
        }
        return Ok(vec!["null".to_owned()]);
    }
    let versions = store.versions_of(key).await?;
    let latest = versions.iter().find(|v| v.is_latest);
    if latest.map(|v| v.version_id.as_str()) != Some(object.version_id.as_str()) {
        return Err(SampleError::Changed {
            key: key.to_owned(),
            version_id: object.version_id.clone(),
        });
    }
    let older: Vec<String> = versions
        .iter()
        .filter(|v| v.version_id != object.version_id)
        .map(|v| v.version_id.clone())
        .collect();
    store.delete_versions(key, &older).await?;
    failpoint::point("worker::after-delete-noncurrent");
    store
        .delete_versions(key, std::slice::from_ref(&object.version_id))
        .await?;
    failpoint::point("worker::after-delete");
    let mut deleted = vec![object.version_id.clone()];
    deleted.extend(older);
    let left: Vec<String> = store
        .versions_of(key)
        .await?
        .into_iter()
        .filter(|v| deleted.contains(&v.version_id))
        .map(|v| v.version_id)
        .collect();
    if !left.is_empty() {
        return Err(SampleError::Leftover {
            key: key.to_owned(),
            versions: left,
        });
    }
    Ok(deleted)
}

/// Tags the object (this version) with the reason, keeping its other tags. `Ok(false)` when
/// it already carries the quarantine tag.
async fn quarantine(ctx: &Context, object: &Listed, reason: Reason) -> Result<bool, ObjectError> {
    let version = version_of(ctx, object);
    let mut tags = ctx.store.tags(&object.key, version).await?;
    if tags.contains_key(QUARANTINE_TAG) {
        return Ok(false);
    }
    tags.insert(QUARANTINE_TAG.to_owned(), reason.as_str().to_owned());
    ctx.store.put_tags(&object.key, version, &tags).await?;
    Ok(true)
}

/// An error and its causes on one line.
pub struct DisplayChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
