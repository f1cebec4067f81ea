//! Strategies for scheduling.k8s.io/v1 kinds: PriorityClasses.

use k8s_openapi::api::scheduling::v1::PriorityClass;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{default_str, enum_value};

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

/// The system classes and their fixed values.
fn known_system_class(name: &str) -> Option<i32> {
    match name {
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    }
}

impl KindStrategy for PriorityClass {
    fn default(&mut self) {
        default_str(&mut self.preemption_policy, "PreemptLowerPriority");
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let name = self.metadata.name.clone().unwrap_or_default();
        if name.starts_with("system-") {
            let problem = match known_system_class(&name) {
                None => Some(format!("priority class {name} is not a known system priority class")),
                Some(v) if v != self.value => Some(format!("value of {name} PriorityClass must be {v}")),
                Some(_) if self.global_default == Some(true) => {
                    Some(format!("globalDefault of {name} PriorityClass must be false"))
                }
                Some(_) => None,
            };
            if let Some(p) = problem {
                errs.push(FieldError::forbidden(
                    &Path::new("metadata").child("name"),
                    format!("priority class names with 'system-' prefix are reserved for system use only. error: {p}"),
                ));
            }
        } else if self.value > HIGHEST_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                &Path::new("value"),
                format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
            ));
        }
        errs.extend(enum_value(
            self.preemption_policy.as_deref(),
            &["PreemptLowerPriority", "Never"],
            true,
            &Path::new("preemptionPolicy"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        if self.value != old.value {
            errs.push(FieldError::forbidden(&Path::new("value"), "may not be changed in an update."));
        }
        if self.preemption_policy != old.preemption_policy {
            errs.push(FieldError::invalid(
                &Path::new("preemptionPolicy"),
                self.preemption_policy.clone().unwrap_or_default(),
                crate::validation::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}
