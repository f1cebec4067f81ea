//! Tests of the OpenAPI documents, partly against fixtures derived from upstream's 1.27 documents
//! (`testdata/`, made by `scripts/openapi-reference-fixture.py`; Apache-2.0, the Kubernetes
//! Authors).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::*;
use crate::resources::builtin;

const EXTENSIONS_1_27: &str = include_str!("testdata/upstream-1.27-extensions.tsv");
const OPERATIONS_1_27: &str = include_str!("testdata/upstream-1.27-operations.tsv");
const PATCH_POD_1_27: &str = include_str!("testdata/upstream-1.27-patch-pod.json");

/// The four group-versions the 1.27 fixtures cover.
const REFERENCE_GVS: [&str; 4] = ["api/v1", "apis/apps/v1", "apis/autoscaling/v1", "apis/autoscaling/v2"];

/// Query parameters added upstream after 1.27 (or missing from the older api/v1 fixture).
const NEWER_PARAMS: [&str; 2] = ["sendInitialEvents", "ignoreStoreReadErrorWithClusterBreakingPotential"];

fn doc(gv: &str) -> Value {
    let bytes = document(&builtin(), gv).unwrap_or_else(|| panic!("no document for {gv}"));
    serde_json::from_slice(&bytes).expect("document is JSON")
}

fn all_docs() -> Vec<(String, Value)> {
    group_versions(&builtin()).into_iter().map(|gv| (gv.clone(), doc(&gv))).collect()
}

/// Follows `allOf: [{$ref}]` / `$ref` to the named component schema.
fn resolve<'a>(schemas: &'a Map<String, Value>, mut s: &'a Value) -> &'a Value {
    loop {
        if let Some(first) = s.get("allOf").and_then(|a| a.get(0)) {
            s = first;
        }
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => s = &schemas[r.strip_prefix(REF_PREFIX).expect("local ref")],
            None => return s,
        }
    }
}

#[test]
fn group_versions_list_every_served_group_version_once() {
    let gvs = group_versions(&builtin());
    assert_eq!(gvs[0], "api/v1");
    for gv in [
        "apis/apps/v1",
        "apis/autoscaling/v1",
        "apis/autoscaling/v2",
        "apis/batch/v1",
        "apis/rbac.authorization.k8s.io/v1",
    ] {
        assert!(gvs.iter().any(|g| g == gv), "{gv} missing from {gvs:?}");
    }
    let unique: BTreeSet<_> = gvs.iter().collect();
    assert_eq!(unique.len(), gvs.len(), "duplicates in {gvs:?}");
    assert!(group_versions(&[]).is_empty());
}

#[test]
fn unknown_or_malformed_group_version_has_no_document() {
    let all = builtin();
    for gv in [
        "",
        "api",
        "apis",
        "apis/apps",
        "apis/apps/v2",
        "apis/nope.example.com/v1",
        "api/v2",
        "apis//v1",
        "api/v1/pods",
    ] {
        assert!(document(&all, gv).is_none(), "{gv:?} should have no document");
    }
    assert!(document(&[], "api/v1").is_none(), "no resources, no document");
    assert!(document(&all, "/apis/apps/v1").is_some(), "a leading slash is tolerated");
}

#[test]
fn document_covers_only_the_resources_given() {
    let pods: Vec<_> = builtin().into_iter().filter(|r| r.info.plural == "pods").collect();
    let bytes = document(&pods, "api/v1").expect("pods document");
    let d: Value = serde_json::from_slice(&bytes).expect("JSON");
    let paths = d["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
    assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}/binding"));
    assert!(!paths.keys().any(|p| p.contains("configmaps")), "only pods: {:?}", paths.keys());
    let schemas = d["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
    assert!(!schemas.contains_key("io.k8s.api.core.v1.ConfigMap"), "unreachable schemas are left out");
}

/// kubectl's `supportsQueryParamV3`: it stops at the *first* PATCH operation with the object's GVK
/// (Go map order, so any of them) and needs `fieldValidation` among its own query parameters.
#[test]
fn every_patch_operation_lists_field_validation_and_every_kind_has_one() {
    let docs: HashMap<String, Value> = all_docs().into_iter().collect();
    for r in builtin() {
        let info = &r.info;
        let gv = if info.group.is_empty() {
            format!("api/{}", info.version)
        } else {
            format!("apis/{}/{}", info.group, info.version)
        };
        let d = &docs[&gv];
        let mut found = 0;
        for (path, item) in d["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            let gvk = &patch["x-kubernetes-group-version-kind"];
            let has_fv = patch["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
            assert!(has_fv, "PATCH {path} has no fieldValidation of its own");
            if gvk["group"] == info.group && gvk["version"] == info.version && gvk["kind"] == info.kind {
                found += 1;
            }
        }
        if info.verbs.contains(&"patch") {
            assert!(found >= 1, "no PATCH operation for {}", info.qualified_kind());
        }
    }
}

#[test]
fn every_ref_resolves_in_every_document() {
    fn check(v: &Value, schemas: &Map<String, Value>, at: &str) {
        match v {
            Value::Object(o) => {
                // A schema *property* may be named `$ref` (JSONSchemaProps has one): only a
                // string `$ref` is a reference.
                if let Some(r) = o.get("$ref").filter(|r| r.is_string() || !r.is_object()) {
                    let name = r
                        .as_str()
                        .and_then(|r| r.strip_prefix(REF_PREFIX))
                        .unwrap_or_else(|| panic!("bad ref {r} in {at}"));
                    assert!(schemas.contains_key(name), "{at}: unresolved $ref {name}");
                    assert_eq!(o.len(), 1, "{at}: $ref with siblings: {o:?}");
                }
                o.values().for_each(|v| check(v, schemas, at));
            }
            Value::Array(a) => a.iter().for_each(|v| check(v, schemas, at)),
            _ => {}
        }
    }
    for (gv, d) in all_docs() {
        let schemas = d["components"]["schemas"].as_object().expect("schemas");
        check(&d, schemas, &gv);
    }
    let defs = definitions();
    check(&Value::Object(defs.clone()), defs, "definitions()");
}

#[test]
fn pod_spec_containers_carry_merge_metadata() {
    let containers = &definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    // Upstream leaves it without a list type: server-side apply falls back to the merge key.
    assert!(containers.get("x-kubernetes-list-type").is_none(), "{containers}");
    let ports = &definitions()["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-list-type"], "map");
    assert_eq!(ports["x-kubernetes-list-map-keys"], serde_json::json!(["containerPort", "protocol"]));
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    let volumes = &definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let strategy = &definitions()["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    assert!(strategy.get("allOf").is_some(), "extensions sit beside allOf, not beside $ref: {strategy}");
    let finalizers = &definitions()["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    let tolerations = &definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"];
    assert_eq!(tolerations["x-kubernetes-list-type"], "atomic");
    assert_eq!(definitions()["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"], "atomic");
    let node_selector = &definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["nodeSelector"];
    assert_eq!(node_selector["x-kubernetes-map-type"], "atomic");
}

#[test]
fn kinds_and_lists_carry_their_group_version_kind() {
    let defs = definitions();
    for r in builtin() {
        let i = &r.info;
        let want = serde_json::json!([{ "group": i.group, "kind": i.kind, "version": i.version }]);
        let kind_schema = defs
            .values()
            .find(|s| s["x-kubernetes-group-version-kind"] == want)
            .unwrap_or_else(|| panic!("no schema with GVK of {}", i.qualified_kind()));
        assert!(kind_schema["properties"]["spec"].is_object() || kind_schema["properties"]["metadata"].is_object());
        if i.ephemeral {
            continue;
        }
        let list = serde_json::json!([{ "group": i.group, "kind": i.list_kind, "version": i.version }]);
        let list_schema = defs
            .values()
            .find(|s| s["x-kubernetes-group-version-kind"] == list)
            .unwrap_or_else(|| panic!("no schema for {}", i.list_kind));
        assert_eq!(list_schema["properties"]["items"]["type"], "array");
        for sub in &i.subresources {
            let want = serde_json::json!([{ "group": sub.group, "kind": sub.kind, "version": sub.version }]);
            assert!(defs.values().any(|s| s["x-kubernetes-group-version-kind"] == want), "no schema for {}", sub.kind);
        }
    }
    let delete_options = defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("DeleteOptions GVKs");
    for (group, version) in [("", "v1"), ("apps", "v1"), ("batch", "v1"), ("autoscaling", "v2")] {
        let want = serde_json::json!({ "group": group, "kind": "DeleteOptions", "version": version });
        assert!(delete_options.contains(&want), "DeleteOptions lacks {group}/{version}");
    }
    assert!(defs["io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"]["x-kubernetes-group-version-kind"].is_array());
}

#[test]
fn scalars_have_upstream_v3_shapes() {
    let defs = definitions();
    let ios = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(ios["oneOf"], serde_json::json!([{ "type": "integer" }, { "type": "string" }]));
    assert!(ios.get("x-kubernetes-int-or-string").is_none());
    let q = &defs["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(q["oneOf"], serde_json::json!([{ "type": "string" }, { "type": "number" }]));
    for time in ["Time", "MicroTime"] {
        let t = &defs[&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{time}")];
        assert_eq!((t["type"].as_str(), t["format"].as_str()), (Some("string"), Some("date-time")), "{time}");
    }
    assert_eq!(defs["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"], "object");
}

#[test]
fn metadata_is_never_required() {
    for (name, s) in definitions() {
        let required = s.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
        assert!(!required.contains(&Value::from("metadata")), "{name} requires metadata");
        assert!(!required.is_empty() || s.get("required").is_none(), "{name} has an empty required list");
    }
    let pod_ip = &definitions()["io.k8s.api.core.v1.PodIP"]["required"];
    assert_eq!(pod_ip, &serde_json::json!(["ip"]), "1.33 made PodIP.ip required");
}

/// What `kubectl explain pods.spec.containers.ports` does: find the kind by GVK, then follow
/// properties through `$ref`/`allOf` wrappers and array items.
#[test]
fn explain_can_walk_from_kind_to_nested_field() {
    let d = doc("api/v1");
    let schemas = d["components"]["schemas"].as_object().expect("schemas");
    let want = serde_json::json!([{ "group": "", "kind": "Pod", "version": "v1" }]);
    let pod = schemas.values().find(|s| s["x-kubernetes-group-version-kind"] == want).expect("Pod by GVK");
    let spec = resolve(schemas, &pod["properties"]["spec"]);
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    let container = resolve(schemas, &containers["items"]);
    let port = resolve(schemas, &container["properties"]["ports"]["items"]);
    assert_eq!(port["properties"]["containerPort"]["type"], "integer");
    assert!(port["required"].as_array().is_some_and(|r| r.contains(&Value::from("containerPort"))));
}

/// One fixture line per (schema, property) with upstream's extensions ("{}" for none).
fn upstream_extensions() -> Vec<(String, String, Map<String, Value>)> {
    EXTENSIONS_1_27
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (s, p, e) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or("{}"));
            let ext: Map<String, Value> =
                serde_json::from_str(e).unwrap_or_else(|err| panic!("fixture line {l}: {err}"));
            (s.to_string(), p.to_string(), ext)
        })
        .collect()
}

/// Differences from the 1.27 documents that are upstream's own later changes.
const KNOWN_EXTENSION_CHANGES: &[(&str, &str, &str)] = &[(
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
    "key",
    "upstream dropped the meaningless patch tags on this string field after 1.27",
)];

#[test]
fn extensions_agree_with_upstream_1_27() {
    let defs = definitions();
    let mut compared = 0;
    let mut diffs = Vec::new();
    for (schema, prop, want) in upstream_extensions() {
        let Some(s) = defs.get(&schema) else { continue }; // a kind Skiff does not serve
        let node = if prop.is_empty() { Some(s) } else { s["properties"].get(&prop) };
        let Some(node) = node else { continue }; // removed upstream since 1.27
        compared += 1;
        let mut ours: Map<String, Value> = node
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("x-kubernetes-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut want = want;
        if prop.is_empty() {
            // GVK lists of shared meta types name every served group-version; ours must be a subset.
            let (o, w) =
                (ours.remove("x-kubernetes-group-version-kind"), want.remove("x-kubernetes-group-version-kind"));
            if let (Some(Value::Array(o)), Some(Value::Array(w))) = (&o, &w) {
                assert!(o.iter().all(|g| w.contains(g)), "{schema}: GVKs {o:?} not within upstream's {w:?}");
            } else {
                assert_eq!(o, w, "{schema}: GVK");
            }
        }
        // Unannotated upstream lists are atomic and maps granular; k8s-openapi spells that out.
        let implied = [("x-kubernetes-list-type", "atomic"), ("x-kubernetes-map-type", "granular")];
        for (k, v) in implied {
            if ours.get(k).and_then(Value::as_str) == Some(v) && !want.contains_key(k) {
                ours.remove(k);
            }
        }
        if ours != want && !KNOWN_EXTENSION_CHANGES.iter().any(|(s, p, _)| *s == schema && *p == prop) {
            diffs.push(format!("{schema}.{prop}: upstream {want:?}, ours {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    assert!(compared > 500, "only {compared} (schema, property) pairs compared");
}

/// The short forms `scripts/openapi-reference-fixture.py` writes.
fn short_content_type(ct: &str) -> &str {
    match ct {
        "application/json" => "json",
        "application/json;stream=watch" => "json-watch",
        "application/vnd.kubernetes.protobuf" => "pb",
        "application/vnd.kubernetes.protobuf;stream=watch" => "pb-watch",
        "application/yaml" => "yaml",
        "*/*" => "*",
        "application/apply-patch+yaml" => "apply",
        "application/json-patch+json" => "json-patch",
        "application/merge-patch+json" => "merge-patch",
        "application/strategic-merge-patch+json" => "smp",
        other => other,
    }
}

fn short_schema(r: &str) -> String {
    let name = r.rsplit('/').next().unwrap_or(r);
    if let Some(rest) = name.strip_prefix("io.k8s.apimachinery.pkg.apis.meta.v1.") {
        format!("meta.{rest}")
    } else {
        name.strip_prefix("io.k8s.api.").unwrap_or(name).to_string()
    }
}

fn content_summary(content: &Map<String, Value>) -> String {
    let schemas: BTreeSet<String> =
        content.values().map(|v| v["schema"]["$ref"].as_str().map_or("-".into(), short_schema)).collect();
    let mut types: Vec<&str> = content.keys().map(|k| short_content_type(k)).collect();
    types.sort_unstable();
    assert_eq!(schemas.len(), 1, "one schema per content map: {content:?}");
    format!("{}={}", types.join(","), schemas.into_iter().next().unwrap_or_default())
}

fn responses_summary(responses: &Map<String, Value>) -> String {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (code, r) in responses {
        let c = r.get("content").and_then(Value::as_object).map(content_summary).unwrap_or_default();
        groups.entry(c).or_default().push(code);
    }
    let mut groups: Vec<(String, Vec<&str>)> = groups.into_iter().collect();
    for (_, codes) in &mut groups {
        codes.sort_unstable();
    }
    groups.sort_by(|a, b| a.1.cmp(&b.1));
    groups.iter().map(|(c, codes)| format!("{}:{c}", codes.join(","))).collect::<Vec<_>>().join(" ")
}

fn param_names(params: Option<&Value>) -> String {
    let mut names: Vec<&str> = params
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| !NEWER_PARAMS.contains(n))
        .collect();
    names.sort_unstable();
    names.join(",")
}

/// Our operations in the fixture's line format, keyed by (METHOD, path).
fn operation_lines(d: &Value) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (path, item) in d["paths"].as_object().into_iter().flatten() {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let gvk = &op["x-kubernetes-group-version-kind"];
            let gvk = if gvk.is_object() {
                format!(
                    "{}/{}/{}",
                    gvk["group"].as_str().unwrap_or(""),
                    gvk["version"].as_str().unwrap_or(""),
                    gvk["kind"].as_str().unwrap_or("")
                )
            } else {
                "-".into()
            };
            let tags: Vec<&str> = op["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let body = op["requestBody"]["content"].as_object().map_or("-".into(), content_summary);
            let fields = [
                method.to_uppercase(),
                path.clone(),
                op["operationId"].as_str().unwrap_or("").into(),
                op["x-kubernetes-action"].as_str().unwrap_or("-").into(),
                gvk,
                tags.join(","),
                op["description"].as_str().unwrap_or("").into(),
                param_names(op.get("parameters")),
                param_names(item.get("parameters")),
                body,
                op["responses"].as_object().map(responses_summary).unwrap_or_default(),
            ];
            out.insert((method.to_uppercase(), path.clone()), fields.join("\t"));
        }
    }
    out
}

#[test]
fn operations_agree_with_upstream_1_27() {
    let mut ours = BTreeMap::new();
    for gv in REFERENCE_GVS {
        ours.extend(operation_lines(&doc(gv)));
    }
    let mut upstream = BTreeMap::new();
    for line in OPERATIONS_1_27.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let normalized: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == 7 || i == 8 {
                    f.split(',').filter(|n| !n.is_empty() && !NEWER_PARAMS.contains(n)).collect::<Vec<_>>().join(",")
                } else {
                    (*f).to_string()
                }
            })
            .collect();
        upstream.insert((fields[0].to_string(), fields[1].to_string()), normalized.join("\t"));
    }
    let mut diffs = Vec::new();
    for (key, want) in &upstream {
        match ours.get(key) {
            None => diffs.push(format!("missing {key:?}")),
            Some(got) if got != want => diffs.push(format!("{key:?}\n  upstream {want}\n  ours     {got}")),
            Some(_) => {}
        }
    }
    for key in ours.keys().filter(|k| !upstream.contains_key(*k)) {
        diffs.push(format!("extra {key:?}"));
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    assert!(upstream.len() > 250, "fixture has only {} operations", upstream.len());
}

#[test]
fn pod_patch_operation_matches_upstream_parameters() {
    let upstream: Value = serde_json::from_str(PATCH_POD_1_27).expect("fixture JSON");
    let d = doc("api/v1");
    let ours = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(ours["operationId"], upstream["operationId"]);
    assert_eq!(ours["x-kubernetes-action"], upstream["x-kubernetes-action"]);
    assert_eq!(ours["x-kubernetes-group-version-kind"], upstream["x-kubernetes-group-version-kind"]);
    let (o, u) = (ours["parameters"].as_array().expect("ours"), upstream["parameters"].as_array().expect("upstream"));
    assert_eq!(o.len(), u.len());
    for (o, u) in o.iter().zip(u) {
        for key in ["name", "in", "schema"] {
            assert_eq!(o[key], u[key], "parameter {}: {key}", u["name"]);
        }
        // fieldValidation's text changed after the 1.27 api/v1 snapshot (feature gate gone).
        if u["name"] != "fieldValidation" {
            assert_eq!(o["description"], u["description"], "parameter {}", u["name"]);
        }
    }
    assert_eq!(ours["requestBody"], upstream["requestBody"]);
    let codes = |v: &Value| v["responses"].as_object().map(|r| r.keys().cloned().collect::<Vec<_>>());
    assert_eq!(codes(ours), codes(&upstream));
    assert_eq!(ours["responses"]["200"], upstream["responses"]["200"]);
}

#[test]
fn documents_are_generated_quickly_and_compactly() {
    let all = builtin();
    let start = std::time::Instant::now();
    let total: usize = group_versions(&all).iter().filter_map(|gv| document(&all, gv)).map(|d| d.len()).sum();
    let elapsed = start.elapsed();
    // Generous bounds (debug build, shared 2-core machine); the point is "not seconds, not tens of MB".
    assert!(elapsed < std::time::Duration::from_secs(10), "all documents took {elapsed:?}");
    assert!(total < 20 << 20, "documents total {total} bytes");
    let v1 = document(&all, "api/v1").map_or(0, |d| d.len());
    assert!(v1 > 500_000, "api/v1 suspiciously small: {v1}");
}

/// Every hand-written table entry names a schema (and property) that exists: a typo or an
/// upstream rename would otherwise be skipped silently.
#[test]
fn hand_tables_name_existing_schemas_and_properties() {
    use super::ext;
    let defs = definitions();
    let has_prop = |s: &str, p: &str| defs.get(s).is_some_and(|d| d["properties"].get(p).is_some());
    for (s, p, ..) in ext::PATCH {
        assert!(has_prop(s, p), "PATCH: {s}.{p}");
    }
    for (s, p, _) in ext::PATCH_LIST_TYPES.iter().chain(ext::LIST_TYPE_OVERRIDES) {
        assert!(has_prop(s, p), "list types: {s}.{p}");
        assert!(
            ext::PATCH.iter().any(|(ps, pp, ..)| ps == s && pp == p)
                || ext::LIST_TYPE_OVERRIDES.iter().any(|(os, op, _)| os == s && op == p),
            "{s}.{p}: explicit list type without a patch tag"
        );
    }
    for s in ext::ATOMIC_STRUCTS {
        assert_eq!(defs.get(*s).map(|d| &d["x-kubernetes-map-type"]), Some(&Value::from("atomic")), "{s}");
    }
    for (s, p, _) in ext::STRUCT_PROPERTY_TYPES {
        assert!(has_prop(s, p), "struct property: {s}.{p}");
    }
    for (s, discriminator, fields) in ext::UNIONS {
        assert!(has_prop(s, discriminator), "union: {s}.{discriminator}");
        for (f, _) in *fields {
            assert!(has_prop(s, f), "union: {s}.{f}");
        }
    }
}

#[test]
#[ignore = "writes the documents to $OPENAPI_DUMP_DIR for inspection by hand"]
fn dump_documents() {
    let Ok(dir) = std::env::var("OPENAPI_DUMP_DIR") else {
        return;
    };
    let all = builtin();
    for gv in group_versions(&all) {
        let bytes = document(&all, &gv).unwrap_or_default();
        std::fs::write(format!("{dir}/{}.json", gv.replace('/', "__")), bytes).expect("write");
    }
}
