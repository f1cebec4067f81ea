//! CustomResourceDefinitions at run time (upstream's apiextensions-apiserver controllers): a
//! loop over the CRDs in the watch cache that
//!
//! - accepts names and marks CRDs `Established` (naming controller), writing `status`;
//! - serves the custom resources of established CRDs: a watch cache storage per CRD, then one
//!   resource per served version in the resource snapshot (discovery, OpenAPI and the registry
//!   follow it);
//! - on deletion, deletes every custom object and then removes the
//!   `customresourcecleanup.apiextensions.k8s.io` finalizer (finalizing controller), after
//!   which the CRD goes and its resources stop being served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skiff_api::Resource;

use crate::ApiServer;
use crate::registry::{self, Ctx, DeleteOptions, UpdateTarget, WriteOptions, prefix_for};
use crate::status::ApiResult;
use crate::watch_cache::WatchFrom;

/// The finalizer that holds a CRD until its objects are gone.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// A CRD being served.
pub(crate) struct Served {
    /// The CRD spec the resources were built from (status writes don't rebuild them).
    spec: Value,
    /// One resource per served version, the storage version first.
    pub(crate) resources: Vec<Arc<Resource>>,
    /// The CRD as JSON (for OpenAPI documents).
    pub(crate) crd: Value,
}

/// What the server currently serves for CRDs, by CRD name.
#[derive(Default)]
pub(crate) struct CrdState {
    pub(crate) served: HashMap<String, Served>,
}

pub(crate) fn spawn(server: Arc<ApiServer>) {
    tokio::spawn(async move {
        let Some(res) = server.resources().find("apiextensions.k8s.io", "v1", "customresourcedefinitions") else {
            return;
        };
        let storage = crate::storage_name(&res.info);
        let Ok(mut sub) = server.cache.subscribe(&storage, "", WatchFrom::Now { initial_events: false }) else {
            return;
        };
        loop {
            let pending = match reconcile(&server).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "custom resource definitions pass failed");
                    true
                }
            };
            let wait = if pending { Duration::from_millis(200) } else { Duration::from_secs(30) };
            tokio::select! {
                _ = server.shutdown.cancelled() => return,
                _ = sub.rx.recv() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

fn crd_resource(server: &ApiServer) -> Option<Arc<Resource>> {
    server.resources().find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// One pass over every CRD; true while something is still in progress (a deletion).
pub(crate) async fn reconcile(server: &Arc<ApiServer>) -> ApiResult<bool> {
    let Some(res) = crd_resource(server) else { return Ok(false) };
    let storage = crate::storage_name(&res.info);
    let (objs, _, _) = server.cache.list(&storage, &prefix_for(&res.info, None), None, 0, &|_| true);
    let crds: Vec<Value> = objs.iter().map(|o| o.value()).collect();
    let mut pending = false;
    let mut wanted: HashMap<String, Value> = HashMap::new();
    for (i, crd) in crds.iter().enumerate() {
        let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            pending = true;
            // Keep serving while the objects go, so they can be deleted through the registry.
            if finalize(server, &res, crd).await? {
                continue;
            }
            wanted.insert(name, crd.clone());
            continue;
        }
        let others: Vec<Value> = crds.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c.clone()).collect();
        let mut updated = crd.clone();
        let serve = skiff_api::crd::reconcile_status(&mut updated, &others, jiff::Timestamp::now());
        if updated.get("status") != crd.get("status") {
            write_status(server, &res, &name, updated.get("status").cloned().unwrap_or(Value::Null)).await?;
        }
        if serve {
            wanted.insert(name, crd.clone());
        }
    }
    apply(server, wanted).await;
    Ok(pending)
}

async fn write_status(server: &Arc<ApiServer>, res: &Arc<Resource>, name: &str, status: Value) -> ApiResult<()> {
    let ctx = Ctx { server, res: res.clone(), namespace: None };
    let result =
        registry::guaranteed_update(&ctx, name, UpdateTarget::Status, &WriteOptions::default(), &|cur: &Value| {
            let mut cur = registry::editable(cur);
            cur["status"] = status.clone();
            Ok(cur)
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        // Deleted meanwhile: the next pass sees it gone.
        Err(e) if e.reason == "NotFound" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Delete the custom objects of a CRD being deleted; once none are left, drop the cleanup
/// finalizer (which deletes the CRD). Returns true when the CRD no longer needs serving.
async fn finalize(server: &Arc<ApiServer>, crd_res: &Arc<Resource>, crd: &Value) -> ApiResult<bool> {
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let storage_res = {
        let state = server.crds.lock().unwrap_or_else(|e| e.into_inner());
        state.served.get(&name).and_then(|s| s.resources.first().cloned())
    };
    if let Some(res) = storage_res {
        let storage = crate::storage_name(&res.info);
        let (objs, _, _) = server.cache.list(&storage, &prefix_for(&res.info, None), None, 0, &|_| true);
        if !objs.is_empty() {
            for o in objs {
                let ns = (!o.namespace.is_empty()).then_some(o.namespace.as_str());
                let ctx = Ctx { server, res: res.clone(), namespace: ns };
                match registry::delete(&ctx, &o.name, &DeleteOptions::default()).await {
                    Ok(_) => {}
                    Err(e) if e.reason == "NotFound" => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(false);
        }
    }
    let has_finalizer = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if has_finalizer {
        let ctx = Ctx { server, res: crd_res.clone(), namespace: None };
        let r =
            registry::guaranteed_update(&ctx, &name, UpdateTarget::Main, &WriteOptions::default(), &|cur: &Value| {
                let mut cur = registry::editable(cur);
                if let Some(Value::Array(f)) = cur.pointer_mut("/metadata/finalizers") {
                    f.retain(|x| x != CLEANUP_FINALIZER);
                }
                Ok(cur)
            })
            .await;
        match r {
            Ok(_) => {}
            Err(e) if e.reason == "NotFound" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Serve exactly the CRDs in `wanted`: (re)build resources for new or changed ones, drop the
/// rest, and publish a new resource snapshot when anything changed.
async fn apply(server: &Arc<ApiServer>, wanted: HashMap<String, Value>) {
    let mut changed = false;
    let current: HashMap<String, Value> = {
        let state = server.crds.lock().unwrap_or_else(|e| e.into_inner());
        state.served.iter().map(|(k, v)| (k.clone(), v.spec.clone())).collect()
    };
    for name in current.keys() {
        if !wanted.contains_key(name) {
            let gone = server.crds.lock().unwrap_or_else(|e| e.into_inner()).served.remove(name);
            if let Some(gone) = gone
                && let Some(first) = gone.resources.first()
            {
                server.cache.remove_storage(&crate::storage_name(&first.info));
            }
            changed = true;
        }
    }
    for (name, crd) in wanted {
        let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
        match current.get(&name) {
            Some(s) if *s == spec => continue,
            // The spec changed: rebuild the storage too (its field-selector attributes may
            // differ); its watchers relist.
            Some(_) => {
                let old = server.crds.lock().unwrap_or_else(|e| e.into_inner()).served.remove(&name);
                if let Some(first) = old.as_ref().and_then(|o| o.resources.first()) {
                    server.cache.remove_storage(&crate::storage_name(&first.info));
                }
            }
            None => {}
        }
        let resources = match skiff_api::crd::resources(&crd) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(crd = %name, error = %e, "cannot serve custom resource definition");
                continue;
            }
        };
        let storage_version = skiff_api::crd::storage_version(&crd).unwrap_or_default();
        let mut resources: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        resources.sort_by_key(|r| r.info.version != storage_version);
        if let Some(first) = resources.first() {
            let strategy = first.strategy.clone();
            server
                .cache
                .add_storage(
                    &crate::storage_name(&first.info),
                    // Selectable fields may be any path of the object: parse it whole.
                    crate::watch_cache::FieldFn::new(skiff_api::selector::Keep::everything(), move |v: &Value| {
                        strategy.field_attributes(v).unwrap_or_else(|| skiff_api::selector::field_attributes("", "", v))
                    }),
                )
                .await;
        }
        server.crds.lock().unwrap_or_else(|e| e.into_inner()).served.insert(name, Served { spec, resources, crd });
        changed = true;
    }
    if changed {
        server.rebuild_resources();
    }
}
