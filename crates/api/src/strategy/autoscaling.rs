//! Strategies for autoscaling/v1 and autoscaling/v2 HorizontalPodAutoscalers: upstream's
//! defaults (minReplicas 1, the CPU metric, scaling behavior rules) and main validation.

use k8s_openapi::api::autoscaling::{v1, v2};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{default_str, default_to, enum_value};
use crate::validation;

#[cfg(test)]
mod tests;

/// Upstream's `DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

fn scale_target_ref(kind: &str, name: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        errs.extend(validation::invalid_each(&path.child("kind"), kind, validation::path_segment_name(kind)));
    }
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(validation::invalid_each(&path.child("name"), name, validation::path_segment_name(name)));
    }
    errs
}

fn replicas(min: Option<i32>, max: i32, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(m) = min
        && m < 1
    {
        errs.push(FieldError::invalid(&path.child("minReplicas"), m, "must be greater than or equal to 1"));
    }
    if max < 1 {
        errs.push(FieldError::invalid(&path.child("maxReplicas"), max, "must be greater than 0"));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs
}

/// `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`: fill what the user left out.
fn default_rules(rules: &mut Option<v2::HPAScalingRules>, up: bool) {
    let r = rules.get_or_insert_with(v2::HPAScalingRules::default);
    if r.policies.is_none() {
        r.policies = Some(if up {
            vec![
                v2::HPAScalingPolicy { type_: "Pods".to_string(), value: 4, period_seconds: 15 },
                v2::HPAScalingPolicy { type_: "Percent".to_string(), value: 100, period_seconds: 15 },
            ]
        } else {
            vec![v2::HPAScalingPolicy { type_: "Percent".to_string(), value: 100, period_seconds: 15 }]
        });
    }
    default_str(&mut r.select_policy, "Max");
    default_to(&mut r.stabilization_window_seconds, if up { 0 } else { 300 });
}

fn validate_rules(r: &v2::HPAScalingRules, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(w) = r.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        let msg = if w < 0 {
            "must be greater than or equal to zero".to_string()
        } else {
            "must be less than or equal to 3600".to_string()
        };
        errs.push(FieldError::invalid(&path.child("stabilizationWindowSeconds"), w, msg));
    }
    errs.extend(enum_value(
        r.select_policy.as_deref(),
        &["Disabled", "Max", "Min"],
        false,
        &path.child("selectPolicy"),
    ));
    let policies = r.policies.as_deref().unwrap_or_default();
    if policies.is_empty() && r.select_policy.as_deref() != Some("Disabled") {
        errs.push(FieldError::required(&path.child("policies"), "must specify at least one Policy"));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = path.child("policies").index(i);
        errs.extend(enum_value(Some(&p.type_), &["Percent", "Pods"], true, &pp.child("type")));
        if p.value <= 0 {
            errs.push(FieldError::invalid(&pp.child("value"), p.value, "must be greater than zero"));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid(&pp.child("periodSeconds"), p.period_seconds, "must be greater than zero"));
        } else if p.period_seconds > 1800 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                p.period_seconds,
                "must be less than or equal to 1800",
            ));
        }
    }
    errs
}

impl KindStrategy for v2::HorizontalPodAutoscaler {
    fn prepare_for_create(&mut self) {
        self.status = None;
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(v2::HorizontalPodAutoscalerSpec::default);
        default_to(&mut spec.min_replicas, 1);
        if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
            spec.metrics = Some(vec![v2::MetricSpec {
                type_: "Resource".to_string(),
                resource: Some(v2::ResourceMetricSource {
                    name: "cpu".to_string(),
                    target: v2::MetricTarget {
                        type_: "Utilization".to_string(),
                        average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]);
        }
        if let Some(b) = &mut spec.behavior {
            default_rules(&mut b.scale_up, true);
            default_rules(&mut b.scale_down, false);
        }
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs =
            scale_target_ref(&spec.scale_target_ref.kind, &spec.scale_target_ref.name, &p.child("scaleTargetRef"));
        errs.extend(replicas(spec.min_replicas, spec.max_replicas, &p));
        for (i, m) in spec.metrics.iter().flatten().enumerate() {
            let mp = p.child("metrics").index(i);
            let set = [
                ("Object", m.object.is_some()),
                ("Pods", m.pods.is_some()),
                ("Resource", m.resource.is_some()),
                ("ContainerResource", m.container_resource.is_some()),
                ("External", m.external.is_some()),
            ];
            match m.type_.as_str() {
                "" => errs.push(FieldError::required(&mp.child("type"), "must specify a metric source type")),
                t if set.iter().any(|(n, _)| *n == t) => {
                    if !set.iter().any(|(n, s)| *n == t && *s) {
                        let field = format!("{}{}", t[..1].to_lowercase(), &t[1..]);
                        errs.push(FieldError::required(
                            &mp.child(&field),
                            "must populate information for the given metric source",
                        ));
                    }
                }
                t => errs.push(FieldError::not_supported(
                    &mp.child("type"),
                    t,
                    &["ContainerResource", "External", "Object", "Pods", "Resource"],
                )),
            }
            if let Some(r) = &m.resource {
                let rp = mp.child("resource");
                if r.name.is_empty() {
                    errs.push(FieldError::required(&rp.child("name"), "must specify a resource name"));
                }
                let t = &r.target;
                errs.extend(enum_value(
                    Some(&t.type_),
                    &["AverageValue", "Utilization", "Value"],
                    true,
                    &rp.child("target").child("type"),
                ));
                if let Some(u) = t.average_utilization
                    && u <= 0
                {
                    errs.push(FieldError::invalid(
                        &rp.child("target").child("averageUtilization"),
                        u,
                        "must be greater than 0",
                    ));
                }
            }
        }
        if let Some(b) = &spec.behavior {
            let bp = p.child("behavior");
            if let Some(r) = &b.scale_up {
                errs.extend(validate_rules(r, &bp.child("scaleUp")));
            }
            if let Some(r) = &b.scale_down {
                errs.extend(validate_rules(r, &bp.child("scaleDown")));
            }
        }
        errs
    }
}

impl KindStrategy for v1::HorizontalPodAutoscaler {
    fn prepare_for_create(&mut self) {
        self.status = None;
    }

    fn default(&mut self) {
        default_to(&mut self.spec.get_or_insert_with(v1::HorizontalPodAutoscalerSpec::default).min_replicas, 1);
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs =
            scale_target_ref(&spec.scale_target_ref.kind, &spec.scale_target_ref.name, &p.child("scaleTargetRef"));
        errs.extend(replicas(spec.min_replicas, spec.max_replicas, &p));
        if let Some(t) = spec.target_cpu_utilization_percentage
            && t < 1
        {
            errs.push(FieldError::invalid(&p.child("targetCPUUtilizationPercentage"), t, "must be greater than 0"));
        }
        errs
    }
}
