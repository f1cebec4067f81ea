//! The event recorder of every skiff component (scheduler, controllers, kubelets): records
//! events and folds repeats into a series, as upstream's event broadcaster
//! (`k8s.io/client-go/tools/events`) does.
//!
//! It writes them as core/v1 Events, the version they are stored in, carrying what the
//! `events.k8s.io/v1` view shows (`eventTime`, `series`, `action`, `reportingComponent`,
//! `reportingInstance`, `related`) and what the core view's readers sort and print by
//! (`firstTimestamp`, `lastTimestamp`, `count`), exactly as the API server's conversion of an
//! `events.k8s.io/v1` write would store it. Writing the storage version spares the server a
//! conversion of every event on the way in and of its answer on the way out: one `Scheduled`
//! event per pod bound, on a busy scheduler.
//!
//! Why not kube-rs's `Recorder`: it prunes its cache of recent events on every publish, a scan
//! over every event of the last six minutes (tens of thousands on a busy scheduler), and it
//! keeps each whole Event in that cache. This one keeps only what a series needs (the event's
//! name, count and last time) and prunes on a timer, as upstream's `finishSeries` does.
//!
//! Semantics, as upstream:
//! - events are the same when their type, action, reason, reporting controller and instance,
//!   `regarding` and `related` objects are (the note is not part of the key);
//! - the first is created; a repeat within [`SERIES_TTL`] patches the first's `series` (count
//!   and last observed time); a repeat after that, or one whose event is gone, starts anew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Event as K8sEvent, EventSeries, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
pub use kube::runtime::events::{Event, EventType, Reporter};

/// How long a series stays open after its last event (upstream's `finishTime`).
pub const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// How often the cache is swept of finished series. Entries older than [`SERIES_TTL`] are also
/// ignored when met, so the sweep only bounds memory.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// What identifies "the same event" (upstream's `eventKey`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    warning: bool,
    action: String,
    reason: String,
    regarding: RefKey,
    related: Option<RefKey>,
}

/// The identifying fields of an object reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RefKey {
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    field_path: Option<String>,
}

impl From<&ObjectReference> for RefKey {
    fn from(r: &ObjectReference) -> Self {
        RefKey {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            field_path: r.field_path.clone(),
        }
    }
}

/// What a series needs of an event already written.
#[derive(Clone, Debug)]
struct Seen {
    namespace: String,
    name: String,
    /// Occurrences so far (1 before any series).
    count: i32,
    last: Timestamp,
}

#[derive(Default)]
struct Cache {
    seen: HashMap<Key, Seen>,
    swept: Option<Timestamp>,
}

impl Cache {
    /// Drops finished series, at most once per [`SWEEP_EVERY`].
    fn sweep(&mut self, now: Timestamp) {
        if self.swept.is_some_and(|t| t + SWEEP_EVERY > now) {
            return;
        }
        self.swept = Some(now);
        self.seen.retain(|_, s| s.last + SERIES_TTL > now);
    }
}

/// Records events as one reporter. Cheap to clone: clones share the series cache.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    cache: Arc<Mutex<Cache>>,
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Recorder {
        Recorder { client, reporter, cache: Arc::default() }
    }

    /// Records `ev` about `regarding`: a new Event, or the next of a series. Cluster-scoped
    /// objects' events go to the `default` namespace, as upstream's.
    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        self.publish_at(ev, regarding, Timestamp::now()).await
    }

    async fn publish_at(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> Result<(), kube::Error> {
        let key = Key {
            warning: ev.type_ == EventType::Warning,
            action: ev.action.clone(),
            reason: ev.reason.clone(),
            regarding: regarding.into(),
            related: ev.secondary.as_ref().map(RefKey::from),
        };
        let previous = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.sweep(now);
            cache.seen.get(&key).filter(|s| s.last + SERIES_TTL > now).cloned()
        };
        let seen = match previous {
            Some(seen) => match self.next_in_series(&seen, now).await {
                Ok(()) => Seen { count: seen.count + 1, last: now, ..seen },
                // The first event is gone (deleted, or expired by its TTL): start again.
                Err(kube::Error::Api(e)) if e.code == 404 => self.create(ev, regarding, now).await?,
                Err(e) => return Err(e),
            },
            None => self.create(ev, regarding, now).await?,
        };
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).seen.insert(key, seen);
        Ok(())
    }

    async fn create(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> Result<Seen, kube::Error> {
        let namespace = regarding.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let base = regarding.name.as_deref().unwrap_or(&self.reporter.controller);
        let event = K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            first_timestamp: Some(seconds(now)),
            last_timestamp: Some(seconds(now)),
            count: Some(1),
            involved_object: regarding.clone(),
            related: ev.secondary.clone(),
            message: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace.clone()),
                // Upstream's name: the object's name and the time in hexadecimal nanoseconds.
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_component: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter.instance.clone().unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(if ev.type_ == EventType::Warning { "Warning" } else { "Normal" }.into()),
            ..K8sEvent::default()
        };
        // The answer is not decoded: the name is ours (no generateName), and a whole Event
        // decoded per event recorded was a visible share of a busy scheduler's work. Errors
        // still come back as `kube::Error::Api`.
        let body = serde_json::to_vec(&event).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(<K8sEvent as kube::Resource>::url_path(&(), Some(&namespace)))
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await?;
        let name = event.metadata.name.unwrap_or_default();
        Ok(Seen { namespace, name, count: 1, last: now })
    }

    /// Patches the series of the event `seen` wrote: only `series` changes, as upstream's
    /// patch does, and the core view's `count` and `lastTimestamp` that follow it.
    async fn next_in_series(&self, seen: &Seen, now: Timestamp) -> Result<(), kube::Error> {
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &seen.namespace);
        let count = seen.count + 1;
        let patch = serde_json::json!({
            "series": EventSeries { count: Some(count), last_observed_time: Some(MicroTime(now)) },
            "count": count,
            "lastTimestamp": seconds(now),
        });
        api.patch(&seen.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// How many events the series cache holds (for tests and memory checks).
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).seen.len()
    }
}

/// `now` at the core type's precision (whole seconds, cut as the API server's conversion cuts
/// `eventTime`).
fn seconds(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

#[cfg(test)]
mod tests;
