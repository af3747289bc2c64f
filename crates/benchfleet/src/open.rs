//! Opening storage from resolved settings: the one place that names the plugins.

use std::path::PathBuf;
use std::sync::Arc;

use benchfleet_store::{BlobStore, Catalog, Storage};

use crate::Error;

/// Which catalog backend to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogChoice {
    /// An embedded redb database file.
    Redb { path: PathBuf },
}

/// Which blob backend holds the hot tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobChoice {
    /// Files under a directory.
    Fs { root: PathBuf },
    /// Inside the catalog's redb database.
    RedbCatalog,
}

/// Resolved storage settings (built by the CLI from configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageSettings {
    pub catalog: CatalogChoice,
    pub hot: BlobChoice,
}

impl StorageSettings {
    /// The embedded default under `root`: catalog in `root/catalog.redb`, records in `root/blobs`.
    pub fn embedded(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        StorageSettings {
            catalog: CatalogChoice::Redb {
                path: root.join("catalog.redb"),
            },
            hot: BlobChoice::Fs {
                root: root.join("blobs"),
            },
        }
    }
}

/// Open the configured storage.
pub fn open_storage(settings: &StorageSettings) -> Result<Storage, Error> {
    let CatalogChoice::Redb { path } = &settings.catalog;
    let (catalog, redb_blobs) = open_redb(path)?;
    let blobs = match &settings.hot {
        BlobChoice::RedbCatalog => redb_blobs,
        BlobChoice::Fs { root } => open_fs(root)?,
    };
    Ok(Storage::new(catalog, blobs))
}

/// One redb database serves as catalog and, optionally, as blob store.
type CatalogAndBlobs = (Arc<dyn Catalog>, Arc<dyn BlobStore>);

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
