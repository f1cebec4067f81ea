//! The embedded SQLite backend: the default [`Store`], a kine-style revision log in one
//! database file.
//!
//! Layout: see [`schema`]. Writes go through one writer thread with group commit (see
//! [`writer`]); reads run on a small pool of reader connections on tokio's blocking threads
//! (see [`read`]), so no tokio worker ever waits on SQLite; watches replay history from the
//! database and then follow the writer's broadcast of committed events (see [`watch`]).
//!
//! The database runs in WAL mode with `synchronous = FULL`: a write is acknowledged only after
//! the commit holding it is fsynced.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{broadcast, oneshot};

use crate::{Error, Event, KeyValue, RangeOptions, RangeResult, Result, Revision, Store, WatchStream};

mod checkpoint;
mod read;
mod schema;
mod watch;
mod writer;

#[cfg(test)]
mod tests;

use writer::{Request, Writer};

/// The database file's name inside [`SqliteOptions::dir`].
pub const DB_FILE_NAME: &str = "state.db";

/// The lock file beside the database; held while a store has it open.
const LOCK_FILE_NAME: &str = "state.lock";

/// Options for [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// The directory holding the database (`<data-dir>/db`); created if missing. The database
    /// is [`DB_FILE_NAME`] in it, with SQLite's `-wal` and `-shm` files beside it.
    pub dir: PathBuf,
    /// Most writes committed in one transaction. Larger batches amortize the fsync over more
    /// writes; each batch's latency grows with its size.
    pub max_batch: usize,
    /// Group commit under load: when the previous batch held more than one write (writers are
    /// concurrent), the writer keeps collecting while requests keep arriving, each within
    /// `gap` of the last, for at most `max` in all. `Linger::NONE` commits what is queued at
    /// once.
    pub linger: Linger,
    /// Committed events kept in memory for watchers (each holds its value and previous value,
    /// so this bounds memory). A watcher further behind than this reads the missed events back
    /// from the database.
    pub watch_buffer: usize,
    /// Idle reader connections kept open for reuse.
    pub max_idle_readers: usize,
    /// Most revisions of history one compaction step drops: a compaction is split into steps so
    /// that writes are not held behind it (see `compact`).
    pub compact_step: Revision,
}

impl SqliteOptions {
    /// Defaults for a database in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            dir: dir.into(),
            max_batch: 1024,
            linger: Linger::DEFAULT,
            watch_buffer: 1024,
            max_idle_readers: 8,
            compact_step: 10_000,
        }
    }
}

/// How long the writer waits for more requests before it commits a batch (see
/// [`SqliteOptions::linger`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linger {
    /// Stop waiting when no request came for this long (the writer sleeps for a gap, takes
    /// what came meanwhile, and stops after a gap in which nothing did).
    pub gap: std::time::Duration,
    /// Never wait longer than this for one batch.
    pub max: std::time::Duration,
}

impl Linger {
    /// No waiting: a batch is what was queued when the writer took its first request.
    pub const NONE: Linger = Linger { gap: std::time::Duration::ZERO, max: std::time::Duration::ZERO };
    /// A few fsyncs at most: on the machine we measured, a WAL commit's fsync takes 0.2–1 ms,
    /// and writes from busy components come a few tens of µs apart. Measured on the scheduler
    /// benchmark (open load from many components, 9,000 writes/s): 250 µs / 2 ms cost about 8%
    /// less CPU per pod than 100 µs / 1 ms (fewer commits and fsyncs), while 64 clients in a
    /// closed loop lost about 7% of their writes/s to the longer wait (docs/benchmarks.md,
    /// thirteenth round).
    pub const DEFAULT: Linger =
        Linger { gap: std::time::Duration::from_micros(250), max: std::time::Duration::from_micros(2000) };
}

/// The embedded SQLite store. Cheap to clone: clones share one database, writer and watch
/// fan-out. The writer stops when the last clone is dropped or on [`SqliteStore::close`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.shared.path).finish_non_exhaustive()
    }
}

/// What the handles share with the writer thread and with watch streams (which outlive
/// neither the file nor the reader pool, but must not keep the writer alive).
struct Shared {
    path: PathBuf,
    /// The newest committed revision, published by the writer after each commit.
    current: AtomicI64,
    /// The compaction revision, published by the writer after each commit.
    compacted: AtomicI64,
    /// Set by `close`; reads then fail with [`Error::Closed`].
    closed: AtomicBool,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    max_idle_readers: usize,
    /// Bounds concurrent reads to the pool size, so bursts wait for a connection instead of
    /// opening (and re-preparing statements on) throwaway ones.
    read_permits: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// Runs `f` on a reader connection on a blocking thread.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let permit = Arc::clone(&self.read_permits).acquire_owned().await.map_err(|_| Error::Closed)?;
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Take an idle connection, releasing the lock before opening a new one.
            let idle = shared.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => schema::open_reader(&shared.path)
                    .map_err(|e| Error::Backend(format!("opening a reader on {}: {e}", shared.path.display())))?,
            };
            let result = f(&conn);
            let mut idle = shared.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < shared.max_idle_readers && !shared.closed.load(Ordering::Acquire) {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Backend(format!("store read task failed: {e}")))?
    }
}

struct Inner {
    shared: Arc<Shared>,
    /// Requests to the writer; `None` once closed.
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    /// A handle on the writer's broadcast, to subscribe watchers; `None` once closed (so
    /// watch streams end when the writer's own handle goes).
    events: Mutex<Option<broadcast::Sender<Arc<Event>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Most revisions one compaction step drops.
    compact_step: Revision,
}

impl Inner {
    /// Stops accepting requests and returns the writer thread to wait for.
    fn shut(&self) -> Option<JoinHandle<()>> {
        self.shared.closed.store(true, Ordering::Release);
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.events.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.shared.readers.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.writer.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer answers what is queued, then exits; waiting here means that the database
        // is closed when the last handle is gone (so it can be reopened right away).
        if let Some(writer) = self.shut()
            && writer.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `opts.dir` and starts its writer thread.
    /// Blocks briefly on file I/O; call it before serving, or from a blocking task.
    pub fn open(opts: SqliteOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| Error::Backend(format!("creating {}: {e}", opts.dir.display())))?;
        let lock = lock_dir(&opts.dir)?;
        let path = opts.dir.join(DB_FILE_NAME);
        let mut conn = schema::open_writer(&path)?;
        let db = |e: rusqlite::Error| Error::Backend(format!("reading {}: {e}", path.display()));
        let current = schema::current_revision(&conn).map_err(db)?;
        let compacted = schema::compacted_revision(&conn).map_err(db)?;
        // Fail now, not at the first read, if readers cannot open the file.
        let reader = schema::open_reader(&path).map_err(db)?;

        let shared = Arc::new(Shared {
            path: path.clone(),
            current: AtomicI64::new(current),
            compacted: AtomicI64::new(compacted),
            closed: AtomicBool::new(false),
            readers: Mutex::new(vec![reader]),
            max_idle_readers: opts.max_idle_readers,
            read_permits: Arc::new(tokio::sync::Semaphore::new(opts.max_idle_readers.max(1))),
        });
        let checkpointer = checkpoint::start(&path, &mut conn)?;
        let (events, _) = broadcast::channel(opts.watch_buffer.max(1));
        let (requests, queue) = mpsc::channel();
        let writer =
            Writer::new(conn, current, compacted, Arc::clone(&shared), events.clone(), opts.max_batch, opts.linger);
        let thread = std::thread::Builder::new()
            .name("skiff-store-writer".into())
            .spawn(move || {
                // Closing the writer's connection drops its WAL hook, which ends the
                // checkpointer.
                writer.run(queue);
                if checkpointer.join().is_err() {
                    tracing::error!("store checkpoint thread panicked");
                }
                // Only now, with the database closed, may another store open it.
                drop(lock);
            })
            .map_err(|e| Error::Backend(format!("starting the store writer thread: {e}")))?;
        tracing::info!(path = %path.display(), revision = current, compacted, "opened sqlite store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                shared,
                requests: Mutex::new(Some(requests)),
                events: Mutex::new(Some(events)),
                writer: Mutex::new(Some(thread)),
                compact_step: opts.compact_step.max(1),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Stops the store for every clone: writes already queued are committed and answered, later
    /// calls fail with [`Error::Closed`], watch streams end with [`Error::Closed`]. Resolves
    /// when the writer has closed the database.
    pub async fn close(&self) {
        if let Some(writer) = self.inner.shut() {
            match tokio::task::spawn_blocking(move || writer.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("store writer thread panicked"),
            }
        }
    }

    /// Sends a request to the writer and waits for its answer.
    async fn write<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        {
            let requests = self.inner.requests.lock().unwrap_or_else(PoisonError::into_inner);
            let requests = requests.as_ref().ok_or(Error::Closed)?;
            requests.send(make(reply)).map_err(|_| Error::Closed)?;
        }
        answer.await.map_err(|_| Error::Backend("the store writer stopped without answering".into()))?
    }
}

/// Takes the directory's lock file, so that a second store (in this or another process) cannot
/// open the same database: its writer would hand out revisions this one's watchers never see.
/// The OS releases the lock when the process dies, so a crash never leaves it stale.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Backend(format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Backend(format!(
            "{} is in use by another store (lock {} is held)",
            dir.display(),
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(Error::Backend(format!("locking {}: {e}", path.display()))),
    }
}

/// Maps a database error on a read path.
fn db_error(e: rusqlite::Error) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.inner.shared.read(move |conn| read::get(conn, &key)).await
    }

    async fn range(&self, prefix: &str, opts: RangeOptions) -> Result<RangeResult> {
        let prefix = prefix.to_owned();
        self.inner.shared.read(move |conn| read::range(conn, &prefix, &opts)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.write(|reply| Request::Create { key: key.to_owned(), value, reply }).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        self.write(|reply| Request::Update { key: key.to_owned(), value, expected, reply }).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        self.write(|reply| Request::Delete { key: key.to_owned(), expected, reply }).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let live = {
            let events = self.inner.events.lock().unwrap_or_else(PoisonError::into_inner);
            events.as_ref().ok_or(Error::Closed)?.subscribe()
        };
        watch::start(Arc::clone(&self.inner.shared), live, prefix.to_owned(), after).await
    }

    /// Compaction runs in the writer's transaction, and every write waits behind it. Five
    /// minutes of a busy cluster's history (hundreds of thousands of rows: 150,000 pods
    /// filling at 250/s) held writes for four seconds as one step. So history goes in steps
    /// of at most `compact_step` revisions, each a request of its own that writes queue
    /// between (each step leaves a valid compaction point; the answer waits for the last).
    async fn compact(&self, revision: Revision) -> Result<()> {
        let shared = &self.inner.shared;
        loop {
            let from = shared.compacted.load(Ordering::Acquire);
            // The last step, and requests the writer turns down as a whole (already compacted,
            // a future revision).
            if revision <= from.saturating_add(self.inner.compact_step)
                || revision > shared.current.load(Ordering::Acquire)
            {
                return self.write(|reply| Request::Compact { revision, reply }).await;
            }
            let step = from + self.inner.compact_step;
            match self.write(|reply| Request::Compact { revision: step, reply }).await {
                // Someone else compacted past this step meanwhile: go on from there.
                Ok(()) | Err(Error::Compacted { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.closed_check()?;
        Ok(self.inner.shared.current.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.closed_check()?;
        Ok(self.inner.shared.compacted.load(Ordering::Acquire))
    }
}

impl SqliteStore {
    fn closed_check(&self) -> Result<()> {
        if self.inner.shared.closed.load(Ordering::Acquire) { Err(Error::Closed) } else { Ok(()) }
    }
}
