//! Patches (interim: JSON patch and merge patch; strategic merge patch lands with its own work).

use serde_json::Value;

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    Invalid(String),
}

pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| PatchError::Invalid(e.to_string()))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &p).map_err(|e| PatchError::Invalid(e.to_string()))?;
    Ok(doc)
}

pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}
