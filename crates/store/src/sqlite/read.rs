//! Read-side queries of the SQLite backend: point reads, range reads (latest or at an older
//! revision) and pages of history for watches.
//!
//! Each function runs on a reader connection (never the writer's) on a blocking thread. Reads
//! that look at more than one table do so inside one read transaction, so the revision they
//! report, the compaction check and the rows all come from the same WAL snapshot.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row};

use super::db_error;
use super::schema::{compacted_revision, current_revision, prefix_end};
use crate::{Error, Event, EventType, KeyValue, RangeOptions, RangeResult, Result, Revision};

/// The latest value of `key`.
pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.create_revision, l.id, l.value FROM latest k JOIN log l ON l.id = k.id \
             WHERE k.name = ?1",
        )
        .map_err(db_error)?;
    stmt.query_row([key.as_bytes()], |row| {
        Ok(KeyValue {
            key: key.to_owned(),
            create_revision: row.get(0)?,
            mod_revision: row.get(1)?,
            value: Bytes::from(row.get::<_, Vec<u8>>(2)?),
        })
    })
    .optional()
    .map_err(db_error)
}

/// All live keys under `prefix` as of `opts.revision`, sorted, paged by `limit`/`start_after`.
pub(super) fn range(conn: &Connection, prefix: &str, opts: &RangeOptions) -> Result<RangeResult> {
    let tx = conn.unchecked_transaction().map_err(db_error)?;
    let current = current_revision(&tx).map_err(db_error)?;
    let compacted = compacted_revision(&tx).map_err(db_error)?;
    // Negative revisions are not revisions; treat them like 0 ("latest").
    let requested = opts.revision.max(0);
    if requested > current {
        return Err(Error::FutureRevision { requested, current });
    }
    if requested != 0 && requested < compacted {
        return Err(Error::Compacted { requested, compacted });
    }
    let at_latest = requested == 0 || requested == current;

    // Paging: start strictly after `start_after` when it lies inside or above the prefix range.
    let (lower, op) = match &opts.start_after {
        Some(after) if after.as_str() >= prefix => (after.as_bytes(), ">"),
        _ => (prefix.as_bytes(), ">="),
    };
    let upper = prefix_end(prefix);
    // One row more than asked tells whether the result was cut short. -1 is SQLite's "no limit".
    let sql_limit = match opts.limit {
        0 => -1,
        n => i64::try_from(n).map_or(-1, |n| n.saturating_add(1)),
    };

    let sql = if at_latest {
        format!(
            "SELECT k.name, l.create_revision, l.id, l.value \
             FROM latest k JOIN log l ON l.id = k.id \
             WHERE k.name {op} ?1 AND k.name < ?2 ORDER BY k.name LIMIT ?3"
        )
    } else {
        // The state at an older revision R, without an index on names: a key unchanged since R
        // has its `latest` row at or below R; a key changed since R had, at R, the predecessor
        // of its first change after R (none when that change was a create: the key was absent
        // at R). Both sides cost what was written since R plus the prefix's live keys; that
        // history is short because reads below the compaction revision fail. A predecessor is
        // never compacted away: its successor is above R, so not below the compaction revision.
        format!(
            "WITH changed AS ( \
                 SELECT MIN(id) AS first FROM log \
                 WHERE id > ?4 AND +name {op} ?1 AND +name < ?2 GROUP BY name) \
             SELECT name, create_revision, id, value FROM ( \
                 SELECT k.name AS name, l.create_revision, l.id, l.value \
                 FROM latest k JOIN log l ON l.id = k.id \
                 WHERE k.name {op} ?1 AND k.name < ?2 AND k.id <= ?4 \
                 UNION ALL \
                 SELECT p.name, p.create_revision, p.id, p.value \
                 FROM changed c JOIN log f ON f.id = c.first JOIN log p ON p.id = f.prev_revision) \
             ORDER BY name LIMIT ?3"
        )
    };
    let mut stmt = tx.prepare_cached(&sql).map_err(db_error)?;
    let mut rows = if at_latest {
        stmt.query(rusqlite::params![lower, upper, sql_limit])
    } else {
        stmt.query(rusqlite::params![lower, upper, sql_limit, requested])
    }
    .map_err(db_error)?;
    let mut kvs = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        kvs.push(KeyValue {
            key: name(row, 0)?,
            create_revision: row.get(1).map_err(db_error)?,
            mod_revision: row.get(2).map_err(db_error)?,
            value: Bytes::from(row.get::<_, Vec<u8>>(3).map_err(db_error)?),
        });
    }
    let more = opts.limit != 0 && kvs.len() > opts.limit;
    kvs.truncate(if more { opts.limit } else { kvs.len() });
    Ok(RangeResult { kvs, revision: if at_latest { current } else { requested }, more })
}

/// A page of history, as a watch catching up from the database reads it.
#[derive(Debug)]
pub(super) struct EventPage {
    /// Changes under the prefix, in revision order.
    pub(super) events: Vec<Event>,
    /// Every change with a revision up to this one has been read (the snapshot's revision when
    /// `complete`, else the revision of the last change in the page).
    pub(super) upto: Revision,
    /// True when the page reached the end of the snapshot.
    pub(super) complete: bool,
}

/// Up to `limit` changes under `prefix` with a revision above `after`.
pub(super) fn events(conn: &Connection, prefix: &str, after: Revision, limit: usize) -> Result<EventPage> {
    let tx = conn.unchecked_transaction().map_err(db_error)?;
    let current = current_revision(&tx).map_err(db_error)?;
    let compacted = compacted_revision(&tx).map_err(db_error)?;
    let first_needed = after.saturating_add(1);
    if first_needed < compacted {
        return Err(Error::Compacted { requested: first_needed, compacted });
    }
    let upper = prefix_end(prefix);
    // `+l.name` keeps the planner on the primary key (revision order) instead of the name
    // index, which would need a sort of the prefix's whole history.
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.id, l.name, l.deleted, l.create_revision, l.prev_revision, l.value, p.value \
             FROM log l LEFT JOIN log p ON p.id = l.prev_revision AND l.deleted = 0 \
             WHERE l.id > ?1 AND l.id <= ?2 AND +l.name >= ?3 AND +l.name < ?4 \
             ORDER BY l.id LIMIT ?5",
        )
        .map_err(db_error)?;
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows =
        stmt.query(rusqlite::params![after, current, prefix.as_bytes(), upper, sql_limit]).map_err(db_error)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        events.push(event(row)?);
    }
    let complete = events.len() < limit;
    let upto = match events.last() {
        Some(last) if !complete => last.revision(),
        _ => current,
    };
    Ok(EventPage { events, upto, complete })
}

/// Decodes one `log` row (joined with its predecessor's value) into the event it records.
fn event(row: &Row<'_>) -> Result<Event> {
    let revision: Revision = row.get(0).map_err(db_error)?;
    let key = name(row, 1)?;
    let deleted: bool = row.get(2).map_err(db_error)?;
    let create_revision: Revision = row.get(3).map_err(db_error)?;
    let prev_revision: Revision = row.get(4).map_err(db_error)?;
    let value = Bytes::from(row.get::<_, Vec<u8>>(5).map_err(db_error)?);
    if deleted {
        // A tombstone carries the deleted value: it is both the event's value and `prev`.
        let prev = KeyValue { key: key.clone(), value: value.clone(), create_revision, mod_revision: prev_revision };
        let kv = KeyValue { key, value, create_revision, mod_revision: revision };
        return Ok(Event { kind: EventType::Delete, kv, prev: Some(prev) });
    }
    let prev = if prev_revision == 0 {
        None
    } else {
        let old: Option<Vec<u8>> = row.get(6).map_err(db_error)?;
        // Compaction keeps a row while its successor is at or above the compaction revision,
        // and a watch never reads below it, so the predecessor must be there.
        let old = old.ok_or_else(|| {
            Error::Backend(format!(
                "history of {key:?} is missing revision {prev_revision} (previous value of \
                 revision {revision})"
            ))
        })?;
        Some(KeyValue { key: key.clone(), value: Bytes::from(old), create_revision, mod_revision: prev_revision })
    };
    let kv = KeyValue { key, value, create_revision, mod_revision: revision };
    Ok(Event { kind: EventType::Put, kv, prev })
}

/// Reads a name column back into a key.
fn name(row: &Row<'_>, column: usize) -> Result<String> {
    let bytes: Vec<u8> = row.get(column).map_err(db_error)?;
    String::from_utf8(bytes).map_err(|e| Error::Backend(format!("stored key is not UTF-8: {e}")))
}
