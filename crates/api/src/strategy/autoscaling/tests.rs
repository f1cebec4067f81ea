//! autoscaling strategies driven through the whole admission pipeline.

use k8s_openapi::api::autoscaling::{v1, v2};
use serde_json::json;

use crate::strategy::test_util::{create, errors, has, ok};

#[test]
fn hpa_v2_defaults() {
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
    let out = ok(create::<v2::HorizontalPodAutoscaler>(hpa));
    let spec = &out["spec"];
    assert_eq!(spec["minReplicas"], 1);
    assert_eq!(
        spec["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        spec["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
        })
    );
}

#[test]
fn hpa_validation() {
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 3, "maxReplicas": 2}});
    let errs = errors(create::<v2::HorizontalPodAutoscaler>(hpa));
    has(&errs, "spec.scaleTargetRef.name: Required value");
    has(&errs, "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`");
    let v1hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0}});
    let errs = errors(create::<v1::HorizontalPodAutoscaler>(v1hpa.clone()));
    assert_eq!(
        errs,
        [
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`"
        ]
    );
    let mut good = v1hpa;
    good["spec"]["maxReplicas"] = json!(3);
    assert_eq!(ok(create::<v1::HorizontalPodAutoscaler>(good))["spec"]["minReplicas"], 1);
}
