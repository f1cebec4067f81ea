//! Service ClusterIP and NodePort allocation (upstream's `pkg/registry/core/service/ipallocator`
//! and `portallocator`), as registry hooks around Service writes.
//!
//! Every allocated ClusterIP is an `IPAddress` object (networking.k8s.io/v1, named by the IP,
//! with a `parentRef` to its Service) — upstream's allocator since 1.33 — and every NodePort a
//! key under `/registry/ranges/servicenodeports/`. Both are claimed with the store's
//! create-if-absent, so an address or port is never handed out twice, even by two API servers.
//! They are claimed before the Service is written and released if the write fails; a repair
//! loop releases what a crash in between leaked.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_api::{FieldError, Path};

use crate::registry::{self, Ctx, key_for};
use crate::status::{ApiError, ApiResult};
use crate::{ApiServer, Config};

const NODE_PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

pub use skiff_api::cidr::Cidr;

/// Allocator configuration.
pub(crate) struct Allocators {
    pub cidr: Cidr,
    pub ports: (u16, u16),
}

impl Allocators {
    pub(crate) fn new(config: &Config) -> Self {
        Allocators { cidr: config.service_cidr, ports: config.node_port_range }
    }
}

/// What a Service write claimed, to commit or release.
#[derive(Default)]
pub(crate) struct Allocation {
    ips: Vec<String>,
    ports: Vec<u16>,
}

impl Allocation {
    /// The write failed or was a dry run: give everything back.
    pub(crate) async fn release(self, server: &Arc<ApiServer>) {
        for ip in &self.ips {
            release_ip(server, ip).await;
        }
        for p in &self.ports {
            let _ = server.store.delete(&format!("{NODE_PORT_PREFIX}{p}"), None).await;
        }
    }

    /// The write succeeded; nothing to do (claims are already durable).
    pub(crate) async fn commit(self, _server: &Arc<ApiServer>, _obj: &Value) {}
}

fn is_service(ctx: &Ctx<'_>) -> bool {
    ctx.info().group.is_empty() && ctx.info().plural == "services"
}

fn svc_name(obj: &Value) -> (String, String) {
    let s = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or_default().to_string();
    (s("namespace"), s("name"))
}

fn needs_cluster_ip(obj: &Value) -> bool {
    obj.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
}

fn needs_node_ports(obj: &Value) -> bool {
    match obj.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => true,
        Some("LoadBalancer") => {
            obj.pointer("/spec/allocateLoadBalancerNodePorts").and_then(Value::as_bool) != Some(false)
        }
        _ => false,
    }
}

fn invalid(obj: &Value, field: &Path, value: &str, detail: String) -> ApiError {
    let (_, name) = svc_name(obj);
    ApiError::invalid_kind("", "Service", &name, &[FieldError::invalid(field, value, detail)])
}

/// Claim one IP by creating its IPAddress object.
async fn claim_ip(ctx: &Ctx<'_>, ip: Ipv4Addr, parent: &Value) -> ApiResult<bool> {
    let server = ctx.server;
    let (ns, name) = svc_name(parent);
    let res = server
        .resources()
        .find("networking.k8s.io", "v1", "ipaddresses")
        .ok_or_else(|| ApiError::internal("ipaddresses are not registered"))?;
    let obj = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": name}},
    });
    let ipctx = Ctx { server, res, namespace: None };
    match Box::pin(registry::create(&ipctx, obj, &registry::WriteOptions::default())).await {
        Ok(_) => Ok(true),
        Err(e) if e.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release_ip(server: &Arc<ApiServer>, ip: &str) {
    if let Some(res) = server.resources().find("networking.k8s.io", "v1", "ipaddresses") {
        let _ = server.store.delete(&key_for(&res.info, None, ip), None).await;
    }
}

async fn claim_port(server: &Arc<ApiServer>, port: u16, owner: &Value) -> ApiResult<bool> {
    let (ns, name) = svc_name(owner);
    let claim = json!({"service": format!("{ns}/{name}"), "claimedAt": registry::now_rfc3339()});
    match server.store.create(&format!("{NODE_PORT_PREFIX}{port}"), Bytes::from(claim.to_string())).await {
        Ok(_) => Ok(true),
        Err(skiff_store::Error::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn random_start(n: u32) -> u32 {
    use rand::Rng;
    if n == 0 { 0 } else { rand::rng().random_range(0..n) }
}

async fn allocate_ip(ctx: &Ctx<'_>, obj: &mut Value, alloc: &mut Allocation, dry_run: bool) -> ApiResult<()> {
    let cidr = ctx.server.allocator.cidr;
    let requested = obj.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
    if requested == "None" {
        obj["spec"]["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let field = Path::new("spec").child("clusterIPs").index(0);
    let ip = if requested.is_empty() {
        let n = cidr.size();
        let start = random_start(n);
        let mut found = None;
        for i in 0..n {
            let candidate = cidr.nth((start + i) % n);
            if dry_run {
                if !ip_taken(ctx, candidate) {
                    found = Some(candidate);
                    break;
                }
                continue;
            }
            if ip_taken(ctx, candidate) {
                continue;
            }
            if claim_ip(ctx, candidate, obj).await? {
                alloc.ips.push(candidate.to_string());
                found = Some(candidate);
                break;
            }
        }
        found.ok_or_else(|| invalid(obj, &field, "", format!("failed to allocate IP: range is full ({cidr})")))?
    } else {
        let ip: Ipv4Addr = requested.parse().map_err(|_| {
            invalid(obj, &field, &requested, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into())
        })?;
        if !cidr.contains(ip) || ip == cidr.base || u32::from(ip) == u32::from(cidr.base) + cidr.size() + 1 {
            return Err(invalid(
                obj,
                &field,
                &requested,
                format!(
                    "failed to allocate IP {requested}: provided IP is not in the valid range. The range of valid IPs is {cidr}"
                ),
            ));
        }
        let taken = if dry_run { ip_taken(ctx, ip) } else { !claim_ip(ctx, ip, obj).await? };
        if taken {
            return Err(invalid(
                obj,
                &field,
                &requested,
                format!("failed to allocate IP {requested}: provided IP is already allocated"),
            ));
        }
        if !dry_run {
            alloc.ips.push(ip.to_string());
        }
        ip
    };
    obj["spec"]["clusterIP"] = Value::String(ip.to_string());
    obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
    Ok(())
}

fn ip_taken(ctx: &Ctx<'_>, ip: Ipv4Addr) -> bool {
    ctx.server.resources().find("networking.k8s.io", "v1", "ipaddresses").is_some_and(|r| {
        ctx.server.cache.get(&crate::storage_name(&r.info), &key_for(&r.info, None, &ip.to_string())).is_some()
    })
}

async fn allocate_ports(
    ctx: &Ctx<'_>,
    obj: &mut Value,
    keep: &[u16],
    alloc: &mut Allocation,
    dry_run: bool,
) -> ApiResult<()> {
    let (lo, hi) = ctx.server.allocator.ports;
    let Some(ports) = obj.pointer("/spec/ports").and_then(Value::as_array).cloned() else { return Ok(()) };
    let mut out = ports.clone();
    let mut used_here: Vec<u16> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let field = Path::new("spec").child("ports").index(i).child("nodePort");
        let requested = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        let port = if requested != 0 {
            if requested < lo as i64 || requested > hi as i64 {
                let (_, name) = svc_name(obj);
                return Err(ApiError::invalid_kind(
                    "",
                    "Service",
                    &name,
                    &[FieldError::invalid(
                        &field,
                        requested,
                        format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}"),
                    )],
                ));
            }
            let port = requested as u16;
            // The same port may serve two protocols of one Service, and an update keeps its own.
            if !keep.contains(&port) && !used_here.contains(&port) {
                let taken = if dry_run {
                    ctx.server.store.get(&format!("{NODE_PORT_PREFIX}{port}")).await?.is_some()
                } else {
                    !claim_port(ctx.server, port, obj).await?
                };
                if taken {
                    let (_, name) = svc_name(obj);
                    return Err(ApiError::invalid_kind(
                        "",
                        "Service",
                        &name,
                        &[FieldError::invalid(&field, requested, "provided port is already allocated")],
                    ));
                }
                if !dry_run {
                    alloc.ports.push(port);
                }
            }
            port
        } else {
            let n = (hi - lo) as u32 + 1;
            let start = random_start(n);
            let mut found = None;
            for k in 0..n {
                let candidate = lo + ((start + k) % n) as u16;
                if keep.contains(&candidate) || used_here.contains(&candidate) {
                    continue;
                }
                let free = if dry_run {
                    ctx.server.store.get(&format!("{NODE_PORT_PREFIX}{candidate}")).await?.is_none()
                } else {
                    claim_port(ctx.server, candidate, obj).await?
                };
                if free {
                    if !dry_run {
                        alloc.ports.push(candidate);
                    }
                    found = Some(candidate);
                    break;
                }
            }
            found.ok_or_else(|| {
                let (_, name) = svc_name(obj);
                ApiError::invalid_kind(
                    "",
                    "Service",
                    &name,
                    &[FieldError::invalid(&field, 0i64, "failed to allocate a nodePort: range is full")],
                )
            })?
        };
        used_here.push(port);
        out[i]["nodePort"] = json!(port);
    }
    obj["spec"]["ports"] = Value::Array(out);
    Ok(())
}

fn node_ports_of(obj: &Value) -> Vec<u16> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().filter_map(|p| p.get("nodePort")?.as_u64()).map(|p| p as u16).collect())
        .unwrap_or_default()
}

fn cluster_ips_of(obj: &Value) -> Vec<String> {
    obj.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter().filter_map(|v| v.as_str().map(String::from)).filter(|s| s != "None" && !s.is_empty()).collect()
        })
        .unwrap_or_default()
}

/// Before a Service is created: allocate its ClusterIP and NodePorts.
pub(crate) async fn before_create(ctx: &Ctx<'_>, obj: &mut Value, dry_run: bool) -> ApiResult<Allocation> {
    let mut alloc = Allocation::default();
    if !is_service(ctx) {
        return Ok(alloc);
    }
    let res = async {
        if needs_cluster_ip(obj) {
            allocate_ip(ctx, obj, &mut alloc, dry_run).await?;
        }
        if needs_node_ports(obj) {
            allocate_ports(ctx, obj, &[], &mut alloc, dry_run).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match res {
        Ok(()) => Ok(alloc),
        Err(e) => {
            alloc.release(ctx.server).await;
            Err(e)
        }
    }
}

/// Before a Service is updated: allocate what the new spec needs that the old did not have.
pub(crate) async fn before_update(ctx: &Ctx<'_>, old: &Value, new: &mut Value, dry_run: bool) -> ApiResult<Allocation> {
    let mut alloc = Allocation::default();
    if !is_service(ctx) {
        return Ok(alloc);
    }
    let res = async {
        // ClusterIPs are immutable once set (the strategy rejects changes); a Service turning
        // from ExternalName into another type gets one now.
        if needs_cluster_ip(new) {
            let old_ips = cluster_ips_of(old);
            if old_ips.is_empty() && old.pointer("/spec/clusterIP").and_then(Value::as_str) != Some("None") {
                allocate_ip(ctx, new, &mut alloc, dry_run).await?;
            } else if new.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").is_empty() {
                new["spec"]["clusterIP"] = old.pointer("/spec/clusterIP").cloned().unwrap_or(Value::Null);
                new["spec"]["clusterIPs"] = old.pointer("/spec/clusterIPs").cloned().unwrap_or(Value::Null);
            }
        } else if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if needs_node_ports(new) {
            let keep = if needs_node_ports(old) { node_ports_of(old) } else { Vec::new() };
            allocate_ports(ctx, new, &keep, &mut alloc, dry_run).await?;
        } else if let Some(Value::Array(ports)) = new.pointer_mut("/spec/ports") {
            // Leaving NodePort/LoadBalancer drops the node ports (upstream's
            // dropTypeDependentFields), rather than failing validation.
            for p in ports {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match res {
        Ok(()) => Ok(alloc),
        Err(e) => {
            alloc.release(ctx.server).await;
            Err(e)
        }
    }
}

/// After a Service update: release what the new spec no longer uses.
pub(crate) async fn after_update(ctx: &Ctx<'_>, old: &Value, new: &Value) {
    if !is_service(ctx) {
        return;
    }
    let new_ports = node_ports_of(new);
    for p in node_ports_of(old) {
        if !new_ports.contains(&p) {
            let _ = ctx.server.store.delete(&format!("{NODE_PORT_PREFIX}{p}"), None).await;
        }
    }
    let new_ips = cluster_ips_of(new);
    for ip in cluster_ips_of(old) {
        if !new_ips.contains(&ip) {
            release_ip(ctx.server, &ip).await;
        }
    }
}

/// After a Service is deleted: release its IP and ports.
pub(crate) async fn after_delete(ctx: &Ctx<'_>, obj: &Value) {
    if !is_service(ctx) {
        return;
    }
    for p in node_ports_of(obj) {
        let _ = ctx.server.store.delete(&format!("{NODE_PORT_PREFIX}{p}"), None).await;
    }
    for ip in cluster_ips_of(obj) {
        release_ip(ctx.server, &ip).await;
    }
}

/// Periodically release IPs and ports whose Service is gone (a crash between claiming and
/// writing the Service), as upstream's repair controllers do.
pub(crate) fn spawn_repair(server: Arc<ApiServer>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = repair(&server, Duration::from_secs(60)).await {
                tracing::warn!(error = %e, "service allocation repair failed");
            }
            tokio::select! {
                _ = server.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(180)) => {}
            }
        }
    });
}

/// One repair pass; claims younger than `min_age` are left alone (their Service may be being
/// written right now).
pub(crate) async fn repair(server: &Arc<ApiServer>, min_age: Duration) -> ApiResult<()> {
    let Some(svc) = server.resources().find("", "v1", "services") else { return Ok(()) };
    let Some(ipres) = server.resources().find("networking.k8s.io", "v1", "ipaddresses") else { return Ok(()) };
    server.cache.sync().await?;
    let services: Vec<Value> = {
        let (objs, _, _) = server.cache.list(
            &crate::storage_name(&svc.info),
            &registry::prefix_for(&svc.info, None),
            None,
            0,
            &|_| true,
        );
        objs.iter().map(|o| o.value()).collect()
    };
    let owner_of_ip = |ip: &str| services.iter().any(|s| cluster_ips_of(s).iter().any(|i| i == ip));
    let now = jiff::Timestamp::now();
    let (ips, _, _) = server.cache.list(
        &crate::storage_name(&ipres.info),
        &registry::prefix_for(&ipres.info, None),
        None,
        0,
        &|_| true,
    );
    for o in ips {
        let v = o.value();
        if v.pointer("/spec/parentRef/resource").and_then(Value::as_str) != Some("services") {
            continue;
        }
        let old_enough = v
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| now.duration_since(t).as_secs() >= min_age.as_secs() as i64);
        if old_enough && !owner_of_ip(&o.name) {
            tracing::info!(ip = %o.name, "releasing leaked ClusterIP");
            let _ = server.store.delete(&o.key, Some(o.mod_revision)).await;
        }
    }
    let ports = server.store.range(NODE_PORT_PREFIX, Default::default()).await?;
    for kv in ports.kvs {
        let port: u16 = kv.key.trim_start_matches(NODE_PORT_PREFIX).parse().unwrap_or(0);
        let owned = services.iter().any(|s| node_ports_of(s).contains(&port));
        let claimed_at = serde_json::from_slice::<Value>(&kv.value)
            .ok()
            .and_then(|v| v.get("claimedAt")?.as_str()?.parse::<jiff::Timestamp>().ok());
        let old_enough = claimed_at.is_none_or(|t| now.duration_since(t).as_secs() >= min_age.as_secs() as i64);
        if !owned && old_enough {
            tracing::info!(port, "releasing leaked NodePort");
            let _ = server.store.delete(&kv.key, Some(kv.mod_revision)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.43.7.9/16").unwrap();
        assert_eq!(c.base, Ipv4Addr::new(10, 43, 0, 0));
        assert_eq!(c.nth(0), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(c.size(), 65534);
        assert!(c.contains(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!c.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(Cidr::parse("10.43.0.0").is_err());
        assert!(Cidr::parse("10.43.0.0/40").is_err());
        assert_eq!(c.to_string(), "10.43.0.0/16");
    }
}
