//! The on-disk layout of the SQLite backend and how its connections are opened.
//!
//! Two tables hold the data:
//! - `log`: one row per change. `id` is the global revision (`AUTOINCREMENT`, so a revision is
//!   never handed out twice, even after the rows holding the newest revisions are deleted;
//!   `sqlite_sequence` keeps the high-water mark). A row is a put (`deleted = 0`) or a tombstone
//!   (`deleted = 1`, carrying the deleted value so delete events need no join).
//!   `prev_revision` points at the key's previous row (0 for a create); watch replay joins on it
//!   to fill `Event::prev`, which is why compaction keeps a row until its successor is itself
//!   below the compaction revision.
//! - `latest`: name → id of the newest row of every live key, so reads at the latest revision
//!   (the watch cache fills from them) are one index range scan, whatever the history length.
//!
//! There is deliberately no index on `log.name`: every write would pay a second random B-tree
//! insert (a dirty page per write in each group commit) for the sake of reads at old revisions,
//! which instead combine `latest` with the history written since (see `read::range`).
//!
//! Names are stored as BLOBs so that comparisons are plain byte order (etcd's order) and a
//! prefix's exclusive end bound may be any byte string (see [`prefix_end`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Error, Revision};

/// The schema version this code reads and writes, kept in `meta` for future migrations.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name BLOB NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    name BLOB PRIMARY KEY,
    id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The WAL file is cut back to this size whenever a checkpoint empties it. The WAL normally
/// stays near SQLite's autocheckpoint size (4 MiB). But while readers hold old snapshots (a long
/// list, a store watch catching up), checkpoints cannot empty it and it grows: past 1 GB
/// while 150,000 pods were created. Without a limit the file keeps that size on disk for good.
pub(super) const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// SQLite waits this long for a lock before failing. Only checkpoints and a second process on
/// the same file contend; our own writer is alone.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the writer connection, creating and migrating the database if needed.
pub(super) fn open_writer(path: &Path) -> Result<Connection, Error> {
    let context = |e: rusqlite::Error| Error::Backend(format!("opening {}: {e}", path.display()));
    let conn = Connection::open(path).map_err(context)?;
    let mode = setup_writer(&conn).map_err(context)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Without WAL, readers would block the writer and group commit would lose its point.
        return Err(Error::Backend(format!("{}: journal_mode is {mode:?}, WAL is required", path.display())));
    }
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()
        .map_err(context)?;
    match version {
        None => {
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)", [SCHEMA_VERSION])
                .map_err(context)?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(Error::Backend(format!(
                "{} has schema version {other}, this build understands {SCHEMA_VERSION}",
                path.display()
            )));
        }
    }
    Ok(conn)
}

/// Sets the writer's pragmas and creates the schema; returns the journal mode SQLite accepted.
fn setup_writer(conn: &Connection) -> rusqlite::Result<String> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Page caches are process memory: the writer keeps the hot index pages (16 MiB at most);
    // readers mostly serve cache fills and old-revision lists, so they keep SQLite's default.
    conn.pragma_update(None, "cache_size", -16384i64)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(32);
    plan_once(conn)?;
    conn.execute_batch(SCHEMA)?;
    Ok(mode)
}

/// Opens a read-only connection on an existing database.
pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_checkpointer(path)?;
    // Opened read-write (a WAL reader must be able to update the shared memory index);
    // `query_only` keeps it from writing data.
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(16);
    plan_once(&conn)?;
    Ok(conn)
}

/// Opens the connection WAL checkpoints run on (see `checkpoint`): it writes only what
/// checkpoints copy into the database file. Readers start from it too.
pub(super) fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -2048i64)?;
    Ok(conn)
}

/// Turns on the query planner stability guarantee, so a cached statement keeps its plan.
/// The bundled SQLite has STAT4; without the guarantee, a statement whose plan could depend on
/// a bound value is re-prepared (parsed and planned again) each time that value changes: the
/// writer's latest-row lookup was, on every update. Our queries are keyed lookups and range
/// scans on the primary key, for which one plan is always right.
fn plan_once(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// The newest revision ever handed out (0 for an empty store). Inside a read transaction this
/// is the revision of the snapshot.
pub(super) fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'log'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(seq.unwrap_or(0))
}

/// The compaction revision (0 when nothing has been compacted).
pub(super) fn compacted_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    let rev: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'compacted'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(rev.unwrap_or(0))
}

/// The exclusive upper bound of all names starting with `prefix`.
///
/// Keys are UTF-8, which never contains the byte 0xFF, so incrementing the last byte is always
/// possible for a non-empty prefix, and `[0xFF]` is above every key (the bound for prefix "").
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_end("a/"), b"a0".to_vec());
        assert_eq!(prefix_end(""), vec![0xFF]);
        // Multi-byte UTF-8: "é" is C3 A9.
        assert_eq!(prefix_end("é"), vec![0xC3, 0xAA]);
        for key in ["a/", "a/b", "a/\u{10FFFF}", "a/\u{7f}"] {
            assert!(key.as_bytes() < prefix_end("a/").as_slice(), "{key:?}");
        }
        assert!(b"a0".as_slice() >= prefix_end("a/").as_slice());
    }
}
