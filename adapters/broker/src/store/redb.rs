//! The disk store: one redb file (`broker.redb` in the data directory),
//! ACID, copy-on-write B-trees, fsync on every commit. Message bodies are
//! stored once with a count of the sessions holding them, and deleted with
//! the last; the `meta` table carries the format version.

use std::path::{Path, PathBuf};

use mqtt_codec::{PacketId, QoS, Str, TopicFilter};
use mqtt_router::broker::{
    ConnectedWill, MessageId, OutgoingState, RestoredBridge, RestoredBridgeMessage,
    RestoredMessage, RestoredOutgoing, RestoredSession, RestoredState, RestoredSubscription,
    StoreRecord, StoredWill, WallTime,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec::{Corrupt, Reader, Writer};
use super::redb_write::Tables;
use super::{Store, StoreError};

/// The file's name inside the data directory.
pub const STORE_FILE: &str = "broker.redb";
/// The layout this broker writes and reads (the `meta` table's `format`).
pub const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
#[cfg(test)]
pub(super) const META_FOR_TESTS: TableDefinition<&str, u64> = META;
/// client id → username, expiry, detached state, will.
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (client id, filter) → options and identifier.
pub(super) const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// (client id, packet id) → order, state, body, delivery options.
pub(super) const OUTGOING: TableDefinition<(&str, u16), &[u8]> = TableDefinition::new("outgoing");
/// (client id, packet id) of incoming QoS 2 messages not yet released.
pub(super) const INCOMING: TableDefinition<(&str, u16), u8> = TableDefinition::new("incoming");
/// message id → expiry and message.
pub(super) const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
/// message id → sessions holding it.
pub(super) const HOLDERS: TableDefinition<u64, u32> = TableDefinition::new("holders");
/// (bridge name, seq) → body, QoS, RETAIN.
pub(super) const BRIDGE_QUEUE: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("bridge_queue");
/// topic → expiry and message.
pub(super) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");

/// Why a transaction failed: the database, or a stored value.
#[derive(Debug, thiserror::Error)]
pub(super) enum Fail {
    #[error(transparent)]
    Db(#[from] redb::Error),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Fail {
                Fail::Db(e.into())
            }
        }
    )*};
}
db_errors!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// Opens the database again after a failed commit.
type Reopen = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send>;

/// The disk store. See the module documentation.
pub struct RedbStore {
    path: PathBuf,
    /// `None` after a failed commit, until it is opened again: redb
    /// refuses every call on a `Database` that saw an IO error
    /// (`PreviousIo`, "close and re-open"), so a retry on the same handle
    /// could never succeed.
    pub(super) db: Option<Database>,
    reopen: Reopen,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbStore {
    /// Opens (or creates) the store in directory `dir`, creating the
    /// directory if needed, and checks its format version.
    ///
    /// # Errors
    /// A [`StoreError`] naming the file: read-only, damaged, of an unknown
    /// format, or in use by another process.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        let path = dir.join(STORE_FILE);
        std::fs::create_dir_all(dir).map_err(|e| classify_io(dir, e))?;
        check_writable(dir)?;
        let exists = path.exists();
        if exists {
            check_writable(&path)?;
            check_not_empty(&path)?;
        }
        let db = open_guarded(&path, exists)?.map_err(|e| db_error(&path, e))?;
        let reopen_path = path.clone();
        RedbStore::with(path, db, Box::new(move || Database::open(&reopen_path)))
    }

    /// A store on `db`, checked (or given) the format version; `reopen`
    /// opens the same database again after a failed commit.
    pub(super) fn with(path: PathBuf, db: Database, reopen: Reopen) -> Result<Self, StoreError> {
        check_format(&path, &db)?;
        Ok(RedbStore {
            path,
            db: Some(db),
            reopen,
        })
    }

    /// The database, opened again (and its format checked again) if the
    /// last commit failed.
    fn ready(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            let path = &self.path;
            let db = guarded(path, || (self.reopen)())?.map_err(|e| db_error(path, e))?;
            check_format(path, &db)?;
            self.db = Some(db);
        }
        match &self.db {
            Some(db) => Ok(db),
            None => Err(StoreError::Open {
                path: self.path.clone(),
                reason: "the database is closed".into(),
            }),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        corrupt(&self.path, e)
    }

    fn write_err(&self, e: Fail) -> StoreError {
        match e {
            Fail::Corrupt(c) => self.corrupt(c),
            Fail::Db(e) => StoreError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            },
        }
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What redb said opening `path`, in our words.
pub(super) fn db_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Open {
            path: path.to_path_buf(),
            reason: "another process has it open".into(),
        },
        // redb's own file format, not our `meta` format version.
        redb::DatabaseError::UpgradeRequired(found) => StoreError::UnknownRedbFormat {
            path: path.to_path_buf(),
            found,
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => classify_io(path, io),
        other => corrupt(path, other),
    }
}

/// A new file gets the format version; an existing one must have ours.
fn check_format(path: &Path, db: &Database) -> Result<(), StoreError> {
    let found = (|| -> Result<Option<u64>, Fail> {
        let tx = db.begin_read()?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get("format")?.map(|v| v.value()))
    })()
    .map_err(|e| corrupt(path, e))?;
    match found {
        Some(FORMAT_VERSION) => Ok(()),
        Some(v) => Err(StoreError::UnknownVersion {
            path: path.to_path_buf(),
            found: v,
            expected: FORMAT_VERSION,
        }),
        None => initialise(db).map_err(|e| match e {
            Fail::Corrupt(c) => corrupt(path, c),
            Fail::Db(e) => StoreError::Write {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        }),
    }
}

fn initialise(db: &Database) -> Result<(), Fail> {
    let tx = db.begin_write()?;
    {
        if tx.list_tables()?.next().is_some() {
            return Err(Corrupt("format version (tables without one)").into());
        }
        let mut meta = tx.open_table(META)?;
        meta.insert("format", FORMAT_VERSION)?;
        tx.open_table(SESSIONS)?;
        tx.open_table(BODIES)?;
        tx.open_table(RETAINED)?;
        tx.open_table(SUBSCRIPTIONS)?;
        tx.open_table(OUTGOING)?;
        tx.open_table(INCOMING)?;
        tx.open_table(HOLDERS)?;
        tx.open_table(BRIDGE_QUEUE)?;
    }
    tx.commit()?;
    Ok(())
}

/// `Database::open` for a file that `exists`, else `Database::create`
/// (which would initialise an existing empty file as a new store and so
/// start the broker empty, silently), with a panic inside redb (it asserts
/// on some damaged files, e.g. one shorter than its header says) turned
/// into [`StoreError::Corrupt`]: a damaged file is an error, never a crash.
/// The panic hook is silenced meanwhile, so the operator sees our message
/// only.
fn open_guarded(
    path: &Path,
    exists: bool,
) -> Result<Result<Database, redb::DatabaseError>, StoreError> {
    guarded(path, || {
        if exists {
            Database::open(path)
        } else {
            Database::create(path)
        }
    })
}

/// Refuses an existing store file of zero bytes: no store we write is
/// empty (the first commit writes the header and format version), so the
/// file lost its contents (e.g. a disk that filled while it was created,
/// or a copy that went wrong), and starting empty would forget silently
/// everything that was acknowledged.
fn check_not_empty(path: &Path) -> Result<(), StoreError> {
    let meta = std::fs::metadata(path).map_err(|e| classify_io(path, e))?;
    if meta.len() == 0 {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "the file is empty (0 bytes); restore it from a backup, or move it \
                     away to start with an empty store"
                .into(),
        });
    }
    Ok(())
}

/// Runs `f`, a read of a file that may be damaged, turning a panic inside
/// redb into [`StoreError::Corrupt`] (see [`open_guarded`]).
fn guarded<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unreadable".into());
        StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("damaged or truncated ({what})"),
        }
    })
}

/// An IO error opening `path`: a permission problem is "read-only".
fn classify_io(path: &Path, e: std::io::Error) -> StoreError {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            StoreError::ReadOnly {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("not a store, or damaged ({e})"),
            }
        }
        _ => StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

/// Refuses a file or directory without write permission, even where the
/// process could write anyway (root): the operator marked it read-only.
fn check_writable(path: &Path) -> Result<(), StoreError> {
    let meta = std::fs::metadata(path).map_err(|e| classify_io(path, e))?;
    if meta.permissions().readonly() {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            reason: "no write permission".into(),
        });
    }
    Ok(())
}

impl Store for RedbStore {
    fn load(&mut self) -> Result<RestoredState, StoreError> {
        let path = self.path.clone();
        let db = self.ready()?;
        guarded(&path, || read_all(db))?.map_err(|e| corrupt(&path, e))
    }

    /// On failure the database is dropped, to be opened again by the next
    /// call (see `RedbStore::ready`).
    fn commit(&mut self, records: &[StoreRecord]) -> Result<(), StoreError> {
        let db = self.ready()?;
        let r = commit_to(db, records);
        if r.is_err() {
            self.db = None;
        }
        r.map_err(|e| self.write_err(e))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// redb reuses freed pages but never shrinks its file by itself: a
    /// broker that once queued many messages would keep the file at its
    /// largest for good.
    fn compact(&mut self) -> Result<bool, StoreError> {
        self.ready()?;
        let path = self.path.clone();
        let Some(db) = self.db.as_mut() else {
            return Ok(false);
        };
        // redb moves pages down until no pass helps, then truncates.
        guarded(&path, || db.compact())?.map_err(|e| StoreError::Write {
            path: path.clone(),
            reason: format!("compaction: {e}"),
        })
    }
}

fn commit_to(db: &Database, records: &[StoreRecord]) -> Result<(), Fail> {
    let tx = db.begin_write()?;
    let applied = Tables::open(&tx).and_then(|mut t| {
        for r in records {
            t.apply(r)?;
        }
        Ok(())
    });
    if let Err(e) = applied {
        let _ = tx.abort();
        return Err(e);
    }
    tx.commit()?;
    Ok(())
}

/// A `sessions` row.
#[derive(Debug, Default)]
pub(super) struct SessionRow {
    pub(super) username: Option<Str>,
    pub(super) expiry: u32,
    pub(super) detached: Option<Option<WallTime>>,
    pub(super) will: Option<StoredWill>,
    pub(super) connected_will: Option<ConnectedWill>,
}

impl SessionRow {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match &self.username {
            Some(u) => w.u8(1).bytes(u.as_str().as_bytes()),
            None => w.u8(0),
        };
        w.u32(self.expiry);
        match self.detached {
            Some(at) => w.u8(1).wall(at),
            None => w.u8(0),
        };
        match &self.will {
            Some(will) => w.u8(1).will(will),
            None => w.u8(0),
        };
        match &self.connected_will {
            Some(c) => {
                w.u8(1).message(&c.message);
                w.u32(c.message_expiry.map_or(u32::MAX, |e| e.min(u32::MAX - 1)));
                w.u32(c.delay)
            }
            None => w.u8(0),
        };
        w.into_vec()
    }

    pub(super) fn decode(v: &[u8]) -> Result<SessionRow, Corrupt> {
        const W: &str = "session";
        let mut r = Reader::new(v);
        let username = match r.u8(W)? {
            0 => None,
            1 => Some(str_of(r.bytes(W)?, W)?),
            _ => return Err(Corrupt(W)),
        };
        let expiry = r.u32(W)?;
        let detached = match r.u8(W)? {
            0 => None,
            1 => Some(r.wall(W)?),
            _ => return Err(Corrupt(W)),
        };
        let will = match r.u8(W)? {
            0 => None,
            1 => Some(r.will()?),
            _ => return Err(Corrupt(W)),
        };
        let connected_will = match r.u8(W)? {
            0 => None,
            1 => Some(ConnectedWill {
                message: r.message()?,
                message_expiry: Some(r.u32(W)?).filter(|e| *e != u32::MAX),
                delay: r.u32(W)?,
            }),
            _ => return Err(Corrupt(W)),
        };
        r.end(W)?;
        Ok(SessionRow {
            username,
            expiry,
            detached,
            will,
            connected_will,
        })
    }
}

fn str_of(b: &[u8], what: &'static str) -> Result<Str, Corrupt> {
    let s = std::str::from_utf8(b).map_err(|_| Corrupt(what))?;
    Str::try_from(s).map_err(|_| Corrupt(what))
}

// ----- reading ------------------------------------------------------------------

fn read_all(db: &Database) -> Result<RestoredState, Fail> {
    let tx = db.begin_read()?;
    let mut state = RestoredState::default();
    for e in tx.open_table(BODIES)?.iter()? {
        let (k, v) = e?;
        let mut r = Reader::new(v.value());
        let expires_at = r.wall("body")?;
        let message = r.message()?;
        r.end("body")?;
        state.messages.push(RestoredMessage {
            id: MessageId(k.value()),
            message,
            expires_at,
        });
    }
    for e in tx.open_table(RETAINED)?.iter()? {
        let (_, v) = e?;
        let mut r = Reader::new(v.value());
        let expires_at = r.wall("retained")?;
        let message = r.message()?;
        r.end("retained")?;
        state.retained.push(RestoredMessage {
            id: MessageId(0),
            message,
            expires_at,
        });
    }
    read_bridges(&tx.open_table(BRIDGE_QUEUE)?, &mut state)?;
    let subs = tx.open_table(SUBSCRIPTIONS)?;
    let out = tx.open_table(OUTGOING)?;
    let inc = tx.open_table(INCOMING)?;
    for e in tx.open_table(SESSIONS)?.iter()? {
        let (k, v) = e?;
        let client_id = str_of(k.value().as_bytes(), "client identifier")?;
        let row = SessionRow::decode(v.value())?;
        let mut s = RestoredSession {
            client_id,
            username: row.username,
            expiry: row.expiry,
            detached: row.detached,
            will: row.will,
            connected_will: row.connected_will,
            subscriptions: Vec::new(),
            outgoing: Vec::new(),
            incoming: Vec::new(),
        };
        read_children(&subs, &out, &inc, &mut s)?;
        state.sessions.push(s);
    }
    Ok(state)
}

/// Every bridge's stored queue, grouped by bridge (the keys are sorted).
fn read_bridges(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    state: &mut RestoredState,
) -> Result<(), Fail> {
    for e in table.iter()? {
        let (k, v) = e?;
        let (name, seq) = k.value();
        let name = str_of(name.as_bytes(), "bridge name")?;
        let mut r = Reader::new(v.value());
        let message = MessageId(r.u64("bridge message")?);
        let qos = match r.u8("bridge message")? {
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            _ => return Err(Corrupt("bridge message").into()),
        };
        let retain = r.u8("bridge message")? == 1;
        r.end("bridge message")?;
        let m = RestoredBridgeMessage {
            seq,
            message,
            qos,
            retain,
        };
        match state.bridges.last_mut() {
            Some(b) if b.name == name => b.queue.push(m),
            _ => state.bridges.push(RestoredBridge {
                name,
                queue: vec![m],
            }),
        }
    }
    Ok(())
}

fn read_children(
    subs: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    out: &impl ReadableTable<(&'static str, u16), &'static [u8]>,
    inc: &impl ReadableTable<(&'static str, u16), u8>,
    s: &mut RestoredSession,
) -> Result<(), Fail> {
    let cid = s.client_id.as_str();
    for e in subs.range((cid, "")..)? {
        let (k, v) = e?;
        let (c, f) = k.value();
        if c != cid {
            break;
        }
        let filter = TopicFilter::try_from(f).map_err(|_| Corrupt("topic filter"))?;
        let mut r = Reader::new(v.value());
        let (options, identifier) = r.subscription()?;
        r.end("subscription")?;
        s.subscriptions.push(RestoredSubscription {
            filter,
            options,
            identifier,
        });
    }
    for e in out.range((cid, 0u16)..=(cid, u16::MAX))? {
        let (k, v) = e?;
        let packet_id = PacketId::new(k.value().1).ok_or(Corrupt("packet identifier"))?;
        let mut r = Reader::new(v.value());
        let order = r.u64("outgoing")?;
        let state = match r.u8("outgoing")? {
            0 => OutgoingState::Publish {
                message: MessageId(r.u64("outgoing")?),
                options: r.delivery()?,
            },
            1 => OutgoingState::PubRel,
            _ => return Err(Corrupt("outgoing").into()),
        };
        r.end("outgoing")?;
        s.outgoing.push(RestoredOutgoing {
            packet_id,
            order,
            state,
        });
    }
    for e in inc.range((cid, 0u16)..=(cid, u16::MAX))? {
        let (k, _) = e?;
        let id = PacketId::new(k.value().1).ok_or(Corrupt("packet identifier"))?;
        s.incoming.push(id);
    }
    Ok(())
}
