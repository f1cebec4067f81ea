//! The conformance suite every [`Store`] backend runs: the contract documented on [`Store`],
//! as executable checks.
//!
//! Each case is a public async function that panics, like a test assertion, when the backend
//! breaks the contract. A backend's test module supplies stores through a [`Harness`] and runs
//! the cases one `#[tokio::test]` each (clearer failure reports) or all at once with
//! [`run_all`]. Cases use their own key prefixes and compare revisions relative to what the
//! store reports, never to absolute numbers, so they hold on a store other cases used before.
//! They need a multi-threaded tokio runtime (they race tasks against each other).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Error, Event, EventType, KeyValue, RangeOptions, RangeResult, Revision, Store, WatchStream};

/// How the suite gets stores from a backend.
pub trait Harness: Send + Sync {
    type Store: Store;

    /// A new, empty store that no other case uses.
    fn fresh(&self) -> impl Future<Output = Arc<Self::Store>> + Send;

    /// Shuts `store` down and opens its data again, as a server restart would.
    fn reopen(&self, store: Arc<Self::Store>) -> impl Future<Output = Arc<Self::Store>> + Send;
}

/// Runs every case, each on a fresh store.
pub async fn run_all<H: Harness>(harness: &H) {
    crud(harness.fresh().await).await;
    revisions(harness.fresh().await).await;
    update_race(harness.fresh().await).await;
    create_race(harness.fresh().await).await;
    range_latest(harness.fresh().await).await;
    range_history(harness.fresh().await).await;
    watch_concurrent_writers(harness.fresh().await).await;
    watch_replay_then_live(harness.fresh().await).await;
    watch_slow_watcher(harness.fresh().await, 5000).await;
    compaction(harness.fresh().await).await;
    compaction_of_slow_watcher(harness.fresh().await).await;
    model_check(harness.fresh().await, 7).await;
    reopen(harness).await;
}

/// How long a case waits for a watch event before failing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn latest() -> RangeOptions {
    RangeOptions::default()
}

fn at(revision: Revision) -> RangeOptions {
    RangeOptions { revision, ..RangeOptions::default() }
}

async fn current<S: Store>(store: &S) -> Revision {
    store.current_revision().await.expect("current_revision")
}

/// The next event of `stream`; panics on an error, the end of the stream or a timeout.
async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// Reads `expected.len()` events and compares them, one by one, with `expected`.
async fn expect_events(stream: &mut WatchStream, expected: &[Event], what: &str) {
    for (i, want) in expected.iter().enumerate() {
        let got = next_event(stream).await;
        assert_eq!(&got, want, "{what}: event {i} of {}", expected.len());
    }
}

/// Writes a marker key and expects it to be the next event of every stream (all of which must
/// watch it): nothing unexpected (duplicate, stray key) was queued before it.
async fn expect_marker_next<S: Store>(store: &S, streams: &mut [&mut WatchStream], key: &str) {
    let revision = store.create(key, b("marker")).await.expect("create marker");
    for stream in streams {
        let got = next_event(stream).await;
        assert_eq!(got.kv.key, key, "expected the marker, got {got:?}");
        assert_eq!(got.revision(), revision);
    }
}

/// Writes through a store and records what a watch must report for those writes.
struct Recorder<S> {
    store: Arc<S>,
    live: BTreeMap<String, KeyValue>,
    events: Vec<Event>,
}

impl<S: Store> Recorder<S> {
    fn new(store: Arc<S>) -> Self {
        Recorder { store, live: BTreeMap::new(), events: Vec::new() }
    }

    async fn create(&mut self, key: &str, value: &str) -> Revision {
        let revision = self.store.create(key, b(value)).await.expect("create");
        let kv = KeyValue { key: key.to_owned(), value: b(value), create_revision: revision, mod_revision: revision };
        self.events.push(Event { kind: EventType::Put, kv: kv.clone(), prev: None });
        self.live.insert(key.to_owned(), kv);
        revision
    }

    async fn update(&mut self, key: &str, value: &str) -> Revision {
        let prev = self.live.get(key).cloned().expect("recorder: update of a key it never created");
        let revision = self.store.update(key, b(value), prev.mod_revision).await.expect("update");
        let kv = KeyValue { value: b(value), mod_revision: revision, ..prev.clone() };
        self.events.push(Event { kind: EventType::Put, kv: kv.clone(), prev: Some(prev) });
        self.live.insert(key.to_owned(), kv);
        revision
    }

    async fn delete(&mut self, key: &str) -> Revision {
        let prev = self.live.remove(key).expect("recorder: delete of a key it never created");
        let (revision, deleted) = self.store.delete(key, Some(prev.mod_revision)).await.expect("delete");
        assert_eq!(deleted, prev, "delete returns the deleted value as it was stored");
        let kv = KeyValue { mod_revision: revision, ..prev.clone() };
        self.events.push(Event { kind: EventType::Delete, kv, prev: Some(prev) });
        revision
    }

    /// A mix of creates, updates and deletes on `count` keys under `prefix`.
    async fn churn(&mut self, prefix: &str, count: usize) {
        for i in 0..count {
            let key = format!("{prefix}{i:04}");
            self.create(&key, &format!("{i}-v1")).await;
            self.update(&key, &format!("{i}-v2")).await;
            if i % 2 == 0 {
                self.update(&key, &format!("{i}-v3")).await;
            }
            if i % 3 == 0 {
                self.delete(&key).await;
            }
        }
    }
}

fn sorted_by_revision(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by_key(Event::revision);
    events
}

fn assert_strictly_increasing(revisions: impl IntoIterator<Item = Revision>, what: &str) {
    let mut last = None;
    for revision in revisions {
        if let Some(last) = last {
            assert!(revision > last, "{what}: revision {revision} after {last}");
        }
        last = Some(revision);
    }
}

/// Create, get, update, delete and their errors.
pub async fn crud<S: Store>(store: Arc<S>) {
    let key = "crud/a";
    assert_eq!(store.get(key).await.expect("get"), None);

    let r1 = store.create(key, b("one")).await.expect("create");
    assert!(r1 > 0);
    let kv1 = KeyValue { key: key.into(), value: b("one"), create_revision: r1, mod_revision: r1 };
    assert_eq!(store.get(key).await.expect("get"), Some(kv1.clone()));
    match store.create(key, b("again")).await {
        Err(Error::AlreadyExists(k)) => assert_eq!(k, key),
        other => panic!("create of an existing key: {other:?}"),
    }
    assert_eq!(store.get(key).await.expect("get"), Some(kv1.clone()), "failed create changed nothing");

    // Compare-and-swap.
    match store.update(key, b("stale"), r1 + 1000).await {
        Err(Error::Conflict { key: k, expected, current }) => {
            assert_eq!((k.as_str(), expected), (key, r1 + 1000));
            assert_eq!(current.as_deref(), Some(&kv1), "conflict carries the stored value");
        }
        other => panic!("update with a stale revision: {other:?}"),
    }
    let r2 = store.update(key, b("two"), r1).await.expect("update");
    assert!(r2 > r1);
    let kv2 = KeyValue { value: b("two"), mod_revision: r2, ..kv1.clone() };
    assert_eq!(store.get(key).await.expect("get"), Some(kv2.clone()), "update keeps create_revision");
    match store.update(key, b("three"), r1).await {
        Err(Error::Conflict { current, .. }) => assert_eq!(current.as_deref(), Some(&kv2)),
        other => panic!("update with the previous revision: {other:?}"),
    }
    match store.update("crud/missing", b("x"), r1).await {
        Err(Error::NotFound(k)) => assert_eq!(k, "crud/missing"),
        other => panic!("update of a missing key: {other:?}"),
    }

    // Delete with and without precondition.
    match store.delete(key, Some(r1)).await {
        Err(Error::Conflict { key: k, expected, current }) => {
            assert_eq!((k.as_str(), expected), (key, r1));
            assert_eq!(current.as_deref(), Some(&kv2));
        }
        other => panic!("delete with a stale revision: {other:?}"),
    }
    let (r3, deleted) = store.delete(key, Some(r2)).await.expect("delete");
    assert!(r3 > r2);
    assert_eq!(deleted, kv2);
    assert_eq!(store.get(key).await.expect("get"), None);
    assert!(matches!(store.delete(key, None).await, Err(Error::NotFound(_))));
    assert!(matches!(store.delete(key, Some(r2)).await, Err(Error::NotFound(_))));
    assert!(matches!(store.update(key, b("x"), r2).await, Err(Error::NotFound(_))));

    // A re-created key starts a new life: a new create revision.
    let r4 = store.create(key, b("four")).await.expect("re-create");
    assert!(r4 > r3);
    let kv4 = store.get(key).await.expect("get").expect("re-created key");
    assert_eq!((kv4.create_revision, kv4.mod_revision), (r4, r4));
    let (r5, deleted) = store.delete(key, None).await.expect("unconditional delete");
    assert!(r5 > r4);
    assert_eq!(deleted, kv4);

    // Empty values and unusual keys are ordinary data.
    let r6 = store.create("crud/empty", Bytes::new()).await.expect("create empty");
    let empty = store.get("crud/empty").await.expect("get").expect("empty value stored");
    assert_eq!((empty.value.len(), empty.mod_revision), (0, r6));
    let odd = "crud/ünïcode key/with spaces/🚢";
    store.create(odd, b("odd")).await.expect("create unicode key");
    assert_eq!(store.get(odd).await.expect("get").map(|kv| kv.value), Some(b("odd")));
    assert_eq!(store.get("crud/ünïcode").await.expect("get"), None, "get is exact, not by prefix");
}

/// One global revision: every write gets a new, higher one; failed writes get none.
pub async fn revisions<S: Store>(store: Arc<S>) {
    let start = current(&*store).await;
    let mut seen = vec![start];
    seen.push(store.create("rev/a", b("1")).await.expect("create"));
    seen.push(store.create("rev/b", b("1")).await.expect("create"));
    let a = store.get("rev/a").await.expect("get").expect("rev/a");
    seen.push(store.update("rev/a", b("2"), a.mod_revision).await.expect("update"));
    seen.push(store.delete("rev/b", None).await.expect("delete").0);
    seen.push(store.create("rev/b", b("2")).await.expect("create"));
    assert_strictly_increasing(seen.iter().copied(), "successive writes");
    let last = *seen.last().expect("revisions");
    assert_eq!(current(&*store).await, last, "current_revision is the newest write");

    // Failed writes leave the revision alone.
    assert!(store.create("rev/a", b("x")).await.is_err());
    assert!(store.update("rev/a", b("x"), 0).await.is_err());
    assert!(store.update("rev/none", b("x"), last).await.is_err());
    assert!(store.delete("rev/none", None).await.is_err());
    assert!(store.delete("rev/a", Some(0)).await.is_err());
    assert_eq!(current(&*store).await, last, "failed writes do not consume revisions");
    let listed = store.range("rev/", latest()).await.expect("range");
    assert_eq!(listed.revision, last, "a latest read reports the current revision");
    assert!(store.create("rev/c", b("1")).await.expect("create") > last);
}

/// Many tasks increment one counter with read-modify-write retry loops: no update is lost.
pub async fn update_race<S: Store>(store: Arc<S>) {
    const TASKS: usize = 16;
    const INCREMENTS: usize = 25;
    let key = "race/counter";
    store.create(key, b("0")).await.expect("create counter");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            let mut conflicts = 0usize;
            let mut kv = store.get(key).await.expect("get").expect("counter");
            while revisions.len() < INCREMENTS {
                let n: usize = std::str::from_utf8(&kv.value).expect("utf-8").parse().expect("number");
                match store.update(key, b(&(n + 1).to_string()), kv.mod_revision).await {
                    Ok(revision) => {
                        revisions.push(revision);
                        kv = store.get(key).await.expect("get").expect("counter");
                    }
                    Err(Error::Conflict { current: Some(now), .. }) => {
                        conflicts += 1;
                        kv = *now;
                    }
                    Err(e) => panic!("update: {e}"),
                }
            }
            (revisions, conflicts)
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        let (revisions, _conflicts) = task.await.expect("task");
        assert_strictly_increasing(revisions.iter().copied(), "one task's updates");
        for revision in revisions {
            assert!(all.insert(revision), "revision {revision} returned twice");
        }
    }
    let kv = store.get(key).await.expect("get").expect("counter");
    assert_eq!(kv.value, b(&(TASKS * INCREMENTS).to_string()), "lost updates");
    assert_eq!(Some(&kv.mod_revision), all.iter().max(), "the last update is the stored one");
}

/// Many tasks create the same key at once: exactly one wins.
pub async fn create_race<S: Store>(store: Arc<S>) {
    for round in 0..4 {
        let key = format!("race/create/{round}");
        let mut tasks = Vec::new();
        for task in 0..32 {
            let store = Arc::clone(&store);
            let key = key.clone();
            tasks.push(tokio::spawn(async move { (task, store.create(&key, b(&task.to_string())).await) }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                (task, Ok(revision)) => winners.push((task, revision)),
                (_, Err(Error::AlreadyExists(k))) => assert_eq!(k, key),
                (_, Err(e)) => panic!("create: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
        let (task, revision) = winners[0];
        let kv = store.get(&key).await.expect("get").expect("created");
        assert_eq!((kv.value, kv.mod_revision), (b(&task.to_string()), revision));
    }
}

fn keys(result: &RangeResult) -> Vec<&str> {
    result.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// Range reads at the latest revision: prefix matching, order, deletes, paging.
pub async fn range_latest<S: Store>(store: Arc<S>) {
    for key in ["rl/a/2", "rl/a/1", "rl/a/é", "rl/a/z", "rl/a/3", "rl/ab", "rl/a", "rl/b/1"] {
        store.create(key, b(key)).await.expect("create");
    }
    store.delete("rl/a/3", None).await.expect("delete");
    let kv = store.get("rl/a/1").await.expect("get").expect("rl/a/1");
    store.update("rl/a/1", b("updated"), kv.mod_revision).await.expect("update");
    let now = current(&*store).await;

    let all = store.range("rl/a/", latest()).await.expect("range");
    // Byte order: "z" (0x7A) sorts before "é" (0xC3 0xA9).
    assert_eq!(keys(&all), ["rl/a/1", "rl/a/2", "rl/a/z", "rl/a/é"]);
    assert_eq!((all.revision, all.more), (now, false));
    assert_eq!(all.kvs[0].value, b("updated"));
    assert_eq!(all.kvs[0], store.get("rl/a/1").await.expect("get").expect("rl/a/1"));
    assert_eq!(store.range("rl/a/", at(now)).await.expect("range at current"), all);
    assert_eq!(keys(&store.range("rl/", latest()).await.expect("range")).len(), 7);
    assert!(store.range("rl/none/", latest()).await.expect("range").kvs.is_empty());

    // Paging.
    let page = |limit, start_after: Option<&str>| RangeOptions {
        limit,
        start_after: start_after.map(str::to_owned),
        ..RangeOptions::default()
    };
    let first = store.range("rl/a/", page(2, None)).await.expect("page 1");
    assert_eq!((keys(&first), first.more), (vec!["rl/a/1", "rl/a/2"], true));
    let second = store.range("rl/a/", page(2, Some("rl/a/2"))).await.expect("page 2");
    assert_eq!((keys(&second), second.more), (vec!["rl/a/z", "rl/a/é"], false));
    let exact = store.range("rl/a/", page(4, None)).await.expect("exact limit");
    assert_eq!((exact.kvs.len(), exact.more), (4, false), "a limit equal to the count is not cut short");
    let between = store.range("rl/a/", page(0, Some("rl/a/11"))).await.expect("start between keys");
    assert_eq!(keys(&between), ["rl/a/2", "rl/a/z", "rl/a/é"]);
    let before = store.range("rl/a/", page(1, Some("rl/"))).await.expect("start before prefix");
    assert_eq!((keys(&before), before.more), (vec!["rl/a/1"], true));
    let beyond = store.range("rl/a/", page(0, Some("rl/b"))).await.expect("start beyond prefix");
    assert!(beyond.kvs.is_empty() && !beyond.more);
}

/// Range reads at older revisions see each key's newest value at or below the revision.
pub async fn range_history<S: Store>(store: Arc<S>) {
    let mut rec = Recorder::new(Arc::clone(&store));
    let mut snapshots: Vec<(Revision, BTreeMap<String, KeyValue>)> = Vec::new();
    let ops: &[(&str, &str)] = &[
        ("create", "rh/a"),
        ("create", "rh/b"),
        ("update", "rh/a"),
        ("create", "rh/c"),
        ("delete", "rh/b"),
        ("update", "rh/c"),
        ("create", "rh/b"),
        ("delete", "rh/a"),
        ("update", "rh/b"),
    ];
    for (i, (op, key)) in ops.iter().enumerate() {
        let value = format!("v{i}");
        let revision = match *op {
            "create" => rec.create(key, &value).await,
            "update" => rec.update(key, &value).await,
            _ => rec.delete(key).await,
        };
        // Unrelated writes between the interesting ones must not disturb reads.
        store.create(&format!("rh-other/{i}"), b("x")).await.expect("create other");
        snapshots.push((revision, rec.live.clone()));
    }
    for (revision, want) in &snapshots {
        let got = store.range("rh/", at(*revision)).await.expect("range at revision");
        assert_eq!(got.revision, *revision);
        assert_eq!(got.kvs, want.values().cloned().collect::<Vec<_>>(), "range at {revision}");
        // One revision later (an unrelated write) the state is the same.
        let got = store.range("rh/", at(revision + 1)).await.expect("range at revision");
        assert_eq!(got.kvs, want.values().cloned().collect::<Vec<_>>(), "range at {}", revision + 1);
        // Paging at an old revision.
        let mut paged = Vec::new();
        let mut start_after = None;
        loop {
            let opts = RangeOptions { revision: *revision, limit: 1, start_after };
            let page = store.range("rh/", opts).await.expect("page at revision");
            assert_eq!(page.revision, *revision);
            paged.extend(page.kvs.iter().cloned());
            if !page.more {
                break;
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
        assert_eq!(paged, want.values().cloned().collect::<Vec<_>>(), "paged range at {revision}");
    }
    let now = current(&*store).await;
    match store.range("rh/", at(now + 1000)).await {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (now + 1000, now));
        }
        other => panic!("range at a future revision: {other:?}"),
    }
}

/// Several watchers see every change under their prefix, in order, while many tasks write.
pub async fn watch_concurrent_writers<S: Store>(store: Arc<S>) {
    const WRITERS: usize = 8;
    let start = current(&*store).await;
    let mut full = Vec::new();
    for _ in 0..3 {
        full.push(store.watch("wc/", start).await.expect("watch"));
    }
    let mut narrow = store.watch("wc/3/", start).await.expect("watch narrow");

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(store);
            rec.churn(&format!("wc/{writer}/"), 12).await;
            rec.events
        }));
    }
    // Keys outside the prefix, including ones that share its first bytes.
    let noise = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut rec = Recorder::new(store);
            rec.churn("wcx/", 10).await;
            rec.create("wc", "no slash").await;
            rec.churn("w/", 5).await;
        })
    };
    let mut expected = Vec::new();
    for task in tasks {
        expected.extend(task.await.expect("writer"));
    }
    noise.await.expect("noise writer");
    let expected = sorted_by_revision(expected);
    assert_strictly_increasing(expected.iter().map(Event::revision), "write revisions");
    assert!(expected[0].revision() > start);

    for (i, stream) in full.iter_mut().enumerate() {
        expect_events(stream, &expected, &format!("watcher {i}")).await;
    }
    let narrow_expected: Vec<Event> = expected.iter().filter(|e| e.kv.key.starts_with("wc/3/")).cloned().collect();
    expect_events(&mut narrow, &narrow_expected, "narrow watcher").await;
    let mut all: Vec<&mut WatchStream> = full.iter_mut().collect();
    all.push(&mut narrow);
    expect_marker_next(&*store, &mut all, "wc/3/marker").await;
}

/// A watch from an old revision replays history, then continues with live changes, with no gap
/// or duplicate at the switch, even while writes race with the watch's start.
pub async fn watch_replay_then_live<S: Store>(store: Arc<S>) {
    let mut history = Recorder::new(Arc::clone(&store));
    history.churn("wr/old/", 10).await;
    let first = history.events[0].revision();
    let after = history.events[9].revision();

    // Writers racing with the watches' start.
    let racing = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut rec = Recorder::new(store);
            rec.churn("wr/live/", 15).await;
            rec.events
        })
    };
    let mut from_after = store.watch("wr/", after).await.expect("watch from after");
    let mut from_start = store.watch("wr/", first - 1).await.expect("watch from start");
    let mut only_live = store.watch("wr/live/", after).await.expect("watch live prefix");
    let live = racing.await.expect("racing writer");

    let mut all = history.events.clone();
    all.extend(live.iter().cloned());
    let all = sorted_by_revision(all);
    let since: Vec<Event> = all.iter().filter(|e| e.revision() > after).cloned().collect();
    expect_events(&mut from_after, &since, "watch from a middle revision").await;
    expect_events(&mut from_start, &all, "watch from the first revision").await;
    expect_events(&mut only_live, &live, "watch of the live prefix").await;
    expect_marker_next(&*store, &mut [&mut from_after, &mut from_start], "wr/marker1").await;

    // A watch from the current revision sees only what comes next; one from a future
    // revision skips everything up to and including it.
    let now = current(&*store).await;
    let mut from_now = store.watch("wr/", now).await.expect("watch from now");
    let mut from_future = store.watch("wr/", now + 1).await.expect("watch from the future");
    expect_marker_next(&*store, &mut [&mut from_now], "wr/marker2").await;
    expect_marker_next(&*store, &mut [&mut from_now, &mut from_future], "wr/marker3").await;
}

/// A watcher that does not read while `writes` changes commit still gets every one of them, in
/// order, afterwards.
pub async fn watch_slow_watcher<S: Store>(store: Arc<S>, writes: usize) {
    let start = current(&*store).await;
    let mut stream = store.watch("slow/", start).await.expect("watch");
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(store);
            for i in 0..writes.div_ceil(8) {
                let key = format!("slow/{writer}/{i}");
                if i % 4 == 3 {
                    let victim = format!("slow/{writer}/{}", i - 1);
                    rec.delete(&victim).await;
                } else {
                    rec.create(&key, "x").await;
                }
                if i % 16 == 0 {
                    rec.create(&format!("other/{writer}/{i}"), "x").await;
                }
            }
            rec.events
        }));
    }
    let mut expected = Vec::new();
    for task in tasks {
        expected.extend(task.await.expect("writer"));
    }
    let expected: Vec<Event> =
        sorted_by_revision(expected).into_iter().filter(|e| e.kv.key.starts_with("slow/")).collect();
    expect_events(&mut stream, &expected, "slow watcher").await;
    expect_marker_next(&*store, &mut [&mut stream], "slow/marker").await;
}

/// Compaction: old reads and watches fail, current data and recent history stay.
pub async fn compaction<S: Store>(store: Arc<S>) {
    let mut rec = Recorder::new(Arc::clone(&store));
    rec.create("cmp/a", "a1").await;
    rec.update("cmp/a", "a2").await;
    let before_b = rec.create("cmp/b", "b1").await;
    rec.delete("cmp/b").await;
    let c = rec.create("cmp/c", "c1").await;
    rec.update("cmp/a", "a3").await;
    rec.create("cmp/d", "d1").await;
    rec.delete("cmp/d").await;
    let at_c = store.range("cmp/", at(c)).await.expect("range before compaction");
    let latest_before = store.range("cmp/", latest()).await.expect("range before compaction");
    assert_eq!(store.compacted_revision().await.expect("compacted_revision"), 0);

    store.compact(c).await.expect("compact");
    assert_eq!(store.compacted_revision().await.expect("compacted_revision"), c);

    for old in [before_b, c - 1] {
        match store.range("cmp/", at(old)).await {
            Err(Error::Compacted { requested, compacted }) => assert_eq!((requested, compacted), (old, c)),
            other => panic!("range at compacted revision {old}: {other:?}"),
        }
    }
    assert_eq!(store.range("cmp/", at(c)).await.expect("range at compaction revision"), at_c);
    assert_eq!(keys(&at_c), ["cmp/a", "cmp/c"], "the key deleted before compaction stays deleted");
    assert_eq!(store.range("cmp/", latest()).await.expect("latest range"), latest_before);
    assert_eq!(store.get("cmp/a").await.expect("get").map(|kv| kv.value), Some(b("a3")));

    // Watches: from before the compaction revision fail, from just below it replay everything
    // since, with `prev` of updates intact.
    match store.watch("cmp/", c - 2).await {
        Err(Error::Compacted { compacted, .. }) => assert_eq!(compacted, c),
        Err(e) => panic!("watch from before compaction: {e}"),
        Ok(_) => panic!("watch from before compaction succeeded"),
    }
    let mut stream = store.watch("cmp/", c - 1).await.expect("watch from compaction revision");
    let since: Vec<Event> = rec.events.iter().filter(|e| e.revision() >= c).cloned().collect();
    // Whether a tombstone exactly at the compaction revision survives is backend-specific
    // (etcd drops it); this history has none there.
    assert_eq!(since[0].kind, EventType::Put);
    expect_events(&mut stream, &since, "watch from the compaction revision").await;

    // Compacting again at or below the compaction revision, or in the future, fails.
    for again in [c, c - 1] {
        assert!(
            matches!(store.compact(again).await, Err(Error::Compacted { .. })),
            "compact({again}) after compact({c})"
        );
    }
    let now = current(&*store).await;
    assert!(matches!(store.compact(now + 1).await, Err(Error::FutureRevision { .. })));

    // Compacting up to the current revision keeps every live key's latest value.
    store.compact(now).await.expect("compact to current");
    assert_eq!(store.range("cmp/", latest()).await.expect("latest range"), latest_before);
    assert_eq!(store.range("cmp/", at(now)).await.expect("range at current"), latest_before);
    let r = rec.update("cmp/c", "c2").await;
    assert!(r > now, "revisions continue after compaction");
    let update = rec.events.last().cloned().expect("update event");
    expect_events(&mut stream, &[update], "watch after compacting to current").await;
    expect_marker_next(&*store, &mut [&mut stream], "cmp/marker").await;
}

/// A watcher that lags while history it has not read is compacted either still gets every
/// event or ends with [`Error::Compacted`] — never a silent gap.
pub async fn compaction_of_slow_watcher<S: Store>(store: Arc<S>) {
    let start = current(&*store).await;
    let mut stream = store.watch("cs/", start).await.expect("watch");
    let mut rec = Recorder::new(Arc::clone(&store));
    rec.churn("cs/", 200).await;
    store.compact(current(&*store).await).await.expect("compact");
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(event))) => {
                assert_eq!(event, rec.events[delivered], "event {delivered}");
                delivered += 1;
                if delivered == rec.events.len() {
                    break;
                }
            }
            Ok(Some(Err(Error::Compacted { .. }))) => {
                let end = tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await;
                assert!(matches!(end, Ok(None)), "the stream ends after its error");
                return;
            }
            Ok(Some(Err(e))) => panic!("watch failed with {e}, not Compacted"),
            Ok(None) => panic!("watch ended without an error after {delivered} events"),
            Err(_) => panic!("watch stalled after {delivered} events"),
        }
    }
    expect_marker_next(&*store, &mut [&mut stream], "cs/marker").await;
}

/// A restart keeps data, history, the current and the compaction revision; revisions go on
/// upward.
pub async fn reopen<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let mut rec = Recorder::new(Arc::clone(&store));
    rec.churn("ro/", 20).await;
    let compact_at = rec.events[rec.events.len() / 2].revision();
    store.compact(compact_at).await.expect("compact");
    rec.churn("ro/late/", 5).await;
    // End on a delete, so the newest revision belongs to a tombstone.
    rec.create("ro/last", "x").await;
    rec.delete("ro/last").await;
    let before = current(&*store).await;
    let listing = store.range("ro/", latest()).await.expect("range");
    let at_compaction = store.range("ro/", at(compact_at)).await.expect("range at compaction");
    drop(rec);

    let store = harness.reopen(store).await;
    assert_eq!(current(&*store).await, before, "current revision survives a restart");
    assert_eq!(store.compacted_revision().await.expect("compacted_revision"), compact_at);
    assert_eq!(store.range("ro/", latest()).await.expect("range"), listing);
    assert_eq!(store.range("ro/", at(compact_at)).await.expect("range"), at_compaction);
    assert!(matches!(store.range("ro/", at(compact_at - 1)).await, Err(Error::Compacted { .. })));

    // History after the compaction revision is still there for watches.
    let mut stream = store.watch("ro/late/", compact_at).await.expect("watch after restart");
    let first = next_event(&mut stream).await;
    assert_eq!((first.kind, first.kv.key.as_str()), (EventType::Put, "ro/late/0000"));

    let next = store.create("ro/after-restart", b("x")).await.expect("create after restart");
    assert!(next > before, "revision {next} after restart must exceed {before}");
}

/// A small deterministic pseudo-random generator (64-bit LCG), so the model check needs no
/// dependency and a failing seed reproduces.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // The high bits of an LCG are the random ones.
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Random creates, updates, deletes (with stale preconditions among them) and compactions on
/// a few keys, checked against a model: after each compaction and at the end, a range read at
/// every readable revision and a watch from the compaction revision agree with the model.
pub async fn model_check<S: Store>(store: Arc<S>, seed: u64) {
    const KEYS: usize = 6;
    let prefix = "model/";
    let mut rng = Lcg(seed);
    let mut rec = Recorder::new(Arc::clone(&store));
    // The model's state after each revision it produced.
    let mut states: Vec<(Revision, BTreeMap<String, KeyValue>)> = Vec::new();
    let mut compacted = 0;
    for step in 0..300 {
        let key = format!("{prefix}{}", rng.below(KEYS));
        let value = format!("s{step}");
        let exists = rec.live.contains_key(&key);
        let revision = match rng.below(10) {
            0 if exists => {
                // A stale precondition fails and changes nothing.
                let stale = rec.live[&key].mod_revision - 1;
                assert!(matches!(store.update(&key, b(&value), stale).await, Err(Error::Conflict { .. })));
                None
            }
            0..=3 if exists => Some(rec.delete(&key).await),
            _ if exists => Some(rec.update(&key, &value).await),
            _ => Some(rec.create(&key, &value).await),
        };
        if let Some(revision) = revision {
            states.push((revision, rec.live.clone()));
        }
        // Now and then compact at a recent put (a tombstone exactly at the compaction revision
        // is backend-specific, see `compaction`).
        if step % 60 == 59 {
            let candidates: Vec<Revision> = rec
                .events
                .iter()
                .rev()
                .take(20)
                .filter(|e| e.kind == EventType::Put && e.revision() > compacted)
                .map(Event::revision)
                .collect();
            if let Some(&target) = candidates.get(rng.below(candidates.len().max(1))) {
                store.compact(target).await.expect("compact");
                compacted = target;
                check_model(&*store, prefix, &states, &rec.events, compacted).await;
            }
        }
    }
    check_model(&*store, prefix, &states, &rec.events, compacted).await;
}

async fn check_model<S: Store>(
    store: &S,
    prefix: &str,
    states: &[(Revision, BTreeMap<String, KeyValue>)],
    events: &[Event],
    compacted: Revision,
) {
    let now = current(store).await;
    for (i, (revision, state)) in states.iter().enumerate() {
        // The state holds from its revision until the next one.
        let until = states.get(i + 1).map_or(now, |(next, _)| next - 1);
        for read_at in [*revision, until] {
            let result = store.range(prefix, at(read_at)).await;
            if read_at < compacted {
                assert!(
                    matches!(result, Err(Error::Compacted { .. })),
                    "read at {read_at} below compaction {compacted}: {result:?}"
                );
            } else {
                let result = result.expect("range at a readable revision");
                let want: Vec<KeyValue> = state.values().cloned().collect();
                assert_eq!(result.kvs, want, "range at {read_at} (compacted {compacted})");
            }
        }
    }
    if compacted > 0 {
        let mut stream = store.watch(prefix, compacted - 1).await.expect("watch from compaction");
        let since: Vec<Event> = events.iter().filter(|e| e.revision() >= compacted).cloned().collect();
        expect_events(&mut stream, &since, "watch from the compaction revision").await;
    }
}
