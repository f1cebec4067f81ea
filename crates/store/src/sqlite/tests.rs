//! Tests of the SQLite backend: the shared conformance suite, then what only this backend
//! promises (lag recovery from the database, purging on compaction, shutdown, crash safety).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tempfile::TempDir;

use super::{SqliteOptions, SqliteStore};
use crate::conformance::{self, Harness};
use crate::{Error, EventType, RangeOptions, Store};

/// Fresh stores in subdirectories of one temporary directory.
struct Sqlite {
    root: TempDir,
    next: AtomicUsize,
    /// Broadcast buffer of the stores it makes; small values force watchers onto the
    /// catch-up-from-database path.
    watch_buffer: usize,
}

impl Sqlite {
    fn new() -> Self {
        Self::with_watch_buffer(SqliteOptions::new("").watch_buffer)
    }

    fn with_watch_buffer(watch_buffer: usize) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        Sqlite { root, next: AtomicUsize::new(0), watch_buffer }
    }

    /// Compaction in steps of three revisions, so every compaction of the suite spanning more
    /// goes step by step.
    fn options(&self, dir: impl Into<std::path::PathBuf>) -> SqliteOptions {
        SqliteOptions { watch_buffer: self.watch_buffer, compact_step: 3, ..SqliteOptions::new(dir) }
    }

    fn open_new(&self) -> SqliteStore {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        SqliteStore::open(self.options(self.root.path().join(format!("store-{n}")))).expect("open")
    }
}

impl Harness for Sqlite {
    type Store = SqliteStore;

    async fn fresh(&self) -> Arc<SqliteStore> {
        Arc::new(self.open_new())
    }

    async fn reopen(&self, store: Arc<SqliteStore>) -> Arc<SqliteStore> {
        let dir = store.path().parent().expect("database directory").to_path_buf();
        store.close().await;
        drop(store);
        Arc::new(SqliteStore::open(self.options(dir)).expect("reopen"))
    }
}

macro_rules! conformance_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let harness = Sqlite::new();
            conformance::$name(harness.fresh().await).await;
        }
    };
}

conformance_case!(crud);
conformance_case!(revisions);
conformance_case!(update_race);
conformance_case!(create_race);
conformance_case!(range_latest);
conformance_case!(range_history);
conformance_case!(watch_concurrent_writers);
conformance_case!(watch_replay_then_live);
conformance_case!(compaction);
conformance_case!(compaction_of_slow_watcher);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_check() {
    let harness = Sqlite::new();
    for seed in 1..=4 {
        conformance::model_check(harness.fresh().await, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_slow_watcher() {
    let harness = Sqlite::new();
    conformance::watch_slow_watcher(harness.fresh().await, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reopen() {
    conformance::reopen(&Sqlite::new()).await;
}

/// The whole suite with a tiny broadcast buffer: every watcher keeps lagging and has to catch
/// up from the database, and must still see every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_with_lagging_watchers() {
    conformance::run_all(&Sqlite::with_watch_buffer(4)).await;
}

/// A watcher that lagged behind the broadcast while the history it missed was compacted ends
/// with `Compacted` (the conformance case also accepts a complete delivery; here there is no
/// buffer to deliver from).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_watcher_behind_compaction_fails() {
    let harness = Sqlite::with_watch_buffer(2);
    let store = harness.open_new();
    let start = store.current_revision().await.expect("revision");
    let mut stream = store.watch("k/", start).await.expect("watch");
    for i in 0..20 {
        store.create(&format!("k/{i}"), Bytes::from_static(b"x")).await.expect("create");
    }
    let now = store.current_revision().await.expect("revision");
    store.compact(now).await.expect("compact");
    match stream.next().await {
        Some(Err(Error::Compacted { requested, compacted })) => {
            assert_eq!((requested, compacted), (start + 1, now));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
}

/// This backend keeps a tombstone that sits exactly at the compaction revision, so a watch
/// from just below it (which the contract allows) sees that delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tombstone_at_compaction_revision_is_watchable() {
    let harness = Sqlite::new();
    let store = harness.open_new();
    store.create("t/a", Bytes::from_static(b"a")).await.expect("create");
    let (deleted_at, _) = store.delete("t/a", None).await.expect("delete");
    store.compact(deleted_at).await.expect("compact");
    let mut stream = store.watch("t/", deleted_at - 1).await.expect("watch");
    let event = stream.next().await.expect("event").expect("event");
    assert_eq!((event.kind, event.revision()), (EventType::Delete, deleted_at));
    assert_eq!(event.prev.map(|kv| kv.value), Some(Bytes::from_static(b"a")));
}

fn count_rows(store: &SqliteStore, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(store.path()).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

/// Compaction deletes superseded rows and old tombstones, and nothing a read or a watch at or
/// after the compaction revision needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_purges_history() {
    let harness = Sqlite::new();
    let store = harness.open_new();
    let value = || Bytes::from_static(b"v");
    let mut revision = 0;
    for i in 0..10 {
        let key = format!("p/{i}");
        revision = store.create(&key, value()).await.expect("create");
        for _ in 0..4 {
            revision = store.update(&key, value(), revision).await.expect("update");
        }
        if i % 2 == 1 {
            revision = store.delete(&key, None).await.expect("delete").0;
        }
    }
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM log"), 10 * 5 + 5);
    // The last write is the delete of p/9: compacting there keeps its tombstone and the row
    // it deleted (the tombstone's predecessor), plus the newest row of the 5 live keys.
    store.compact(revision).await.expect("compact");
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM log"), 5 + 2);
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM log WHERE deleted = 1"), 1);
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM latest"), 5);
    // One more write, then compact again: the p/9 history goes.
    let next = store.create("p/new", value()).await.expect("create");
    store.compact(next).await.expect("compact");
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM log"), 6);
    assert_eq!(count_rows(&store, "SELECT COUNT(*) FROM log WHERE deleted = 1"), 0);
    let listed = store.range("p/", RangeOptions::default()).await.expect("range");
    assert_eq!(listed.kvs.len(), 6);
}

/// Closing answers every request already queued; later calls fail with `Closed`; what was
/// acknowledged is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_answers_in_flight_writes() {
    let harness = Sqlite::new();
    let store = harness.open_new();
    let mut watch = store.watch("c/", 0).await.expect("watch");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("c/{i}");
            let result = store.create(&key, Bytes::from(key.clone())).await;
            (key, result)
        }));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    store.close().await;
    let mut acknowledged = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (key, Ok(revision)) => acknowledged.push((key, revision)),
            (_, Err(Error::Closed)) => {}
            (_, Err(e)) => panic!("write failed with {e}, not Closed"),
        }
    }
    assert!(matches!(store.create("c/late", Bytes::new()).await, Err(Error::Closed)));
    assert!(matches!(store.get("c/0").await, Err(Error::Closed)));
    assert!(matches!(store.watch("c/", 0).await, Err(Error::Closed)));
    assert!(matches!(store.current_revision().await, Err(Error::Closed)));
    // The watch ends with Closed after the events committed before the close.
    let mut watched = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("watch end") {
            Some(Ok(_)) => watched += 1,
            Some(Err(Error::Closed)) => break,
            other => panic!("watch after close: {other:?}"),
        }
    }
    assert_eq!(watched, acknowledged.len());

    let reopened = SqliteStore::open(harness.options(store.path().parent().expect("dir"))).expect("reopen");
    for (key, revision) in &acknowledged {
        let kv = reopened.get(key).await.expect("get").expect("acknowledged write present");
        assert_eq!((kv.mod_revision, kv.value.as_ref()), (*revision, key.as_bytes()));
    }
}

/// One database, one store: a second open fails while the first is open, and succeeds once it
/// is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_is_opened_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SqliteStore::open(SqliteOptions::new(dir.path())).expect("open");
    first.create("k", Bytes::new()).await.expect("create");
    match SqliteStore::open(SqliteOptions::new(dir.path())) {
        Err(Error::Backend(message)) => assert!(message.contains("in use"), "{message}"),
        other => panic!("second open: {other:?}"),
    }
    first.close().await;
    let second = SqliteStore::open(SqliteOptions::new(dir.path())).expect("open after close");
    assert!(second.get("k").await.expect("get").is_some());
    drop(second);
    // Dropping the last handle releases it too.
    SqliteStore::open(SqliteOptions::new(dir.path())).expect("open after drop");
}

/// Errors opening a store are reported, not panics.
#[test]
fn open_errors_are_backend_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    assert!(matches!(SqliteStore::open(SqliteOptions::new(&file)), Err(Error::Backend(_))));

    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).expect("mkdir");
    std::fs::write(garbage.join(super::DB_FILE_NAME), vec![0x5a; 8192]).expect("write");
    match SqliteStore::open(SqliteOptions::new(&garbage)) {
        Err(Error::Backend(message)) => assert!(message.contains("state.db"), "{message}"),
        other => panic!("opening a corrupt database: {other:?}"),
    }
}

/// Many concurrent writers share transactions, and every one still gets its own revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_keeps_revisions_distinct() {
    let harness = Sqlite::new();
    let store = harness.open_new();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..20 {
                let key = format!("g/{t}/{i}");
                revisions.push(store.create(&key, Bytes::from_static(b"v")).await.expect("create"));
                // A failing write inside the same batches must not disturb the others.
                assert!(store.create(&key, Bytes::new()).await.is_err());
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 64 * 20);
    assert_eq!(all.last().copied(), Some(store.current_revision().await.expect("revision")));
    assert_eq!(all.first().copied(), Some(1));
}

/// Tells the child process of the crash test where its database is.
const CRASH_CHILD_ENV: &str = "SKIFF_STORE_CRASH_CHILD_DIR";

/// The child half of the crash test: writes from many tasks until killed, printing each
/// acknowledged write. Does nothing in a normal test run.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let store = SqliteStore::open(SqliteOptions::new(dir)).expect("open");
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..32 {
            let store = store.clone();
            let stdout = Arc::clone(&stdout);
            tasks.push(tokio::spawn(async move {
                let counter = format!("crash/counter/{t}");
                let mut counter_rev = store.create(&counter, Bytes::from_static(b"0")).await.expect("create");
                for i in 1u64.. {
                    let key = format!("crash/{t}/{i}");
                    let revision = store.create(&key, Bytes::from(key.clone())).await.expect("create");
                    counter_rev =
                        store.update(&counter, Bytes::from(i.to_string()), counter_rev).await.expect("update");
                    let mut out = stdout.lock().expect("stdout");
                    writeln!(out, "ACK C {key} {revision}").expect("print");
                    writeln!(out, "ACK U {counter} {i} {counter_rev}").expect("print");
                    out.flush().expect("flush");
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// A kill -9 of a process in the middle of concurrent writes loses no acknowledged write, and
/// the store works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "sqlite::tests::crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let acks = Arc::new(AtomicUsize::new(0));
    let reader = {
        let acks = Arc::clone(&acks);
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        acks.fetch_add(1, Ordering::Relaxed);
                        lines.push(line);
                    }
                    Err(_) => break,
                }
            }
            lines
        })
    };
    // Let it write for a while, then kill it without warning, mid-flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.load(Ordering::Relaxed) < 20_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished: {status}");
    let lines = tokio::task::spawn_blocking(move || reader.join().expect("reader")).await.expect("join");

    let mut creates = Vec::new();
    let mut counters: HashMap<String, (u64, i64)> = HashMap::new();
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["ACK", "C", key, revision] => creates.push((key.to_string(), revision.parse::<i64>().expect("revision"))),
            ["ACK", "U", key, n, revision] => {
                let n: u64 = n.parse().expect("count");
                let revision: i64 = revision.parse().expect("revision");
                let entry = counters.entry(key.to_string()).or_insert((n, revision));
                if n > entry.0 {
                    *entry = (n, revision);
                }
            }
            _ => {}
        }
    }
    assert!(creates.len() > 100, "the child acknowledged only {} writes", creates.len());

    let store = SqliteStore::open(SqliteOptions::new(dir.path())).expect("reopen after kill -9");
    let mut max_acked = 0;
    for (key, revision) in &creates {
        let kv = store.get(key).await.expect("get").unwrap_or_else(|| panic!("acknowledged {key} lost"));
        assert_eq!((kv.mod_revision, kv.value.as_ref()), (*revision, key.as_bytes()));
        max_acked = max_acked.max(*revision);
    }
    for (key, (n, revision)) in &counters {
        let kv = store.get(key).await.expect("get").unwrap_or_else(|| panic!("counter {key} lost"));
        let stored: u64 = std::str::from_utf8(&kv.value).expect("utf-8").parse().expect("count");
        // Later updates may have committed without being printed; never earlier ones.
        assert!(
            stored >= *n && kv.mod_revision >= *revision,
            "{key}: stored {stored}@{} < acknowledged {n}@{revision}",
            kv.mod_revision
        );
        max_acked = max_acked.max(*revision);
    }
    let current = store.current_revision().await.expect("revision");
    assert!(current >= max_acked);
    let next = store.create("after-crash", Bytes::new()).await.expect("write after crash");
    assert!(next > current);
    eprintln!("crash test: {} acknowledged creates, revision {current} at kill", creates.len());
}

/// Rough throughput: durable creates per second from 64 concurrent tasks, 1.5 KB values.
/// `cargo test --release -p skiff-store --lib bench_creates -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_creates_64_tasks() {
    let harness = Sqlite::new();
    let store = harness.open_new();
    let value = Bytes::from(vec![b'x'; 1536]);
    let run_for = Duration::from_secs(5);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < run_for {
                store.create(&format!("bench/{t}/{n}"), value.clone()).await.expect("create");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{total} creates in {secs:.2}s: {:.0} creates/s", total as f64 / secs);

    let started = Instant::now();
    let listed = store.range("bench/", RangeOptions::default()).await.expect("range");
    eprintln!("range of {} keys at latest: {:?}", listed.kvs.len(), started.elapsed());
    let started = Instant::now();
    let mut stream = store.watch("bench/", 0).await.expect("watch");
    for _ in 0..listed.kvs.len() {
        stream.next().await.expect("event").expect("event");
    }
    eprintln!("watch replay of {} events: {:?}", listed.kvs.len(), started.elapsed());
}
