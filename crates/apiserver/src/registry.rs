//! The generic REST store (upstream's `registry/generic/registry/store.go`): one implementation
//! of get, list, create, update, patch and delete for every resource. Per-resource behaviour
//! comes from the resource's strategy (`skiff-api`) and a few registry hooks here (Service IP
//! and NodePort allocation, namespace lifecycle, pod graceful deletion).
//!
//! Object metadata is owned here: uid, creationTimestamp, generation, resourceVersion (the
//! store's mod revision, never stored in the value), deletionTimestamp and finalizers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use skiff_api::apply::ManagedFieldsEntry;
use skiff_api::strategy::{Operation, StrategyError};
use skiff_api::{Resource, ResourceInfo};
use skiff_store::{KeyValue, RangeOptions, Revision};

use crate::conversion;
use crate::shallow::Shallow;
use crate::status::{ApiError, ApiResult};
use crate::watch_cache::{CachedObject, REGISTRY_PREFIX, inject_resource_version};
use crate::{ApiServer, allocator, storage_name};

/// How unknown or duplicate fields in a request are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub(crate) fn parse(v: Option<&str>) -> ApiResult<Self> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}; supported values: Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Options shared by writes.
#[derive(Clone, Debug)]
pub(crate) struct WriteOptions {
    pub(crate) dry_run: bool,
    pub(crate) field_validation: FieldValidation,
    /// Who writes (`fieldManager`, else derived from the User-Agent): recorded in
    /// `metadata.managedFields`.
    pub(crate) field_manager: String,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Strict,
            field_manager: "skiff-apiserver".into(),
        }
    }
}

/// How a write's `managedFields` come about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ownership {
    /// Record the write as an Update by the field manager.
    Record,
    /// The object already carries its final entries (server-side apply computed them).
    Given,
}

static NO_DEFINITIONS: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// The OpenAPI component name of a built-in kind (`io.k8s.api.apps.v1.Deployment`).
pub(crate) fn schema_name(group: &str, version: &str, kind: &str) -> String {
    match group {
        "apiextensions.k8s.io" => format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}"),
        "" => format!("io.k8s.api.core.{version}.{kind}"),
        g => format!("io.k8s.api.{}.{version}.{kind}", g.split('.').next().unwrap_or(g)),
    }
}

/// The schema objects of `res` are typed with for field ownership (and patches).
pub(crate) fn schema_of(res: &Resource) -> skiff_api::Schema<'_> {
    if let Some(s) = res.strategy.openapi_schema() {
        return skiff_api::Schema::new(&NO_DEFINITIONS, s);
    }
    let defs = skiff_api::openapi::definitions();
    skiff_api::Schema::root(defs, &schema_name(res.info.group, res.info.version, res.info.kind))
        .unwrap_or_else(|| skiff_api::Schema::new(defs, &Value::Null))
}

/// The field manager for writes to `res` through `subresource`: a main resource with a status
/// subresource never hands out ownership of `status`, and `/status` never of `spec`.
fn field_manager<'r>(res: &'r Resource, subresource: Option<&str>) -> skiff_api::apply::FieldManager<'r> {
    use skiff_api::fieldpath::{FieldSet, Path as FieldPath};
    let mut fm = skiff_api::apply::FieldManager::new(schema_of(res), &res.info.api_version());
    let mut reset = FieldSet::new();
    match subresource {
        Some("status") => {
            reset.insert(&FieldPath::fields(["spec"]).0);
            fm = fm.with_subresource("status");
        }
        Some(sub) => fm = fm.with_subresource(sub),
        None if res.info.subresource("status").is_some() => {
            reset.insert(&FieldPath::fields(["status"]).0);
        }
        None => {}
    }
    fm.with_reset_fields(reset)
}

fn subresource_of(target: UpdateTarget) -> Option<&'static str> {
    match target {
        UpdateTarget::Status => Some("status"),
        UpdateTarget::Scale => Some("scale"),
        UpdateTarget::Approval => Some("approval"),
        UpdateTarget::Main | UpdateTarget::Finalize => None,
    }
}

/// A successful write.
#[derive(Debug)]
pub(crate) struct WriteResult {
    /// The object as the client should see it (request version, resourceVersion set).
    pub object: Bytes,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// The resource a request addresses and where.
pub(crate) struct Ctx<'a> {
    pub server: &'a Arc<ApiServer>,
    pub res: Arc<Resource>,
    pub namespace: Option<&'a str>,
}

impl Ctx<'_> {
    pub(crate) fn info(&self) -> &ResourceInfo {
        &self.res.info
    }

    fn storage(&self) -> Arc<Resource> {
        self.server.resources().storage_resource(&self.res.info)
    }

    pub(crate) fn storage_name(&self) -> String {
        storage_name(&self.res.info)
    }

    pub(crate) fn key(&self, name: &str) -> String {
        key_for(&self.res.info, self.namespace, name)
    }

    /// Key prefix of the collection (all namespaces when `namespace` is None).
    pub(crate) fn prefix(&self) -> String {
        prefix_for(&self.res.info, self.namespace)
    }
}

pub(crate) fn key_for(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    match (info.namespaced, namespace) {
        (true, Some(ns)) => format!("{REGISTRY_PREFIX}{}/{ns}/{name}", storage_name(info)),
        _ => format!("{REGISTRY_PREFIX}{}/{name}", storage_name(info)),
    }
}

pub(crate) fn prefix_for(info: &ResourceInfo, namespace: Option<&str>) -> String {
    match (info.namespaced, namespace) {
        (true, Some(ns)) => format!("{REGISTRY_PREFIX}{}/{ns}/", storage_name(info)),
        _ => format!("{REGISTRY_PREFIX}{}/", storage_name(info)),
    }
}

/// `2026-01-02T03:04:05Z`: Kubernetes timestamps have second precision.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("metadata was just made an object")
}

fn meta_str<'v>(obj: &'v Value, field: &str) -> Option<&'v str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Parse a cached/stored object's bytes.
fn parse(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(stored_error)
}

/// Canonical bytes to store: no resourceVersion, `apiVersion`, `kind`, `metadata` first.
/// `managed`: the object's managed fields as the field manager just recorded them, written as
/// `metadata.managedFields` in place of what `obj` holds there (see [`StoredForm`]).
fn encode_for_store(obj: &Value, managed: Option<&[ManagedFieldsEntry]>) -> ApiResult<Bytes> {
    let src = obj.as_object().ok_or_else(|| ApiError::internal("object is not a JSON object"))?;
    store_bytes(serde_json::to_vec(&StoredForm(src, managed)).map_err(ApiError::internal)?)
}

/// An encoded object, if it is not too large to store.
fn store_bytes(bytes: Vec<u8>) -> ApiResult<Bytes> {
    if bytes.len() > crate::body::MAX_OBJECT_SIZE {
        return Err(ApiError::too_large(crate::body::MAX_OBJECT_SIZE));
    }
    Ok(Bytes::from(bytes))
}

/// An object as the store keeps it, serialized without copying it: `apiVersion`, `kind` and
/// `metadata` first (where the watch cache splices the resourceVersion in), metadata without
/// `resourceVersion` and `selfLink`, then the other fields in their order.
///
/// With managed fields given, the bytes are those of the object after
/// [`skiff_api::apply::set_managed_fields`]: the entries are serialized where it would have put
/// them, straight from the field sets. Building their JSON tree first (a map per field path)
/// cost more than the rest of the encoding of a pod.
struct StoredForm<'a>(&'a Map<String, Value>, Option<&'a [ManagedFieldsEntry]>);

impl serde::Serialize for StoredForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(None)?;
        for k in ["apiVersion", "kind"] {
            if let Some(v) = self.0.get(k) {
                out.serialize_entry(k, v)?;
            }
        }
        let no_meta = Map::new();
        match (self.0.get("metadata"), self.1) {
            (Some(Value::Object(m)), managed) => out.serialize_entry("metadata", &Metadata(m, managed))?,
            (Some(other), None) => out.serialize_entry("metadata", other)?,
            // `set_managed_fields` makes metadata an object to hold entries, but does not touch
            // it to remove none.
            (Some(other), Some([])) => out.serialize_entry("metadata", other)?,
            (_, Some(managed @ [_, ..])) => out.serialize_entry("metadata", &Metadata(&no_meta, Some(managed)))?,
            (None, _) => {}
        }
        for (k, v) in self.0 {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
}

struct Metadata<'a>(&'a Map<String, Value>, Option<&'a [ManagedFieldsEntry]>);

impl serde::Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const KEY: &str = "managedFields";
        let mut out = s.serialize_map(None)?;
        // Where `set_managed_fields` puts the entries: in place of the field if there is one,
        // else before the first key that sorts after it (`insert_sorted`), else last. No
        // entries: no field.
        let mut pending = self.1.filter(|m| !m.is_empty());
        let replace = self.1.is_some();
        let has_key = replace && self.0.contains_key(KEY);
        for (k, v) in self.0 {
            if replace
                && !has_key
                && k.as_str() > KEY
                && let Some(m) = pending.take()
            {
                out.serialize_entry(KEY, &skiff_api::apply::managed_fields_json(m))?;
            }
            match k.as_str() {
                "resourceVersion" | "selfLink" => {}
                KEY if replace => {
                    if let Some(m) = pending.take() {
                        out.serialize_entry(KEY, &skiff_api::apply::managed_fields_json(m))?;
                    }
                }
                _ => out.serialize_entry(k, v)?,
            }
        }
        if let Some(m) = pending {
            out.serialize_entry(KEY, &skiff_api::apply::managed_fields_json(m))?;
        }
        out.end()
    }
}

/// Whether `target` is served in the version its objects are stored in (no conversion).
fn served_as_stored(server: &ApiServer, target: &ResourceInfo) -> bool {
    let storage = server.resources().storage_resource(target);
    storage.info.version == target.version && storage.info.group == target.group
}

/// The object as a client of `target` sees it.
fn present(server: &ApiServer, target: &ResourceInfo, stored_with_rv: Bytes) -> Bytes {
    if served_as_stored(server, target) {
        return stored_with_rv;
    }
    match serde_json::from_slice::<Value>(&stored_with_rv) {
        Ok(v) => Bytes::from(serde_json::to_vec(&conversion::convert(v, target)).unwrap_or_default()),
        Err(_) => stored_with_rv,
    }
}

/// [`present`] for an object just written, whose stored bytes and parsed form are both at
/// hand: a conversion to another version starts from the parsed form instead of parsing the
/// bytes again. The resourceVersion goes where [`inject_resource_version`] puts it.
fn present_written(
    server: &ApiServer,
    target: &ResourceInfo,
    mut obj: Value,
    managed: Option<&[ManagedFieldsEntry]>,
    stored: &[u8],
    rev: Revision,
) -> Bytes {
    if served_as_stored(server, target) {
        return inject_resource_version(stored, rev);
    }
    // The stored bytes hold them (see `StoredForm`); the parsed form does not yet.
    if let Some(entries) = managed {
        skiff_api::apply::set_managed_fields(&mut obj, entries);
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("resourceVersion");
        m.shift_insert(0, "resourceVersion".into(), Value::String(rev.to_string()));
    }
    Bytes::from(serde_json::to_vec(&conversion::convert(obj, target)).unwrap_or_default())
}

/// Present a cached object.
pub(crate) fn present_cached(server: &ApiServer, target: &ResourceInfo, obj: &CachedObject) -> Bytes {
    present(server, target, obj.bytes.clone())
}

fn check_type_meta(info: &ResourceInfo, obj: &mut Value, expected_kind: &str) -> ApiResult<()> {
    let want_api = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            obj["apiVersion"] = Value::String(want_api.clone());
        }
        Some(v) if v == want_api => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want_api})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = Value::String(expected_kind.to_string()),
        Some(k) if k == expected_kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({expected_kind})"
            )));
        }
    }
    Ok(())
}

/// Reconcile `metadata.namespace` of a body with the request's namespace.
fn check_namespace(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    let body_ns = meta_str(obj, "namespace").unwrap_or("").to_string();
    if ctx.info().namespaced {
        let ns = ctx.namespace.ok_or_else(|| ApiError::bad_request("the namespace must be given in the URL"))?;
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(obj).insert("namespace".into(), Value::String(ns.to_string()));
    } else if !body_ns.is_empty() {
        // Upstream silently clears the namespace of cluster-scoped objects.
        meta_mut(obj).remove("namespace");
    }
    Ok(())
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let prefix: String = prefix.chars().take(58).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..5).map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char).collect();
    format!("{prefix}{suffix}")
}

/// Errors from a strategy, as API errors for this object.
fn strategy_error(info: &ResourceInfo, name: &str, e: StrategyError) -> ApiError {
    match e {
        StrategyError::Invalid(errs) => ApiError::invalid(info, name, &errs),
        StrategyError::Decode(msg) => ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {msg}",
            info.kind, info.version, info.kind
        )),
    }
}

/// Apply `fieldValidation` to the unknown fields found while decoding.
fn field_validation(
    info: &ResourceInfo,
    fv: FieldValidation,
    unknown: Vec<String>,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    if unknown.is_empty() || fv == FieldValidation::Ignore {
        return Ok(());
    }
    let msgs: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
    if fv == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
            info.kind,
            info.version,
            info.kind,
            msgs.join(", ")
        )));
    }
    warnings.extend(msgs);
    Ok(())
}

/// Run the strategy for the storage version of `ctx`'s resource.
fn admit(
    ctx: &Ctx<'_>,
    obj: Value,
    op: Operation<'_>,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    let mut unknown = Vec::new();
    let admitted =
        ctx.storage().strategy.admit(obj, op, &mut unknown).map_err(|e| strategy_error(ctx.info(), &name, e))?;
    field_validation(ctx.info(), opts.field_validation, unknown, warnings)?;
    warnings.extend(admitted.warnings);
    Ok(admitted.object)
}

/// Whether namespace `ns` exists, and whether it is being deleted: `None`, or `Some(terminating)`.
async fn namespace_state(server: &Arc<ApiServer>, ns: &str) -> ApiResult<Option<bool>> {
    /// The part of a Namespace read here; decoding only it skips building the whole object's
    /// tree on every create.
    #[derive(serde::Deserialize)]
    struct Namespace {
        #[serde(default)]
        metadata: Meta,
    }
    #[derive(Default, serde::Deserialize)]
    struct Meta {
        #[serde(rename = "deletionTimestamp", default)]
        deletion_timestamp: Option<serde::de::IgnoredAny>,
    }
    let nsres = server
        .resources()
        .find("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
    let key = key_for(&nsres.info, None, ns);
    let terminating = |bytes: &[u8]| -> ApiResult<bool> {
        let n: Namespace = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::internal(format!("decoding stored namespace {ns}: {e}")))?;
        Ok(n.metadata.deletion_timestamp.is_some())
    };
    // The cache answers nearly always (upstream's namespace lifecycle admission uses an informer
    // too); a namespace created a moment ago may not be there yet, so a miss asks the store.
    if let Some(o) = server.cache.get(&storage_name(&nsres.info), &key) {
        return terminating(&o.bytes).map(Some);
    }
    match server.store.get(&key).await? {
        Some(kv) => terminating(&kv.value).map(Some),
        None => Ok(None),
    }
}

/// Create an object (POST). `obj` is the decoded body in the request's version.
pub(crate) async fn create(ctx: &Ctx<'_>, mut obj: Value, opts: &WriteOptions) -> ApiResult<WriteResult> {
    check_type_meta(ctx.info(), &mut obj, ctx.info().kind)?;
    check_namespace(ctx, &mut obj)?;
    if let Some(ns) = ctx.namespace.filter(|_| ctx.info().namespaced) {
        match namespace_state(ctx.server, ns).await? {
            None => return Err(ApiError::not_found("", "namespaces", ns)),
            Some(true) => {
                let name = meta_str(&obj, "name").unwrap_or_default();
                return Err(ApiError::forbidden(format!(
                    "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    ctx.info().qualified_resource()
                ))
                .with_forbidden_details(ctx.info(), name));
            }
            Some(false) => {}
        }
    }
    let generate = meta_str(&obj, "generateName").filter(|g| !g.is_empty()).map(String::from);
    let explicit_name = meta_str(&obj, "name").filter(|n| !n.is_empty()).map(String::from);
    {
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        for k in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
            m.remove(k);
        }
        if ctx.info().tracks_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    if !served_as_stored(ctx.server, ctx.info()) {
        obj = conversion::convert(obj, &ctx.storage().info);
    }
    // A generated name that collides is retried, as upstream does since 1.30.
    let Some(generate) = generate.filter(|_| explicit_name.is_none()) else {
        return create_once(ctx, obj, opts, Ownership::Record).await;
    };
    let mut last_err = None;
    for _ in 0..8 {
        let mut candidate = obj.clone();
        meta_mut(&mut candidate).insert("name".into(), Value::String(generate_name(&generate)));
        match create_once(ctx, candidate, opts, Ownership::Record).await {
            Err(e) if e.reason == "AlreadyExists" => last_err = Some(e),
            other => return other,
        }
    }
    Err(last_err.unwrap_or_else(|| ApiError::internal("name generation failed")))
}

async fn create_once(ctx: &Ctx<'_>, obj: Value, opts: &WriteOptions, ownership: Ownership) -> ApiResult<WriteResult> {
    let mut warnings = Vec::new();
    let is_pod = ctx.info().group.is_empty() && ctx.info().plural == "pods";
    let mut obj = obj;
    if is_pod {
        crate::admission::limit_ranges(ctx, &mut obj).await?;
    }
    let mut obj = admit(ctx, obj, Operation::Create, opts, &mut warnings)?;
    crate::admission::resource_quota(ctx, &obj, opts.dry_run).await?;
    // Written with the object's bytes (see `StoredForm`), not into `obj`.
    let managed = (ownership == Ownership::Record).then(|| {
        let storage = ctx.storage();
        let managers = skiff_api::apply::managers_for_update(None, &obj, None);
        field_manager(&storage, None).update(None, &obj, managers, &opts.field_manager, &now_rfc3339())
    });
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    let key = ctx.key(&name);
    let allocation = allocator::before_create(ctx, &mut obj, opts.dry_run).await?;
    let bytes = match encode_for_store(&obj, managed.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            allocation.release(ctx.server).await;
            return Err(e);
        }
    };
    if opts.dry_run {
        if ctx.server.store.get(&key).await?.is_some() {
            return Err(ApiError::already_exists(ctx.info(), &name));
        }
        // Dry-run objects have no resourceVersion: stored bytes never carry one.
        return Ok(WriteResult { object: present(ctx.server, ctx.info(), bytes), created: true, warnings });
    }
    let start = std::time::Instant::now();
    let res = ctx.server.store.create(&key, bytes.clone()).await;
    ctx.server.metrics.observe_store("create", start.elapsed().as_secs_f64());
    match res {
        Ok(rev) => {
            allocation.commit(ctx.server, &obj).await;
            Ok(WriteResult {
                object: present_written(ctx.server, ctx.info(), obj, managed.as_deref(), &bytes, rev),
                created: true,
                warnings,
            })
        }
        Err(skiff_store::Error::AlreadyExists(_)) => {
            allocation.release(ctx.server).await;
            Err(ApiError::already_exists(ctx.info(), &name))
        }
        Err(e) => {
            allocation.release(ctx.server).await;
            Err(e.into())
        }
    }
}

/// A copy of the current object for a server-side edit that does not depend on the version
/// it read: without its resourceVersion, which would otherwise be taken as a precondition.
pub(crate) fn editable(cur: &Value) -> Value {
    let mut v = cur.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("resourceVersion");
    }
    v
}

/// What a mutation produces from the current object.
pub(crate) type Mutation<'m> = dyn Fn(&Value) -> ApiResult<Value> + Send + Sync + 'm;

/// Which part of an object an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateTarget {
    /// The main resource: `status` is carried over from the stored object.
    Main,
    /// The `status` subresource: only `status` changes.
    Status,
    /// `namespaces/<n>/finalize`: only `spec.finalizers` changes.
    Finalize,
    /// `certificatesigningrequests/<n>/approval`: only `status.conditions` changes.
    Approval,
    /// The `scale` subresource: a main-resource update recorded as written through `scale`.
    Scale,
}

impl UpdateTarget {
    pub(crate) fn for_subresource(info: &ResourceInfo, sub: Option<&str>) -> ApiResult<UpdateTarget> {
        match sub {
            None => Ok(UpdateTarget::Main),
            Some("status") if info.subresource("status").is_some() => Ok(UpdateTarget::Status),
            Some("finalize") if info.plural == "namespaces" => Ok(UpdateTarget::Finalize),
            Some("approval") if info.subresource("approval").is_some() => Ok(UpdateTarget::Approval),
            Some(_) => Err(ApiError::method_not_allowed()),
        }
    }
}

fn rv_of(obj: &Value) -> Option<i64> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

/// Whether anything but metadata and status differs: what bumps `generation`.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return old != new };
    let rest = |m: &'_ Map<String, Value>| m.iter().filter(|(k, _)| *k != "metadata" && *k != "status").count();
    rest(old) != rest(new) || new.iter().any(|(k, v)| k != "metadata" && k != "status" && old.get(k) != Some(v))
}

/// Read-modify-write with compare-and-swap (upstream's `GuaranteedUpdate`): `mutate` sees the
/// current object (request version, resourceVersion set) and returns the desired one. A
/// resourceVersion in the result is a precondition (409 when stale); without one the update
/// is retried on conflicts.
pub(crate) async fn guaranteed_update(
    ctx: &Ctx<'_>,
    name: &str,
    target: UpdateTarget,
    opts: &WriteOptions,
    mutate: &Mutation<'_>,
) -> ApiResult<WriteResult> {
    update_with(ctx, name, target, opts, mutate, Ownership::Record).await
}

/// A storage-level update, as upstream's binding REST makes one (`GuaranteedUpdate` on the
/// store itself): `mutate` changes the stored object in place, read only as deep as it goes
/// (a [`Shallow`] object: what it does not touch is written back byte for byte), and it is
/// written back as it is, past the kind's strategy, admission and the field manager. The
/// object is not defaulted or validated again (the stored object already was, and the caller
/// checks its own input), `metadata.managedFields` and `generation` stay as they were, and the
/// mutation keeps the stored object's canonical form (keys where the typed encoding puts
/// them). Like [`guaranteed_update`], the first attempt starts from the watch cache and only a
/// successful write stands; a conflict or anything else that could come from a stale cache
/// goes round again from the store. Only for resources served in their storage version.
pub(crate) async fn system_update(
    ctx: &Ctx<'_>,
    name: &str,
    opts: &WriteOptions,
    mutate: &(dyn for<'b> Fn(&mut Shallow<'b>) -> ApiResult<()> + Send + Sync),
) -> ApiResult<()> {
    if !served_as_stored(ctx.server, ctx.info()) {
        return Err(ApiError::internal("a storage-level update needs the storage version"));
    }
    let key = ctx.key(name);
    for attempt in 0..16 {
        let cached = if attempt == 0 && !opts.dry_run { ctx.server.cache.get(&ctx.storage_name(), &key) } else { None };
        let from_cache = cached.is_some();
        let (bytes, revision) = match cached {
            Some(obj) => (obj.bytes.clone(), obj.mod_revision),
            None => {
                let kv = ctx.server.store.get(&key).await?.ok_or_else(|| ApiError::not_found_info(ctx.info(), name))?;
                (kv.value, kv.mod_revision)
            }
        };
        // Read only as deep as the mutation goes: the rest is written back as stored.
        let edited = (|| {
            let mut obj = Shallow::parse(&bytes).map_err(stored_error)?;
            // The cache's copy carries its resourceVersion; the stored bytes do not.
            if let Some(meta) = obj.object("metadata").map_err(stored_error)? {
                meta.remove("resourceVersion");
                meta.remove("selfLink");
            }
            mutate(&mut obj)?;
            // As `StoredForm` writes an object (stored objects are already in that order).
            obj.move_to_front(&["apiVersion", "kind", "metadata"]);
            store_bytes(serde_json::to_vec(&obj).map_err(ApiError::internal)?)
        })();
        let value = match edited {
            Err(_) if from_cache => continue,
            r => r?,
        };
        if opts.dry_run {
            return Ok(());
        }
        let start = std::time::Instant::now();
        let res = ctx.server.store.update(&key, value, revision).await;
        ctx.server.metrics.observe_store("update", start.elapsed().as_secs_f64());
        match res {
            Ok(_) => return Ok(()),
            // Changed or deleted meanwhile: read it again (a deleted one is a 404 then).
            Err(skiff_store::Error::Conflict { .. } | skiff_store::Error::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(ctx.info(), name, "too many concurrent updates; please try again"))
}

/// A stored object that does not decode (an internal error: the server wrote it).
pub(crate) fn stored_error(e: serde_json::Error) -> ApiError {
    ApiError::internal(format!("stored object does not decode: {e}"))
}

async fn update_with(
    ctx: &Ctx<'_>,
    name: &str,
    target: UpdateTarget,
    opts: &WriteOptions,
    mutate: &Mutation<'_>,
    ownership: Ownership,
) -> ApiResult<WriteResult> {
    let key = ctx.key(name);
    for attempt in 0..16 {
        // The first attempt starts from the watch cache, as upstream's GuaranteedUpdate does:
        // no store read. The cache may be behind, so every outcome that could depend on it
        // being current (a compare-and-swap that fails, a resourceVersion precondition that
        // does not match, an update that changes nothing, any error) goes round again from
        // the store; only a successful write stands.
        let cached = if attempt == 0 && !opts.dry_run { cached_current(ctx, &key) } else { None };
        let from_cache = cached.is_some();
        let kv = match cached {
            Some(kv) => kv,
            None => ctx.server.store.get(&key).await?.ok_or_else(|| ApiError::not_found_info(ctx.info(), name))?,
        };
        let current = Current { kv, from_cache };
        let shown = present(ctx.server, ctx.info(), inject_resource_version(&current.value, current.mod_revision));
        let mut shown = match parse(&shown) {
            Err(_) if from_cache => continue,
            s => s?,
        };
        let mut desired = match mutate(&shown) {
            Err(_) if from_cache => continue,
            d => d?,
        };
        // The stored object, parsed once: in the storage version, `shown` is it plus the
        // resourceVersion, taken out without moving any other key (the mutation made its own
        // object: a patch builds a new one anyway, so no copy is made for it here).
        let stored = served_as_stored(ctx.server, ctx.info()).then(|| {
            if let Some(Value::Object(m)) = shown.get_mut("metadata") {
                m.shift_remove("resourceVersion");
            }
            shown
        });
        let precondition = rv_of(&desired);
        if let Some(rv) = precondition
            && rv != current.mod_revision
        {
            if from_cache {
                continue;
            }
            return Err(ApiError::modified(ctx.info(), name));
        }
        match update_once(ctx, name, &current, stored, &mut desired, target, opts, ownership).await {
            Ok(r) => return Ok(r),
            Err(_) if from_cache => continue,
            Err(UpdateError::Stale) | Err(UpdateError::Conflict) if precondition.is_none() => continue,
            Err(UpdateError::Stale) | Err(UpdateError::Conflict) => return Err(ApiError::modified(ctx.info(), name)),
            Err(UpdateError::Api(e)) => return Err(e),
        }
    }
    Err(ApiError::conflict(ctx.info(), name, "too many concurrent updates; please try again"))
}

/// Server-side apply (`application/apply-patch+yaml`): merge `config` into the object owned by
/// `opts.field_manager`, creating it when absent. Conflicts with other managers are a 409
/// unless `force`.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    name: &str,
    subresource: Option<&str>,
    config: Value,
    force: bool,
    opts: &WriteOptions,
) -> ApiResult<WriteResult> {
    let mut config = config;
    check_type_meta(ctx.info(), &mut config, ctx.info().kind)?;
    if let Some(n) = meta_str(&config, "name")
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    meta_mut(&mut config).insert("name".into(), Value::String(name.to_string()));
    if ctx.info().namespaced
        && let Some(ns) = ctx.namespace
    {
        let body_ns = meta_str(&config, "namespace").unwrap_or_default().to_string();
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(&mut config).insert("namespace".into(), Value::String(ns.to_string()));
    }
    let storage = ctx.storage();
    let target = UpdateTarget::for_subresource(ctx.info(), subresource)?;
    let fm = field_manager(&storage, subresource);
    let manager = opts.field_manager.clone();
    let info = ctx.info().clone();
    let to_api = |e: skiff_api::apply::ApplyError| apply_error(&info, name, e);
    for _ in 0..16 {
        if ctx.server.store.get(&ctx.key(name)).await?.is_none() {
            if subresource.is_some() {
                return Err(ApiError::not_found_info(ctx.info(), name));
            }
            let (mut obj, _) = fm.apply(None, &config, Vec::new(), &manager, force, &now_rfc3339()).map_err(to_api)?;
            // The identity metadata a create sets.
            {
                let m = meta_mut(&mut obj);
                m.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
                m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
                m.shift_remove("resourceVersion");
                if ctx.info().tracks_generation {
                    m.insert("generation".into(), json!(1));
                }
            }
            match create_once(ctx, obj, opts, Ownership::Given).await {
                // Someone created it meanwhile: apply onto theirs.
                Err(e) if e.reason == "AlreadyExists" => continue,
                other => return other,
            }
        }
        let precondition = meta_str(&config, "resourceVersion").filter(|s| !s.is_empty()).map(String::from);
        let mutate = |cur: &Value| {
            let managers = skiff_api::apply::decode_managed_fields(cur).unwrap_or_default();
            let (mut obj, _) =
                fm.apply(Some(cur), &config, managers, &manager, force, &now_rfc3339()).map_err(to_api)?;
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                match &precondition {
                    Some(rv) => m.insert("resourceVersion".into(), Value::String(rv.clone())),
                    None => m.shift_remove("resourceVersion"),
                };
            }
            Ok(obj)
        };
        match update_with(ctx, name, target, opts, &mutate, Ownership::Given).await {
            // Deleted meanwhile: create it instead.
            Err(e) if e.reason == "NotFound" => continue,
            other => return other,
        }
    }
    Err(ApiError::conflict(ctx.info(), name, "too many concurrent updates; please try again"))
}

/// A server-side apply failure as upstream reports it.
fn apply_error(info: &ResourceInfo, name: &str, e: skiff_api::apply::ApplyError) -> ApiError {
    use skiff_api::apply::ApplyError;
    match &e {
        ApplyError::Conflicts(conflicts) => {
            let (message, causes) = skiff_api::apply::conflict_status_parts(conflicts);
            let mut err = ApiError::new(http::StatusCode::CONFLICT, "Conflict", message);
            err.details = Some(json!({"name": name, "group": info.group, "kind": info.plural, "causes": causes}));
            err
        }
        _ if e.status_code() == 400 => ApiError::bad_request(e.to_string()),
        // Upstream answers an untypable configuration with a bare 500; the configuration is
        // the client's, so it is a 422 here (see docs/decisions/0004).
        _ => ApiError::new(http::StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string()),
    }
}

enum UpdateError {
    Conflict,
    /// The update started from the watch cache and changed nothing: the cache may be behind,
    /// so only the store can tell whether that is the answer.
    Stale,
    Api(ApiError),
}

/// The object an update starts from, and whether it came from the watch cache.
struct Current {
    kv: KeyValue,
    from_cache: bool,
}

impl std::ops::Deref for Current {
    type Target = KeyValue;
    fn deref(&self) -> &KeyValue {
        &self.kv
    }
}

/// The object under `key` as the watch cache holds it, as the store would return it, if the
/// cache has it.
fn cached_current(ctx: &Ctx<'_>, key: &str) -> Option<KeyValue> {
    let obj = ctx.server.cache.get(&ctx.storage_name(), key)?;
    let value = crate::watch_cache::strip_resource_version(&obj.bytes, obj.mod_revision)?;
    Some(KeyValue { key: key.to_string(), value, create_revision: obj.create_revision, mod_revision: obj.mod_revision })
}

impl From<ApiError> for UpdateError {
    fn from(e: ApiError) -> Self {
        UpdateError::Api(e)
    }
}

impl From<skiff_store::Error> for UpdateError {
    fn from(e: skiff_store::Error) -> Self {
        match e {
            skiff_store::Error::Conflict { .. } | skiff_store::Error::NotFound(_) => UpdateError::Conflict,
            other => UpdateError::Api(other.into()),
        }
    }
}

/// The object a write through the `status` subresource stores: the stored object with the
/// status of `desired` (upstream's status strategies reset everything else).
///
/// `desired` is the stored object as the client patched or replaced it, so most of it usually
/// equals the stored object already. When its keys are the stored object's, in the same order
/// (plus `status` at the end where there was none), it is taken as it is and only the parts
/// that differ are copied back from `old`: one comparison instead of a copy of the whole object.
/// Otherwise the stored object is copied, so the stored form keeps its key order either way.
fn status_write(old: &Value, desired: &mut Value) -> Value {
    if let (Value::Object(o), Value::Object(d)) = (old, &mut *desired) {
        let same_keys = o.keys().eq(d.keys())
            || (!o.contains_key("status")
                && d.len() == o.len() + 1
                && d.keys().next_back().is_some_and(|k| k == "status")
                && o.keys().eq(d.keys().take(o.len())));
        if same_keys {
            let mut new = std::mem::take(d);
            for (k, v) in o {
                if k != "status" && !new.get(k).is_some_and(|n| skiff_api::strategy::json_eq(n, v)) {
                    new.insert(k.clone(), v.clone());
                }
            }
            return Value::Object(new);
        }
    }
    let mut new = old.clone();
    copy_status(&mut new, desired);
    new
}

/// `new`'s status becomes `from`'s, or goes when `from` has none; no other key moves.
fn copy_status(new: &mut Value, from: &Value) {
    match from.get("status") {
        Some(s) => new["status"] = s.clone(),
        None => {
            if let Some(m) = new.as_object_mut() {
                m.shift_remove("status");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // one call site, in update_with
async fn update_once(
    ctx: &Ctx<'_>,
    name: &str,
    current: &Current,
    stored: Option<Value>,
    desired: &mut Value,
    target: UpdateTarget,
    opts: &WriteOptions,
    ownership: Ownership,
) -> Result<WriteResult, UpdateError> {
    check_type_meta(ctx.info(), desired, ctx.info().kind)?;
    check_namespace(ctx, desired)?;
    if let Some(n) = meta_str(desired, "name")
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))
        .into());
    }
    meta_mut(desired).insert("name".into(), Value::String(name.to_string()));
    if !served_as_stored(ctx.server, ctx.info()) {
        *desired = conversion::convert(std::mem::take(desired), &ctx.storage().info);
    }
    let old = match stored {
        Some(v) => v,
        None => parse(&current.value)?,
    };
    // Read before `desired` is taken below.
    let given = if ownership == Ownership::Given { desired.pointer("/metadata/managedFields").cloned() } else { None };
    let mut new = match target {
        UpdateTarget::Main | UpdateTarget::Scale => {
            let mut new = std::mem::take(desired);
            if ctx.info().subresource("status").is_some() {
                copy_status(&mut new, &old);
            }
            new
        }
        UpdateTarget::Status => status_write(&old, desired),
        UpdateTarget::Approval => {
            // Upstream's approval strategy: only the conditions change (Approved, Denied).
            let mut new = old.clone();
            let conditions = desired.pointer("/status/conditions").cloned().unwrap_or(json!([]));
            let types: Vec<&str> =
                conditions.as_array().into_iter().flatten().filter_map(|c| c["type"].as_str()).collect();
            if types.contains(&"Approved") && types.contains(&"Denied") {
                let path = skiff_api::Path::new("status").child("conditions");
                return Err(ApiError::invalid_kind(
                    ctx.info().group,
                    ctx.info().kind,
                    name,
                    &[skiff_api::FieldError::invalid(
                        &path,
                        "Approved",
                        "Approved and Denied conditions are mutually exclusive",
                    )],
                )
                .into());
            }
            if !new["status"].is_object() {
                new["status"] = json!({});
            }
            new["status"]["conditions"] = conditions;
            new
        }
        UpdateTarget::Finalize => {
            let mut new = old.clone();
            let fins = desired.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            new["spec"]["finalizers"] = fins;
            new
        }
    };
    // Server-side apply computed the entries (for a subresource too, where `new` starts from
    // the stored object): keep them.
    if ownership == Ownership::Given {
        let m = meta_mut(&mut new);
        match given {
            Some(v) => m.insert("managedFields".into(), v),
            None => m.remove("managedFields"),
        };
    }
    // A uid that is not the stored object's (a patch or update meant for an object since
    // replaced by another of the same name) is refused as upstream's metadata validation does.
    if let (Some(sent), Some(stored)) = (meta_str(&new, "uid"), meta_str(&old, "uid"))
        && !sent.is_empty()
        && sent != stored
    {
        let path = skiff_api::Path::new("metadata").child("uid");
        return Err(ApiError::invalid_kind(
            ctx.info().group,
            ctx.info().kind,
            name,
            &[skiff_api::FieldError::invalid(&path, sent, "field is immutable")],
        )
        .into());
    }
    // System metadata is the server's, whatever the client sent.
    {
        let no_meta = Map::new();
        let old_meta = old.get("metadata").and_then(Value::as_object).unwrap_or(&no_meta);
        let m = meta_mut(&mut new);
        for k in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.to_string(), v.clone()),
                None => m.shift_remove(k),
            };
        }
        m.shift_remove("resourceVersion");
        if old_meta.contains_key("deletionTimestamp") {
            let old_f: Vec<&Value> =
                old_meta.get("finalizers").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
            if let Some(Value::Array(new_f)) = m.get("finalizers")
                && new_f.iter().any(|f| !old_f.contains(&f))
            {
                return Err(ApiError::invalid(
                    ctx.info(),
                    name,
                    &[skiff_api::FieldError::forbidden(
                        &skiff_api::Path::new("metadata").child("finalizers"),
                        "no new finalizers can be added if the object is being deleted",
                    )],
                )
                .into());
            }
        }
    }
    let op = match target {
        UpdateTarget::Status | UpdateTarget::Approval => Operation::UpdateStatus { old: &old },
        UpdateTarget::Finalize => Operation::System { old: &old },
        UpdateTarget::Main | UpdateTarget::Scale => Operation::Update { old: &old },
    };
    let mut warnings = Vec::new();
    let mut new = admit(ctx, new, op, opts, &mut warnings)?;
    // Written with the object's bytes (see `StoredForm`), not into `new`.
    let managed = (ownership == Ownership::Record).then(|| {
        let storage = ctx.storage();
        let sub = subresource_of(target);
        let managers = skiff_api::apply::managers_for_update(Some(&old), &new, sub);
        field_manager(&storage, sub).update(Some(&old), &new, managers, &opts.field_manager, &now_rfc3339())
    });
    if ctx.info().tracks_generation && spec_changed(&old, &new) {
        let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    let allocation = allocator::before_update(ctx, &old, &mut new, opts.dry_run).await?;
    let bytes = encode_for_store(&new, managed.as_deref())?;
    let unchanged = bytes.as_ref() == current.value.as_ref();
    // An object being deleted whose last finalizer is gone is deleted now.
    let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
        && new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(|f| f.is_empty())
        && !(ctx.info().plural == "namespaces"
            && new.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty()));
    if opts.dry_run || (unchanged && !finalized) {
        allocation.release(ctx.server).await;
        if current.from_cache {
            return Err(UpdateError::Stale);
        }
        let rev = current.mod_revision;
        let body = if unchanged { current.value.clone() } else { bytes };
        return Ok(WriteResult {
            object: present(ctx.server, ctx.info(), inject_resource_version(&body, rev)),
            created: false,
            warnings,
        });
    }
    if finalized {
        let (rev, _) = ctx.server.store.delete(&ctx.key(name), Some(current.mod_revision)).await?;
        allocator::after_delete(ctx, &new).await;
        return Ok(WriteResult {
            object: present(ctx.server, ctx.info(), inject_resource_version(&bytes, rev)),
            created: false,
            warnings,
        });
    }
    let start = std::time::Instant::now();
    let res = ctx.server.store.update(&ctx.key(name), bytes.clone(), current.mod_revision).await;
    ctx.server.metrics.observe_store("update", start.elapsed().as_secs_f64());
    match res {
        Ok(rev) => {
            allocation.commit(ctx.server, &new).await;
            allocator::after_update(ctx, &old, &new).await;
            Ok(WriteResult {
                object: present(ctx.server, ctx.info(), inject_resource_version(&bytes, rev)),
                created: false,
                warnings,
            })
        }
        Err(e) => {
            allocation.release(ctx.server).await;
            Err(e.into())
        }
    }
}

/// `DeleteOptions` as far as the registry uses them.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Merge the JSON body (a `DeleteOptions` object) with query parameters.
    pub(crate) fn from_parts(body: Option<&Value>, query: &crate::request::Query) -> ApiResult<DeleteOptions> {
        let mut o = DeleteOptions { dry_run: query.dry_run()?, ..Default::default() };
        o.grace_period_seconds = query.int("gracePeriodSeconds")?;
        o.propagation_policy = query.nonempty("propagationPolicy").map(String::from);
        if query.bool("orphanDependents")? {
            o.propagation_policy.get_or_insert_with(|| "Orphan".into());
        }
        if let Some(b) = body {
            if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period_seconds = Some(g);
            }
            if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation_policy = Some(p.to_string());
            }
            if b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                o.propagation_policy.get_or_insert_with(|| "Orphan".into());
            }
            if let Some(dr) = b.get("dryRun").and_then(Value::as_array)
                && dr.iter().any(|v| v == "All")
            {
                o.dry_run = true;
            }
            o.precondition_uid = b.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from);
            o.precondition_rv = b.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(String::from);
        }
        if let Some(p) = &o.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid_kind(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &[skiff_api::FieldError::not_supported(
                    &skiff_api::Path::new("propagationPolicy"),
                    p.as_str(),
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
        if let Some(g) = o.grace_period_seconds
            && g < 0
        {
            o.grace_period_seconds = Some(0);
        }
        Ok(o)
    }
}

/// The outcome of a delete: the object, and whether it is gone (200) or pending (finalizers
/// or graceful termination; still 200 upstream, with the object showing deletionTimestamp).
pub(crate) struct DeleteResult {
    pub object: Bytes,
    pub gone: bool,
}

/// Namespaces that cannot be deleted.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Delete an object (upstream's `BeforeDelete` + graceful deletion + finalizers).
pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str, opts: &DeleteOptions) -> ApiResult<DeleteResult> {
    // Upstream's NamespaceLifecycle admission: the system namespaces are immortal.
    if ctx.info().group.is_empty() && ctx.info().plural == "namespaces" && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    let key = ctx.key(name);
    for _attempt in 0..16 {
        let current = ctx.server.store.get(&key).await?.ok_or_else(|| ApiError::not_found_info(ctx.info(), name))?;
        let mut obj = parse(&current.value)?;
        if let Some(uid) = &opts.precondition_uid {
            let actual = meta_str(&obj, "uid").unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(
                    ctx.info(),
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != &current.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                ctx.info(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                ),
            ));
        }
        // Decide what deletion means for this object.
        let mut finalizers: Vec<Value> =
            obj.pointer("/metadata/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        let add_finalizer = |f: &str, fins: &mut Vec<Value>| {
            if !fins.iter().any(|x| x == f) {
                fins.push(Value::String(f.to_string()));
            }
        };
        let already_deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        match opts.propagation_policy.as_deref() {
            Some("Foreground") if !already_deleting => add_finalizer("foregroundDeletion", &mut finalizers),
            Some("Orphan") if !already_deleting => add_finalizer("orphan", &mut finalizers),
            _ => {}
        }
        // A CRD goes only after its custom objects: the CRD loop deletes them, then drops this.
        if ctx.info().group == "apiextensions.k8s.io"
            && ctx.info().plural == "customresourcedefinitions"
            && !already_deleting
        {
            add_finalizer(crate::crds::CLEANUP_FINALIZER, &mut finalizers);
        }
        let grace = graceful_period(ctx.info(), &obj, opts.grace_period_seconds);
        // A namespace waits for its `kubernetes` finalizer: the namespace lifecycle loop empties it.
        let namespace_pending = ctx.info().plural == "namespaces"
            && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        let must_wait = !finalizers.is_empty() || grace > 0 || namespace_pending;
        if !must_wait {
            if opts.dry_run {
                return Ok(DeleteResult {
                    object: present(
                        ctx.server,
                        ctx.info(),
                        inject_resource_version(&current.value, current.mod_revision),
                    ),
                    gone: true,
                });
            }
            match ctx.server.store.delete(&key, Some(current.mod_revision)).await {
                Ok((rev, _)) => {
                    allocator::after_delete(ctx, &obj).await;
                    return Ok(DeleteResult {
                        object: present(ctx.server, ctx.info(), inject_resource_version(&current.value, rev)),
                        gone: true,
                    });
                }
                Err(skiff_store::Error::Conflict { .. }) => continue,
                Err(skiff_store::Error::NotFound(_)) => return Err(ApiError::not_found_info(ctx.info(), name)),
                Err(e) => return Err(e.into()),
            }
        }
        // Pending deletion: mark the object and let finalizers / the kubelet finish.
        {
            let m = meta_mut(&mut obj);
            if !already_deleting {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                m.insert("deletionTimestamp".into(), Value::String(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            } else if let Some(old) = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64)
                && grace < old
            {
                // A shorter grace period may be requested later (kubectl delete --grace-period=0).
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                m.insert("deletionTimestamp".into(), Value::String(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), Value::Array(finalizers));
            }
        }
        if namespace_pending {
            obj["status"]["phase"] = Value::String("Terminating".into());
        }
        let bytes = encode_for_store(&obj, None)?;
        if opts.dry_run || bytes == current.value {
            return Ok(DeleteResult {
                object: present(ctx.server, ctx.info(), inject_resource_version(&bytes, current.mod_revision)),
                gone: false,
            });
        }
        match ctx.server.store.update(&key, bytes.clone(), current.mod_revision).await {
            Ok(rev) => {
                if namespace_pending {
                    // Creates in the namespace check its phase in the watch cache: let the cache
                    // see Terminating before the client hears the namespace is going.
                    ctx.server.cache.sync().await?;
                }
                return Ok(DeleteResult {
                    object: present(ctx.server, ctx.info(), inject_resource_version(&bytes, rev)),
                    gone: false,
                });
            }
            Err(skiff_store::Error::Conflict { .. }) => continue,
            Err(skiff_store::Error::NotFound(_)) => return Err(ApiError::not_found_info(ctx.info(), name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(ctx.info(), name, "too many concurrent updates; please try again"))
}

/// The grace period for deleting `obj`: only pods terminate gracefully, and only once a node
/// runs them (an unscheduled pod has nothing to stop).
fn graceful_period(info: &ResourceInfo, obj: &Value, requested: Option<i64>) -> i64 {
    if !info.group.is_empty() || info.plural != "pods" {
        return 0;
    }
    let scheduled = obj.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let finished = matches!(obj.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
    if !scheduled || finished {
        return 0;
    }
    requested
        .unwrap_or_else(|| obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30))
}

/// Read an object at or after `min_rev` (0: whatever the cache has).
pub(crate) async fn get(ctx: &Ctx<'_>, name: &str, rv: Option<&str>) -> ApiResult<Bytes> {
    let key = ctx.key(name);
    let storage = ctx.storage_name();
    match rv {
        Some("0") => {}
        Some(v) if !v.is_empty() => {
            let want: i64 = v.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?;
            if !ctx.server.cache.wait_for(want, Duration::from_secs(3)).await {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {want}, current: {}",
                    ctx.server.cache.revision()
                )));
            }
        }
        _ => {
            ctx.server.cache.sync().await?;
        }
    }
    let obj = ctx.server.cache.get(&storage, &key).ok_or_else(|| ApiError::not_found_info(ctx.info(), name))?;
    Ok(present_cached(ctx.server, ctx.info(), &obj))
}

/// List options after parsing.
#[derive(Default)]
pub(crate) struct ListOptions {
    pub label: skiff_api::selector::LabelSelector,
    pub field: skiff_api::selector::FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// A page of a list.
pub(crate) struct ListPage {
    pub items: Vec<Bytes>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

fn encode_continue(rev: i64, key: &str) -> String {
    use base64::Engine;
    let v = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(i64, String)> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: the token is malformed");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?.to_string();
    Ok((rev, start))
}

/// List objects, from the cache unless an exact old revision or a continuation is asked for.
pub(crate) async fn list(ctx: &Ctx<'_>, opts: &ListOptions) -> ApiResult<ListPage> {
    for f in opts.field.fields() {
        if !supports_field(&ctx.res, f) {
            return Err(ApiError::bad_request(format!("field label not supported: {f}")));
        }
    }
    let prefix = ctx.prefix();
    let storage = ctx.storage_name();
    let field = storage_field_selector(ctx.info(), &opts.field);
    let filter = |o: &CachedObject| opts.label.matches(&o.labels) && field.matches(&o.fields);
    if let Some(token) = &opts.continue_token {
        let (rev, start) = decode_continue(token)?;
        return list_from_store(ctx, &prefix, rev, Some(start), opts).await;
    }
    let exact = opts.resource_version_match.as_deref() == Some("Exact");
    match (opts.resource_version.as_deref(), opts.resource_version_match.as_deref()) {
        (_, Some(m)) if m != "Exact" && m != "NotOlderThan" => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        (None | Some(""), Some(_)) => {
            return Err(ApiError::bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided"));
        }
        (None | Some(""), None) => {
            ctx.server.cache.sync().await?;
        }
        (Some("0"), _) if !exact => {}
        (Some(v), _) => {
            let want: i64 = v.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?;
            if exact && want != ctx.server.cache.revision() {
                return list_from_store(ctx, &prefix, want, None, opts).await;
            }
            if !ctx.server.cache.wait_for(want, Duration::from_secs(3)).await {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {want}, current: {}",
                    ctx.server.cache.revision()
                )));
            }
        }
    }
    let (objs, rev, more) = ctx.server.cache.list(&storage, &prefix, None, opts.limit, &filter);
    let continue_token = if more { objs.last().map(|o| encode_continue(rev, &o.key)) } else { None };
    let remaining = if more {
        let (all, _, _) = ctx.server.cache.list(&storage, &prefix, objs.last().map(|o| o.key.as_str()), 0, &filter);
        Some(all.len() as i64)
    } else {
        None
    };
    let items = objs.iter().map(|o| present_cached(ctx.server, ctx.info(), o)).collect();
    Ok(ListPage { items, revision: rev, continue_token, remaining })
}

/// A list at an old revision, read from the store (cache miss).
async fn list_from_store(
    ctx: &Ctx<'_>,
    prefix: &str,
    rev: i64,
    start_after: Option<String>,
    opts: &ListOptions,
) -> ApiResult<ListPage> {
    let mut items = Vec::new();
    let mut last_key = start_after;
    let storage_res = ctx.server.resources().storage_resource(ctx.info());
    let (group, kind) = (storage_res.info.group, storage_res.info.kind);
    let mut more = false;
    loop {
        let page = ctx
            .server
            .store
            .range(prefix, RangeOptions { revision: rev, limit: 500, start_after: last_key.clone() })
            .await
            .map_err(|e| match e {
                skiff_store::Error::Compacted { .. } if opts.continue_token.is_some() => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start \
                     a new list without the continue parameter, or use the continue token in this response to \
                     retrieve the remainder of the results. Continuing with the provided token results in an \
                     inconsistent list - objects that were created, modified, or deleted between the time the first \
                     chunk was returned and now may show up in the list.",
                ),
                other => other.into(),
            })?;
        for kv in &page.kvs {
            last_key = Some(kv.key.clone());
            let with_rv = inject_resource_version(&kv.value, kv.mod_revision);
            let v: Value = parse(&with_rv)?;
            let labels = skiff_api::selector::labels_of(&v);
            let fields = storage_res
                .strategy
                .field_attributes(&v)
                .unwrap_or_else(|| skiff_api::selector::field_attributes(group, kind, &v));
            if opts.label.matches(&labels) && storage_field_selector(ctx.info(), &opts.field).matches(&fields) {
                if opts.limit > 0 && items.len() == opts.limit {
                    more = true;
                    break;
                }
                items.push(present(ctx.server, ctx.info(), with_rv));
            }
        }
        if more || !page.more {
            break;
        }
    }
    // The token continues after the last returned item.
    let continue_token =
        if more { last_key_of(&items).map(|k| encode_continue(rev, &ctx.key_of_item(&k))) } else { None };
    Ok(ListPage { items, revision: rev, continue_token, remaining: None })
}

/// Whether `field` may be used in a field selector on `res`.
pub(crate) fn supports_field(res: &Resource, field: &str) -> bool {
    skiff_api::selector::supports_field(res.info.group, res.info.kind, field)
        || res.strategy.selectable_fields().contains(&field)
}

/// A field selector in terms of the storage version's field labels.
pub(crate) fn storage_field_selector(
    info: &ResourceInfo,
    sel: &skiff_api::selector::FieldSelector,
) -> skiff_api::selector::FieldSelector {
    sel.map_fields(|f| skiff_api::selector::storage_field_label(info.group, info.kind, f).into_owned())
}

fn last_key_of(items: &[Bytes]) -> Option<(Option<String>, String)> {
    let last = items.last()?;
    let v: Value = serde_json::from_slice(last).ok()?;
    Some((meta_str(&v, "namespace").map(String::from), meta_str(&v, "name")?.to_string()))
}

impl Ctx<'_> {
    fn key_of_item(&self, item: &(Option<String>, String)) -> String {
        key_for(&self.res.info, item.0.as_deref(), &item.1)
    }
}

trait ForbiddenDetails {
    fn with_forbidden_details(self, info: &ResourceInfo, name: &str) -> Self;
}

impl ForbiddenDetails for ApiError {
    fn with_forbidden_details(mut self, info: &ResourceInfo, name: &str) -> Self {
        self.details = Some(json!({"name": name, "group": info.group, "kind": info.plural}));
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{encode_for_store, status_write};

    /// Managed fields written with the bytes give the bytes of the object after
    /// `set_managed_fields`, wherever the field goes and whatever was there before.
    #[test]
    fn managed_fields_are_encoded_where_set_managed_fields_puts_them() {
        use skiff_api::apply::{FieldManager, set_managed_fields};
        use skiff_api::schema::Schema;
        let defs = skiff_api::openapi::definitions();
        let schema = Schema::root(defs, "io.k8s.api.core.v1.ConfigMap").expect("ConfigMap");
        let fm = FieldManager::new(schema, "v1");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1"}, "k8s:odd": 1}, "data": {"k": "v", "\u{e9}": "\"q\""}});
        let one = fm.update(None, &cm, Vec::new(), "kubectl-create", "2024-05-01T10:00:00Z");
        let mut changed = cm.clone();
        changed["data"]["k2"] = json!("w");
        let two = fm.update(Some(&cm), &changed, one.clone(), "editor", "2024-05-01T11:00:00Z");
        assert_eq!(two.len(), 2, "{two:?}");
        let stale =
            json!([{"manager": "old", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:x": {}}}]);
        let metas = [
            json!({"name": "c", "labels": {"a": "1"}}),
            json!({"annotations": {"b": "2"}, "creationTimestamp": null}),
            json!({"name": "c", "resourceVersion": "7", "selfLink": "/x", "uid": "u"}),
            json!({"managedFields": stale, "name": "c"}),
            json!({"name": "c", "managedFields": stale}),
            json!({"zzz": 1, "managedFields": stale, "aaa": 2}),
            json!({}),
            json!("not an object"),
            Value::Null,
        ];
        for meta in metas {
            for missing in [false, true] {
                let mut obj = changed.clone();
                if missing {
                    obj.as_object_mut().expect("object").shift_remove("metadata");
                } else {
                    obj["metadata"] = meta.clone();
                }
                for entries in [&one, &two, &Vec::new()] {
                    let mut set = obj.clone();
                    set_managed_fields(&mut set, entries);
                    let want = encode_for_store(&set, None).expect("encodes");
                    let got = encode_for_store(&obj, Some(entries)).expect("encodes");
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "metadata {meta} (missing: {missing}), {} entries",
                        entries.len()
                    );
                }
            }
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn a_status_write_keeps_all_but_the_status_of_the_stored_object() {
        let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        // The usual case: the stored object, patched. What the client changed outside the
        // status goes back to the stored value.
        let mut desired = old.clone();
        desired["metadata"]["labels"]["a"] = json!("2");
        desired["spec"]["nodeName"] = json!("n2");
        desired["status"]["phase"] = json!("Running");
        let new = status_write(&old, &mut desired);
        let mut want = old.clone();
        want["status"]["phase"] = json!("Running");
        assert_eq!(new, want);
        assert_eq!(keys(&new), keys(&old));

        // A first status: it goes at the end, as on the stored object copied.
        let mut bare = old.clone();
        bare.as_object_mut().unwrap().shift_remove("status");
        let mut desired = bare.clone();
        desired["status"] = json!({"phase": "Running"});
        let new = status_write(&bare, &mut desired);
        assert_eq!(keys(&new), ["apiVersion", "kind", "metadata", "spec", "status"]);
        assert_eq!(new["status"], json!({"phase": "Running"}));

        // Keys in another order (a PUT of a body written by hand), a key the stored object lacks,
        // or no status at all: the stored object's order stands.
        let mut reordered = json!({"status": {"phase": "Failed"}, "kind": "Pod", "apiVersion": "v1",
            "spec": {}, "metadata": {"name": "p"}, "extra": 1});
        let new = status_write(&old, &mut reordered);
        assert_eq!(keys(&new), keys(&old));
        assert_eq!(new["spec"], old["spec"]);
        assert_eq!(new["status"], json!({"phase": "Failed"}));
        let mut without = old.clone();
        without.as_object_mut().unwrap().shift_remove("status");
        let new = status_write(&old, &mut without);
        assert_eq!(keys(&new), ["apiVersion", "kind", "metadata", "spec"]);
    }
}
