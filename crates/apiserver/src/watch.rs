//! The watch handler: a chunked stream of `{"type":…,"object":…}` lines served from the watch
//! cache, with selector transitions (an object that stops matching is `DELETED` for this
//! watcher), bookmarks, `sendInitialEvents`, `timeoutSeconds`, and a 410 `ERROR` event when the
//! requested history is gone — the exact shape kube-rs's watcher relies on to relist.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use skiff_api::ResourceInfo;
use skiff_api::selector::{FieldSelector, LabelSelector};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::ApiServer;
use crate::registry::Ctx;
use crate::status::{ApiError, ApiResult};
use crate::table::TableOptions;
use crate::watch_cache::{
    CacheEvent, CachedObject, CatchUp, EventKind, Subscription, WatchFrom, WatchStartError, encode_event_line,
};

/// Parsed watch parameters.
pub(crate) struct WatchParams {
    pub label: LabelSelector,
    pub field: FieldSelector,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout: Option<Duration>,
    /// Set when the client asked for a Table.
    pub table: Option<TableOptions>,
    /// Set when the client asked for `PartialObjectMetadata` (metadata-only informers).
    pub metadata_only: bool,
    /// Leave `metadata.managedFields` out of every object (in-process watchers).
    pub omit_managed_fields: bool,
}

/// How often an idle watch gets a bookmark (kube-rs treats ~295 s of silence as dead).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

fn matches(p: &WatchParams, o: &CachedObject) -> bool {
    p.label.matches(&o.labels) && p.field.matches(&o.fields)
}

/// Replace `metadata.resourceVersion` in encoded object bytes.
fn with_rv(bytes: &[u8], rv: i64) -> Bytes {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("resourceVersion".into(), Value::String(rv.to_string()));
            }
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        Err(_) => Bytes::copy_from_slice(bytes),
    }
}

/// Start a watch.
pub(crate) async fn watch(ctx: &Ctx<'_>, params: WatchParams) -> ApiResult<Response<Body>> {
    for f in params.field.fields() {
        if !crate::registry::supports_field(&ctx.res, f) {
            return Err(ApiError::bad_request(format!("field label not supported: {f}")));
        }
    }
    let server = ctx.server.clone();
    let rv = params.resource_version.as_deref().filter(|v| !v.is_empty());
    let initial_events_end;
    let from = match params.send_initial_events {
        Some(true) => {
            if params.resource_version_match.as_deref() != Some("NotOlderThan") {
                return Err(ApiError::invalid_kind(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    &[skiff_api::FieldError::forbidden(
                        &skiff_api::Path::new("sendInitialEvents"),
                        "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
                    )],
                ));
            }
            if !params.allow_bookmarks {
                return Err(ApiError::invalid_kind(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    &[skiff_api::FieldError::forbidden(
                        &skiff_api::Path::new("allowWatchBookmarks"),
                        "allowWatchBookmarks must be set to true when sendInitialEvents is true",
                    )],
                ));
            }
            match rv {
                None => {
                    server.cache.sync().await?;
                }
                Some("0") => {}
                Some(v) => wait_for_rv(&server, v).await?,
            }
            initial_events_end = true;
            WatchFrom::Now { initial_events: true }
        }
        Some(false) => {
            initial_events_end = false;
            match rv {
                None | Some("0") => WatchFrom::Now { initial_events: false },
                Some(v) => WatchFrom::After(parse_rv(v)?),
            }
        }
        None => {
            initial_events_end = false;
            match rv {
                None => {
                    server.cache.sync().await?;
                    WatchFrom::Now { initial_events: true }
                }
                Some("0") => WatchFrom::Now { initial_events: true },
                Some(v) => {
                    let want = parse_rv(v)?;
                    if !server.cache.wait_for(want, Duration::from_secs(3)).await {
                        return Err(ApiError::timeout(format!(
                            "Too large resource version: {want}, current: {}",
                            server.cache.revision()
                        )));
                    }
                    WatchFrom::After(want)
                }
            }
        }
    };
    let storage = ctx.storage_name();
    let prefix = ctx.prefix();
    let params = WatchParams { field: crate::registry::storage_field_selector(ctx.info(), &params.field), ..params };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    match server.cache.subscribe(&storage, &prefix, from) {
        Ok(sub) => {
            let info = ctx.info().clone();
            let res = ctx.res.clone();
            let timeout = params.timeout.unwrap_or_else(default_timeout);
            let gauge = server.metrics.watch_gauge(info.group, info.plural);
            gauge.inc();
            tokio::spawn(async move {
                let w = Watcher {
                    server: server.clone(),
                    res,
                    info,
                    params,
                    prefix,
                    tx,
                    last_sent: 0,
                    sent_headers: false,
                };
                w.run(sub, from, initial_events_end, timeout).await;
                gauge.dec();
            });
        }
        Err(WatchStartError::TooOld { requested, oldest }) => {
            // The stream opens normally and carries one ERROR event: only that makes client-go
            // and kube-rs relist (an HTTP 410 would make them retry the same revision).
            let err = ApiError::expired(format!("too old resource version: {requested} ({oldest})"));
            let line = encode_event_line("ERROR", &serde_json::to_vec(&err.to_status()).unwrap_or_default());
            let _ = tx.send(line).await;
        }
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = Body::from_stream(futures::StreamExt::map(stream, Ok::<Bytes, std::convert::Infallible>));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

fn parse_rv(v: &str) -> ApiResult<i64> {
    v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))
}

async fn wait_for_rv(server: &ApiServer, v: &str) -> ApiResult<()> {
    let want = parse_rv(v)?;
    if server.cache.wait_for(want, Duration::from_secs(3)).await {
        Ok(())
    } else {
        Err(ApiError::timeout(format!("Too large resource version: {want}, current: {}", server.cache.revision())))
    }
}

/// Upstream spreads watch lifetimes over [30, 60) minutes so reconnects don't synchronise.
fn default_timeout() -> Duration {
    use rand::Rng;
    Duration::from_secs(1800 + rand::rng().random_range(0..1800))
}

struct Watcher {
    server: Arc<ApiServer>,
    res: Arc<skiff_api::Resource>,
    info: ResourceInfo,
    params: WatchParams,
    prefix: String,
    tx: mpsc::Sender<Bytes>,
    last_sent: i64,
    sent_headers: bool,
}

impl Watcher {
    async fn run(mut self, mut sub: Subscription, from: WatchFrom, initial_events_end: bool, timeout: Duration) {
        let initial = std::mem::take(&mut sub.initial);
        let snapshot = matches!(from, WatchFrom::Now { .. });
        if let WatchFrom::After(after) = from {
            self.last_sent = after;
        }
        let mut max_initial = sub.start_revision;
        for ev in &initial {
            max_initial = max_initial.max(ev.revision);
            if !self.send_event(ev, snapshot).await {
                return;
            }
        }
        // Initial ADDED events carry each object's own revision; later events must be newer
        // than everything the snapshot reflected.
        self.last_sent = self.last_sent.max(max_initial);
        if initial_events_end && !self.bookmark(max_initial, true).await {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = self.server.shutdown.cancelled() => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.params.allow_bookmarks => {
                    // Everything up to the watermark was broadcast before the watermark moved:
                    // drain what is queued, then the watermark is a safe bookmark.
                    let w = self.server.cache.revision();
                    loop {
                        match sub.rx.try_recv() {
                            Ok(ev) => if !self.send_event(&ev, false).await { return },
                            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                                if !self.catch_up(&sub).await { return }
                            }
                            Err(tokio::sync::broadcast::error::TryRecvError::Closed) => return,
                        }
                    }
                    if !self.bookmark(w.max(self.last_sent), false).await {
                        return;
                    }
                }
                ev = sub.rx.recv() => match ev {
                    Ok(ev) => {
                        if !self.send_event(&ev, false).await {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        if !self.catch_up(&sub).await {
                            return;
                        }
                    }
                    // The resource went away (a CRD was deleted): make the client relist.
                    Err(RecvError::Closed) => {
                        self.expired().await;
                        return;
                    }
                },
            }
            if self.server.cache.is_stale(&sub) {
                self.expired().await;
                return;
            }
        }
    }

    /// Resume from the event ring after the broadcast buffer overflowed.
    async fn catch_up(&mut self, sub: &Subscription) -> bool {
        match sub.catch_up(&self.server.cache, self.last_sent) {
            CatchUp::Events(evs) => {
                for ev in evs {
                    if !self.send_event(&ev, false).await {
                        return false;
                    }
                }
                true
            }
            CatchUp::Expired => {
                self.expired().await;
                false
            }
        }
    }

    async fn expired(&mut self) {
        let err = ApiError::expired("The resourceVersion for the provided watch is too old.");
        let line = encode_event_line("ERROR", &serde_json::to_vec(&err.to_status()).unwrap_or_default());
        let _ = self.tx.send(line).await;
    }

    async fn bookmark(&mut self, rv: i64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": meta});
        let line = encode_event_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default());
        self.tx.send(line).await.is_ok()
    }

    /// Filter and send one event; false when the client is gone. Events at or below the last
    /// revision sent are duplicates (ring replay overlapping the live feed) and skipped, except
    /// the snapshot's initial ADDED events, which carry older revisions by nature.
    async fn send_event(&mut self, ev: &Arc<CacheEvent>, snapshot: bool) -> bool {
        if !snapshot && ev.revision <= self.last_sent {
            return true;
        }
        if !ev.object.key.starts_with(&self.prefix) {
            return true;
        }
        let cur = matches(&self.params, &ev.object);
        let prev = ev.prev.as_ref().is_some_and(|p| matches(&self.params, p));
        let (kind, bytes) = match ev.kind {
            EventKind::Added if cur => (EventKind::Added, None),
            EventKind::Modified if cur && prev => (EventKind::Modified, None),
            EventKind::Modified if cur => (EventKind::Added, None),
            EventKind::Modified if prev => {
                let p = ev.prev.as_ref().map(|p| with_rv(&p.bytes, ev.revision));
                (EventKind::Deleted, p)
            }
            EventKind::Deleted if cur || prev => (EventKind::Deleted, None),
            _ => {
                self.last_sent = self.last_sent.max(ev.revision);
                return true;
            }
        };
        let line = self.encode(ev, kind, bytes);
        self.last_sent = self.last_sent.max(ev.revision);
        self.tx.send(line).await.is_ok()
    }

    fn encode(&mut self, ev: &CacheEvent, kind: EventKind, override_bytes: Option<Bytes>) -> Bytes {
        let storage = self.server.resources().storage_resource(&self.info);
        let same_version = storage.info.group == self.info.group && storage.info.version == self.info.version;
        if self.params.table.is_none() && !self.params.metadata_only && same_version && override_bytes.is_none() {
            return ev.line(kind, self.params.omit_managed_fields);
        }
        let raw = override_bytes.unwrap_or_else(|| ev.object.bytes.clone());
        let raw = match self.params.omit_managed_fields {
            true => crate::watch_cache::without_managed_fields(&raw).unwrap_or(raw),
            false => raw,
        };
        let obj = if same_version {
            raw
        } else {
            let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            Bytes::from(serde_json::to_vec(&crate::conversion::convert(v, &self.info)).unwrap_or_default())
        };
        if self.params.metadata_only {
            return encode_event_line(kind.as_str(), &crate::table::partial_metadata(&obj));
        }
        let Some(mut topts) = self.params.table else { return encode_event_line(kind.as_str(), &obj) };
        topts.no_headers = self.sent_headers;
        self.sent_headers = true;
        let rv = serde_json::from_slice::<Value>(&obj)
            .ok()
            .and_then(|v| v.pointer("/metadata/resourceVersion").cloned())
            .unwrap_or(Value::Null);
        match crate::table::render(&self.res, std::slice::from_ref(&obj), json!({"resourceVersion": rv}), &topts) {
            Ok(t) => encode_event_line(kind.as_str(), &serde_json::to_vec(&t).unwrap_or_default()),
            Err(_) => encode_event_line(kind.as_str(), &obj),
        }
    }
}
