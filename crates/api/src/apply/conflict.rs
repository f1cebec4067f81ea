//! Apply conflicts and their wording: upstream's `merge.Conflict`, the apiserver's
//! `NewConflictError` message (`Apply failed with 2 conflicts: conflicts with "other" using
//! apps/v1:\n- .spec.replicas ...`) and the `FieldManagerConflict` causes of the 409 Status.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ManagedFieldsOperation;
use super::managers::identifier;
use crate::fieldpath::go_quote;

/// The Status cause type of an apply conflict (`metav1.CauseTypeFieldManagerConflict`).
pub const CAUSE_FIELD_MANAGER_CONFLICT: &str = "FieldManagerConflict";

/// A field the applier would change that another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Whether the other manager applied or updated the field.
    pub operation: ManagedFieldsOperation,
    /// The apiVersion of the other manager's entry (printed for updaters only, as upstream).
    pub api_version: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
    /// The field, as upstream prints paths: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
}

impl Conflict {
    /// Upstream's `printManager`: `"kubectl"`, `"other" using apps/v1`,
    /// `"kubelet" with subresource "status" using v1`.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {}", go_quote(sub)));
        }
        if self.operation == ManagedFieldsOperation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn identifier(&self) -> String {
        identifier(&self.manager, self.operation, &self.api_version, self.subresource.as_deref())
    }
}

/// The message of the 409 Status, exactly as kube-apiserver words it: one conflict on one line,
/// several grouped by manager (managers in upstream's identifier order).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", only.manager_description(), only.field);
    }
    let mut by_manager: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(c.identifier()).or_insert_with(|| (c.manager_description(), Vec::new())).1.push(&c.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in by_manager.into_values() {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// What the API server needs for the 409 `Conflict` Status: the message and the
/// `details.causes` (`{"type":"FieldManagerConflict","message":"conflict with \"other\" using
/// apps/v1","field":".spec.replicas"}`). Upstream's details carry nothing else.
pub fn conflict_status_parts(conflicts: &[Conflict]) -> (String, Vec<Value>) {
    let causes = conflicts
        .iter()
        .map(|c| {
            json!({
                "type": CAUSE_FIELD_MANAGER_CONFLICT,
                "message": format!("conflict with {}", c.manager_description()),
                "field": c.field,
            })
        })
        .collect();
    (conflict_message(conflicts), causes)
}
