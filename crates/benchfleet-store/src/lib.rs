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
//! every read); [`Storage`] composes a catalog and one blob store per tier into what the runner
//! needs.
//!
//! The tiered store lives here too: records start **hot** (canonical bytes), move to **warm**
//! (one zstd frame per record, with a dictionary trained per suite) and then **cold** (segments
//! of independently xz-compressed blocks, one range read and one block decompression per record)
//! as they age ([`TierPolicy`]). [`migrate`] is a resumable copy → verify → flip → delete state
//! machine; [`verify`], [`status`] and [`gc`] back the `benchfleet tier` commands. Reads are
//! transparent across tiers, verified against the record's SHA-256, and cached in a
//! byte-bounded LRU. [`BatchWriter`] groups small writes into one transaction. [`mem`] has
//! in-memory backends for tests.
//!
//! **Architecture invariant:** depends on `benchfleet-model` only (inside the workspace). It names
//! no backend: plugins implement these traits, the facade picks them.
//!
//! ```
//! use benchfleet_store::BlobKey;
//! assert!(BlobKey::new("records/ab/cd/abcd").is_ok());
//! assert!(BlobKey::new("../etc/passwd").is_err());
//!
//! // A tiered store over in-memory backends: records migrate by age and read back identically.
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use benchfleet_store::{Storage, mem};
//! let storage = Storage::new(Arc::new(mem::MemCatalog::new()), Arc::new(mem::MemBlobStore::new()));
//! let report = benchfleet_store::migrate(&storage, &Default::default()).await.unwrap();
//! assert_eq!(report.to_warm + report.to_cold, 0); // nothing stored yet
//! # });
//! ```

pub mod alerts;
mod batch;
mod blob;
pub mod cache;
mod catalog;
pub mod codec;
pub mod content;
mod error;
pub mod lease;
mod maintain;
pub mod mem;
mod migrate;
pub mod pack;
mod policy;
pub mod queue;
mod storage;

pub use alerts::{Alert, AlertCatalog, AlertFilter, AlertKind, Triage, TriageUpdate};
pub use batch::{BatchPolicy, BatchStats, BatchWriter};
pub use blob::{
    BlobKey, BlobMeta, BlobStore, ByteStream, Capability, PutOutcome, STREAM_BUFFER_LIMIT,
    byte_stream,
};
pub use catalog::{
    Catalog, CatalogFootprint, DailySummary, RecordEntry, RecordQuery, RecordSample, RunFilter,
    SummaryQuery, Tier, sample_order,
};
pub use content::{OUTPUTS_NS, StreamedBlob, put_file, put_reader};
pub use error::{ErrorKind, StoreError};
pub use maintain::{
    CatalogStatus, GcReport, Problem, ProblemKind, StatusReport, TierStatus, VerifyReport, gc,
    status, verify,
};
pub use migrate::{
    FAULT_ENV, FaultAction, FaultPlan, MigrateOptions, MigrateProgress, MigrateReport, Phase,
    ProgressFn, migrate, resume,
};
pub use policy::TierPolicy;
pub use queue::{
    Capacity, Claim, Completion, Finish, FleetStatus, LeaseTimes, MemQueue, NodeEnd, PoolStatus,
    Queue, QueueState, QueuedNode, QueuedSuite, RunProgress, Submission, WorkerInfo, WorkerStatus,
    worker_state,
};
pub use storage::{RECORDS_NS, Storage, TierStores};

/// Result alias for storage operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
