//! batch/v1 strategies driven through the whole admission pipeline.

use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{Value, json};

use crate::strategy::test_util::{create, errors, has, ok, update};

const UID: &str = "0d1f9c3e-7a2b-4c5d-9e8f-112233445566";

fn job(template_spec: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "pi", "namespace": "default", "uid": UID},
           "spec": {"template": {"spec": template_spec}}})
}

fn never(image: &str) -> Value {
    json!({"restartPolicy": "Never", "containers": [{"name": "pi", "image": image}]})
}

#[test]
fn job_defaults_and_generated_selector() {
    let out = ok(create::<Job>(job(never("perl:5.34"))));
    let spec = &out["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert!(spec.get("manualSelector").is_none());
    assert_eq!(spec["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}));
    let labels = json!({
        "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID, "job-name": "pi"
    });
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(out["metadata"]["labels"], labels);
    assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(out["status"], json!({}));
}

#[test]
fn job_validation() {
    // The pod spec default is Always, which a Job may not use.
    let errs = errors(create::<Job>(job(json!({"containers": [{"name": "pi", "image": "perl"}]}))));
    assert_eq!(
        errs,
        ["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
    );
    let mut j = job(never("perl"));
    j["spec"]["parallelism"] = json!(-1);
    j["spec"]["completionMode"] = json!("Indexed");
    j["spec"]["completions"] = json!(null);
    let errs = errors(create::<Job>(j));
    has(&errs, "spec.parallelism: Invalid value: -1: must be greater than or equal to 0");
    has(&errs, "spec.completions: Required value: when completion mode is Indexed");
    let mut manual = job(never("perl"));
    manual["spec"]["manualSelector"] = json!(true);
    manual["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
    let errs = errors(create::<Job>(manual));
    assert_eq!(
        errs,
        [
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn job_update_rules() {
    let old = ok(create::<Job>(job(never("perl:5.34"))));
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
    let errs = errors(update::<Job>(new, &old));
    assert_eq!(errs, ["spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]);
    let mut new = old.clone();
    new["spec"]["parallelism"] = json!(3);
    new["spec"]["suspend"] = json!(true);
    ok(update::<Job>(new, &old));
}

fn cronjob(schedule: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "default"},
           "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": never("busybox")}}}}})
}

#[test]
fn cronjob_defaults() {
    let out = ok(create::<CronJob>(cronjob("*/1 * * * *")));
    let spec = &out["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert_eq!(spec["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 30);
}

#[test]
fn cronjob_validation() {
    let errs = errors(create::<CronJob>(cronjob("every minute")));
    assert_eq!(
        errs,
        ["spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]"]
    );
    let mut c = cronjob("0 * * * *");
    c["spec"]["concurrencyPolicy"] = json!("Sometimes");
    c["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
    c["metadata"]["name"] = json!("a".repeat(53));
    let errs = errors(create::<CronJob>(c));
    has(
        &errs,
        "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
    );
    has(
        &errs,
        "spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated",
    );
    has(&errs, &format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "a".repeat(53)));
    let errs = errors(create::<CronJob>(cronjob("TZ=UTC 0 * * * *")));
    has(
        &errs,
        "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
    );
}
