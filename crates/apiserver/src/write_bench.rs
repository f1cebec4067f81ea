//! The cost of one pod's writes through the whole request pipeline, in process over the
//! in-memory store, on one thread (so time is CPU time, the watch cache's included): what a
//! simulated-node scheduling run spends per pod in the API server, without SQLite.
//! Ignored; run it with
//! `cargo test --release -p skiff-apiserver --lib write_path_cost -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::json;

use crate::auth::UserInfo;
use crate::client::InProcessUser;
use crate::{ApiServer, Authenticator, Config, MastersAuthorizer};

async fn call(server: &Arc<ApiServer>, method: Method, path: &str, ct: &str, body: String) -> u16 {
    let mut req =
        Request::builder().method(method).uri(path).header("content-type", ct).body(Body::from(body)).expect("request");
    req.extensions_mut().insert(InProcessUser(UserInfo::new("admin", &["system:masters"])));
    let resp = server.handle(req).await;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

#[test]
#[ignore]
fn write_path_cost() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = ApiServer::start(
            Config::default(),
            Arc::new(skiff_store::MemoryStore::new()),
            Authenticator::new(),
            Box::new(MastersAuthorizer),
            shutdown.clone(),
        )
        .await
        .expect("server");
        let n = 4000;
        let mut spent = [Duration::ZERO; 4];
        for i in 0..n {
            let name = format!("p-{i}");
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "ports": [{"containerPort": 80}],
                    "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}, "limits": {"cpu": "100m", "memory": "500Mi"}}}]}});
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": "default"},
                "target": {"kind": "Node", "name": "sim-1"}});
            let status = json!({"status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.2", "podIPs": [{"ip": "10.1.0.2"}],
                "startTime": "2026-11-27T12:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-27T12:00:00Z"},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-27T12:00:00Z"},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-27T12:00:00Z"}],
                "containerStatuses": [{"name": "pause", "ready": true, "restartCount": 0, "image": "registry.k8s.io/pause:3.10",
                    "imageID": "", "started": true, "state": {"running": {"startedAt": "2026-11-27T12:00:00Z"}}}]}});
            let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": format!("{name}.{i:x}"), "namespace": "default"},
                "eventTime": "2026-11-27T12:00:00.000000Z", "reportingController": "default-scheduler",
                "reportingInstance": "default-scheduler", "action": "Binding", "reason": "Scheduled", "type": "Normal",
                "note": format!("Successfully assigned default/{name} to sim-1"),
                "regarding": {"kind": "Pod", "namespace": "default", "name": name, "apiVersion": "v1", "uid": "x"}});
            let steps = [
                (Method::POST, "/api/v1/namespaces/default/pods".to_string(), "application/json", pod.to_string(), 201),
                (Method::POST, format!("/api/v1/namespaces/default/pods/{name}/binding"), "application/json", binding.to_string(), 201),
                (Method::PATCH, format!("/api/v1/namespaces/default/pods/{name}/status"), "application/strategic-merge-patch+json", status.to_string(), 200),
                (Method::POST, "/apis/events.k8s.io/v1/namespaces/default/events".to_string(), "application/json", event.to_string(), 201),
            ];
            for (k, (method, path, ct, body, want)) in steps.into_iter().enumerate() {
                let t = std::time::Instant::now();
                let got = call(&server, method, &path, ct, body).await;
                spent[k] += t.elapsed();
                assert_eq!(got, want, "step {k} of pod {i}");
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "µs per pod: create {:.0}, binding {:.0}, status patch {:.0}, event {:.0}; total {:.0}",
            us(spent[0]),
            us(spent[1]),
            us(spent[2]),
            us(spent[3]),
            us(spent.iter().sum())
        );
        shutdown.cancel();
    });
}
