//! Queue ordering, backoff and parking, on tokio's paused clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::time::{Instant, advance};

use super::*;

fn pod(name: &str, priority: i32) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"priority": priority, "containers": [{"name": "c"}]}
        }))
        .unwrap(),
    )
}

fn rejected_by(plugin: &'static str) -> BTreeSet<&'static str> {
    BTreeSet::from([plugin])
}

fn pop_all(q: &mut SchedulingQueue) -> Vec<String> {
    std::iter::from_fn(|| q.pop().map(|p| p.key)).collect()
}

#[tokio::test(start_paused = true)]
async fn active_orders_by_priority_then_age() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("old-low", 0), Instant::now());
    advance(Duration::from_millis(10)).await;
    q.add_or_update(pod("high", 100), Instant::now());
    advance(Duration::from_millis(10)).await;
    q.add_or_update(pod("new-low", 0), Instant::now());
    q.add_or_update(pod("negative", -5), Instant::now());
    // An update keeps the pod's place.
    q.add_or_update(pod("old-low", 0), Instant::now());
    assert!(q.has_active());
    assert_eq!(pop_all(&mut q), vec!["default/high", "default/old-low", "default/new-low", "default/negative"]);
    assert!(!q.has_active());
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_ten_seconds() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("p", 0), Instant::now());
    let mut waits = Vec::new();
    for _ in 0..6 {
        let p = q.pop().expect("pod is active");
        let start = Instant::now();
        // An error (no rejecting plugins) always goes to backoff.
        assert!(q.failed(&p.key, BTreeSet::new(), start).is_some());
        assert_eq!(q.place("default/p"), Some(Place::Backoff));
        assert!(q.pop().is_none(), "backing off");
        let wake = q.next_wakeup().unwrap();
        waits.push((wake - start).as_secs());
        // Just before the expiry it is still backing off.
        advance(wake - start - Duration::from_millis(1)).await;
        q.flush(Instant::now());
        assert!(!q.has_active());
        advance(Duration::from_millis(1)).await;
        q.flush(Instant::now());
        assert!(q.has_active());
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
}

#[tokio::test(start_paused = true)]
async fn unschedulable_pods_wait_for_a_helpful_event() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("cpu", 0), Instant::now());
    q.add_or_update(pod("taint", 0), Instant::now());
    let a = q.pop().unwrap();
    let b = q.pop().unwrap();
    q.failed(&a.key, rejected_by("NodeResourcesFit"), Instant::now());
    q.failed(&b.key, rejected_by("TaintToleration"), Instant::now());
    assert_eq!(q.place("default/cpu"), Some(Place::Unschedulable));
    assert_eq!(q.place("default/taint"), Some(Place::Unschedulable));
    // A deleted pod frees resources but does not remove taints.
    advance(Duration::from_secs(2)).await;
    q.on_cluster_event(ClusterEvent::AssignedPodDelete, Instant::now());
    assert_eq!(q.place("default/cpu"), Some(Place::Active), "backoff (1 s) already expired");
    assert_eq!(q.place("default/taint"), Some(Place::Unschedulable));
    assert_eq!(pop_all(&mut q), vec!["default/cpu"]);
    // A node change may help anyone; within the backoff window the pod goes to backoff.
    q.failed("default/cpu", rejected_by("NodeResourcesFit"), Instant::now());
    q.on_cluster_event(ClusterEvent::NodeChange, Instant::now());
    assert_eq!(q.place("default/cpu"), Some(Place::Backoff));
    assert_eq!(q.place("default/taint"), Some(Place::Active));
}

#[tokio::test(start_paused = true)]
async fn parked_pods_retry_after_five_minutes() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("p", 0), Instant::now());
    let p = q.pop().unwrap();
    q.failed(&p.key, rejected_by("TaintToleration"), Instant::now());
    // A status-only update (our own condition patch) does not retry it.
    let mut updated = (*pod("p", 0)).clone();
    updated.status = Some(Default::default());
    q.add_or_update(Arc::new(updated), Instant::now());
    assert_eq!(q.place("default/p"), Some(Place::Unschedulable));
    assert_eq!(q.next_wakeup().unwrap() - Instant::now(), MAX_UNSCHEDULABLE_DURATION);
    advance(MAX_UNSCHEDULABLE_DURATION - Duration::from_secs(1)).await;
    q.flush(Instant::now());
    assert_eq!(q.place("default/p"), Some(Place::Unschedulable));
    advance(Duration::from_secs(1)).await;
    q.flush(Instant::now());
    assert_eq!(q.place("default/p"), Some(Place::Active));
}

#[tokio::test(start_paused = true)]
async fn spec_update_retries_a_parked_pod() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("p", 0), Instant::now());
    let p = q.pop().unwrap();
    q.failed(&p.key, rejected_by("NodeAffinity"), Instant::now());
    advance(Duration::from_secs(5)).await;
    let mut relabelled = (*pod("p", 0)).clone();
    relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    q.add_or_update(Arc::new(relabelled), Instant::now());
    assert_eq!(q.place("default/p"), Some(Place::Active));
}

#[tokio::test(start_paused = true)]
async fn events_during_a_cycle_send_the_pod_to_backoff() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("p", 0), Instant::now());
    let p = q.pop().unwrap();
    // A node appeared while the pod was being scheduled against the old snapshot.
    q.on_cluster_event(ClusterEvent::NodeChange, Instant::now());
    q.failed(&p.key, rejected_by("NodeResourcesFit"), Instant::now());
    assert_eq!(q.place("default/p"), Some(Place::Backoff));
}

#[tokio::test(start_paused = true)]
async fn deleted_pods_leave_the_queue() {
    let mut q = SchedulingQueue::default();
    q.add_or_update(pod("a", 0), Instant::now());
    q.add_or_update(pod("b", 0), Instant::now());
    q.delete("default/a");
    let b = q.pop().unwrap();
    // Deleted while in flight: the failure report has nothing to requeue.
    q.delete(&b.key);
    assert!(q.failed(&b.key, rejected_by("NodeResourcesFit"), Instant::now()).is_none());
    assert_eq!(q.place("default/b"), None);
    assert!(q.pop().is_none());
    assert_eq!(q.next_wakeup(), None);
    // A successful bind forgets the pod.
    q.add_or_update(pod("c", 0), Instant::now());
    let c = q.pop().unwrap();
    q.done(&c.key);
    assert!(q.failed(&c.key, BTreeSet::new(), Instant::now()).is_none());
}
