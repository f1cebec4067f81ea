//! Authentication (who is calling) and authorization (may they), the first filters of every
//! request (see `docs/data-path.md`, "TLS + authn → authz").
//!
//! Authentication: a client certificate verified against the cluster CA during the TLS
//! handshake (CN = user, O = groups), or a bearer token (the cluster `--token`, or a line of the
//! token file). Authorization is a seam ([`Authorizer`]): today members of `system:masters` may do
//! everything; RBAC plugs in later.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// An authenticated user (`system:authenticated` is added).
    pub fn new(name: &str, groups: &[&str]) -> Self {
        Self::authenticated(name.to_string(), String::new(), groups.iter().map(|g| g.to_string()).collect())
    }

    fn authenticated(name: String, uid: String, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".to_string());
        }
        UserInfo { name, uid, groups }
    }
}

/// The verified client certificate of a TLS connection, attached to each request by the
/// connection handler. The identity in it is parsed once per connection, not per request.
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    der: Arc<Vec<u8>>,
    user: Arc<OnceLock<Option<UserInfo>>>,
}

impl PeerCertificate {
    pub fn new(der: Vec<u8>) -> Self {
        PeerCertificate { der: Arc::new(der), user: Arc::default() }
    }

    /// CN = user, O = groups.
    fn user(&self) -> Option<UserInfo> {
        self.user
            .get_or_init(|| {
                let (_, parsed) = x509_parser::parse_x509_certificate(&self.der).ok()?;
                let subject = parsed.subject();
                let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
                let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
                Some(UserInfo::authenticated(name, String::new(), groups))
            })
            .clone()
    }
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The token file could not be read or has a malformed line.
    #[error("token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
}

/// Maps credentials to users.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    tokens: HashMap<String, UserInfo>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept `token` as a bearer token for `user` in `groups`.
    pub fn add_token(&mut self, token: &str, user: &str, groups: &[&str]) {
        self.tokens.insert(
            token.to_string(),
            UserInfo::authenticated(user.to_string(), String::new(), groups.iter().map(|g| g.to_string()).collect()),
        );
    }

    /// Load a static token file in upstream's `--token-auth-file` CSV format:
    /// `token,user,uid[,"group1,group2"]`; blank lines and `#` comments are skipped.
    pub fn load_token_file(&mut self, path: &Path) -> Result<(), AuthnError> {
        let err = |reason: String| AuthnError::TokenFile { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(err(format!("line {}: expected token,user,uid[,\"groups\"]", n + 1)));
            }
            let groups: Vec<String> = fields
                .get(3)
                .map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect())
                .unwrap_or_default();
            self.tokens
                .insert(fields[0].clone(), UserInfo::authenticated(fields[1].clone(), fields[2].clone(), groups));
        }
        Ok(())
    }

    /// Authenticate from the `Authorization` header and the TLS peer certificate.
    /// `None` means anonymous.
    pub fn authenticate(&self, authorization: Option<&str>, peer: Option<&PeerCertificate>) -> Option<UserInfo> {
        if let Some(h) = authorization {
            let token = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim);
            // A presented but unknown token is a failed authentication, not a fallback to the
            // certificate: upstream rejects the request.
            return token.and_then(|t| self.tokens.get(t).cloned());
        }
        peer?.user()
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// What a request wants to do, for authorization (upstream's `authorizer.Attributes`).
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    /// Set for non-resource requests (`/metrics`, `/api`).
    pub path: Option<&'a str>,
}

/// What a user may do in a namespace, for `kubectl auth can-i --list`
/// (SelfSubjectRulesReview), as JSON rules in upstream's shape.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    pub resource_rules: Vec<serde_json::Value>,
    pub non_resource_rules: Vec<serde_json::Value>,
    /// True when the authorizer cannot list everything it would allow.
    pub incomplete: bool,
}

/// The authorization seam: RBAC implements it later.
pub trait Authorizer: Send + Sync {
    fn allowed(&self, user: &UserInfo, attrs: &Attributes<'_>) -> bool;

    /// The rules `user` has in `namespace`.
    fn rules(&self, user: &UserInfo, namespace: &str) -> Rules;
}

/// Members of `system:masters` may do anything; everyone may read discovery and health.
#[derive(Debug, Default)]
pub struct MastersAuthorizer;

impl Authorizer for MastersAuthorizer {
    fn allowed(&self, user: &UserInfo, attrs: &Attributes<'_>) -> bool {
        if user.groups.iter().any(|g| g == "system:masters") {
            return true;
        }
        // Upstream's `system:basic-user` role: everyone may ask about themselves.
        if attrs.verb == "create"
            && matches!(
                (attrs.group, attrs.resource),
                ("authorization.k8s.io", "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
                    | ("authentication.k8s.io", "selfsubjectreviews")
            )
        {
            return true;
        }
        // Upstream's `system:discovery` / `system:public-info-viewer` roles let every
        // authenticated user read these.
        matches!(
            attrs.path,
            Some(p) if p == "/api" || p == "/apis" || p.starts_with("/api/") || p.starts_with("/apis/")
                || p.starts_with("/openapi/") || p == "/version" || p.starts_with("/healthz")
                || p.starts_with("/livez") || p.starts_with("/readyz")
        )
    }

    fn rules(&self, user: &UserInfo, _namespace: &str) -> Rules {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Rules {
                resource_rules: vec![serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
                non_resource_rules: vec![serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
                incomplete: false,
            };
        }
        Rules {
            resource_rules: vec![serde_json::json!({
                "verbs": ["create"],
                "apiGroups": ["authorization.k8s.io", "authentication.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"],
            })],
            non_resource_rules: vec![serde_json::json!({
                "verbs": ["get"],
                "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
            })],
            incomplete: false,
        }
    }
}

/// What a node may do: upstream's `system:node` ClusterRole, with the Node authorizer's rule
/// that a node writes only its own Node and Lease. (Upstream's Node authorizer also limits
/// which Secrets and ConfigMaps a node reads to those its pods use; here every node reads
/// them all: see docs/decisions/0009-joining-nodes.md.)
const NODE_RULES: &[(&str, &str, &[&str])] = &[
    ("", "nodes", &["get", "list", "watch", "create", "update", "patch", "delete"]),
    ("", "nodes/status", &["get", "update", "patch"]),
    ("", "pods", &["get", "list", "watch", "create", "delete"]),
    ("", "pods/status", &["get", "update", "patch"]),
    ("", "pods/eviction", &["create"]),
    ("", "configmaps", &["get", "list", "watch"]),
    ("", "secrets", &["get", "list", "watch"]),
    ("", "services", &["get", "list", "watch"]),
    // The node's cluster DNS answers by namespace (CoreDNS's `system:coredns` role has it).
    ("", "namespaces", &["get", "list", "watch"]),
    ("", "endpoints", &["get", "list", "watch"]),
    ("", "persistentvolumes", &["get", "list", "watch"]),
    ("", "persistentvolumeclaims", &["get", "list", "watch"]),
    ("", "persistentvolumeclaims/status", &["get", "update", "patch"]),
    ("", "events", &["create", "update", "patch"]),
    ("", "serviceaccounts/token", &["create"]),
    ("events.k8s.io", "events", &["create", "update", "patch"]),
    ("coordination.k8s.io", "leases", &["get", "list", "watch", "create", "update", "patch", "delete"]),
    ("certificates.k8s.io", "certificatesigningrequests", &["get", "list", "watch", "create"]),
    ("discovery.k8s.io", "endpointslices", &["get", "list", "watch"]),
    // The node's service proxy enforces NetworkPolicy (what a CNI's agent reads upstream).
    ("networking.k8s.io", "networkpolicies", &["get", "list", "watch"]),
    ("storage.k8s.io", "volumeattachments", &["get", "list", "watch"]),
    ("storage.k8s.io", "csidrivers", &["get", "list", "watch"]),
    ("storage.k8s.io", "csinodes", &["get", "list", "watch", "create", "update", "patch", "delete"]),
    ("node.k8s.io", "runtimeclasses", &["get", "list", "watch"]),
    ("authentication.k8s.io", "tokenreviews", &["create"]),
    ("authorization.k8s.io", "subjectaccessreviews", &["create"]),
];

/// What a joining agent's bootstrap token may do: upstream's `system:node-bootstrapper` role.
const BOOTSTRAP_RULES: &[(&str, &str, &[&str])] =
    &[("certificates.k8s.io", "certificatesigningrequests", &["get", "list", "watch", "create"])];

/// The group of joining agents' bootstrap identities (upstream's name).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

fn in_group(user: &UserInfo, group: &str) -> bool {
    user.groups.iter().any(|g| g == group)
}

fn table_allows(table: &[(&str, &str, &[&str])], a: &Attributes<'_>) -> bool {
    if a.path.is_some() {
        return false;
    }
    let resource = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    table.iter().any(|(g, r, verbs)| *g == a.group && *r == resource && verbs.contains(&a.verb))
}

fn table_rules(table: &[(&str, &str, &[&str])]) -> Vec<serde_json::Value> {
    table.iter().map(|(g, r, verbs)| serde_json::json!({"verbs": verbs, "apiGroups": [g], "resources": [r]})).collect()
}

/// A node writes only its own Node (and its status) and its own Lease.
fn node_owns(node: &str, a: &Attributes<'_>) -> bool {
    let writes = matches!(a.verb, "update" | "patch" | "delete");
    match (a.group, a.resource) {
        ("", "nodes") if writes || a.subresource.is_some() => a.name == Some(node),
        ("coordination.k8s.io", "leases") if writes => a.namespace == Some("kube-node-lease") && a.name == Some(node),
        _ => true,
    }
}

/// The authorizer `skiff server` runs until RBAC lands: members of `system:masters` may do
/// anything; nodes (`system:node:<name>` in `system:nodes`) what upstream's Node authorizer
/// and `system:node` role let them; joining agents (`system:bootstrappers`) ask for their
/// certificate; everyone reads discovery and health.
#[derive(Debug, Default)]
pub struct DefaultAuthorizer;

impl Authorizer for DefaultAuthorizer {
    fn allowed(&self, user: &UserInfo, attrs: &Attributes<'_>) -> bool {
        if MastersAuthorizer.allowed(user, attrs) {
            return true;
        }
        if in_group(user, "system:nodes")
            && let Some(node) = user.name.strip_prefix("system:node:")
            && table_allows(NODE_RULES, attrs)
            && node_owns(node, attrs)
        {
            return true;
        }
        in_group(user, BOOTSTRAPPERS_GROUP) && table_allows(BOOTSTRAP_RULES, attrs)
    }

    fn rules(&self, user: &UserInfo, namespace: &str) -> Rules {
        let mut rules = MastersAuthorizer.rules(user, namespace);
        if in_group(user, "system:masters") {
            return rules;
        }
        if in_group(user, "system:nodes") && user.name.starts_with("system:node:") {
            rules.resource_rules.extend(table_rules(NODE_RULES));
        }
        if in_group(user, BOOTSTRAPPERS_GROUP) {
            rules.resource_rules.extend(table_rules(BOOTSTRAP_RULES));
        }
        rules
    }
}

/// Upstream's Forbidden message for a denied request.
pub fn forbidden_message(user: &UserInfo, a: &Attributes<'_>) -> String {
    if let Some(path) = a.path {
        return format!("forbidden: User {:?} cannot {} path {path:?}", user.name, a.verb);
    }
    let qualified = if a.group.is_empty() { a.resource.to_string() } else { format!("{}.{}", a.resource, a.group) };
    let resource = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let subject = match a.name {
        Some(n) => format!("{qualified} {n:?}"),
        None => qualified,
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, a.verb, a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens.csv");
        std::fs::write(&f, "# comment\nabc123,alice,1001,\"dev,ops\"\nxyz,bob,1002\n").unwrap();
        let mut a = Authenticator::new();
        a.load_token_file(&f).unwrap();
        a.add_token("cluster-secret", "skiff:token", &["system:masters"]);
        let alice = a.authenticate(Some("Bearer abc123"), None).unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert!(a.authenticate(Some("Bearer nope"), None).is_none());
        assert!(a.authenticate(None, None).is_none());
        std::fs::write(&f, "onlytoken\n").unwrap();
        assert!(Authenticator::new().load_token_file(&f).unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn nodes_write_only_their_own_node_and_lease() {
        let node = UserInfo::new("system:node:a", &["system:nodes"]);
        let base = Attributes {
            verb: "patch",
            group: "",
            resource: "nodes",
            subresource: Some("status"),
            namespace: None,
            name: Some("a"),
            path: None,
        };
        let z = DefaultAuthorizer;
        assert!(z.allowed(&node, &base));
        assert!(!z.allowed(&node, &Attributes { name: Some("b"), ..base.clone() }), "another node's status");
        assert!(z.allowed(&node, &Attributes { verb: "list", subresource: None, name: None, ..base.clone() }));
        let lease = Attributes {
            verb: "update",
            group: "coordination.k8s.io",
            resource: "leases",
            subresource: None,
            namespace: Some("kube-node-lease"),
            name: Some("a"),
            path: None,
        };
        assert!(z.allowed(&node, &lease));
        assert!(!z.allowed(&node, &Attributes { name: Some("b"), ..lease.clone() }));
        let pods = Attributes { verb: "patch", resource: "pods", subresource: Some("status"), ..base.clone() };
        assert!(z.allowed(&node, &Attributes { namespace: Some("default"), name: Some("web"), ..pods.clone() }));
        let deploy = Attributes { verb: "create", group: "apps", resource: "deployments", ..base.clone() };
        assert!(!z.allowed(&node, &deploy), "nodes don't create workloads");
        // The node group without a node name is nobody in particular.
        assert!(!z.allowed(&UserInfo::new("mallory", &["system:nodes"]), &base));
        let boot = UserInfo::new("system:bootstrap:skiff", &[BOOTSTRAPPERS_GROUP]);
        let csr = Attributes {
            verb: "create",
            group: "certificates.k8s.io",
            resource: "certificatesigningrequests",
            subresource: None,
            namespace: None,
            name: None,
            path: None,
        };
        assert!(z.allowed(&boot, &csr));
        assert!(!z.allowed(&boot, &Attributes { verb: "update", subresource: Some("approval"), ..csr.clone() }));
        assert!(!z.allowed(&boot, &base));
        assert!(!z.rules(&boot, "default").resource_rules.is_empty());
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let bob = UserInfo::authenticated("bob".into(), String::new(), vec![]);
        let a = Attributes {
            verb: "list",
            group: "",
            resource: "pods",
            subresource: None,
            namespace: Some("default"),
            name: None,
            path: None,
        };
        assert_eq!(
            forbidden_message(&bob, &a),
            r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        assert!(!MastersAuthorizer.allowed(&bob, &a));
        let admin = UserInfo::authenticated("admin".into(), String::new(), vec!["system:masters".into()]);
        assert!(MastersAuthorizer.allowed(&admin, &a));
        let d =
            Attributes { verb: "get", group: "apps", resource: "deployments", name: Some("web"), namespace: None, ..a };
        assert_eq!(
            forbidden_message(&bob, &d),
            r#"deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments" in API group "apps" at the cluster scope"#
        );
    }
}
