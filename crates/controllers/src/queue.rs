//! The work queue every controller drains, shaped like client-go's rate-limited queue: a key
//! is queued at most once, is never handed to two workers at the same time (a key that
//! changes while it is being worked on is queued again when the worker is done), and a failed
//! key is retried after a per-key exponential back-off (5 ms doubling to 1000 s) that resets
//! on success.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);

#[derive(Default)]
struct State<K> {
    queue: VecDeque<K>,
    /// Queued, not yet handed out.
    dirty: HashSet<K>,
    /// Being worked on.
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
}

/// A de-duplicating work queue of keys. Cheap to clone.
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    notify: Arc<Notify>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue { state: self.state.clone(), notify: self.notify.clone() }
    }
}

impl<K: Clone + Eq + std::hash::Hash + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + std::hash::Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Self {
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `key` now (no-op if it is already queued).
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if !s.dirty.insert(key.clone()) {
            return;
        }
        // A key being worked on goes back in line when its worker calls `done`.
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queue `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Queue `key` again after its back-off, which doubles with every failure in a row.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let d = BASE_DELAY.saturating_mul(1u32.checked_shl(*n).unwrap_or(u32::MAX)).min(MAX_DELAY);
            *n = n.saturating_add(1);
            d
        };
        self.add_after(key, delay);
    }

    /// The key succeeded: its back-off starts over.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Failures in a row for `key`.
    pub fn retries(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to work on; waits for one.
    pub async fn next(&self) -> K {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return k;
                }
            }
            notified.await;
        }
    }

    /// The worker is finished with `key`.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_worked_twice_at_once() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        // Changed while being worked on: queued again only after `done`.
        q.add("a");
        assert_eq!(q.next().await, "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_reset() {
        let q = WorkQueue::new();
        for expected in [5u64, 10, 20, 40] {
            let start = tokio::time::Instant::now();
            q.add_rate_limited("k");
            let k = q.next().await;
            q.done(&k);
            assert_eq!(start.elapsed(), Duration::from_millis(expected));
        }
        assert_eq!(q.retries(&"k"), 4);
        q.forget(&"k");
        let start = tokio::time::Instant::now();
        q.add_rate_limited("k");
        q.next().await;
        assert_eq!(start.elapsed(), Duration::from_millis(5));
    }
}
