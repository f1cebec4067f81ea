//! `pods/<name>/eviction` (policy/v1 `Eviction`): delete a pod unless that would violate its
//! PodDisruptionBudget, as upstream's eviction REST (`pkg/registry/core/pod/storage/eviction.go`)
//! does. This is what `kubectl drain` calls.
//!
//! - a pod that is terminal (Succeeded/Failed) or already being deleted is deleted without
//!   consulting any budget;
//! - more than one matching budget is an error (500, upstream's message);
//! - a budget the disruption controller has not processed yet (`observedGeneration` behind),
//!   or with `disruptionsAllowed` 0, refuses with 429 `TooManyRequests` and a `DisruptionBudget`
//!   cause; kubectl drain retries on 429;
//! - a pod that is not Ready may go while the budget is met (`IfHealthyBudget`, the default
//!   unhealthy-pod policy) without using up an allowed disruption;
//! - otherwise the budget's `disruptionsAllowed` is decremented and the pod recorded in
//!   `disruptedPods` in one compare-and-swap write of the budget's status, and then the pod is
//!   deleted with the eviction's delete options.

use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::body;
use crate::registry::{self, Ctx, DeleteOptions, ListOptions, UpdateTarget, WriteOptions};
use crate::status::{ApiError, ApiResult};

const TOO_MANY_REQUESTS: StatusCode = StatusCode::TOO_MANY_REQUESTS;

fn pdb_ctx<'a>(server: &'a Arc<ApiServer>, ns: Option<&'a str>) -> ApiResult<Ctx<'a>> {
    let res = server
        .resources()
        .find("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not registered"))?;
    Ok(Ctx { server, res, namespace: ns })
}

/// A `metav1.LabelSelector` (as JSON) against a pod's labels; `{}` matches everything and a
/// selector with an unknown operator nothing.
fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let labels: std::collections::BTreeMap<String, String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    skiff_api::selector::LabelSelector::from_json(selector).is_ok_and(|s| s.matches(&labels))
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn too_many(message: String) -> ApiError {
    let mut e = ApiError::new(
        TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": message}]}));
    e
}

/// Serve `POST pods/<name>/eviction`.
pub(crate) async fn evict(ctx: &Ctx<'_>, name: &str, eviction: Value) -> ApiResult<Response<Body>> {
    let ename = eviction.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(name);
    if ename != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    let delete_opts = {
        let q = crate::request::Query::parse(None);
        DeleteOptions::from_parts(eviction.get("deleteOptions").filter(|v| !v.is_null()), &q)?
    };
    let dry_run = eviction
        .pointer("/deleteOptions/dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    let pod: Value = serde_json::from_slice(&registry::get(ctx, name, None).await?)
        .map_err(|e| ApiError::internal(format!("stored pod: {e}")))?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
    if !(phase == "Succeeded" || phase == "Failed" || deleting) {
        check_budget(ctx, name, &pod, dry_run).await?;
    }
    if !dry_run {
        match registry::delete(ctx, name, &delete_opts).await {
            Ok(_) => {}
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(body::json(StatusCode::CREATED, &crate::status::success_status(json!({}))))
}

async fn check_budget(ctx: &Ctx<'_>, name: &str, pod: &Value, dry_run: bool) -> ApiResult<()> {
    let pctx = pdb_ctx(ctx.server, ctx.namespace)?;
    let page = registry::list(&pctx, &ListOptions::default()).await?;
    let labels = pod.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
    let mut budgets = Vec::new();
    for item in page.items {
        let pdb: Value =
            serde_json::from_slice(&item).map_err(|e| ApiError::internal(format!("stored budget: {e}")))?;
        let selector = pdb.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
        // policy/v1: a null selector selects nothing, an empty one everything.
        if !selector.is_null() && selector_matches(&selector, &labels) {
            budgets.push(pdb);
        }
    }
    let pdb = match budgets.len() {
        0 => return Ok(()),
        1 => budgets.remove(0),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let pdb_name = pdb.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    if int("/status/observedGeneration") < int("/metadata/generation") {
        return Err(too_many(format!("The disruption budget {pdb_name} is still being processed by the server.")));
    }
    let (current, desired) = (int("/status/currentHealthy"), int("/status/desiredHealthy"));
    // Unhealthy pods may go while the budget is met, without using a disruption.
    let policy = pdb.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str).unwrap_or("IfHealthyBudget");
    if !pod_ready(pod) && (policy == "AlwaysAllow" || current >= desired) {
        return Ok(());
    }
    if int("/status/disruptionsAllowed") <= 0 {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    if dry_run {
        return Ok(());
    }
    let pod_name = name.to_string();
    let now = registry::now_rfc3339();
    let name_for_err = pdb_name.clone();
    let opts = WriteOptions { field_manager: "skiff-apiserver-eviction".into(), ..WriteOptions::default() };
    registry::guaranteed_update(&pctx, &pdb_name, UpdateTarget::Status, &opts, &move |b: &Value| {
        let mut b = registry::editable(b);
        let allowed = b.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
        if allowed <= 0 {
            return Err(too_many(format!("The disruption budget {name_for_err} does not allow more disruptions now")));
        }
        b["status"]["disruptionsAllowed"] = json!(allowed - 1);
        if !b["status"]["disruptedPods"].is_object() {
            b["status"]["disruptedPods"] = json!({});
        }
        b["status"]["disruptedPods"][&pod_name] = json!(now);
        Ok(b)
    })
    .await?;
    Ok(())
}
