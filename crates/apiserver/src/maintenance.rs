//! Store housekeeping that upstream gets from etcd and kube-apiserver flags:
//!
//! - **compaction** (`--etcd-compaction-interval`, 5 min): every interval, history older than
//!   the revision seen one interval ago is compacted, so the database stays small while
//!   watches and continued lists of the last few minutes keep working;
//! - **event TTL** (`--event-ttl`, 1 h): upstream attaches an etcd lease to every Event; here a
//!   sweep deletes Events whose last activity is older than the TTL.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::ApiServer;
use crate::registry::{self, Ctx, DeleteOptions, prefix_for};

pub(crate) fn spawn(server: Arc<ApiServer>) {
    let s = server.clone();
    tokio::spawn(async move { compactor(s).await });
    tokio::spawn(async move { event_gc(server).await });
}

async fn compactor(server: Arc<ApiServer>) {
    let every = server.config.compaction_interval;
    if every.is_zero() {
        return;
    }
    let mut previous: Option<i64> = None;
    loop {
        tokio::select! {
            _ = server.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Some(rev) = previous
            && rev > 0
        {
            match server.store.compact(rev).await {
                Ok(()) => tracing::debug!(revision = rev, "compacted the store"),
                // Someone (another API server) compacted further already.
                Err(skiff_store::Error::Compacted { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "store compaction failed"),
            }
        }
        previous = server.store.current_revision().await.ok();
    }
}

/// The last time an event was written to, as far as its fields tell.
fn last_activity(ev: &Value) -> Option<jiff::Timestamp> {
    ["/series/lastObservedTime", "/lastTimestamp", "/eventTime", "/metadata/creationTimestamp"]
        .iter()
        .filter_map(|p| ev.pointer(p)?.as_str()?.parse::<jiff::Timestamp>().ok())
        .max()
}

async fn event_gc(server: Arc<ApiServer>) {
    let ttl = server.config.event_ttl;
    if ttl.is_zero() {
        return;
    }
    let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = server.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = sweep_events(&server, ttl).await {
            tracing::warn!(error = %e, "expiring events failed");
        }
    }
}

/// Delete every Event idle for longer than `ttl`; returns how many went.
pub(crate) async fn sweep_events(server: &Arc<ApiServer>, ttl: Duration) -> Result<usize, crate::ApiError> {
    let Some(res) = server.resources().find("", "v1", "events") else { return Ok(0) };
    let storage = crate::storage_name(&res.info);
    let (objs, _, _) = server.cache.list(&storage, &prefix_for(&res.info, None), None, 0, &|_| true);
    let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
    let mut gone = 0;
    for o in objs {
        let v = o.value();
        if last_activity(&v).is_some_and(|t| t < cutoff) {
            let ctx = Ctx { server, res: res.clone(), namespace: Some(&o.namespace) };
            match registry::delete(&ctx, &o.name, &DeleteOptions::default()).await {
                Ok(_) => gone += 1,
                Err(e) if e.reason == "NotFound" => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_activity_takes_the_newest_time() {
        let ev = serde_json::json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": "2026-01-01T01:00:00Z", "series": {"lastObservedTime": "2026-01-01T02:00:00.000000Z"}});
        assert_eq!(last_activity(&ev).unwrap().to_string(), "2026-01-01T02:00:00Z");
        assert!(last_activity(&serde_json::json!({})).is_none());
    }
}
