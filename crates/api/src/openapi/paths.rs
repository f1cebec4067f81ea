//! The `paths` of one group-version document, shaped like upstream's (the operations the
//! apiserver's installer registers for each resource): collection, item, watch and subresource
//! paths, each operation with its `operationId`, tag, parameters, request body, responses,
//! `x-kubernetes-action` and `x-kubernetes-group-version-kind`.
//!
//! kubectl 1.32 reads this for `--validate=strict`: it looks for the PATCH operation whose GVK is
//! the object's and which lists `fieldValidation` among its *own* parameters, and then leaves
//! validation to the server.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::schemas::{API_RESOURCE_LIST, Catalog, DELETE_OPTIONS, Gvk, PATCH, REF_PREFIX, STATUS, WATCH_EVENT};
use crate::resources::ResourceInfo;

/// Resources whose registry returns the deleted object from DELETE, not a `Status`
/// (upstream's `ReturnDeletedObject: true` stores), as (group, plural).
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "pods"),
    ("", "podtemplates"),
    ("", "resourcequotas"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("storage.k8s.io", "volumeattachments"),
];

/// Whether a DELETE of this resource answers with the deleted object (else a `Status`).
pub fn returns_deleted_object(group: &str, plural: &str) -> bool {
    RETURNS_DELETED_OBJECT.contains(&(group, plural))
}

/// An operation before parameters are split between it and its path.
struct Op {
    method: &'static str,
    body: Map<String, Value>,
    params: Vec<Value>,
}

/// What the operations of one resource (or subresource) path have in common.
struct Target<'a> {
    /// `core_v1`, `apps_v1`, …
    tag: &'a str,
    /// `CoreV1`, `AppsV1`, … (operationId infix).
    id_infix: &'a str,
    /// The GVK the operation is for (for `scale`, autoscaling/v1 Scale).
    gvk: Gvk,
    /// Schema of the object exchanged, if known.
    schema: Option<&'a str>,
    /// The parent kind, for operation names and descriptions (`Pod` for `pods/status`).
    kind: &'a str,
    /// `Namespaced` or "".
    namespaced: &'static str,
}

/// Builds the `paths` object for `resources` (all in group-version `group`/`version`), sorted
/// by path like upstream's documents.
pub(super) fn paths(cat: &Catalog, group: &str, version: &str, resources: &[&ResourceInfo]) -> Map<String, Value> {
    let tag = tag(group, version);
    let id_infix = id_infix(group, version);
    let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    let mut by_path: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    by_path.insert(
        format!("{prefix}/"),
        vec![Op {
            method: "get",
            body: op_body(
                &tag,
                "get available resources",
                format!("get{id_infix}APIResources"),
                None,
                None,
                responses(&[("200", "OK")], &GET_TYPES, Some(API_RESOURCE_LIST)),
            ),
            params: Vec::new(),
        }],
    );
    for r in resources {
        resource_paths(cat, &mut by_path, &prefix, &tag, &id_infix, r);
    }
    by_path.into_iter().map(|(path, ops)| (path, path_item(ops))).collect()
}

fn resource_paths(
    cat: &Catalog,
    out: &mut BTreeMap<String, Vec<Op>>,
    prefix: &str,
    tag: &str,
    id_infix: &str,
    r: &ResourceInfo,
) {
    let has = |verb: &str| r.verbs.contains(&verb);
    let gvk = (r.group, r.version, r.kind);
    let list_schema = cat.schema_of((r.group, r.version, r.list_kind));
    let t = Target {
        tag,
        id_infix,
        gvk,
        schema: cat.schema_of(gvk),
        kind: r.kind,
        namespaced: if r.namespaced { "Namespaced" } else { "" },
    };
    let scope = if r.namespaced { "/namespaces/{namespace}" } else { "" };
    let collection = format!("{prefix}{scope}/{}", r.plural);
    let item = format!("{collection}/{{name}}");
    let scope_params = |named: bool, kind: &str| {
        let mut p = Vec::new();
        if named {
            p.push(name_param(kind));
        }
        if r.namespaced {
            p.push(namespace_param());
        }
        p.push(query("pretty"));
        p
    };

    let mut ops = Vec::new();
    if has("list") {
        ops.push(t.list(
            &format!("list{}{}{}", id_infix, t.namespaced, r.kind),
            list_schema,
            scope_params(false, r.kind),
        ));
    }
    if has("create") {
        ops.push(t.write("post", "create", scope_params(false, r.kind)));
    }
    if has("deletecollection") {
        let mut params = scope_params(false, r.kind);
        params.extend(DELETECOLLECTION_QUERY.iter().map(|n| query(n)));
        let id = format!("delete{id_infix}Collection{}{}", t.namespaced, r.kind);
        let description = format!("delete collection of {}", r.kind);
        let resp = responses(&[("200", "OK")], &GET_TYPES, Some(STATUS));
        ops.push(Op {
            method: "delete",
            body: op_body(
                tag,
                &description,
                id,
                Some(("deletecollection", gvk)),
                Some(star_body(DELETE_OPTIONS)),
                resp,
            ),
            params,
        });
    }
    if !ops.is_empty() {
        out.insert(collection.clone(), ops);
    }

    let mut ops = Vec::new();
    if has("get") {
        ops.push(t.read("", scope_params(true, r.kind)));
    }
    if has("update") {
        ops.push(t.write("put", "", scope_params(true, r.kind)));
    }
    if has("delete") {
        let mut params = scope_params(true, r.kind);
        params.extend(DELETE_QUERY.iter().map(|n| query(n)));
        let returned = if RETURNS_DELETED_OBJECT.contains(&(r.group, r.plural)) { t.schema } else { Some(STATUS) };
        let id = format!("delete{id_infix}{}{}", t.namespaced, r.kind);
        let description = format!("delete{}{}", article(r.kind), r.kind);
        let resp = responses(&[("200", "OK"), ("202", "Accepted")], &GET_TYPES, returned);
        ops.push(Op {
            method: "delete",
            body: op_body(tag, &description, id, Some(("delete", gvk)), Some(star_body(DELETE_OPTIONS)), resp),
            params,
        });
    }
    if has("patch") {
        ops.push(t.patch("", scope_params(true, r.kind)));
    }
    if !ops.is_empty() {
        out.insert(item.clone(), ops);
    }

    if r.namespaced && has("list") {
        let id = format!("list{id_infix}{}ForAllNamespaces", r.kind);
        out.insert(format!("{prefix}/{}", r.plural), vec![t.list(&id, list_schema, vec![query("pretty")])]);
    }
    if has("watch") {
        let watch_list = |id: String, params: Vec<Value>| {
            let description = format!(
                "watch individual changes to a list of {}. deprecated: use the 'watch' parameter with a list operation instead.",
                r.kind
            );
            t.watch("watchlist", id, description, params)
        };
        let watch_prefix = format!("{prefix}/watch{scope}/{}", r.plural);
        let id = format!("watch{id_infix}{}{}List", t.namespaced, r.kind);
        out.insert(watch_prefix.clone(), vec![watch_list(id, scope_params(false, r.kind))]);
        let description = format!(
            "watch changes to an object of kind {}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
            r.kind
        );
        let id = format!("watch{id_infix}{}{}", t.namespaced, r.kind);
        out.insert(
            format!("{watch_prefix}/{{name}}"),
            vec![t.watch("watch", id, description, scope_params(true, r.kind))],
        );
        if r.namespaced {
            let id = format!("watch{id_infix}{}ListForAllNamespaces", r.kind);
            out.insert(format!("{prefix}/watch/{}", r.plural), vec![watch_list(id, vec![query("pretty")])]);
        }
    }

    for sub in &r.subresources {
        let sub_gvk = (sub.group, sub.version, sub.kind);
        let s = Target { gvk: sub_gvk, schema: cat.schema_of(sub_gvk), ..t };
        let suffix = capitalize(sub.name);
        let mut ops = Vec::new();
        for verb in sub.verbs {
            let params = scope_params(true, sub.kind);
            match *verb {
                "get" => ops.push(s.read(sub.name, params)),
                "update" => ops.push(s.write("put", sub.name, params)),
                "patch" => ops.push(s.patch(sub.name, params)),
                "create" => {
                    let mut op = s.write("post", sub.name, params);
                    let id = format!("create{id_infix}{}{}{suffix}", t.namespaced, r.kind);
                    op.body.insert("operationId".into(), json!(id));
                    op.body.insert(
                        "description".into(),
                        json!(format!("create {} of{}{}", sub.name, article(r.kind), r.kind)),
                    );
                    ops.push(op);
                }
                _ => {}
            }
        }
        if !ops.is_empty() {
            out.insert(format!("{item}/{}", sub.name), ops);
        }
    }
}

impl Target<'_> {
    /// `get`; `sub` is the subresource name or "".
    fn read(&self, sub: &str, params: Vec<Value>) -> Op {
        let (id, description) = self.names("read", sub, "read", "the specified");
        let resp = responses(&[("200", "OK")], &GET_TYPES, self.schema);
        Op { method: "get", body: op_body(self.tag, &description, id, Some(("get", self.gvk)), None, resp), params }
    }

    /// `post` (create) or `put` (replace).
    fn write(&self, method: &'static str, sub: &str, mut params: Vec<Value>) -> Op {
        let (verb, codes): (&str, &[(&str, &str)]) = if method == "post" {
            ("create", &[("200", "OK"), ("201", "Created"), ("202", "Accepted")])
        } else {
            ("replace", &[("200", "OK"), ("201", "Created")])
        };
        let (id, description) = if method == "post" {
            (
                format!("create{}{}{}", self.id_infix, self.namespaced, self.kind),
                format!("create{}{}", article(self.kind), self.kind),
            )
        } else {
            self.names(verb, sub, "replace", "the specified")
        };
        params.extend(["dryRun", "fieldManager", "fieldValidation"].into_iter().map(query));
        let body = self.schema.map(star_body);
        let resp = responses(codes, &GET_TYPES, self.schema);
        Op { method, body: op_body(self.tag, &description, id, Some((method, self.gvk)), body, resp), params }
    }

    fn patch(&self, sub: &str, mut params: Vec<Value>) -> Op {
        let (id, description) = self.names("patch", sub, "partially update", "the specified");
        params.extend(["dryRun", "fieldManager/patch", "fieldValidation", "force"].into_iter().map(query));
        let content: Map<String, Value> = PATCH_TYPES.iter().map(|ct| ((*ct).to_string(), schema_ref(PATCH))).collect();
        let body = json!({ "content": content });
        let resp = responses(&[("200", "OK"), ("201", "Created")], &GET_TYPES, self.schema);
        Op {
            method: "patch",
            body: op_body(self.tag, &description, id, Some(("patch", self.gvk)), Some(body), resp),
            params,
        }
    }

    fn list(&self, id: &str, list_schema: Option<&str>, mut params: Vec<Value>) -> Op {
        params.extend(LIST_QUERY.iter().map(|n| query(n)));
        let description = format!("list or watch objects of kind {}", self.kind);
        let resp = responses(&[("200", "OK")], &LIST_TYPES, list_schema);
        Op {
            method: "get",
            body: op_body(self.tag, &description, id.to_string(), Some(("list", self.gvk)), None, resp),
            params,
        }
    }

    fn watch(&self, action: &str, id: String, description: String, mut params: Vec<Value>) -> Op {
        params.extend(LIST_QUERY.iter().map(|n| query(n)));
        let resp = responses(&[("200", "OK")], &LIST_TYPES, Some(WATCH_EVENT));
        Op { method: "get", body: op_body(self.tag, &description, id, Some((action, self.gvk)), None, resp), params }
    }

    /// (`readCoreV1NamespacedPodStatus`, `read status of the specified Pod`).
    fn names(&self, id_verb: &str, sub: &str, text_verb: &str, article: &str) -> (String, String) {
        let id = format!("{id_verb}{}{}{}{}", self.id_infix, self.namespaced, self.kind, capitalize(sub));
        let description = if sub.is_empty() {
            format!("{text_verb} {article} {}", self.kind)
        } else {
            format!("{text_verb} {sub} of {article} {}", self.kind)
        };
        (id, description)
    }
}

fn op_body(
    tag: &str,
    description: &str,
    id: String,
    action: Option<(&str, Gvk)>,
    request: Option<Value>,
    responses: Value,
) -> Map<String, Value> {
    let mut op = Map::new();
    op.insert("tags".into(), json!([tag]));
    op.insert("description".into(), json!(description));
    op.insert("operationId".into(), json!(id));
    if let Some(body) = request {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses);
    if let Some((action, (group, version, kind))) = action {
        op.insert("x-kubernetes-action".into(), json!(action));
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({ "group": group, "version": version, "kind": kind }),
        );
    }
    op
}

/// Upstream hoists the parameters every operation of a path shares to the path; the rest stay on
/// the operations (sorted by name both places).
fn path_item(mut ops: Vec<Op>) -> Value {
    // Upstream's method order within a path item.
    let rank = |m: &str| ["get", "put", "post", "delete", "patch"].iter().position(|x| *x == m);
    ops.sort_by_key(|op| rank(op.method));
    let shared: Vec<Value> = match ops.first() {
        Some(first) => first.params.iter().filter(|p| ops.iter().all(|op| op.params.contains(p))).cloned().collect(),
        None => Vec::new(),
    };
    let mut item = Map::new();
    for Op { method, mut body, params } in ops {
        let mut own: Vec<Value> = params.into_iter().filter(|p| !shared.contains(p)).collect();
        own.sort_by(|a, b| param_name(a).cmp(param_name(b)));
        if !own.is_empty() {
            // Upstream puts `parameters` right after `operationId`.
            let mut ordered = Map::new();
            for (k, v) in std::mem::take(&mut body) {
                let after_id = k == "operationId";
                ordered.insert(k, v);
                if after_id {
                    ordered.insert("parameters".into(), Value::Array(std::mem::take(&mut own)));
                }
            }
            body = ordered;
        }
        item.insert(method.into(), Value::Object(body));
    }
    let mut shared = shared;
    shared.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    if !shared.is_empty() {
        item.insert("parameters".into(), Value::Array(shared));
    }
    Value::Object(item)
}

fn param_name(p: &Value) -> &str {
    p.get("name").and_then(Value::as_str).unwrap_or_default()
}

const GET_TYPES: [&str; 3] = ["application/json", "application/vnd.kubernetes.protobuf", "application/yaml"];
const LIST_TYPES: [&str; 5] = [
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const PATCH_TYPES: [&str; 4] = [
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const LIST_QUERY: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const DELETE_QUERY: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETECOLLECTION_QUERY: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

fn schema_ref(name: &str) -> Value {
    json!({ "schema": { "$ref": format!("{REF_PREFIX}{name}") } })
}

/// `{"content": {"*/*": {"schema": {"$ref": …}}}}`: the body of create, replace and delete.
fn star_body(schema: &str) -> Value {
    json!({ "content": { "*/*": schema_ref(schema) } })
}

fn responses(codes: &[(&str, &str)], types: &[&str], schema: Option<&str>) -> Value {
    let mut out = Map::new();
    for (code, text) in codes {
        let mut r = Map::new();
        r.insert("description".into(), json!(text));
        if let Some(schema) = schema {
            let content: Map<String, Value> = types.iter().map(|ct| ((*ct).to_string(), schema_ref(schema))).collect();
            r.insert("content".into(), Value::Object(content));
        }
        out.insert((*code).into(), Value::Object(r));
    }
    out.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(out)
}

fn name_param(kind: &str) -> Value {
    json!({
        "name": "name", "in": "path", "description": format!("name of the {kind}"), "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn namespace_param() -> Value {
    json!({
        "name": "namespace", "in": "path", "description": "object name and auth scope, such as for teams and projects",
        "required": true, "schema": { "type": "string", "uniqueItems": true },
    })
}

/// A query parameter by name (`fieldManager/patch` is fieldManager with the PATCH wording).
/// The descriptions are upstream's (`k8s.io/apimachinery` meta/v1 option types).
fn query(name: &str) -> Value {
    let (name, ty, description) = match name {
        "allowWatchBookmarks" => (
            name,
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        "continue" => (
            name,
            "string",
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
        ),
        "dryRun" => (
            name,
            "string",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            name,
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        "fieldManager/patch" => (
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
        ),
        "fieldSelector" => (
            name,
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        "fieldValidation" => (
            name,
            "string",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
        "force" => (
            name,
            "boolean",
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" => (
            name,
            "integer",
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            name,
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
        ),
        "labelSelector" => (
            name,
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        "limit" => (
            name,
            "integer",
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
        ),
        "orphanDependents" => (
            name,
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
        ),
        "pretty" => (
            name,
            "string",
            "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
        ),
        "propagationPolicy" => (
            name,
            "string",
            "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
        ),
        "resourceVersion" => (
            name,
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "resourceVersionMatch" => (
            name,
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "sendInitialEvents" => (
            name,
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
        ),
        "timeoutSeconds" => (
            name,
            "integer",
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        "watch" => (
            name,
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
        _ => (name, "string", ""),
    };
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": ty, "uniqueItems": true } })
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: upstream's tag for a group-version.
fn tag(group: &str, version: &str) -> String {
    let mut parts = group_words(group).into_iter();
    let first = parts.next().unwrap_or_default();
    let rest: String = parts.map(|p| capitalize(&p)).collect();
    format!("{first}{rest}_{version}")
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group-version part of operation ids.
fn id_infix(group: &str, version: &str) -> String {
    let words: String = group_words(group).iter().map(|w| capitalize(w)).collect();
    format!("{words}{}", capitalize(version))
}

/// `rbac.authorization.k8s.io` → [rbac, authorization]; "" → [core].
fn group_words(group: &str) -> Vec<String> {
    if group.is_empty() {
        return vec!["core".into()];
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed.split('.').map(str::to_string).collect()
}

/// " a ", " an " or, for nouns that look plural (`Endpoints`), " ": upstream's article rule.
fn article(noun: &str) -> &'static str {
    if noun.ends_with('s') && !noun.ends_with("ss") {
        " "
    } else if noun.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        " an "
    } else {
        " a "
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The group-versions (`(group, version)`) of `resources`, in first-seen order.
pub(super) fn group_versions_of(resources: &[crate::resources::Resource]) -> Vec<(&'static str, &'static str)> {
    let mut seen = BTreeSet::new();
    resources
        .iter()
        .filter(|r| seen.insert((r.info.group, r.info.version)))
        .map(|r| (r.info.group, r.info.version))
        .collect()
}
