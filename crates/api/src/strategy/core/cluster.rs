//! The remaining core/v1 kinds: Nodes, Endpoints, Events, LimitRanges, ResourceQuotas,
//! PodTemplates and ReplicationControllers.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    EndpointAddress, Endpoints, Event, LimitRange, Node, PodTemplate, ReplicationController, ReplicationControllerSpec,
    ReplicationControllerStatus, ResourceQuota,
};

use super::pod_spec::{self, DeadlineRule};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{Qty, Raw, canonical_quantity, default_str, map_selector_matches, parse_quantity};
use crate::validation;

impl KindStrategy for Node {
    fn default(&mut self) {
        // v1 keeps the singular `podCIDR` in step with `podCIDRs`.
        if let Some(spec) = &mut self.spec {
            if let Some(c) = spec.pod_cidr.clone().filter(|c| !c.is_empty())
                && spec.pod_cidrs.as_ref().is_none_or(Vec::is_empty)
            {
                spec.pod_cidrs = Some(vec![c]);
            }
            if let Some(first) = spec.pod_cidrs.as_ref().and_then(|v| v.first()) {
                spec.pod_cidr = Some(first.clone());
            }
        }
        if let Some(status) = &mut self.status {
            for q in status.capacity.iter_mut().chain(status.allocatable.iter_mut()).flat_map(|m| m.values_mut()) {
                canonical_quantity(q);
            }
            if status.allocatable.is_none() && status.capacity.is_some() {
                status.allocatable.clone_from(&status.capacity);
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let spec = self.spec.as_ref();
        let taints = spec.and_then(|s| s.taints.as_deref()).unwrap_or_default();
        // sic: upstream reports taints under metadata.
        errs.extend(validate_taints(taints, &Path::new("metadata").child("taints")));
        if let Some(status) = &self.status {
            for (field, list) in [("capacity", &status.capacity), ("allocatable", &status.allocatable)] {
                for (k, q) in list.iter().flatten() {
                    let p = Path::new("status").child(field).child(k);
                    errs.extend(pod_spec::quantity_value(k, q, &p));
                }
            }
        }
        let cidrs = spec.and_then(|s| s.pod_cidrs.as_deref()).unwrap_or_default();
        let cp = Path::new("spec").child("podCIDRs");
        for (i, c) in cidrs.iter().enumerate() {
            errs.extend(validation::invalid_each(&cp.index(i), c, validation::cidr(c)));
        }
        if cidrs.len() > 1 {
            let mut seen = BTreeSet::new();
            for (i, c) in cidrs.iter().enumerate() {
                if !seen.insert(c) {
                    errs.push(FieldError::duplicate(&cp.index(i), c));
                }
            }
            let v6 = cidrs.iter().filter(|c| c.contains(':')).count();
            if cidrs.len() > 2 || v6 != 1 {
                errs.push(FieldError::invalid(
                    &cp,
                    Raw(crate::strategy::common::go_strings(Some(cidrs))),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        let new_spec = self.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        let old_cidrs = old_spec.pod_cidrs.unwrap_or_default();
        if !old_cidrs.is_empty() && new_spec.pod_cidrs.unwrap_or_default() != old_cidrs {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("podCIDRs"),
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_pid = old_spec.provider_id.unwrap_or_default();
        if !old_pid.is_empty() && new_spec.provider_id.unwrap_or_default() != old_pid {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("providerID"),
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        if new_spec.external_id != old_spec.external_id {
            errs.push(FieldError::forbidden(&Path::new("spec").child("externalID"), "may not be updated"));
        }
        errs.extend(node_addresses(self));
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let mut errs = node_addresses(self);
        if let Some(status) = &self.status {
            for (field, list) in [("capacity", &status.capacity), ("allocatable", &status.allocatable)] {
                for (k, q) in list.iter().flatten() {
                    errs.extend(pod_spec::quantity_value(k, q, &Path::new("status").child(field).child(k)));
                }
            }
        }
        errs
    }
}

fn node_addresses(node: &Node) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, a) in node.status.iter().flat_map(|s| s.addresses.iter().flatten()).enumerate() {
        if !seen.insert((a.type_.clone(), a.address.clone())) {
            errs.push(FieldError::duplicate(
                &Path::new("status").child("addresses").index(i),
                Raw(format!("core.NodeAddress{{Type:{:?}, Address:{:?}}}", a.type_, a.address)),
            ));
        }
    }
    errs
}

/// `validateNodeTaints`.
fn validate_taints(taints: &[k8s_openapi::api::core::v1::Taint], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut unique: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (i, t) in taints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validation::invalid_each(&p.child("key"), &t.key, validation::qualified_name(&t.key)));
        let value = t.value.as_deref().unwrap_or_default();
        let msgs = validation::label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&p.child("value"), value, msgs.join(";")));
        }
        if t.effect.is_empty() {
            errs.push(FieldError::required(&p.child("effect"), ""));
        } else {
            errs.extend(pod_spec::taint_effect(&t.effect, &p.child("effect")));
        }
        let keys = unique.entry(t.effect.as_str()).or_default();
        if !keys.insert(t.key.as_str()) {
            let mut e = FieldError::duplicate(
                &p,
                Raw(format!(
                    "core.Taint{{Key:{:?}, Value:{:?}, Effect:{:?}, TimeAdded:<nil>}}",
                    t.key, value, t.effect
                )),
            );
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

impl KindStrategy for Endpoints {
    fn default(&mut self) {
        for p in self.subsets.iter_mut().flatten().flat_map(|s| s.ports.iter_mut().flatten()) {
            default_str(&mut p.protocol, "TCP");
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        for (i, ss) in self.subsets.iter().flatten().enumerate() {
            let p = Path::new("subsets").index(i);
            let addrs = ss.addresses.as_deref().unwrap_or_default();
            let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
            if addrs.is_empty() && not_ready.is_empty() {
                errs.push(FieldError::required(&p, "must specify `addresses` or `notReadyAddresses`"));
            }
            for (j, a) in addrs.iter().enumerate() {
                errs.extend(endpoint_address(a, &p.child("addresses").index(j)));
            }
            for (j, a) in not_ready.iter().enumerate() {
                errs.extend(endpoint_address(a, &p.child("notReadyAddresses").index(j)));
            }
            let ports = ss.ports.as_deref().unwrap_or_default();
            for (j, port) in ports.iter().enumerate() {
                let pp = p.child("ports").index(j);
                let name = port.name.as_deref().unwrap_or_default();
                if ports.len() > 1 && name.is_empty() {
                    errs.push(FieldError::required(&pp.child("name"), ""));
                } else if !name.is_empty() {
                    errs.extend(validation::invalid_each(&pp.child("name"), name, validation::dns1123_label(name)));
                }
                for m in validation::port_num(i64::from(port.port)) {
                    errs.push(FieldError::invalid(&pp.child("port"), port.port, m));
                }
                errs.extend(crate::strategy::common::enum_value(
                    port.protocol.as_deref(),
                    &["SCTP", "TCP", "UDP"],
                    true,
                    &pp.child("protocol"),
                ));
            }
        }
        errs
    }
}

fn endpoint_address(a: &EndpointAddress, path: &Path) -> ErrorList {
    let mut errs = validation::invalid_each(&path.child("ip"), &a.ip, validation::ip(&a.ip));
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validation::invalid_each(&path.child("hostname"), h, validation::dns1123_label(h)));
    }
    if let Some(n) = &a.node_name {
        errs.extend(validation::invalid_each(&path.child("nodeName"), n, validation::dns1123_subdomain(n)));
    }
    errs.extend(super::service::non_special_ip(&a.ip, &path.child("ip")));
    errs
}

impl KindStrategy for Event {
    fn validate(&self) -> ErrorList {
        let ns = self.metadata.namespace.as_deref().unwrap_or_default();
        let involved = self.involved_object.namespace.as_deref().unwrap_or_default();
        let ok = if involved.is_empty() { ns.is_empty() || ns == "default" } else { ns == involved };
        if ok {
            Vec::new()
        } else {
            vec![FieldError::invalid(
                &Path::new("involvedObject").child("namespace"),
                involved,
                "does not match event.namespace",
            )]
        }
    }
}

impl KindStrategy for LimitRange {
    fn default(&mut self) {
        for item in self.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            for m in [
                &mut item.default,
                &mut item.default_request,
                &mut item.max,
                &mut item.min,
                &mut item.max_limit_request_ratio,
            ] {
                for q in m.iter_mut().flat_map(|m| m.values_mut()) {
                    canonical_quantity(q);
                }
            }
            // SetDefaults_LimitRangeItem: a container's default limit is its max, its default
            // request its default limit (or min).
            if item.type_ == "Container" {
                for (k, v) in item.max.clone().into_iter().flatten() {
                    item.default.get_or_insert_with(BTreeMap::new).entry(k).or_insert(v);
                }
                for (k, v) in item.default.clone().into_iter().flatten() {
                    item.default_request.get_or_insert_with(BTreeMap::new).entry(k).or_insert(v);
                }
                for (k, v) in item.min.clone().into_iter().flatten() {
                    item.default_request.get_or_insert_with(BTreeMap::new).entry(k).or_insert(v);
                }
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let mut types = BTreeSet::new();
        for (i, item) in self.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            let p = Path::new("spec").child("limits").index(i);
            let t = item.type_.as_str();
            errs.extend(validation::invalid_each(&p.child("type"), t, validation::qualified_name(t)));
            if !t.contains('/') && !matches!(t, "Pod" | "Container" | "PersistentVolumeClaim") {
                errs.push(FieldError::invalid(&p.child("type"), t, "must be a standard limit type or fully qualified"));
            }
            if !types.insert(t) {
                errs.push(FieldError::duplicate(&p.child("type"), t));
            }
            if t == "Pod" {
                if item.default.as_ref().is_some_and(|d| !d.is_empty()) {
                    errs.push(FieldError::forbidden(&p.child("default"), "may not be specified when `type` is 'Pod'"));
                }
                if item.default_request.as_ref().is_some_and(|d| !d.is_empty()) {
                    errs.push(FieldError::forbidden(
                        &p.child("defaultRequest"),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            let get = |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
                       field: &str,
                       errs: &mut ErrorList| {
                let mut out = BTreeMap::new();
                for (k, q) in m.iter().flatten() {
                    if let Some(v) = parse_quantity(&q.0, &p.child(field).key(k), errs) {
                        out.insert(k.clone(), v);
                    }
                }
                out
            };
            let min = get(&item.min, "min", &mut errs);
            let max = get(&item.max, "max", &mut errs);
            let def = get(&item.default, "default", &mut errs);
            let def_req = get(&item.default_request, "defaultRequest", &mut errs);
            let ratio = get(&item.max_limit_request_ratio, "maxLimitRequestRatio", &mut errs);
            let keys: BTreeSet<&String> =
                min.keys().chain(max.keys()).chain(def.keys()).chain(def_req.keys()).chain(ratio.keys()).collect();
            for k in keys {
                let (mi, ma, d, dr) = (min.get(k), max.get(k), def.get(k), def_req.get(k));
                let check = |cond: bool, field: &str, v: &Qty, msg: String, errs: &mut ErrorList| {
                    if cond {
                        errs.push(FieldError::invalid(&p.child(field).key(k), v.to_string(), msg));
                    }
                };
                if let (Some(a), Some(b)) = (mi, ma) {
                    check(a > b, "min", a, format!("min value {a} is greater than max value {b}"), &mut errs);
                }
                if let (Some(r), Some(a)) = (dr, mi) {
                    check(
                        a > r,
                        "defaultRequest",
                        r,
                        format!("min value {a} is greater than default request value {r}"),
                        &mut errs,
                    );
                }
                if let (Some(r), Some(b)) = (dr, ma) {
                    check(
                        r > b,
                        "defaultRequest",
                        r,
                        format!("default request value {r} is greater than max value {b}"),
                        &mut errs,
                    );
                }
                if let (Some(r), Some(dd)) = (dr, d) {
                    check(
                        r > dd,
                        "defaultRequest",
                        r,
                        format!("default request value {r} is greater than default limit value {dd}"),
                        &mut errs,
                    );
                }
                if let (Some(dd), Some(a)) = (d, mi) {
                    check(a > dd, "default", a, format!("min value {a} is greater than default value {dd}"), &mut errs);
                }
                if let (Some(dd), Some(b)) = (d, ma) {
                    check(dd > b, "default", b, format!("default value {dd} is greater than max value {b}"), &mut errs);
                }
                if let Some(r) = ratio.get(k)
                    && r.milli() < 1000
                {
                    check(true, "maxLimitRequestRatio", r, format!("ratio {r} is less than 1"), &mut errs);
                }
            }
        }
        errs
    }
}

impl KindStrategy for ResourceQuota {
    fn prepare_for_create(&mut self) {
        self.status = None;
    }

    fn default(&mut self) {
        for q in self.spec.iter_mut().flat_map(|s| s.hard.iter_mut()).flat_map(|m| m.values_mut()) {
            canonical_quantity(q);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let p = Path::new("spec").child("hard");
        for (k, q) in self.spec.iter().flat_map(|s| s.hard.iter().flatten()) {
            let kp = p.key(k);
            errs.extend(validation::invalid_each(&kp, k, validation::qualified_name(k)));
            errs.extend(pod_spec::quantity_value(k, q, &kp));
        }
        let scopes: Vec<&String> = self.spec.iter().flat_map(|s| s.scopes.iter().flatten()).collect();
        const SCOPES: &[&str] = &[
            "Terminating",
            "NotTerminating",
            "BestEffort",
            "NotBestEffort",
            "PriorityClass",
            "CrossNamespacePodAffinity",
        ];
        let shown = || Raw(crate::strategy::common::go_strings(self.spec.as_ref().and_then(|s| s.scopes.as_deref())));
        for s in &scopes {
            if !SCOPES.contains(&s.as_str()) {
                errs.push(FieldError::invalid(&Path::new("spec").child("scopes"), shown(), "unsupported scope"));
            }
        }
        let has = |s: &str| scopes.iter().any(|x| *x == s);
        if (has("BestEffort") && has("NotBestEffort")) || (has("Terminating") && has("NotTerminating")) {
            errs.push(FieldError::invalid(&Path::new("spec").child("scopes"), shown(), "conflicting scopes"));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let scopes = |q: &ResourceQuota| -> BTreeSet<String> {
            q.spec.iter().flat_map(|s| s.scopes.iter().flatten()).cloned().collect()
        };
        if scopes(self) != scopes(old) {
            return vec![FieldError::invalid(
                &Path::new("spec").child("scopes"),
                Raw(crate::strategy::common::go_strings(self.spec.as_ref().and_then(|s| s.scopes.as_deref()))),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}

impl KindStrategy for PodTemplate {
    fn warnings(&self) -> Vec<String> {
        super::warnings::template_warnings(self.template.as_ref(), &Path::new("template"))
    }

    fn default(&mut self) {
        if let Some(t) = &mut self.template {
            pod_spec::default_pod_template(t);
        }
    }

    fn validate(&self) -> ErrorList {
        let t = self.template.clone().unwrap_or_default();
        pod_spec::validate_pod_template_spec(&t, &Path::new("template"))
    }
}

impl KindStrategy for ReplicationController {
    fn warnings(&self) -> Vec<String> {
        super::warnings::template_warnings(
            self.spec.as_ref().and_then(|s| s.template.as_ref()),
            &Path::new("spec").child("template"),
        )
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicationControllerStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(ReplicationControllerSpec::default);
        if let Some(t) = &mut spec.template {
            pod_spec::default_pod_template(t);
            // SetDefaults_ReplicationController: selector and labels default to the template's labels.
            let labels = t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) && !labels.is_empty() {
                spec.selector = Some(labels.clone());
            }
            if self.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) && !labels.is_empty() {
                self.metadata.labels = Some(labels);
            }
        }
        if spec.replicas.is_none() {
            spec.replicas = Some(1);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        errs.extend(validation::nonnegative(
            i64::from(spec.min_ready_seconds.unwrap_or(0)),
            &p.child("minReadySeconds"),
        ));
        let selector = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() {
            errs.push(FieldError::required(&p.child("selector"), ""));
        }
        errs.extend(validation::nonnegative(i64::from(spec.replicas.unwrap_or(0)), &p.child("replicas")));
        match &spec.template {
            None => errs.push(FieldError::required(&p.child("template"), "")),
            Some(t) => {
                let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
                let matches = selector.is_empty() || map_selector_matches(&selector, labels);
                errs.extend(pod_spec::validate_replicated_template(
                    t,
                    matches,
                    &p.child("template"),
                    DeadlineRule::Forbidden("activeDeadlineSeconds in ReplicationController is not Supported"),
                ));
            }
        }
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        replica_status(
            &Path::new("status"),
            s.replicas,
            &[
                ("fullyLabeledReplicas", s.fully_labeled_replicas.unwrap_or(0)),
                ("readyReplicas", s.ready_replicas.unwrap_or(0)),
                ("availableReplicas", s.available_replicas.unwrap_or(0)),
            ],
            s.observed_generation.unwrap_or(0),
        )
    }
}

/// Status counters of replicated workloads: non-negative and not above `replicas`.
pub(crate) fn replica_status(path: &Path, replicas: i32, counters: &[(&str, i32)], observed: i64) -> ErrorList {
    let mut errs = validation::nonnegative(i64::from(replicas), &path.child("replicas"));
    for (name, v) in counters {
        errs.extend(validation::nonnegative(i64::from(*v), &path.child(name)));
    }
    errs.extend(validation::nonnegative(observed, &path.child("observedGeneration")));
    for (name, v) in counters {
        if *v > replicas {
            errs.push(FieldError::invalid(&path.child(name), *v, "cannot be greater than status.replicas"));
        }
    }
    let get = |n: &str| counters.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    if let (Some(a), Some(r)) = (get("availableReplicas"), get("readyReplicas"))
        && a > r
    {
        errs.push(FieldError::invalid(&path.child("availableReplicas"), a, "cannot be greater than readyReplicas"));
    }
    errs
}
