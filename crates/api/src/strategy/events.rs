//! Strategies for events.k8s.io/v1 Events (the core/v1 Event strategy is in `core`).

use k8s_openapi::api::events::v1::Event;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation;

/// Upstream's `ReportingInstanceLengthLimit`, `ActionLengthLimit`, `ReasonLengthLimit`,
/// `NoteLengthLimit`.
const INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

impl KindStrategy for Event {
    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let ns = self.metadata.namespace.as_deref().unwrap_or_default();
        let regarding_ns = self.regarding.as_ref().and_then(|r| r.namespace.clone()).unwrap_or_default();
        let ns_ok = if regarding_ns.is_empty() { ns.is_empty() || ns == "default" } else { ns == regarding_ns };
        if !ns_ok {
            errs.push(FieldError::invalid(
                &Path::new("involvedObject").child("namespace"),
                regarding_ns,
                "does not match event.namespace",
            ));
        }
        if self.event_time.is_none() {
            errs.push(FieldError::required(&Path::new("eventTime"), ""));
        }
        let ty = self.type_.clone().unwrap_or_default();
        if ty != "Normal" && ty != "Warning" {
            errs.push(FieldError::invalid(&Path::new("type"), "", format!("has invalid value: {ty}")));
        }
        let controller = self.reporting_controller.clone().unwrap_or_default();
        errs.extend(validation::invalid_each(
            &Path::new("reportingController"),
            &controller,
            validation::qualified_name(&controller),
        ));
        for (value, field, limit) in [
            (self.reporting_instance.as_deref(), "reportingInstance", INSTANCE_LIMIT),
            (self.action.as_deref(), "action", ACTION_LIMIT),
            (self.reason.as_deref(), "reason", REASON_LIMIT),
        ] {
            let v = value.unwrap_or_default();
            if v.is_empty() {
                errs.push(FieldError::required(&Path::new(field), ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(&Path::new(field), "", format!("can have at most {limit} characters")));
            }
        }
        if self.note.as_deref().is_some_and(|n| n.len() > NOTE_LIMIT) {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                format!("can have at most {NOTE_LIMIT} characters"),
            ));
        }
        errs
    }
}
