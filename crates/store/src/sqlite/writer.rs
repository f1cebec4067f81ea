//! The writer thread of the SQLite backend: the only connection that writes, and so the only
//! place revisions are assigned.
//!
//! Group commit: the thread blocks for one request, then drains every request already queued
//! (up to `max_batch`) and runs them all in one transaction, each with its own revision and its
//! own precondition check, commits once (one fsync), and only then answers the callers and
//! publishes the committed events to watchers. When the previous batch held several writes,
//! it lingers a little for more first ([`Linger`]): under load each fsync then covers more
//! writes, and a lone write is not delayed. A precondition failure is an ordinary answer for
//! that one request; a database error rolls the batch back and retries its requests one per
//! transaction, so one bad request cannot fail its neighbours.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::{broadcast, oneshot};

use super::{Linger, Shared};
use crate::{Error, Event, EventType, KeyValue, Result, Revision};

/// One write, with the channel its answer goes back on.
pub(super) enum Request {
    Create { key: String, value: Bytes, reply: oneshot::Sender<Result<Revision>> },
    Update { key: String, value: Bytes, expected: Revision, reply: oneshot::Sender<Result<Revision>> },
    Delete { key: String, expected: Option<Revision>, reply: oneshot::Sender<Result<(Revision, KeyValue)>> },
    Compact { revision: Revision, reply: oneshot::Sender<Result<()>> },
}

/// The successful result of one request, held until its transaction commits.
enum Done {
    Written(Revision),
    Deleted(Revision, KeyValue),
    Compacted,
}

/// State owned by the writer thread.
pub(super) struct Writer {
    conn: Connection,
    /// The newest revision handed out; the next write gets `current + 1`.
    current: Revision,
    /// History below this revision is gone.
    compacted: Revision,
    /// Where committed revisions are published for readers of the atomics.
    shared: Arc<Shared>,
    /// Committed events, in revision order, for watchers.
    events: broadcast::Sender<Arc<Event>>,
    /// Most requests per transaction; bounds the latency one batch adds to its last request.
    max_batch: usize,
    linger: Linger,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        current: Revision,
        compacted: Revision,
        shared: Arc<Shared>,
        events: broadcast::Sender<Arc<Event>>,
        max_batch: usize,
        linger: Linger,
    ) -> Self {
        Writer { conn, current, compacted, shared, events, max_batch: max_batch.max(1), linger }
    }

    /// Serves requests until every sender is gone, answering everything already queued.
    pub(super) fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut concurrent = false;
        while let Ok(first) = requests.recv() {
            let linger = if concurrent { self.linger } else { Linger::NONE };
            let batch = collect(first, &requests, self.max_batch, linger);
            concurrent = batch.len() > 1;
            self.run_batch(batch);
        }
        tracing::debug!(revision = self.current, "store writer stopped");
    }

    fn run_batch(&mut self, batch: Vec<Request>) {
        let (current, compacted) = (self.current, self.compacted);
        match self.try_batch(&batch) {
            Ok((results, events)) => {
                tracing::trace!(requests = batch.len(), revision = self.current, "store batch committed");
                self.shared.current.store(self.current, Ordering::Release);
                self.shared.compacted.store(self.compacted, Ordering::Release);
                for event in events {
                    // An error only means nobody is watching.
                    let _ = self.events.send(Arc::new(event));
                }
                for (req, result) in batch.into_iter().zip(results) {
                    answer(req, result);
                }
            }
            Err(e) => {
                // Nothing was committed: forget the revisions the batch used.
                self.current = current;
                self.compacted = compacted;
                if batch.len() == 1 {
                    tracing::error!(error = %e, "store write failed");
                    for req in batch {
                        answer(req, Err(Error::Backend(e.to_string())));
                    }
                } else {
                    tracing::warn!(error = %e, requests = batch.len(), "store batch failed, retrying one by one");
                    for req in batch {
                        self.run_batch(vec![req]);
                    }
                }
            }
        }
    }

    /// Runs a batch in one transaction. `Err` means a database failure: nothing committed.
    fn try_batch(&mut self, batch: &[Request]) -> rusqlite::Result<(Vec<Result<Done>>, Vec<Event>)> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut state = Revisions { current: self.current, compacted: self.compacted };
        for req in batch {
            results.push(apply(&tx, &mut state, req, &mut events)?);
        }
        if events.is_empty() && state.compacted == self.compacted {
            // Only failed preconditions: nothing to make durable.
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        self.current = state.current;
        self.compacted = state.compacted;
        Ok((results, events))
    }
}

/// The batch that starts with `first`: everything queued (up to `max_batch`), and what arrives
/// while requests keep coming within the `linger`'s gap, until its maximum.
///
/// The writer sleeps through each gap and then takes what came, instead of waiting on the
/// queue: a sender wakes the writer only when it is idle in [`Writer::run`], not once per
/// request of a busy batch (a futex wake and a context switch each, on every write).
fn collect<T>(first: T, requests: &mpsc::Receiver<T>, max_batch: usize, linger: Linger) -> Vec<T> {
    let mut batch = vec![first];
    // Takes what is queued; false when every sender is gone.
    let drain = |batch: &mut Vec<T>| {
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(req) => batch.push(req),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
        true
    };
    if !drain(&mut batch) || linger.gap.is_zero() {
        return batch;
    }
    let deadline = Instant::now() + linger.max;
    while batch.len() < max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(linger.gap.min(left));
        let before = batch.len();
        if !drain(&mut batch) || batch.len() == before {
            break;
        }
    }
    batch
}

/// The revision counters as a transaction advances them (committed only with it).
struct Revisions {
    current: Revision,
    compacted: Revision,
}

/// The latest row of a live key, as the writer needs it.
struct Latest {
    mod_revision: Revision,
    create_revision: Revision,
    value: Bytes,
}

impl Latest {
    fn into_kv(self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// Applies one request inside the batch's transaction. The outer `Err` is a database failure
/// (abort the batch); the inner one is this request's own answer (e.g. a failed precondition).
fn apply(
    tx: &Transaction<'_>,
    state: &mut Revisions,
    req: &Request,
    events: &mut Vec<Event>,
) -> rusqlite::Result<Result<Done>> {
    match req {
        Request::Create { key, value, .. } => {
            let exists = tx.prepare_cached("SELECT 1 FROM latest WHERE name = ?1")?.exists([key.as_bytes()])?;
            if exists {
                return Ok(Err(Error::AlreadyExists(key.clone())));
            }
            let revision = state.current + 1;
            insert(tx, revision, key, false, revision, 0, value)?;
            set_latest(tx, key, revision)?;
            state.current = revision;
            let kv =
                KeyValue { key: key.clone(), value: value.clone(), create_revision: revision, mod_revision: revision };
            events.push(Event { kind: EventType::Put, kv, prev: None });
            Ok(Ok(Done::Written(revision)))
        }
        Request::Update { key, value, expected, .. } => {
            let Some(old) = latest(tx, key)? else {
                return Ok(Err(Error::NotFound(key.clone())));
            };
            if old.mod_revision != *expected {
                return Ok(Err(conflict(key, *expected, old)));
            }
            let revision = state.current + 1;
            insert(tx, revision, key, false, old.create_revision, old.mod_revision, value)?;
            set_latest(tx, key, revision)?;
            state.current = revision;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: old.create_revision,
                mod_revision: revision,
            };
            events.push(Event { kind: EventType::Put, kv, prev: Some(old.into_kv(key)) });
            Ok(Ok(Done::Written(revision)))
        }
        Request::Delete { key, expected, .. } => {
            let Some(old) = latest(tx, key)? else {
                return Ok(Err(Error::NotFound(key.clone())));
            };
            if let Some(expected) = expected
                && old.mod_revision != *expected
            {
                return Ok(Err(conflict(key, *expected, old)));
            }
            let revision = state.current + 1;
            insert(tx, revision, key, true, old.create_revision, old.mod_revision, &old.value)?;
            tx.prepare_cached("DELETE FROM latest WHERE name = ?1")?.execute([key.as_bytes()])?;
            state.current = revision;
            let prev = old.into_kv(key);
            let kv = KeyValue { mod_revision: revision, ..prev.clone() };
            events.push(Event { kind: EventType::Delete, kv, prev: Some(prev.clone()) });
            Ok(Ok(Done::Deleted(revision, prev)))
        }
        Request::Compact { revision, .. } => {
            let revision = *revision;
            if revision <= state.compacted {
                return Ok(Err(Error::Compacted { requested: revision, compacted: state.compacted }));
            }
            if revision > state.current {
                return Ok(Err(Error::FutureRevision { requested: revision, current: state.current }));
            }
            compact(tx, state.compacted, revision)?;
            state.compacted = revision;
            Ok(Ok(Done::Compacted))
        }
    }
}

/// Drops the history that compaction to `to` makes unreachable, given that everything the
/// compaction to `from` made unreachable is already gone.
///
/// A row below `to` goes when it is a tombstone or when its successor is also below `to`.
/// Reads at `to` or later still find every key's newest row at or below their revision (a
/// dropped row was superseded before `to`, a dropped tombstone means "absent" just as no row
/// does), and a watch from `to - 1` still finds every event and each event's predecessor (the
/// predecessor of a row at or above `to` has a successor at or above `to`, so it stays).
/// Only rows whose successor lies in `[from, to)` can newly qualify, so compaction costs the
/// history written since the last one, not the whole database.
fn compact(tx: &Transaction<'_>, from: Revision, to: Revision) -> rusqlite::Result<()> {
    let superseded = tx.execute(
        "DELETE FROM log WHERE id IN \
         (SELECT prev_revision FROM log WHERE id >= ?1 AND id < ?2 AND prev_revision > 0)",
        [from, to],
    )?;
    let tombstones = tx.execute("DELETE FROM log WHERE id >= ?1 AND id < ?2 AND deleted = 1", [from, to])?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('compacted', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [to],
    )?;
    tracing::debug!(revision = to, superseded, tombstones, "store compacted");
    Ok(())
}

/// The newest row of a live key.
const LATEST: &str = "SELECT l.id, l.create_revision, l.value FROM latest k JOIN log l ON l.id = k.id \
                      WHERE k.name = ?1";

fn latest(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<Latest>> {
    tx.prepare_cached(LATEST)?
        .query_row([key.as_bytes()], |row| {
            Ok(Latest {
                mod_revision: row.get(0)?,
                create_revision: row.get(1)?,
                value: Bytes::from(row.get::<_, Vec<u8>>(2)?),
            })
        })
        .optional()
}

fn insert(
    tx: &Transaction<'_>,
    revision: Revision,
    key: &str,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (id, name, deleted, create_revision, prev_revision, value) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![revision, key.as_bytes(), deleted, create_revision, prev_revision, value])?;
    Ok(())
}

fn set_latest(tx: &Transaction<'_>, key: &str, revision: Revision) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO latest (name, id) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET id = excluded.id",
    )?
    .execute(rusqlite::params![key.as_bytes(), revision])?;
    Ok(())
}

fn conflict(key: &str, expected: Revision, current: Latest) -> Error {
    Error::Conflict { key: key.to_owned(), expected, current: Some(Box::new(current.into_kv(key))) }
}

/// Sends a request's answer. A caller that stopped waiting is not an error.
fn answer(req: Request, result: Result<Done>) {
    match req {
        Request::Create { reply, .. } | Request::Update { reply, .. } => {
            let _ = reply.send(result.and_then(|done| match done {
                Done::Written(revision) => Ok(revision),
                _ => Err(mismatch()),
            }));
        }
        Request::Delete { reply, .. } => {
            let _ = reply.send(result.and_then(|done| match done {
                Done::Deleted(revision, kv) => Ok((revision, kv)),
                _ => Err(mismatch()),
            }));
        }
        Request::Compact { reply, .. } => {
            let _ = reply.send(result.and_then(|done| match done {
                Done::Compacted => Ok(()),
                _ => Err(mismatch()),
            }));
        }
    }
}

/// `apply` answers each request kind with its own `Done` variant; this is unreachable.
fn mismatch() -> Error {
    Error::Backend("internal error: store writer answered a request with the wrong kind".into())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// The writer's statements are prepared once. SQLite's bundled build has STAT4, and
    /// without the query planner stability guarantee a statement whose plan could depend on a
    /// bound value is re-prepared whenever that value changes: for `latest`, on every update
    /// (parsing and planning a join each time, about 1.5% of the server's CPU in
    /// SchedulingBasic).
    #[test]
    fn statements_are_not_reprepared_per_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = super::super::schema::open_writer(&dir.path().join("db")).expect("open");
        let tx = conn.transaction().expect("tx");
        for i in 1..=50 {
            let key = format!("/registry/pods/ns/p{i}");
            insert(&tx, i, &key, false, i, 0, b"{}").expect("insert");
            set_latest(&tx, &key, i).expect("latest");
        }
        for i in 1..=50 {
            let found = latest(&tx, &format!("/registry/pods/ns/p{i}")).expect("query");
            assert_eq!(found.map(|l| l.mod_revision), Some(i));
        }
        // The very statement `latest` used (the same text finds it in the cache).
        let stmt = tx.prepare_cached(LATEST).expect("cached");
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "the latest-row query was re-prepared");
    }

    /// A WAL that grew while a reader held an old snapshot is cut back to the limit once
    /// checkpoints can empty it again, instead of keeping its high-water size on disk.
    #[test]
    fn the_wal_shrinks_back_after_a_reader_held_it_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let wal = dir.path().join("db-wal");
        let mut conn = super::super::schema::open_writer(&path).expect("open");
        let reader = super::super::schema::open_reader(&path).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let n: i64 = reader.query_row("SELECT count(*) FROM log", [], |r| r.get(0)).expect("snapshot");
        assert_eq!(n, 0);

        // One MiB a transaction, past the limit, while the reader pins the WAL.
        let value = vec![b'x'; 1 << 20];
        let limit = super::super::schema::WAL_SIZE_LIMIT;
        let writes = limit / (1 << 20) + 16;
        let write = |conn: &mut Connection, revision: i64| {
            let tx = conn.transaction().expect("tx");
            let key = format!("/registry/configmaps/ns/c{revision}");
            insert(&tx, revision, &key, false, revision, 0, &value).expect("insert");
            set_latest(&tx, &key, revision).expect("latest");
            tx.commit().expect("commit");
        };
        for revision in 1..=writes {
            write(&mut conn, revision);
        }
        let grown = std::fs::metadata(&wal).expect("wal").len();
        assert!(grown > limit as u64, "the WAL did not grow past the limit ({grown} bytes)");

        // The reader lets go: the next checkpoint empties the WAL, the next commit restarts it.
        reader.execute_batch("COMMIT").expect("commit");
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).expect("checkpoint");
        write(&mut conn, writes + 1);
        let after = std::fs::metadata(&wal).expect("wal").len();
        assert!(after <= limit as u64, "the WAL kept {after} bytes (limit {limit}, grown to {grown})");
    }
}

#[cfg(test)]
mod collect_tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{Linger, collect};

    /// Sends `n` numbers `every` apart from another thread, after the first.
    fn feed(n: u32, every: Duration) -> (mpsc::Receiver<u32>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        tx.send(0).expect("send");
        let t = std::thread::spawn(move || {
            for i in 1..n {
                std::thread::sleep(every);
                if tx.send(i).is_err() {
                    return;
                }
            }
        });
        (rx, t)
    }

    #[test]
    fn without_linger_a_batch_is_what_is_queued() {
        let (tx, rx) = mpsc::channel();
        for i in 0..5 {
            tx.send(i).expect("send");
        }
        let first = rx.recv().expect("first");
        assert_eq!(collect(first, &rx, 3, Linger::NONE), vec![0, 1, 2], "max_batch caps it");
        let first = rx.recv().expect("first");
        let long = Linger { gap: Duration::from_secs(5), max: Duration::from_secs(5) };
        let began = Instant::now();
        drop(tx);
        assert_eq!(collect(first, &rx, 10, long), vec![3, 4], "a closed queue ends the linger");
        assert!(began.elapsed() < Duration::from_secs(1));

        let (rx, t) = feed(3, Duration::from_millis(50));
        let first = rx.recv().expect("first");
        assert_eq!(collect(first, &rx, 10, Linger::NONE), vec![0], "later requests are not waited for");
        t.join().expect("feeder");
    }

    #[test]
    fn lingering_takes_what_keeps_coming_within_the_gap() {
        let linger = Linger { gap: Duration::from_millis(500), max: Duration::from_secs(10) };
        let (rx, t) = feed(4, Duration::from_millis(20));
        let first = rx.recv().expect("first");
        let began = Instant::now();
        assert_eq!(collect(first, &rx, 100, linger), vec![0, 1, 2, 3]);
        // It waited one gap past the last request, not the maximum.
        assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
        t.join().expect("feeder");

        let (rx, t) = feed(4, Duration::from_millis(20));
        let first = rx.recv().expect("first");
        assert_eq!(collect(first, &rx, 2, linger), vec![0, 1], "max_batch still caps it");
        drop(rx);
        t.join().expect("feeder");
    }

    #[test]
    fn lingering_stops_at_its_maximum_while_requests_keep_coming() {
        let linger = Linger { gap: Duration::from_secs(5), max: Duration::from_millis(100) };
        let (rx, t) = feed(1000, Duration::from_millis(10));
        let first = rx.recv().expect("first");
        let batch = collect(first, &rx, 10_000, linger);
        assert!(batch.len() > 1 && batch.len() < 1000, "{} requests", batch.len());
        drop(rx);
        t.join().expect("feeder");
    }
}
