//! benchfleet's layered configuration, built with figment.
//!
//! Layers, lowest priority first:
//! 1. built-in defaults (`config/default.toml`, embedded in the binary),
//! 2. the project file (`benchfleet.toml` in the working directory, or `--config FILE`),
//! 3. the environment (`BENCHFLEET_` prefix, `__` between levels: `BENCHFLEET_RUN__JOBS=4`),
//! 4. command-line flags.
//!
//! Every layer is attributed, so errors name the key and the file (or variable) that set it, and
//! [`show`] prints each effective value with its origin.
//!
//! **Architecture invariant:** this is the only crate that uses figment. It knows nothing about
//! the runner, storage backends or the terminal; it produces plain typed settings.
//!
//! ```
//! let loaded = benchfleet_config::load(&benchfleet_config::Sources::defaults_only()).unwrap();
//! assert_eq!(loaded.config.storage.root.to_str(), Some(".benchfleet"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use benchfleet_model::{ByteSize, DurationSpec};

use figment::providers::{Env, Format, Toml};
/// A configuration value (for command-line overrides).
pub use figment::value::Value;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

/// The built-in defaults, embedded.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Name of the project file looked up in the working directory.
pub const PROJECT_FILE: &str = "benchfleet.toml";

/// Environment prefix.
pub const ENV_PREFIX: &str = "BENCHFLEET_";

/// The effective configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    pub run: RunConfig,
    pub output: OutputConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Root of the embedded default's files.
    pub root: PathBuf,
    pub catalog: CatalogConfig,
    pub hot: BlobConfig,
    /// Where warm (zstd) records live.
    pub warm: BlobConfig,
    /// Where cold (xz segment) records live.
    pub cold: BlobConfig,
    /// When records move between tiers, and how each tier compresses.
    pub policy: TierPolicyConfig,
}

/// `[storage.policy]`: ages, compression levels and sizes of the tiered store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicyConfig {
    /// Records older than this many days leave the hot tier.
    pub hot_days: u32,
    /// Records older than this many days leave the warm tier for the cold one.
    pub warm_days: u32,
    /// zstd level of the warm tier (1–22).
    pub warm_level: i32,
    /// Largest zstd dictionary trained per suite, bytes; 0 disables dictionaries.
    pub warm_dictionary_bytes: usize,
    /// xz preset of the cold tier (0–9).
    pub cold_level: u32,
    /// Uncompressed bytes per independently compressed cold block.
    pub cold_block_bytes: usize,
    /// Target compressed size of a cold segment, bytes.
    pub cold_segment_bytes: usize,
    /// Byte bound of the read cache; 0 disables it.
    pub cache_bytes: u64,
    /// Records per warm migration batch.
    pub migrate_batch_records: usize,
    /// Captured outputs of at least this size are streamed into the hot tier from the file they
    /// were captured to; smaller ones are stored in one put. Bytes, or a size such as `"1MiB"`.
    pub stream_threshold_bytes: ByteSize,
    /// Time to live of a writer's lease (renewed at half-time while writing): how long
    /// `tier gc` waits at most after a writer on another host died. A duration such as `"10m"`,
    /// at least a second.
    pub writer_lease: DurationSpec,
}

/// Which catalog backend, and where. `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    pub backend: CatalogBackend,
    /// redb: the database file. Empty: `<root>/catalog.redb`.
    pub path: String,
    /// postgres: `postgres://user[:password]@host[:port]/database` (the password is redacted
    /// wherever the URL is shown).
    #[serde(default)]
    pub url: String,
    /// postgres: schema holding benchfleet's tables (created if missing). Empty: `public`.
    #[serde(default)]
    pub schema: String,
    /// postgres: connection pool size.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// postgres: give up connecting after this many seconds (never hang on a dead server).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// postgres: attempts of an operation that fails transiently (a restart, a dropped
    /// connection), with exponential backoff between them; 1 = no retry.
    #[serde(default = "default_retry_attempts")]
    pub retry_attempts: u32,
}

fn default_max_connections() -> u32 {
    8
}

fn default_connect_timeout_secs() -> u64 {
    5
}

fn default_retry_attempts() -> u32 {
    10
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogBackend {
    Redb,
    Postgres,
}

impl CatalogBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogBackend::Redb => "redb",
            CatalogBackend::Postgres => "postgres",
        }
    }
}

/// Which blob backend holds a tier, and where. Only the keys of the chosen backend are read;
/// empty strings mean "not set". `Debug` hides credentials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobConfig {
    pub backend: BlobBackend,
    /// fs: the directory. Empty: a default under the storage root.
    pub path: String,
    /// postgres: a database of its own. Empty: the catalog's database (catalog must be postgres).
    #[serde(default)]
    pub url: String,
    /// postgres with its own `url`: the schema (empty: `public`).
    #[serde(default)]
    pub schema: String,
    /// s3: bucket name (required).
    #[serde(default)]
    pub bucket: String,
    /// s3: endpoint URL for S3-compatible services (MinIO, …); empty: AWS (or `AWS_ENDPOINT`).
    #[serde(default)]
    pub endpoint: String,
    /// s3: region; empty: `AWS_REGION` / `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: String,
    /// s3: credentials; empty: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and the other
    /// standard AWS sources). Redacted in `config show`.
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: String,
    /// s3: allow a plain `http://` endpoint (local servers only).
    #[serde(default)]
    pub allow_http: bool,
    /// s3: every object is stored under this key prefix.
    #[serde(default)]
    pub prefix: String,
    /// opendal: the service scheme (`fs`, `memory`, `s3`, …, as built).
    #[serde(default)]
    pub scheme: String,
    /// opendal: the service's options (e.g. `root`); values of secret-looking keys are redacted.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// Inside the catalog's own database, whichever it is (redb file or PostgreSQL).
    Catalog,
    Fs,
    Redb,
    Postgres,
    S3,
    Opendal,
}

impl BlobBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobBackend::Catalog => "catalog",
            BlobBackend::Fs => "fs",
            BlobBackend::Redb => "redb",
            BlobBackend::Postgres => "postgres",
            BlobBackend::S3 => "s3",
            BlobBackend::Opendal => "opendal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Concurrent jobs; 0 = available cores.
    pub jobs: usize,
    pub keep_going: bool,
    pub stderr_tail_bytes: usize,
    /// Reuse stored results of unchanged nodes.
    pub cache: bool,
    /// Fraction of the host's CPUs kept free when admitting jobs by their resources.
    pub reserve_cpu: f64,
    /// Fraction of the host's memory kept free when admitting jobs by their resources.
    pub reserve_memory: f64,
    /// How often the system (CPU per core, memory, disk, load) is sampled while a suite runs,
    /// e.g. `"250ms"`; between [`RunConfig::MIN_SAMPLE_INTERVAL`] and
    /// [`RunConfig::MAX_SAMPLE_INTERVAL`].
    pub sample_interval: DurationSpec,
}

impl RunConfig {
    /// Sampling more often costs more CPU (a `/proc` scan) than it tells.
    pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
    /// Sampling less often leaves most suites with one sample, and no noise verdict worth it.
    pub const MAX_SAMPLE_INTERVAL: Duration = Duration::from_secs(600);

    /// Values that cannot work, as (dotted key, what is wrong).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let i = self.sample_interval.as_duration();
        if !(Self::MIN_SAMPLE_INTERVAL..=Self::MAX_SAMPLE_INTERVAL).contains(&i) {
            out.push((
                "run.sample_interval".to_owned(),
                format!(
                    "{} is outside 10ms–10m (the default is 250ms)",
                    self.sample_interval
                ),
            ));
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub progress: Progress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    Auto,
    Bars,
    Lines,
    None,
}

impl StorageConfig {
    /// The catalog file, resolved against the root.
    pub fn catalog_path(&self) -> PathBuf {
        self.resolve(&self.catalog.path, "catalog.redb")
    }

    /// The hot tier's location, resolved against the root.
    pub fn hot_path(&self) -> PathBuf {
        self.resolve(&self.hot.path, "blobs")
    }

    /// The warm tier's location, resolved against the root.
    pub fn warm_path(&self) -> PathBuf {
        self.resolve(&self.warm.path, "warm")
    }

    /// The cold tier's location, resolved against the root.
    pub fn cold_path(&self) -> PathBuf {
        self.resolve(&self.cold.path, "cold")
    }

    fn resolve(&self, path: &str, default: &str) -> PathBuf {
        if path.is_empty() {
            self.root.join(default)
        } else {
            PathBuf::from(path)
        }
    }
}

impl StorageConfig {
    /// Backend settings that cannot work, as (dotted key, what is wrong). Secret values are never
    /// part of the message.
    pub fn backend_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let c = &self.catalog;
        if c.backend == CatalogBackend::Postgres {
            if c.url.is_empty() {
                out.push((
                    "storage.catalog.url".into(),
                    "is empty, but backend = \"postgres\" needs postgres://user[:password]@host[:port]/database".into(),
                ));
            }
            postgres_problems("storage.catalog", &c.url, &c.schema, &mut out);
            if c.max_connections == 0 {
                out.push((
                    "storage.catalog.max_connections".into(),
                    "must be at least 1".into(),
                ));
            }
            if c.connect_timeout_secs == 0 {
                out.push((
                    "storage.catalog.connect_timeout_secs".into(),
                    "must be at least 1 (seconds)".into(),
                ));
            }
            if c.retry_attempts == 0 {
                out.push((
                    "storage.catalog.retry_attempts".into(),
                    "must be at least 1 (1 = no retry)".into(),
                ));
            }
        }
        for (tier, b) in [
            ("hot", &self.hot),
            ("warm", &self.warm),
            ("cold", &self.cold),
        ] {
            let key = |k: &str| format!("storage.{tier}.{k}");
            match b.backend {
                BlobBackend::Catalog | BlobBackend::Fs => {}
                BlobBackend::Redb => {
                    if c.backend != CatalogBackend::Redb {
                        out.push((
                            key("backend"),
                            format!(
                                "\"redb\" keeps blobs inside the catalog's redb database, but storage.catalog.backend = \"{}\"; use \"fs\", \"postgres\", \"s3\" or \"opendal\"",
                                c.backend.as_str()
                            ),
                        ));
                    }
                }
                BlobBackend::Postgres => {
                    if b.url.is_empty() && c.backend != CatalogBackend::Postgres {
                        out.push((
                            key("url"),
                            "is empty, so the tier would use the catalog's database, but the catalog is not postgres; set url".into(),
                        ));
                    }
                    postgres_problems(&format!("storage.{tier}"), &b.url, &b.schema, &mut out);
                }
                BlobBackend::S3 => {
                    if b.bucket.is_empty() {
                        out.push((
                            key("bucket"),
                            "is empty, but backend = \"s3\" needs a bucket".into(),
                        ));
                    }
                    if !b.endpoint.is_empty() {
                        if !(b.endpoint.starts_with("http://")
                            || b.endpoint.starts_with("https://"))
                        {
                            out.push((
                                key("endpoint"),
                                format!("`{}` is not an http(s):// URL", redact_url(&b.endpoint)),
                            ));
                        } else if b.endpoint.starts_with("http://") && !b.allow_http {
                            out.push((
                                key("endpoint"),
                                format!(
                                    "`{}` is plain HTTP: use https, or set storage.{tier}.allow_http = true for a local server",
                                    redact_url(&b.endpoint)
                                ),
                            ));
                        }
                    }
                    if b.access_key_id.is_empty() != b.secret_access_key.is_empty() {
                        out.push((
                            key(if b.access_key_id.is_empty() { "access_key_id" } else { "secret_access_key" }),
                            "set access_key_id and secret_access_key together (or neither, to use the AWS environment)".into(),
                        ));
                    }
                }
                BlobBackend::Opendal => {
                    if b.scheme.is_empty() {
                        out.push((
                            key("scheme"),
                            "is empty, but backend = \"opendal\" needs a service scheme (e.g. \"fs\")".into(),
                        ));
                    }
                }
            }
        }
        out
    }
}

fn postgres_problems(table: &str, url: &str, schema: &str, out: &mut Vec<(String, String)>) {
    if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        out.push((
            format!("{table}.url"),
            format!(
                "`{}` is not a PostgreSQL URL; expected postgres://user[:password]@host[:port]/database",
                redact_url(url)
            ),
        ));
    }
    let mut chars = schema.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if !schema.is_empty() && !valid {
        out.push((
            format!("{table}.schema"),
            format!(
                "`{schema}` is not a schema name benchfleet accepts: lowercase letters, digits and `_` (at most 63), starting with a letter or `_`"
            ),
        ));
    }
}

/// Whether the value of the dotted `key` is a credential, shown only as `<redacted>`: S3 keys,
/// and OpenDAL options whose name looks secret (key, secret, password, token, credential, …).
pub fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "access_key",
        "private",
        "session",
        "sas",
        "signature",
        "auth",
    ];
    last == "access_key_id"
        || last == "key"
        || WORDS.iter().any(|w| last.contains(w))
        || (key.contains("options.") && last.ends_with("_key"))
}

pub use benchfleet_model::redact_url;

/// How a value is shown (`config show`, errors): credentials redacted, URLs without password.
pub fn shown_value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        if value.is_empty() || value == "\"\"" {
            value.to_string()
        } else {
            "\"<redacted>\"".to_string()
        }
    } else if value.contains("://") {
        redact_url(value)
    } else {
        value.to_string()
    }
}

impl TierPolicyConfig {
    /// Values that cannot work together, as (dotted key, what is wrong).
    pub fn problems(&self) -> Vec<(String, String)> {
        let key = |k: &str| format!("storage.policy.{k}");
        let mut out = Vec::new();
        if self.warm_days < self.hot_days {
            out.push((
                key("warm_days"),
                format!(
                    "{} is less than hot_days ({}); records would skip the warm tier",
                    self.warm_days, self.hot_days
                ),
            ));
        }
        if !(1..=22).contains(&self.warm_level) {
            out.push((
                key("warm_level"),
                format!("{} is not a zstd level (1–22)", self.warm_level),
            ));
        }
        if self.cold_level > 9 {
            out.push((
                key("cold_level"),
                format!("{} is not an xz preset (0–9)", self.cold_level),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.cold_block_bytes) {
            out.push((
                key("cold_block_bytes"),
                format!("{} is outside 1 KiB–64 MiB", self.cold_block_bytes),
            ));
        }
        if self.cold_segment_bytes < self.cold_block_bytes / 8 {
            out.push((
                key("cold_segment_bytes"),
                format!(
                    "{} is far below cold_block_bytes ({})",
                    self.cold_segment_bytes, self.cold_block_bytes
                ),
            ));
        }
        if self.migrate_batch_records == 0 {
            out.push((key("migrate_batch_records"), "must be at least 1".into()));
        }
        if self.writer_lease.as_duration() < Duration::from_secs(1) {
            out.push((
                key("writer_lease"),
                format!(
                    "{} is under a second; writers would spend their time renewing it (the default is 10m)",
                    self.writer_lease
                ),
            ));
        }
        out
    }
}

/// Where configuration comes from, besides the built-in defaults.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--config FILE`: must exist. When `None`, `benchfleet.toml` in `project_dir` is used if present.
    pub config_file: Option<PathBuf>,
    /// Directory searched for `benchfleet.toml` (usually the working directory); `None` = skip.
    pub project_dir: Option<PathBuf>,
    /// Read `BENCHFLEET_*` variables.
    pub env: bool,
    /// Command-line overrides as (dotted key, value), e.g. `("run.jobs", 4.into())`.
    pub flags: Vec<(String, Value)>,
}

impl Sources {
    /// Built-in defaults only: no project file, no environment, no flags.
    pub fn defaults_only() -> Self {
        Sources::default()
    }

    /// The usual layering for a command run in `dir`.
    pub fn standard(dir: impl Into<PathBuf>, config_file: Option<PathBuf>) -> Self {
        Sources {
            config_file,
            project_dir: Some(dir.into()),
            env: true,
            flags: Vec::new(),
        }
    }

    pub fn flag(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.flags.push((key.to_owned(), value.into()));
        self
    }
}

/// A configuration problem: one line per underlying error, each naming the key, what was wrong
/// and which file or variable set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file `{}` does not exist; check the --config path", .0.display())]
    MissingFile(PathBuf),
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// The effective configuration and the figment it came from (for [`show`]). `Debug` shows the
/// configuration (credentials redacted), not the figment's raw values.
pub struct Loaded {
    pub config: Config,
    pub figment: Figment,
    /// The project file that was read, if any.
    pub project_file: Option<PathBuf>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("project_file", &self.project_file)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("retry_attempts", &self.retry_attempts)
            .finish()
    }
}

impl std::fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &str| if v.is_empty() { "" } else { "<redacted>" };
        let options: BTreeMap<&str, String> = self
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), shown_value(&format!("options.{k}"), v)))
            .collect();
        f.debug_struct("BlobConfig")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .field("scheme", &self.scheme)
            .field("options", &options)
            .finish()
    }
}

/// Build the layered figment.
pub fn figment(sources: &Sources) -> Result<(Figment, Option<PathBuf>), ConfigError> {
    let mut fig = Figment::from(Named {
        inner: Toml::string(DEFAULT_TOML),
        name: "built-in default",
        source: Some("config/default.toml".into()),
    });
    let project = match (&sources.config_file, &sources.project_dir) {
        (Some(file), _) => {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            Some(file.clone())
        }
        (None, Some(dir)) => Some(dir.join(PROJECT_FILE)).filter(|p| p.is_file()),
        (None, None) => None,
    };
    if let Some(file) = &project {
        fig = fig.merge(Toml::file_exact(file));
    }
    if sources.env {
        // BENCHFLEET_CONFIG and BENCHFLEET_LOG name files and filters,
        // BENCHFLEET_FAULT_AFTER is the migration's fault-injection hook, BENCHFLEET_MACHINE_CLASS
        // overrides the machine class records carry, and BENCHFLEET_TEST_* point the test suites
        // at their servers: none of them are keys.
        fig = fig.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|k| !k.as_str().to_ascii_lowercase().starts_with("test_"))
                .split("__")
                .ignore(&["config", "log", "fault_after", "machine_class"]),
        );
    }
    if !sources.flags.is_empty() {
        let mut dict = Dict::new();
        for (key, value) in &sources.flags {
            insert_dotted(&mut dict, key, value.clone());
        }
        fig = fig.merge(Named {
            inner: DictProvider(dict),
            name: "command-line flag",
            source: None,
        });
    }
    Ok((fig, project))
}

/// Load and validate the configuration.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigError> {
    let (figment, project_file) = figment(sources)?;
    let config = figment
        .extract::<Config>()
        .map_err(|e| ConfigError::Invalid(describe(e)))?;
    let mut problems = config.storage.policy.problems();
    problems.extend(config.storage.backend_problems());
    problems.extend(config.run.problems());
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|(key, what)| {
                    let origin = figment
                        .find_metadata(&key)
                        .map(|m| origin(m, &key.split('.').map(str::to_owned).collect::<Vec<_>>()))
                        .unwrap_or_default();
                    format!("  `{key}`: {what} (set by {origin})")
                })
                .collect(),
        ));
    }
    Ok(Loaded {
        config,
        figment,
        project_file,
    })
}

fn describe(err: figment::Error) -> Vec<String> {
    err.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::from("(top level)")
            } else {
                e.path.join(".")
            };
            let origin = e
                .metadata
                .as_ref()
                .map(|m| origin(m, &e.path))
                .unwrap_or_default();
            // A credential of the wrong type must not be echoed back.
            let kind = if is_secret_key(&key) {
                "invalid value (not shown: it is a credential)".to_string()
            } else {
                e.kind.to_string()
            };
            let mut line = format!("  `{key}`: {kind}");
            if !origin.is_empty() {
                let _ = write!(line, " (set by {origin})");
            }
            line
        })
        .collect()
}

fn origin(meta: &Metadata, path: &[String]) -> String {
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let what = meta.interpolate(&Profile::Default, &keys);
    match &meta.source {
        Some(figment::Source::File(p)) => format!("{} `{}`", meta.name, p.display()),
        Some(figment::Source::Custom(s)) => format!("{} {s}", meta.name),
        _ if meta.name.starts_with("`BENCHFLEET_") || meta.name.contains("environment") => {
            format!(
                "environment variable `{ENV_PREFIX}{}`",
                what.replace('.', "__").to_uppercase()
            )
        }
        _ => meta.name.to_string(),
    }
}

/// Every effective key with its value and where it came from, one per line, sorted by key:
/// `run.jobs = 4    # environment variable `BENCHFLEET_RUN__JOBS``.
pub fn show(loaded: &Loaded) -> String {
    let mut leaves = BTreeMap::new();
    if let Ok(data) = loaded.figment.data()
        && let Some(dict) = data.get(&Profile::Default)
    {
        collect_leaves("", dict, &mut leaves);
    }
    let width = leaves
        .iter()
        .map(|(k, v)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in &leaves {
        let from = loaded
            .figment
            .find_metadata(key)
            .map(|m| origin(m, &key.split('.').map(str::to_owned).collect::<Vec<_>>()))
            .unwrap_or_else(|| "unknown".into());
        let assignment = format!("{key} = {value}");
        let _ = writeln!(out, "{assignment:<width$}  # {from}");
    }
    out
}

fn collect_leaves(prefix: &str, dict: &Dict, out: &mut BTreeMap<String, String>) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Dict(_, d) => collect_leaves(&key, d, out),
            other => {
                let text = match other.clone().deserialize::<toml::Value>() {
                    Ok(t) => t.to_string(),
                    Err(_) => format!("{other:?}"),
                };
                let text = shown_value(&key, &text);
                out.insert(key, text);
            }
        }
    }
}

fn insert_dotted(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
    }
}

/// A provider with a name (and optional source) of our choosing, for good attribution.
struct Named<P> {
    inner: P,
    name: &'static str,
    source: Option<String>,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        let m = Metadata::named(self.name);
        match &self.source {
            Some(s) => m.source(figment::Source::Custom(s.clone())),
            None => m,
        }
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

struct DictProvider(Dict);

impl Provider for DictProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flag")
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.0.clone())]))
    }
}

/// Resolve `path` against `dir` unless it is absolute.
pub fn resolve_in(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests;
