//! rbac.authorization.k8s.io/v1 strategies driven through the whole admission pipeline.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::json;

use crate::strategy::test_util::{create, errors, has, ok, update};

#[test]
fn role_rules() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "system:reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    ok(create::<Role>(role));
    let bad = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "a/b", "namespace": "default"},
        "rules": [{"resources": ["pods"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
    let errs = errors(create::<Role>(bad));
    has(&errs, "rules[0].verbs: Required value: verbs must contain at least one value");
    has(&errs, "rules[0].apiGroups: Required value: resource rules must supply at least one api group");
    has(
        &errs,
        "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
    );
    has(&errs, "metadata.name: Invalid value: \"a/b\": may not contain '/'");
    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "health"},
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
    ok(create::<ClusterRole>(cr));
}

#[test]
fn bindings() {
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]});
    let out = ok(create::<RoleBinding>(rb));
    assert_eq!(out["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(out["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(out["subjects"][1].get("apiGroup").is_none());
    let mut changed = out.clone();
    changed["roleRef"]["name"] = json!("writer");
    let errs = errors(update::<RoleBinding>(changed, &out));
    assert_eq!(
        errs,
        [
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"writer\"}: cannot change roleRef"
        ]
    );
    let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r"}]});
    let errs = errors(create::<ClusterRoleBinding>(crb));
    has(&errs, "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"");
    has(&errs, "subjects[0].namespace: Required value");
    has(
        &errs,
        "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
    );
}
