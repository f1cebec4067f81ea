//! Identity and access reviews (`kubectl auth whoami`, `kubectl auth can-i [--list]`): POSTed
//! objects answered by the authenticator and the authorizer, never stored.

use serde_json::{Value, json};
use skiff_api::{FieldError, Path, ResourceInfo};

use crate::ApiServer;
use crate::auth::{Attributes, UserInfo};
use crate::status::{ApiError, ApiResult};

/// Answer a review request; `body` is the decoded request object.
pub(crate) fn answer(server: &ApiServer, user: &UserInfo, info: &ResourceInfo, mut body: Value) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    body["apiVersion"] = json!(info.api_version());
    body["kind"] = json!(info.kind);
    let status = match (info.group, info.plural) {
        ("authentication.k8s.io", "selfsubjectreviews") => json!({"userInfo": user_json(user)}),
        ("authorization.k8s.io", "selfsubjectaccessreviews") => access(server, info, user, &body)?,
        ("authorization.k8s.io", "subjectaccessreviews") => {
            let subject = subject_of(info, &body)?;
            access(server, info, &subject, &body)?
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            let ns = body.pointer("/spec/namespace").and_then(Value::as_str).unwrap_or_default();
            rules(server, user, ns)
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    body["status"] = status;
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    Ok(body)
}

fn user_json(user: &UserInfo) -> Value {
    let mut u = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        u["uid"] = json!(user.uid);
    }
    u
}

/// The user a SubjectAccessReview asks about.
fn subject_of(info: &ResourceInfo, body: &Value) -> ApiResult<UserInfo> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let name = spec.get("user").and_then(Value::as_str).unwrap_or_default().to_string();
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    if name.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid(
            info,
            "",
            &[FieldError::invalid(
                &Path::new("spec").child("user"),
                "",
                "at least one of user or group must be specified",
            )],
        ));
    }
    Ok(UserInfo { name, uid: spec.get("uid").and_then(Value::as_str).unwrap_or_default().to_string(), groups })
}

fn access(server: &ApiServer, info: &ResourceInfo, user: &UserInfo, body: &Value) -> ApiResult<Value> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let ra = spec.get("resourceAttributes").filter(|v| v.is_object());
    let nra = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let s =
        |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
    let allowed = match (ra, nra) {
        (Some(_), None) => {
            let (verb, group, resource) = (s(ra, "verb"), s(ra, "group"), s(ra, "resource"));
            let (sub, ns, name) = (s(ra, "subresource"), s(ra, "namespace"), s(ra, "name"));
            let attrs = Attributes {
                verb: &verb,
                group: &group,
                resource: &resource,
                subresource: Some(sub.as_str()).filter(|x| !x.is_empty()),
                namespace: Some(ns.as_str()).filter(|x| !x.is_empty()),
                name: Some(name.as_str()).filter(|x| !x.is_empty()),
                path: None,
            };
            server.authz.allowed(user, &attrs)
        }
        (None, Some(_)) => {
            let (verb, path) = (s(nra, "verb"), s(nra, "path"));
            let attrs = Attributes {
                verb: &verb,
                group: "",
                resource: "",
                subresource: None,
                namespace: None,
                name: None,
                path: Some(&path),
            };
            server.authz.allowed(user, &attrs)
        }
        _ => {
            return Err(ApiError::invalid(
                info,
                "",
                &[FieldError::invalid(
                    &Path::new("spec").child("resourceAttributes"),
                    "null",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
    };
    Ok(json!({"allowed": allowed}))
}

fn rules(server: &ApiServer, user: &UserInfo, namespace: &str) -> Value {
    let r = server.authz.rules(user, namespace);
    json!({
        "resourceRules": r.resource_rules,
        "nonResourceRules": r.non_resource_rules,
        "incomplete": r.incomplete,
    })
}
