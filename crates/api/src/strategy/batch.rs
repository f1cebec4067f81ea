//! Strategies for batch/v1 kinds: Jobs (defaults, the generated controller-uid selector,
//! `ValidateJob*`) and CronJobs (defaults, schedule checks, `ValidateCronJob*`).

use serde_json::Value;
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, CronJobStatus, Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{
    Raw, default_str, default_to, enum_value, go_selector, selector_matches, validate_label_selector,
};
use crate::strategy::core::pod_spec;
use crate::strategy::core::warnings::template_warnings;
use crate::validation;

mod cron;

#[cfg(test)]
mod tests;

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";
/// Upstream limits Indexed jobs to this many completions (without backoffLimitPerIndex).
const MAX_INDEXED_COMPLETIONS: i32 = 100_000;

/// Upstream's `generateSelector`: label the pod template with the job's name and uid and select
/// on the uid. Needs `metadata.uid`, which the registry sets before admission.
fn generate_selector(meta: &ObjectMeta, spec: &mut JobSpec) {
    let (Some(uid), name) = (meta.uid.clone().filter(|u| !u.is_empty()), meta.name.clone().unwrap_or_default()) else {
        return;
    };
    let labels =
        spec.template.metadata.get_or_insert_with(ObjectMeta::default).labels.get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME, JOB_NAME] {
        labels.entry(key.to_string()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        labels.entry(key.to_string()).or_insert_with(|| uid.clone());
    }
    let sel = spec.selector.get_or_insert_with(LabelSelector::default);
    sel.match_labels.get_or_insert_with(BTreeMap::new).entry(CONTROLLER_UID.to_string()).or_insert(uid);
}

/// The defaults of a job's spec that also apply inside a CronJob's job template.
fn default_job_spec_common(spec: &mut JobSpec) {
    pod_spec::default_pod_template(&mut spec.template);
}

impl KindStrategy for Job {
    fn warnings(&self) -> Vec<String> {
        template_warnings(self.spec.as_ref().map(|s| &s.template), &Path::new("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(JobStatus::default());
        let spec = self.spec.get_or_insert_with(JobSpec::default);
        // SetDefaults_Job copies the template's labels first; upstream runs it before this.
        if self.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
            && let Some(l) = spec.template.metadata.as_ref().and_then(|m| m.labels.clone())
        {
            self.metadata.labels = Some(l);
        }
        if spec.manual_selector != Some(true) {
            generate_selector(&self.metadata, spec);
        }
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(JobSpec::default);
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
            spec.parallelism = Some(1);
        }
        default_to(&mut spec.parallelism, 1);
        if spec.backoff_limit.is_none() {
            spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 });
        }
        if self.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
            && let Some(l) = spec.template.metadata.as_ref().and_then(|m| m.labels.clone())
        {
            self.metadata.labels = Some(l);
        }
        default_str(&mut spec.completion_mode, "NonIndexed");
        default_to(&mut spec.suspend, false);
        if let Some(pfp) = &mut spec.pod_failure_policy {
            for rule in &mut pfp.rules {
                for c in rule.on_pod_conditions.iter_mut().flatten() {
                    if c.status.is_empty() {
                        c.status = "True".to_string();
                    }
                }
            }
        }
        if spec.pod_replacement_policy.is_none() {
            let policy = if spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" };
            spec.pod_replacement_policy = Some(policy.to_string());
        }
        default_job_spec_common(spec);
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let mut errs = ErrorList::new();
        if spec.manual_selector != Some(true) && spec.selector.is_some() {
            let uid = self.metadata.uid.clone().unwrap_or_default();
            let name = self.metadata.name.clone().unwrap_or_default();
            if uid.is_empty() {
                errs.push(FieldError::required(&Path::new("metadata").child("uid"), ""));
            }
            let tmeta = Path::new("spec").child("template").child("metadata");
            let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            for (key, want) in [(CONTROLLER_UID, &uid), (JOB_NAME, &name)] {
                match labels.get(key) {
                    None => {
                        errs.push(FieldError::required(&tmeta.child("labels").key(key), format!("must be '{want}'")))
                    }
                    Some(v) if v != want => errs.push(FieldError::invalid(
                        &tmeta.child("labels").key(key),
                        Raw(crate::strategy::common::go_map(Some(&labels))),
                        format!("must be '{want}'"),
                    )),
                    Some(_) => {}
                }
            }
            let mut expected = BTreeMap::new();
            expected.insert(CONTROLLER_UID.to_string(), uid);
            expected.insert(JOB_NAME.to_string(), name);
            if let Some(sel) = &spec.selector
                && validate_label_selector(sel, &Path::root()).is_empty()
                && !selector_matches(sel, Some(&expected))
            {
                errs.push(FieldError::invalid(
                    &Path::new("spec").child("selector"),
                    Raw(go_selector(sel)),
                    "`selector` not auto-generated",
                ));
            }
        }
        errs.extend(validate_job_spec(&spec, &Path::new("spec")));
        let sp = Path::new("spec").child("selector");
        match &spec.selector {
            None => errs.push(FieldError::required(&sp, "")),
            Some(sel) => {
                let sel_errs = validate_label_selector(sel, &sp);
                let valid = sel_errs.is_empty();
                errs.extend(sel_errs);
                let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
                if valid && !selector_matches(sel, labels) {
                    errs.push(FieldError::invalid(
                        &Path::new("spec").child("template").child("metadata").child("labels"),
                        Raw(crate::strategy::common::go_map(labels)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        let new = self.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        if new.selector != old_spec.selector {
            let shown = new.selector.as_ref().map_or("null".to_string(), go_selector);
            errs.push(FieldError::invalid(&p.child("selector"), Raw(shown), validation::IMMUTABLE_MSG));
        }
        let elastic = new.completion_mode.as_deref() == Some("Indexed")
            && new.completions == new.parallelism
            && old_spec.completions == old_spec.parallelism;
        if new.completions != old_spec.completions && !elastic {
            let shown = new.completions.map_or("null".to_string(), |c| c.to_string());
            errs.push(FieldError::invalid(&p.child("completions"), Raw(shown), validation::IMMUTABLE_MSG));
        }
        if new.completion_mode != old_spec.completion_mode {
            errs.push(FieldError::invalid(
                &p.child("completionMode"),
                new.completion_mode.clone().unwrap_or_default(),
                validation::IMMUTABLE_MSG,
            ));
        }
        if new.pod_failure_policy != old_spec.pod_failure_policy {
            errs.push(FieldError::invalid(
                &p.child("podFailurePolicy"),
                Raw("batch.PodFailurePolicy{...}".into()),
                validation::IMMUTABLE_MSG,
            ));
        }
        // A suspended job that never started may change where its pods run.
        let mut new_t = new.template.clone();
        let old_t = old_spec.template.clone();
        let never_started = old.status.as_ref().and_then(|s| s.start_time.as_ref()).is_none();
        if old_spec.suspend == Some(true) && never_started {
            mask_scheduling_directives(&mut new_t, &old_t);
        }
        if new_t != old_t {
            errs.push(FieldError::invalid(
                &p.child("template"),
                Raw("core.PodTemplateSpec{...}".into()),
                validation::IMMUTABLE_MSG,
            ));
        }
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        let p = Path::new("status");
        let mut errs = ErrorList::new();
        for (v, f) in [
            (s.active, "active"),
            (s.succeeded, "succeeded"),
            (s.failed, "failed"),
            (s.ready, "ready"),
            (s.terminating, "terminating"),
        ] {
            if let Some(v) = v {
                errs.extend(validation::nonnegative(i64::from(v), &p.child(f)));
            }
        }
        errs
    }
}

/// Copy the fields upstream lets a suspended job change from `old` into `new` so the template
/// comparison ignores them.
fn mask_scheduling_directives(new: &mut PodTemplateSpec, old: &PodTemplateSpec) {
    let old_meta = old.metadata.clone().unwrap_or_default();
    let meta = new.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels = old_meta.labels;
    meta.annotations = old_meta.annotations;
    if let (Some(n), Some(o)) = (new.spec.as_mut(), old.spec.as_ref()) {
        n.node_selector.clone_from(&o.node_selector);
        n.affinity.clone_from(&o.affinity);
        n.tolerations.clone_from(&o.tolerations);
        n.scheduling_gates.clone_from(&o.scheduling_gates);
    }
}

/// `validateJobSpec` (shared with CronJob job templates).
fn validate_job_spec(spec: &JobSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (v, f) in [
        (spec.parallelism, "parallelism"),
        (spec.completions, "completions"),
        (spec.backoff_limit, "backoffLimit"),
        (spec.ttl_seconds_after_finished, "ttlSecondsAfterFinished"),
    ] {
        if let Some(v) = v {
            errs.extend(validation::nonnegative(i64::from(v), &path.child(f)));
        }
    }
    if let Some(a) = spec.active_deadline_seconds {
        errs.extend(validation::nonnegative(a, &path.child("activeDeadlineSeconds")));
    }
    let mode = spec.completion_mode.as_deref().unwrap_or_default();
    errs.extend(enum_value(Some(mode), &["NonIndexed", "Indexed"], false, &path.child("completionMode")));
    if mode == "Indexed" {
        match spec.completions {
            None => errs.push(FieldError::required(&path.child("completions"), "when completion mode is Indexed")),
            Some(c) if c > MAX_INDEXED_COMPLETIONS && spec.backoff_limit_per_index.is_none() => {
                errs.push(FieldError::invalid(
                    &path.child("completions"),
                    c,
                    format!("must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"),
                ))
            }
            _ => {}
        }
    }
    if let Some(p) = &spec.pod_replacement_policy {
        errs.extend(enum_value(
            Some(p),
            &["Failed", "TerminatingOrFailed"],
            false,
            &path.child("podReplacementPolicy"),
        ));
    }
    let tp = path.child("template");
    errs.extend(pod_spec::validate_pod_template_spec(&spec.template, &tp));
    let restart = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or_default();
    if restart != "OnFailure" && restart != "Never" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            restart,
            &["OnFailure", "Never"],
        ));
    }
    errs
}

impl KindStrategy for CronJob {
    fn warnings(&self) -> Vec<String> {
        let t = self.spec.as_ref().and_then(|s| s.job_template.spec.as_ref()).map(|j| &j.template);
        template_warnings(t, &Path::new("spec").child("jobTemplate").child("spec").child("template"))
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(CronJobStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(CronJobSpec::default);
        default_str(&mut spec.concurrency_policy, "Allow");
        default_to(&mut spec.suspend, false);
        default_to(&mut spec.successful_jobs_history_limit, 3);
        default_to(&mut spec.failed_jobs_history_limit, 1);
        if let Some(js) = &mut spec.job_template.spec {
            default_job_spec_common(js);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        // Jobs are named `<cronjob>-<unix minutes>`; 52 leaves room for the suffix.
        if let Some(name) = self.metadata.name.as_deref()
            && name.len() > 52
        {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        if spec.schedule.is_empty() {
            errs.push(FieldError::required(&p.child("schedule"), ""));
        } else {
            if let Err(e) = cron::parse_standard(&spec.schedule) {
                errs.push(FieldError::invalid(&p.child("schedule"), &spec.schedule, e));
            }
            if spec.schedule.contains("TZ") {
                errs.push(FieldError::invalid(
                    &p.child("schedule"),
                    &spec.schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        if let Some(tz) = &spec.time_zone {
            let tp = p.child("timeZone");
            if tz.is_empty() {
                errs.push(FieldError::invalid(&tp, tz, "timeZone must be nil or non-empty string"));
            } else if tz == "Local" {
                errs.push(FieldError::invalid(
                    &tp,
                    tz,
                    "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                ));
            } else if tz.contains(' ') || tz.contains("..") || tz.starts_with('/') {
                errs.push(FieldError::invalid(&tp, tz, format!("unknown time zone {tz}")));
            }
        }
        if let Some(s) = spec.starting_deadline_seconds {
            errs.extend(validation::nonnegative(s, &p.child("startingDeadlineSeconds")));
        }
        errs.extend(enum_value(
            spec.concurrency_policy.as_deref(),
            &["Allow", "Forbid", "Replace"],
            true,
            &p.child("concurrencyPolicy"),
        ));
        for (v, f) in [
            (spec.successful_jobs_history_limit, "successfulJobsHistoryLimit"),
            (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
        ] {
            if let Some(v) = v {
                errs.extend(validation::nonnegative(i64::from(v), &p.child(f)));
            }
        }
        let jp = p.child("jobTemplate");
        let js = spec.job_template.spec.clone().unwrap_or_default();
        if let Some(l) = spec.job_template.metadata.as_ref().and_then(|m| m.labels.as_ref()) {
            errs.extend(crate::strategy::common::validate_labels(l, &jp.child("metadata").child("labels")));
        }
        errs.extend(validate_job_spec(&js, &jp.child("spec")));
        if let Some(sel) = &js.selector {
            errs.push(FieldError::invalid(
                &jp.child("spec").child("selector"),
                Raw(go_selector(sel)),
                "`selector` will be auto-generated",
            ));
        }
        if js.manual_selector == Some(true) {
            errs.push(FieldError::not_supported(&jp.child("spec").child("manualSelector"), true, &["nil", "false"]));
        }
        errs
    }
}
