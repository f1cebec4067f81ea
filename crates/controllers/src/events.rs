//! Events the controllers record (`kubectl describe` shows them), through skiff's recorder,
//! which also folds repeats into a series.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use skiff_events::{Event, EventType, Recorder, Reporter};

/// A recorder reporting as one controller (`replicaset-controller`, …).
#[derive(Clone)]
pub(crate) struct Events {
    recorder: Recorder,
}

impl Events {
    pub(crate) fn new(client: kube::Client, controller: &str) -> Events {
        Events { recorder: Recorder::new(client, Reporter { controller: controller.into(), instance: None }) }
    }

    /// Record an event about `object`; failures are logged, never returned (an event is not
    /// worth failing a sync for).
    pub(crate) async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        self.publish_related(object, None, warning, reason, note).await
    }

    /// An event about `object` concerning `related` (a ReplicaSet's pod): events about
    /// different related objects are never folded into one series.
    pub(crate) async fn publish_related<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&ev, &object.object_ref(&())).await {
            tracing::debug!(reason, error = %e, "recording an event failed");
        }
    }
}
