//! S3 plugin for benchfleet: a [`BlobStore`] on any S3-compatible service, through
//! [`object_store`]'s `AmazonS3`.
//!
//! - **Put-if-absent** is a conditional write (`If-None-Match: *`, [`PutMode::Create`]), atomic on
//!   S3 and MinIO. Blobs above [`S3Options::multipart_threshold`] go up as a multipart upload
//!   after a `HEAD` check (S3 has no conditional multipart in `object_store`); since benchfleet's
//!   keys are content addresses, two racing writers of one large key write the same bytes.
//! - **Range reads** are HTTP `Range` requests; **list** is a prefix listing (string prefix, as
//!   the trait says), sorted.
//! - **Retries** with exponential backoff on 5xx, throttling and connection errors
//!   ([`object_store::RetryConfig`], tunable through [`S3Options::retry`]).
//! - **Endpoint, region, bucket and credentials** come from [`S3Options`], falling back to the
//!   standard `AWS_*` environment variables. Requests are path-style when an endpoint is given
//!   (local servers), and plain HTTP is refused unless [`S3Options::allow_http`] is set.
//! - **Credentials are never shown**: `Debug` redacts them, and no error message includes them.
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace. The feature `testserver` adds a loopback S3 server for tests
//! ([`testserver`], binary `benchfleet-s3-testserver`); the store itself never uses it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), benchfleet_store::StoreError> {
//! use benchfleet_s3::{S3Options, S3Store};
//! use benchfleet_store::{BlobKey, BlobStore};
//! let store = S3Store::new(S3Options {
//!     endpoint: Some("http://127.0.0.1:9000".into()),
//!     bucket: "benchfleet".into(),
//!     access_key: Some("dev".into()),
//!     secret_key: Some("dev-secret".into()),
//!     allow_http: true,
//!     ..S3Options::default()
//! })?;
//! store.put_if_absent(&BlobKey::new("records/a")?, "hello".into()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use benchfleet_store::{
    BlobKey, BlobMeta, BlobStore, Capability, ErrorKind, PutOutcome, Result, StoreError,
};

#[cfg(feature = "testserver")]
pub mod testserver;

/// Conditional PUTs at least this large that fail are checked with a HEAD: a server may refuse
/// them before reading the body and close the connection (a broken pipe, not a 412).
const EARLY_REFUSAL_BYTES: usize = 256 << 10;

/// Retry policy for requests that fail transiently (5xx, throttling, connection errors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct S3Retry {
    pub max_retries: usize,
    pub init_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up retrying a request after this long.
    pub retry_timeout: Duration,
}

impl Default for S3Retry {
    fn default() -> Self {
        S3Retry {
            max_retries: 10,
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Where and how to reach the bucket. Unset fields fall back to `AWS_*` environment variables
/// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …).
#[derive(Clone)]
pub struct S3Options {
    /// e.g. `http://127.0.0.1:9000` for MinIO or a local server; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Allow `http://` endpoints (local servers). Off by default.
    pub allow_http: bool,
    /// Every key is stored under `prefix/` (empty: at the bucket's root).
    pub prefix: String,
    /// Blobs larger than this are sent as a multipart upload.
    pub multipart_threshold: usize,
    /// Part size of multipart uploads (S3's minimum is 5 MiB).
    pub part_size: usize,
    pub retry: S3Retry,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up a single request after this long.
    pub request_timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            bucket: String::new(),
            access_key: None,
            secret_key: None,
            allow_http: false,
            prefix: String::new(),
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            retry: S3Retry::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
        }
    }
}

fn redact(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &redact(&self.access_key))
            .field("secret_key", &redact(&self.secret_key))
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A [`BlobStore`] on an S3 bucket.
pub struct S3Store {
    s3: AmazonS3,
    name: String,
    /// Normalised: no leading or trailing `/`; empty for the bucket root.
    prefix: String,
    multipart_threshold: usize,
    part_size: usize,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // AmazonS3's own Debug shows its configuration, credentials included: never print it.
        f.debug_struct("S3Store")
            .field("name", &self.name)
            .field("multipart_threshold", &self.multipart_threshold)
            .finish_non_exhaustive()
    }
}

fn config_error(name: &str, message: impl Into<String>) -> StoreError {
    StoreError::new(ErrorKind::Other, name, "configure", message)
}

impl S3Store {
    /// Build the client (no request is made yet).
    pub fn new(opts: S3Options) -> Result<S3Store> {
        let prefix = opts.prefix.trim_matches('/').to_string();
        let name = match (&opts.endpoint, prefix.is_empty()) {
            (Some(ep), true) => format!("s3:{ep}/{}", opts.bucket),
            (Some(ep), false) => format!("s3:{ep}/{}/{prefix}", opts.bucket),
            (None, true) => format!("s3://{}", opts.bucket),
            (None, false) => format!("s3://{}/{prefix}", opts.bucket),
        };
        if opts.bucket.is_empty() {
            return Err(config_error(
                &name,
                "no bucket given: set the S3 bucket name",
            ));
        }
        if !prefix.is_empty() && BlobKey::new(prefix.clone()).is_err() {
            return Err(config_error(
                &name,
                format!("prefix `{prefix}` is not a valid key path (segments of [A-Za-z0-9._-])"),
            ));
        }
        if let Some(ep) = &opts.endpoint
            && ep.starts_with("http://")
            && !opts.allow_http
        {
            return Err(config_error(
                &name,
                format!(
                    "endpoint {ep} is plain HTTP: use https, or set allow_http for a local server"
                ),
            ));
        }
        if opts.part_size < 5 << 20 {
            return Err(config_error(
                &name,
                format!(
                    "part_size {} is below S3's 5 MiB minimum part size",
                    opts.part_size
                ),
            ));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&opts.bucket)
            .with_allow_http(opts.allow_http)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: opts.retry.init_backoff,
                    max_backoff: opts.retry.max_backoff,
                    base: 2.0,
                },
                max_retries: opts.retry.max_retries,
                retry_timeout: opts.retry.retry_timeout,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(opts.allow_http)
                    .with_connect_timeout(opts.connect_timeout)
                    .with_timeout(opts.request_timeout),
            );
        if let Some(ep) = &opts.endpoint {
            b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
        }
        if let Some(r) = &opts.region {
            b = b.with_region(r);
        }
        if let Some(k) = &opts.access_key {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &opts.secret_key {
            b = b.with_secret_access_key(k);
        }
        // object_store's builder errors name the offending setting, never a credential value.
        let s3 = b
            .build()
            .map_err(|e| map_err(&name, "configure", None, e))?;
        Ok(S3Store {
            s3,
            name,
            prefix,
            multipart_threshold: opts.multipart_threshold,
            part_size: opts.part_size,
        })
    }

    /// The object name (within the bucket) that holds `key`: `prefix/key`.
    pub fn object_path(&self, key: &BlobKey) -> String {
        if self.prefix.is_empty() {
            key.as_str().to_string()
        } else {
            format!("{}/{}", self.prefix, key.as_str())
        }
    }

    fn path(&self, key: &BlobKey) -> Path {
        Path::from(self.object_path(key))
    }

    /// The key a listed object path stands for, if it is under our prefix and a valid key.
    fn key_of(&self, path: &Path) -> Option<BlobKey> {
        let s = path.as_ref();
        let rel = if self.prefix.is_empty() {
            s
        } else {
            s.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        BlobKey::new(rel).ok()
    }

    fn err(&self, op: &'static str, key: Option<&BlobKey>, e: object_store::Error) -> StoreError {
        map_err(&self.name, op, key, e)
    }

    async fn put_multipart(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let upload = self
            .s3
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.err("put (multipart)", Some(key), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        for chunk in bytes.chunks(self.part_size) {
            w.wait_for_capacity(4)
                .await
                .map_err(|e| self.err("put (multipart)", Some(key), e))?;
            w.put(bytes.slice_ref(chunk));
        }
        w.finish()
            .await
            .map_err(|e| self.err("put (multipart)", Some(key), e))?;
        Ok(())
    }
}

fn map_err(
    backend: &str,
    op: &'static str,
    key: Option<&BlobKey>,
    e: object_store::Error,
) -> StoreError {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorKind::Unsupported,
        other if is_transient(other) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    let mut err = StoreError::new(kind, backend, op, e.to_string()).with_source(e);
    if let Some(k) = key {
        err = err.with_key(k);
    }
    err
}

/// Whether the failure is a passing one (connection trouble, timeout, 5xx, throttling), judged
/// from the error chain: object_store does not expose its retry error type.
fn is_transient(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind as K};
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            );
        }
        let text = s.to_string();
        if let Some(i) = text.find("status code: ") {
            let code = text[i + 13..].get(..3).and_then(|c| c.parse::<u16>().ok());
            return code.is_some_and(|c| c >= 500 || c == 429);
        }
        src = s.source();
    }
    false
}

fn is_exists(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// The characters a key (hence a useful list prefix) may contain.
fn prefix_could_match(prefix: &str) -> bool {
    if prefix.starts_with('/') {
        return false;
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return false;
    }
    // Every complete segment (before the last `/`) must be one a key can have.
    match prefix.rfind('/') {
        Some(i) => prefix[..i]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".."),
        None => true,
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_put_if_absent: true,
            range_reads: true,
            list: true,
            delete: true,
            batch_put: false,
            max_blob_size: Some(5 << 40),
        }
    }

    async fn put_if_absent(&self, key: &BlobKey, bytes: Bytes) -> Result<PutOutcome> {
        if bytes.len() > self.multipart_threshold {
            if self.head(key).await?.is_some() {
                return Ok(PutOutcome::AlreadyExists);
            }
            self.put_multipart(key, bytes).await?;
            return Ok(PutOutcome::Created);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let large = bytes.len() >= EARLY_REFUSAL_BYTES;
        match self
            .s3
            .put_opts(&self.path(key), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) if is_exists(&e) => Ok(PutOutcome::AlreadyExists),
            // A server may refuse a conditional PUT of an existing key before it has read the
            // body and close the connection, which the client sees as a broken pipe rather than
            // a 412. That only happens when the body is larger than the socket buffers. If the
            // object is there now, the put is done: put-if-absent of an existing key.
            Err(_) if large && matches!(self.head(key).await, Ok(Some(_))) => {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(e) => Err(self.err("put_if_absent", Some(key), e)),
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let res = self
            .s3
            .get_opts(&self.path(key), GetOptions::default())
            .await
            .map_err(|e| self.err("get", Some(key), e))?;
        res.bytes().await.map_err(|e| self.err("get", Some(key), e))
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        match self.s3.head(&self.path(key)).await {
            Ok(m) => Ok(Some(BlobMeta {
                key: key.clone(),
                size: m.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("head", Some(key), e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        match self.s3.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", Some(key), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        if !prefix_could_match(prefix) {
            return Ok(Vec::new());
        }
        // object_store lists whole path segments; list the enclosing "directory" and filter.
        let dir = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let full = match (self.prefix.is_empty(), dir.is_empty()) {
            (true, true) => None,
            (true, false) => Some(Path::from(dir)),
            (false, true) => Some(Path::from(self.prefix.as_str())),
            (false, false) => Some(Path::from(format!("{}/{dir}", self.prefix))),
        };
        let metas: Vec<_> = self
            .s3
            .list(full.as_ref())
            .try_collect()
            .await
            .map_err(|e| {
                let mut err = self.err("list", None, e);
                err.key = Some(format!("{prefix}*"));
                err
            })?;
        let mut out: Vec<BlobMeta> = metas
            .into_iter()
            .filter_map(|m| {
                let key = self.key_of(&m.location)?;
                key.has_prefix(prefix)
                    .then_some(BlobMeta { key, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes> {
        let outside = |len: u64| {
            StoreError::new(
                ErrorKind::Other,
                &self.name,
                "get_range",
                format!(
                    "range {}..{} outside blob of {len} bytes",
                    range.start, range.end
                ),
            )
            .with_key(key)
        };
        if range.start > range.end {
            return Err(StoreError::new(
                ErrorKind::Other,
                &self.name,
                "get_range",
                format!("reversed range {}..{}", range.start, range.end),
            )
            .with_key(key));
        }
        // S3 cannot return an empty range (416): answer those from the object's size.
        let sized = |meta: Option<BlobMeta>| match meta {
            None => Err(StoreError::not_found(&self.name, "get_range", key)),
            Some(m) if range.start > m.size => Err(outside(m.size)),
            Some(_) => Ok(Bytes::new()),
        };
        if range.start == range.end {
            return sized(self.head(key).await?);
        }
        // "To the end" for ends no server takes literally (some refuse ends past i64::MAX).
        let get_range = if range.end > i64::MAX as u64 {
            GetRange::Offset(range.start)
        } else {
            GetRange::Bounded(range.clone())
        };
        let opts = GetOptions {
            range: Some(get_range),
            ..Default::default()
        };
        match self.s3.get_opts(&self.path(key), opts).await {
            Ok(res) => res
                .bytes()
                .await
                .map_err(|e| self.err("get_range", Some(key), e)),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::not_found(&self.name, "get_range", key))
            }
            Err(e) => match self.head(key).await? {
                Some(m) if range.start >= m.size => sized(Some(m)),
                _ => Err(self.err("get_range", Some(key), e)),
            },
        }
    }
}
