//! SQLite backend (placeholder until the backend lands).

/// Options for [`SqliteStore`].
#[derive(Clone, Debug, Default)]
pub struct SqliteOptions {}

/// The embedded SQLite store.
pub struct SqliteStore {}
