//! Watch streams of the SQLite backend: history from the database, then live events from the
//! writer's broadcast, with neither gaps nor duplicates.
//!
//! The stream subscribes to the broadcast *before* it reads any history, so every change
//! committed after the history snapshot is in the subscription; changes the subscription also
//! holds from before the snapshot are skipped by revision. A watcher that falls so far behind
//! that the broadcast overwrote events it had not read does not lose them: it reads them back
//! from the database (and ends with [`Error::Compacted`] if compaction got there first).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::read::EventPage;
use crate::{Error, Event, Result, Revision, WatchStream};

/// How many changes one history read returns, bounding a catching-up watcher's memory.
pub(super) const PAGE: usize = 1000;

/// The state of one watch stream.
///
/// Transitions: `catching_up` starts true with the first page already read (by
/// [`Watch::start`]); pages are read until one reaches its snapshot's revision, then the
/// stream follows the broadcast; a broadcast lag sets `catching_up` again; an error from
/// either source is yielded once and ends the stream (`done`).
struct Watch {
    shared: Arc<Shared>,
    live: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    /// Every change with a revision up to this one has been delivered or filtered out.
    seen: Revision,
    /// Changes read from the database and not yet delivered.
    backlog: VecDeque<Event>,
    /// True while the database may hold changes after `seen` that the broadcast does not.
    catching_up: bool,
    done: bool,
}

impl Watch {
    fn absorb(&mut self, page: EventPage) {
        self.backlog.extend(page.events);
        self.seen = self.seen.max(page.upto);
        self.catching_up = !page.complete;
    }

    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.catching_up {
                match read_page(&self.shared, &self.prefix, self.seen).await {
                    Ok(page) => self.absorb(page),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) => {
                    if event.revision() <= self.seen {
                        continue;
                    }
                    self.seen = event.revision();
                    if event.kv.key.starts_with(&self.prefix) {
                        return Some(Ok(Arc::unwrap_or_clone(event)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(prefix = %self.prefix, missed, seen = self.seen, "watcher lagged, catching up from the database");
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(Error::Closed));
                }
            }
        }
    }
}

/// Starts a watch of `prefix` after `after`. Fails right away (rather than in the stream) when
/// that history has been compacted.
pub(super) async fn start(
    shared: Arc<Shared>,
    live: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    after: Revision,
) -> Result<WatchStream> {
    // Revisions start at 1: any negative `after` means "from the beginning".
    let after = after.max(0);
    let first = read_page(&shared, &prefix, after).await?;
    let mut watch =
        Watch { shared, live, prefix, seen: after, backlog: VecDeque::new(), catching_up: true, done: false };
    watch.absorb(first);
    Ok(Box::pin(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    })))
}

async fn read_page(shared: &Arc<Shared>, prefix: &str, after: Revision) -> Result<EventPage> {
    let prefix = prefix.to_owned();
    shared.read(move |conn| super::read::events(conn, &prefix, after, PAGE)).await
}
