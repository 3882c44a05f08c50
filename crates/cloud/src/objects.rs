//! S3 object operations for extract-and-shred: list every version under a prefix, get one
//! version pinned (VersionId, or If-Match on an unversioned bucket), put with a SHA-256
//! checksum and user metadata, HEAD to verify, delete pinned versions in batches, and read or
//! write an object's tags. The worker sees only the types defined here, never the SDK's.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumMode, Delete, ObjectIdentifier, Tag, Tagging,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::Aws;
use crate::failure::{Failure, FailureReason};

/// One bucket's objects.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// One entry of ListObjectVersions: an object version or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    /// `null` for the version written while versioning was off.
    pub version_id: String,
    /// Quoted, as S3 returns it; empty for delete markers.
    pub etag: String,
    pub size: u64,
    pub is_latest: bool,
    pub is_delete_marker: bool,
}

/// Which stored state of a key a GET returns or a delete removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Exactly this version (versioned bucket).
    Version(String),
    /// The current object only while its ETag is this one (unversioned bucket).
    ETag(String),
}

/// A fetched object, its body not read yet: it is read as it arrives, so the store never
/// holds a whole object.
#[derive(Debug)]
pub struct Fetched {
    body: ByteStream,
    /// The body's length as the response states it (0 if it states none).
    pub length: u64,
    /// How many tags the version carries (from `x-amz-tagging-count`).
    pub tag_count: u32,
    max_bytes: u64,
}

impl Fetched {
    /// The body, cut at the limit `open` was given. A connection lost mid-body is a read
    /// error, never an early end: the HTTP client checks the length the response stated.
    pub fn into_reader(self) -> impl tokio::io::AsyncRead + Unpin {
        use tokio::io::AsyncReadExt as _;
        self.body.into_async_read().take(self.max_bytes)
    }
}

/// What a HEAD shows of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Base64 SHA-256 that S3 verified at upload, when the object has one.
    pub checksum_sha256: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lowercased by S3.
    pub metadata: BTreeMap<String, String>,
}

/// What a PUT stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub checksum_sha256: Option<String>,
    pub version_id: Option<String>,
}

/// A failed object call, naming the operation, bucket and key.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation} on s3://{bucket}/{key} failed ({}): {}", failure.reason, failure.message)]
pub struct ObjectError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub failure: Failure,
}

impl ObjectError {
    pub fn reason(&self) -> FailureReason {
        self.failure.reason
    }

    /// Whether retrying later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        self.failure.reason.is_transient()
    }
}

impl ObjectStore {
    pub fn new(aws: &Aws, region: &str, bucket: &str) -> Self {
        Self {
            s3: aws.s3(region),
            bucket: bucket.to_owned(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn error<E, R>(&self, operation: &'static str, key: &str, err: &SdkError<E, R>) -> ObjectError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        ObjectError {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            failure: Failure::from_sdk(err),
        }
    }

    fn invalid(&self, operation: &'static str, key: &str, message: String) -> ObjectError {
        ObjectError {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            failure: Failure {
                reason: FailureReason::InvalidRequest,
                message,
            },
        }
    }

    /// Whether versioning is or was on (`Enabled` or `Suspended`): objects then have
    /// version IDs (`null` for those written while it was off) and are deleted by them.
    pub async fn is_versioned(&self) -> Result<bool, ObjectError> {
        let output = self
            .s3
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|err| self.error("GetBucketVersioning", "", &err))?;
        Ok(matches!(
            output.status(),
            Some(BucketVersioningStatus::Enabled | BucketVersioningStatus::Suspended)
        ))
    }

    /// Every version and delete marker of every key under `prefix`, grouped by key within a
    /// page, each key's latest entry first.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>, ObjectError> {
        let mut entries = Vec::new();
        let mut key_marker = None;
        let mut version_marker = None;
        loop {
            let output = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|err| self.error("ListObjectVersions", prefix, &err))?;
            let mut page = Vec::new();
            for version in output.versions() {
                page.push(ObjectVersion {
                    key: version.key().unwrap_or_default().to_owned(),
                    version_id: version.version_id().unwrap_or("null").to_owned(),
                    etag: version.e_tag().unwrap_or_default().to_owned(),
                    size: version
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    is_latest: version.is_latest().unwrap_or(false),
                    is_delete_marker: false,
                });
            }
            for marker in output.delete_markers() {
                page.push(ObjectVersion {
                    key: marker.key().unwrap_or_default().to_owned(),
                    version_id: marker.version_id().unwrap_or("null").to_owned(),
                    etag: String::new(),
                    size: 0,
                    is_latest: marker.is_latest().unwrap_or(false),
                    is_delete_marker: true,
                });
            }
            // S3 returns versions and markers in two lists: group them by key, the latest
            // entry of each key first (the sort is stable).
            page.sort_by(|a, b| a.key.cmp(&b.key).then(b.is_latest.cmp(&a.is_latest)));
            entries.extend(page);
            if output.is_truncated() != Some(true) {
                break;
            }
            key_marker = output.next_key_marker().map(str::to_owned);
            version_marker = output.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(entries)
    }

    /// The current keys under `prefix`, at most `limit` of them (one ListObjectsV2 page of
    /// `limit` keys, never a full listing), and whether more exist.
    pub async fn list_keys_bounded(
        &self,
        prefix: &str,
        limit: u16,
    ) -> Result<(Vec<String>, bool), ObjectError> {
        let (keys, next) = self
            .list_keys_page(prefix, None, None, Some(i32::from(limit)))
            .await?;
        Ok((keys, next.is_some()))
    }

    /// The keys under `prefix` after `start_after` (all of them when `None`), in key order,
    /// reading at most `max_pages` ListObjectsV2 pages of 1,000, and whether the listing
    /// reached the end.
    pub async fn list_keys_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max_pages: usize,
    ) -> Result<(Vec<String>, bool), ObjectError> {
        let mut keys = Vec::new();
        let mut token = None;
        for _ in 0..max_pages {
            let (page, next) = self
                .list_keys_page(prefix, start_after, token.take(), None)
                .await?;
            keys.extend(page);
            let Some(next) = next else {
                return Ok((keys, true));
            };
            token = Some(next);
        }
        Ok((keys, false))
    }

    /// One ListObjectsV2 page of keys under `prefix` (at most `max_keys`, S3's 1,000 when
    /// `None`), and the continuation token when more follow.
    async fn list_keys_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<(Vec<String>, Option<String>), ObjectError> {
        let output = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(token)
            .set_max_keys(max_keys)
            .send()
            .await
            .map_err(|err| self.error("ListObjectsV2", prefix, &err))?;
        let keys = output
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect();
        let next = (output.is_truncated() == Some(true))
            .then(|| output.next_continuation_token().map(str::to_owned))
            .flatten();
        Ok((keys, next))
    }

    /// The whole current `key`, a small document (an attestation, say) of at most
    /// `max_bytes`.
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, ObjectError> {
        use tokio::io::AsyncReadExt as _;
        let fetched = self.open(key, None, max_bytes).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(fetched.length).unwrap_or(0));
        fetched
            .into_reader()
            .read_to_end(&mut bytes)
            .await
            .map_err(|err| ObjectError {
                operation: "GetObject",
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                failure: Failure {
                    reason: FailureReason::EndpointUnavailable,
                    message: format!("reading the body failed: {err}"),
                },
            })?;
        Ok(bytes)
    }

    /// `key` in the pinned state (the current one without a pin), its body to be read as it
    /// arrives; refuses a stated length over `max_bytes` and reads no more than that.
    pub async fn open(
        &self,
        key: &str,
        pin: Option<&Pin>,
        max_bytes: u64,
    ) -> Result<Fetched, ObjectError> {
        let request = self.s3.get_object().bucket(&self.bucket).key(key);
        let request = match pin {
            Some(Pin::Version(id)) => request.version_id(id),
            Some(Pin::ETag(etag)) => request.if_match(etag),
            None => request,
        };
        let output = request
            .send()
            .await
            .map_err(|err| self.error("GetObject", key, &err))?;
        let length = output
            .content_length()
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0);
        if length > max_bytes {
            return Err(self.invalid(
                "GetObject",
                key,
                format!("{length} bytes, more than the limit of {max_bytes}"),
            ));
        }
        let tag_count = output
            .tag_count()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        Ok(Fetched {
            body: output.body,
            length,
            tag_count,
            max_bytes,
        })
    }

    /// Puts `body` with its base64 SHA-256 (S3 verifies it and stores it) and `metadata`.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        checksum_sha256: &str,
        content_type: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Stored, ObjectError> {
        let output = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .checksum_sha256(checksum_sha256)
            .content_type(content_type)
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|err| self.error("PutObject", key, &err))?;
        Ok(Stored {
            checksum_sha256: output.checksum_sha256().map(str::to_owned),
            version_id: output.version_id().map(str::to_owned),
        })
    }

    /// The current object's size, stored checksum and metadata; `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, ObjectError> {
        let result = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
                return Ok(None);
            }
            Err(err) => return Err(self.error("HeadObject", key, &err)),
        };
        Ok(Some(ObjectHead {
            size: output
                .content_length()
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or(0),
            checksum_sha256: output.checksum_sha256().map(str::to_owned),
            metadata: output
                .metadata()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.to_lowercase(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    /// Permanently deletes these objects, each pinned: a version by its VersionId, or the
    /// current object of an unversioned bucket only while its ETag is the given one (S3's
    /// conditional delete). DeleteObjects takes 1,000 objects per call. Returns the objects
    /// S3 refused, one error each naming the key; `Err` when a call failed as a whole (the
    /// objects of earlier calls are gone then).
    pub async fn delete_pinned(
        &self,
        objects: &[(String, Pin)],
    ) -> Result<Vec<ObjectError>, ObjectError> {
        const PER_CALL: usize = 1000;
        let mut refused = Vec::new();
        for chunk in objects.chunks(PER_CALL) {
            let identifiers = chunk
                .iter()
                .map(|(key, pin)| {
                    let identifier = ObjectIdentifier::builder().key(key);
                    match pin {
                        Pin::Version(id) => identifier.version_id(id),
                        Pin::ETag(etag) => identifier.e_tag(etag),
                    }
                    .build()
                    .map_err(|err| self.invalid("DeleteObjects", key, err.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let first_key = chunk.first().map_or("", |(key, _)| key.as_str());
            let delete = Delete::builder()
                .set_objects(Some(identifiers))
                .quiet(true)
                .build()
                .map_err(|err| self.invalid("DeleteObjects", first_key, err.to_string()))?;
            let output = self
                .s3
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|err| self.error("DeleteObjects", first_key, &err))?;
            refused.extend(output.errors().iter().map(|failed| {
                let code = failed.code();
                ObjectError {
                    operation: "DeleteObjects",
                    bucket: self.bucket.clone(),
                    key: failed.key().unwrap_or_default().to_owned(),
                    failure: Failure {
                        reason: crate::failure::reason_for_code(code, failed.message()),
                        message: format!(
                            "version {}: {}: {}",
                            failed.version_id().unwrap_or("null"),
                            code.unwrap_or("error"),
                            failed.message().unwrap_or_default()
                        ),
                    },
                }
            }));
        }
        Ok(refused)
    }

    /// The tags of one version (`None`: the current object).
    pub async fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<BTreeMap<String, String>, ObjectError> {
        let output = self
            .s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|err| self.error("GetObjectTagging", key, &err))?;
        Ok(output
            .tag_set()
            .iter()
            .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
            .collect())
    }

    /// Replaces the tags of one version (`None`: the current object).
    pub async fn put_tags(
        &self,
        key: &str,
        version_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ObjectError> {
        let tag_set = tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|err| self.invalid("PutObjectTagging", key, err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|err| self.invalid("PutObjectTagging", key, err.to_string()))?;
        self.s3
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .tagging(tagging)
            .send()
            .await
            .map_err(|err| self.error("PutObjectTagging", key, &err))?;
        Ok(())
    }
}
