//! Strategies for policy/v1 kinds: PodDisruptionBudgets.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use serde_json::Value;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{
    Raw, enum_value, not_more_than_100_percent, validate_int_or_percent, validate_label_selector,
};

impl KindStrategy for PodDisruptionBudget {
    fn prepare_for_create(&mut self) {
        // The status counters are required integers in v1, so they print as zeros.
        self.status = Some(PodDisruptionBudgetStatus::default());
    }

    fn validate(&self) -> ErrorList {
        let spec = self.spec.clone().unwrap_or_default();
        let p = Path::new("spec");
        let mut errs = ErrorList::new();
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            errs.push(FieldError::invalid(
                &p,
                Raw("policy.PodDisruptionBudgetSpec{...}".into()),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        if let Some(v) = &spec.min_available {
            errs.extend(validate_int_or_percent(v, &p.child("minAvailable")));
            errs.extend(not_more_than_100_percent(v, &p.child("minAvailable")));
        }
        if let Some(v) = &spec.max_unavailable {
            errs.extend(validate_int_or_percent(v, &p.child("maxUnavailable")));
            errs.extend(not_more_than_100_percent(v, &p.child("maxUnavailable")));
        }
        if let Some(s) = &spec.selector {
            errs.extend(validate_label_selector(s, &p.child("selector")));
        }
        errs.extend(enum_value(
            spec.unhealthy_pod_eviction_policy.as_deref(),
            &["AlwaysAllow", "IfHealthyBudget"],
            false,
            &p.child("unhealthyPodEvictionPolicy"),
        ));
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let s = self.status.clone().unwrap_or_default();
        let p = Path::new("status");
        let mut errs = ErrorList::new();
        for (v, f) in [
            (s.disruptions_allowed, "disruptionsAllowed"),
            (s.current_healthy, "currentHealthy"),
            (s.desired_healthy, "desiredHealthy"),
            (s.expected_pods, "expectedPods"),
        ] {
            errs.extend(crate::validation::nonnegative(i64::from(v), &p.child(f)));
        }
        errs
    }
}
