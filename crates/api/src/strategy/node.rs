//! Strategies for node.k8s.io/v1 kinds: RuntimeClasses.

use k8s_openapi::api::node::v1::RuntimeClass;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation;

impl KindStrategy for RuntimeClass {
    fn validate(&self) -> ErrorList {
        let mut errs =
            validation::invalid_each(&Path::new("handler"), &self.handler, validation::dns1123_label(&self.handler));
        if let Some(o) = self.overhead.as_ref().and_then(|o| o.pod_fixed.as_ref()) {
            for (k, q) in o {
                errs.extend(crate::strategy::core::pod_spec::quantity_value(
                    k,
                    q,
                    &Path::new("overhead").child("podFixed").key(k),
                ));
            }
        }
        if let Some(s) = &self.scheduling {
            if let Some(ns) = &s.node_selector {
                errs.extend(crate::strategy::common::validate_labels(
                    ns,
                    &Path::new("scheduling").child("nodeSelector"),
                ));
            }
            if let Some(t) = &s.tolerations {
                errs.extend(crate::strategy::core::pod_spec::validate_tolerations(
                    t,
                    &Path::new("scheduling").child("tolerations"),
                ));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        if self.handler != old.handler {
            return vec![FieldError::invalid(&Path::new("handler"), &self.handler, validation::IMMUTABLE_MSG)];
        }
        Vec::new()
    }
}
