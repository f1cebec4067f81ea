//! Serving `/openapi/v3`: the root lists each group-version with a content hash, and each
//! document is generated once (on first request, off the async threads) and cached as bytes.
//! kubectl fetches these for client-side validation (`--validate=strict`) and `explain`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

#[derive(Default)]
pub(crate) struct OpenApi {
    docs: Mutex<HashMap<String, Bytes>>,
}

impl OpenApi {
    /// Forget cached documents (the resource set changed).
    pub(crate) fn invalidate(&self) {
        self.docs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A stable hash for a document: built-in documents are a pure function of the binary (so the
/// versions and the group-version identify them); custom resource documents also change with
/// the set of served CRDs.
fn doc_hash(server: &ApiServer, gv: &str) -> String {
    use sha2::Digest;
    let custom = if crd_entries(server, gv).is_empty() {
        0
    } else {
        server.resources_generation.load(std::sync::atomic::Ordering::Acquire)
    };
    let input = format!("{}|{}|{gv}|{custom}", crate::KUBERNETES_VERSION, server.config.skiff_version);
    hex::encode_upper(sha2::Sha256::digest(input.as_bytes()))
}

/// The served CRDs with a version in group-version path `gv`, as (CRD, version, info).
fn crd_entries(server: &ApiServer, gv: &str) -> Vec<(serde_json::Value, String, skiff_api::ResourceInfo)> {
    let state = server.crds.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for served in state.served.values() {
        for r in &served.resources {
            let path = format!("apis/{}/{}", r.info.group, r.info.version);
            if path == gv.trim_matches('/') {
                out.push((served.crd.clone(), r.info.version.to_string(), r.info.clone()));
            }
        }
    }
    out
}

pub(crate) fn root(server: &ApiServer) -> Response<Body> {
    let mut paths = serde_json::Map::new();
    for gv in skiff_api::openapi::group_versions(&server.resources().plain()) {
        let url = format!("/openapi/v3/{gv}?hash={}", doc_hash(server, &gv));
        paths.insert(gv, json!({"serverRelativeURL": url}));
    }
    crate::body::json(StatusCode::OK, &json!({"paths": paths}))
}

pub(crate) async fn document(server: &Arc<ApiServer>, gv: &str, hash: Option<&str>) -> ApiResult<Response<Body>> {
    let cached = server.openapi.docs.lock().unwrap_or_else(|e| e.into_inner()).get(gv).cloned();
    let bytes = match cached {
        Some(b) => b,
        None => {
            let s = server.clone();
            let key = gv.to_string();
            let custom = crd_entries(server, gv);
            let doc = tokio::task::spawn_blocking(move || {
                if custom.is_empty() {
                    skiff_api::openapi::document(&s.resources().plain(), &key)
                } else {
                    let served: Vec<(&serde_json::Value, &str, &skiff_api::ResourceInfo)> =
                        custom.iter().map(|(c, v, i)| (c, v.as_str(), i)).collect();
                    skiff_api::openapi::custom_resource_document(&served)
                }
            })
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("", "openapi", gv))?;
            let b = Bytes::from(doc);
            server.openapi.docs.lock().unwrap_or_else(|e| e.into_inner()).insert(gv.to_string(), b.clone());
            b
        }
    };
    let etag = doc_hash(server, gv);
    let mut r = crate::body::json_bytes(StatusCode::OK, bytes);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    let cache = if hash == Some(etag.as_str()) { "public, immutable" } else { "no-cache, private" };
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(r)
}
