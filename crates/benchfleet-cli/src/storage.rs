//! Configuration to the facade's storage settings: `[storage]` (resolved against the working
//! directory) as [`StorageSettings`], `[storage.policy]` as the store's tier policy.

use std::path::{Path, PathBuf};

use benchfleet::{BlobChoice, CatalogChoice, StorageSettings};
use benchfleet_config::{BlobBackend, CatalogBackend, Config};

/// The storage the configuration describes, paths resolved against `cwd`.
pub fn storage_settings(cwd: &Path, config: &Config) -> StorageSettings {
    let s = &config.storage;
    let abs = |p: PathBuf| benchfleet_config::resolve_in(cwd, &p);
    let c = &s.catalog;
    let pg = |schema: &str| benchfleet::PgSettings {
        schema: (!schema.is_empty()).then(|| schema.to_owned()),
        max_connections: c.max_connections,
        connect_timeout: std::time::Duration::from_secs(c.connect_timeout_secs),
        max_attempts: c.retry_attempts,
    };
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let blob = |b: &benchfleet_config::BlobConfig, path: PathBuf| match b.backend {
        BlobBackend::Catalog => match c.backend {
            CatalogBackend::Redb => BlobChoice::RedbCatalog,
            CatalogBackend::Postgres => BlobChoice::PostgresCatalog,
        },
        BlobBackend::Fs => BlobChoice::Fs { root: abs(path) },
        BlobBackend::Redb => BlobChoice::RedbCatalog,
        BlobBackend::Postgres if b.url.is_empty() => BlobChoice::PostgresCatalog,
        BlobBackend::Postgres => BlobChoice::Postgres {
            url: b.url.clone(),
            options: pg(&b.schema),
        },
        BlobBackend::S3 => BlobChoice::S3 {
            options: benchfleet::S3Settings {
                bucket: b.bucket.clone(),
                endpoint: some(&b.endpoint),
                region: some(&b.region),
                access_key_id: some(&b.access_key_id),
                secret_access_key: some(&b.secret_access_key),
                allow_http: b.allow_http,
                prefix: b.prefix.clone(),
            },
        },
        BlobBackend::Opendal => BlobChoice::Opendal {
            scheme: b.scheme.clone(),
            options: b.options.clone(),
        },
    };
    StorageSettings {
        catalog: match c.backend {
            CatalogBackend::Redb => CatalogChoice::Redb {
                path: abs(s.catalog_path()),
            },
            CatalogBackend::Postgres => CatalogChoice::Postgres {
                url: c.url.clone(),
                options: pg(&c.schema),
            },
        },
        hot: blob(&s.hot, s.hot_path()),
        warm: blob(&s.warm, s.warm_path()),
        cold: blob(&s.cold, s.cold_path()),
        policy: tier_policy(&s.policy),
    }
}

/// `[storage.policy]` as the store's policy.
fn tier_policy(p: &benchfleet_config::TierPolicyConfig) -> benchfleet::store::TierPolicy {
    let days = |d: u32| std::time::Duration::from_secs(u64::from(d) * 86_400);
    benchfleet::store::TierPolicy {
        hot_max_age: days(p.hot_days),
        warm_max_age: days(p.warm_days),
        warm_level: p.warm_level,
        warm_dictionary_bytes: p.warm_dictionary_bytes,
        cold_level: p.cold_level,
        cold_block_bytes: p.cold_block_bytes,
        cold_segment_bytes: p.cold_segment_bytes,
        cache_bytes: p.cache_bytes,
        migrate_batch_records: p.migrate_batch_records,
        stream_threshold_bytes: p.stream_threshold_bytes.0,
        writer_lease: p.writer_lease.as_duration(),
    }
}
