//! benchfleet's storage traits and the store logic built on them.
//!
//! Two narrow traits, shaped so that an embedded database, PostgreSQL and S3 all fit:
//! - [`BlobStore`]: immutable blobs under validated [`BlobKey`]s: put-if-absent, get, get-range,
//!   head, delete, list-prefix, plus a [`Capability`] description so callers detect what a backend
//!   cannot do instead of failing late.
//! - [`Catalog`]: run metadata: runs ([`RunInfo`](benchfleet_model::RunInfo)) and one
//!   [`RecordEntry`] per measured run, inserted in batches and queried by suite, benchmark,
//!   run and time range.
//!
//! [`content`] adds content addressing over any blob store (key = SHA-256 of the bytes, verified on
//! every read); [`Storage`] composes a catalog and a blob store into what the runner needs.
//!
//! **Architecture invariant:** depends on `benchfleet-model` only (inside the workspace). It names
//! no backend: plugins implement these traits, the facade picks them.
//!
//! ```
//! use benchfleet_store::BlobKey;
//! assert!(BlobKey::new("records/ab/cd/abcd").is_ok());
//! assert!(BlobKey::new("../etc/passwd").is_err());
//! ```

mod blob;
mod catalog;
pub mod content;
mod error;
mod storage;

pub use blob::{BlobKey, BlobMeta, BlobStore, Capability, PutOutcome};
pub use catalog::{Catalog, RecordEntry, RecordQuery, RunFilter, Tier};
pub use error::{ErrorKind, StoreError};
pub use storage::Storage;

/// Result alias for storage operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
