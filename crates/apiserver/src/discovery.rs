//! Discovery: `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`, in the
//! legacy form and the aggregated form (`apidiscovery.k8s.io/v2`), which lets kubectl learn
//! every resource in two requests instead of one per group-version.

use serde_json::{Value, json};
use skiff_api::Resource;

use crate::ApiServer;

/// Upstream's order of groups in `/apis` (kubectl prefers earlier groups for short names).
const GROUP_ORDER: &[&str] = &[
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// The media type of aggregated discovery responses.
pub(crate) const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client accepts aggregated discovery (v2 only; v2beta1 was removed in 1.33).
pub(crate) fn wants_aggregated(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    accept.split(',').any(|part| {
        let p: Vec<String> = part.split(';').map(|s| s.trim().replace(' ', "")).collect();
        p.first().is_some_and(|m| m == "application/json")
            && p.iter().any(|x| x == "g=apidiscovery.k8s.io")
            && p.iter().any(|x| x == "v=v2")
            && p.iter().any(|x| x == "as=APIGroupDiscoveryList")
    })
}

/// Groups in discovery order, each with its versions in preference order.
fn groups(server: &ApiServer) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in &server.resources().all {
        if r.info.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| g == r.info.group) {
            Some((_, vs)) => {
                if !vs.iter().any(|v| v == r.info.version) {
                    vs.push(r.info.version.to_string());
                }
            }
            None => out.push((r.info.group.to_string(), vec![r.info.version.to_string()])),
        }
    }
    let rank = |g: &str| GROUP_ORDER.iter().position(|x| *x == g).unwrap_or(GROUP_ORDER.len());
    out.sort_by_key(|(g, _)| rank(g));
    out
}

fn gv(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

pub(crate) fn api_versions(server: &ApiServer) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{
            "clientCIDR": "0.0.0.0/0",
            "serverAddress": format!("{}:{}", server.config.advertise_address, server.config.advertise_port),
        }],
    })
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": gv(group, v), "version": v})).collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0].clone()})
}

pub(crate) fn api_group_list(server: &ApiServer) -> Value {
    let groups: Vec<Value> = groups(server).iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group(server: &ApiServer, group: &str) -> Option<Value> {
    let (g, vs) = groups(server).into_iter().find(|(g, _)| g == group)?;
    let mut v = group_json(&g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn resources_in<'a>(
    server: &'a ApiServer,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = std::sync::Arc<Resource>> + 'a {
    server.resources().all.clone().into_iter().filter(move |r| r.info.group == group && r.info.version == version)
}

/// A short stable hash of a resource's storage, like upstream's `storageVersionHash`.
fn storage_version_hash(r: &Resource) -> String {
    use base64::Engine;
    use sha2::Digest;
    let storage = r.info.storage.clone();
    let digest = sha2::Sha256::digest(format!("{storage}/{}", r.info.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

pub(crate) fn api_resource_list(server: &ApiServer, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in resources_in(server, group, version) {
        let i = &r.info;
        let mut entry = json!({
            "name": i.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": i.verbs,
            "storageVersionHash": storage_version_hash(&r),
        });
        if !i.short_names.is_empty() {
            entry["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            entry["categories"] = json!(i.categories);
        }
        resources.push(entry);
        for s in &i.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", i.plural, s.name),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != i.group || s.version != i.version {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            resources.push(sub);
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv(group, version), "resources": resources}),
    )
}

fn aggregated_version(server: &ApiServer, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = resources_in(server, group, version)
        .map(|r| {
            let i = &r.info;
            let mut e = json!({
                "resource": i.plural,
                "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
                "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": i.singular,
                "verbs": i.verbs,
            });
            if !i.short_names.is_empty() {
                e["shortNames"] = json!(i.short_names);
            }
            if !i.categories.is_empty() {
                e["categories"] = json!(i.categories);
            }
            if !i.subresources.is_empty() {
                let subs: Vec<Value> = i
                    .subresources
                    .iter()
                    .map(|s| {
                        json!({
                            "subresource": s.name,
                            "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                            "verbs": s.verbs,
                        })
                    })
                    .collect();
                e["subresources"] = json!(subs);
            }
            e
        })
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// Aggregated discovery for `/api` (core) or `/apis` (all groups).
pub(crate) fn aggregated(server: &ApiServer, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![json!({"metadata": {"creationTimestamp": null}, "versions": [aggregated_version(server, "", "v1")]})]
    } else {
        groups(server)
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs.iter().map(|v| aggregated_version(server, g, v)).collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_accept() {
        assert!(wants_aggregated(Some(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(!wants_aggregated(Some("application/json")));
        assert!(!wants_aggregated(None));
    }
}
