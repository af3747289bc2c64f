//! What every command runs with, resolved once before dispatch (like ripgrep's `HiArgs` or
//! nextest's `BaseApp`): the working directory, the configuration (loaded once, with the
//! command's flags as its top layer), the storage (opened once, and only when a command asks for
//! it) and the output helpers. Every command takes `&Context`.

use std::path::{Path, PathBuf};

use benchfleet::StorageSettings;
use benchfleet::store::Storage;
use benchfleet_config::{Config, Loaded, Sources};

use crate::exit::{CliError, Result};
use crate::output::Output;

pub struct Context {
    cwd: PathBuf,
    loaded: Loaded,
    storage: tokio::sync::OnceCell<Storage>,
    pub out: Output,
}

impl Context {
    /// Read the working directory and load the configuration layers: defaults, the project file
    /// (`config_file`, else `benchfleet.toml` in the working directory), the environment, then
    /// `flags` (configuration keys set by command-line flags).
    pub fn load(
        config_file: Option<PathBuf>,
        flags: Vec<(String, benchfleet_config::Value)>,
    ) -> Result<Context> {
        let cwd = std::env::current_dir().map_err(|e| {
            CliError::Internal(anyhow::Error::new(e)).context("cannot read the working directory")
        })?;
        let mut sources = Sources::standard(&cwd, config_file);
        sources.flags = flags;
        let loaded = benchfleet_config::load(&sources)?;
        Ok(Context {
            cwd,
            loaded,
            storage: tokio::sync::OnceCell::new(),
            out: Output::detect(),
        })
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// The configuration with where each value came from (`config show`).
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// `storage.root`, resolved against the working directory.
    pub fn root(&self) -> PathBuf {
        self.resolve(&self.config().storage.root)
    }

    /// A path of the configuration, resolved against the working directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        benchfleet_config::resolve_in(&self.cwd, path)
    }

    /// Load and expand a suite file; its jobs' output directories go under `<root>/out`.
    pub fn load_suite(&self, path: &Path) -> Result<benchfleet::suite::Suite> {
        Ok(benchfleet::suite::load(path, &self.root().join("out"))?)
    }

    /// The facade's settings of the configured storage.
    pub fn storage_settings(&self) -> StorageSettings {
        crate::storage::storage_settings(&self.cwd, self.config())
    }

    /// The fleet's queue, in the configured PostgreSQL catalog (the embedded default has none:
    /// a usage error saying what to configure).
    pub async fn queue(&self) -> Result<std::sync::Arc<dyn benchfleet::store::Queue>> {
        Ok(benchfleet::open_queue(&self.storage_settings()).await?)
    }

    /// The configured storage, opened (and, when embedded, created) on first use.
    pub async fn storage(&self) -> Result<&Storage> {
        self.storage
            .get_or_try_init(|| async {
                Ok::<_, CliError>(benchfleet::open_storage(&self.storage_settings()).await?)
            })
            .await
    }
}
