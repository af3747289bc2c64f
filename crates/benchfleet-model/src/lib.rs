//! benchfleet's data model: suite specifications, run records, ids and content digests.
//!
//! **Architecture invariant:** this crate is the bottom of the workspace. It depends on serde
//! (and `serde_json` for the one canonical encoding of records) and hashing only. It performs
//! no I/O, knows no storage backend, no scheduler, no terminal. Every other workspace crate may
//! depend on it; it depends on none of them.
//!
//! ```
//! use benchfleet_model::{Digest, SuiteFile};
//! let suite: SuiteFile = toml::from_str(r#"
//!     [suite]
//!     name = "demo"
//!     [[benchmark]]
//!     name = "sleep"
//!     command = "sleep 0.01"
//! "#).unwrap();
//! assert_eq!(suite.benchmark[0].name, "sleep");
//! assert_eq!(Digest::of(b"abc").to_string().len(), 64);
//! ```

mod digest;
mod duration;
mod ids;
mod record;
mod redact;
mod suite;

pub use digest::{Digest, DigestHasher, ParseDigestError};
pub use duration::{DurationSpec, ParseDurationError};
pub use ids::{RunId, Timestamp};
pub use record::{
    HostInfo, Measurement, NodeKind, Outcome, RunInfo, RunRecord, RunStatus, SCHEMA_VERSION,
};
pub use redact::redact_url;
pub use suite::{
    ByteSize, CommandSpec, Defaults, LoadSpec, MatrixValue, NodeSpec, SuiteFile, SuiteMeta,
};
