//! Generates `definitions.json`, the component schemas [`super::schemas::load`] embeds, from
//! k8s-openapi's `JsonSchema` impls. A test, so that the file is never stale: it fails when the
//! generated catalog differs from the file, and rewrites the file when `SKIFF_BLESS=1`:
//!
//! ```text
//! SKIFF_BLESS=1 cargo test -p skiff-api --lib definitions_file_is_current
//! ```

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::{
    admissionregistration::v1 as admreg, apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
    autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch, certificates::v1 as certs,
    coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as events, networking::v1 as net,
    node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::{ListableResource, Resource};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::schemas::{API_RESOURCE_LIST, Catalog, DELETE_OPTIONS, Gvk, REF_PREFIX, STATUS, WATCH_EVENT};

const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// One kind whose schema was generated.
struct KindEntry {
    gvk: Gvk,
    /// `PodList`, for kinds that have a list.
    list_kind: Option<&'static str>,
    schema: String,
}

struct Builder {
    generator: SchemaGenerator,
    kinds: Vec<KindEntry>,
}

impl Builder {
    /// A top-level kind served by a resource: its schema, and its list's.
    fn kind<K: Resource + ListableResource + JsonSchema>(&mut self) {
        self.generator.subschema_for::<K>();
        self.kinds.push(KindEntry {
            gvk: (K::GROUP, K::VERSION, K::KIND),
            list_kind: Some(K::LIST_KIND),
            schema: K::schema_name().into_owned(),
        });
    }

    /// A kind only exchanged through a subresource (`Scale`, `Binding`).
    fn object<K: Resource + JsonSchema>(&mut self) {
        self.generator.subschema_for::<K>();
        self.kinds.push(KindEntry {
            gvk: (K::GROUP, K::VERSION, K::KIND),
            list_kind: None,
            schema: K::schema_name().into_owned(),
        });
    }

    fn schema<T: JsonSchema>(&mut self) {
        self.generator.subschema_for::<T>();
    }
}

/// Generates the whole catalog. `served` are the group-versions listed in the GVKs of the
/// schemas shared by every group (`DeleteOptions`, `WatchEvent`), as upstream does.
pub(super) fn build(served: &BTreeSet<(&'static str, &'static str)>) -> Catalog {
    let mut b = Builder { generator: SchemaSettings::openapi3().into_generator(), kinds: Vec::new() };
    // Keep in step with `resources::builtin()`; a test checks every served kind has a schema.
    b.kind::<core::ConfigMap>();
    b.kind::<core::Endpoints>();
    b.kind::<core::Event>();
    b.kind::<core::LimitRange>();
    b.kind::<core::Namespace>();
    b.kind::<core::Node>();
    b.kind::<core::PersistentVolumeClaim>();
    b.kind::<core::PersistentVolume>();
    b.kind::<core::Pod>();
    b.kind::<core::PodTemplate>();
    b.kind::<core::ReplicationController>();
    b.kind::<core::ResourceQuota>();
    b.kind::<core::Secret>();
    b.kind::<core::ServiceAccount>();
    b.kind::<core::Service>();
    b.object::<core::Binding>();
    b.kind::<admreg::MutatingWebhookConfiguration>();
    b.kind::<admreg::ValidatingAdmissionPolicy>();
    b.kind::<admreg::ValidatingAdmissionPolicyBinding>();
    b.kind::<admreg::ValidatingWebhookConfiguration>();
    b.kind::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>();
    b.kind::<apps::ControllerRevision>();
    b.kind::<apps::DaemonSet>();
    b.kind::<apps::Deployment>();
    b.kind::<apps::ReplicaSet>();
    b.kind::<apps::StatefulSet>();
    b.object::<authn::SelfSubjectReview>();
    b.object::<authz::SelfSubjectAccessReview>();
    b.object::<authz::SelfSubjectRulesReview>();
    b.object::<authz::SubjectAccessReview>();
    b.kind::<as1::HorizontalPodAutoscaler>();
    b.object::<as1::Scale>();
    b.kind::<as2::HorizontalPodAutoscaler>();
    b.kind::<batch::CronJob>();
    b.kind::<batch::Job>();
    b.kind::<certs::CertificateSigningRequest>();
    b.kind::<coord::Lease>();
    b.kind::<disc::EndpointSlice>();
    b.kind::<events::Event>();
    b.kind::<net::IngressClass>();
    b.kind::<net::Ingress>();
    b.kind::<net::IPAddress>();
    b.kind::<net::NetworkPolicy>();
    b.kind::<net::ServiceCIDR>();
    b.kind::<node::RuntimeClass>();
    b.kind::<policy::PodDisruptionBudget>();
    b.object::<policy::Eviction>();
    b.kind::<rbac::ClusterRoleBinding>();
    b.kind::<rbac::ClusterRole>();
    b.kind::<rbac::RoleBinding>();
    b.kind::<rbac::Role>();
    b.kind::<sched::PriorityClass>();
    b.kind::<storage::CSIDriver>();
    b.kind::<storage::CSINode>();
    b.kind::<storage::CSIStorageCapacity>();
    b.kind::<storage::StorageClass>();
    b.kind::<storage::VolumeAttachment>();
    // The meta types every group-version document refers to.
    b.schema::<meta::Status>();
    b.schema::<meta::DeleteOptions>();
    b.schema::<meta::WatchEvent<core::Pod>>();
    b.schema::<meta::Patch>();
    b.schema::<meta::APIResourceList>();
    b.schema::<meta::ListMeta>();

    let Builder { mut generator, kinds } = b;
    let mut defs = generator.take_definitions(true);
    upstream_shapes(&mut defs);
    upstream_required(&mut defs);
    let mut by_gvk = HashMap::new();
    for k in &kinds {
        set_gvks(&mut defs, &k.schema, &[k.gvk]);
        by_gvk.insert(k.gvk, k.schema.clone());
        if let Some(list_kind) = k.list_kind {
            let list_schema = list_schema_name(&k.schema, list_kind);
            let list = list_schema_for(&defs, k, list_kind);
            defs.insert(list_schema.clone(), list);
            by_gvk.insert((k.gvk.0, k.gvk.1, list_kind), list_schema);
        }
    }
    let everywhere = |kind: &'static str| served.iter().map(|(g, v)| (*g, *v, kind)).collect::<Vec<Gvk>>();
    set_gvks(&mut defs, DELETE_OPTIONS, &everywhere("DeleteOptions"));
    set_gvks(&mut defs, WATCH_EVENT, &everywhere("WatchEvent"));
    set_gvks(&mut defs, STATUS, &[("", "v1", "Status")]);
    set_gvks(&mut defs, API_RESOURCE_LIST, &[("", "v1", "APIResourceList")]);
    super::ext::apply(&mut defs);
    defs.sort_keys();
    Catalog { defs, by_gvk }
}

/// `io.k8s.api.core.v1.Pod` + `PodList` → `io.k8s.api.core.v1.PodList`.
fn list_schema_name(schema: &str, list_kind: &str) -> String {
    match schema.rsplit_once('.') {
        Some((package, _)) => format!("{package}.{list_kind}"),
        None => list_kind.to_string(),
    }
}

/// The schema of `…List`, shaped like upstream's (k8s-openapi has a generic `List<T>` without a
/// schema). The `apiVersion`/`kind` property texts are the item kind's, which upstream shares.
fn list_schema_for(defs: &Map<String, Value>, k: &KindEntry, list_kind: &'static str) -> Value {
    let (group, version, kind) = k.gvk;
    let prop = |name: &str| defs.get(&k.schema).and_then(|s| s.pointer(&format!("/properties/{name}"))).cloned();
    let mut properties = Map::new();
    if let Some(p) = prop("apiVersion") {
        properties.insert("apiVersion".into(), p);
    }
    properties.insert(
        "items".into(),
        json!({
            "description": format!("items is the list of {kind} objects."),
            "type": "array",
            "items": { "$ref": format!("{REF_PREFIX}{}", k.schema) },
        }),
    );
    if let Some(p) = prop("kind") {
        properties.insert("kind".into(), p);
    }
    properties.insert(
        "metadata".into(),
        json!({
            "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            "allOf": [{ "$ref": format!("{REF_PREFIX}{LIST_META}") }],
        }),
    );
    json!({
        "description": format!("{list_kind} is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": properties,
        "x-kubernetes-group-version-kind": [gvk_value((group, version, list_kind))],
    })
}

/// Upstream's v3 schemas of the two "int or string"-like scalars (`OpenAPIV3OneOfTypes` in
/// apimachinery); k8s-openapi describes both with `x-kubernetes-int-or-string` alone, which is
/// the CRD idiom, not what the built-in documents say.
fn upstream_shapes(defs: &mut Map<String, Value>) {
    if let Some(Value::Object(s)) = defs.get_mut(INT_OR_STRING) {
        s.remove("x-kubernetes-int-or-string");
        s.insert("format".into(), json!("int-or-string"));
        s.insert("oneOf".into(), json!([{ "type": "integer" }, { "type": "string" }]));
    }
    if let Some(Value::Object(s)) = defs.get_mut(QUANTITY) {
        s.remove("x-kubernetes-int-or-string");
        s.insert("oneOf".into(), json!([{ "type": "string" }, { "type": "number" }]));
    }
}

/// Properties k8s-openapi makes required (non-`Option` in Rust) that upstream leaves optional
/// (`omitempty` in Go): every `metadata`, and the `name` of `LocalObjectReference` and of the
/// types that inline it (upstream defaults it to "").
const NOT_REQUIRED: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.ConfigMapEnvSource", "name"),
    ("io.k8s.api.core.v1.ConfigMapKeySelector", "name"),
    ("io.k8s.api.core.v1.ConfigMapProjection", "name"),
    ("io.k8s.api.core.v1.ConfigMapVolumeSource", "name"),
    ("io.k8s.api.core.v1.LocalObjectReference", "name"),
    ("io.k8s.api.core.v1.SecretEnvSource", "name"),
    ("io.k8s.api.core.v1.SecretKeySelector", "name"),
    ("io.k8s.api.core.v1.SecretProjection", "name"),
];

fn upstream_required(defs: &mut Map<String, Value>) {
    for (name, schema) in defs.iter_mut() {
        let Value::Object(obj) = schema else { continue };
        let Some(Value::Array(required)) = obj.get_mut("required") else {
            continue;
        };
        required.retain(|p| {
            let p = p.as_str().unwrap_or_default();
            p != "metadata" && !NOT_REQUIRED.contains(&(name.as_str(), p))
        });
        if required.is_empty() {
            obj.remove("required");
        }
    }
}

fn gvk_value((group, version, kind): Gvk) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn set_gvks(defs: &mut Map<String, Value>, schema: &str, gvks: &[Gvk]) {
    if let Some(Value::Object(s)) = defs.get_mut(schema) {
        let list: Vec<Value> = gvks.iter().copied().map(gvk_value).collect();
        s.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
    }
}

/// The catalog as `definitions.json` holds it: compact JSON, one definition per line (so that a
/// change to a type shows as a change to its line), kinds sorted.
pub(super) fn render(cat: &Catalog) -> String {
    let mut kinds: Vec<(&str, &str, &str, &str)> =
        cat.by_gvk.iter().map(|((g, v, k), s)| (*g, *v, *k, s.as_str())).collect();
    kinds.sort_unstable();
    let kinds: Vec<String> = kinds.iter().map(|k| json!([k.0, k.1, k.2, k.3]).to_string()).collect();
    let defs: Vec<String> = cat.defs.iter().map(|(name, schema)| format!("{}:{schema}", json!(name))).collect();
    format!("{{\"kinds\":[\n{}\n],\n\"definitions\":{{\n{}\n}}}}\n", kinds.join(",\n"), defs.join(",\n"))
}

/// The group-versions `DeleteOptions` and `WatchEvent` list: every built-in one, as upstream's
/// do.
fn served() -> BTreeSet<(&'static str, &'static str)> {
    let mut served: BTreeSet<(&'static str, &'static str)> =
        super::paths::group_versions_of(&crate::resources::builtin()).into_iter().collect();
    served.insert(("", "v1"));
    served
}

#[test]
fn definitions_file_is_current() {
    let generated = render(&build(&served()));
    if std::env::var_os("SKIFF_BLESS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi/definitions.json");
        std::fs::write(path, &generated).expect("writing definitions.json");
        return;
    }
    assert!(
        generated == super::schemas::EMBEDDED,
        "crates/api/src/openapi/definitions.json is stale (a type, a served kind or an extension \
         table changed): regenerate it with `SKIFF_BLESS=1 cargo test -p skiff-api --lib \
         definitions_file_is_current`"
    );
    // And what the server reads back is what was generated.
    let (loaded, built) = (super::schemas::load(), build(&served()));
    assert_eq!(loaded.by_gvk, built.by_gvk);
    assert!(loaded.defs == built.defs);
    assert_eq!(loaded.defs.keys().collect::<Vec<_>>(), built.defs.keys().collect::<Vec<_>>());
}
