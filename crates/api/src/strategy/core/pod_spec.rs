//! `PodSpec` and `PodTemplateSpec`: defaults (upstream's `SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probes, ports) and validation (`ValidatePodSpec`,
//! `ValidatePodTemplateSpec`). Shared by Pods and by every workload's pod template.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceFieldSelector, ResourceRequirements, SecurityContext,
    Toleration, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::volumes::{self, VolumeIndex};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::{
    Raw, canonical_quantity, default_str, default_to, enum_value, go_strings, parse_quantity, validate_annotations,
    validate_label_selector, validate_labels,
};
use crate::validation;

// ------------------------------------------------------------------------------------------------
// Defaults
// ------------------------------------------------------------------------------------------------

/// `SetDefaults_PodSpec` plus everything nested in it (containers, volumes, probes).
pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    default_to(&mut spec.termination_grace_period_seconds, 30);
    default_str(&mut spec.scheduler_name, "default-scheduler");
    default_to(&mut spec.security_context, PodSecurityContext::default());
    default_to(&mut spec.enable_service_links, true);
    let host_network = spec.host_network == Some(true);
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        default_container(c, host_network);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_str(&mut c.termination_message_path, "/dev/termination-log");
        default_str(&mut c.termination_message_policy, "File");
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            c.image_pull_policy = Some(pull_policy_for(c.image.as_deref().unwrap_or_default()).to_string());
        }
    }
    for v in spec.volumes.iter_mut().flatten() {
        volumes::default_volume(v);
    }
    for q in spec.overhead.iter_mut().flat_map(|m| m.values_mut()) {
        canonical_quantity(q);
    }
}

/// Defaults of a pod template (its spec is a `PodSpec` like any other).
pub(crate) fn default_pod_template(t: &mut PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

fn default_container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        c.image_pull_policy = Some(pull_policy_for(c.image.as_deref().unwrap_or_default()).to_string());
    }
    default_str(&mut c.termination_message_path, "/dev/termination-log");
    default_str(&mut c.termination_message_policy, "File");
    let res = c.resources.get_or_insert_with(ResourceRequirements::default);
    for q in res.limits.iter_mut().chain(res.requests.iter_mut()).flat_map(|m| m.values_mut()) {
        canonical_quantity(q);
    }
    for p in c.ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
        // SetDefaults_PodSpec: with hostNetwork the host port is the container port.
        if host_network && p.host_port.unwrap_or(0) == 0 {
            p.host_port = Some(p.container_port);
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        default_probe(probe);
    }
    if let Some(l) = &mut c.lifecycle {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            if let Some(g) = &mut h.http_get {
                default_http_get(g);
            }
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(r) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            volumes::default_field_selector(r);
        }
    }
}

/// `SetDefaults_Probe`: zero values are defaulted too, like upstream's non-pointer ints.
fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(g) = &mut p.http_get {
        default_http_get(g);
    }
}

fn default_http_get(g: &mut HTTPGetAction) {
    default_str(&mut g.path, "/");
    default_str(&mut g.scheme, "HTTP");
}

/// `:latest` or no tag → `Always`; any other tag, or a digest alone → `IfNotPresent`.
pub(crate) fn pull_policy_for(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let tag = name[last_slash..].rsplit_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

// ------------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------------

/// Where a `PodSpec` sits: a Pod's own spec gets a few extra checks (upstream's
/// `ResourceIsPod` and the pod-only container checks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpecContext<'a> {
    pub(crate) is_pod: bool,
    /// The pod's name (ephemeral volume PVC names are derived from it).
    pub(crate) pod_name: Option<&'a str>,
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `ValidatePodTemplateSpec`: labels, annotations and the spec of a template.
pub(crate) fn validate_pod_template_spec(t: &PodTemplateSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let meta = t.metadata.as_ref();
    if let Some(labels) = meta.and_then(|m| m.labels.as_ref()) {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    if let Some(ann) = meta.and_then(|m| m.annotations.as_ref()) {
        errs.extend(validate_annotations(ann, &path.child("annotations")));
    }
    let empty = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&empty);
    errs.extend(validate_pod_spec(spec, &path.child("spec"), SpecContext { is_pod: false, pod_name: None }));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The checks every replicated workload puts on its template (upstream's
/// `ValidatePodTemplateSpecForReplicaSet` and friends): the selector must match the template's
/// labels, pods must restart `Always` and may not have a deadline.
pub(crate) fn validate_replicated_template(
    t: &PodTemplateSpec,
    selector_matches: bool,
    path: &Path,
    deadline: DeadlineRule,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if !selector_matches {
        let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
        errs.push(FieldError::invalid(
            &path.child("metadata").child("labels"),
            Raw(crate::strategy::common::go_map(labels)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(t, path));
    let spec = t.spec.as_ref();
    let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or_default();
    if restart != "Always" {
        errs.push(FieldError::not_supported(&path.child("spec").child("restartPolicy"), restart, &["Always"]));
    }
    if let Some(d) = spec.and_then(|s| s.active_deadline_seconds) {
        let p = path.child("spec").child("activeDeadlineSeconds");
        errs.push(match deadline {
            DeadlineRule::Forbidden(msg) => FieldError::forbidden(&p, msg),
            DeadlineRule::Invalid(msg) => FieldError::invalid(&p, d, msg),
        });
    }
    errs
}

/// How a workload reports `activeDeadlineSeconds` on its template.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DeadlineRule {
    Forbidden(&'static str),
    Invalid(&'static str),
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &Path, ctx: SpecContext<'_>) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(&path.child("terminationGracePeriodSeconds"), ""));
    }
    let grace = spec.termination_grace_period_seconds;
    let (vols, verrs) = volumes::validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        ctx.pod_name,
        ctx.is_pod,
        &path.child("volumes"),
    );
    errs.extend(verrs);
    let claim_names: BTreeSet<String> =
        spec.resource_claims.iter().flatten().map(|c| c.name.clone()).filter(|n| !n.is_empty()).collect();
    let restart = spec.restart_policy.as_deref().unwrap_or_default();
    errs.extend(validate_containers(&spec.containers, &vols, &claim_names, grace, &path.child("containers"), restart));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &vols,
        &claim_names,
        grace,
        &path.child("initContainers"),
        restart,
    ));
    // Ephemeral containers may only be added through their subresource; here only their names.
    let mut all_names: BTreeSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    all_names.extend(spec.init_containers.iter().flatten().map(|c| c.name.as_str()));
    for (i, ec) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let p = path.child("ephemeralContainers").index(i).child("name");
        if ec.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !all_names.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &ec.name));
        }
    }
    if spec.host_network == Some(true) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, port) in c.ports.iter().flatten().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if (ctx.is_pod || hp != 0) && hp != port.container_port {
                    errs.push(FieldError::invalid(
                        &path.child("containers").index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    errs.extend(enum_value(spec.restart_policy.as_deref(), RESTART_POLICIES, true, &path.child("restartPolicy")));
    errs.extend(enum_value(spec.dns_policy.as_deref(), DNS_POLICIES, true, &path.child("dnsPolicy")));
    if let Some(ns) = &spec.node_selector {
        errs.extend(validate_labels(ns, &path.child("nodeSelector")));
    }
    if let Some(sc) = &spec.security_context {
        errs.extend(validate_pod_security_context(sc, spec, &path.child("securityContext")));
    }
    if let Some(a) = &spec.affinity {
        errs.extend(validate_affinity(a, &path.child("affinity")));
    }
    errs.extend(validate_dns_config(spec, &path.child("dnsConfig")));
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        let p = path.child("readinessGates").index(i).child("conditionType");
        errs.extend(validation::invalid_each(&p, &g.condition_type, validation::qualified_name(&g.condition_type)));
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.extend(validation::invalid_each(&p, &g.name, validation::qualified_name(&g.name)));
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &g.name));
        }
    }
    errs.extend(validate_topology_spread(spec, &path.child("topologySpreadConstraints")));
    for (field, value) in [
        ("serviceAccountName", spec.service_account_name.as_deref()),
        ("nodeName", spec.node_name.as_deref()),
        ("priorityClassName", spec.priority_class_name.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            errs.extend(validation::invalid_each(&path.child(field), v, validation::dns1123_subdomain(v)));
        }
    }
    if let Some(d) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&d)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            d,
            validation::inclusive_range_msg(1, i64::from(i32::MAX)),
        ));
    }
    for (field, value) in [("hostname", spec.hostname.as_deref()), ("subdomain", spec.subdomain.as_deref())] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            errs.extend(validation::invalid_each(&path.child(field), v, validation::dns1123_label(v)));
        }
    }
    if let Some(t) = &spec.tolerations {
        errs.extend(validate_tolerations(t, &path.child("tolerations")));
    }
    for (i, ha) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(validation::invalid_each(&p.child("ip"), &ha.ip, validation::ip(&ha.ip)));
        for (j, h) in ha.hostnames.iter().flatten().enumerate() {
            errs.extend(validation::invalid_each(&p.child("hostnames").index(j), h, validation::dns1123_subdomain(h)));
        }
    }
    if let Some(rc) = &spec.runtime_class_name {
        errs.extend(validation::invalid_each(&path.child("runtimeClassName"), rc, validation::dns1123_subdomain(rc)));
    }
    if let Some(pp) = &spec.preemption_policy {
        errs.extend(enum_value(Some(pp), &["PreemptLowerPriority", "Never"], true, &path.child("preemptionPolicy")));
    }
    if let Some(o) = &spec.overhead {
        let req = ResourceRequirements { limits: Some(o.clone()), ..Default::default() };
        errs.extend(validate_resources(&req, &claim_names, &path.child("overhead")));
    }
    if let Some(os) = &spec.os {
        if os.name.is_empty() {
            errs.push(FieldError::required(&path.child("os").child("name"), "cannot be empty"));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(FieldError::not_supported(&path.child("os"), &os.name, &["linux", "windows"]));
        }
    }
    if ctx.is_pod {
        for (list, name) in [(Some(&spec.containers), "containers"), (spec.init_containers.as_ref(), "initContainers")]
        {
            for (i, c) in list.into_iter().flatten().enumerate() {
                let image = c.image.as_deref().unwrap_or_default();
                if image.trim() != image {
                    errs.push(FieldError::invalid(
                        &path.child(name).index(i).child("image"),
                        image,
                        "must not have leading or trailing whitespace",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_containers(
    containers: &[Container],
    vols: &VolumeIndex,
    claims: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
    restart: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, vols, claims, &p, restart));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        }
        if let Some(l) = &c.lifecycle {
            errs.extend(validate_lifecycle(l, grace, &p.child("lifecycle")));
        }
        errs.extend(validate_probe(c.liveness_probe.as_ref(), ProbeKind::Liveness, grace, &p.child("livenessProbe")));
        errs.extend(validate_probe(
            c.readiness_probe.as_ref(),
            ProbeKind::Readiness,
            grace,
            &p.child("readinessProbe"),
        ));
        errs.extend(validate_probe(c.startup_probe.as_ref(), ProbeKind::Startup, grace, &p.child("startupProbe")));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(&p.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

fn validate_init_containers(
    inits: &[Container],
    regular: &[Container],
    vols: &VolumeIndex,
    claims: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
    restart: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, vols, claims, &p, restart));
        let mut always = false;
        if let Some(rp) = &c.restart_policy {
            if rp == "Always" {
                always = true;
            } else {
                errs.push(FieldError::not_supported(&p.child("restartPolicy"), rp, &["Always"]));
            }
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if always {
            if let Some(l) = &c.lifecycle {
                errs.extend(validate_lifecycle(l, grace, &p.child("lifecycle")));
            }
            errs.extend(validate_probe(
                c.liveness_probe.as_ref(),
                ProbeKind::Liveness,
                grace,
                &p.child("livenessProbe"),
            ));
            errs.extend(validate_probe(
                c.readiness_probe.as_ref(),
                ProbeKind::Readiness,
                grace,
                &p.child("readinessProbe"),
            ));
            errs.extend(validate_probe(c.startup_probe.as_ref(), ProbeKind::Startup, grace, &p.child("startupProbe")));
        } else {
            let msg = "may not be set for init containers without restartPolicy=Always";
            for (set, field) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(&p.child(field), msg));
                }
            }
        }
    }
    errs
}

fn validate_container_common(
    c: &Container,
    vols: &VolumeIndex,
    claims: &BTreeSet<String>,
    path: &Path,
    restart: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validation::invalid_each(&name_path, &c.name, validation::dns1123_label(&c.name)));
    }
    if c.image.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    errs.extend(enum_value(
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
        true,
        &path.child("terminationMessagePolicy"),
    ));
    let mount_names: BTreeMap<&str, &str> =
        c.volume_mounts.iter().flatten().map(|m| (m.name.as_str(), m.mount_path.as_str())).collect();
    let device_names: BTreeMap<&str, &str> =
        c.volume_devices.iter().flatten().map(|d| (d.name.as_str(), d.device_path.as_str())).collect();
    errs.extend(validate_ports(c, &path.child("ports")));
    errs.extend(validate_env(c.env.as_deref().unwrap_or_default(), &path.child("env")));
    errs.extend(validate_env_from(c.env_from.as_deref().unwrap_or_default(), &path.child("envFrom")));
    errs.extend(validate_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        &device_names,
        vols,
        c,
        &path.child("volumeMounts"),
    ));
    for (i, d) in c.volume_devices.iter().flatten().enumerate() {
        let p = path.child("volumeDevices").index(i);
        if d.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        match vols.get(&d.name) {
            None => errs.push(FieldError::not_found(&p.child("name"), &d.name)),
            Some(k) if !k.claim => errs.push(FieldError::invalid(
                &p.child("name"),
                &d.name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(_) => {}
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(&p.child("devicePath"), ""));
        }
        if mount_names.contains_key(d.name.as_str()) {
            errs.push(FieldError::invalid(&p.child("name"), &d.name, "must not already exist in volumeMounts"));
        }
    }
    errs.extend(pull_policy(c.image_pull_policy.as_deref(), &path.child("imagePullPolicy")));
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, claims, &path.child("resources")));
    }
    for (i, rp) in c.resize_policy.iter().flatten().enumerate() {
        let p = path.child("resizePolicy");
        errs.extend(enum_value(Some(&rp.resource_name), &["cpu", "memory"], true, &p));
        errs.extend(enum_value(Some(&rp.restart_policy), &["NotRequired", "RestartContainer"], true, &p));
        if restart == "Never" && rp.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                &p,
                &rp.restart_policy,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
        let _ = i;
    }
    if let Some(sc) = &c.security_context {
        errs.extend(validate_security_context(sc, &path.child("securityContext")));
    }
    errs
}

/// `validatePullPolicy`.
pub(crate) fn pull_policy(policy: Option<&str>, path: &Path) -> ErrorList {
    enum_value(policy, PULL_POLICIES, true, path)
}

fn validate_ports(c: &Container, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = validation::port_name(name);
            if !msgs.is_empty() {
                errs.extend(validation::invalid_each(&p.child("name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for m in validation::port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(&p.child("containerPort"), port.container_port, m));
            }
        }
        if let Some(hp) = port.host_port.filter(|hp| *hp != 0) {
            for m in validation::port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(&p.child("hostPort"), hp, m));
            }
        }
        errs.extend(enum_value(port.protocol.as_deref(), PROTOCOLS, true, &p.child("protocol")));
    }
    errs
}

fn host_port_conflicts(containers: &[Container], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                port.protocol.as_deref().unwrap_or_default(),
                port.host_ip.as_deref().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(&path.index(ci).child("ports").index(pi).child("hostPort"), key));
            }
        }
    }
    errs
}

fn validate_env(vars: &[EnvVar], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(validation::invalid_each(&p.child("name"), &ev.name, validation::env_var_name(&ev.name)));
        }
        let Some(from) = &ev.value_from else { continue };
        let fp = p.child("valueFrom");
        let mut n = 0;
        if let Some(r) = &from.field_ref {
            n += 1;
            errs.extend(object_field_selector(r, ENV_FIELD_PATHS, &fp.child("fieldRef")));
        }
        if let Some(r) = &from.resource_field_ref {
            n += 1;
            errs.extend(resource_field_selector(r, false, &fp.child("resourceFieldRef")));
        }
        for (sel, field) in [
            (from.config_map_key_ref.as_ref().map(|s| (&s.name, &s.key)), "configMapKeyRef"),
            (from.secret_key_ref.as_ref().map(|s| (&s.name, &s.key)), "secretKeyRef"),
        ] {
            let Some((name, key)) = sel else { continue };
            n += 1;
            let sp = fp.child(field);
            errs.extend(validation::invalid_each(&sp.child("name"), name, validation::dns1123_subdomain(name)));
            if key.is_empty() {
                errs.push(FieldError::required(&sp.child("key"), ""));
            } else {
                errs.extend(validation::invalid_each(&sp.child("key"), key, validation::config_map_key(key)));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if ev.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.push(FieldError::invalid(&fp, "", "may not be specified when `value` is not empty"));
        } else if n > 1 {
            errs.push(FieldError::invalid(&fp, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}

/// `validateObjectFieldSelector`.
pub(crate) fn object_field_selector(fs: &ObjectFieldSelector, allowed: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if fs.api_version.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return errs;
    }
    if fs.field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return errs;
    }
    if fs.api_version.as_deref() != Some("v1") {
        errs.push(FieldError::invalid(
            &path.child("fieldPath"),
            &fs.field_path,
            format!(
                "error converting fieldPath: unsupported pod version: {}",
                fs.api_version.as_deref().unwrap_or_default()
            ),
        ));
        return errs;
    }
    let fp = fs.field_path.as_str();
    // metadata.labels['key'] / metadata.annotations['key']
    if let Some((base, rest)) = fp.split_once("['")
        && let Some(sub) = rest.strip_suffix("']")
    {
        match base {
            "metadata.annotations" => errs.extend(validation::invalid_each(
                path,
                &sub.to_lowercase(),
                validation::qualified_name(&sub.to_lowercase()),
            )),
            "metadata.labels" => errs.extend(validation::invalid_each(path, sub, validation::qualified_name(sub))),
            other => errs.push(FieldError::invalid(path, other, "does not support subscript")),
        }
        return errs;
    }
    if !allowed.contains(&fp) {
        errs.push(FieldError::not_supported(&path.child("fieldPath"), fp, allowed));
    }
    errs
}

/// `validateContainerResourceFieldSelector`.
pub(crate) fn resource_field_selector(fs: &ResourceFieldSelector, volume: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if volume && fs.container_name.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if fs.resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&fs.resource.as_str())
        && !fs.resource.starts_with("requests.hugepages-")
        && !fs.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(&path.child("resource"), &fs.resource, RESOURCE_FIELD_PATHS));
    }
    if let Some(d) = &fs.divisor {
        let mut perrs = ErrorList::new();
        if let Some(q) = parse_quantity(&d.0, &path.child("divisor"), &mut perrs)
            && !q.is_zero()
        {
            let canon = q.to_string();
            let msg = match fs.resource.as_str() {
                "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&canon.as_str()) => {
                    Some("only divisor's values 1m and 1 are supported with the cpu resource")
                }
                "limits.memory" | "requests.memory" if !memory_divisor(&canon) => Some(
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
                ),
                "limits.ephemeral-storage" | "requests.ephemeral-storage" if !memory_divisor(&canon) => Some(
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
                ),
                _ => None,
            };
            if let Some(m) = msg {
                errs.push(FieldError::invalid(&path.child("divisor"), &fs.resource, m));
            }
        }
        errs.extend(perrs);
    }
    errs
}

fn memory_divisor(canon: &str) -> bool {
    ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"].contains(&canon)
}

fn validate_env_from(list: &[EnvFromSource], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in list.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = ev.prefix.as_deref().filter(|p| !p.is_empty()) {
            errs.extend(validation::invalid_each(&p.child("prefix"), prefix, validation::env_var_name(prefix)));
        }
        let mut n = 0;
        for (name, field) in [
            (ev.config_map_ref.as_ref().map(|r| &r.name), "configMapRef"),
            (ev.secret_ref.as_ref().map(|r| &r.name), "secretRef"),
        ] {
            let Some(name) = name else { continue };
            n += 1;
            let np = p.child(field).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                errs.extend(validation::invalid_each(
                    &np,
                    name,
                    validation::dns1123_subdomain(&mask_trailing_dash(name)),
                ));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if n > 1 {
            errs.push(FieldError::invalid(path, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}

/// Upstream's `maskTrailingDash` for names validated as prefixes.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') { format!("{}a", &name[..name.len() - 1]) } else { name.to_string() }
}

fn validate_mounts(
    mounts: &[VolumeMount],
    devices: &BTreeMap<&str, &str>,
    vols: &VolumeIndex,
    c: &Container,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !vols.contains_key(&m.name) {
            errs.push(FieldError::not_found(&p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(&p.child("mountPath"), &m.mount_path, "must be unique"));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid(&p.child("name"), &m.name, "must not already exist in volumeDevices"));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                &m.mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or_default();
        let sub_expr = m.sub_path_expr.as_deref().unwrap_or_default();
        if vols.get(&m.name).is_some_and(|k| k.image) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(&p.child("subPath"), sub_path, "not allowed in image volume sources"));
            }
            if !sub_expr.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports these at the list path (no index); kept for identical messages.
        if !sub_path.is_empty() {
            errs.extend(volumes::local_descending_path(sub_path, &path.child("subPath")));
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(volumes::local_descending_path(sub_expr, &path.child("subPathExpr")));
        }
        if let Some(mp) = &m.mount_propagation {
            let pp = path.child("mountPropagation");
            errs.extend(enum_value(Some(mp), &["Bidirectional", "HostToContainer", "None"], false, &pp));
            let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
            if mp == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = path.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(&rp, "may only be specified when readOnly is true"));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(&rp, other, &["Disabled", "Enabled", "IfPossible"])),
            }
        }
    }
    errs
}

/// The resource names a container may request without a domain prefix.
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn is_standard_resource(name: &str) -> bool {
    is_standard_container_resource(name)
        || matches!(
            name,
            "storage"
                | "pods"
                | "services"
                | "replicationcontrollers"
                | "resourcequotas"
                | "secrets"
                | "configmaps"
                | "persistentvolumeclaims"
                | "services.nodeports"
                | "services.loadbalancers"
                | "requests.cpu"
                | "requests.memory"
                | "requests.storage"
                | "requests.ephemeral-storage"
                | "limits.cpu"
                | "limits.memory"
                | "limits.ephemeral-storage"
        )
        || name.starts_with("requests.hugepages-")
}

/// A native resource: unprefixed or in the `kubernetes.io` domain.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Extended resources (`example.com/gpu`) cannot be overcommitted.
fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn validate_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = validation::invalid_each(path, name, validation::qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource(name) {
        errs.push(FieldError::invalid(path, name, "must be a standard resource type or fully qualified"));
    }
    if !name.contains('/') {
        if !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(path, name, "must be a standard resource for containers"));
        }
    } else if !is_native_resource(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(path, name, "doesn't follow extended resource name standard"));
    }
    errs
}

/// `ValidateContainerResourceRequirements`: names, quantities, requests <= limits.
pub(crate) fn validate_resources(r: &ResourceRequirements, claims: &BTreeSet<String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    for (name, q) in limits {
        let p = lim_path.key(name);
        errs.extend(validate_resource_name(name, &p));
        errs.extend(quantity_value(name, q, &p));
    }
    for (name, q) in r.requests.iter().flatten() {
        let p = req_path.key(name);
        errs.extend(validate_resource_name(name, &p));
        errs.extend(quantity_value(name, q, &p));
        let mut scratch = ErrorList::new();
        let req = parse_quantity(&q.0, &p, &mut scratch);
        match limits.get(name) {
            Some(lq) => {
                let lim = parse_quantity(&lq.0, &p, &mut scratch);
                if let (Some(req), Some(lim)) = (req, lim) {
                    if req != lim && !overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            req.to_string(),
                            format!("must be equal to {name} limit of {lim}"),
                        ));
                    } else if req > lim {
                        errs.push(FieldError::invalid(
                            &req_path,
                            req.to_string(),
                            format!("must be less than or equal to {name} limit of {lim}"),
                        ));
                    }
                }
            }
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(&lim_path, "Limit must be set for non overcommitable resources"));
            }
            None => {}
        }
    }
    let mut seen = BTreeSet::new();
    for (i, claim) in r.claims.iter().flatten().enumerate() {
        let p = path.child("claims").index(i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        let key = match claim.request.as_deref().filter(|r| !r.is_empty()) {
            Some(req) => format!("{}/{req}", claim.name),
            None => claim.name.clone(),
        };
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(&p, key));
        }
        if !claims.contains(&claim.name) {
            let mut e = FieldError::not_found(&p, &claim.name);
            e.detail = if claims.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                let names: Vec<&str> = claims.iter().map(String::as_str).collect();
                format!("must be one of the names in pod.spec.resourceClaims: {}", names.join(", "))
            };
            errs.push(e);
        }
    }
    errs
}

/// `ValidateResourceQuantityValue`: parsable, non-negative, whole for integer resources.
pub(crate) fn quantity_value(name: &str, q: &Quantity, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(v) = parse_quantity(&q.0, path, &mut errs) {
        if v.is_negative() {
            errs.push(FieldError::invalid(path, v.to_string(), validation::NEGATIVE_MSG));
        }
        let integer_resource = !is_native_resource(name)
            || matches!(
                name,
                "pods"
                    | "services"
                    | "secrets"
                    | "configmaps"
                    | "persistentvolumeclaims"
                    | "replicationcontrollers"
                    | "resourcequotas"
            );
        if integer_resource && !v.is_integer() {
            errs.push(FieldError::invalid(path, v.to_string(), "must be an integer"));
        }
    }
    errs
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(probe: Option<&Probe>, kind: ProbeKind, grace: Option<i64>, path: &Path) -> ErrorList {
    let Some(p) = probe else { return Vec::new() };
    let mut errs = ErrorList::new();
    let handlers: [(bool, &str); 4] = [
        (p.exec.is_some(), "exec"),
        (p.http_get.is_some(), "httpGet"),
        (p.tcp_socket.is_some(), "tcpSocket"),
        (p.grpc.is_some(), "grpc"),
    ];
    errs.extend(handler_count(&handlers, path));
    // Only the first handler is validated further; the others are already reported.
    match handlers.iter().find(|(set, _)| *set).map(|(_, n)| *n) {
        Some("exec") if p.exec.as_ref().is_some_and(|e| e.command.as_ref().is_none_or(Vec::is_empty)) => {
            errs.push(FieldError::required(&path.child("exec").child("command"), ""));
        }
        Some("exec") => {}
        Some("httpGet") => {
            if let Some(h) = &p.http_get {
                errs.extend(validate_http_get(h, &path.child("httpGet")));
            }
        }
        Some("tcpSocket") => {
            if let Some(t) = &p.tcp_socket {
                errs.extend(port_num_or_name(&t.port, &path.child("tcpSocket").child("port")));
            }
        }
        Some(_) => {
            if let Some(g) = &p.grpc {
                errs.extend(port_num_or_name(&IntOrString::Int(g.port), &path.child("grpc").child("port")));
            }
        }
        None => {}
    }
    for (v, field) in [
        (p.initial_delay_seconds, "initialDelaySeconds"),
        (p.timeout_seconds, "timeoutSeconds"),
        (p.period_seconds, "periodSeconds"),
        (p.success_threshold, "successThreshold"),
        (p.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(validation::nonnegative(i64::from(v.unwrap_or(0)), &path.child(field)));
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(&path.child("terminationGracePeriodSeconds"), t, "must be greater than 0"));
    }
    let _ = grace;
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = p.success_threshold.unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(&path.child("successThreshold"), st, "must be 1"));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

/// Exactly one handler: the second and later ones are `Forbidden`, none is `Required`.
fn handler_count(handlers: &[(bool, &str)], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut n = 0;
    for (set, name) in handlers {
        if *set {
            if n > 0 {
                errs.push(FieldError::forbidden(&path.child(name), "may not specify more than 1 handler type"));
            }
            n += 1;
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn validate_lifecycle(l: &Lifecycle, grace: Option<i64>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (h, field) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        if let Some(h) = h {
            errs.extend(validate_lifecycle_handler(h, grace, &path.child(field)));
        }
    }
    errs
}

fn validate_lifecycle_handler(h: &LifecycleHandler, grace: Option<i64>, path: &Path) -> ErrorList {
    let mut errs = handler_count(
        &[
            (h.exec.is_some(), "exec"),
            (h.http_get.is_some(), "httpGet"),
            (h.tcp_socket.is_some(), "tcpSocket"),
            (h.sleep.is_some(), "sleep"),
        ],
        path,
    );
    if let Some(e) = &h.exec
        && e.command.as_ref().is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(&path.child("exec").child("command"), ""));
    }
    if let Some(g) = &h.http_get {
        errs.extend(validate_http_get(g, &path.child("httpGet")));
    }
    if let Some(t) = &h.tcp_socket {
        errs.extend(port_num_or_name(&t.port, &path.child("tcpSocket").child("port")));
    }
    if let (Some(s), Some(g)) = (&h.sleep, grace)
        && (s.seconds < 0 || s.seconds > g)
    {
        errs.push(FieldError::invalid(
            &path.child("sleep"),
            s.seconds,
            format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
        ));
    }
    errs
}

fn validate_http_get(h: &HTTPGetAction, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if h.path.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(port_num_or_name(&h.port, &path.child("port")));
    let scheme = h.scheme.as_deref().unwrap_or_default();
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(&path.child("scheme"), scheme, &["HTTP", "HTTPS"]));
    }
    for header in h.http_headers.iter().flatten() {
        errs.extend(validation::invalid_each(
            &path.child("httpHeaders"),
            &header.name,
            validation::http_header_name(&header.name),
        ));
    }
    errs
}

/// `ValidatePortNumOrName`.
pub(crate) fn port_num_or_name(port: &IntOrString, path: &Path) -> ErrorList {
    match port {
        IntOrString::Int(i) => {
            validation::port_num(i64::from(*i)).into_iter().map(|m| FieldError::invalid(path, *i, m)).collect()
        }
        IntOrString::String(s) => validation::invalid_each(path, s, validation::port_name(s)),
    }
}

fn validate_security_context(sc: &SecurityContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (v, field) in [(sc.run_as_user, "runAsUser"), (sc.run_as_group, "runAsGroup")] {
        if let Some(id) = v {
            for m in validation::user_or_group_id(id) {
                errs.push(FieldError::invalid(&path.child(field), id, m));
            }
        }
    }
    if let Some(pm) = &sc.proc_mount {
        errs.extend(enum_value(Some(pm), &["Default", "Unmasked"], false, &path.child("procMount")));
    }
    if let Some(sp) = &sc.seccomp_profile {
        errs.extend(seccomp(sp, &path.child("seccompProfile")));
    }
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                Raw("core.SecurityContext{...}".into()),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if sc.capabilities.as_ref().and_then(|c| c.add.as_ref()).is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"))
        {
            errs.push(FieldError::invalid(
                path,
                Raw("core.SecurityContext{...}".into()),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs
}

fn seccomp(sp: &k8s_openapi::api::core::v1::SeccompProfile, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match sp.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(&path.child("type"), "type is required when seccompProfile is set")),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if sp.type_ == "Localhost" {
        match &sp.localhost_profile {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => errs.extend(volumes::local_descending_path(p, &path.child("localhostProfile"))),
        }
    } else if sp.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            Raw(format!("core.SeccompProfile{{Type:{:?}, LocalhostProfile:(*string)(...)}}", sp.type_)),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

fn validate_pod_security_context(sc: &PodSecurityContext, spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (v, field) in [(sc.fs_group, "fsGroup"), (sc.run_as_user, "runAsUser"), (sc.run_as_group, "runAsGroup")] {
        if let Some(id) = v {
            for m in validation::user_or_group_id(id) {
                errs.push(FieldError::invalid(&path.child(field), id, m));
            }
        }
    }
    for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        for m in validation::user_or_group_id(*gid) {
            errs.push(FieldError::invalid(&path.child("supplementalGroups").index(i), *gid, m));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let p = path.child("sysctls").index(i).child("name");
        if s.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !names.insert(s.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &s.name));
        }
    }
    if let Some(p) = &sc.fs_group_change_policy {
        errs.extend(enum_value(Some(p), &["Always", "OnRootMismatch"], false, &path.child("fsGroupChangePolicy")));
    }
    if let Some(sp) = &sc.seccomp_profile {
        errs.extend(seccomp(sp, &path.child("seccompProfile")));
    }
    if let Some(p) = &sc.supplemental_groups_policy {
        errs.extend(enum_value(Some(p), &["Merge", "Strict"], false, &path.child("supplementalGroupsPolicy")));
    }
    if let Some(p) = &sc.se_linux_change_policy {
        errs.extend(enum_value(Some(p), &["MountOption", "Recursive"], false, &path.child("seLinuxChangePolicy")));
    }
    errs
}

fn validate_node_selector_requirement(
    r: &k8s_openapi::api::core::v1::NodeSelectorRequirement,
    check_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs
            .push(FieldError::required(&path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'")),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &path.child("values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(&path.child("operator"), other, "not a valid selector operator")),
    }
    errs.extend(validation::invalid_each(&path.child("key"), &r.key, validation::qualified_name(&r.key)));
    if check_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(validation::invalid_each(&path.child("values").index(i), v, validation::label_value(v)));
        }
    }
    errs
}

fn validate_node_selector_term(
    t: &k8s_openapi::api::core::v1::NodeSelectorTerm,
    check_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, r) in t.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_node_selector_requirement(r, check_values, &path.child("matchExpressions").index(j)));
    }
    for (j, r) in t.match_fields.iter().flatten().enumerate() {
        let p = path.child("matchFields").index(j);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(&p.child("operator"), other, "not a valid selector operator")),
        }
        if r.key != "metadata.name" {
            errs.push(FieldError::invalid(&p.child("key"), &r.key, "not a valid field selector key"));
        } else {
            for (i, v) in values.iter().enumerate() {
                errs.extend(validation::invalid_each(&p.child("values").index(i), v, validation::dns1123_subdomain(v)));
            }
        }
    }
    errs
}

/// `ValidateNodeSelector` (node affinity's required terms, PV node affinity).
pub(crate) fn validate_node_selector(ns: &k8s_openapi::api::core::v1::NodeSelector, path: &Path) -> ErrorList {
    let tp = path.child("nodeSelectorTerms");
    if ns.node_selector_terms.is_empty() {
        return vec![FieldError::required(&tp, "must have at least one node selector term")];
    }
    ns.node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| validate_node_selector_term(t, true, &tp.index(i)))
        .collect()
}

fn validate_pod_affinity_term(t: &k8s_openapi::api::core::v1::PodAffinityTerm, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(s) = &t.label_selector {
        errs.extend(validate_label_selector(s, &path.child("labelSelector")));
    }
    if let Some(s) = &t.namespace_selector {
        errs.extend(validate_label_selector(s, &path.child("namespaceSelector")));
    }
    for ns in t.namespaces.iter().flatten() {
        errs.extend(validation::invalid_each(&path.child("namespace"), ns, validation::dns1123_label(ns)));
    }
    for (field, keys) in [("matchLabelKeys", &t.match_label_keys), ("mismatchLabelKeys", &t.mismatch_label_keys)] {
        let Some(keys) = keys.as_ref().filter(|k| !k.is_empty()) else { continue };
        if t.label_selector.is_none() {
            errs.push(FieldError::forbidden(&path.child(field), "must not be specified when labelSelector is not set"));
            continue;
        }
        for (i, k) in keys.iter().enumerate() {
            errs.extend(validation::invalid_each(&path.child(field).index(i), k, validation::qualified_name(k)));
        }
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(&path.child("topologyKey"), "can not be empty"));
    }
    errs.extend(validation::invalid_each(
        &path.child("topologyKey"),
        &t.topology_key,
        validation::qualified_name(&t.topology_key),
    ));
    errs
}

fn validate_affinity(a: &Affinity, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            errs.extend(validate_node_selector(req, &p.child("requiredDuringSchedulingIgnoredDuringExecution")));
        }
        for (i, t) in na.preferred_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            let tp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            if !(1..=100).contains(&t.weight) {
                errs.push(FieldError::invalid(&tp.child("weight"), t.weight, "must be in the range 1-100"));
            }
            errs.extend(validate_node_selector_term(&t.preference, false, &tp.child("preference")));
        }
    }
    let pod_affinities = [
        (
            a.pod_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAffinity",
        ),
        (
            a.pod_anti_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAntiAffinity",
        ),
    ];
    for (terms, field) in pod_affinities {
        let Some((required, preferred)) = terms else { continue };
        let p = path.child(field);
        for (i, t) in required.iter().flatten().enumerate() {
            errs.extend(validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution").index(i),
            ));
        }
        for (i, w) in preferred.iter().flatten().enumerate() {
            let wp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            if !(1..=100).contains(&w.weight) {
                errs.push(FieldError::invalid(&wp.child("weight"), w.weight, "must be in the range 1-100"));
            }
            errs.extend(validate_pod_affinity_term(&w.pod_affinity_term, &wp.child("podAffinityTerm")));
        }
    }
    errs
}

fn validate_dns_config(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let cfg = spec.dns_config.as_ref();
    if spec.dns_policy.as_deref() == Some("None") {
        match cfg {
            None => return vec![FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None")],
            Some(c) if c.nameservers.as_ref().is_none_or(Vec::is_empty) => {
                return vec![FieldError::required(
                    &path.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )];
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else { return errs };
    let ns = cfg.nameservers.as_deref().unwrap_or_default();
    if ns.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            Raw(go_strings(Some(ns))),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(validation::invalid_each(&path.child("nameservers").index(i), n, validation::ip(n)));
    }
    let searches = cfg.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            Raw(go_strings(Some(searches))),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            Raw(go_strings(Some(searches))),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        if s == "." {
            continue;
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        // Relaxed search validation (on by default in 1.33) also allows '_'.
        let masked = s.replace('_', "a");
        if !validation::dns1123_subdomain(&masked).is_empty() {
            errs.push(FieldError::invalid(
                &path.child("searches").index(i),
                s,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-', '_' or '.', and \
                 must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
                 '[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?(\\.[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?)*')",
            ));
        }
    }
    for (i, o) in cfg.options.iter().flatten().enumerate() {
        if o.name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&path.child("options").index(i), "must not be empty"));
        }
    }
    errs
}

fn validate_topology_spread(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let list = spec.topology_spread_constraints.as_deref().unwrap_or_default();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(&p.child("maxSkew"), c.max_skew, "must be greater than zero"));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(&p.child("topologyKey"), "can not be empty"));
        }
        if c.when_unsatisfiable != "DoNotSchedule" && c.when_unsatisfiable != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                &c.when_unsatisfiable,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if list[i + 1..]
            .iter()
            .any(|o| o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable)
        {
            errs.push(FieldError::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(md) = c.min_domains {
            if md <= 0 {
                errs.push(FieldError::invalid(&p.child("minDomains"), md, "must be greater than zero"));
            }
            if c.when_unsatisfiable != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    md,
                    format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {}", c.when_unsatisfiable),
                ));
            }
        }
        for (v, field) in [(&c.node_affinity_policy, "nodeAffinityPolicy"), (&c.node_taints_policy, "nodeTaintsPolicy")]
        {
            if let Some(v) = v {
                errs.extend(enum_value(Some(v), &["Honor", "Ignore"], false, &p.child(field)));
            }
        }
        if let Some(s) = &c.label_selector {
            errs.extend(validate_label_selector(s, &p.child("labelSelector")));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(list: &[Toleration], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or_default();
        let op = t.operator.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        if !key.is_empty() {
            errs.extend(validation::invalid_each(&p.child("key"), key, validation::qualified_name(key)));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = validation::label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(&p.child("operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(&p.child("operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            errs.extend(taint_effect(effect, &p.child("effect")));
        }
    }
    errs
}

/// `validateTaintEffect` for a non-empty effect.
pub(crate) fn taint_effect(effect: &str, path: &Path) -> ErrorList {
    enum_value(Some(effect), &["NoSchedule", "PreferNoSchedule", "NoExecute"], true, path)
}
