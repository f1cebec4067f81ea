//! Strategies for admissionregistration.k8s.io/v1 kinds: webhook configurations (their many
//! visible defaults and the checks users hit) and validating admission policies and bindings
//! (defaults and required fields; CEL expressions are not compiled here).

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, MutatingWebhookConfiguration, RuleWithOperations, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyStatus, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{default_str, default_to, enum_value, validate_label_selector};
use crate::validation;

/// What every webhook shares, borrowed from either webhook type.
struct WebhookView<'a> {
    name: &'a str,
    client_config: &'a WebhookClientConfig,
    rules: Option<&'a Vec<RuleWithOperations>>,
    failure_policy: Option<&'a str>,
    match_policy: Option<&'a str>,
    side_effects: &'a str,
    timeout: Option<i32>,
    review_versions: &'a [String],
    namespace_selector: Option<&'a LabelSelector>,
    object_selector: Option<&'a LabelSelector>,
}

fn default_rules(rules: &mut Option<Vec<RuleWithOperations>>) {
    for r in rules.iter_mut().flatten() {
        default_str(&mut r.scope, "*");
    }
}

fn default_client_config(c: &mut WebhookClientConfig) {
    if let Some(s) = &mut c.service {
        default_to(&mut s.port, 443);
    }
}

fn validate_webhook(w: &WebhookView<'_>, names: &mut BTreeSet<String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let np = path.child("name");
    let mut name_errs = validation::qualified_name(w.name);
    if name_errs.is_empty() && w.name.split('.').count() < 3 {
        name_errs.push("should be a domain with at least three segments separated by dots".to_string());
    }
    errs.extend(validation::invalid_each(&np, w.name, name_errs));
    if !names.insert(w.name.to_string()) {
        errs.push(FieldError::duplicate(&np, w.name));
    }
    for (i, r) in w.rules.into_iter().flatten().enumerate() {
        let rp = path.child("rules").index(i);
        let empty = |v: &Option<Vec<String>>| v.as_ref().is_none_or(Vec::is_empty);
        if empty(&r.operations) {
            errs.push(FieldError::required(&rp.child("operations"), ""));
        }
        for (j, op) in r.operations.iter().flatten().enumerate() {
            errs.extend(enum_value(
                Some(op),
                &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"],
                true,
                &rp.child("operations").index(j),
            ));
        }
        if empty(&r.api_versions) {
            errs.push(FieldError::required(&rp.child("apiVersions"), ""));
        }
        if empty(&r.resources) {
            errs.push(FieldError::required(&rp.child("resources"), ""));
        }
        errs.extend(enum_value(r.scope.as_deref(), &["*", "Cluster", "Namespaced"], false, &rp.child("scope")));
    }
    errs.extend(enum_value(w.failure_policy, &["Fail", "Ignore"], false, &path.child("failurePolicy")));
    errs.extend(enum_value(w.match_policy, &["Equivalent", "Exact"], false, &path.child("matchPolicy")));
    let sp = path.child("sideEffects");
    match w.side_effects {
        "" => errs.push(FieldError::required(&sp, "must specify one of None, NoneOnDryRun")),
        "None" | "NoneOnDryRun" => {}
        other => errs.push(FieldError::not_supported(&sp, other, &["None", "NoneOnDryRun"])),
    }
    if let Some(t) = w.timeout
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    let vp = path.child("admissionReviewVersions");
    if w.review_versions.is_empty() {
        errs.push(FieldError::required(&vp, "must specify one of v1, v1beta1"));
    } else if !w.review_versions.iter().any(|v| v == "v1" || v == "v1beta1") {
        errs.push(FieldError::invalid(
            &vp,
            crate::strategy::common::Raw(crate::strategy::common::go_strings(Some(w.review_versions))),
            "must include at least one of v1, v1beta1",
        ));
    }
    if let Some(s) = w.namespace_selector {
        errs.extend(validate_label_selector(s, &path.child("namespaceSelector")));
    }
    if let Some(s) = w.object_selector {
        errs.extend(validate_label_selector(s, &path.child("objectSelector")));
    }
    let cp = path.child("clientConfig");
    match (&w.client_config.url, &w.client_config.service) {
        (Some(_), Some(_)) | (None, None) => {
            errs.push(FieldError::required(&cp, "exactly one of url or service is required"));
        }
        (Some(url), None) => {
            if !url.starts_with("https://") {
                errs.push(FieldError::invalid(&cp.child("url"), url, "'https' is the only allowed URL scheme"));
            }
        }
        (None, Some(s)) => {
            let p = cp.child("service");
            if s.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), "service name is required"));
            }
            if s.namespace.is_empty() {
                errs.push(FieldError::required(&p.child("namespace"), "service namespace is required"));
            }
            if let Some(port) = s.port {
                for m in validation::port_num(i64::from(port)) {
                    errs.push(FieldError::invalid(&p.child("port"), port, m));
                }
            }
        }
    }
    errs
}

impl KindStrategy for ValidatingWebhookConfiguration {
    fn default(&mut self) {
        for w in self.webhooks.iter_mut().flatten() {
            default_str(&mut w.failure_policy, "Fail");
            default_str(&mut w.match_policy, "Equivalent");
            default_to(&mut w.namespace_selector, LabelSelector::default());
            default_to(&mut w.object_selector, LabelSelector::default());
            default_to(&mut w.timeout_seconds, 10);
            default_rules(&mut w.rules);
            default_client_config(&mut w.client_config);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut names = BTreeSet::new();
        let mut errs = ErrorList::new();
        for (i, w) in self.webhooks.iter().flatten().enumerate() {
            let view = WebhookView {
                name: &w.name,
                client_config: &w.client_config,
                rules: w.rules.as_ref(),
                failure_policy: w.failure_policy.as_deref(),
                match_policy: w.match_policy.as_deref(),
                side_effects: &w.side_effects,
                timeout: w.timeout_seconds,
                review_versions: &w.admission_review_versions,
                namespace_selector: w.namespace_selector.as_ref(),
                object_selector: w.object_selector.as_ref(),
            };
            errs.extend(validate_webhook(&view, &mut names, &Path::new("webhooks").index(i)));
        }
        errs
    }
}

impl KindStrategy for MutatingWebhookConfiguration {
    fn default(&mut self) {
        for w in self.webhooks.iter_mut().flatten() {
            default_str(&mut w.failure_policy, "Fail");
            default_str(&mut w.match_policy, "Equivalent");
            default_str(&mut w.reinvocation_policy, "Never");
            default_to(&mut w.namespace_selector, LabelSelector::default());
            default_to(&mut w.object_selector, LabelSelector::default());
            default_to(&mut w.timeout_seconds, 10);
            default_rules(&mut w.rules);
            default_client_config(&mut w.client_config);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut names = BTreeSet::new();
        let mut errs = ErrorList::new();
        for (i, w) in self.webhooks.iter().flatten().enumerate() {
            let path = Path::new("webhooks").index(i);
            let view = WebhookView {
                name: &w.name,
                client_config: &w.client_config,
                rules: w.rules.as_ref(),
                failure_policy: w.failure_policy.as_deref(),
                match_policy: w.match_policy.as_deref(),
                side_effects: &w.side_effects,
                timeout: w.timeout_seconds,
                review_versions: &w.admission_review_versions,
                namespace_selector: w.namespace_selector.as_ref(),
                object_selector: w.object_selector.as_ref(),
            };
            errs.extend(validate_webhook(&view, &mut names, &path));
            errs.extend(enum_value(
                w.reinvocation_policy.as_deref(),
                &["IfNeeded", "Never"],
                false,
                &path.child("reinvocationPolicy"),
            ));
        }
        errs
    }
}

fn default_match_resources(m: &mut MatchResources) {
    default_str(&mut m.match_policy, "Equivalent");
    default_to(&mut m.namespace_selector, LabelSelector::default());
    default_to(&mut m.object_selector, LabelSelector::default());
    for r in m.resource_rules.iter_mut().flatten().chain(m.exclude_resource_rules.iter_mut().flatten()) {
        default_str(&mut r.scope, "*");
    }
}

impl KindStrategy for ValidatingAdmissionPolicy {
    fn prepare_for_create(&mut self) {
        self.status = Some(ValidatingAdmissionPolicyStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.failure_policy, "Fail");
        if let Some(m) = &mut spec.match_constraints {
            default_match_resources(m);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        let empty = |v: usize| v == 0;
        if empty(spec.validations.as_ref().map_or(0, Vec::len))
            && empty(spec.audit_annotations.as_ref().map_or(0, Vec::len))
        {
            errs.push(FieldError::required(
                &p.child("validations"),
                "validations or auditAnnotations must contain at least one item",
            ));
        }
        match &spec.match_constraints {
            None => errs.push(FieldError::required(&p.child("matchConstraints"), "")),
            Some(m) if m.resource_rules.as_ref().is_none_or(Vec::is_empty) => {
                errs.push(FieldError::required(&p.child("matchConstraints").child("resourceRules"), ""))
            }
            Some(_) => {}
        }
        for (i, v) in spec.validations.iter().flatten().enumerate() {
            if v.expression.trim().is_empty() {
                errs.push(FieldError::required(
                    &p.child("validations").index(i).child("expression"),
                    "expression is not specified",
                ));
            }
        }
        errs.extend(enum_value(spec.failure_policy.as_deref(), &["Fail", "Ignore"], false, &p.child("failurePolicy")));
        errs
    }
}

impl KindStrategy for ValidatingAdmissionPolicyBinding {
    fn default(&mut self) {
        if let Some(m) = self.spec.as_mut().and_then(|s| s.match_resources.as_mut()) {
            default_match_resources(m);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        if spec.policy_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&p.child("policyName"), ""));
        }
        let actions = spec.validation_actions.clone().unwrap_or_default();
        if actions.is_empty() {
            errs.push(FieldError::required(
                &p.child("validationActions"),
                "at least one validation action is required",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, a) in actions.iter().enumerate() {
            let ap = p.child("validationActions").index(i);
            errs.extend(enum_value(Some(a), &["Audit", "Deny", "Warn"], true, &ap));
            if !seen.insert(a.as_str()) {
                errs.push(FieldError::duplicate(&ap, a));
            }
        }
        if actions.iter().any(|a| a == "Deny") && actions.iter().any(|a| a == "Warn") {
            errs.push(FieldError::invalid(
                &p.child("validationActions"),
                crate::strategy::common::Raw(crate::strategy::common::go_strings(Some(&actions))),
                "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ));
        }
        errs
    }
}
