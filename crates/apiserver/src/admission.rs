//! Admission for pods and quota-counted objects, as upstream's `LimitRanger` and
//! `ResourceQuota` plugins do it:
//!
//! - **LimitRanger** (pods, on create): each container without a limit or request gets the
//!   namespace's LimitRange defaults (`default`, `defaultRequest`, falling back to `max` and
//!   `min` as the LimitRange API defaults them), recorded in the
//!   `kubernetes.io/limit-ranger` annotation; then `min`/`max` per Container are enforced (403).
//! - **ResourceQuota** (create of pods, services, configmaps, secrets, PVCs, RCs, quotas and any
//!   `count/<resource>[.<group>]`): the object's usage is added to every quota of the namespace
//!   that limits it; if any would go over `hard` the request is refused (403, upstream's
//!   message), otherwise the quotas' `status.used` are raised in compare-and-swap writes before
//!   the object is stored. A quota that limits compute resources refuses pods that do not state
//!   them. The quota controller recomputes `used` from what exists.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use skiff_api::quantity::{format_milli, milli_value};

use crate::registry::{self, Ctx, ListOptions, UpdateTarget, WriteOptions};
use crate::status::{ApiError, ApiResult};

fn containers_mut(pod: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        for (key, v) in spec.iter_mut() {
            if let ("initContainers" | "containers", Value::Array(cs)) = (key.as_str(), v) {
                out.extend(cs.iter_mut());
            }
        }
    }
    out
}

/// `LimitRanger` for a pod being created.
pub(crate) async fn limit_ranges(ctx: &Ctx<'_>, pod: &mut Value) -> ApiResult<()> {
    let Some(ns) = ctx.namespace else { return Ok(()) };
    let ranges = list_async(ctx, "limitranges", ns).await?;
    if ranges.is_empty() {
        return Ok(());
    }
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut set = Vec::new();
    let mut errors = Vec::new();
    for item in
        ranges.iter().flat_map(|r| r.pointer("/spec/limits").and_then(Value::as_array).cloned().unwrap_or_default())
    {
        if item["type"] != "Container" {
            continue;
        }
        let map = |k: &str| item.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let (max, min) = (map("max"), map("min"));
        let mut default = map("default");
        for (k, v) in &max {
            default.entry(k.clone()).or_insert(v.clone());
        }
        let mut default_request = map("defaultRequest");
        for (k, v) in default.iter().chain(min.iter()) {
            default_request.entry(k.clone()).or_insert(v.clone());
        }
        for c in containers_mut(pod) {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            for (field, defaults, word) in [("limits", &default, "limit"), ("requests", &default_request, "request")] {
                for (res, v) in defaults {
                    if c.pointer(&format!("/resources/{field}/{res}")).is_none() {
                        if !c["resources"].is_object() {
                            c["resources"] = json!({});
                        }
                        if !c["resources"][field].is_object() {
                            c["resources"][field] = json!({});
                        }
                        c["resources"][field][res] = v.clone();
                        set.push(format!("{res} {word} for container {cname}"));
                    }
                }
            }
            let qty = |field: &str, res: &str| {
                c.pointer(&format!("/resources/{field}/{res}")).and_then(Value::as_str).map(String::from)
            };
            for (res, v) in &max {
                let bound = v.as_str().unwrap_or_default();
                match qty("limits", res) {
                    None => {
                        errors.push(format!("maximum {res} usage per Container is {bound}.  No limit is specified"))
                    }
                    Some(l) if milli_value(&l) > milli_value(bound) => {
                        errors.push(format!("maximum {res} usage per Container is {bound}, but limit is {l}"))
                    }
                    _ => {}
                }
            }
            for (res, v) in &min {
                let bound = v.as_str().unwrap_or_default();
                match qty("requests", res) {
                    None => {
                        errors.push(format!("minimum {res} usage per Container is {bound}.  No request is specified"))
                    }
                    Some(r) if milli_value(&r) < milli_value(bound) => {
                        errors.push(format!("minimum {res} usage per Container is {bound}, but request is {r}"))
                    }
                    _ => {}
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::forbidden(format!("pods {name:?} is forbidden: [{}]", errors.join(", "))));
    }
    if !set.is_empty() {
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] =
            json!(format!("LimitRanger plugin set: {}", set.join("; ")));
    }
    Ok(())
}

async fn list_async(ctx: &Ctx<'_>, plural: &str, ns: &str) -> ApiResult<Vec<Value>> {
    let Some(res) = ctx.server.resources().find("", "v1", plural) else { return Ok(Vec::new()) };
    let c = Ctx { server: ctx.server, res, namespace: Some(ns) };
    let mut out = Vec::new();
    // From the watch cache as it is (resourceVersion=0), like upstream's admission informers:
    // a consistent read would cost a store round trip on every create.
    let opts = ListOptions { resource_version: Some("0".to_string()), ..ListOptions::default() };
    for item in registry::list(&c, &opts).await?.items {
        out.push(serde_json::from_slice(&item).map_err(|e| ApiError::internal(format!("stored object: {e}")))?);
    }
    Ok(out)
}

/// What creating one object of `plural` in `group` counts.
fn object_usage(group: &str, plural: &str, obj: &Value) -> BTreeMap<String, i128> {
    let mut u =
        if group.is_empty() && plural == "pods" { skiff_api::quantity::pod_usage(obj) } else { BTreeMap::new() };
    if group.is_empty()
        && matches!(
            plural,
            "services"
                | "configmaps"
                | "secrets"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        )
    {
        u.insert(plural.to_string(), 1000);
    }
    let count = if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") };
    u.insert(count, 1000);
    u
}

/// (resource, requested, used, limited) of a quota that a create would exceed.
type Over = (String, i128, i128, i128);

/// Upstream's message: `exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.
fn exceeded(plural: &str, name: &str, quota: &str, over: &[Over]) -> ApiError {
    let part = |f: fn(&Over) -> String| over.iter().map(f).collect::<Vec<_>>().join(",");
    ApiError::forbidden(format!(
        "{plural} {name:?} is forbidden: exceeded quota: {quota}, requested: {}, used: {}, limited: {}",
        part(|o| format!("{}={}", o.0, format_milli(o.1))),
        part(|o| format!("{}={}", o.0, format_milli(o.2))),
        part(|o| format!("{}={}", o.0, format_milli(o.3))),
    ))
}

/// `ResourceQuota` for an object being created (after defaulting).
pub(crate) async fn resource_quota(ctx: &Ctx<'_>, obj: &Value, dry_run: bool) -> ApiResult<()> {
    let Some(ns) = ctx.namespace.filter(|_| ctx.info().namespaced) else { return Ok(()) };
    let info = ctx.info();
    let quotas = list_async(ctx, "resourcequotas", ns).await?;
    if quotas.is_empty() {
        return Ok(());
    }
    let usage = object_usage(info.group, info.plural, obj);
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut raise: Vec<(String, BTreeMap<String, i128>)> = Vec::new();
    for q in &quotas {
        let qname = q.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let hard = q.pointer("/spec/hard").and_then(Value::as_object).cloned().unwrap_or_default();
        let used = q.pointer("/status/used").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut affected = BTreeMap::new();
        let mut missing = Vec::new();
        for (res, limit) in &hard {
            let Some(delta) = usage.get(res) else { continue };
            let compute = res != "pods" && !res.starts_with("count/");
            if info.group.is_empty() && info.plural == "pods" && compute && *delta == 0 && limit.as_str() != Some("0") {
                missing.push(res.clone());
                continue;
            }
            affected.insert(res.clone(), *delta);
        }
        if !missing.is_empty() {
            return Err(ApiError::forbidden(format!(
                "{} {name:?} is forbidden: failed quota: {qname}: must specify {}",
                info.plural,
                missing.join(",")
            )));
        }
        let mut over: Vec<Over> = Vec::new();
        for (res, delta) in &affected {
            let limit = hard.get(res).and_then(Value::as_str).and_then(milli_value).unwrap_or(0);
            let current = used.get(res).and_then(Value::as_str).and_then(milli_value).unwrap_or(0);
            if current + delta > limit {
                over.push((res.clone(), *delta, current, limit));
            }
        }
        if !over.is_empty() {
            return Err(exceeded(info.plural, &name, &qname, &over));
        }
        if !affected.is_empty() {
            raise.push((qname, affected));
        }
    }
    if dry_run {
        return Ok(());
    }
    let Some(res) = ctx.server.resources().find("", "v1", "resourcequotas") else { return Ok(()) };
    let qctx = Ctx { server: ctx.server, res, namespace: Some(ns) };
    let opts = WriteOptions { field_manager: "resourcequota-admission".into(), ..WriteOptions::default() };
    for (qname, affected) in raise {
        let plural = info.plural.to_string();
        let oname = name.clone();
        let qname2 = qname.clone();
        registry::guaranteed_update(&qctx, &qname, UpdateTarget::Status, &opts, &move |q: &Value| {
            let mut q = registry::editable(q);
            // The quota as stored now (the check above read the cache, which may lag).
            let hard = q.pointer("/spec/hard").and_then(Value::as_object).cloned().unwrap_or_default();
            let used_now = |res: &str| {
                q.pointer(&format!("/status/used/{}", res.replace('/', "~1")))
                    .and_then(Value::as_str)
                    .and_then(milli_value)
                    .unwrap_or(0)
            };
            let over: Vec<Over> = affected
                .iter()
                .map(|(res, delta)| {
                    let limit = hard.get(res).and_then(Value::as_str).and_then(milli_value).unwrap_or(0);
                    (res.clone(), *delta, used_now(res), limit)
                })
                .filter(|(_, delta, current, limit)| current + delta > *limit)
                .collect();
            if !over.is_empty() {
                return Err(exceeded(&plural, &oname, &qname2, &over));
            }
            let updates: Vec<(String, i128)> =
                affected.iter().map(|(res, delta)| (res.clone(), used_now(res) + delta)).collect();
            if !q["status"]["used"].is_object() {
                q["status"]["used"] = json!({});
            }
            for (res, v) in updates {
                q["status"]["used"][&res] = json!(format_milli(v));
            }
            Ok(q)
        })
        .await?;
    }
    Ok(())
}
