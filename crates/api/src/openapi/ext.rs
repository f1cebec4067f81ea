//! The `x-kubernetes-*` extensions that upstream's component schemas carry and schemars output
//! lacks, and the code that puts them on the generated schemas.
//!
//! Sources:
//! - list/map topology (`x-kubernetes-list-type`, `-list-map-keys`, `-map-type` on properties):
//!   the generated [`LIST_TYPES`] table, read out of k8s-openapi's `DeepMerge` impls;
//! - strategic-merge-patch metadata (`x-kubernetes-patch-strategy`, `-patch-merge-key`): the
//!   hand-written [`PATCH`] table below, upstream 1.33's `patchStrategy` / `patchMergeKey` struct
//!   tags for every group Skiff serves;
//! - smaller hand tables for what neither records: the explicit list types of lists that also
//!   carry a merge key, atomic structs (`+structType=atomic`), and unions.
//!
//! Where the extensions sit matters to readers (kubectl's patch-meta lookup, our strategic merge
//! patch and server-side apply): on the *property* schema, next to `type`/`items` or the
//! `allOf: [{$ref}]` wrapper, exactly as upstream places them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::list_types::LIST_TYPES;

/// How a list or map property merges (upstream's list-type / map-type extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Merge {
    /// `x-kubernetes-list-type: atomic`: replaced as a whole.
    ListAtomic,
    /// `x-kubernetes-list-type: set`: scalar items, merged by value.
    ListSet,
    /// `x-kubernetes-list-type: map` with `x-kubernetes-list-map-keys`.
    ListMap(&'static [&'static str]),
    /// `x-kubernetes-map-type: atomic`.
    MapAtomic,
    /// `x-kubernetes-map-type: granular` (upstream's default for maps).
    MapGranular,
}

/// Upstream 1.33's `patchStrategy` / `patchMergeKey` struct tags, as (schema, property, strategy,
/// merge key), for the groups in `resources.rs` and the meta types they embed. Taken from the
/// `k8s.io/api` v0.33 struct tags (inline structs flattened, e.g. `EphemeralContainerCommon` into
/// `EphemeralContainer`; `ComponentStatus`, not served, left out); `scripts/go-patch-tags.py`
/// prints them from a kubectl 1.33 binary for re-checking. The 1.27 reference documents agree on
/// every field they share except `LabelSelectorRequirement.key`, whose meaningless tag upstream
/// dropped.
///
/// Not tagged upstream, so absent here on purpose: `CertificateSigningRequestStatus.conditions`,
/// `CronJobStatus.active`, and most `conditions` lists added after 1.20 (they use list-type map only).
#[rustfmt::skip]
pub(super) static PATCH: &[(&str, &str, &str, Option<&str>)] = &[
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "matchConditions", "merge", Some("name")),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration", "webhooks", "merge", Some("name")),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "matchConditions", "merge", Some("name")),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "variables", "merge", Some("name")),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "matchConditions", "merge", Some("name")),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration", "webhooks", "merge", Some("name")),
    ("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", None),
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.batch.v1.JobStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    ("io.k8s.api.core.v1.Container", "ports", "merge", Some("containerPort")),
    ("io.k8s.api.core.v1.Container", "volumeDevices", "merge", Some("devicePath")),
    ("io.k8s.api.core.v1.Container", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", Some("name")),
    ("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", "merge", Some("name")),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", "merge", Some("containerPort")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeDevices", "merge", Some("devicePath")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.NamespaceStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", "merge", Some("type")),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.PodSpec", "containers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", "merge,retainKeys", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "merge", Some("topologyKey")),
    ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", Some("name")),
    ("io.k8s.api.core.v1.PodStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", Some("name")),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", "merge", Some("name")),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", Some("port")),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.networking.v1.ServiceCIDRStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector", "replace", None),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.storage.v1.CSINodeSpec", "drivers", "merge", Some("name")),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", None),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", Some("uid")),
];

/// The explicit list type upstream gives lists that also have `patchStrategy: merge`.
///
/// k8s-openapi derives a `list::map` keyed by the merge key (or `list::set` for scalars) for
/// *every* merge-patched list, whatever upstream's `+listType` says, so [`LIST_TYPES`] carries no
/// information for them. Upstream leaves most of them without a list type (server-side apply then
/// falls back to the merge key, see `kube-openapi/pkg/schemaconv`); these are the exceptions.
#[rustfmt::skip]
pub(super) static PATCH_LIST_TYPES: &[(&str, &str, Merge)] = &[
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "matchConditions", Merge::ListMap(&["name"])),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "matchConditions", Merge::ListMap(&["name"])),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "variables", Merge::ListMap(&["name"])),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "matchConditions", Merge::ListMap(&["name"])),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", Merge::ListMap(&["type"])),
    ("io.k8s.api.batch.v1.JobStatus", "conditions", Merge::ListAtomic),
    ("io.k8s.api.core.v1.Container", "ports", Merge::ListMap(&["containerPort", "protocol"])),
    ("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", Merge::ListMap(&["name"])),
    ("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", Merge::ListAtomic),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", Merge::ListMap(&["containerPort", "protocol"])),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", Merge::ListMap(&["name"])),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", Merge::ListMap(&["name"])),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", Merge::ListMap(&["topologyKey", "whenUnsatisfiable"])),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", Merge::ListAtomic),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", Merge::ListMap(&["name"])),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", Merge::ListMap(&["port", "protocol"])),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", Merge::ListMap(&["type"])),
    ("io.k8s.api.networking.v1.ServiceCIDRStatus", "conditions", Merge::ListMap(&["type"])),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", Merge::ListMap(&["type"])),
];

/// Lists where k8s-openapi's merge strategy is its own invention rather than upstream's list type
/// (a fix-up keyed by `metadata.name`); upstream marks them atomic.
pub(super) static LIST_TYPE_OVERRIDES: &[(&str, &str, Merge)] =
    &[("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates", Merge::ListAtomic)];

/// Structs upstream marks `+structType=atomic` (schema-level `x-kubernetes-map-type: atomic`):
/// references and selectors that only make sense as a whole.
pub(super) static ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

/// Struct-valued properties with their own `+structType` (`x-kubernetes-map-type` on the property).
pub(super) static STRUCT_PROPERTY_TYPES: &[(&str, &str, &str)] =
    &[("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef", "granular")];

/// Discriminated unions (`x-kubernetes-unions`): (schema, discriminator, [(field, value)]).
/// (schema, discriminator, [(field, discriminator value)]).
pub(super) type Union = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

pub(super) static UNIONS: &[Union] = &[
    ("io.k8s.api.core.v1.AppArmorProfile", "type", &[("localhostProfile", "LocalhostProfile")]),
    ("io.k8s.api.core.v1.SeccompProfile", "type", &[("localhostProfile", "LocalhostProfile")]),
];

/// Puts every extension above on `defs` (the component schemas, keyed by upstream name).
pub(super) fn apply(defs: &mut Map<String, Value>) {
    let mut merges: HashMap<(&str, &str), Merge> = LIST_TYPES.iter().map(|(s, p, m)| ((*s, *p), *m)).collect();
    for (s, p, m) in LIST_TYPE_OVERRIDES {
        merges.insert((s, p), *m);
    }
    let patch_lists: HashMap<(&str, &str), Merge> = PATCH_LIST_TYPES.iter().map(|(s, p, m)| ((*s, *p), *m)).collect();
    let patches: HashMap<(&str, &str), (&str, Option<&str>)> =
        PATCH.iter().map(|(s, p, strategy, key)| ((*s, *p), (*strategy, *key))).collect();

    for (name, schema) in defs.iter_mut() {
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (prop, ps) in props.iter_mut() {
            let key = (name.as_str(), prop.as_str());
            let patch = patches.get(&key);
            let merge = match patch {
                Some((strategy, _)) if strategy.split(',').any(|s| s == "merge") => patch_lists.get(&key),
                _ => merges.get(&key),
            };
            let mut ext = Vec::new();
            match merge {
                Some(Merge::ListAtomic) => ext.push(("x-kubernetes-list-type", json!("atomic"))),
                Some(Merge::ListSet) => ext.push(("x-kubernetes-list-type", json!("set"))),
                Some(Merge::ListMap(keys)) => {
                    ext.push(("x-kubernetes-list-map-keys", json!(keys)));
                    ext.push(("x-kubernetes-list-type", json!("map")));
                }
                Some(Merge::MapAtomic) => ext.push(("x-kubernetes-map-type", json!("atomic"))),
                Some(Merge::MapGranular) => ext.push(("x-kubernetes-map-type", json!("granular"))),
                None => {}
            }
            if let Some((strategy, merge_key)) = patch {
                if let Some(k) = merge_key {
                    ext.push(("x-kubernetes-patch-merge-key", json!(k)));
                }
                ext.push(("x-kubernetes-patch-strategy", json!(strategy)));
            }
            for (k, v) in ext {
                insert_beside_ref(ps, k, v);
            }
        }
    }
    for (schema, prop, map_type) in STRUCT_PROPERTY_TYPES {
        if let Some(ps) = defs.get_mut(*schema).and_then(|s| s.pointer_mut(&format!("/properties/{prop}"))) {
            insert_beside_ref(ps, "x-kubernetes-map-type", json!(map_type));
        }
    }
    for name in ATOMIC_STRUCTS {
        if let Some(Value::Object(s)) = defs.get_mut(*name) {
            s.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
    for (name, discriminator, fields) in UNIONS {
        if let Some(Value::Object(s)) = defs.get_mut(*name) {
            let by: Map<String, Value> = fields.iter().map(|(f, v)| ((*f).to_string(), json!(v))).collect();
            s.insert(
                "x-kubernetes-unions".into(),
                json!([{"discriminator": discriminator, "fields-to-discriminateBy": by}]),
            );
        }
    }
}

/// Adds `key: value` to a property schema. A bare `{"$ref": …}` is first wrapped as
/// `{"allOf": [{"$ref": …}]}`, because OpenAPI 3.0 ignores the siblings of `$ref`.
pub(super) fn insert_beside_ref(schema: &mut Value, key: &str, value: Value) {
    let Value::Object(obj) = schema else { return };
    if let Some(r) = obj.remove("$ref") {
        obj.insert("allOf".into(), json!([{ "$ref": r }]));
    }
    obj.insert(key.into(), value);
}
