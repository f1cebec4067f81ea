//! The table of built-in resources: what discovery advertises and what the generic registry
//! serves (scope, names, verbs, subresources), each bound to its k8s-openapi type and strategy.
//!
//! Adding a built-in resource is one line in [`builtin`]; its defaults and validation live in
//! `strategy/<group>.rs`, its table columns in `table/`.

use std::sync::Arc;

use crate::strategy::{ObjectStrategy, Typed};

/// One subresource as discovery shows it (`pods/status`, `deployments/scale`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// The path segment after the object name: `status`, `scale`, `binding`.
    pub name: &'static str,
    /// The group of the kind the subresource takes and returns ("" for core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// Everything about a resource that is the same for every object of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group ("" for the legacy core group).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// The URL path segment (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: Vec<SubresourceInfo>,
    /// Whether `metadata.generation` is maintained (bumped when anything but metadata and status
    /// changes). Upstream does it for kinds with a spec that controllers observe.
    pub tracks_generation: bool,
    /// The resource whose storage this version shares, as `<group>/<plural>` (for instance
    /// autoscaling/v1 and autoscaling/v2 HorizontalPodAutoscalers live in one place).
    pub storage: String,
    /// Create-only resources that are answered, never stored (access and identity reviews).
    pub ephemeral: bool,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `Deployment.apps`, or `Pod` for the core group: how upstream names a kind in messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.to_string() } else { format!("{}.{}", self.kind, self.group) }
    }

    /// `deployments.apps`, or `pods`: how upstream names a resource in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// A resource with the code that handles its objects.
#[derive(Clone)]
pub struct Resource {
    pub info: ResourceInfo,
    pub strategy: Arc<dyn ObjectStrategy>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource").field("info", &self.info).finish_non_exhaustive()
    }
}

/// The verbs of an ordinary resource.
pub const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// Per-resource options for [`builtin`]; the group, version, kind and plural come from the type.
struct Opts {
    singular: &'static str,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    extra_sub: &'static [(&'static str, &'static str, &'static str, &'static str, &'static [&'static str])],
    storage: Option<&'static str>,
}

const fn opts(singular: &'static str) -> Opts {
    Opts {
        singular,
        short: &[],
        categories: &[],
        verbs: ALL_VERBS,
        status: false,
        scale: false,
        generation: false,
        extra_sub: &[],
        storage: None,
    }
}

impl Opts {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short = s;
        self
    }
    const fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
    const fn verbs(mut self, v: &'static [&'static str]) -> Self {
        self.verbs = v;
        self
    }
    #[allow(clippy::type_complexity)]
    const fn sub(
        mut self,
        s: &'static [(&'static str, &'static str, &'static str, &'static str, &'static [&'static str])],
    ) -> Self {
        self.extra_sub = s;
        self
    }
    const fn storage(mut self, s: &'static str) -> Self {
        self.storage = Some(s);
        self
    }
}

/// Compile-time scope of a k8s-openapi type.
pub trait ScopeExt {
    const NAMESPACED: bool;
}
impl ScopeExt for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl ScopeExt for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

fn typed<K>(o: Opts) -> Resource
where
    K: k8s_openapi::Resource + k8s_openapi::ListableResource + crate::strategy::KindStrategy,
    K::Scope: ScopeExt,
{
    let mut subresources = Vec::new();
    if o.status {
        subresources.push(SubresourceInfo {
            name: "status",
            group: K::GROUP,
            version: K::VERSION,
            kind: K::KIND,
            verbs: STATUS_VERBS,
        });
    }
    if o.scale {
        subresources.push(SubresourceInfo {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: STATUS_VERBS,
        });
    }
    for (name, group, version, kind, verbs) in o.extra_sub {
        subresources.push(SubresourceInfo { name, group, version, kind, verbs });
    }
    let storage = match o.storage {
        Some(s) => s.to_string(),
        None => format!("{}/{}", K::GROUP, K::URL_PATH_SEGMENT),
    };
    let info = ResourceInfo {
        group: K::GROUP,
        version: K::VERSION,
        kind: K::KIND,
        list_kind: K::LIST_KIND,
        plural: K::URL_PATH_SEGMENT,
        singular: o.singular,
        namespaced: K::Scope::NAMESPACED,
        short_names: o.short,
        categories: o.categories,
        verbs: o.verbs,
        subresources,
        tracks_generation: o.generation,
        storage,
        ephemeral: false,
    };
    Resource { info, strategy: Arc::new(Typed::<K>::new()) }
}

/// A create-only resource that is computed per request and never stored (reviews).
fn ephemeral<K>(singular: &'static str) -> Resource
where
    K: k8s_openapi::Resource + crate::strategy::KindStrategy,
    K::Scope: ScopeExt,
{
    let info = ResourceInfo {
        group: K::GROUP,
        version: K::VERSION,
        kind: K::KIND,
        list_kind: "",
        plural: K::URL_PATH_SEGMENT,
        singular,
        namespaced: K::Scope::NAMESPACED,
        short_names: &[],
        categories: &[],
        verbs: &["create"],
        subresources: Vec::new(),
        tracks_generation: false,
        storage: format!("{}/{}", K::GROUP, K::URL_PATH_SEGMENT),
        ephemeral: true,
    };
    Resource { info, strategy: Arc::new(Typed::<K>::new()) }
}

/// `customresourcedefinitions`: its strategy (CRD validation, naming, status) is written
/// against JSON directly rather than through `KindStrategy`.
fn customresourcedefinitions() -> Resource {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition as Crd;
    use k8s_openapi::{ListableResource, Resource as _};
    let info = ResourceInfo {
        group: Crd::GROUP,
        version: Crd::VERSION,
        kind: Crd::KIND,
        list_kind: Crd::LIST_KIND,
        plural: Crd::URL_PATH_SEGMENT,
        singular: "customresourcedefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        verbs: ALL_VERBS,
        subresources: vec![SubresourceInfo {
            name: "status",
            group: Crd::GROUP,
            version: Crd::VERSION,
            kind: Crd::KIND,
            verbs: STATUS_VERBS,
        }],
        tracks_generation: true,
        storage: format!("{}/{}", Crd::GROUP, Crd::URL_PATH_SEGMENT),
        ephemeral: false,
    };
    Resource { info, strategy: Arc::new(crate::crd::CustomResourceDefinitionStrategy) }
}

/// Every built-in resource Skiff serves, in discovery order (groups in upstream's order).
pub fn builtin() -> Vec<Resource> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admreg, apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
        autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch, certificates::v1 as certs,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as events,
        networking::v1 as net, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
        storage::v1 as storage,
    };
    vec![
        // core/v1
        typed::<core::ConfigMap>(opts("configmap").short(&["cm"])),
        typed::<core::Endpoints>(opts("endpoints").short(&["ep"])),
        typed::<core::Event>(opts("event").short(&["ev"]).storage("/events")),
        typed::<core::LimitRange>(opts("limitrange").short(&["limits"])),
        typed::<core::Namespace>(
            opts("namespace")
                .short(&["ns"])
                .status()
                .verbs(&["create", "delete", "get", "list", "patch", "update", "watch"]),
        ),
        typed::<core::Node>(opts("node").short(&["no"]).status()),
        typed::<core::PersistentVolumeClaim>(opts("persistentvolumeclaim").short(&["pvc"]).status()),
        typed::<core::PersistentVolume>(opts("persistentvolume").short(&["pv"]).status()),
        typed::<core::Pod>(opts("pod").short(&["po"]).all().status().sub(&[
            ("binding", "", "v1", "Binding", &["create"]),
            ("eviction", "policy", "v1", "Eviction", &["create"]),
        ])),
        typed::<core::PodTemplate>(opts("podtemplate")),
        typed::<core::ReplicationController>(
            opts("replicationcontroller").short(&["rc"]).all().status().scale().generation(),
        ),
        typed::<core::ResourceQuota>(opts("resourcequota").short(&["quota"]).status()),
        typed::<core::Secret>(opts("secret")),
        typed::<core::ServiceAccount>(opts("serviceaccount").short(&["sa"])),
        typed::<core::Service>(opts("service").short(&["svc"]).all().status()),
        // admissionregistration.k8s.io/v1
        typed::<admreg::MutatingWebhookConfiguration>(opts("mutatingwebhookconfiguration").generation()),
        typed::<admreg::ValidatingAdmissionPolicy>(opts("validatingadmissionpolicy").status().generation()),
        typed::<admreg::ValidatingAdmissionPolicyBinding>(opts("validatingadmissionpolicybinding").generation()),
        typed::<admreg::ValidatingWebhookConfiguration>(opts("validatingwebhookconfiguration").generation()),
        // apiextensions.k8s.io/v1
        customresourcedefinitions(),
        // apps/v1
        typed::<apps::ControllerRevision>(opts("controllerrevision")),
        typed::<apps::DaemonSet>(opts("daemonset").short(&["ds"]).all().status().generation()),
        typed::<apps::Deployment>(opts("deployment").short(&["deploy"]).all().status().scale().generation()),
        typed::<apps::ReplicaSet>(opts("replicaset").short(&["rs"]).all().status().scale().generation()),
        typed::<apps::StatefulSet>(opts("statefulset").short(&["sts"]).all().status().scale().generation()),
        // authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews, answered not stored
        ephemeral::<authn::SelfSubjectReview>("selfsubjectreview"),
        ephemeral::<authz::SelfSubjectAccessReview>("selfsubjectaccessreview"),
        ephemeral::<authz::SelfSubjectRulesReview>("selfsubjectrulesreview"),
        ephemeral::<authz::SubjectAccessReview>("subjectaccessreview"),
        // autoscaling/v2 (preferred) and v1 share one storage
        typed::<as2::HorizontalPodAutoscaler>(
            opts("horizontalpodautoscaler").short(&["hpa"]).all().status().generation(),
        ),
        typed::<as1::HorizontalPodAutoscaler>(
            opts("horizontalpodautoscaler")
                .short(&["hpa"])
                .all()
                .status()
                .generation()
                .storage("autoscaling/horizontalpodautoscalers"),
        ),
        // batch/v1
        typed::<batch::CronJob>(opts("cronjob").short(&["cj"]).all().status().generation()),
        typed::<batch::Job>(opts("job").all().status().generation()),
        // certificates.k8s.io/v1
        typed::<certs::CertificateSigningRequest>(opts("certificatesigningrequest").short(&["csr"]).status().sub(&[(
            "approval",
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            &["get", "patch", "update"],
        )])),
        // coordination.k8s.io/v1
        typed::<coord::Lease>(opts("lease")),
        // discovery.k8s.io/v1
        typed::<disc::EndpointSlice>(opts("endpointslice")),
        // events.k8s.io/v1 shares storage with core/v1 events
        typed::<events::Event>(opts("event").short(&["ev"]).storage("/events")),
        // networking.k8s.io/v1
        typed::<net::IngressClass>(opts("ingressclass")),
        typed::<net::Ingress>(opts("ingress").short(&["ing"]).status().generation()),
        typed::<net::IPAddress>(opts("ipaddress").short(&["ip"])),
        typed::<net::NetworkPolicy>(opts("networkpolicy").short(&["netpol"]).generation()),
        typed::<net::ServiceCIDR>(opts("servicecidr").status()),
        // node.k8s.io/v1
        typed::<node::RuntimeClass>(opts("runtimeclass")),
        // policy/v1
        typed::<policy::PodDisruptionBudget>(opts("poddisruptionbudget").short(&["pdb"]).status().generation()),
        // rbac.authorization.k8s.io/v1
        typed::<rbac::ClusterRoleBinding>(opts("clusterrolebinding")),
        typed::<rbac::ClusterRole>(opts("clusterrole")),
        typed::<rbac::RoleBinding>(opts("rolebinding")),
        typed::<rbac::Role>(opts("role")),
        // scheduling.k8s.io/v1
        typed::<sched::PriorityClass>(opts("priorityclass").short(&["pc"])),
        // storage.k8s.io/v1
        typed::<storage::CSIDriver>(opts("csidriver")),
        typed::<storage::CSINode>(opts("csinode")),
        typed::<storage::CSIStorageCapacity>(opts("csistoragecapacity")),
        typed::<storage::StorageClass>(opts("storageclass").short(&["sc"])),
        typed::<storage::VolumeAttachment>(opts("volumeattachment").status()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        let all = builtin();
        let mut seen = std::collections::HashSet::new();
        for r in &all {
            assert!(seen.insert((r.info.group, r.info.version, r.info.plural)), "duplicate {}", r.info.plural);
            assert_eq!(r.info.singular, r.info.kind.to_lowercase(), "singular of {}", r.info.kind);
        }
        let pods = all.iter().find(|r| r.info.plural == "pods").unwrap();
        assert!(pods.info.namespaced);
        assert_eq!(pods.info.api_version(), "v1");
        let ns = all.iter().find(|r| r.info.plural == "namespaces").unwrap();
        assert!(!ns.info.namespaced);
        let deploy = all.iter().find(|r| r.info.plural == "deployments").unwrap();
        assert_eq!(deploy.info.qualified_kind(), "Deployment.apps");
        assert!(deploy.info.subresource("scale").is_some());
    }
}
