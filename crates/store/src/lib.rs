//! `skiff-store`: the storage seam of the API server.
//!
//! [`Store`] has etcd's semantics as Kubernetes uses them (see `docs/data-path.md`, "store CAS"):
//! one global, strictly increasing revision; reads at the latest or an older revision;
//! create-if-absent; update and delete with compare-and-swap on an object's mod revision;
//! watch every change after a revision, in order; and compaction of history older than a
//! revision, after which reads and watches below it fail with [`Error::Compacted`].
//!
//! Backends: [`SqliteStore`] (the embedded default) and, later, etcd. Every backend runs the
//! shared [`conformance`] suite.

use bytes::Bytes;
use futures::stream::BoxStream;

pub mod conformance;
mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{DB_FILE_NAME, Linger, SqliteOptions, SqliteStore};

/// A global revision. Revisions start at 1; 0 means "none" / "latest" where documented.
pub type Revision = i64;

/// One stored key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision that created this key (unchanged by updates).
    pub create_revision: Revision,
    /// The revision of the last change to this key: what compare-and-swap compares.
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created or updated.
    Put,
    Delete,
}

/// One change, as a watch delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// For `Put`, the new value. For `Delete`, the value that was deleted, with `mod_revision`
    /// set to the revision of the deletion.
    pub kv: KeyValue,
    /// The previous value for updates and deletes (`None` for creates).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which the change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// The result of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResult {
    /// Matching keys, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The revision the read observed (the store's current revision for latest reads).
    pub revision: Revision,
    /// True when `limit` cut the result short.
    pub more: bool,
}

/// Parameters of a range read.
#[derive(Clone, Debug, Default)]
pub struct RangeOptions {
    /// Read the state as of this revision; 0 means the latest.
    pub revision: Revision,
    /// Return at most this many keys; 0 means no limit.
    pub limit: usize,
    /// Only keys strictly greater than this (for paging).
    pub start_after: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `create` found the key already present.
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    /// `update` or `delete` found no such key.
    #[error("key {0:?} not found")]
    NotFound(String),
    /// The key's mod revision is not the one the caller expected; `current` is what is stored.
    #[error("conflict on key {key:?}: expected mod revision {expected}")]
    Conflict { key: String, expected: Revision, current: Option<Box<KeyValue>> },
    /// The requested revision is older than the compacted revision.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision is newer than the store's current revision.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision { requested: Revision, current: Revision },
    /// The backend failed (I/O, corruption, lost connection).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream of watch events. It ends with an `Err` item (never silently) if the watch can no
/// longer continue, e.g. [`Error::Compacted`] when a slow watcher fell behind compaction.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The storage seam. All writes are durable when their future resolves.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// All keys starting with `prefix`, sorted, as of `opts.revision`.
    async fn range(&self, prefix: &str, opts: RangeOptions) -> Result<RangeResult>;

    /// Create `key` if absent. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replace `key` if its mod revision is `expected`. Returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;

    /// Delete `key`, if `expected` is given only when its mod revision is `expected`.
    /// Returns the deletion revision and the deleted value as it was stored (its
    /// `mod_revision` is the key's last change before the delete, like etcd's `prev_kv`).
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Every change to keys under `prefix` with a revision strictly greater than `after`, in
    /// revision order, then live changes as they commit. Fails with [`Error::Compacted`] when
    /// that history is gone, i.e. when `after + 1 < compacted_revision()`. `after` may be the
    /// current revision (only new changes) or beyond it (changes after `after` only).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Forget history before `revision` (etcd's `compact(revision)`): every value superseded
    /// before `revision` and every key deleted before it is dropped; the latest value of every
    /// live key is kept. Range reads at revisions below it then fail with [`Error::Compacted`].
    /// Like etcd, fails with [`Error::Compacted`] when `revision <= compacted_revision()` and
    /// with [`Error::FutureRevision`] when it is above the current revision.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The current (latest committed) revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable (0 when nothing has been compacted).
    async fn compacted_revision(&self) -> Result<Revision>;
}
