//! The watch cache: every resource's current objects and recent changes, in memory, so lists,
//! gets and watches are served without touching the store (see `docs/data-path.md`,
//! "watch cache event").
//!
//! One store watch over the whole `/registry/` prefix feeds every per-resource cache in revision
//! order. After applying an event the cache publishes the global revision it has reached (the
//! watermark); a consistent read waits until the watermark reaches the store's current revision,
//! which gives read-your-writes without reading the store. The store is read only to fill the
//! cache at start-up (and after a reset) and, by the registry, for reads at old revisions.
//!
//! Stored values never contain `metadata.resourceVersion`; the cache injects each object's
//! mod revision once, when the event arrives, so responses are served as ready-made bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{EventType, Revision, Store};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// The prefix under which all Kubernetes objects are stored.
pub const REGISTRY_PREFIX: &str = "/registry/";

/// An object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub namespace: String,
    pub name: String,
    /// The JSON of the object with `metadata.resourceVersion` set.
    pub bytes: Bytes,
    pub labels: BTreeMap<String, String>,
    /// Field-selector attributes.
    pub fields: Vec<(&'static str, String)>,
    pub mod_revision: Revision,
    pub create_revision: Revision,
}

impl CachedObject {
    /// Parse the object (for callers that need to look inside).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// The type of a watch event as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change to one resource.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    /// The new object (for deletes: the last state, with the deletion revision).
    pub object: Arc<CachedObject>,
    /// The previous state (updates and deletes), for selector transitions.
    pub prev: Option<Arc<CachedObject>>,
    pub revision: Revision,
    /// When the cache saw it (the ring keeps recent events by age).
    at: std::time::Instant,
    /// Encoded watch lines, built on first use and shared by all watchers: one per kind, with
    /// and (from index 3) without `metadata.managedFields`.
    lines: [OnceLock<Bytes>; 6],
}

impl CacheEvent {
    fn new(kind: EventKind, object: Arc<CachedObject>, prev: Option<Arc<CachedObject>>, revision: Revision) -> Self {
        CacheEvent { kind, object, prev, revision, at: std::time::Instant::now(), lines: Default::default() }
    }

    /// `{"type":"<kind>","object":<json>}\n`, encoded once per kind (and once more without
    /// `metadata.managedFields` when `omit_managed_fields`).
    pub fn line(&self, kind: EventKind, omit_managed_fields: bool) -> Bytes {
        let slot = &self.lines[kind as usize + if omit_managed_fields { 3 } else { 0 }];
        slot.get_or_init(|| {
            let trimmed = omit_managed_fields.then(|| without_managed_fields(&self.object.bytes)).flatten();
            encode_event_line(kind.as_str(), trimmed.as_deref().unwrap_or(&self.object.bytes))
        })
        .clone()
    }
}

/// Encode one watch-stream line.
pub fn encode_event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Recent events each resource keeps for watches that resume from a revision (or fall
/// behind): at least `min_events`; more while they are younger than `fresh`, up to
/// `max_events`. Upstream's watch cache sizes itself the same way (75 s of history) so that a
/// watcher that lags during a burst resumes instead of relisting everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHistory {
    pub min_events: usize,
    pub max_events: usize,
    pub fresh: std::time::Duration,
}

impl Default for WatchHistory {
    fn default() -> Self {
        WatchHistory { min_events: 2048, max_events: 20 * 1024, fresh: std::time::Duration::from_secs(75) }
    }
}
/// Per-resource broadcast capacity; a watcher that lags further catches up from the ring.
/// Kept small because every resource allocates its channel up front.
const BROADCAST: usize = 256;

struct ResourceCache {
    /// Computes each object's field-selector attributes.
    field_fn: FieldFn,
    /// Objects by store key.
    objects: BTreeMap<String, Arc<CachedObject>>,
    /// Recent events, oldest first.
    ring: VecDeque<Arc<CacheEvent>>,
    /// Every event with a revision greater than this is in `ring`.
    ring_after: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
    /// Bumped when the cache is refilled from scratch; watchers of an older epoch must relist.
    epoch: u64,
    history: WatchHistory,
}

impl ResourceCache {
    fn new(after: Revision, field_fn: FieldFn, history: WatchHistory) -> Self {
        ResourceCache {
            history,
            field_fn,
            objects: BTreeMap::new(),
            ring: VecDeque::new(),
            ring_after: after,
            tx: broadcast::channel(BROADCAST).0,
            epoch: 0,
        }
    }

    fn push(&mut self, ev: Arc<CacheEvent>) {
        let h = self.history;
        while self.ring.len() >= h.max_events
            || self.ring.len() >= h.min_events && self.ring.front().is_some_and(|o| o.at.elapsed() > h.fresh)
        {
            let Some(old) = self.ring.pop_front() else { break };
            self.ring_after = old.revision;
        }
        self.ring.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }
}

/// Why a watch cannot start from the requested revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStartError {
    /// The revision is older than the retained history: 410 Expired.
    TooOld { requested: Revision, oldest: Revision },
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchFrom {
    /// Send the current objects as ADDED events first (resourceVersion "" or "0").
    Now { initial_events: bool },
    /// Send every change after this revision.
    After(Revision),
}

/// A registered watch: the initial events (already filtered by namespace), then `rx`.
pub struct Subscription {
    pub initial: Vec<Arc<CacheEvent>>,
    pub rx: broadcast::Receiver<Arc<CacheEvent>>,
    /// The revision the initial events reflect.
    pub start_revision: Revision,
    storage: String,
    epoch: u64,
}

/// What [`Subscription::catch_up`] found.
pub enum CatchUp {
    Events(Vec<Arc<CacheEvent>>),
    /// The history is gone (ring overflowed or the cache was refilled): the client must relist.
    Expired,
}

impl Subscription {
    /// After the receiver lagged: the events after `after` still in the ring.
    pub fn catch_up(&self, cache: &WatchCache, after: Revision) -> CatchUp {
        let Some(lock) = cache.resource(&self.storage) else { return CatchUp::Expired };
        let rc = lock.read().unwrap_or_else(|e| e.into_inner());
        if rc.epoch != self.epoch || after < rc.ring_after {
            return CatchUp::Expired;
        }
        CatchUp::Events(rc.ring.iter().filter(|e| e.revision > after).cloned().collect())
    }

    pub fn storage(&self) -> &str {
        &self.storage
    }
}

/// How the cache reads a storage's objects (set by the API server from the resource table):
/// which parts of each object to parse, and the field attributes computed from them.
#[derive(Clone)]
pub struct FieldFn {
    keep: Arc<skiff_api::selector::Keep>,
    attributes: Arc<AttributesFn>,
}

/// Computes an object's field-selector attributes from its parsed parts.
type AttributesFn = dyn Fn(&Value) -> Vec<(&'static str, String)> + Send + Sync;

impl FieldFn {
    /// `attributes` reads only what `keep` keeps, besides `metadata.name`, `metadata.namespace`
    /// and `metadata.labels`, which the cache reads itself and `keep` must keep too.
    pub fn new(
        keep: skiff_api::selector::Keep,
        attributes: impl Fn(&Value) -> Vec<(&'static str, String)> + Send + Sync + 'static,
    ) -> Self {
        FieldFn { keep: Arc::new(keep), attributes: Arc::new(attributes) }
    }
}

/// One resource's cache, shared between the follower and readers.
type Shared = Arc<RwLock<ResourceCache>>;

/// Requests to the follower task, which owns the order of events.
enum Command {
    /// Start caching a storage (a custom resource appeared): fill it at the revision the
    /// follower has reached, so no event is missed or applied twice.
    Add { storage: String, field_fn: FieldFn, done: tokio::sync::oneshot::Sender<()> },
    /// Stop caching a storage (its resource went away).
    Remove { storage: String },
}

/// All resource caches and the watermark.
pub struct WatchCache {
    store: Arc<dyn Store>,
    caches: RwLock<HashMap<String, Shared>>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    watermark_tx: watch::Sender<Revision>,
    watermark_rx: watch::Receiver<Revision>,
    history: WatchHistory,
}

/// The storage name of a key: `/registry/apps/deployments/ns/x` → `apps/deployments`.
pub fn storage_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(REGISTRY_PREFIX)?;
    let mut it = rest.splitn(3, '/');
    let g = it.next()?;
    let r = it.next()?;
    Some(&rest[..g.len() + 1 + r.len()])
}

/// Set `metadata.resourceVersion` in stored JSON bytes. Stored objects are written by the
/// registry as `{"apiVersion":…,"kind":…,"metadata":{…` without a resourceVersion, so the
/// version is spliced in after the first `"metadata":{`; anything else is re-encoded.
pub fn inject_resource_version(stored: &[u8], rv: Revision) -> Bytes {
    if let Some(at) = splice_point(stored) {
        let rv = rv.to_string();
        let mut out = Vec::with_capacity(stored.len() + rv.len() + 24);
        out.extend_from_slice(&stored[..at]);
        out.extend_from_slice(b"\"resourceVersion\":\"");
        out.extend_from_slice(rv.as_bytes());
        out.push(b'"');
        if stored.get(at) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&stored[at..]);
        return Bytes::from(out);
    }
    match serde_json::from_slice::<Value>(stored) {
        Ok(mut v) => {
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("resourceVersion".into(), Value::String(rv.to_string()));
            }
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        Err(_) => Bytes::copy_from_slice(stored),
    }
}

/// Where the resourceVersion goes in stored JSON: just after the first `"metadata":{`, if that
/// is a top-level key (only `apiVersion` and `kind`, two short strings, may precede it).
fn splice_point(json: &[u8]) -> Option<usize> {
    const NEEDLE: &[u8] = b"\"metadata\":{";
    let pos = json.windows(NEEDLE.len()).position(|w| w == NEEDLE)?;
    let prefix = &json[..pos];
    (prefix.starts_with(b"{\"apiVersion\":") && prefix.iter().filter(|&&c| c == b'{').count() == 1)
        .then_some(pos + NEEDLE.len())
}

/// `json` (an object as stored or cached: compact, `apiVersion` and `kind` before
/// `metadata`) without `metadata.managedFields`; `None` when it has none, or when the bytes are
/// not laid out that way (the caller then keeps them whole). Cuts the bytes out, so an object
/// costs a scan, not a parse.
pub fn without_managed_fields(json: &[u8]) -> Option<Bytes> {
    const KEY: &[u8] = b"\"managedFields\"";
    let start = splice_point(json)?;
    let mut at = start;
    loop {
        // Another key, or the end of metadata (`}`) without one.
        if *json.get(at)? != b'"' {
            return None;
        }
        let key_end = skip_string(json, at)?;
        if json.get(key_end) != Some(&b':') {
            return None;
        }
        let value_end = skip_value(json, key_end + 1)?;
        let next = *json.get(value_end)?;
        if &json[at..key_end] == KEY {
            // Take the comma after the entry, or (for the last one) the comma before it.
            let (from, to) = match next {
                b',' => (at, value_end + 1),
                b'}' if at > start => (at - 1, value_end),
                b'}' => (at, value_end),
                _ => return None,
            };
            let mut out = Vec::with_capacity(json.len() - (to - from));
            out.extend_from_slice(&json[..from]);
            out.extend_from_slice(&json[to..]);
            return Some(Bytes::from(out));
        }
        if next != b',' {
            return None;
        }
        at = value_end + 1;
    }
}

/// The index just past the JSON string starting at `at` (which holds its opening quote).
fn skip_string(json: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match *json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The index just past the compact JSON value starting at `at`.
fn skip_value(json: &[u8], at: usize) -> Option<usize> {
    match *json.get(at)? {
        b'"' => skip_string(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while let Some(&c) = json.get(i) {
                if matches!(c, b',' | b'}' | b']') {
                    break;
                }
                i += 1;
            }
            Some(i)
        }
    }
}

/// The stored bytes back from [`inject_resource_version`]'s output: `None` unless `cached`
/// has `rv` spliced in exactly where that function splices it (so the result is byte for
/// byte what the store holds).
pub fn strip_resource_version(cached: &[u8], rv: Revision) -> Option<Bytes> {
    let at = splice_point(cached)?;
    let spliced = format!("\"resourceVersion\":\"{rv}\"");
    let rest = cached[at..].strip_prefix(spliced.as_bytes())?;
    let rest = match rest.first() {
        Some(b',') => &rest[1..],
        Some(b'}') => rest,
        _ => return None,
    };
    let mut out = Vec::with_capacity(cached.len() - spliced.len());
    out.extend_from_slice(&cached[..at]);
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

impl WatchCache {
    /// Fill caches for `storages` from the store and start following it. `field_fns` gives each
    /// storage's field-selector attributes.
    pub async fn start(
        store: Arc<dyn Store>,
        field_fns: HashMap<String, FieldFn>,
        history: WatchHistory,
        shutdown: CancellationToken,
    ) -> Result<Arc<WatchCache>, skiff_store::Error> {
        let (watermark_tx, watermark_rx) = watch::channel(0);
        let caches =
            field_fns.into_iter().map(|(s, f)| (s, Arc::new(RwLock::new(ResourceCache::new(0, f, history))))).collect();
        let (commands, rx) = tokio::sync::mpsc::unbounded_channel();
        let cache =
            Arc::new(WatchCache { store, caches: RwLock::new(caches), commands, watermark_tx, watermark_rx, history });
        let rev = cache.fill().await?;
        let stream = cache.store.watch(REGISTRY_PREFIX, rev).await?;
        let c = cache.clone();
        tokio::spawn(async move { c.follow(stream, rx, rev, shutdown).await });
        Ok(cache)
    }

    /// Start caching `storage`; resolves once its objects are loaded.
    pub async fn add_storage(&self, storage: &str, field_fn: FieldFn) {
        // Always through the follower, even if present now: a `remove_storage` queued before
        // this must run first.
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Add { storage: storage.to_string(), field_fn, done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Stop caching `storage`; its watchers see their stream end with a 410.
    pub fn remove_storage(&self, storage: &str) {
        let _ = self.commands.send(Command::Remove { storage: storage.to_string() });
    }

    fn snapshot(&self) -> Vec<(String, Shared)> {
        self.caches.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// (Re)load every object from the store; returns the revision read at.
    async fn fill(&self) -> Result<Revision, skiff_store::Error> {
        let res = self.store.range(REGISTRY_PREFIX, Default::default()).await?;
        let caches = self.snapshot();
        let fns: HashMap<&str, FieldFn> = caches
            .iter()
            .map(|(s, l)| (s.as_str(), l.read().unwrap_or_else(|e| e.into_inner()).field_fn.clone()))
            .collect();
        let mut per: HashMap<String, BTreeMap<String, Arc<CachedObject>>> = HashMap::new();
        for kv in res.kvs {
            let Some(storage) = storage_of(&kv.key) else { continue };
            let Some(f) = fns.get(storage) else { continue };
            let obj = self.cached(&kv.key, &kv.value, kv.mod_revision, kv.create_revision, f);
            per.entry(storage.to_string()).or_default().insert(kv.key, Arc::new(obj));
        }
        for (storage, lock) in &caches {
            let mut rc = lock.write().unwrap_or_else(|e| e.into_inner());
            rc.objects = per.remove(storage.as_str()).unwrap_or_default();
            rc.ring.clear();
            rc.ring_after = res.revision;
            rc.epoch += 1;
        }
        self.watermark_tx.send_replace(res.revision);
        Ok(res.revision)
    }

    fn cached(&self, key: &str, stored: &[u8], rev: Revision, create_rev: Revision, f: &FieldFn) -> CachedObject {
        let bytes = inject_resource_version(stored, rev);
        // Only what selectors read, not the whole object.
        let value = f.keep.parse(&bytes).unwrap_or(Value::Null);
        let meta = value.get("metadata");
        let s = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
        CachedObject {
            key: key.to_string(),
            namespace: s("namespace"),
            name: s("name"),
            labels: skiff_api::selector::labels_of(&value),
            fields: (f.attributes)(&value),
            bytes,
            mod_revision: rev,
            create_revision: create_rev,
        }
    }

    async fn follow(
        self: Arc<Self>,
        mut stream: skiff_store::WatchStream,
        mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
        mut applied: Revision,
        shutdown: CancellationToken,
    ) {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(cmd) = commands.recv() => {
                    self.command(cmd, applied).await;
                    continue;
                }
                n = stream.next() => n,
            };
            match next {
                Some(Ok(ev)) => {
                    applied = ev.revision();
                    self.apply(ev)
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "store watch failed; refilling the watch cache");
                    (stream, applied) = match self.restart().await {
                        Some(s) => s,
                        None => return,
                    };
                }
                None => {
                    tracing::warn!("store watch ended; refilling the watch cache");
                    (stream, applied) = match self.restart().await {
                        Some(s) => s,
                        None => return,
                    };
                }
            }
        }
    }

    /// Run one command between events (so fills line up with the event order).
    async fn command(&self, cmd: Command, applied: Revision) {
        match cmd {
            Command::Add { storage, field_fn, done } => {
                if self.resource(&storage).is_none() {
                    let prefix = format!("{REGISTRY_PREFIX}{storage}/");
                    let mut objects = BTreeMap::new();
                    let opts = skiff_store::RangeOptions { revision: applied, ..Default::default() };
                    match self.store.range(&prefix, opts).await {
                        Ok(res) => {
                            for kv in res.kvs {
                                let o = self.cached(&kv.key, &kv.value, kv.mod_revision, kv.create_revision, &field_fn);
                                objects.insert(kv.key, Arc::new(o));
                            }
                        }
                        // Nothing stored yet at that revision (or it is gone): start empty; the
                        // follower applies everything after `applied` anyway.
                        Err(e) => tracing::debug!(error = %e, storage, "filling a new cache"),
                    }
                    let mut rc = ResourceCache::new(applied, field_fn, self.history);
                    rc.objects = objects;
                    self.caches.write().unwrap_or_else(|e| e.into_inner()).insert(storage, Arc::new(RwLock::new(rc)));
                }
                let _ = done.send(());
            }
            Command::Remove { storage } => {
                // Dropping the cache drops its broadcast sender: watchers see the channel close
                // and end their streams with a 410, so clients relist (and find the resource gone).
                self.caches.write().unwrap_or_else(|e| e.into_inner()).remove(&storage);
            }
        }
    }

    async fn restart(&self) -> Option<(skiff_store::WatchStream, Revision)> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.fill().await {
                Ok(rev) => match self.store.watch(REGISTRY_PREFIX, rev).await {
                    Ok(s) => return Some((s, rev)),
                    Err(skiff_store::Error::Closed) => return None,
                    Err(e) => tracing::warn!(error = %e, "re-watching the store"),
                },
                Err(skiff_store::Error::Closed) => return None,
                Err(e) => tracing::warn!(error = %e, "refilling the watch cache"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    fn apply(&self, ev: skiff_store::Event) {
        let rev = ev.revision();
        if let Some(storage) = storage_of(&ev.kv.key)
            && let Some(lock) = self.resource(storage)
        {
            let f = lock.read().unwrap_or_else(|e| e.into_inner()).field_fn.clone();
            let obj = Arc::new(self.cached(&ev.kv.key, &ev.kv.value, rev, ev.kv.create_revision, &f));
            let mut rc = lock.write().unwrap_or_else(|e| e.into_inner());
            let cache_event = match ev.kind {
                EventType::Put => {
                    let prev = rc.objects.insert(ev.kv.key.clone(), obj.clone());
                    let kind = if prev.is_some() { EventKind::Modified } else { EventKind::Added };
                    CacheEvent::new(kind, obj, prev, rev)
                }
                EventType::Delete => {
                    let prev = rc.objects.remove(&ev.kv.key);
                    CacheEvent::new(EventKind::Deleted, obj, prev, rev)
                }
            };
            rc.push(Arc::new(cache_event));
        }
        self.watermark_tx.send_replace(rev);
    }

    fn resource(&self, storage: &str) -> Option<Shared> {
        self.caches.read().unwrap_or_else(|e| e.into_inner()).get(storage).cloned()
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> Revision {
        *self.watermark_rx.borrow()
    }

    /// Wait until the cache has seen every change up to `rev`; false on timeout.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> bool {
        let mut rx = self.watermark_rx.clone();
        if *rx.borrow() >= rev {
            return true;
        }
        tokio::time::timeout(timeout, rx.wait_for(|w| *w >= rev)).await.is_ok_and(|r| r.is_ok())
    }

    /// Wait until the cache reflects every write acknowledged so far (a consistent read).
    pub async fn sync(&self) -> Result<Revision, skiff_store::Error> {
        let current = self.store.current_revision().await?;
        if self.wait_for(current, Duration::from_secs(10)).await {
            Ok(self.revision().max(current))
        } else {
            Err(skiff_store::Error::Backend(format!(
                "the watch cache did not reach revision {current} in time (at {})",
                self.revision()
            )))
        }
    }

    pub fn get(&self, storage: &str, key: &str) -> Option<Arc<CachedObject>> {
        let lock = self.resource(storage)?;
        let rc = lock.read().unwrap_or_else(|e| e.into_inner());
        rc.objects.get(key).cloned()
    }

    /// Objects under `prefix` (a storage prefix, optionally with a namespace) after
    /// `start_after`, passing `filter`, at most `limit` (0 = all). Returns the objects, the
    /// revision they reflect, and whether more matched.
    pub fn list(
        &self,
        storage: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        filter: &dyn Fn(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, Revision, bool) {
        let Some(lock) = self.resource(storage) else { return (Vec::new(), self.revision(), false) };
        let rc = lock.read().unwrap_or_else(|e| e.into_inner());
        let rev = self.revision();
        let start = match start_after {
            Some(k) => std::ops::Bound::Excluded(k.to_string()),
            None => std::ops::Bound::Included(prefix.to_string()),
        };
        let mut out = Vec::new();
        let mut more = false;
        for (k, o) in rc.objects.range((start, std::ops::Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            if !filter(o) {
                continue;
            }
            if limit > 0 && out.len() == limit {
                more = true;
                break;
            }
            out.push(o.clone());
        }
        (out, rev, more)
    }

    /// Number of objects a storage holds (for metrics and tests).
    pub fn len(&self, storage: &str) -> usize {
        self.resource(storage).map_or(0, |l| l.read().unwrap_or_else(|e| e.into_inner()).objects.len())
    }

    /// Register a watcher. Initial events are limited to keys under `prefix`.
    pub fn subscribe(&self, storage: &str, prefix: &str, from: WatchFrom) -> Result<Subscription, WatchStartError> {
        let Some(lock) = self.resource(storage) else {
            return Err(WatchStartError::TooOld { requested: 0, oldest: 0 });
        };
        let rc = lock.read().unwrap_or_else(|e| e.into_inner());
        let rx = rc.tx.subscribe();
        let rev = self.revision();
        let initial = match from {
            WatchFrom::Now { initial_events: true } => rc
                .objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, o)| Arc::new(CacheEvent::new(EventKind::Added, o.clone(), None, o.mod_revision)))
                .collect(),
            WatchFrom::Now { initial_events: false } => Vec::new(),
            WatchFrom::After(after) => {
                if after < rc.ring_after {
                    return Err(WatchStartError::TooOld { requested: after, oldest: rc.ring_after });
                }
                rc.ring.iter().filter(|e| e.revision > after && e.object.key.starts_with(prefix)).cloned().collect()
            }
        };
        // Events in the ring are also queued in `rx` if they arrived after subscription; the
        // watcher skips anything at or below the last revision it sent.
        Ok(Subscription { initial, rx, start_revision: rev, storage: storage.to_string(), epoch: rc.epoch })
    }

    /// Whether the subscription's cache was refilled since it started (its history is gone).
    pub fn is_stale(&self, sub: &Subscription) -> bool {
        self.resource(&sub.storage).is_none_or(|l| l.read().unwrap_or_else(|e| e.into_inner()).epoch != sub.epoch)
    }

    /// The oldest revision a watch may resume from for a storage.
    pub fn oldest_resumable(&self, storage: &str) -> Revision {
        self.resource(storage).map_or(0, |l| l.read().unwrap_or_else(|e| e.into_inner()).ring_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_resource_version() {
        let stored = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"metadata":{}}}"#;
        let out = inject_resource_version(stored, 42);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["name"], "a");
        assert_eq!(v["data"]["metadata"], serde_json::json!({}));
        let empty = br#"{"apiVersion":"v1","kind":"X","metadata":{}}"#;
        let v: Value = serde_json::from_slice(&inject_resource_version(empty, 7)).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        // Unusual key order falls back to re-encoding.
        let odd = br#"{"metadata":{"name":"b"},"apiVersion":"v1"}"#;
        let v: Value = serde_json::from_slice(&inject_resource_version(odd, 9)).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn strips_exactly_what_was_injected() {
        for stored in [
            &br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"metadata":{}}}"#[..],
            br#"{"apiVersion":"v1","kind":"X","metadata":{}}"#,
        ] {
            let cached = inject_resource_version(stored, 42);
            assert_eq!(strip_resource_version(&cached, 42).as_deref(), Some(stored));
            // Another revision is not what was spliced in.
            assert_eq!(strip_resource_version(&cached, 4), None);
        }
        // Re-encoded objects (unusual key order) are not stripped.
        let odd = inject_resource_version(br#"{"metadata":{"name":"b"},"apiVersion":"v1"}"#, 9);
        assert_eq!(strip_resource_version(&odd, 9), None);
        assert_eq!(strip_resource_version(br#"{"apiVersion":"v1","metadata":{"resourceVersion":"9"x}"#, 9), None);
    }

    #[test]
    fn managed_fields_are_cut_out_of_metadata_only() {
        let mf = serde_json::json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a\"]}": {}}, "f:x": {"k:{\"a\":\"}\"}": {}}}}]);
        let spec = serde_json::json!({"managedFields": [1], "s": "\"managedFields\":[", "n": -1.5e3, "t": true});
        for fields in [
            vec![("managedFields", mf.clone())],
            vec![("managedFields", mf.clone()), ("name", serde_json::json!("a"))],
            vec![("name", serde_json::json!("a")), ("managedFields", mf.clone())],
            vec![
                ("generation", serde_json::json!(2)),
                ("managedFields", mf.clone()),
                ("labels", serde_json::json!({"a": "b"})),
            ],
        ] {
            let mut meta = serde_json::Map::new();
            for (k, v) in &fields {
                meta.insert(k.to_string(), v.clone());
            }
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "X", "metadata": meta, "spec": spec});
            let stored = inject_resource_version(&serde_json::to_vec(&obj).unwrap(), 5);
            let cut = without_managed_fields(&stored).expect("managedFields found");
            let mut want: Value = serde_json::from_slice(&stored).unwrap();
            want["metadata"].as_object_mut().unwrap().remove("managedFields");
            assert_eq!(serde_json::from_slice::<Value>(&cut).expect("still JSON"), want, "{fields:?}");
            assert_eq!(without_managed_fields(&cut), None, "nothing left to cut");
        }
        // Only the object's own metadata counts; odd layouts are left alone.
        let nested = br#"{"apiVersion":"v1","kind":"X","metadata":{"name":"a"},"spec":{"managedFields":[]}}"#;
        assert_eq!(without_managed_fields(nested), None);
        assert_eq!(without_managed_fields(br#"{"metadata":{"managedFields":[]},"apiVersion":"v1"}"#), None);
        assert_eq!(without_managed_fields(br#"{"apiVersion":"v1","metadata":{"managedFields":[1,"#), None);
        assert_eq!(without_managed_fields(br#"{"apiVersion":"v1","metadata":{"a" :1,"managedFields":[]}}"#), None);
    }

    #[test]
    fn the_ring_keeps_recent_events_up_to_its_maximum() {
        let history = WatchHistory::default();
        let mut rc =
            ResourceCache::new(0, FieldFn::new(skiff_api::selector::Keep::everything(), |_| Vec::new()), history);
        let ev = |rev: Revision| {
            let object = Arc::new(CachedObject {
                key: format!("/registry/core/configmaps/ns/c{rev}"),
                namespace: "ns".into(),
                name: format!("c{rev}"),
                bytes: Bytes::new(),
                labels: BTreeMap::new(),
                fields: Vec::new(),
                mod_revision: rev,
                create_revision: rev,
            });
            Arc::new(CacheEvent::new(EventKind::Added, object, None, rev))
        };
        // Fresh events beyond the minimum stay: a watcher that lags a burst can resume.
        let (min, max) = (history.min_events, history.max_events);
        for rev in 1..=(min as Revision + 100) {
            rc.push(ev(rev));
        }
        assert_eq!((rc.ring.len(), rc.ring_after), (min + 100, 0));
        // The maximum holds however fresh they are.
        for rev in (min as Revision + 101)..=(max as Revision + 5) {
            rc.push(ev(rev));
        }
        assert_eq!((rc.ring.len(), rc.ring_after), (max, 5));
        assert_eq!(rc.ring.front().map(|e| e.revision), Some(6));
    }

    #[test]
    fn storage_names() {
        assert_eq!(storage_of("/registry/apps/deployments/ns/x"), Some("apps/deployments"));
        assert_eq!(storage_of("/registry/core/namespaces/x"), Some("core/namespaces"));
        assert_eq!(storage_of("/other/x"), None);
    }
}
