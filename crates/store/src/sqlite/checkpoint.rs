//! WAL checkpoints on their own thread and connection, off the writer's path.
//!
//! SQLite checkpoints on the committing connection by default: the commit that takes the WAL
//! past 1,000 pages also copies them into the database file and fsyncs it before it returns.
//! On our writer that stalled every write queued behind that commit, for as long as the copy
//! took: tens of milliseconds once the database outgrew the page cache (the tail of issue 2's
//! mixed-load benchmark). Here the writer's WAL hook (which replaces SQLite's autocheckpoint)
//! only wakes this thread, which runs a PASSIVE checkpoint on its own connection: it copies
//! what is committed without taking the write lock, so commits go on meanwhile, and the
//! writer's next transaction starts the WAL over once everything is copied.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

use crate::{Error, Result};

/// WAL pages after which a checkpoint is started: SQLite's autocheckpoint default.
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

/// How long to wait before trying again when a checkpoint could not copy every frame (a
/// reader still uses them): long enough not to spin while the reader finishes.
const RETRY_AFTER: Duration = Duration::from_millis(10);

/// Hooks `writer` up to a new checkpointer thread on `path`. The thread ends when `writer` is
/// closed (its hook, and with it the only sender, is dropped); join it after that.
pub(super) fn start(path: &Path, writer: &mut Connection) -> Result<JoinHandle<()>> {
    let conn = super::schema::open_checkpointer(path)
        .map_err(|e| Error::Backend(format!("opening {} for checkpoints: {e}", path.display())))?;
    // One pending wake-up is enough: a checkpoint copies everything committed before it.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    writer
        .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages >= CHECKPOINT_PAGES {
                let _ = wake.try_send(());
            }
            Ok(())
        }))
        .map_err(|e| Error::Backend(format!("installing the WAL hook: {e}")))?;
    std::thread::Builder::new()
        .name("skiff-store-checkpoint".into())
        .spawn(move || run(&conn, &woken))
        .map_err(|e| Error::Backend(format!("starting the checkpoint thread: {e}")))
}

fn run(conn: &Connection, woken: &mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((log, copied)) if copied < log => {
                tracing::trace!(log, copied, "checkpoint left frames a reader still uses");
                std::thread::sleep(RETRY_AFTER);
            }
            Ok(_) => {}
            // Busy (another process checkpointing, or a lock held past the busy timeout): the
            // next commit past the threshold wakes us again.
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// Commits past the threshold are copied into the database file by the checkpoint thread
    /// (the hook turned SQLite's own autocheckpoint off, so nothing else would), and the
    /// thread ends when the writer's connection closes.
    #[test]
    fn the_checkpoint_thread_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let mut conn = super::super::schema::open_writer(&path).expect("open");
        let thread = super::start(&path, &mut conn).expect("start");
        conn.execute_batch("CREATE TABLE blobs (b BLOB)").expect("table");
        let before = std::fs::metadata(&path).expect("db").len();
        // A MiB a commit: 256 pages each, past the 1,000-page threshold after four.
        let value = vec![b'x'; 1 << 20];
        for _ in 0..6 {
            conn.execute("INSERT INTO blobs (b) VALUES (?1)", [&value]).expect("insert");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(&path).expect("db").len();
            if size >= before + (4 << 20) {
                break;
            }
            assert!(Instant::now() < deadline, "nothing was checkpointed: the database file has {size} bytes");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(conn);
        thread.join().expect("the checkpoint thread ends with the writer");
    }
}
