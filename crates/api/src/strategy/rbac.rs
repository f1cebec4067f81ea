//! Strategies for rbac.authorization.k8s.io/v1 kinds: names are path segments, rules need
//! verbs and resources, bindings need a valid `roleRef` (which never changes) and subjects.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::{Raw, go_strings};
use crate::strategy::{KindStrategy, NameRule};
use crate::validation;

#[cfg(test)]
mod tests;

const GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rule(rule: &PolicyRule, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(&path.child("verbs"), "verbs must contain at least one value"));
    }
    let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
    let empty = |v: &Option<Vec<String>>| v.as_ref().is_none_or(Vec::is_empty);
    if !urls.is_empty() {
        let shown = || Raw(go_strings(Some(urls)));
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                shown(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !empty(&rule.api_groups) || !empty(&rule.resources) || !empty(&rule.resource_names) {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                shown(),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if empty(&rule.api_groups) {
        errs.push(FieldError::required(&path.child("apiGroups"), "resource rules must supply at least one api group"));
    }
    if empty(&rule.resources) {
        errs.push(FieldError::required(&path.child("resources"), "resource rules must supply at least one resource"));
    }
    errs
}

fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> ErrorList {
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, r)| validate_rule(r, namespaced, &Path::new("rules").index(i)))
        .collect()
}

/// `SetDefaults_Subject`: users and groups belong to the RBAC group.
fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for s in subjects.iter_mut().flatten() {
        if (s.kind == "User" || s.kind == "Group") && s.api_group.as_deref().is_none_or(str::is_empty) {
            s.api_group = Some(GROUP.to_string());
        }
    }
}

fn default_role_ref(r: &mut RoleRef) {
    if r.api_group.is_empty() {
        r.api_group = GROUP.to_string();
    }
}

fn validate_role_ref(r: &RoleRef, kinds: &[&str]) -> ErrorList {
    let mut errs = ErrorList::new();
    let p = Path::new("roleRef");
    if r.api_group != GROUP {
        errs.push(FieldError::not_supported(&p.child("apiGroup"), &r.api_group, &[GROUP]));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(FieldError::not_supported(&p.child("kind"), &r.kind, kinds));
    }
    if r.name.is_empty() {
        errs.push(FieldError::required(&p.child("name"), ""));
    } else {
        errs.extend(validation::invalid_each(&p.child("name"), &r.name, validation::path_segment_name(&r.name)));
    }
    errs
}

fn validate_subjects(subjects: Option<&Vec<Subject>>, namespaced: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, s) in subjects.into_iter().flatten().enumerate() {
        let p = Path::new("subjects").index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        let group = s.api_group.clone().unwrap_or_default();
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    errs.extend(validation::invalid_each(
                        &p.child("name"),
                        &s.name,
                        validation::dns1123_subdomain(&s.name),
                    ));
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(&p.child("apiGroup"), &group, &[""]));
                }
                if !namespaced && s.namespace.as_deref().is_none_or(str::is_empty) {
                    errs.push(FieldError::required(&p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    errs.push(FieldError::not_supported(&p.child("apiGroup"), &group, &[GROUP]));
                }
            }
            other => {
                errs.push(FieldError::not_supported(&p.child("kind"), other, &["ServiceAccount", "User", "Group"]))
            }
        }
    }
    errs
}

fn role_ref_change(new: &RoleRef, old: &RoleRef) -> ErrorList {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        &Path::new("roleRef"),
        Raw(format!("rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}", new.api_group, new.kind, new.name)),
        "cannot change roleRef",
    )]
}

impl KindStrategy for Role {
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self) -> ErrorList {
        validate_rules(self.rules.as_ref(), true)
    }
}

impl KindStrategy for ClusterRole {
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_rules(self.rules.as_ref(), false);
        if let Some(agg) = &self.aggregation_rule {
            let selectors = agg.cluster_role_selectors.as_deref().unwrap_or_default();
            let p = Path::new("aggregationRule").child("clusterRoleSelectors");
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, s) in selectors.iter().enumerate() {
                errs.extend(crate::strategy::common::validate_label_selector(s, &p.index(i)));
            }
        }
        errs
    }
}

impl KindStrategy for RoleBinding {
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn default(&mut self) {
        default_role_ref(&mut self.role_ref);
        default_subjects(&mut self.subjects);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_role_ref(&self.role_ref, &["Role", "ClusterRole"]);
        errs.extend(validate_subjects(self.subjects.as_ref(), true));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        role_ref_change(&self.role_ref, &old.role_ref)
    }
}

impl KindStrategy for ClusterRoleBinding {
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn default(&mut self) {
        default_role_ref(&mut self.role_ref);
        default_subjects(&mut self.subjects);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_role_ref(&self.role_ref, &["ClusterRole"]);
        errs.extend(validate_subjects(self.subjects.as_ref(), false));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        role_ref_change(&self.role_ref, &old.role_ref)
    }
}
