//! Request handling: authentication, authorization, routing (one `match` over what the URL
//! names), content negotiation, and the verbs. Every error leaves through
//! [`crate::body::error_response`] as a `Status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use skiff_api::selector::{FieldSelector, LabelSelector};

use crate::auth::{Attributes, PeerCertificate, UserInfo, forbidden_message};
use crate::body::{self, Accept};
use crate::registry::{self, Ctx, DeleteOptions, FieldValidation, ListOptions, UpdateTarget, WriteOptions};
use crate::request::{NonResource, Query, ResourceRequest, Target, classify};
use crate::shallow::Shallow;
use crate::status::{ApiError, ApiResult};
use crate::table::{IncludeObject, TableOptions};
use crate::{ApiServer, KUBERNETES_VERSION, discovery, openapi, watch};

/// Serve one request.
pub(crate) async fn handle(server: &Arc<ApiServer>, req: Request<Body>) -> Response<Body> {
    let start = Instant::now();
    let (mut parts, body) = req.into_parts();
    // Kept for subresources proxied to a kubelet (exec, attach, port-forward upgrades).
    let pass = crate::proxy::Passthrough {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        upgrade: parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
    };
    let query = Query::parse(parts.uri.query());
    let watch_param = query.bool("watch").unwrap_or(false);
    let target = classify(&parts.method, parts.uri.path(), watch_param);
    let (verb, group, resource) = metric_labels(&parts.method, &target);
    let authz_header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let in_process = parts.extensions.get::<crate::client::InProcessUser>();
    let user = match in_process {
        Some(u) => Some(u.0.clone()),
        None => server.authn.authenticate(authz_header, parts.extensions.get::<PeerCertificate>()),
    };
    let in_process = in_process.is_some();
    let public = matches!(
        target,
        Target::NonResource(
            NonResource::Healthz
                | NonResource::Livez
                | NonResource::Readyz
                | NonResource::Version
                | NonResource::CaCerts
        )
    );
    let result = match (&user, public) {
        (None, false) => Err(ApiError::unauthorized()),
        _ => {
            let req = RouteRequest {
                method: &parts.method,
                path: parts.uri.path(),
                headers: &parts.headers,
                query: &query,
                in_process,
            };
            route(server, user.as_ref(), req, target, body, pass).await
        }
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.code.is_server_error() {
                tracing::warn!(path = %parts.uri.path(), error = %e, "request failed");
            }
            body::error_response(&e)
        }
    };
    server.metrics.observe_request(&verb, &group, &resource, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

fn metric_labels(method: &Method, target: &Target) -> (String, String, String) {
    match target {
        Target::Resource(r) => {
            let verb = match r.verb {
                "list" => "LIST",
                "watch" => "WATCH",
                "get" => "GET",
                "create" => "POST",
                "update" => "PUT",
                "patch" => "PATCH",
                "delete" => "DELETE",
                "deletecollection" => "DELETECOLLECTION",
                _ => "UNKNOWN",
            };
            let res = match &r.subresource {
                Some(s) => format!("{}/{s}", r.resource),
                None => r.resource.clone(),
            };
            (verb.to_string(), r.group.clone(), res)
        }
        _ => (method.as_str().to_string(), String::new(), String::new()),
    }
}

/// The parts of a request routing looks at.
struct RouteRequest<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    query: &'a Query,
    /// From a component of this process (see `client.rs`): its lists and watches leave out
    /// `metadata.managedFields`, which no component reads (upstream's scheduler and
    /// controllers drop them from their informers too, after decoding).
    in_process: bool,
}

async fn route(
    server: &Arc<ApiServer>,
    user: Option<&UserInfo>,
    req: RouteRequest<'_>,
    target: Target,
    body: Body,
    pass: crate::proxy::Passthrough,
) -> ApiResult<Response<Body>> {
    let RouteRequest { method, path, headers, query, in_process } = req;
    match target {
        Target::NonResource(nr) => {
            if let Some(u) = user {
                let attrs = Attributes {
                    verb: &method.as_str().to_ascii_lowercase(),
                    group: "",
                    resource: "",
                    subresource: None,
                    namespace: None,
                    name: None,
                    path: Some(path),
                };
                if !server.authz.allowed(u, &attrs) {
                    return Err(ApiError::forbidden(forbidden_message(u, &attrs)));
                }
            }
            if method != Method::GET && method != Method::HEAD {
                return Err(ApiError::method_not_allowed());
            }
            non_resource(server, nr, headers, query).await
        }
        Target::Resource(rr) => {
            let user = user.ok_or_else(ApiError::unauthorized)?;
            resource(server, user, rr, Reader { headers, query, in_process }, body, pass).await
        }
        Target::NotFound => Err(not_found_path()),
    }
}

fn not_found_path() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource")
        .with_empty_details()
}

trait EmptyDetails {
    fn with_empty_details(self) -> Self;
}
impl EmptyDetails for ApiError {
    fn with_empty_details(mut self) -> Self {
        self.details = Some(json!({}));
        self
    }
}

fn text(status: StatusCode, s: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::from(s.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn non_resource(
    server: &Arc<ApiServer>,
    nr: NonResource,
    headers: &HeaderMap,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let aggregated = discovery::wants_aggregated(accept);
    let json_ok = |v: Value| body::json(StatusCode::OK, &v);
    let aggregated_ok = |v: Value| {
        let mut r = body::json(StatusCode::OK, &v);
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_V2));
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        r
    };
    Ok(match nr {
        NonResource::Version => json_ok(version_info(server)),
        NonResource::Healthz | NonResource::Livez => text(StatusCode::OK, "ok"),
        NonResource::CaCerts if server.config.ca_cert_pem.is_empty() => return Err(not_found_path()),
        NonResource::CaCerts => text(StatusCode::OK, server.config.ca_cert_pem.clone()),
        NonResource::Readyz => {
            if server.is_ready() {
                text(StatusCode::OK, "ok")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "[-]bootstrap not finished\nreadyz check failed")
            }
        }
        NonResource::Metrics => {
            let mut r = text(StatusCode::OK, server.metrics.encode());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            r
        }
        NonResource::CoreVersions if aggregated => aggregated_ok(discovery::aggregated(server, true)),
        NonResource::CoreVersions => json_ok(discovery::api_versions(server)),
        NonResource::Groups if aggregated => aggregated_ok(discovery::aggregated(server, false)),
        NonResource::Groups => json_ok(discovery::api_group_list(server)),
        NonResource::Group(g) => json_ok(discovery::api_group(server, &g).ok_or_else(not_found_path)?),
        NonResource::GroupVersion(g, v) => {
            json_ok(discovery::api_resource_list(server, &g, &v).ok_or_else(not_found_path)?)
        }
        NonResource::OpenApiRoot => openapi::root(server),
        NonResource::OpenApiDoc(gv) => openapi::document(server, &gv, query.get("hash")).await?,
        NonResource::OpenApiV2 => {
            // client-go asks for protobuf only; browsers and scripts get JSON.
            let (json_doc, proto) = skiff_api::openapi::swagger(KUBERNETES_VERSION);
            let wants_proto = accept.is_some_and(|a| a.contains("application/com.github.proto-openapi.spec.v2"));
            let (bytes, content_type) = if wants_proto {
                (proto.as_slice(), skiff_api::openapi::V2_PROTOBUF)
            } else {
                (json_doc.as_slice(), "application/json")
            };
            let mut r = Response::new(Body::from(bytes::Bytes::from_static(bytes)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
            r
        }
    })
}

fn version_info(server: &ApiServer) -> Value {
    let v = KUBERNETES_VERSION.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("{KUBERNETES_VERSION}+skiff{}", server.config.skiff_version),
        "gitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("SKIFF_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

/// What a resource request's handler reads besides the route.
struct Reader<'a> {
    headers: &'a HeaderMap,
    query: &'a Query,
    in_process: bool,
}

async fn resource(
    server: &Arc<ApiServer>,
    user: &UserInfo,
    rr: ResourceRequest,
    reader: Reader<'_>,
    body: Body,
    pass: crate::proxy::Passthrough,
) -> ApiResult<Response<Body>> {
    let Reader { headers, query, in_process } = reader;
    let res = server.resources().find(&rr.group, &rr.version, &rr.resource).ok_or_else(not_found_path)?;
    let info = &res.info.clone();
    // Scope: namespaced resources live under /namespaces/<ns>/ (listing across namespaces is
    // allowed); cluster-scoped ones never do.
    if info.namespaced && rr.namespace.is_none() && !matches!(rr.verb, "list" | "watch") {
        return Err(not_found_path());
    }
    if !info.namespaced && rr.namespace.is_some() {
        return Err(not_found_path());
    }
    let attrs = Attributes {
        verb: rr.verb,
        group: &rr.group,
        resource: &rr.resource,
        subresource: rr.subresource.as_deref(),
        namespace: rr.namespace.as_deref(),
        name: rr.name.as_deref(),
        path: None,
    };
    if !server.authz.allowed(user, &attrs) {
        return Err(ApiError::forbidden(forbidden_message(user, &attrs))
            .with_details_of(info, rr.name.as_deref().unwrap_or("")));
    }
    if let Some(sub) = rr.subresource.as_deref()
        && info.subresource(sub).is_none()
        && !(sub == "finalize" && info.plural == "namespaces")
        && !crate::proxy::is_kubelet_subresource(info.group, info.plural, sub)
    {
        return Err(not_found_path());
    }
    let ctx = Ctx { server, res: res.clone(), namespace: rr.namespace.as_deref() };
    // Served by the node's kubelet (see `proxy`).
    match (info.group, info.plural, rr.subresource.as_deref(), rr.name.as_deref()) {
        ("", "pods", Some(sub @ ("log" | "exec" | "attach" | "portforward")), Some(name)) => {
            let verb_ok = if sub == "log" { rr.verb == "get" } else { matches!(rr.verb, "get" | "create") };
            if !verb_ok {
                return Err(ApiError::method_not_allowed());
            }
            return crate::proxy::pod(&ctx, name, sub, query, headers, pass).await;
        }
        ("", "nodes", Some("proxy"), Some(name)) => return crate::proxy::node(server, name, headers, pass, body).await,
        ("", "pods" | "services", Some("proxy"), Some(name)) => {
            return crate::proxy::backend::serve(&ctx, name, headers, pass, body).await;
        }
        _ => {}
    }
    let accept = body::negotiate(headers)?;
    if info.ephemeral {
        if rr.verb != "create" || rr.subresource.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let bytes = body::read_body(body, headers).await?;
        let obj = body::decode_object(&bytes, headers)?;
        let answer = crate::reviews::answer(server, user, info, obj)?;
        return Ok(body::json(StatusCode::CREATED, &answer));
    }
    let name = rr.name.as_deref().unwrap_or("");
    match (rr.verb, rr.subresource.as_deref()) {
        ("get", None | Some("status" | "approval")) => {
            let obj = registry::get(&ctx, name, query.get("resourceVersion")).await?;
            single_response(&ctx, StatusCode::OK, obj, accept, query, &[])
        }
        ("get", Some("scale")) => {
            let obj = registry::get(&ctx, name, query.get("resourceVersion")).await?;
            Ok(body::json(StatusCode::OK, &scale_get(&ctx.res, &parse(&obj)?)?))
        }
        ("list", None) => list(&ctx, accept, query, in_process).await,
        ("watch", None) => {
            let table = match accept {
                Accept::Table { v1beta1 } => Some(TableOptions {
                    include: IncludeObject::parse(query.get("includeObject"))?,
                    v1beta1,
                    no_headers: false,
                }),
                _ => None,
            };
            let mut field = parse_field_selector(query)?;
            if let Some(n) = rr.name.as_deref() {
                field = FieldSelector::parse(&format!("metadata.name={n}"))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            let params = watch::WatchParams {
                label: parse_label_selector(query)?,
                field,
                resource_version: query.get("resourceVersion").map(String::from),
                resource_version_match: query.nonempty("resourceVersionMatch").map(String::from),
                allow_bookmarks: query.bool("allowWatchBookmarks")?,
                send_initial_events: match query.get("sendInitialEvents") {
                    None => None,
                    Some(_) => Some(query.bool("sendInitialEvents")?),
                },
                timeout: query.int("timeoutSeconds")?.map(|s| Duration::from_secs(s.max(0) as u64)),
                table,
                metadata_only: accept == Accept::Metadata,
                omit_managed_fields: in_process,
            };
            watch::watch(&ctx, params).await
        }
        ("create", None) => {
            let bytes = body::read_body(body, headers).await?;
            let mut obj = body::decode_object(&bytes, headers)?;
            if ctx.info().group == "certificates.k8s.io" && ctx.info().plural == "certificatesigningrequests" {
                record_requester(&mut obj, user);
            }
            let opts = write_options(query, headers)?;
            let r = registry::create(&ctx, obj, &opts).await?;
            single_response(&ctx, StatusCode::CREATED, r.object, accept, query, &r.warnings)
        }
        ("create", Some("eviction")) => {
            let bytes = body::read_body(body, headers).await?;
            let eviction = body::decode_object(&bytes, headers)?;
            crate::eviction::evict(&ctx, name, eviction).await
        }
        ("create", Some("binding")) => {
            let bytes = body::read_body(body, headers).await?;
            let binding = body::decode_object(&bytes, headers)?;
            bind_pod(&ctx, name, binding, &write_options(query, headers)?).await
        }
        ("update", sub) => {
            let bytes = body::read_body(body, headers).await?;
            let obj = body::decode_object(&bytes, headers)?;
            let opts = write_options(query, headers)?;
            if sub == Some("scale") {
                return update_scale(&ctx, name, obj, &opts).await;
            }
            let target = UpdateTarget::for_subresource(info, sub)?;
            let r =
                registry::guaranteed_update(&ctx, name, target, &opts, &move |_cur: &Value| Ok(obj.clone())).await?;
            let status = if r.created { StatusCode::CREATED } else { StatusCode::OK };
            single_response(&ctx, status, r.object, accept, query, &r.warnings)
        }
        ("patch", sub) if body::media_type(headers) == "application/apply-patch+yaml" => {
            let bytes = body::read_body(body, headers).await?;
            if query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid_kind(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    &[skiff_api::FieldError::required(
                        &skiff_api::Path::new("fieldManager"),
                        "is required for apply patch",
                    )],
                ));
            }
            let opts = write_options(query, headers)?;
            let config =
                body::parse_yaml(&bytes).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            if !config.is_object() {
                return Err(ApiError::bad_request("the applied configuration must be an object"));
            }
            let r = registry::apply(&ctx, name, sub, config, query.bool("force")?, &opts).await?;
            let status = if r.created { StatusCode::CREATED } else { StatusCode::OK };
            single_response(&ctx, status, r.object, accept, query, &r.warnings)
        }
        ("patch", sub) => {
            let bytes = body::read_body(body, headers).await?;
            let opts = write_options(query, headers)?;
            if query.bool("force")? {
                return Err(ApiError::invalid_kind(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    &[skiff_api::FieldError::forbidden(
                        &skiff_api::Path::new("force"),
                        "may not be specified for non-apply patch",
                    )],
                ));
            }
            let kind = patch_kind(headers, &ctx.res)?;
            let patch: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if sub == Some("scale") {
                return patch_scale(&ctx, name, kind, patch, &opts).await;
            }
            let target = UpdateTarget::for_subresource(info, sub)?;
            let storage_kind = (info.group, info.version, info.kind);
            let r = registry::guaranteed_update(&ctx, name, target, &opts, &move |cur: &Value| {
                apply_patch(kind, cur, &patch, storage_kind)
            })
            .await?;
            single_response(&ctx, StatusCode::OK, r.object, accept, query, &r.warnings)
        }
        ("delete", None) => {
            let opts = delete_options(body, headers, query).await?;
            let r = registry::delete(&ctx, name, &opts).await?;
            if r.gone && !skiff_api::openapi::returns_deleted_object(info.group, info.plural) {
                let v = parse(&r.object)?;
                let details = json!({
                    "name": name,
                    "group": info.group,
                    "kind": info.plural,
                    "uid": v.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                });
                return Ok(body::json(StatusCode::OK, &crate::status::success_status(details)));
            }
            single_response(&ctx, StatusCode::OK, r.object, accept, query, &[])
        }
        ("deletecollection", None) => {
            let opts = delete_options(body, headers, query).await?;
            let lopts = list_options(query)?;
            let page = registry::list(&ctx, &lopts).await?;
            let mut deleted = Vec::new();
            for item in page.items {
                let v = parse(&item)?;
                let n = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                let ns = v.pointer("/metadata/namespace").and_then(Value::as_str).map(String::from);
                let ictx = Ctx { server, res: res.clone(), namespace: ns.as_deref().or(ctx.namespace) };
                match registry::delete(&ictx, &n, &opts).await {
                    Ok(r) => deleted.push(r.object),
                    Err(e) if e.reason == "NotFound" => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(body::json_bytes(
                StatusCode::OK,
                join_list(
                    info.list_kind,
                    &info.api_version(),
                    &list_meta(server.cache.revision(), None, None),
                    &deleted,
                ),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

trait DetailsOf {
    fn with_details_of(self, info: &skiff_api::ResourceInfo, name: &str) -> Self;
}
impl DetailsOf for ApiError {
    fn with_details_of(mut self, info: &skiff_api::ResourceInfo, name: &str) -> Self {
        let mut d = json!({"group": info.group, "kind": info.plural});
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        self.details = Some(d);
        self
    }
}

/// `DeleteOptions` from an optional body (JSON, YAML or protobuf) and the query.
async fn delete_options(body: Body, headers: &HeaderMap, query: &Query) -> ApiResult<DeleteOptions> {
    let bytes = body::read_body(body, headers).await?;
    let opts_body =
        if bytes.iter().all(u8::is_ascii_whitespace) { None } else { Some(body::decode_object(&bytes, headers)?) };
    DeleteOptions::from_parts(opts_body.as_ref(), query)
}

/// A CertificateSigningRequest records who asked for it (`spec.username`, `uid`, `groups`),
/// whatever the body claimed: approvers decide on it, as upstream's strategy does.
fn record_requester(csr: &mut Value, user: &UserInfo) {
    let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) else { return };
    spec.insert("username".into(), Value::String(user.name.clone()));
    spec.remove("uid");
    if !user.uid.is_empty() {
        spec.insert("uid".into(), Value::String(user.uid.clone()));
    }
    spec.insert("groups".into(), serde_json::json!(user.groups));
    spec.remove("extra");
}

fn parse(b: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(b).map_err(|e| ApiError::internal(format!("object does not decode: {e}")))
}

fn write_options(query: &Query, headers: &HeaderMap) -> ApiResult<WriteOptions> {
    Ok(WriteOptions {
        dry_run: query.dry_run()?,
        field_validation: FieldValidation::parse(query.get("fieldValidation"))?,
        field_manager: field_manager(query, headers)?,
    })
}

/// The field manager of a write: `fieldManager`, else the User-Agent's product (upstream's
/// `prefixFromUserAgent`), else `unknown`.
fn field_manager(query: &Query, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 {
            return Err(ApiError::invalid_kind(
                "meta.k8s.io",
                "PatchOptions",
                "",
                &[skiff_api::FieldError::too_long(&skiff_api::Path::new("fieldManager"), 128)],
            ));
        }
        if m.chars().any(|c| c.is_control()) {
            return Err(ApiError::invalid_kind(
                "meta.k8s.io",
                "PatchOptions",
                "",
                &[skiff_api::FieldError::invalid(
                    &skiff_api::Path::new("fieldManager"),
                    m,
                    "must only contain printable characters",
                )],
            ));
        }
        return Ok(m.to_string());
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let product = ua.split('/').next().unwrap_or_default().trim();
    Ok(if product.is_empty() { "unknown".to_string() } else { product.chars().take(128).collect() })
}

fn parse_label_selector(q: &Query) -> ApiResult<LabelSelector> {
    LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn parse_field_selector(q: &Query) -> ApiResult<FieldSelector> {
    FieldSelector::parse(q.get("fieldSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn list_options(q: &Query) -> ApiResult<ListOptions> {
    Ok(ListOptions {
        label: parse_label_selector(q)?,
        field: parse_field_selector(q)?,
        limit: q.int("limit")?.unwrap_or(0).max(0) as usize,
        continue_token: q.nonempty("continue").map(String::from),
        resource_version: q.get("resourceVersion").map(String::from),
        resource_version_match: q.nonempty("resourceVersionMatch").map(String::from),
    })
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let v = format!("299 - {:?}", w);
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().append("Warning", h);
        }
    }
    r
}

fn single_response(
    ctx: &Ctx<'_>,
    status: StatusCode,
    obj: Bytes,
    accept: Accept,
    query: &Query,
    warnings: &[String],
) -> ApiResult<Response<Body>> {
    let r = match accept {
        Accept::Table { v1beta1 } => {
            let opts =
                TableOptions { include: IncludeObject::parse(query.get("includeObject"))?, v1beta1, no_headers: false };
            let rv = parse(&obj)?.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
            let t = crate::table::render(&ctx.res, &[obj], json!({"resourceVersion": rv}), &opts)?;
            body::json(status, &t)
        }
        Accept::Metadata => body::json_bytes(status, crate::table::partial_metadata(&obj)),
        other => body::object_response(status, obj, other),
    };
    Ok(with_warnings(r, warnings))
}

/// A list's `metadata`: its revision, continue token and remaining count.
fn list_meta(rev: i64, cont: Option<&str>, remaining: Option<i64>) -> Value {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    meta
}

/// `{"kind":"PodList","apiVersion":"v1","metadata":{…},"items":[…]}` from ready item bytes.
fn join_list(kind: &str, api_version: &str, meta: &Value, items: &[Bytes]) -> Bytes {
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::String(kind.to_string()),
        Value::String(api_version.to_string()),
        meta
    );
    let len: usize = items.iter().map(|b| b.len() + 1).sum::<usize>() + head.len() + 2;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(head.as_bytes());
    for (i, b) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

async fn list(ctx: &Ctx<'_>, accept: Accept, query: &Query, omit_managed_fields: bool) -> ApiResult<Response<Body>> {
    let opts = list_options(query)?;
    let mut page = registry::list(ctx, &opts).await?;
    if omit_managed_fields {
        for item in &mut page.items {
            if let Some(trimmed) = crate::watch_cache::without_managed_fields(item) {
                *item = trimmed;
            }
        }
    }
    let info = ctx.info();
    match accept {
        Accept::Table { v1beta1 } => {
            let topts =
                TableOptions { include: IncludeObject::parse(query.get("includeObject"))?, v1beta1, no_headers: false };
            let meta = list_meta(page.revision, page.continue_token.as_deref(), page.remaining);
            let t = crate::table::render(&ctx.res, &page.items, meta, &topts)?;
            Ok(body::json(StatusCode::OK, &t))
        }
        Accept::Metadata => {
            let items: Vec<Bytes> = page.items.iter().map(|b| crate::table::partial_metadata(b)).collect();
            let meta = list_meta(page.revision, page.continue_token.as_deref(), page.remaining);
            Ok(body::json_bytes(
                StatusCode::OK,
                join_list("PartialObjectMetadataList", "meta.k8s.io/v1", &meta, &items),
            ))
        }
        other => {
            let meta = list_meta(page.revision, page.continue_token.as_deref(), page.remaining);
            let bytes = join_list(info.list_kind, &info.api_version(), &meta, &page.items);
            Ok(body::object_response(StatusCode::OK, bytes, other))
        }
    }
}

/// The four patch types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchKind {
    Json,
    Merge,
    Strategic,
}

fn patch_kind(headers: &HeaderMap, res: &skiff_api::Resource) -> ApiResult<PatchKind> {
    match body::media_type(headers).as_str() {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" if res.strategy.supports_strategic_merge_patch() => {
            Ok(PatchKind::Strategic)
        }
        // Custom resources have no patch strategies: upstream refuses with this 415, and
        // kubectl falls back to a merge patch (kubectl edit, apply).
        "application/strategic-merge-patch+json" => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )),
        "application/apply-patch+cbor" => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, \
             application/apply-patch+yaml",
        )),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json \
                 (got {other:?})"
            ),
        )),
    }
}

fn apply_patch(
    kind: PatchKind,
    cur: &Value,
    patch: &Value,
    (group, version, k): (&str, &str, &str),
) -> ApiResult<Value> {
    let result = match kind {
        PatchKind::Json => skiff_api::patch::json_patch(cur, patch),
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            skiff_api::patch::merge_patch(cur, patch)
        }
        PatchKind::Strategic => strategic(cur, patch, group, version, k),
    };
    // Upstream answers most strategic-merge failures with a bare 500; a malformed patch is the
    // client's fault, so it is a 422 here (400 and 413 where upstream uses them).
    let mut out = result.map_err(|e| match e.status_code() {
        400 => ApiError::bad_request(e.to_string()),
        413 => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", e.to_string()),
        _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string()),
    })?;
    // A patch may not change identity.
    if !out.is_object() {
        return Err(ApiError::bad_request("the patched object is not a JSON object"));
    }
    if out.pointer("/metadata/resourceVersion") == cur.pointer("/metadata/resourceVersion")
        && let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut)
    {
        // An unchanged resourceVersion is not a precondition: retry on conflicts. (No other
        // key moves: the stored form keeps its order.)
        m.shift_remove("resourceVersion");
    }
    Ok(out)
}

fn strategic(
    cur: &Value,
    patch: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, skiff_api::patch::PatchError> {
    let defs = skiff_api::openapi::definitions();
    let schema = skiff_api::Schema::root(defs, &registry::schema_name(group, version, kind))
        .unwrap_or_else(|| skiff_api::Schema::new(defs, &Value::Null));
    skiff_api::patch::strategic_merge_patch(cur, patch, schema)
}

/// `pods/<name>/binding`: assign a node, once.
async fn bind_pod(ctx: &Ctx<'_>, name: &str, binding: Value, opts: &WriteOptions) -> ApiResult<Response<Body>> {
    use skiff_api::{FieldError, Path};
    // Upstream's `ValidatePodBinding`, plus the annotations the binding adds to the pod: the pod
    // is not validated again (see `registry::system_update`), and a bad key stored now would fail
    // every later write of it.
    let mut errs = Vec::new();
    let target = Path::new("target");
    match binding.pointer("/target/kind").and_then(Value::as_str).unwrap_or_default() {
        "" | "Node" => {}
        other => errs.push(FieldError::not_supported(&target.child("kind"), other, &["Node", "<empty>"])),
    }
    let node = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or_default().to_string();
    if node.is_empty() {
        errs.push(FieldError::required(&target.child("name"), ""));
    }
    let annotations_path = Path::new("metadata").child("annotations");
    if let Some(Value::Object(a)) = binding.pointer("/metadata/annotations") {
        errs.extend(skiff_api::validation::validate_annotations(a, &annotations_path));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid_kind("", "Binding", name, &errs));
    }
    let bname = binding.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(name).to_string();
    if bname != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({bname}) does not match the name on the URL ({name})"
        )));
    }
    let annotations = binding.pointer("/metadata/annotations").cloned();
    let info = ctx.info();
    let pod_name = name.to_string();
    let now = registry::now_rfc3339();
    // One write sets the node and the PodScheduled condition, as upstream's binding REST does.
    registry::system_update(ctx, name, opts, &move |pod: &mut Shallow<'_>| {
        let stored = registry::stored_error;
        if pod.object("metadata").map_err(stored)?.is_some_and(|m| m.contains_key("deletionTimestamp")) {
            return Err(ApiError::conflict(
                info,
                &pod_name,
                &format!("pod {pod_name} is being deleted, cannot be assigned to a host"),
            ));
        }
        // The pod is stored as it is (see `registry::system_update`), so every key goes where the
        // typed encoding puts it: struct fields and map keys in sorted order.
        let spec = pod.object_or_insert("spec").map_err(stored)?;
        if let Some(existing) =
            spec.value("nodeName").map_err(stored)?.and_then(|v| v.as_str()).filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                info,
                &pod_name,
                &format!("pod {pod_name} is already assigned to node {existing:?}"),
            ));
        }
        spec.insert_sorted("nodeName", json!(node));
        if let Some(Value::Object(a)) = &annotations {
            let annotations =
                pod.object_or_insert("metadata").map_err(stored)?.map_or_insert("annotations").map_err(stored)?;
            for (k, v) in a {
                skiff_api::strategy::insert_sorted(annotations, k, v.clone());
            }
            // Together with the pod's own, they may not pass the total size limit.
            let errs = skiff_api::validation::validate_annotations(annotations, &annotations_path);
            if !errs.is_empty() {
                return Err(ApiError::invalid_kind("", "Binding", &pod_name, &errs));
            }
        }
        let status = pod.map_or_insert("status").map_err(stored)?;
        let mut conds = match status.get_mut("conditions") {
            Some(Value::Array(c)) => std::mem::take(c),
            _ => Vec::new(),
        };
        conds.retain(|c| c["type"] != "PodScheduled");
        // An unset lastProbeTime is left out, as the typed encoding leaves it out.
        conds.push(json!({"lastTransitionTime": now, "status": "True", "type": "PodScheduled"}));
        skiff_api::strategy::insert_sorted(status, "conditions", Value::Array(conds));
        Ok(())
    })
    .await?;
    Ok(body::json(StatusCode::CREATED, &crate::status::success_status(json!({}))))
}

/// The selector string a Scale reports.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    let mut parts = Vec::new();
    match sel {
        // ReplicationControllers have a plain map selector.
        Some(Value::Object(m)) if !m.contains_key("matchLabels") && !m.contains_key("matchExpressions") => {
            for (k, v) in m {
                parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
        Some(s) => {
            if let Some(Value::Object(ml)) = s.get("matchLabels") {
                for (k, v) in ml {
                    parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
                }
            }
            for e in s.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
                let key = e["key"].as_str().unwrap_or_default();
                let vals: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                match e["operator"].as_str().unwrap_or_default() {
                    "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                    "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                    "Exists" => parts.push(key.to_string()),
                    "DoesNotExist" => parts.push(format!("!{key}")),
                    _ => {}
                }
            }
        }
        None => {}
    }
    parts.sort();
    parts.join(",")
}

/// The `autoscaling/v1 Scale` of an object: custom resources read it at their CRD's paths.
fn scale_get(res: &skiff_api::Resource, obj: &Value) -> ApiResult<Value> {
    match res.strategy.scale_paths() {
        Some(paths) => skiff_api::crd::scale_of(obj, paths).map_err(|e| ApiError::internal(e.to_string())),
        None => Ok(scale_view(obj)),
    }
}

/// Set the desired replicas of an object through its scale subresource.
fn scale_set(res: &skiff_api::Resource, obj: &mut Value, replicas: i64) -> ApiResult<()> {
    match res.strategy.scale_paths() {
        Some(paths) => skiff_api::crd::set_replicas_at(obj, &paths.spec_replicas, replicas)
            .map_err(|e| ApiError::bad_request(e.to_string())),
        None => {
            obj["spec"]["replicas"] = json!(replicas);
            Ok(())
        }
    }
}

/// The `autoscaling/v1 Scale` view of a built-in scalable object.
fn scale_view(obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj),
        },
    })
}

fn replicas_from_scale(name: &str, scale: &Value) -> ApiResult<i64> {
    let r = scale.pointer("/spec/replicas");
    match r.and_then(Value::as_i64) {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(ApiError::invalid_kind(
            "autoscaling",
            "Scale",
            name,
            &[skiff_api::FieldError::invalid(
                &skiff_api::Path::new("spec").child("replicas"),
                n,
                "must be greater than or equal to 0",
            )],
        )),
        None if r.is_none() || r == Some(&Value::Null) => Ok(0),
        None => Err(ApiError::bad_request("spec.replicas must be an integer")),
    }
}

async fn update_scale(ctx: &Ctx<'_>, name: &str, scale: Value, opts: &WriteOptions) -> ApiResult<Response<Body>> {
    let replicas = replicas_from_scale(name, &scale)?;
    let rv = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from);
    let res = ctx.res.clone();
    let r = registry::guaranteed_update(ctx, name, UpdateTarget::Scale, opts, &move |cur: &Value| {
        let mut cur = cur.clone();
        scale_set(&res, &mut cur, replicas)?;
        match &rv {
            Some(v) if !v.is_empty() => cur["metadata"]["resourceVersion"] = json!(v),
            _ => {
                if let Some(m) = cur.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.shift_remove("resourceVersion");
                }
            }
        }
        Ok(cur)
    })
    .await?;
    Ok(body::json(StatusCode::OK, &scale_get(&ctx.res, &parse(&r.object)?)?))
}

async fn patch_scale(
    ctx: &Ctx<'_>,
    name: &str,
    kind: PatchKind,
    patch: Value,
    opts: &WriteOptions,
) -> ApiResult<Response<Body>> {
    let info = ctx.info().clone();
    let name_s = name.to_string();
    let res = ctx.res.clone();
    let r = registry::guaranteed_update(ctx, name, UpdateTarget::Scale, opts, &|cur: &Value| {
        let scale = scale_get(&res, cur)?;
        let patched = apply_patch(kind, &scale, &patch, ("autoscaling", "v1", "Scale"))?;
        let replicas = match patched.pointer("/spec/replicas").and_then(Value::as_i64) {
            Some(n) if n >= 0 => n,
            Some(n) => {
                return Err(ApiError::invalid_kind(
                    "autoscaling",
                    "Scale",
                    &name_s,
                    &[skiff_api::FieldError::invalid(
                        &skiff_api::Path::new("spec").child("replicas"),
                        n,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "{} {name_s:?}: spec.replicas must be an integer",
                    info.kind
                )));
            }
        };
        let mut cur = cur.clone();
        scale_set(&res, &mut cur, replicas)?;
        let want_rv = patched.pointer("/metadata/resourceVersion").cloned();
        if let Some(m) = cur.get_mut("metadata").and_then(Value::as_object_mut) {
            match want_rv {
                Some(v) => {
                    m.insert("resourceVersion".into(), v);
                }
                None => {
                    m.shift_remove("resourceVersion");
                }
            }
        }
        Ok(cur)
    })
    .await?;
    Ok(body::json(StatusCode::OK, &scale_get(&ctx.res, &parse(&r.object)?)?))
}
