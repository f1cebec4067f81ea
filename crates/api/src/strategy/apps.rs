//! Strategies for apps/v1 kinds: upstream's `pkg/apis/apps/v1/defaults.go` and
//! `pkg/apis/apps/validation`, with the pod template handled by `core::pod_spec`.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDaemonSet,
    RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{
    Raw, default_str, default_to, go_int_or_string, go_selector, int_or_percent_value, not_more_than_100_percent,
    selector_is_empty, selector_matches, validate_int_or_percent, validate_label_selector,
};
use crate::strategy::core::cluster::replica_status;
use crate::strategy::core::pod_spec::{self, DeadlineRule};
use crate::strategy::core::warnings::template_warnings;
use crate::validation;

#[cfg(test)]
mod tests;

/// Selector and template checks shared by Deployments and ReplicaSets
/// (`ValidatePodTemplateSpecForReplicaSet` and the selector rules around it).
fn selector_and_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    path: &Path,
    kind: &str,
    deadline: DeadlineRule,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let sel_path = path.child("selector");
    // A missing selector decodes as an empty one; upstream treats a missing selector as
    // matching nothing.
    let missing = selector_is_empty(selector);
    if missing {
        errs.push(FieldError::required(&sel_path, ""));
    } else {
        let sel_errs = validate_label_selector(selector, &sel_path);
        if !sel_errs.is_empty() {
            errs.extend(sel_errs);
            errs.push(FieldError::invalid(&sel_path, Raw(go_selector(selector)), "invalid label selector"));
            return errs;
        }
    }
    let _ = kind;
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let matches = !missing && selector_matches(selector, labels);
    errs.extend(pod_spec::validate_replicated_template(template, matches, &path.child("template"), deadline));
    errs
}

fn selector_immutable(new: &LabelSelector, old: &LabelSelector) -> ErrorList {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            &Path::new("spec").child("selector"),
            Raw(go_selector(new)),
            validation::IMMUTABLE_MSG,
        )]
    }
}

fn nonneg_opt(v: Option<i32>, path: &Path) -> ErrorList {
    v.map_or_else(Vec::new, |v| validation::nonnegative(i64::from(v), path))
}

// ------------------------------------------------------------------------------------------------
// Deployment
// ------------------------------------------------------------------------------------------------

impl KindStrategy for Deployment {
    fn warnings(&self) -> Vec<String> {
        template_warnings(self.spec.as_ref().map(|s| &s.template), &Path::new("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(DeploymentStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(DeploymentSpec::default);
        default_to(&mut spec.replicas, 1);
        let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
        default_str(&mut strategy.type_, "RollingUpdate");
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
            default_to(&mut ru.max_unavailable, IntOrString::String("25%".to_string()));
            default_to(&mut ru.max_surge, IntOrString::String("25%".to_string()));
        }
        default_to(&mut spec.revision_history_limit, 10);
        default_to(&mut spec.progress_deadline_seconds, 600);
        pod_spec::default_pod_template(&mut spec.template);
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        validate_deployment_spec(&spec)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let new = self.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        selector_immutable(&new.selector, &old.selector)
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        let p = Path::new("status");
        let mut errs = replica_status(
            &p,
            s.replicas.unwrap_or(0),
            &[
                ("updatedReplicas", s.updated_replicas.unwrap_or(0)),
                ("readyReplicas", s.ready_replicas.unwrap_or(0)),
                ("availableReplicas", s.available_replicas.unwrap_or(0)),
            ],
            s.observed_generation.unwrap_or(0),
        );
        errs.extend(nonneg_opt(s.unavailable_replicas, &p.child("unavailableReplicas")));
        errs.extend(nonneg_opt(s.collision_count, &p.child("collisionCount")));
        errs
    }
}

fn validate_deployment_spec(spec: &DeploymentSpec) -> ErrorList {
    let p = Path::new("spec");
    let mut errs = nonneg_opt(spec.replicas, &p.child("replicas"));
    errs.extend(selector_and_template(
        &spec.selector,
        &spec.template,
        &p,
        "deployment",
        DeadlineRule::Forbidden("activeDeadlineSeconds in ReplicaSet is not Supported"),
    ));
    let sp = p.child("strategy");
    let strategy = spec.strategy.clone().unwrap_or_default();
    match strategy.type_.as_deref().unwrap_or_default() {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => {
                errs.push(FieldError::required(&sp.child("rollingUpdate"), "this should be defaulted and never be nil"))
            }
            Some(ru) => {
                let rp = sp.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                errs.extend(validate_int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(validate_int_or_percent(ms, &rp.child("maxSurge")));
                if int_or_percent_value(mu) == Some(0) && int_or_percent_value(ms) == Some(0) {
                    errs.push(FieldError::invalid(
                        &rp.child("maxUnavailable"),
                        Raw(go_int_or_string(mu)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
            }
        },
        other => errs.push(FieldError::not_supported(&sp.child("type"), other, &["Recreate", "RollingUpdate"])),
    }
    errs.extend(nonneg_opt(spec.min_ready_seconds, &p.child("minReadySeconds")));
    errs.extend(nonneg_opt(spec.revision_history_limit, &p.child("revisionHistoryLimit")));
    if let Some(pd) = spec.progress_deadline_seconds {
        errs.extend(validation::nonnegative(i64::from(pd), &p.child("progressDeadlineSeconds")));
        if pd <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                &p.child("progressDeadlineSeconds"),
                pd,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

// ------------------------------------------------------------------------------------------------
// ReplicaSet
// ------------------------------------------------------------------------------------------------

impl KindStrategy for ReplicaSet {
    fn warnings(&self) -> Vec<String> {
        template_warnings(self.spec.as_ref().and_then(|s| s.template.as_ref()), &Path::new("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicaSetStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(ReplicaSetSpec::default);
        default_to(&mut spec.replicas, 1);
        if let Some(t) = &mut spec.template {
            pod_spec::default_pod_template(t);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = nonneg_opt(spec.replicas, &p.child("replicas"));
        errs.extend(nonneg_opt(spec.min_ready_seconds, &p.child("minReadySeconds")));
        let template = spec.template.clone().unwrap_or_default();
        errs.extend(selector_and_template(
            &spec.selector,
            &template,
            &p,
            "replicaset",
            DeadlineRule::Forbidden("activeDeadlineSeconds in ReplicaSet is not Supported"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let new = self.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        selector_immutable(&new.selector, &old.selector)
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        replica_status(
            &Path::new("status"),
            s.replicas,
            &[
                ("fullyLabeledReplicas", s.fully_labeled_replicas.unwrap_or(0)),
                ("readyReplicas", s.ready_replicas.unwrap_or(0)),
                ("availableReplicas", s.available_replicas.unwrap_or(0)),
            ],
            s.observed_generation.unwrap_or(0),
        )
    }
}

// ------------------------------------------------------------------------------------------------
// DaemonSet
// ------------------------------------------------------------------------------------------------

impl KindStrategy for DaemonSet {
    fn warnings(&self) -> Vec<String> {
        template_warnings(self.spec.as_ref().map(|s| &s.template), &Path::new("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(DaemonSetStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(DaemonSetSpec::default);
        let us = spec.update_strategy.get_or_insert_with(DaemonSetUpdateStrategy::default);
        default_str(&mut us.type_, "RollingUpdate");
        if us.type_.as_deref() == Some("RollingUpdate") {
            let ru = us.rolling_update.get_or_insert_with(RollingUpdateDaemonSet::default);
            default_to(&mut ru.max_unavailable, IntOrString::Int(1));
            default_to(&mut ru.max_surge, IntOrString::Int(0));
        }
        default_to(&mut spec.revision_history_limit, 10);
        pod_spec::default_pod_template(&mut spec.template);
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        let sel_errs = validate_label_selector(&spec.selector, &p.child("selector"));
        let valid_selector = sel_errs.is_empty();
        errs.extend(sel_errs);
        let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
        let matches = !selector_is_empty(&spec.selector) && selector_matches(&spec.selector, labels);
        errs.extend(pod_spec::validate_replicated_template(
            &spec.template,
            matches || !valid_selector,
            &p.child("template"),
            DeadlineRule::Invalid("activeDeadlineSeconds must be nil for daemonset"),
        ));
        errs.extend(nonneg_opt(spec.min_ready_seconds, &p.child("minReadySeconds")));
        let up = p.child("updateStrategy");
        let us = spec.update_strategy.clone().unwrap_or_default();
        match us.type_.as_deref().unwrap_or_default() {
            "OnDelete" => {}
            "RollingUpdate" => match &us.rolling_update {
                None => errs.push(FieldError::required(&up.child("rollingUpdate"), "")),
                Some(ru) => {
                    let rp = up.child("rollingUpdate");
                    let zero = IntOrString::Int(0);
                    let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                    let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                    errs.extend(validate_int_or_percent(mu, &rp.child("maxUnavailable")));
                    errs.extend(validate_int_or_percent(ms, &rp.child("maxSurge")));
                    errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                    errs.extend(not_more_than_100_percent(ms, &rp.child("maxSurge")));
                    let has_u = int_or_percent_value(mu).unwrap_or(0) != 0;
                    let has_s = int_or_percent_value(ms).unwrap_or(0) != 0;
                    if has_u && has_s {
                        errs.push(FieldError::invalid(
                            &rp.child("maxSurge"),
                            Raw(go_int_or_string(ms)),
                            "may not be set when maxUnavailable is non-zero",
                        ));
                    } else if !has_u && !has_s {
                        errs.push(FieldError::required(&rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                    }
                }
            },
            other => {
                errs.push(FieldError::not_supported(&up, Raw(format!("{other:?}")), &["RollingUpdate", "OnDelete"]))
            }
        }
        errs.extend(nonneg_opt(spec.revision_history_limit, &p.child("revisionHistoryLimit")));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let new = self.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        selector_immutable(&new.selector, &old.selector)
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        let p = Path::new("status");
        let mut errs = ErrorList::new();
        for (v, f) in [
            (s.number_misscheduled, "numberMisscheduled"),
            (s.current_number_scheduled, "currentNumberScheduled"),
            (s.desired_number_scheduled, "desiredNumberScheduled"),
            (s.number_ready, "numberReady"),
        ] {
            errs.extend(validation::nonnegative(i64::from(v), &p.child(f)));
        }
        errs.extend(validation::nonnegative(s.observed_generation.unwrap_or(0), &p.child("observedGeneration")));
        errs.extend(nonneg_opt(s.updated_number_scheduled, &p.child("updatedNumberScheduled")));
        errs.extend(nonneg_opt(s.number_available, &p.child("numberAvailable")));
        errs.extend(nonneg_opt(s.number_unavailable, &p.child("numberUnavailable")));
        errs.extend(nonneg_opt(s.collision_count, &p.child("collisionCount")));
        errs
    }
}

// ------------------------------------------------------------------------------------------------
// StatefulSet
// ------------------------------------------------------------------------------------------------

impl KindStrategy for StatefulSet {
    fn warnings(&self) -> Vec<String> {
        template_warnings(self.spec.as_ref().map(|s| &s.template), &Path::new("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(StatefulSetStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(StatefulSetSpec::default);
        default_str(&mut spec.pod_management_policy, "OrderedReady");
        let us = spec.update_strategy.get_or_insert_with(StatefulSetUpdateStrategy::default);
        if us.type_.as_deref().is_none_or(str::is_empty) {
            us.type_ = Some("RollingUpdate".to_string());
            default_to(&mut us.rolling_update, RollingUpdateStatefulSetStrategy::default());
        }
        if us.type_.as_deref() == Some("RollingUpdate")
            && let Some(ru) = &mut us.rolling_update
        {
            default_to(&mut ru.partition, 0);
        }
        let policy = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
        default_str(&mut policy.when_deleted, "Retain");
        default_str(&mut policy.when_scaled, "Retain");
        default_to(&mut spec.replicas, 1);
        default_to(&mut spec.revision_history_limit, 10);
        pod_spec::default_pod_template(&mut spec.template);
        for pvc in spec.volume_claim_templates.iter_mut().flatten() {
            crate::strategy::core::storage::default_pvc(pvc);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        match spec.pod_management_policy.as_deref().unwrap_or_default() {
            "" => errs.push(FieldError::required(&p.child("podManagementPolicy"), "")),
            "OrderedReady" | "Parallel" => {}
            other => errs.push(FieldError::invalid(
                &p.child("podManagementPolicy"),
                other,
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let up = p.child("updateStrategy");
        let us = spec.update_strategy.clone().unwrap_or_default();
        match us.type_.as_deref().unwrap_or_default() {
            "" => errs.push(FieldError::required(&up, "")),
            "OnDelete" => {
                if us.rolling_update.is_some() {
                    errs.push(FieldError::invalid(
                        &up.child("rollingUpdate"),
                        Raw("apps.RollingUpdateStatefulSetStrategy{...}".into()),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = &us.rolling_update {
                    errs.extend(nonneg_opt(ru.partition, &up.child("rollingUpdate").child("partition")));
                    if let Some(mu) = &ru.max_unavailable {
                        errs.extend(validate_int_or_percent(mu, &up.child("rollingUpdate").child("maxUnavailable")));
                    }
                }
            }
            other => errs.push(FieldError::invalid(
                &up,
                Raw(format!("apps.StatefulSetUpdateStrategy{{Type:{other:?}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}")),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        if let Some(pol) = &spec.persistent_volume_claim_retention_policy {
            let pp = p.child("persistentVolumeClaimRetentionPolicy");
            for (v, f) in [(&pol.when_deleted, "whenDeleted"), (&pol.when_scaled, "whenScaled")] {
                errs.extend(crate::strategy::common::enum_value(
                    v.as_deref(),
                    &["Retain", "Delete"],
                    false,
                    &pp.child(f),
                ));
            }
        }
        if let Some(o) = &spec.ordinals {
            errs.extend(nonneg_opt(o.start, &p.child("ordinals").child("start")));
        }
        errs.extend(nonneg_opt(spec.replicas, &p.child("replicas")));
        errs.extend(nonneg_opt(spec.min_ready_seconds, &p.child("minReadySeconds")));
        errs.extend(selector_and_template(
            &spec.selector,
            &spec.template,
            &p,
            "statefulset",
            DeadlineRule::Invalid("must not be specified"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut new = self.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        new.replicas = old.replicas;
        new.ordinals.clone_from(&old.ordinals);
        new.template.clone_from(&old.template);
        new.update_strategy.clone_from(&old.update_strategy);
        new.persistent_volume_claim_retention_policy.clone_from(&old.persistent_volume_claim_retention_policy);
        new.min_ready_seconds = old.min_ready_seconds;
        if new != old {
            return vec![FieldError::forbidden(
                &Path::new("spec"),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', \
                 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )];
        }
        Vec::new()
    }

    fn validate_status_update(&self, old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        let p = Path::new("status");
        let mut errs = replica_status(
            &p,
            s.replicas,
            &[
                ("readyReplicas", s.ready_replicas.unwrap_or(0)),
                ("currentReplicas", s.current_replicas.unwrap_or(0)),
                ("updatedReplicas", s.updated_replicas.unwrap_or(0)),
            ],
            s.observed_generation.unwrap_or(0),
        );
        errs.extend(nonneg_opt(s.collision_count, &p.child("collisionCount")));
        let old_cc = old.pointer("/status/collisionCount").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok());
        let decremented = match (s.collision_count, old_cc) {
            (None, Some(_)) => true,
            (Some(n), Some(o)) => n < o,
            _ => false,
        };
        if decremented {
            errs.push(FieldError::invalid(
                &p.child("collisionCount"),
                s.collision_count.unwrap_or(0),
                "cannot be decremented",
            ));
        }
        errs
    }
}

// ------------------------------------------------------------------------------------------------
// ControllerRevision
// ------------------------------------------------------------------------------------------------

impl KindStrategy for ControllerRevision {
    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        if self.data.is_none() {
            errs.push(FieldError::required(&Path::new("data"), "data is mandatory"));
        }
        errs.extend(validation::nonnegative(self.revision, &Path::new("revision")));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        if self.data != old.data {
            return vec![FieldError::invalid(
                &Path::new("data"),
                Raw("runtime.RawExtension{...}".into()),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}
