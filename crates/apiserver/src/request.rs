//! Turning a URL into what is being asked for (upstream's `RequestInfoFactory`), and the query
//! parameters of resource requests.

use std::collections::HashMap;

use http::Method;

use crate::status::{ApiError, ApiResult};

/// The non-resource endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NonResource {
    Version,
    Healthz,
    Livez,
    Readyz,
    Metrics,
    /// `/cacerts`: the cluster CA (PEM), public like k3s's, for agents to compare with the
    /// hash in their join token before trusting anything the server says.
    CaCerts,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    GroupVersion(String, String),
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/<api/v1 | apis/g/v>`
    OpenApiDoc(String),
    /// `/openapi/v2`: the built-in definitions (kubectl validates `kind: List` items with it)
    OpenApiV2,
}

/// A request for a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The Kubernetes verb: get list watch create update patch delete deletecollection.
    pub verb: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    NonResource(NonResource),
    Resource(ResourceRequest),
    NotFound,
}

/// Classify a request by method and path.
pub(crate) fn classify(method: &Method, path: &str, watch_param: bool) -> Target {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => return Target::NonResource(NonResource::Version),
        ["healthz", ..] => return Target::NonResource(NonResource::Healthz),
        ["livez", ..] => return Target::NonResource(NonResource::Livez),
        ["readyz", ..] => return Target::NonResource(NonResource::Readyz),
        ["metrics"] => return Target::NonResource(NonResource::Metrics),
        ["cacerts"] => return Target::NonResource(NonResource::CaCerts),
        ["api"] => return Target::NonResource(NonResource::CoreVersions),
        ["apis"] => return Target::NonResource(NonResource::Groups),
        ["apis", g] => return Target::NonResource(NonResource::Group(g.to_string())),
        ["api", v] => return Target::NonResource(NonResource::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => return Target::NonResource(NonResource::GroupVersion(g.to_string(), v.to_string())),
        ["openapi", "v3"] => return Target::NonResource(NonResource::OpenApiRoot),
        ["openapi", "v3", rest @ ..] => return Target::NonResource(NonResource::OpenApiDoc(rest.join("/"))),
        ["openapi", "v2"] => return Target::NonResource(NonResource::OpenApiV2),
        _ => {}
    }
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return Target::NotFound,
    };
    // Legacy `/watch/` prefix: `/api/v1/watch/namespaces/x/pods`.
    let (rest, legacy_watch) = match rest {
        ["watch", r @ ..] => (r, true),
        r => (r, false),
    };
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        // `/namespaces/<ns>` alone (or with a subresource) addresses the Namespace object itself.
        ["namespaces", _] => (None, rest),
        ["namespaces", _, sub] if group.is_empty() && (*sub == "status" || *sub == "finalize") => (None, rest),
        ["namespaces", ns, r @ ..] if !r.is_empty() => (Some(ns.to_string()), r),
        r => (None, r),
    };
    let (resource, name, subresource) = match rest {
        [r] => (r.to_string(), None, None),
        [r, n] => (r.to_string(), Some(n.to_string()), None),
        [r, n, s] => (r.to_string(), Some(n.to_string()), Some(s.to_string())),
        // pods/<name>/proxy/<path...> and similar: keep the subresource, drop the rest.
        [r, n, s, ..] if *s == "proxy" => (r.to_string(), Some(n.to_string()), Some(s.to_string())),
        _ => return Target::NotFound,
    };
    let watch = watch_param || legacy_watch;
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    };
    Target::Resource(ResourceRequest { group, version, resource, namespace, name, subresource, verb })
}

/// Parsed query string (percent-decoded).
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(q) = q {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                map.insert(percent_decode(k), percent_decode(v));
            }
        }
        Query(map)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A non-empty value.
    pub(crate) fn nonempty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    pub(crate) fn bool(&self, k: &str) -> ApiResult<bool> {
        match self.get(k) {
            None | Some("") | Some("false") | Some("0") | Some("False") => Ok(false),
            Some("true") | Some("1") | Some("True") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!("invalid boolean value for {k}: {other:?}"))),
        }
    }

    pub(crate) fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.nonempty(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}: must be an integer"))),
        }
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub(crate) fn dry_run(&self) -> ApiResult<bool> {
        let vals: Vec<&str> = self.0.get("dryRun").map(|v| v.split(',').collect()).unwrap_or_default();
        for v in &vals {
            if *v != "All" && !v.is_empty() {
                return Err(ApiError::bad_request(format!("Invalid dryRun: {v:?}: supported values: \"All\"")));
            }
        }
        Ok(vals.contains(&"All"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str) -> ResourceRequest {
        match classify(&method, path, false) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = res(Method::GET, "/api/v1/namespaces/demo/pods");
        assert_eq!((r.namespace.as_deref(), r.resource.as_str(), r.verb), (Some("demo"), "pods", "list"));
        let r = res(Method::GET, "/api/v1/namespaces/demo/pods/app/status");
        assert_eq!((r.name.as_deref(), r.subresource.as_deref(), r.verb), (Some("app"), Some("status"), "get"));
        let r = res(Method::DELETE, "/api/v1/namespaces/demo");
        assert_eq!(
            (r.namespace, r.resource.as_str(), r.name.as_deref(), r.verb),
            (None, "namespaces", Some("demo"), "delete")
        );
        let r = res(Method::PUT, "/api/v1/namespaces/demo/finalize");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref()),
            ("namespaces", Some("demo"), Some("finalize"))
        );
        let r = res(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!((r.group.as_str(), r.namespace, r.verb), ("apps", None, "list"));
        let r = res(Method::GET, "/api/v1/watch/namespaces/demo/pods");
        assert_eq!((r.verb, r.namespace.as_deref()), ("watch", Some("demo")));
        let r = res(Method::DELETE, "/api/v1/namespaces/demo/configmaps");
        assert_eq!(r.verb, "deletecollection");
        assert!(matches!(classify(&Method::GET, "/apis/apps", false), Target::NonResource(NonResource::Group(_))));
        assert!(matches!(classify(&Method::GET, "/nope", false), Target::NotFound));
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true&limit=5&dryRun=All"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.bool("watch").unwrap());
        assert_eq!(q.int("limit").unwrap(), Some(5));
        assert!(q.dry_run().unwrap());
        assert!(Query::parse(Some("dryRun=Some")).dry_run().is_err());
        assert!(Query::parse(Some("limit=x")).int("limit").is_err());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
