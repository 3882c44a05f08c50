//! One raw object through every step: features already there? → get (pinned) → decrypt
//! (required partition context) → decode and features → put → verify. A verified sample
//! goes to the shredder (`shred`), which deletes raw versions in batches. Returns what
//! happened; the run goes on whatever one sample does.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use securepipe_cloud::objects::{ObjectError, ObjectStore, Pin};
use securepipe_envelope::{DecryptError, Decryptor, KmsKeyring};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::existing::ExistingFeatures;
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
    /// Which feature keys need a HEAD before their sample's GET.
    pub existing: ExistingFeatures,
}

impl Context {
    /// How `object`'s listed version is named in a GET or a delete: by VersionId, or by ETag
    /// on an unversioned bucket (its one version is `null`).
    pub fn pin(&self, object: &Listed) -> Pin {
        if self.versioned {
            Pin::Version(object.version_id.clone())
        } else {
            Pin::ETag(object.etag.clone())
        }
    }
}

/// The current version of a raw key, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub version_id: String,
    pub etag: String,
    pub size: u64,
    /// The key's older versions and delete markers, as listed (versioned bucket).
    pub older: Vec<String>,
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
    /// Features written and verified: the raw versions go next.
    Verified(Shreddable),
    /// Quarantined by this run.
    Quarantined(Listed, Reason),
    /// Already carries the quarantine tag; skipped.
    StillQuarantined,
    /// Not finished (transient or not); retried by the next run, never quarantined.
    Failed,
}

/// A sample whose features are verified, waiting for its raw versions to be deleted.
#[derive(Debug)]
pub struct Shreddable {
    pub object: Listed,
    pub feature_key: String,
    pub verified: Verified,
    /// An earlier, interrupted run had already written and verified the features.
    pub resumed: bool,
    pub started_at: String,
}

impl Shreddable {
    /// The attestation record, once every raw version is deleted.
    pub fn record(&self, finished_at: &str) -> Record {
        let object = &self.object;
        let mut versions_deleted = vec![object.version_id.clone()];
        versions_deleted.extend(object.older.iter().cloned());
        Record {
            source_key: object.key.clone(),
            source_version_id: object.version_id.clone(),
            versions_deleted,
            plaintext_sha256: self.verified.plaintext_sha256.clone(),
            feature_key: self.feature_key.clone(),
            feature_sha256: self.verified.features_sha256.clone(),
            sample_rate: self.verified.sample_rate,
            resumed: self.resumed,
            started_at: self.started_at.clone(),
            finished_at: finished_at.to_owned(),
        }
    }
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
    #[error("the deletion batch holding {key} failed")]
    Batch { key: String, source: ObjectError },
    #[error("the deletion of {key} could not be confirmed")]
    Unconfirmed { key: String, source: ObjectError },
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

pub(crate) fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Runs every step for `object` and logs the outcome (keys and reasons, never contents).
pub async fn process(ctx: &Context, object: Listed) -> Outcome {
    let started_at = now();
    let result = steps(ctx, &object).await;
    let key = object.key.as_str();
    let version = object.version_id.as_str();
    match result {
        Ok((feature_key, verified, resumed)) => {
            tracing::debug!(key, version, feature_key, resumed, "features verified");
            Outcome::Verified(Shreddable {
                object,
                feature_key,
                verified,
                resumed,
                started_at,
            })
        }
        Err(Stop::AlreadyQuarantined) => {
            tracing::info!(key, version, "skipped: quarantined by an earlier run");
            Outcome::StillQuarantined
        }
        Err(Stop::Quarantine(reason)) => match quarantine(ctx, &object, reason).await {
            Ok(true) => {
                tracing::warn!(key, version, reason = reason.as_str(), "quarantined");
                Outcome::Quarantined(object, reason)
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

/// The steps up to verified features: their key, what their metadata says, and whether an
/// earlier run had written them.
async fn steps(ctx: &Context, object: &Listed) -> Result<(String, Verified, bool), Stop> {
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

    // When the feature object may exist, its HEAD and the raw GET go out together, one round
    // trip less per sample; the body is used only when no verified features of this version
    // exist. An object over the size limit is never read.
    let pin = ctx.pin(object);
    let fetch = async {
        if object.size > settings.max_object_bytes {
            return Ok(None);
        }
        ctx.store
            .open(key, Some(&pin), settings.max_object_bytes)
            .await
            .map(Some)
    };
    let head = async {
        if ctx.existing.may_exist(&feature_key) {
            ctx.store.head(&feature_key).await
        } else {
            Ok(None)
        }
    };
    let (head, fetched) = tokio::join!(head, fetch);

    // Features of this exact version already verified (a re-run after a crash): only the
    // deletion is left.
    if let Some(head) = head?
        && let Ok(verified) = metadata::verify(&head, &source, None)
    {
        return Ok((feature_key, verified, true));
    }
    let fetched = fetched?.ok_or(Stop::Quarantine(Reason::TooLarge))?;
    if fetched.tag_count > 0 {
        let tags = ctx.store.tags(key, version_of(ctx, object)).await?;
        if tags.contains_key(QUARANTINE_TAG) {
            return Err(Stop::AlreadyQuarantined);
        }
    }
    failpoint::point("worker::after-get");

    // The body goes from the connection through the decryptor as it arrives: no copy of the
    // whole ciphertext is held. A read error is transient (`Reason::of_decrypt_error`).
    let capacity = usize::try_from(fetched.length.min(settings.max_object_bytes)).unwrap_or(0);
    let decrypted = async {
        let stream = ctx.decryptor.start(fetched.into_reader()).await?;
        stream.read_all(capacity).await
    }
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
    Ok((feature_key, verified, false))
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
