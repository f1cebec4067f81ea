//! Component tests: the whole API server pipeline in process (over the in-memory store),
//! driven through its request handler without a socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use skiff_apiserver::Config;
use skiff_apiserver::watch_cache::WatchHistory;
use skiff_testkit::InProcess;

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

async fn create_ns(api: &InProcess, name: &str) {
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn crud_and_metadata() {
    let api = InProcess::start().await;
    create_ns(&api, "demo").await;
    let r = api.request(Method::POST, "/api/v1/namespaces/demo/configmaps", Some(cm("a", json!({"app": "web"})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let rv: i64 = created["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(created["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["metadata"]["namespace"], "demo");

    // Read your writes.
    let got = api.request(Method::GET, "/api/v1/namespaces/demo/configmaps/a", None).await.json();
    assert_eq!(got["metadata"]["uid"], uid.as_str());

    // Duplicate create.
    let r = api.request(Method::POST, "/api/v1/namespaces/demo/configmaps", Some(cm("a", json!({})))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["reason"], "AlreadyExists");
    assert_eq!(r.json()["message"], "configmaps \"a\" already exists");

    // Update with the current resourceVersion, then a stale one → 409.
    let mut upd = got.clone();
    upd["data"]["k"] = json!("v2");
    let r = api.request(Method::PUT, "/api/v1/namespaces/demo/configmaps/a", Some(upd.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rv2: i64 = r.json()["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(rv2 > rv);
    assert_eq!(r.json()["metadata"]["uid"], uid.as_str(), "uid survives an update");
    let r = api.request(Method::PUT, "/api/v1/namespaces/demo/configmaps/a", Some(upd)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // An update that changes nothing does not bump the resourceVersion.
    let cur = api.request(Method::GET, "/api/v1/namespaces/demo/configmaps/a", None).await.json();
    let r = api.request(Method::PUT, "/api/v1/namespaces/demo/configmaps/a", Some(cur.clone())).await;
    assert_eq!(r.json()["metadata"]["resourceVersion"], cur["metadata"]["resourceVersion"]);

    // generateName.
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/demo/configmaps",
            Some(json!({"metadata": {"generateName": "gen-"}, "data": {}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let name = r.json()["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Delete returns a success Status for config maps; then 404.
    let r = api.request(Method::DELETE, "/api/v1/namespaces/demo/configmaps/a", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "Success");
    let r = api.request(Method::GET, "/api/v1/namespaces/demo/configmaps/a", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["message"], "configmaps \"a\" not found");
    assert_eq!(r.json()["details"]["kind"], "configmaps");
}

#[tokio::test]
async fn missing_and_terminating_namespaces() {
    let api = InProcess::start().await;
    let r = api.request(Method::POST, "/api/v1/namespaces/nope/configmaps", Some(cm("a", json!({})))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["message"], "namespaces \"nope\" not found");

    create_ns(&api, "t").await;
    // A pod bound to a node waits for its kubelet, so the namespace stays Terminating.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
    let r = api.request(Method::POST, "/api/v1/namespaces/t/pods", Some(pod)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api.request(Method::DELETE, "/api/v1/namespaces/t", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"]["phase"], "Terminating");
    let r = api.request(Method::POST, "/api/v1/namespaces/t/configmaps", Some(cm("b", json!({})))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "configmaps \"b\" is forbidden: unable to create new content in namespace t because it is being terminated"
    );
}

#[tokio::test]
async fn namespace_deletion_empties_then_removes_it() {
    let api = InProcess::start().await;
    create_ns(&api, "gone").await;
    for n in ["a", "b"] {
        let r = api.request(Method::POST, "/api/v1/namespaces/gone/configmaps", Some(cm(n, json!({})))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = api.request(Method::DELETE, "/api/v1/namespaces/gone", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = api.request(Method::GET, "/api/v1/namespaces/gone", None).await;
        if r.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "namespace not deleted: {}", r.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = api.request(Method::GET, "/api/v1/namespaces/gone/configmaps", None).await;
    assert_eq!(r.json()["items"], json!([]));
}

#[tokio::test]
async fn list_selectors_and_paging() {
    let api = InProcess::start().await;
    create_ns(&api, "demo").await;
    for i in 0..7 {
        let labels = if i % 2 == 0 { json!({"app": "web", "i": i.to_string()}) } else { json!({"app": "db"}) };
        let r =
            api.request(Method::POST, "/api/v1/namespaces/demo/configmaps", Some(cm(&format!("cm{i}"), labels))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect()
    };
    let r = api.request(Method::GET, "/api/v1/namespaces/demo/configmaps?labelSelector=app%3Dweb", None).await.json();
    assert_eq!(names(&r), ["cm0", "cm2", "cm4", "cm6"]);
    assert_eq!(r["kind"], "ConfigMapList");
    assert!(!r["metadata"]["resourceVersion"].as_str().unwrap().is_empty());
    let r = api
        .request(Method::GET, "/api/v1/namespaces/demo/configmaps?labelSelector=app+notin+(web),app", None)
        .await
        .json();
    assert_eq!(names(&r), ["cm1", "cm3", "cm5"]);
    let r = api.request(Method::GET, "/api/v1/configmaps?fieldSelector=metadata.name%3Dcm3", None).await.json();
    assert_eq!(names(&r), ["cm3"]);
    let r = api.request(Method::GET, "/api/v1/configmaps?fieldSelector=spec.nodeName%3Dx", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api.request(Method::GET, "/api/v1/configmaps?labelSelector=app+in+web", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Paging: three pages of three, consistent with the first page's revision.
    let mut all = Vec::new();
    let mut path = "/api/v1/namespaces/demo/configmaps?limit=3".to_string();
    let mut pages = 0;
    loop {
        let r = api.request(Method::GET, &path, None).await.json();
        pages += 1;
        all.extend(names(&r));
        if pages == 1 {
            assert_eq!(r["metadata"]["remainingItemCount"], 4);
            // A write between pages does not show up in the continued list.
            let w = api.request(Method::POST, "/api/v1/namespaces/demo/configmaps", Some(cm("zz", json!({})))).await;
            assert_eq!(w.status, StatusCode::CREATED);
        }
        match r["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => path = format!("/api/v1/namespaces/demo/configmaps?limit=3&continue={c}"),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all, ["cm0", "cm1", "cm2", "cm3", "cm4", "cm5", "cm6"]);
    let r = api.request(Method::GET, "/api/v1/namespaces/demo/configmaps?limit=3&continue=garbage", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn watch_streams_changes_and_transitions() {
    let api = InProcess::start().await;
    create_ns(&api, "w").await;
    let list = api.request(Method::GET, "/api/v1/namespaces/w/configmaps", None).await.json();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let (status, mut rx) = api
        .watch(&format!("/api/v1/namespaces/w/configmaps?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb"))
        .await;
    assert_eq!(status, StatusCode::OK);
    api.request(Method::POST, "/api/v1/namespaces/w/configmaps", Some(cm("a", json!({"app": "web"})))).await;
    api.request(Method::POST, "/api/v1/namespaces/w/configmaps", Some(cm("b", json!({"app": "db"})))).await;
    let mut a = api.request(Method::GET, "/api/v1/namespaces/w/configmaps/a", None).await.json();
    a["metadata"]["labels"]["app"] = json!("other");
    api.request(Method::PUT, "/api/v1/namespaces/w/configmaps/a", Some(a)).await;
    let e1 = next(&mut rx).await;
    assert_eq!((e1["type"].as_str(), e1["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("a")));
    // `b` never matched; `a` stopped matching: DELETED for this watcher.
    let e2 = next(&mut rx).await;
    assert_eq!((e2["type"].as_str(), e2["object"]["metadata"]["name"].as_str()), (Some("DELETED"), Some("a")));
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("event in time").expect("stream open")
}

#[tokio::test]
async fn watch_from_too_old_revision_is_a_410_event() {
    // A ring of at most 2,048 events, and enough events through one resource that revision 1
    // leaves it.
    let history = WatchHistory { max_events: 2048, ..WatchHistory::default() };
    let config = Config { watch_history: history, ..Config::default() };
    let api = InProcess::start_with(config, Arc::new(skiff_store::MemoryStore::new())).await;
    create_ns(&api, "old").await;
    for i in 0..2100 {
        let r =
            api.request(Method::POST, "/api/v1/namespaces/old/configmaps", Some(cm(&format!("c{i}"), json!({})))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // A consistent list makes sure the cache has applied every write.
    api.request(Method::GET, "/api/v1/namespaces/old/configmaps?limit=1", None).await;
    let (status, mut rx) = api.watch("/api/v1/namespaces/old/configmaps?watch=true&resourceVersion=1").await;
    assert_eq!(status, StatusCode::OK, "the stream opens; the error is an event");
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test]
async fn watch_initial_events_and_bookmark() {
    let api = InProcess::start().await;
    create_ns(&api, "ie").await;
    api.request(Method::POST, "/api/v1/namespaces/ie/configmaps", Some(cm("x", json!({})))).await;
    let (_, mut rx) = api
        .watch("/api/v1/namespaces/ie/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        .await;
    let e1 = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(e1["type"], "ADDED");
    let e2 = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(e2["type"], "BOOKMARK");
    assert_eq!(e2["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let api = InProcess::start().await;
    create_ns(&api, "d").await;
    let r = api.request(Method::POST, "/api/v1/namespaces/d/configmaps?dryRun=All", Some(cm("dry", json!({})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["metadata"]["uid"].is_string());
    let r = api.request(Method::GET, "/api/v1/namespaces/d/configmaps/dry", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.request(Method::POST, "/api/v1/namespaces/d/configmaps?dryRun=Maybe", Some(cm("dry", json!({})))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn field_validation_modes() {
    let api = InProcess::start().await;
    create_ns(&api, "fv").await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}, "bogus": 1});
    let r =
        api.request(Method::POST, "/api/v1/namespaces/fv/configmaps?fieldValidation=Strict", Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("unknown field \"bogus\""), "{}", r.text());
    let r =
        api.request(Method::POST, "/api/v1/namespaces/fv/configmaps?fieldValidation=Warn", Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let warning = r.headers.get("warning").unwrap().to_str().unwrap().to_string();
    assert!(warning.starts_with("299 - ") && warning.contains("unknown field"), "{warning}");
    assert!(r.json().get("bogus").is_none(), "unknown fields are dropped");
    let r = api.request(Method::POST, "/api/v1/namespaces/fv/configmaps?fieldValidation=Nope", Some(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_never_500() {
    let api = InProcess::start().await;
    create_ns(&api, "bad").await;
    let path = "/api/v1/namespaces/bad/configmaps";
    let admin = skiff_testkit::ADMIN_TOKEN;
    let r = api.raw(Method::POST, path, Some(Bytes::from_static(b"{not json")), "application/json", admin, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api.raw(Method::POST, path, Some(Bytes::from_static(b"a: [")), "application/yaml", admin, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api.raw(Method::POST, path, Some(Bytes::from_static(b"x")), "text/csv", admin, None).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = Bytes::from(vec![b' '; 3 * 1024 * 1024 + 10]);
    let r = api.raw(Method::POST, path, Some(big), "application/json", admin, None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // An object over 1.5 MiB that fits in a request is refused too.
    let huge = json!({"metadata": {"name": "huge"}, "data": {"k": "x".repeat(1600 * 1024)}});
    let r = api.request(Method::POST, path, Some(huge)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("Too long"), "{}", r.text());
    // Kinds without their own size limit hit the store's object size limit.
    let ev = json!({"metadata": {"name": "big"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "bad"}, "message": "x".repeat(1600 * 1024)});
    let r = api.request(Method::POST, "/api/v1/namespaces/bad/events", Some(ev)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let r = api
        .request(
            Method::POST,
            path,
            Some(json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "q"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api.request(Method::POST, path, Some(json!({"metadata": {"name": "Bad_Name"}}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"")
    );
    let r = api.request(Method::GET, "/api/v1/nothings", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.request(Method::POST, "/api/v1/namespaces/bad/configmaps/x/status", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn authentication_and_authorization() {
    let api = InProcess::start().await;
    let r = api.raw(Method::GET, "/api/v1/namespaces", None, "application/json", "", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["reason"], "Unauthorized");
    let r = api.raw(Method::GET, "/version", None, "application/json", "", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["gitVersion"].as_str().unwrap().starts_with("v1.33."));
    let r = api.raw(Method::GET, "/readyz", None, "", "", None).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "ok"));
    let r = api.raw(Method::GET, "/api/v1/namespaces", None, "", "wrong-token", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let user = skiff_testkit::USER_TOKEN;
    let r = api.raw(Method::GET, "/api/v1/namespaces/default/pods", None, "", user, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json()["message"],
        "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let r = api.raw(Method::GET, "/api", None, "", user, None).await;
    assert_eq!(r.status, StatusCode::OK, "discovery is open to authenticated users");
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    let api = InProcess::start().await;
    create_ns(&api, "svc").await;
    let kube = api.request(Method::GET, "/api/v1/namespaces/default/services/kubernetes", None).await.json();
    assert_eq!(kube["spec"]["clusterIP"], "10.43.0.1");
    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("a", json!({"ports": [{"port": 80}], "selector": {"app": "a"}}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let ip = r.json()["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    assert_eq!(r.json()["spec"]["clusterIPs"], json!([ip.clone()]));
    // The IP is recorded as an IPAddress object.
    let r = api.request(Method::GET, &format!("/apis/networking.k8s.io/v1/ipaddresses/{ip}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["parentRef"]["name"], "a");
    // Asking for a taken IP, or one outside the range, is a 422 naming the field.
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("b", json!({"clusterIP": ip, "ports": [{"port": 80}]}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["details"]["causes"][0]["field"], "spec.clusterIPs[0]");
    assert!(r.json()["message"].as_str().unwrap().contains("provided IP is already allocated"));
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("c", json!({"clusterIP": "10.99.0.5", "ports": [{"port": 80}]}))),
        )
        .await;
    assert!(r.json()["message"].as_str().unwrap().contains("provided IP is not in the valid range"), "{}", r.text());
    // NodePorts: allocated, explicit ones honoured, duplicates rejected.
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("np", json!({"type": "NodePort", "ports": [{"port": 80, "name": "a", "nodePort": 30080}, {"port": 81, "name": "b"}]}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let ports = r.json()["spec"]["ports"].clone();
    assert_eq!(ports[0]["nodePort"], 30080);
    let p2 = ports[1]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&p2));
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("np2", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["details"]["causes"][0]["field"], "spec.ports[0].nodePort");
    // Deleting releases both: the port can be taken again and the IPAddress is gone.
    let r = api.request(Method::DELETE, "/api/v1/namespaces/svc/services/np", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .request(
            Method::POST,
            "/api/v1/namespaces/svc/services",
            Some(svc("np3", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    api.request(Method::DELETE, "/api/v1/namespaces/svc/services/a", None).await;
    let r = api.request(Method::GET, &format!("/apis/networking.k8s.io/v1/ipaddresses/{ip}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scale_and_binding_subresources() {
    let api = InProcess::start().await;
    create_ns(&api, "s").await;
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let r = api.request(Method::POST, "/apis/apps/v1/namespaces/s/deployments", Some(deploy)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 1);
    let r = api.request(Method::GET, "/apis/apps/v1/namespaces/s/deployments/web/scale", None).await.json();
    assert_eq!((r["kind"].as_str(), r["spec"]["replicas"].as_i64()), (Some("Scale"), Some(2)));
    assert_eq!(r["status"]["selector"], "app=web");
    let admin = skiff_testkit::ADMIN_TOKEN;
    let r = api
        .raw(
            Method::PATCH,
            "/apis/apps/v1/namespaces/s/deployments/web/scale",
            Some(Bytes::from_static(br#"{"spec":{"replicas":5}}"#)),
            "application/merge-patch+json",
            admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 5);
    let d = api.request(Method::GET, "/apis/apps/v1/namespaces/s/deployments/web", None).await.json();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2, "a spec change bumps generation");
    // Status writes don't bump generation and main-resource writes can't change status.
    let mut st = d.clone();
    st["status"] = json!({"replicas": 5, "observedGeneration": 2});
    let r = api.request(Method::PUT, "/apis/apps/v1/namespaces/s/deployments/web/status", Some(st)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 2);
    assert_eq!(r.json()["status"]["replicas"], 5);
    let mut main = r.json();
    main["status"]["replicas"] = json!(99);
    let r = api.request(Method::PUT, "/apis/apps/v1/namespaces/s/deployments/web", Some(main)).await;
    assert_eq!(r.json()["status"]["replicas"], 5, "status is ignored on the main resource");

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"m": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let created = api.request(Method::POST, "/api/v1/namespaces/s/pods", Some(pod)).await.json();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "annotations": {"z": "1", "a": "2"}},
        "target": {"kind": "Node", "name": "node-1"}});
    // What the binding itself is checked for, since the pod is not validated again.
    for (bad, field) in [
        (
            json!({"metadata": {"name": "p", "annotations": {"bad key!": "x"}}, "target": {"name": "node-1"}}),
            "metadata.annotations",
        ),
        (json!({"metadata": {"name": "p"}, "target": {"kind": "Pod", "name": "node-1"}}), "target.kind"),
        (json!({"metadata": {"name": "p"}, "target": {"kind": "Node"}}), "target.name"),
    ] {
        let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/p/binding", Some(bad)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.json()["details"]["causes"][0]["field"], field, "{}", r.text());
    }
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/p/binding", Some(binding.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p = api.request(Method::GET, "/api/v1/namespaces/s/pods/p", None).await.json();
    assert_eq!(p["spec"]["nodeName"], "node-1");
    assert!(
        p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    );
    assert_eq!(p["metadata"]["annotations"], json!({"a": "2", "m": "x", "z": "1"}));
    // As upstream, a binding is written past the field manager: no entry for it.
    assert_eq!(p["metadata"]["managedFields"], created["metadata"]["managedFields"]);
    // The binding is stored without a second pass through the pod's strategy, in the same
    // canonical form: writing the pod back as read is a no-op (no new resourceVersion), which
    // it would not be if a key had landed elsewhere than the typed encoding puts it.
    let r = api.request(Method::PUT, "/api/v1/namespaces/s/pods/p", Some(p.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["resourceVersion"], p["metadata"]["resourceVersion"], "{}", r.text());
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/p/binding", Some(binding)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // A binding of a pod that is not there is a 404, and a dry run binds nothing.
    let to_node = |pod: &str| json!({"metadata": {"name": pod}, "target": {"name": "node-1"}});
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/nobody/binding", Some(to_node("nobody"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let q = api.request(Method::POST, "/api/v1/namespaces/s/pods", Some(pod)).await.json();
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/q/binding?dryRun=All", Some(to_node("q"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let read = api.request(Method::GET, "/api/v1/namespaces/s/pods/q", None).await.json();
    assert_eq!(read["metadata"]["resourceVersion"], q["metadata"]["resourceVersion"]);
    assert!(read["spec"].get("nodeName").is_none(), "{read}");
    // A pod being deleted (held by a finalizer) is not bound.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r", "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods", Some(pod)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api.request(Method::DELETE, "/api/v1/namespaces/s/pods/r", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.request(Method::POST, "/api/v1/namespaces/s/pods/r/binding", Some(to_node("r"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("pod r is being deleted, cannot be assigned to a host"), "{}", r.text());
}

#[tokio::test]
async fn writing_back_what_was_read_is_a_no_op() {
    let api = InProcess::start().await;
    create_ns(&api, "noop").await;
    // Right after a create: its managed fields must sit where every later write puts them.
    let created =
        api.request(Method::POST, "/api/v1/namespaces/noop/configmaps", Some(cm("c", json!({"a": "1"})))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let read = api.request(Method::GET, "/api/v1/namespaces/noop/configmaps/c", None).await.json();
    for _ in 0..2 {
        let r = api.request(Method::PUT, "/api/v1/namespaces/noop/configmaps/c", Some(read.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["metadata"]["resourceVersion"], read["metadata"]["resourceVersion"], "{}", r.text());
    }
    let admin = skiff_testkit::ADMIN_TOKEN;
    let r = api
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/noop/configmaps/c",
            Some(Bytes::from_static(br#"{"data":{"k":"v"}}"#)),
            "application/merge-patch+json",
            admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["resourceVersion"], read["metadata"]["resourceVersion"], "{}", r.text());
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let api = InProcess::start().await;
    create_ns(&api, "f").await;
    let body = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}});
    api.request(Method::POST, "/api/v1/namespaces/f/configmaps", Some(body)).await;
    let r = api.request(Method::DELETE, "/api/v1/namespaces/f/configmaps/held", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let got = api.request(Method::GET, "/api/v1/namespaces/f/configmaps/held", None).await.json();
    assert!(got["metadata"]["deletionTimestamp"].is_string(), "{got}");
    // No new finalizers once deleting.
    let mut add = got.clone();
    add["metadata"]["finalizers"] = json!(["example.com/hold", "example.com/more"]);
    let r = api.request(Method::PUT, "/api/v1/namespaces/f/configmaps/held", Some(add)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    // Removing the last finalizer deletes the object.
    let admin = skiff_testkit::ADMIN_TOKEN;
    let r = api
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/f/configmaps/held",
            Some(Bytes::from_static(br#"[{"op":"remove","path":"/metadata/finalizers"}]"#)),
            "application/json-patch+json",
            admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.request(Method::GET, "/api/v1/namespaces/f/configmaps/held", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_documents() {
    let api = InProcess::start().await;
    let r = api.request(Method::GET, "/api/v1", None).await.json();
    let pods = r["resources"].as_array().unwrap().iter().find(|x| x["name"] == "pods").unwrap().clone();
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    assert!(r["resources"].as_array().unwrap().iter().any(|x| x["name"] == "pods/status"));
    let r = api.request(Method::GET, "/apis", None).await.json();
    let groups: Vec<&str> = r["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(groups[0], "apps");
    let auto = r["groups"].as_array().unwrap().iter().find(|g| g["name"] == "autoscaling").unwrap();
    assert_eq!(auto["preferredVersion"]["version"], "v2");
    let admin = skiff_testkit::ADMIN_TOKEN;
    let agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = api.raw(Method::GET, "/apis", None, "", admin, Some(agg)).await;
    assert_eq!(r.headers["content-type"], "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert_eq!(r.json()["kind"], "APIGroupDiscoveryList");
    let r = api.request(Method::GET, "/metrics", None).await;
    assert!(r.text().contains("apiserver_request_total"), "{}", r.text());
}

#[tokio::test]
async fn events_expire_and_history_is_compacted() {
    let config = skiff_apiserver::Config {
        event_ttl: Duration::from_secs(2),
        compaction_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let api = InProcess::start_with(config, std::sync::Arc::new(skiff_store::MemoryStore::new())).await;
    create_ns(&api, "ev").await;
    let event = |name: &str| {
        json!({"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ev"},
            "reason": "Tested", "message": "m"})
    };
    assert_eq!(
        api.request(Method::POST, "/api/v1/namespaces/ev/events", Some(event("old"))).await.status,
        StatusCode::CREATED
    );
    for i in 0..5 {
        api.request(Method::POST, "/api/v1/namespaces/ev/configmaps", Some(cm(&format!("c{i}"), json!({})))).await;
    }
    let first = api.request(Method::GET, "/api/v1/namespaces/ev/configmaps?limit=2", None).await.json();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let first_rv: i64 = first["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let old = api.request(Method::GET, "/api/v1/namespaces/ev/events/old", None).await.status;
        let compacted = api.store.compacted_revision().await.unwrap();
        // Keep writing so the compactor has newer revisions to move to.
        api.request(
            Method::POST,
            "/api/v1/namespaces/ev/configmaps",
            Some(json!({"metadata": {"generateName": "x-"}})),
        )
        .await;
        if old == StatusCode::NOT_FOUND && compacted > first_rv {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "old event still there ({old}) or no compaction ({compacted})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new event lives for its TTL.
    assert_eq!(
        api.request(Method::POST, "/api/v1/namespaces/ev/events", Some(event("fresh"))).await.status,
        StatusCode::CREATED
    );
    let fresh = api.request(Method::GET, "/api/v1/namespaces/ev/events/fresh", None).await;
    assert_eq!(fresh.status, StatusCode::OK);
    // A continue token from before the compaction can no longer give a consistent list.
    let r = api.request(Method::GET, &format!("/api/v1/namespaces/ev/configmaps?limit=2&continue={token}"), None).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert_eq!(r.json()["reason"], "Expired");
}

/// A CRD and its custom resources through raw HTTP: the same behaviour kubectl and kube-rs see.
#[tokio::test]
async fn custom_resources_over_raw_http() {
    let api = InProcess::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.raw.test"},
        "spec": {"group": "raw.test", "scope": "Namespaced",
                 "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"n": {"type": "integer", "default": 7}}}}}}}]}});
    let r = api.request(Method::POST, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Some(crd)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    create_ns(&api, "raw").await;
    // Served within a second of being created.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let r = api.request(Method::GET, "/apis/raw.test/v1/namespaces/raw/things", None).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json()["kind"], "ThingList");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not served within a second: {}", r.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = api.request(Method::GET, "/apis/raw.test/v1", None).await.json();
    assert_eq!(r["resources"][0]["name"], "things");
    let (_, mut rx) = api.watch("/apis/raw.test/v1/namespaces/raw/things?watch=true").await;
    let thing = json!({"apiVersion": "raw.test/v1", "kind": "Thing", "metadata": {"name": "t1"}, "spec": {}});
    let r = api.request(Method::POST, "/apis/raw.test/v1/namespaces/raw/things", Some(thing)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["spec"]["n"], 7, "defaulted from the schema");
    assert_eq!(r.json()["metadata"]["managedFields"][0]["manager"], "unknown");
    let ev = next(&mut rx).await;
    assert_eq!((ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("t1")));
    // Server-side apply by two managers: a conflict, then force.
    let admin = skiff_testkit::ADMIN_TOKEN;
    let apply = |manager: &str, n: i64, force: bool| {
        let body =
            Bytes::from(format!("apiVersion: raw.test/v1\nkind: Thing\nmetadata:\n  name: t1\nspec:\n  n: {n}\n"));
        let path = format!("/apis/raw.test/v1/namespaces/raw/things/t1?fieldManager={manager}&force={force}");
        let api = &api;
        async move { api.raw(Method::PATCH, &path, Some(body), "application/apply-patch+yaml", admin, None).await }
    };
    // The creator (an Update by "unknown") owns spec.n: a first apply conflicts with it too.
    let r = apply("a", 1, false).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("conflict with \"unknown\" using raw.test/v1"));
    let r = apply("a", 1, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = apply("b", 2, false).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.json()["details"]["causes"][0]["field"], ".spec.n");
    assert_eq!(r.json()["message"], "Apply failed with 1 conflict: conflict with \"a\": .spec.n");
    let r = apply("b", 2, true).await;
    assert_eq!((r.status, r.json()["spec"]["n"].as_i64()), (StatusCode::OK, Some(2)));
    // Strategic merge patch is refused for custom resources, as upstream.
    let r = api
        .raw(
            Method::PATCH,
            "/apis/raw.test/v1/namespaces/raw/things/t1",
            Some(Bytes::from_static(b"{}")),
            "application/strategic-merge-patch+json",
            admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Deleting the CRD deletes the object (the watcher sees it) and stops serving.
    let r = api
        .request(Method::DELETE, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.raw.test", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    loop {
        let ev = next(&mut rx).await;
        if ev["type"] == "DELETED" {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.request(Method::GET, "/apis/raw.test/v1/namespaces/raw/things", None).await.status
        != StatusCode::NOT_FOUND
    {
        assert!(tokio::time::Instant::now() < deadline, "still served after the CRD was deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Components inside the server use a kube-rs client without a socket: requests carry their
/// identity in process, watches stream, and errors come back as `Status`.
#[tokio::test]
async fn in_process_kube_client() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams, WatchEvent, WatchParams};
    use kube::runtime::watcher;
    let api = InProcess::start().await;
    let client = api.server.client("system:kube-controller-manager", &["system:masters"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.resource_version.is_some());
    let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
    let mut w = Box::pin(cms.watch(&WatchParams::default(), "0").await.unwrap());
    use futures::StreamExt;
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(ev, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("a")));
    // The runtime's watcher (list + watch) works over it too.
    let mut events = Box::pin(watcher(cms.clone(), watcher::Config::default()));
    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(first, watcher::Event::Init), "{first:?}");
    // Its identity is the one given: a user outside system:masters is refused.
    let nobody = api.server.client("nobody", &[]);
    let err = Api::<ConfigMap>::namespaced(nobody, "default").get("a").await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains("\"nobody\"")), "{err:?}");
}

/// `default`, `kube-system` and `kube-public` cannot be deleted (NamespaceLifecycle).
#[tokio::test]
async fn system_namespaces_are_immortal() {
    let api = InProcess::start().await;
    for ns in ["default", "kube-system", "kube-public"] {
        let r = api.request(Method::DELETE, &format!("/api/v1/namespaces/{ns}"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.json()["message"], format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"));
        let r = api.request(Method::GET, &format!("/api/v1/namespaces/{ns}"), None).await;
        assert_eq!(r.json()["status"]["phase"], "Active");
    }
    create_ns(&api, "mortal").await;
    let r = api.request(Method::DELETE, "/api/v1/namespaces/mortal", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// A patch or update naming another uid than the stored object's is refused (uid is
/// immutable), so controllers can use the uid as a precondition; the right uid is accepted.
#[tokio::test]
async fn uid_in_a_patch_is_a_precondition() {
    let api = InProcess::start().await;
    let r = api.request(Method::POST, "/api/v1/namespaces/default/configmaps", Some(cm("u", json!({"a": "1"})))).await;
    let uid = r.json()["metadata"]["uid"].as_str().unwrap().to_string();
    let patch =
        |uid: &str| Bytes::from(serde_json::to_vec(&json!({"metadata": {"uid": uid}, "data": {"a": "2"}})).unwrap());
    let r = api
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/u",
            Some(patch("not-it")),
            "application/merge-patch+json",
            skiff_testkit::ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["details"]["causes"][0]["field"], "metadata.uid");
    let r = api
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/u",
            Some(patch(&uid)),
            "application/merge-patch+json",
            skiff_testkit::ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"]["a"], "2");
}

/// Updates start from the watch cache, which may lag the store by a write: back-to-back
/// writes that depend on the previous one (a resourceVersion precondition from the last
/// response, a JSON patch `test` of the last value) must still see it, and an update that
/// changes nothing must not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_updates_see_the_previous_write() {
    let api = InProcess::start().await;
    let path = "/api/v1/namespaces/default/configmaps/seq";
    let r = api.request(Method::POST, "/api/v1/namespaces/default/configmaps", Some(cm("seq", json!({})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let mut obj = r.json();
    for i in 0..100 {
        obj["data"]["k"] = json!(i.to_string());
        let r = api.request(Method::PUT, path, Some(obj.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "PUT {i} with the resourceVersion just returned: {}", r.text());
        obj = r.json();
    }
    for i in 100..200 {
        let patch = json!([
            {"op": "test", "path": "/data/k", "value": (i - 1).to_string()},
            {"op": "replace", "path": "/data/k", "value": i.to_string()},
        ]);
        let r = api
            .raw(
                Method::PATCH,
                path,
                Some(Bytes::from(patch.to_string())),
                "application/json-patch+json",
                skiff_testkit::ADMIN_TOKEN,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "patch {i} testing the last value: {}", r.text());
        obj = r.json();
    }
    // A no-op update keeps the resourceVersion: nothing was written.
    let rv = obj["metadata"]["resourceVersion"].clone();
    let r = api.request(Method::PUT, path, Some(obj.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["resourceVersion"], rv);
    // A stale resourceVersion is still a conflict.
    obj["metadata"]["resourceVersion"] = json!("2");
    obj["data"]["k"] = json!("stale");
    let r = api.request(Method::PUT, path, Some(obj)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let got = api.request(Method::GET, path, None).await.json();
    assert_eq!(got["data"]["k"], "199");
}

/// Components in the server's process read lists and watches without `metadata.managedFields`
/// (they never use them; upstream's scheduler and controllers drop them too); every other
/// client, and the stored object, keep them.
#[tokio::test]
async fn in_process_reads_leave_out_managed_fields() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, WatchParams};

    let api = InProcess::start().await;
    let r = api.request(Method::POST, "/api/v1/namespaces/default/configmaps", Some(cm("mf", json!({})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["metadata"]["managedFields"].is_array(), "{}", r.text());
    let network = api.request(Method::GET, "/api/v1/namespaces/default/configmaps", None).await.json();
    assert!(network["items"][0]["metadata"]["managedFields"].is_array(), "{network}");

    let cms: Api<ConfigMap> =
        Api::namespaced(api.server.client("system:kube-controller-manager", &["system:masters"]), "default");
    let listed = cms.list(&Default::default()).await.expect("list");
    let item = listed.items.iter().find(|c| c.metadata.name.as_deref() == Some("mf")).expect("listed");
    assert_eq!(item.metadata.managed_fields, None);
    assert_eq!(item.data.as_ref().and_then(|d| d.get("k")).map(String::as_str), Some("v"));
    assert!(item.metadata.resource_version.is_some());

    let mut events = cms.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event in time");
    match first {
        Some(Ok(kube::api::WatchEvent::Added(c))) => {
            assert_eq!(c.metadata.name.as_deref(), Some("mf"));
            assert_eq!(c.metadata.managed_fields, None);
            assert!(c.metadata.uid.is_some());
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    // A later change too, while a network watcher still gets them.
    let (status, mut net) = api.watch("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0").await;
    assert_eq!(status, StatusCode::OK);
    let r = api
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/mf",
            Some(Bytes::from_static(br#"{"data":{"k":"w"}}"#)),
            "application/merge-patch+json",
            skiff_testkit::ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let next = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event in time");
    match next {
        Some(Ok(kube::api::WatchEvent::Modified(c))) => {
            assert_eq!(c.data.as_ref().and_then(|d| d.get("k")).map(String::as_str), Some("w"));
            assert_eq!(c.metadata.managed_fields, None);
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), net.recv()).await.expect("in time").expect("open");
        if ev["object"]["data"]["k"] == "w" {
            assert!(ev["object"]["metadata"]["managedFields"].is_array(), "{ev}");
            break;
        }
    }
}
