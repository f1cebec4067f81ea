//! Non-fatal warnings for pod specs (upstream's `GetWarningsForPod` /
//! `GetWarningsForPodTemplate`), returned to clients as `Warning:` headers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

use crate::field::Path;
use crate::strategy::common::Qty;

/// Node labels that were renamed, with upstream's deprecation message.
fn deprecated_node_label(key: &str) -> Option<&'static str> {
    match key {
        "beta.kubernetes.io/arch" => Some("deprecated since v1.14; use \"kubernetes.io/arch\" instead"),
        "beta.kubernetes.io/os" => Some("deprecated since v1.14; use \"kubernetes.io/os\" instead"),
        "failure-domain.beta.kubernetes.io/region" => {
            Some("deprecated since v1.17; use \"topology.kubernetes.io/region\" instead")
        }
        "failure-domain.beta.kubernetes.io/zone" => {
            Some("deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead")
        }
        "beta.kubernetes.io/instance-type" => {
            Some("deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead")
        }
        _ => None,
    }
}

/// Warnings for a pod spec at `path` (`spec` for pods, `spec.template.spec` for workloads).
pub(crate) fn pod_spec_warnings(spec: &PodSpec, path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for k in spec.node_selector.iter().flat_map(BTreeMap::keys) {
        if let Some(msg) = deprecated_node_label(k) {
            out.push(format!("{}: {msg}", path.child("nodeSelector").key(k)));
        }
    }
    if let Some(terms) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
    {
        for (i, t) in terms.node_selector_terms.iter().enumerate() {
            for (j, e) in t.match_expressions.iter().flatten().enumerate() {
                if let Some(msg) = deprecated_node_label(&e.key) {
                    let p = path
                        .child("affinity")
                        .child("nodeAffinity")
                        .child("requiredDuringSchedulingIgnoredDuringExecution")
                        .child("nodeSelectorTerms")
                        .index(i)
                        .child("matchExpressions")
                        .index(j)
                        .child("key");
                    out.push(format!("{p}: {e_key} is {msg}", e_key = e.key));
                }
            }
        }
    }
    if spec.termination_grace_period_seconds.is_some_and(|g| g < 0) {
        out.push(format!(
            "{}: must be >= 0; negative values are invalid and will be treated as 1",
            path.child("terminationGracePeriodSeconds")
        ));
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if v.git_repo.is_some() {
            out.push(format!("{}: deprecated in v1.11", path.child("volumes").index(i).child("gitRepo")));
        }
    }
    let lists = [(Some(&spec.containers), "containers"), (spec.init_containers.as_ref(), "initContainers")];
    for (list, field) in lists {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let cp = path.child(field).index(i);
            let res = c.resources.as_ref();
            for (kind, map) in
                [("limits", res.and_then(|r| r.limits.as_ref())), ("requests", res.and_then(|r| r.requests.as_ref()))]
            {
                if let Some(q) = map.and_then(|m| m.get("memory"))
                    && Qty::parse(&q.0).is_ok_and(|v| !v.is_integer())
                {
                    out.push(format!(
                        "{}: fractional byte value {:?} is invalid, must be an integer",
                        cp.child("resources").child(kind).key("memory"),
                        q.0
                    ));
                }
            }
            let mut seen: BTreeMap<(i32, String, String, i32), Path> = BTreeMap::new();
            for (j, p) in c.ports.iter().flatten().enumerate() {
                let key = (
                    p.container_port,
                    p.protocol.clone().unwrap_or_default(),
                    p.host_ip.clone().unwrap_or_default(),
                    p.host_port.unwrap_or(0),
                );
                let here = cp.child("ports").index(j);
                match seen.get(&key) {
                    Some(first) => out.push(format!("{here}: duplicate port definition with {first}")),
                    None => {
                        seen.insert(key, here);
                    }
                }
            }
        }
    }
    out
}

/// Warnings for a workload's pod template.
pub(crate) fn template_warnings(t: Option<&PodTemplateSpec>, path: &Path) -> Vec<String> {
    t.and_then(|t| t.spec.as_ref()).map(|s| pod_spec_warnings(s, &path.child("spec"))).unwrap_or_default()
}
