//! Opening storage from resolved settings: the one place that names the plugins, each behind its
//! cargo feature (`fs`, `redb`: the embedded default; `postgres`, `s3`, `opendal`).
//!
//! The settings types here are plain data that exist whatever the features, so the CLI can build
//! them from configuration without knowing which plugins were compiled in; choosing a backend
//! that is not compiled in is [`Error::BackendMissing`]. Their `Debug` output never shows a
//! credential (URL passwords, S3 keys, secret-looking OpenDAL options).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use benchfleet_store::{
    BlobStore, Catalog, ErrorKind, Storage, StoreError, Tier, TierPolicy, TierStores,
};

use crate::Error;

/// How to reach and use a PostgreSQL database (besides its URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgSettings {
    /// Schema holding benchfleet's tables (created if missing); `None`: `public`.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// An unreachable server is an error naming host and port after this long.
    pub connect_timeout: Duration,
    /// Attempts of an operation that fails transiently (restart, dropped connection), with
    /// exponential backoff in between.
    pub max_attempts: u32,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            schema: None,
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

/// Where an S3 tier lives. Unset fields fall back to the standard `AWS_*` environment variables.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// For S3-compatible services (MinIO, …): requests are then path-style.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
    /// Every object under this key prefix.
    pub prefix: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Which catalog backend to open.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogChoice {
    /// An embedded redb database file.
    Redb { path: PathBuf },
    /// A PostgreSQL database: `postgres://user[:password]@host[:port]/database`.
    Postgres { url: String, options: PgSettings },
}

/// Which blob backend holds a tier.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobChoice {
    /// Files under a directory.
    Fs { root: PathBuf },
    /// Inside the catalog's redb database (catalog must be redb).
    RedbCatalog,
    /// In the catalog's PostgreSQL database (catalog must be postgres).
    PostgresCatalog,
    /// In a PostgreSQL database of its own.
    Postgres { url: String, options: PgSettings },
    /// An S3 bucket (or S3-compatible service).
    S3 { options: S3Settings },
    /// Any OpenDAL service compiled in, by scheme and its options.
    Opendal {
        scheme: String,
        options: BTreeMap<String, String>,
    },
}

pub use benchfleet_model::redact_url;

impl fmt::Debug for CatalogChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogChoice::Redb { path } => f.debug_struct("Redb").field("path", path).finish(),
            CatalogChoice::Postgres { url, options } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("options", options)
                .finish(),
        }
    }
}

impl fmt::Debug for BlobChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobChoice::Fs { root } => f.debug_struct("Fs").field("root", root).finish(),
            BlobChoice::RedbCatalog => f.write_str("RedbCatalog"),
            BlobChoice::PostgresCatalog => f.write_str("PostgresCatalog"),
            BlobChoice::Postgres { url, options } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("options", options)
                .finish(),
            BlobChoice::S3 { options } => f.debug_struct("S3").field("options", options).finish(),
            // Option values may be credentials: show the names only.
            BlobChoice::Opendal { scheme, options } => f
                .debug_struct("Opendal")
                .field("scheme", scheme)
                .field("option_names", &options.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Resolved storage settings (built by the CLI from configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageSettings {
    pub catalog: CatalogChoice,
    pub hot: BlobChoice,
    pub warm: BlobChoice,
    pub cold: BlobChoice,
    /// Ages, levels, sizes and cache bound of the tiered store.
    pub policy: TierPolicy,
}

impl StorageSettings {
    /// The embedded default under `root`: catalog and hot records in `root/catalog.redb`, warm
    /// in `root/warm`, cold in `root/cold`, default policy.
    pub fn embedded(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        StorageSettings {
            catalog: CatalogChoice::Redb {
                path: root.join("catalog.redb"),
            },
            hot: BlobChoice::RedbCatalog,
            warm: BlobChoice::Fs {
                root: root.join("warm"),
            },
            cold: BlobChoice::Fs {
                root: root.join("cold"),
            },
            policy: TierPolicy::default(),
        }
    }
}

/// A catalog and, when its database can also hold blobs, that blob store.
type CatalogAndBlobs = (Arc<dyn Catalog>, Arc<dyn BlobStore>);

/// Open the configured storage: the catalog and each tier's blob backend. Tiers naming the same
/// backend and location share one store (namespaces keep them apart). A tier whose backend lacks
/// what migration, `verify` and `gc` need (listing, deleting) is refused with a message naming
/// the capability; an unreachable PostgreSQL server is an error naming host and port after the
/// connect timeout, never a hang.
pub async fn open_storage(settings: &StorageSettings) -> Result<Storage, Error> {
    settings.policy.validate()?;
    let (catalog, catalog_blobs) = match &settings.catalog {
        CatalogChoice::Redb { path } => open_redb(path)?,
        CatalogChoice::Postgres { url, options } => open_postgres(url, options).await?,
    };
    let mut opened: Vec<(BlobChoice, Arc<dyn BlobStore>)> = Vec::new();
    let mut stores = Vec::with_capacity(3);
    for (tier, choice) in [
        (Tier::Hot, &settings.hot),
        (Tier::Warm, &settings.warm),
        (Tier::Cold, &settings.cold),
    ] {
        let store = match opened.iter().find(|(c, _)| c == choice) {
            Some((_, store)) => store.clone(),
            None => {
                let store = open_blobs(tier, choice, &settings.catalog, &catalog_blobs).await?;
                opened.push((choice.clone(), store.clone()));
                store
            }
        };
        check_tier_capability(tier, store.as_ref())?;
        stores.push(store);
    }
    let cold = stores.pop().expect("three tiers");
    let warm = stores.pop().expect("three tiers");
    let hot = stores.pop().expect("three tiers");
    let tiers = TierStores { hot, warm, cold };
    Ok(Storage::tiered(catalog, tiers, settings.policy.clone()))
}

async fn open_blobs(
    tier: Tier,
    choice: &BlobChoice,
    catalog: &CatalogChoice,
    catalog_blobs: &Arc<dyn BlobStore>,
) -> Result<Arc<dyn BlobStore>, Error> {
    let wrong_catalog = |want: &str| {
        StoreError::new(
            ErrorKind::Other,
            format!("{tier} tier"),
            "open",
            format!(
                "storage.{tier}: this backend keeps blobs inside the catalog's {want} database, but the catalog is {}; choose another backend for this tier",
                match catalog {
                    CatalogChoice::Redb { .. } => "redb",
                    CatalogChoice::Postgres { .. } => "postgres",
                }
            ),
        )
    };
    Ok(match choice {
        BlobChoice::Fs { root } => open_fs(root)?,
        BlobChoice::RedbCatalog => match catalog {
            CatalogChoice::Redb { .. } => catalog_blobs.clone(),
            CatalogChoice::Postgres { .. } => return Err(wrong_catalog("redb").into()),
        },
        BlobChoice::PostgresCatalog => match catalog {
            CatalogChoice::Postgres { .. } => catalog_blobs.clone(),
            CatalogChoice::Redb { .. } => return Err(wrong_catalog("PostgreSQL").into()),
        },
        BlobChoice::Postgres { url, options } => match catalog {
            // The catalog's own database and schema: one pool, not two.
            CatalogChoice::Postgres {
                url: cu,
                options: co,
            } if cu == url && co == options => catalog_blobs.clone(),
            _ => open_postgres(url, options).await?.1,
        },
        BlobChoice::S3 { options } => open_s3(options)?,
        BlobChoice::Opendal { scheme, options } => open_opendal(scheme, options)?,
    })
}

/// Every tier is listed (`verify`, `gc`) and deleted from (migration removes the source copy).
fn check_tier_capability(tier: Tier, store: &dyn BlobStore) -> Result<(), Error> {
    let cap = store.capability();
    let missing: Vec<&str> = [
        (cap.list, "list (tier migration, verify and gc list blobs)"),
        (
            cap.delete,
            "delete (migration removes the source copy; gc removes orphans)",
        ),
    ]
    .into_iter()
    .filter(|(has, _)| !has)
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::new(
        ErrorKind::Unsupported,
        store.name(),
        "open",
        format!(
            "the {tier} tier's backend lacks the capability {}; choose another backend for storage.{tier}",
            missing.join(" and ")
        ),
    )
    .into())
}

#[cfg(feature = "redb")]
fn open_redb(path: &std::path::Path) -> Result<CatalogAndBlobs, Error> {
    let store = Arc::new(benchfleet_redb::RedbStore::open(path)?);
    Ok((store.clone(), store))
}

#[cfg(not(feature = "redb"))]
fn open_redb(_path: &std::path::Path) -> Result<CatalogAndBlobs, Error> {
    Err(Error::BackendMissing("redb"))
}

#[cfg(feature = "fs")]
fn open_fs(root: &std::path::Path) -> Result<Arc<dyn BlobStore>, Error> {
    Ok(Arc::new(benchfleet_fs::FsStore::open(root)?))
}

#[cfg(not(feature = "fs"))]
fn open_fs(_root: &std::path::Path) -> Result<Arc<dyn BlobStore>, Error> {
    Err(Error::BackendMissing("fs"))
}

#[cfg(feature = "postgres")]
fn pg_options(options: &PgSettings) -> benchfleet_postgres::PgOptions {
    benchfleet_postgres::PgOptions {
        schema: options.schema.clone(),
        max_connections: options.max_connections.max(1),
        connect_timeout: options.connect_timeout,
        max_attempts: options.max_attempts.max(1),
        ..Default::default()
    }
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &str,
    options: &PgSettings,
) -> Result<Arc<benchfleet_postgres::PgStore>, Error> {
    Ok(Arc::new(
        benchfleet_postgres::PgStore::connect(url, pg_options(options)).await?,
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, options: &PgSettings) -> Result<CatalogAndBlobs, Error> {
    let store = connect_postgres(url, options).await?;
    Ok((store.clone(), store))
}

/// The fleet's queue, in the PostgreSQL database of the catalog (with a connection pool of its
/// own). The embedded default has no queue: [`Error::FleetNeedsPostgres`].
pub async fn open_queue(
    settings: &StorageSettings,
) -> Result<Arc<dyn benchfleet_store::Queue>, Error> {
    match &settings.catalog {
        CatalogChoice::Redb { .. } => Err(Error::FleetNeedsPostgres),
        CatalogChoice::Postgres { url, options } => open_postgres_queue(url, options).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres_queue(
    url: &str,
    options: &PgSettings,
) -> Result<Arc<dyn benchfleet_store::Queue>, Error> {
    Ok(connect_postgres(url, options).await?)
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres_queue(
    _url: &str,
    _options: &PgSettings,
) -> Result<Arc<dyn benchfleet_store::Queue>, Error> {
    Err(Error::BackendMissing("postgres"))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str, _options: &PgSettings) -> Result<CatalogAndBlobs, Error> {
    Err(Error::BackendMissing("postgres"))
}

#[cfg(feature = "s3")]
fn open_s3(o: &S3Settings) -> Result<Arc<dyn BlobStore>, Error> {
    let opts = benchfleet_s3::S3Options {
        endpoint: o.endpoint.clone(),
        region: o.region.clone(),
        bucket: o.bucket.clone(),
        access_key: o.access_key_id.clone(),
        secret_key: o.secret_access_key.clone(),
        allow_http: o.allow_http,
        prefix: o.prefix.clone(),
        ..Default::default()
    };
    Ok(Arc::new(benchfleet_s3::S3Store::new(opts)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3(_o: &S3Settings) -> Result<Arc<dyn BlobStore>, Error> {
    Err(Error::BackendMissing("s3"))
}

/// The plugin checks the service's OpenDAL capabilities (read, write, stat, delete, list,
/// conditional write) and refuses, naming the missing one.
#[cfg(feature = "opendal")]
fn open_opendal(
    scheme: &str,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn BlobStore>, Error> {
    let options = options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Arc::new(benchfleet_opendal::OpendalStore::from_scheme(
        scheme, options,
    )?))
}

#[cfg(not(feature = "opendal"))]
fn open_opendal(
    _scheme: &str,
    _options: &BTreeMap<String, String>,
) -> Result<Arc<dyn BlobStore>, Error> {
    Err(Error::BackendMissing("opendal"))
}

/// A row of the catalog's daily summary (see [`daily_summary`]).
pub use benchfleet_store::DailySummary as DailySummaryRow;
/// Which daily summary rows to read (see [`daily_summary`]).
pub use benchfleet_store::SummaryQuery as DailySummaryQuery;

/// Refresh the catalog's pre-aggregated daily summary without blocking readers
/// (`REFRESH MATERIALIZED VIEW CONCURRENTLY` on PostgreSQL). `Ok(None)`: this catalog backend
/// keeps no summary (nothing to refresh); `Ok(Some(name))` names the catalog refreshed.
pub async fn refresh_daily_summary(settings: &StorageSettings) -> Result<Option<String>, Error> {
    match &settings.catalog {
        CatalogChoice::Redb { .. } => Ok(None),
        CatalogChoice::Postgres { url, options } => refresh_postgres(url, options).await.map(Some),
    }
}

#[cfg(feature = "postgres")]
async fn refresh_postgres(url: &str, options: &PgSettings) -> Result<String, Error> {
    let store = connect_postgres(url, options).await?;
    store.refresh_daily_summary().await?;
    Ok(Catalog::name(store.as_ref()).to_string())
}

#[cfg(not(feature = "postgres"))]
async fn refresh_postgres(_url: &str, _options: &PgSettings) -> Result<String, Error> {
    Err(Error::BackendMissing("postgres"))
}

/// Rows of the catalog's daily summary as of its last refresh, ordered by (day, suite, name,
/// metric). `Ok(None)`: this catalog backend keeps no summary.
pub async fn daily_summary(
    settings: &StorageSettings,
    q: &DailySummaryQuery,
) -> Result<Option<Vec<DailySummaryRow>>, Error> {
    match &settings.catalog {
        CatalogChoice::Redb { .. } => Ok(None),
        CatalogChoice::Postgres { url, options } => {
            summary_postgres(url, options, q).await.map(Some)
        }
    }
}

#[cfg(feature = "postgres")]
async fn summary_postgres(
    url: &str,
    options: &PgSettings,
    q: &DailySummaryQuery,
) -> Result<Vec<DailySummaryRow>, Error> {
    let store = connect_postgres(url, options).await?;
    Ok(store.daily_summary(q).await?)
}

#[cfg(not(feature = "postgres"))]
async fn summary_postgres(
    _url: &str,
    _options: &PgSettings,
    _q: &DailySummaryQuery,
) -> Result<Vec<DailySummaryRow>, Error> {
    Err(Error::BackendMissing("postgres"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let settings = StorageSettings {
            catalog: CatalogChoice::Postgres {
                url: "postgres://bench:hunter2@db:5432/b".into(),
                options: PgSettings::default(),
            },
            hot: BlobChoice::Postgres {
                url: "postgresql://x:pw-two@h/d?sslmode=require".into(),
                options: PgSettings::default(),
            },
            warm: BlobChoice::S3 {
                options: S3Settings {
                    bucket: "b".into(),
                    access_key_id: Some("AKIAEXAMPLE".into()),
                    secret_access_key: Some("s3-secret".into()),
                    ..Default::default()
                },
            },
            cold: BlobChoice::Opendal {
                scheme: "fs".into(),
                options: [("password".to_string(), "od-secret".to_string())].into(),
            },
            policy: TierPolicy::default(),
        };
        let text = format!("{settings:?}");
        for secret in ["hunter2", "pw-two", "AKIAEXAMPLE", "s3-secret", "od-secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for shown in [
            "postgres://bench:***@db:5432/b",
            "bucket: \"b\"",
            "password",
        ] {
            assert!(text.contains(shown), "{shown} missing from {text}");
        }
    }

    /// A tier naming the other kind of catalog's database is refused before anything opens.
    #[cfg(all(feature = "redb", feature = "fs"))]
    #[tokio::test]
    async fn a_tier_inside_the_wrong_catalog_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = StorageSettings::embedded(dir.path());
        settings.cold = BlobChoice::PostgresCatalog;
        let err = open_storage(&settings).await.unwrap_err().to_string();
        assert!(err.contains("storage.cold"), "{err}");
        assert!(err.contains("catalog is redb"), "{err}");
    }
}
