//! Opening storage from resolved settings: the one place that names the plugins.

use std::path::PathBuf;
use std::sync::Arc;

use benchfleet_store::{BlobStore, Catalog, Storage, TierPolicy, TierStores};

use crate::Error;

/// Which catalog backend to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogChoice {
    /// An embedded redb database file.
    Redb { path: PathBuf },
}

/// Which blob backend holds a tier.
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
    pub warm: BlobChoice,
    pub cold: BlobChoice,
    /// Ages, levels, sizes and cache bound of the tiered store.
    pub policy: TierPolicy,
}

impl StorageSettings {
    /// The embedded default under `root`: catalog in `root/catalog.redb`, hot records in
    /// `root/blobs`, warm in `root/warm`, cold in `root/cold`, default policy.
    pub fn embedded(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        StorageSettings {
            catalog: CatalogChoice::Redb {
                path: root.join("catalog.redb"),
            },
            hot: BlobChoice::Fs {
                root: root.join("blobs"),
            },
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

/// Open the configured storage: the catalog and each tier's blob backend. Tiers naming the same
/// backend and location share one store (namespaces keep them apart).
pub fn open_storage(settings: &StorageSettings) -> Result<Storage, Error> {
    settings.policy.validate()?;
    let CatalogChoice::Redb { path } = &settings.catalog;
    let (catalog, redb_blobs) = open_redb(path)?;
    let mut opened: Vec<(BlobChoice, Arc<dyn BlobStore>)> = Vec::new();
    let mut open = |choice: &BlobChoice| -> Result<Arc<dyn BlobStore>, Error> {
        if let Some((_, store)) = opened.iter().find(|(c, _)| c == choice) {
            return Ok(store.clone());
        }
        let store = match choice {
            BlobChoice::RedbCatalog => redb_blobs.clone(),
            BlobChoice::Fs { root } => open_fs(root)?,
        };
        opened.push((choice.clone(), store.clone()));
        Ok(store)
    };
    let tiers = TierStores {
        hot: open(&settings.hot)?,
        warm: open(&settings.warm)?,
        cold: open(&settings.cold)?,
    };
    Ok(Storage::tiered(catalog, tiers, settings.policy.clone()))
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
