//! kube-rs against the built binary: typed CRUD, paging, optimistic concurrency, watch, and a
//! reflector that stays in sync across a server restart (its watch resumes from a revision the
//! new server no longer has, gets a 410 `ERROR` event, and relists).
//!
//! The controller manager is off here: these tests count objects (a controller would add
//! `kube-root-ca.crt` to every namespace) and exercise the wire, not the controllers.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use skiff_testkit::Cluster;

async fn client(c: &Cluster) -> kube::Client {
    let kc = Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("kube config");
    kube::Client::try_from(config).expect("client")
}

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(BTreeMap::from([("v".to_string(), v.to_string())])),
        ..Default::default()
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() },
    )
    .await
    .expect("namespace created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_paging_and_conflicts() {
    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    namespace(&client, "kr").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kr");

    let created = api.create(&PostParams::default(), &cm("a", "1")).await.expect("create");
    assert!(created.metadata.uid.is_some());
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("p{i}"), "x")).await.expect("create");
    }
    // kube-rs pages with `limit` and follows `continue`.
    let page = api.list(&ListParams::default().limit(3)).await.expect("list page");
    assert_eq!(page.items.len(), 3);
    assert!(page.metadata.continue_.is_some());
    let all = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(all.items.len(), 8);
    assert!(all.metadata.resource_version.is_some_and(|rv| !rv.is_empty()));

    // replace with the current resourceVersion works; with a stale one it is a 409.
    let mut fresh = api.get("a").await.expect("get");
    fresh.data = Some(BTreeMap::from([("v".to_string(), "2".to_string())]));
    let replaced = api.replace("a", &PostParams::default(), &fresh).await.expect("replace");
    assert_eq!(replaced.data.unwrap()["v"], "2");
    match api.replace("a", &PostParams::default(), &fresh).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("stale replace: {other:?}"),
    }

    // Delete returns either the object or a Status; afterwards, 404.
    api.delete("a", &DeleteParams::default()).await.expect("delete");
    match api.get("a").await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("get after delete: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_changes() {
    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    namespace(&client, "kw").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kw");
    let mut stream = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for i in 0..5 {
                api.create(&PostParams::default(), &cm(&format!("w{i}"), "x")).await.expect("create");
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("event in time");
        let obj = next.expect("stream open").expect("no watch error");
        seen.push(obj.metadata.name.unwrap());
    }
    writer.await.unwrap();
    seen.sort();
    assert_eq!(seen, ["w0", "w1", "w2", "w3", "w4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_stays_in_sync_across_a_410() {
    let mut c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    namespace(&client, "rf").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rf");
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("before{i}"), "x")).await.expect("create");
    }
    let (reader, writer) = reflector::store();
    let rf = reflector(writer, watcher(api.clone(), watcher::Config::default().timeout(5)));
    let driver = tokio::spawn(rf.for_each(|_| futures::future::ready(())));
    reader.wait_until_ready().await.expect("reflector ready");
    assert_eq!(reader.state().len(), 3);

    // Stop the server and write behind its back, as another API server of an HA cluster
    // would. The restarted server fills its watch cache at the new revision, so the
    // reflector's watch resumes from a revision it can no longer replay: it must get the 410
    // `ERROR` event, relist, and converge.
    c.stop();
    {
        let store = skiff_store::SqliteStore::open(skiff_store::SqliteOptions::new(c.data_dir.path().join("db")))
            .expect("open store");
        let sneaky = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "sneaky", "namespace": "rf", "uid": "0b5d3d0e-0000-4000-8000-000000000001",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "data": {"v": "z"}});
        skiff_store::Store::create(
            &store,
            "/registry/core/configmaps/rf/sneaky",
            serde_json::to_vec(&sneaky).unwrap().into(),
        )
        .await
        .expect("write behind the server's back");
        store.close().await;
    }
    c.start_again().expect("restart");
    let api2: Api<ConfigMap> = Api::namespaced(client.clone(), "rf");
    api2.delete("before0", &DeleteParams::default()).await.expect("delete");
    for i in 0..3 {
        api2.create(&PostParams::default(), &cm(&format!("after{i}"), "y")).await.expect("create");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut names: Vec<String> = reader.state().iter().filter_map(|o| o.metadata.name.clone()).collect();
        names.sort();
        if names == ["after0", "after1", "after2", "before1", "before2", "sneaky"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "reflector did not converge: {names:?}\n{}", c.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    driver.abort();
    assert!(c.log_text().contains("API server ready"));
}

/// A kill -9 of the server during concurrent writes loses no acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write() {
    let mut c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    namespace(&client, "crash").await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "crash");
        let acked = acked.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("t{t}-{i}");
                if let Ok(created) = api.create(&PostParams::default(), &cm(&name, &name)).await {
                    let rv = created.metadata.resource_version.unwrap_or_default();
                    acked.lock().unwrap().push((name, rv));
                }
                i += 1;
            }
        }));
    }
    // Let writes flow, then crash the server mid-stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 300 {
        assert!(tokio::time::Instant::now() < deadline, "writes are not flowing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    c.start_again().expect("restart after kill -9");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "crash");
    let stored = api.list(&ListParams::default()).await.expect("list after restart");
    let by_name: BTreeMap<String, String> = stored
        .items
        .into_iter()
        .map(|o| (o.metadata.name.unwrap_or_default(), o.metadata.resource_version.unwrap_or_default()))
        .collect();
    let lost: Vec<&(String, String)> = acked.iter().filter(|(n, rv)| by_name.get(n) != Some(rv)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(acked.len() >= 300);
}

/// Metadata-only informers (`PartialObjectMetadata`) and events.k8s.io field selectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_watcher_and_event_versions() {
    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    namespace(&client, "md").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "md");
    api.create(&PostParams::default(), &cm("m1", "x")).await.expect("create");
    let meta = api.list_metadata(&ListParams::default()).await.expect("metadata list");
    assert_eq!(meta.items.len(), 1);
    assert_eq!(meta.items[0].metadata.name.as_deref(), Some("m1"));
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::namespaced(client.clone(), "md");
    let mut stream = watcher(meta_api, watcher::Config::default()).applied_objects().boxed();
    let first = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("in time").unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("m1"));

    // An events.k8s.io/v1 Event is stored as core/v1 and read back through both versions.
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::api::events::v1 as events;
    let ev_api: Api<events::Event> = Api::namespaced(client.clone(), "md");
    let ev = events::Event {
        metadata: ObjectMeta { name: Some("e1".into()), ..Default::default() },
        regarding: Some(core::ObjectReference {
            kind: Some("Pod".into()),
            name: Some("p".into()),
            namespace: Some("md".into()),
            ..Default::default()
        }),
        reason: Some("Tested".into()),
        note: Some("hello".into()),
        type_: Some("Normal".into()),
        action: Some("Test".into()),
        reporting_controller: Some("skiff.test/e2e".into()),
        reporting_instance: Some("e2e-1".into()),
        event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff_now())),
        ..Default::default()
    };
    let created = ev_api.create(&PostParams::default(), &ev).await.expect("events.k8s.io create");
    let core_api: Api<core::Event> = Api::namespaced(client.clone(), "md");
    let as_core = core_api.get("e1").await.expect("read as core/v1");
    assert_eq!(as_core.message.as_deref(), Some("hello"));
    // The create's answer is in the version written, with the stored resourceVersion.
    assert_eq!(created.note.as_deref(), Some("hello"));
    assert_eq!(created.reporting_controller.as_deref(), Some("skiff.test/e2e"));
    assert_eq!(created.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("p"));
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(created.metadata.resource_version, as_core.metadata.resource_version);
    assert_eq!(created.metadata.uid, as_core.metadata.uid);
    assert_eq!(as_core.involved_object.name.as_deref(), Some("p"));
    let by_regarding = ev_api.list(&ListParams::default().fields("regarding.name=p")).await.expect("field selector");
    assert_eq!(by_regarding.items.len(), 1);
    let none = ev_api.list(&ListParams::default().fields("regarding.name=other")).await.expect("field selector");
    assert!(none.items.is_empty());
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// A custom resource defined by a Rust type: the CRD is applied with server-side apply, a
/// kube-rs `Controller` reconciles an object and writes its status.
mod widget {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
    #[kube(
        group = "skiff.test",
        version = "v1",
        kind = "Widget",
        namespaced,
        status = "WidgetStatus",
        shortname = "wd"
    )]
    pub(super) struct WidgetSpec {
        pub(super) size: i32,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
    pub(super) struct WidgetStatus {
        pub(super) observed_size: i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_controller_reconciles() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::controller::{Action, Controller};
    use widget::{Widget, WidgetSpec, WidgetStatus};

    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let client = client(&c).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ssa = PatchParams::apply("e2e-test").force();
    crds.patch("widgets.skiff.test", &ssa, &Patch::Apply(Widget::crd())).await.expect("CRD applied server-side");
    let established = kube::runtime::wait::await_condition(
        crds.clone(),
        "widgets.skiff.test",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(20), established).await.expect("CRD established in time").expect("wait");

    namespace(&client, "wd").await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "wd");
    // Discovery may lag the CRD by a moment: retry the first apply.
    let w = Widget::new("w1", WidgetSpec { size: 3 });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match widgets.patch("w1", &ssa, &Patch::Apply(&w)).await {
            Ok(_) => break,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "apply widget: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn reconcile(w: std::sync::Arc<Widget>, api: std::sync::Arc<Api<Widget>>) -> Result<Action, kube::Error> {
        let status = serde_json::json!({
            "apiVersion": "skiff.test/v1", "kind": "Widget",
            "status": WidgetStatus { observed_size: w.spec.size },
        });
        let name = w.metadata.name.clone().unwrap_or_default();
        api.patch_status(&name, &PatchParams::apply("widget-controller").force(), &Patch::Apply(status)).await?;
        Ok(Action::await_change())
    }
    fn error_policy(_: std::sync::Arc<Widget>, _: &kube::Error, _: std::sync::Arc<Api<Widget>>) -> Action {
        Action::requeue(Duration::from_millis(200))
    }
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .run(reconcile, error_policy, std::sync::Arc::new(widgets.clone()))
        .for_each(|_| futures::future::ready(()));
    let driver = tokio::spawn(controller);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = widgets.get("w1").await.expect("get widget");
        if got.status.as_ref().is_some_and(|s| s.observed_size == 3) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "status never written: {got:?}\n{}", c.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Changing the spec is reconciled again.
    widgets
        .patch("w1", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"size": 7}})))
        .await
        .expect("merge patch");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = widgets.get("w1").await.expect("get widget");
        if got.status.as_ref().is_some_and(|s| s.observed_size == 7) {
            let fm = got.metadata.managed_fields.unwrap_or_default();
            assert!(fm.iter().any(
                |e| e.manager.as_deref() == Some("widget-controller") && e.subresource.as_deref() == Some("status")
            ));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "second reconcile never happened: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver.abort();
}
