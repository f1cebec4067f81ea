//! Strategies for coordination.k8s.io/v1 kinds: Leases.

use k8s_openapi::api::coordination::v1::Lease;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::enum_value;
use crate::validation;

impl KindStrategy for Lease {
    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let Some(spec) = &self.spec else { return errs };
        let p = Path::new("spec");
        if let Some(d) = spec.lease_duration_seconds
            && d <= 0
        {
            errs.push(FieldError::invalid(&p.child("leaseDurationSeconds"), d, "must be greater than 0"));
        }
        if let Some(t) = spec.lease_transitions {
            errs.extend(validation::nonnegative(i64::from(t), &p.child("leaseTransitions")));
        }
        errs.extend(enum_value(spec.strategy.as_deref(), &["OldestEmulationVersion"], false, &p.child("strategy")));
        errs
    }
}
