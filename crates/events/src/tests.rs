//! The recorder against a fake API at the HTTP seam: which requests it makes, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::{Value, json};

use super::{Event, EventType, Recorder, Reporter, SERIES_TTL};

#[derive(Default)]
struct Fake {
    /// Status codes to answer with, in order; 2xx answers echo the body back.
    answers: Mutex<VecDeque<u16>>,
    /// `METHOD path [content-type]` and the body of every request.
    log: Mutex<Vec<(String, Value)>>,
}

fn recorder(answers: &[u16]) -> (Recorder, Arc<Fake>) {
    let fake = Arc::new(Fake { answers: Mutex::new(answers.iter().copied().collect()), ..Fake::default() });
    let f = fake.clone();
    let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let f = f.clone();
        async move {
            let ct = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let line = format!("{} {} {ct}", req.method(), req.uri().path());
            let body =
                http_body_util::BodyExt::collect(req.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            f.log.lock().expect("log").push((line, body.clone()));
            let code = f.answers.lock().expect("answers").pop_front().unwrap_or(599);
            let reply = if code < 300 {
                let mut echo = body;
                echo["apiVersion"] = json!("v1");
                echo["kind"] = json!("Event");
                if echo["metadata"]["name"].is_null() {
                    echo["metadata"]["name"] = json!("patched");
                }
                echo
            } else {
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "no", "reason": "NotFound", "code": code})
            };
            let body = kube::client::Body::from(serde_json::to_vec(&reply).unwrap_or_default());
            let resp = http::Response::builder().status(code).header("content-type", "application/json").body(body);
            Ok::<_, std::convert::Infallible>(resp.expect("response"))
        }
    });
    let rec = Recorder::new(
        kube::Client::new(svc, "default"),
        Reporter { controller: "default-scheduler".into(), instance: None },
    );
    (rec, fake)
}

fn pod(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some("ns".into()),
        name: Some(name.into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

fn event(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Scheduling".into(),
        secondary: None,
    }
}

fn t0() -> Timestamp {
    "2026-11-27T12:00:00Z".parse().expect("time")
}

fn lines(fake: &Fake) -> Vec<String> {
    fake.log.lock().expect("log").iter().map(|(l, _)| l.clone()).collect()
}

fn body(fake: &Fake, i: usize) -> Value {
    fake.log.lock().expect("log")[i].1.clone()
}

const POST: &str = "POST /api/v1/namespaces/ns/events application/json";

fn patch(name: &str) -> String {
    format!("PATCH /api/v1/namespaces/ns/events/{name} application/merge-patch+json")
}

#[tokio::test]
async fn repeats_become_a_series_on_the_first_event() {
    let (rec, fake) = recorder(&[201, 200, 200]);
    let ev = event("FailedScheduling", "0/3 nodes are available");
    rec.publish_at(&ev, &pod("p"), t0()).await.expect("create");
    let created = body(&fake, 0);
    assert_eq!(created["reason"], "FailedScheduling");
    assert_eq!(created["type"], "Warning");
    assert_eq!(created["action"], "Scheduling");
    assert_eq!(created["message"], "0/3 nodes are available");
    assert_eq!(created["reportingComponent"], "default-scheduler");
    assert_eq!(created["reportingInstance"], "default-scheduler");
    assert_eq!(created["involvedObject"]["name"], "p");
    assert!(created["series"].is_null(), "{created}");
    // What the API server's conversion of an events.k8s.io/v1 write stores.
    assert_eq!(created["eventTime"], "2026-11-27T12:00:00.000000Z");
    assert_eq!(created["firstTimestamp"], "2026-11-27T12:00:00Z");
    assert_eq!(created["lastTimestamp"], "2026-11-27T12:00:00Z");
    assert_eq!(created["count"], 1);
    let name = created["metadata"]["name"].as_str().expect("a name").to_string();
    assert!(name.starts_with("p."), "{name}");

    // The note is not part of what makes events the same, as upstream.
    // Cut to whole seconds, not rounded, in the core view's fields.
    let later = t0() + SignedDuration::from_millis(10_700);
    rec.publish_at(&event("FailedScheduling", "0/3 nodes: other"), &pod("p"), later).await.expect("patch");
    rec.publish_at(&ev, &pod("p"), later + SignedDuration::from_secs(1)).await.expect("patch");
    assert_eq!(lines(&fake), [POST.to_string(), patch(&name), patch(&name)]);
    assert_eq!(
        body(&fake, 1),
        json!({
            "series": {"count": 2, "lastObservedTime": "2026-11-27T12:00:10.700000Z"},
            "count": 2,
            "lastTimestamp": "2026-11-27T12:00:10Z",
        })
    );
    assert_eq!(body(&fake, 2)["series"]["count"], 3);
    assert_eq!(rec.cached(), 1);
}

#[tokio::test]
async fn different_events_and_objects_are_separate() {
    let (rec, fake) = recorder(&[201, 201, 201, 201]);
    rec.publish_at(&event("FailedScheduling", "x"), &pod("a"), t0()).await.expect("a");
    rec.publish_at(&event("Scheduled", "x"), &pod("a"), t0()).await.expect("other reason");
    rec.publish_at(&event("FailedScheduling", "x"), &pod("b"), t0()).await.expect("other pod");
    let mut normal = event("FailedScheduling", "x");
    normal.type_ = EventType::Normal;
    rec.publish_at(&normal, &pod("a"), t0()).await.expect("other type");
    assert_eq!(lines(&fake), vec![POST.to_string(); 4]);
    assert_eq!(rec.cached(), 4);
}

#[tokio::test]
async fn cluster_scoped_objects_report_in_default() {
    let (rec, fake) = recorder(&[201]);
    let node = ObjectReference { kind: Some("Node".into()), name: Some("n1".into()), ..ObjectReference::default() };
    rec.publish_at(&event("NodeNotReady", "x"), &node, t0()).await.expect("create");
    assert_eq!(lines(&fake), ["POST /api/v1/namespaces/default/events application/json"]);
}

#[tokio::test]
async fn a_series_after_its_ttl_or_without_its_event_starts_again() {
    let (rec, fake) = recorder(&[201, 201, 404, 201, 200]);
    let ev = event("FailedScheduling", "x");
    rec.publish_at(&ev, &pod("p"), t0()).await.expect("first");
    // Past the TTL: a new event, not a patch.
    let late = t0() + SERIES_TTL + SignedDuration::from_secs(1);
    rec.publish_at(&ev, &pod("p"), late).await.expect("after the TTL");
    let second = body(&fake, 1)["metadata"]["name"].as_str().expect("name").to_string();
    // The event was deleted meanwhile: the patch's 404 starts a new one.
    rec.publish_at(&ev, &pod("p"), late + SignedDuration::from_secs(1)).await.expect("after a 404");
    let third = body(&fake, 3)["metadata"]["name"].as_str().expect("name").to_string();
    rec.publish_at(&ev, &pod("p"), late + SignedDuration::from_secs(2)).await.expect("series of the new one");
    assert_eq!(lines(&fake), [POST.to_string(), POST.to_string(), patch(&second), POST.to_string(), patch(&third)]);
    assert_eq!(body(&fake, 4)["series"]["count"], 2, "the count starts again");
}

#[tokio::test]
async fn a_failed_patch_is_returned_and_retried_with_the_same_count() {
    let (rec, fake) = recorder(&[201, 500, 200]);
    let ev = event("FailedScheduling", "x");
    rec.publish_at(&ev, &pod("p"), t0()).await.expect("first");
    let err = rec.publish_at(&ev, &pod("p"), t0() + SignedDuration::from_secs(1)).await;
    assert!(err.is_err(), "a 500 is an error");
    rec.publish_at(&ev, &pod("p"), t0() + SignedDuration::from_secs(2)).await.expect("retried");
    assert_eq!(body(&fake, 2)["series"]["count"], 2);
}

#[tokio::test]
async fn finished_series_are_swept() {
    let (rec, _fake) = recorder(&[201, 201, 201]);
    rec.publish_at(&event("A", "x"), &pod("a"), t0()).await.expect("a");
    rec.publish_at(&event("B", "x"), &pod("b"), t0() + SignedDuration::from_secs(30)).await.expect("b");
    assert_eq!(rec.cached(), 2);
    // Past the TTL of the first only: the sweep keeps the second.
    rec.publish_at(&event("C", "x"), &pod("c"), t0() + SERIES_TTL + SignedDuration::from_secs(10)).await.expect("c");
    assert_eq!(rec.cached(), 2);
}
