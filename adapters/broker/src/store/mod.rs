//! Where the broker's durable state lives: the [`Store`] trait the driver
//! commits the core's records to, an in-memory [`MemoryStore`], and
//! [`RedbStore`], a crash-safe file (`--data-dir`).
//!
//! The broker core decides what is durable and when an acknowledgement may
//! go (see `mqtt_router::broker::StoreRecord`); a store only keeps what it
//! is given: [`Store::commit`] applies one turn's records in one
//! transaction, durable when it returns, and [`Store::load`] reads the
//! state back at start. `StoreImage` says what each record means; every
//! store here is tested against it.

pub(crate) mod codec;
mod redb;
mod redb_write;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use mqtt_router::broker::{RestoredState, StoreImage, StoreRecord};

use crate::config::PersistenceConfig;

pub use self::redb::{RedbStore, FORMAT_VERSION, STORE_FILE};

/// Why a store cannot be opened, read or written. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file or its directory cannot be created, opened or locked.
    #[error("cannot open the store {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The directory or file cannot be written (the broker must write to
    /// its store).
    #[error("the store {path} is read-only: {reason}")]
    ReadOnly {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file is damaged: not a store, truncated, or a value unreadable.
    #[error("the store {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file was written by a format this broker does not know.
    #[error("the store {path} has format version {found}; this broker reads version {expected}")]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this broker writes.
        expected: u64,
    },
    /// The file is in a redb file format (the database library's own, not
    /// the broker's layout) that this broker's redb cannot read: written
    /// by a newer redb.
    #[error(
        "the store {path} is in redb file format {found}, which this broker's redb cannot read \
         (written by a newer version of redb)"
    )]
    UnknownRedbFormat {
        /// The file.
        path: PathBuf,
        /// redb's file-format number in the file.
        found: u8,
    },
    /// A commit failed (disk full, IO error): nothing of it is stored.
    #[error("cannot write to the store {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
}

/// Why a broker stopped by itself: its store can no longer be written, so
/// the acknowledgements waiting for it can never be sent.
#[derive(Debug, thiserror::Error)]
#[error("the store {store} failed and the broker cannot go on without it: {reason}")]
pub struct StoreDied {
    /// The store ([`Store::describe`]).
    pub store: String,
    /// What happened.
    pub reason: String,
}

/// Where the broker keeps what must survive a restart.
///
/// The driver calls [`Store::load`] once at start and then
/// [`Store::commit`] once per turn of the core, from a thread of its own;
/// a commit that returns `Ok` is durable (survives the process and, for a
/// disk store, the machine).
pub trait Store: Send + 'static {
    /// The state stored so far (empty for a new store).
    ///
    /// # Errors
    /// [`StoreError`] if it cannot be read.
    fn load(&mut self) -> Result<RestoredState, StoreError>;

    /// Applies `records`, in order, all or none.
    ///
    /// # Errors
    /// [`StoreError::Write`] (or another) if they cannot be stored; none of
    /// them is then.
    fn commit(&mut self, records: &[StoreRecord]) -> Result<(), StoreError>;

    /// What to call the store in logs: a path, or "memory".
    fn describe(&self) -> String;

    /// Gives the space of deleted records back to the file system: called
    /// once after [`Store::load`], before the broker serves, and once after
    /// the last commit of a clean stop, when nothing else uses the store.
    /// `Ok(true)` if the store shrank. The default: a store without a file
    /// has nothing to give back.
    ///
    /// # Errors
    /// [`StoreError`] if it could not; what is stored is unchanged then.
    fn compact(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The store `config` asks for: a [`RedbStore`] in its data directory, or
/// none (in memory only).
///
/// # Errors
/// A [`StoreError`] naming the file when the store cannot be used.
pub fn open(config: &PersistenceConfig) -> Result<Option<Box<dyn Store>>, StoreError> {
    match config.data_dir() {
        Some(dir) => Ok(Some(Box::new(RedbStore::open(dir)?))),
        None => Ok(None),
    }
}

/// A store in memory: durable only as long as the process, for tests and
/// for library users who bring their own persistence around it.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    image: StoreImage,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// What it holds.
    pub fn image(&self) -> &StoreImage {
        &self.image
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<RestoredState, StoreError> {
        Ok(self.image.restored())
    }

    fn commit(&mut self, records: &[StoreRecord]) -> Result<(), StoreError> {
        for r in records {
            self.image.apply(r.clone());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
