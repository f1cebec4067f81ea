//! Pods: what upstream's pod strategy (`pkg/registry/core/pod/strategy.go`), `SetDefaults_Pod`
//! and the admission plugins that always run on create (ServiceAccount, Priority,
//! DefaultTolerationSeconds) do, plus `ValidatePodCreate`, `ValidatePodUpdate` and
//! `ValidatePodStatusUpdate`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus, Toleration};
use serde::Deserialize;
use serde_json::Value;

use super::pod_spec::{self, SpecContext};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{Qty, Raw};
use crate::validation;

/// Upstream's `updatablePodSpecFields`, joined as its message prints them.
const UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 \
if it was previously negative)";

/// The tolerations the DefaultTolerationSeconds admission plugin adds (300 s).
const DEFAULT_TOLERATION_KEYS: [&str; 2] = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/// Well-known priority classes whose value the Priority admission plugin fills in.
fn system_priority(class: &str) -> Option<i32> {
    match class {
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    }
}

impl KindStrategy for Pod {
    fn prepare_for_create(&mut self) {
        KindStrategy::default(self);
        let spec = self.spec.get_or_insert_with(PodSpec::default);
        // ServiceAccount admission: every pod runs as a service account.
        if spec.service_account_name.as_deref().is_none_or(str::is_empty) {
            spec.service_account_name = Some("default".to_string());
            spec.service_account = Some("default".to_string());
        }
        // Priority admission: resolve the priority and preemption policy.
        if spec.priority.is_none() {
            match spec.priority_class_name.as_deref().filter(|c| !c.is_empty()) {
                None => spec.priority = Some(0),
                Some(c) => spec.priority = system_priority(c),
            }
        }
        if spec.preemption_policy.is_none() {
            spec.preemption_policy = Some("PreemptLowerPriority".to_string());
        }
        add_default_tolerations(spec);
        let mut status = PodStatus {
            phase: Some("Pending".to_string()),
            qos_class: Some(qos_class(spec).to_string()),
            ..Default::default()
        };
        if spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
            status.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".to_string(),
                status: "False".to_string(),
                reason: Some("SchedulingGated".to_string()),
                message: Some("Scheduling is blocked due to non-empty scheduling gates".to_string()),
                ..Default::default()
            }]);
        }
        self.status = Some(status);
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(PodSpec::default);
        pod_spec::default_pod_spec(spec);
        // SetDefaults_Pod: requests default to limits.
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            default_requests_from_limits(c);
        }
        // v1's deprecated `serviceAccount` mirrors `serviceAccountName`.
        if spec.service_account_name.as_deref().is_none_or(str::is_empty)
            && let Some(sa) = spec.service_account.clone().filter(|s| !s.is_empty())
        {
            spec.service_account_name = Some(sa);
        }
        if let Some(sa) = spec.service_account_name.clone().filter(|s| !s.is_empty()) {
            spec.service_account = Some(sa);
        }
        if let Some(status) = &mut self.status {
            sync_ips(status);
        }
    }

    fn validate(&self) -> ErrorList {
        let empty = PodSpec::default();
        let spec = self.spec.as_ref().unwrap_or(&empty);
        let spec_path = Path::new("spec");
        let ctx = SpecContext { is_pod: true, pod_name: self.metadata.name.as_deref() };
        let mut errs = pod_spec::validate_pod_spec(spec, &spec_path, ctx);
        if let Some(ann) = &self.metadata.annotations {
            errs.extend(validate_pod_annotations(ann, spec));
        }
        if spec.service_account_name.as_deref().is_none_or(str::is_empty) {
            for (vi, v) in spec.volumes.iter().flatten().enumerate() {
                for (si, s) in v.projected.iter().flat_map(|p| p.sources.iter().flatten()).enumerate() {
                    if s.service_account_token.is_some() {
                        errs.push(FieldError::forbidden(
                            &spec_path
                                .child("volumes")
                                .index(vi)
                                .child("projected")
                                .child("sources")
                                .index(si)
                                .child("serviceAccountToken"),
                            "must not be specified when serviceAccountName is not set",
                        ));
                    }
                }
            }
        }
        if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
            && spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty())
        {
            errs.push(FieldError::forbidden(
                &spec_path.child("nodeName"),
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let empty = PodSpec::default();
        let new_spec = self.spec.as_ref().unwrap_or(&empty);
        let old_spec = old.spec.as_ref().unwrap_or(&empty);
        validate_pod_spec_update(new_spec, old_spec, self, old)
    }

    fn validate_status_update(&self, old: &Value) -> ErrorList {
        match StatusBase::deserialize(old) {
            Ok(base) => validate_status_update(self, &base),
            Err(e) => vec![FieldError::internal(&Path::root(), format!("stored object does not decode: {e}"))],
        }
    }

    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(spec) = &self.spec {
            out.extend(super::warnings::pod_spec_warnings(spec, &Path::new("spec")));
        }
        if self
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("seccomp.security.alpha.kubernetes.io/pod"))
        {
            out.push(
                "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead"
                    .to_string(),
            );
        }
        out
    }
}

/// v1 has both `podIP` and `podIPs` (and `hostIP`/`hostIPs`); upstream's conversion keeps them
/// in step, the singular field winning when both are set and differ.
fn sync_ips(status: &mut PodStatus) {
    if let Some(ip) = status.pod_ip.clone().filter(|ip| !ip.is_empty())
        && status.pod_ips.as_ref().and_then(|v| v.first()).is_none_or(|first| first.ip != ip)
    {
        status.pod_ips = Some(vec![PodIP { ip }]);
    }
    if let Some(first) = status.pod_ips.as_ref().and_then(|v| v.first()) {
        status.pod_ip = Some(first.ip.clone());
    }
    if let Some(ip) = status.host_ip.clone().filter(|ip| !ip.is_empty())
        && status.host_ips.as_ref().and_then(|v| v.first()).is_none_or(|first| first.ip != ip)
    {
        status.host_ips = Some(vec![HostIP { ip }]);
    }
    if let Some(first) = status.host_ips.as_ref().and_then(|v| v.first()) {
        status.host_ip = Some(first.ip.clone());
    }
}

fn validate_pod_annotations(ann: &BTreeMap<String, String>, spec: &PodSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("metadata").child("annotations");
    if let Some(v) = ann.get("kubernetes.io/config.mirror")
        && spec.node_name.as_deref().is_none_or(str::is_empty)
    {
        errs.push(FieldError::invalid(
            &path.key("kubernetes.io/config.mirror"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = ann.get("controller.kubernetes.io/pod-deletion-cost")
        && v.parse::<i32>().is_err()
    {
        errs.push(FieldError::invalid(
            &path.key("controller.kubernetes.io/pod-deletion-cost"),
            v,
            "must be a 32bit integer",
        ));
    }
    errs
}

fn default_requests_from_limits(c: &mut Container) {
    let Some(res) = &mut c.resources else { return };
    let Some(limits) = res.limits.clone() else { return };
    if limits.is_empty() {
        return;
    }
    let requests = res.requests.get_or_insert_with(BTreeMap::new);
    for (name, q) in limits {
        requests.entry(name).or_insert(q);
    }
}

fn add_default_tolerations(spec: &mut PodSpec) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for key in DEFAULT_TOLERATION_KEYS {
        let tolerated = list.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or_default();
            let e = t.effect.as_deref().unwrap_or_default();
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        });
        if !tolerated {
            list.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
}

/// Upstream's `qos.ComputePodQOS`: only cpu and memory count.
pub(crate) fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let positive = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
        Qty::parse(&q.0).ok().filter(|v| !v.is_negative() && !v.is_zero()).map(|v| v.milli())
    };
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            let name = name.as_str();
            if (name == "cpu" || name == "memory")
                && let Some(v) = positive(q)
            {
                *requests.entry(name).or_insert(0) += v;
            }
        }
        let mut found = BTreeSet::new();
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            let name = name.as_str();
            if (name == "cpu" || name == "memory")
                && let Some(v) = positive(q)
            {
                found.insert(name);
                *limits.entry(name).or_insert(0) += v;
            }
        }
        if found.len() != 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, v)| limits.get(k) != Some(v)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() { "Guaranteed" } else { "Burstable" }
}

fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec, new_pod: &Pod, old_pod: &Pod) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec_path = Path::new("spec");
    let _ = (new_pod, old_pod);
    for (n, o, field) in [
        (new.containers.as_slice(), old.containers.as_slice(), "containers"),
        (
            new.init_containers.as_deref().unwrap_or_default(),
            old.init_containers.as_deref().unwrap_or_default(),
            "initContainers",
        ),
    ] {
        let p = spec_path.child(field);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(&p, "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or_default();
            if image.is_empty() {
                errs.push(FieldError::required(&p.index(i).child("image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let ads = spec_path.child("activeDeadlineSeconds");
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if n < 0 || n > i64::from(i32::MAX) => {
            errs.push(FieldError::invalid(&ads, n, validation::inclusive_range_msg(0, i64::from(i32::MAX))));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(&ads, n, "must be less than or equal to previous value"));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads,
            Raw("null".into()),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Only additions to tolerations (tolerationSeconds of existing ones may change).
    let new_tol = new.tolerations.as_deref().unwrap_or_default();
    for o in old.tolerations.iter().flatten() {
        let found = new_tol.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            o == *n
        });
        if !found {
            errs.push(FieldError::forbidden(
                &spec_path.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Only deletions of scheduling gates.
    let old_gates: BTreeSet<&str> = old.scheduling_gates.iter().flatten().map(|g| g.name.as_str()).collect();
    for (i, g) in new.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                &spec_path.child("schedulingGates").index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{}'", g.name),
            ));
        }
    }
    if new == old {
        return errs;
    }
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old.init_containers.iter().flatten()) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0) && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    // Gated pods may gain node selector entries (no changes or removals).
    if old.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) && munged.node_selector != old.node_selector {
        let empty = BTreeMap::new();
        let new_sel = munged.node_selector.as_ref().unwrap_or(&empty);
        let only_additions = old.node_selector.iter().flatten().all(|(k, v)| new_sel.get(k) == Some(v));
        if !only_additions {
            errs.push(FieldError::invalid(
                &spec_path.child("nodeSelector"),
                Raw(crate::strategy::common::go_map(munged.node_selector.as_ref())),
                "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            ));
        }
        munged.node_selector.clone_from(&old.node_selector);
    }
    if munged != *old {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!("pod updates may not change fields other than {UPDATABLE_FIELDS}\n{}", spec_diff(old, &munged)),
        ));
    }
    errs
}

/// A short description of what changed between two pod specs (upstream prints a `cmp.Diff`).
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (Ok(serde_json::Value::Object(o)), Ok(serde_json::Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return String::new();
    };
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (ov, nv) = (o.get(k), n.get(k));
        if ov != nv {
            if let Some(v) = ov {
                out.push_str(&format!("- \t{k}: {v},\n"));
            }
            if let Some(v) = nv {
                out.push_str(&format!("+ \t{k}: {v},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

/// What `ValidatePodStatusUpdate` reads of the stored pod, decoded from its JSON alone (the
/// rest of the pod is skipped, not built). Absent fields are `None`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBase {
    spec: Option<BaseSpec>,
    status: Option<BaseStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaseSpec {
    node_name: Option<String>,
    restart_policy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaseStatus {
    nominated_node_name: Option<String>,
    qos_class: Option<String>,
    container_statuses: Option<Vec<BaseContainer>>,
}

#[derive(Debug, Deserialize)]
struct BaseContainer {
    #[serde(default)]
    name: String,
    state: Option<BaseState>,
}

#[derive(Debug, Deserialize)]
struct BaseState {
    terminated: Option<BaseTerminated>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BaseTerminated {
    #[serde(default)]
    exit_code: i32,
}

fn validate_status_update(new: &Pod, old: &StatusBase) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty_status = PodStatus::default();
    let status = new.status.as_ref().unwrap_or(&empty_status);
    let old_status = old.status.as_ref();
    let new_node = new.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default();
    let old_node = old.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default();
    for (i, c) in status.conditions.iter().flatten().enumerate() {
        if matches!(c.type_.as_str(), "PodScheduled" | "Ready" | "Initialized") {
            continue;
        }
        // sic: upstream reports custom conditions under metadata.
        let p = Path::new("metadata").child("conditions").index(i).child("Type");
        errs.extend(validation::invalid_each(&p, &c.type_, validation::qualified_name(&c.type_)));
    }
    let sp = Path::new("status");
    if new_node != old_node {
        errs.push(FieldError::forbidden(&sp.child("nodeName"), "may not be changed directly"));
    }
    if let Some(n) = status.nominated_node_name.as_deref().filter(|n| !n.is_empty())
        && status.nominated_node_name != old_status.and_then(|s| s.nominated_node_name.clone())
    {
        errs.extend(validation::invalid_each(&sp.child("nominatedNodeName"), n, validation::dns1123_subdomain(n)));
    }
    let new_qos = status.qos_class.clone().unwrap_or_default();
    if new_qos != old_status.and_then(|s| s.qos_class.clone()).unwrap_or_default() {
        errs.push(FieldError::invalid(&sp.child("qosClass"), new_qos, validation::IMMUTABLE_MSG));
    }
    let restart = old.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or_default();
    errs.extend(state_transitions(
        status.container_statuses.as_deref().unwrap_or_default(),
        old_status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default(),
        restart,
        &sp.child("containerStatuses"),
    ));
    let ips: Vec<&str> = status.pod_ips.iter().flatten().map(|p| p.ip.as_str()).collect();
    errs.extend(validate_ip_list(&ips, &sp.child("podIPs")));
    let host_ips: Vec<&str> = status.host_ips.iter().flatten().map(|p| p.ip.as_str()).collect();
    if let Some(first) = host_ips.first()
        && status.host_ip.as_deref().unwrap_or_default() != *first
    {
        errs.push(FieldError::invalid(&sp.child("hostIPs").index(0).child("ip"), *first, "must be equal to `hostIP`"));
    }
    errs.extend(validate_ip_list(&host_ips, &sp.child("hostIPs")));
    errs
}

/// Terminated containers may not come back unless the pod restarts them.
fn state_transitions(
    new: &[k8s_openapi::api::core::v1::ContainerStatus],
    old: &[BaseContainer],
    restart: &str,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if restart == "Always" {
        return errs;
    }
    for (i, o) in old.iter().enumerate() {
        let Some(term) = o.state.as_ref().and_then(|s| s.terminated.as_ref()) else { continue };
        if term.exit_code != 0 && restart == "OnFailure" {
            continue;
        }
        for n in new {
            if n.name == o.name && n.state.as_ref().and_then(|s| s.terminated.as_ref()).is_none() {
                errs.push(FieldError::forbidden(
                    &path.index(i).child("state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    errs
}

/// Pod and host IP lists: valid IPs, at most one per family, no duplicates.
fn validate_ip_list(ips: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ip) in ips.iter().enumerate() {
        errs.extend(validation::invalid_each(&path.index(i), ip, validation::ip(ip)));
    }
    if ips.len() > 1 {
        let v4 = ips.iter().filter(|ip| validation::parse_ip(ip).is_some_and(|a| a.is_ipv4())).count();
        let v6 = ips.iter().filter(|ip| validation::parse_ip(ip).is_some_and(|a| a.is_ipv6())).count();
        if ips.len() > 2 || v4 != 1 || v6 != 1 {
            let shown: Vec<String> = ips.iter().map(|ip| format!("{{IP:{ip:?}}}")).collect();
            errs.push(FieldError::invalid(
                path,
                Raw(format!("[]core.PodIP{{{}}}", shown.join(", "))),
                "may specify no more than one IP for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, ip) in ips.iter().enumerate() {
            if !seen.insert(*ip) {
                errs.push(FieldError::duplicate(&path.index(i), Raw(format!("core.PodIP{{IP:{ip:?}}}"))));
            }
        }
    }
    errs
}
