//! Namespace deletion: when a namespace is marked for deletion (phase Terminating), delete
//! every namespaced object in it, and once nothing is left remove the `kubernetes` finalizer
//! through `namespaces/<n>/finalize`, which lets the namespace go.
//!
//! This is upstream's namespace controller reduced to what `kubectl delete namespace` needs. It
//! runs inside the API server for now and writes through the same registry code as any client;
//! the controller-manager issue moves it into the controllers crate as a kube-rs client.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::ApiServer;
use crate::registry::{self, Ctx, DeleteOptions, UpdateTarget, WriteOptions, prefix_for};
use crate::status::ApiResult;
use crate::watch_cache::WatchFrom;

pub(crate) fn spawn(server: Arc<ApiServer>) {
    tokio::spawn(async move {
        let Some(nsres) = server.resources().find("", "v1", "namespaces") else { return };
        let storage = crate::storage_name(&nsres.info);
        let Ok(mut sub) = server.cache.subscribe(&storage, "", WatchFrom::Now { initial_events: false }) else {
            return;
        };
        loop {
            let pending = match sweep(&server).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "namespace deletion pass failed");
                    true
                }
            };
            let wait = if pending { Duration::from_millis(500) } else { Duration::from_secs(30) };
            tokio::select! {
                _ = server.shutdown.cancelled() => return,
                _ = sub.rx.recv() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// One pass over terminating namespaces; true while some are still waiting for content to go.
async fn sweep(server: &Arc<ApiServer>) -> ApiResult<bool> {
    let Some(nsres) = server.resources().find("", "v1", "namespaces") else { return Ok(false) };
    let storage = crate::storage_name(&nsres.info);
    let (objs, _, _) = server.cache.list(&storage, &prefix_for(&nsres.info, None), None, 0, &|_| true);
    let mut pending = false;
    for o in objs {
        let v = o.value();
        if v.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let has_finalizer = v
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == "kubernetes"));
        if !has_finalizer {
            continue;
        }
        if empty_namespace(server, &o.name).await? {
            let ctx = Ctx { server, res: nsres.clone(), namespace: None };
            registry::guaranteed_update(
                &ctx,
                &o.name,
                UpdateTarget::Finalize,
                &WriteOptions::default(),
                &|cur: &Value| {
                    let mut cur = registry::editable(cur);
                    if let Some(Value::Array(f)) = cur.pointer_mut("/spec/finalizers") {
                        f.retain(|x| x != "kubernetes");
                    }
                    Ok(cur)
                },
            )
            .await?;
        } else {
            pending = true;
        }
    }
    Ok(pending)
}

/// Delete what is left in `ns`; true when nothing is left.
async fn empty_namespace(server: &Arc<ApiServer>, ns: &str) -> ApiResult<bool> {
    let mut remaining = 0;
    for (storage, res) in server.resources().storages() {
        if !res.info.namespaced {
            continue;
        }
        let (objs, _, _) = server.cache.list(&storage, &prefix_for(&res.info, Some(ns)), None, 0, &|_| true);
        let ctx = Ctx { server, res: res.clone(), namespace: Some(ns) };
        for o in objs {
            remaining += 1;
            let deleting = o.value().pointer("/metadata/deletionTimestamp").is_some();
            if !deleting {
                match registry::delete(&ctx, &o.name, &DeleteOptions::default()).await {
                    Ok(_) => {}
                    Err(e) if e.reason == "NotFound" => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(remaining == 0)
}
