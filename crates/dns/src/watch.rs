//! Keeps the [`Index`] current: a kube-rs reflector per kind (Namespaces, Services,
//! EndpointSlices — what CoreDNS's kubernetes plugin watches in its default configuration)
//! feeds a cache, and every change rebuilds the index from the three caches and publishes it.
//! Rebuilding whole is simple and cheap at a cluster's scale; bursts coalesce, since a change
//! that arrives during a rebuild only schedules one more.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use hickory_server::proto::rr::Name;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::index::Index;

/// Watch the cluster until `shutdown`, publishing a fresh index on `index` after every change.
pub(crate) async fn run(
    client: Client,
    zone: Name,
    ttl: u32,
    index: watch::Sender<Arc<Index>>,
    shutdown: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let (namespaces, ns_synced) =
        spawn_reflector(Api::<Namespace>::all(client.clone()), "namespaces", &changed, &shutdown);
    let (services, svc_synced) = spawn_reflector(Api::<Service>::all(client.clone()), "services", &changed, &shutdown);
    let (slices, eps_synced) =
        spawn_reflector(Api::<EndpointSlice>::all(client), "endpointslices", &changed, &shutdown);
    loop {
        tokio::select! {
            () = changed.notified() => {}
            () = shutdown.cancelled() => return,
        }
        let synced = [&ns_synced, &svc_synced, &eps_synced].iter().all(|s| s.load(Ordering::Acquire));
        let next = build(&zone, ttl, synced, &namespaces, &services, &slices);
        tracing::debug!(synced, services = next.services.len(), "cluster DNS index rebuilt");
        index.send_replace(Arc::new(next));
    }
}

fn build(
    zone: &Name,
    ttl: u32,
    synced: bool,
    namespaces: &Store<Namespace>,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
) -> Index {
    let serial =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let (namespaces, services, slices) = (namespaces.state(), services.state(), slices.state());
    Index::build(
        zone.clone(),
        ttl,
        serial,
        synced,
        namespaces.iter().map(AsRef::as_ref),
        services.iter().map(AsRef::as_ref),
        slices.iter().map(AsRef::as_ref),
    )
}

/// Start a reflector for `api`'s kind; returns its cache and whether it has listed once.
fn spawn_reflector<K>(
    api: Api<K>,
    plural: &'static str,
    changed: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> (Store<K>, Arc<AtomicBool>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let synced = Arc::new(AtomicBool::new(false));
    let (changed, flag, shutdown) = (changed.clone(), synced.clone(), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = reflect(api, writer, plural, &changed, &flag) => {}
            () = shutdown.cancelled() => {}
        }
    });
    (store, synced)
}

async fn reflect<K>(api: Api<K>, writer: Writer<K>, plural: &'static str, changed: &Notify, synced: &AtomicBool)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        // DNS reads names, specs and endpoints; managedFields and annotations (a
        // last-applied-configuration can be large) would only take memory.
        .modify(|obj: &mut K| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut().clear();
        })
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            // The cache swaps in a fresh list on InitDone; Init and InitApply only buffer.
            Ok(Event::InitDone) => {
                synced.store(true, Ordering::Release);
                changed.notify_one();
            }
            Ok(Event::Apply(_) | Event::Delete(_)) => changed.notify_one(),
            Ok(Event::Init | Event::InitApply(_)) => {}
            // The watcher re-lists after an error; the backoff spaces the retries out.
            Err(error) => tracing::warn!(resource = plural, %error, "cluster DNS watch failed; retrying"),
        }
    }
}
