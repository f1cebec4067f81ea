//! An in-memory [`Store`]: the fake for unit and component tests of everything above the
//! storage seam. Same semantics as the real backends (it runs the conformance suite), no
//! durability.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{Error, Event, EventType, KeyValue, RangeOptions, RangeResult, Result, Revision, Store, WatchStream};

#[derive(Default)]
struct State {
    /// Every change, in revision order (compaction drops old ones).
    log: Vec<Event>,
    /// The latest value of each live key.
    latest: BTreeMap<String, KeyValue>,
    revision: Revision,
    compacted: Revision,
}

/// An in-memory store.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<Event>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore { state: Arc::default(), tx: broadcast::channel(1 << 16).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commit(&self, st: &mut State, ev: Event) {
        match ev.kind {
            EventType::Put => {
                st.latest.insert(ev.kv.key.clone(), ev.kv.clone());
            }
            EventType::Delete => {
                st.latest.remove(&ev.kv.key);
            }
        }
        st.log.push(ev.clone());
        // Sent under the lock so subscribers see events in revision order.
        let _ = self.tx.send(ev);
    }
}

/// State of `key` at `rev` from the log (for reads at old revisions).
fn at_revision(st: &State, prefix: &str, rev: Revision) -> BTreeMap<String, KeyValue> {
    let mut out = BTreeMap::new();
    for ev in st.log.iter().take_while(|e| e.revision() <= rev) {
        if !ev.kv.key.starts_with(prefix) {
            continue;
        }
        match ev.kind {
            EventType::Put => {
                out.insert(ev.kv.key.clone(), ev.kv.clone());
            }
            EventType::Delete => {
                out.remove(&ev.kv.key);
            }
        }
    }
    out
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().latest.get(key).cloned())
    }

    async fn range(&self, prefix: &str, opts: RangeOptions) -> Result<RangeResult> {
        let st = self.lock();
        if opts.revision > st.revision {
            return Err(Error::FutureRevision { requested: opts.revision, current: st.revision });
        }
        if opts.revision > 0 && opts.revision < st.compacted {
            return Err(Error::Compacted { requested: opts.revision, compacted: st.compacted });
        }
        let (snapshot, revision);
        let source = if opts.revision == 0 || opts.revision == st.revision {
            revision = st.revision;
            &st.latest
        } else {
            revision = opts.revision;
            snapshot = at_revision(&st, prefix, opts.revision);
            &snapshot
        };
        let mut kvs = Vec::new();
        let mut more = false;
        let start = match &opts.start_after {
            Some(k) if k.as_str() >= prefix => std::ops::Bound::Excluded(k.clone()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        for (k, kv) in source.range((start, std::ops::Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            if opts.limit > 0 && kvs.len() == opts.limit {
                more = true;
                break;
            }
            kvs.push(kv.clone());
        }
        Ok(RangeResult { kvs, revision, more })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let mut st = self.lock();
        if st.latest.contains_key(key) {
            return Err(Error::AlreadyExists(key.to_string()));
        }
        st.revision += 1;
        let rev = st.revision;
        let kv = KeyValue { key: key.to_string(), value, create_revision: rev, mod_revision: rev };
        self.commit(&mut st, Event { kind: EventType::Put, kv, prev: None });
        Ok(rev)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let mut st = self.lock();
        let Some(cur) = st.latest.get(key).cloned() else { return Err(Error::NotFound(key.to_string())) };
        if cur.mod_revision != expected {
            return Err(Error::Conflict { key: key.to_string(), expected, current: Some(Box::new(cur)) });
        }
        st.revision += 1;
        let rev = st.revision;
        let kv = KeyValue { key: key.to_string(), value, create_revision: cur.create_revision, mod_revision: rev };
        self.commit(&mut st, Event { kind: EventType::Put, kv, prev: Some(cur) });
        Ok(rev)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let mut st = self.lock();
        let Some(cur) = st.latest.get(key).cloned() else { return Err(Error::NotFound(key.to_string())) };
        if let Some(e) = expected
            && cur.mod_revision != e
        {
            return Err(Error::Conflict { key: key.to_string(), expected: e, current: Some(Box::new(cur)) });
        }
        st.revision += 1;
        let rev = st.revision;
        let kv = KeyValue { mod_revision: rev, ..cur.clone() };
        self.commit(&mut st, Event { kind: EventType::Delete, kv, prev: Some(cur.clone()) });
        Ok((rev, cur))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let (history, rx) = {
            let st = self.lock();
            if after + 1 < st.compacted {
                return Err(Error::Compacted { requested: after, compacted: st.compacted });
            }
            let rx = self.tx.subscribe();
            let history: Vec<Event> =
                st.log.iter().filter(|e| e.revision() > after && e.kv.key.starts_with(prefix)).cloned().collect();
            (history, rx)
        };
        let last = history.last().map_or(after, Event::revision);
        let prefix = prefix.to_string();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
            let prefix = prefix.clone();
            async move {
                match r {
                    Ok(ev) if ev.revision() > last && ev.kv.key.starts_with(&prefix) => Some(Ok(ev)),
                    Ok(_) => None,
                    // A watcher this far behind has lost events: end with an error, never skip.
                    Err(_) => Some(Err(Error::Compacted { requested: last, compacted: last + 1 })),
                }
            }
        });
        let s = futures::stream::iter(history.into_iter().map(Ok)).chain(live);
        // Stop after the first error: the stream must not continue past a gap.
        let mut failed = false;
        let s = s.take_while(move |r| {
            let stop = failed;
            failed = r.is_err();
            futures::future::ready(!stop)
        });
        Ok(Box::pin(s))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut st = self.lock();
        if revision <= st.compacted {
            return Err(Error::Compacted { requested: revision, compacted: st.compacted });
        }
        if revision > st.revision {
            return Err(Error::FutureRevision { requested: revision, current: st.revision });
        }
        // Keep events at or after `revision`, and for each key live at `revision` the event
        // that produced its value then (so reads at `revision` still work).
        let live_then: std::collections::HashSet<(String, Revision)> =
            at_revision(&st, "", revision).into_values().map(|kv| (kv.key, kv.mod_revision)).collect();
        st.log.retain(|e| {
            e.revision() >= revision
                || (e.kind == EventType::Put && live_then.contains(&(e.kv.key.clone(), e.revision())))
        });
        st.compacted = revision;
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.lock().compacted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::MemoryStore;
    use crate::conformance::{self, Harness};

    struct Memory;

    impl Harness for Memory {
        type Store = MemoryStore;

        async fn fresh(&self) -> Arc<MemoryStore> {
            Arc::new(MemoryStore::new())
        }

        /// Memory has no durability: "reopening" keeps the same state, as a restart of a
        /// process that kept its memory would.
        async fn reopen(&self, store: Arc<MemoryStore>) -> Arc<MemoryStore> {
            store
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(&Memory).await;
    }
}
