//! What exists in every cluster from the first start: the `default`, `kube-system`,
//! `kube-public` and `kube-node-lease` namespaces, and the `kubernetes` Service in `default`
//! (the first ClusterIP of the service range) whose Endpoints and EndpointSlice point at this
//! API server — upstream's bootstrap controller — and the cluster DNS Service `kube-dns` in
//! `kube-system` (the tenth ClusterIP).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::ApiServer;
use crate::registry::{self, Ctx, WriteOptions};
use crate::status::{ApiError, ApiResult};

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn ctx<'a>(server: &'a Arc<ApiServer>, group: &str, plural: &str, ns: Option<&'a str>) -> ApiResult<Ctx<'a>> {
    let version = "v1";
    let res = server
        .resources()
        .find(group, version, plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
    Ok(Ctx { server, res, namespace: ns })
}

async fn ensure(ctx: &Ctx<'_>, obj: Value) -> ApiResult<()> {
    // Look first: creating a Service that exists would fail on its ClusterIP before its name.
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if ctx.server.store.get(&ctx.key(name)).await?.is_some() {
        return Ok(());
    }
    match registry::create(ctx, obj, &WriteOptions::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Ensure an object exists with `desired`'s content (create or replace).
async fn reconcile(ctx: &Ctx<'_>, name: &str, desired: Value) -> ApiResult<()> {
    let d = desired.clone();
    match registry::guaranteed_update(
        ctx,
        name,
        registry::UpdateTarget::Main,
        &WriteOptions::default(),
        &move |cur: &Value| {
            let mut cur = registry::editable(cur);
            for (k, v) in d.as_object().into_iter().flatten() {
                if k != "metadata" {
                    cur[k] = v.clone();
                }
            }
            Ok(cur)
        },
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "NotFound" => ensure(ctx, desired).await,
        Err(e) => Err(e),
    }
}

pub(crate) async fn run(server: &Arc<ApiServer>) -> ApiResult<()> {
    let ns_ctx = ctx(server, "", "namespaces", None)?;
    for ns in NAMESPACES {
        ensure(&ns_ctx, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await?;
    }
    let ip = server.config.service_cidr.nth(0).to_string();
    let svc_ctx = ctx(server, "", "services", Some("default"))?;
    ensure(
        &svc_ctx,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": server.config.advertise_port}]},
        }),
    )
    .await?;
    // The cluster DNS (served by every node; see the controller manager's `clusterdns`) at the
    // tenth address of the range, where k3s and kubeadm put it.
    if server.config.service_cidr.prefix <= 28 {
        let dns_ctx = ctx(server, "", "services", Some("kube-system"))?;
        ensure(
            &dns_ctx,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system",
                             "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                        "kubernetes.io/name": "CoreDNS"}},
                "spec": {"type": "ClusterIP", "clusterIP": server.config.service_cidr.nth(9).to_string(),
                         "internalTrafficPolicy": "Local",
                         "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
            }),
        )
        .await?;
    }
    // Endpoints may not point at loopback (pods could not reach it); a host without any other
    // address gets the Service without endpoints.
    if server.config.advertise_address.is_loopback() {
        tracing::warn!("advertise address is loopback: the kubernetes Service gets no endpoints");
        return Ok(());
    }
    let addr = server.config.advertise_address.to_string();
    let port = server.config.advertise_port;
    let ep_ctx = ctx(server, "", "endpoints", Some("default"))?;
    reconcile(
        &ep_ctx,
        "kubernetes",
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    let slice_ctx = ctx(server, "discovery.k8s.io", "endpointslices", Some("default"))?;
    reconcile(
        &slice_ctx,
        "kubernetes",
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": if server.config.advertise_address.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [addr], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await?;
    Ok(())
}
