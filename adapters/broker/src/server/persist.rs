//! The store's thread: the core task hands it each turn's records and goes
//! on; it commits everything that is waiting in one transaction (group
//! commit: one fsync for as many turns as queued up during the last one)
//! and reports how far the records are durable. A failed commit is kept
//! and tried again, with what came after it and with a growing wait, until
//! it succeeds: records are applied in order or not at all. (The store
//! itself re-opens its file after a failure: see `RedbStore::commit`.)

use std::sync::Arc;
use std::time::Duration;

use mqtt_router::broker::{StoreRecord, WallTime};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::metrics::Monitor;
use crate::store::{Store, StoreDied};

/// Turns of records handed to the store and not yet reported stored, at
/// most: past this the core stops taking commands, so a slow disk slows
/// the clients down instead of piling records up in memory. Not while the
/// store fails: its thread then gathers every turn into the one pending
/// commit, and the core goes on serving what does not need the store
/// (only the output waiting for records is held, and new persistent work
/// is refused where the protocol allows).
pub(super) const MAX_IN_FLIGHT: usize = 64;
/// Tries of the last commit once the core has closed the store: a store
/// that still fails then is given up on, so shutdown ends.
const FINAL_TRIES: u32 = 3;
/// The wait before a failed commit is tried again the first time; it
/// doubles with each failure in a row, up to [`MAX_RETRY`].
const RETRY: Duration = Duration::from_millis(500);
/// The longest wait between two tries of a failing store.
const MAX_RETRY: Duration = Duration::from_secs(8);

/// What the store's thread reports.
#[derive(Debug)]
pub(super) enum Stored {
    /// Every record up to this sequence number is durable; `turns` turns
    /// were in that commit.
    Up(u64, usize),
    /// A commit failed; it will be tried again.
    Failed,
    /// The store panicked: the thread has ended and nothing more will be
    /// stored, so what waits for it can never be acknowledged.
    Fatal(String),
}

/// The core task's side of the store's thread.
pub(super) struct StoreLink {
    tx: Option<std::sync::mpsc::Sender<Turn>>,
    pub(super) done: mpsc::UnboundedReceiver<Stored>,
    pub(super) in_flight: usize,
    /// The store's last report was a failure.
    pub(super) failing: bool,
    /// The store, for the log ([`Store::describe`]).
    pub(super) describe: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreLink {
    /// Starts the thread that owns `store`.
    pub(super) fn start(
        store: Box<dyn Store>,
        monitor: Arc<Monitor>,
    ) -> std::io::Result<StoreLink> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        let describe = store.describe();
        let thread = std::thread::Builder::new()
            .name("mqtt-store".into())
            .spawn(move || commit_loop(store, rx, done_tx, &monitor))?;
        Ok(StoreLink {
            tx: Some(tx),
            done,
            in_flight: 0,
            failing: false,
            describe,
            thread: Some(thread),
        })
    }

    /// Hands one turn's records to the thread.
    pub(super) fn send(&mut self, records: Vec<StoreRecord>, up_to: u64) {
        if let Some(tx) = &self.tx {
            if tx.send((records, up_to)).is_ok() {
                self.in_flight += 1;
            }
        }
    }

    /// Whether the core may take more commands (see [`MAX_IN_FLIGHT`]).
    pub(super) fn has_room(&self) -> bool {
        self.failing || self.in_flight < MAX_IN_FLIGHT
    }

    /// Lets the thread commit what it has (a failing store is tried
    /// [`FINAL_TRIES`] times) and waits for it to end.
    ///
    /// # Errors
    /// [`StoreDied`] if the last records could not be stored.
    pub(super) async fn close(mut self) -> Result<(), StoreDied> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        while let Ok(stored) = self.done.try_recv() {
            if let Stored::Fatal(reason) = stored {
                return Err(StoreDied {
                    store: self.describe,
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// One turn of records and the sequence number of its last.
type Turn = (Vec<StoreRecord>, u64);

/// The records waiting for one commit: every turn that came since the last.
#[derive(Default)]
struct Batch {
    records: Vec<StoreRecord>,
    turns: usize,
    up_to: u64,
}

impl Batch {
    fn add(&mut self, (mut records, up_to): Turn) {
        self.records.append(&mut records);
        self.turns += 1;
        self.up_to = up_to;
    }

    /// Adds every turn already waiting; false once the core has closed the
    /// store and nothing more can come.
    fn gather(&mut self, rx: &std::sync::mpsc::Receiver<Turn>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(turn) => self.add(turn),
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }
}

/// For the log at exit: what group commit achieved.
#[derive(Default)]
struct Counts {
    commits: u64,
    records: u64,
    turns: u64,
}

fn commit_loop(
    mut store: Box<dyn Store>,
    rx: std::sync::mpsc::Receiver<Turn>,
    done: mpsc::UnboundedSender<Stored>,
    monitor: &Monitor,
) {
    let mut batch = Batch::default();
    // The error last logged while failing (`None`: not failing); a new one
    // is logged too, e.g. when re-opening the store fails after a write.
    let mut failing: Option<String> = None;
    let mut retry = RETRY;
    let mut final_tries = 0;
    let mut counts = Counts::default();
    loop {
        if batch.turns == 0 {
            let Ok(turn) = rx.recv() else {
                let Counts {
                    commits,
                    records,
                    turns,
                } = counts;
                super::compact(&mut *store, "at stop");
                info!(store = %store.describe(), commits, records, turns, "store closed");
                return;
            };
            batch.add(turn);
        }
        // Group commit: every turn already waiting joins this transaction.
        batch.gather(&rx);
        let began = std::time::Instant::now();
        let Some(committed) = commit_guarded(&mut *store, &batch.records, &done) else {
            return;
        };
        monitor.observe_commit(began.elapsed(), batch.records.len());
        match committed {
            Ok(()) => {
                if failing.take().is_some() {
                    info!(store = %store.describe(), "the store accepts writes again");
                    retry = RETRY;
                }
                counts.commits += 1;
                counts.records += batch.records.len() as u64;
                counts.turns += batch.turns as u64;
                let _ = done.send(Stored::Up(batch.up_to, batch.turns));
                batch = Batch::default();
            }
            Err(e) => {
                // The store re-opens itself after a failed commit (redb
                // refuses a handle that saw an IO error), so each try may
                // fail for a new reason: log the changes, not every try.
                let reason = e.to_string();
                if failing.as_ref() != Some(&reason) {
                    error!(error = %reason, retry_in = ?retry, "cannot store: acknowledgements that need it are held; retrying");
                    failing = Some(reason);
                }
                let _ = done.send(Stored::Failed);
                std::thread::sleep(retry);
                retry = (retry * 2).min(MAX_RETRY);
                // Turns that came meanwhile join the pending commit; once
                // the core has closed the store, the last tries are counted.
                if !batch.gather(&rx) {
                    final_tries += 1;
                    retry = RETRY;
                }
                if final_tries >= FINAL_TRIES {
                    let reason = format!(
                        "{} records could not be stored before the broker stopped",
                        batch.records.len()
                    );
                    error!(store = %store.describe(), "{reason}");
                    let _ = done.send(Stored::Fatal(reason));
                    return;
                }
            }
        }
    }
}

/// Commits `records`; `None` (reported to the core as fatal) if the store
/// panicked. A panic inside the store (a bug in it, or in redb) would end
/// this thread silently and leave every held acknowledgement waiting for
/// ever: it is reported instead, and the broker stops.
fn commit_guarded(
    store: &mut dyn Store,
    records: &[StoreRecord],
    done: &mpsc::UnboundedSender<Stored>,
) -> Option<Result<(), crate::store::StoreError>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(records))) {
        Ok(committed) => Some(committed),
        Err(_) => {
            let reason = "the store panicked while committing".to_string();
            error!(store = %store.describe(), "{reason}");
            let _ = done.send(Stored::Fatal(reason));
            None
        }
    }
}

/// The wall-clock time now, for expiry across restarts.
pub(super) fn wall_now() -> WallTime {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    WallTime::from_millis(ms)
}
