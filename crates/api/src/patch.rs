//! The three classic PATCH content types, applied to an object's JSON:
//!
//! - `application/json-patch+json` (RFC 6902): [`json_patch`];
//! - `application/merge-patch+json` (RFC 7386): [`merge_patch`];
//! - `application/strategic-merge-patch+json`: [`strategic_merge_patch`], driven by the OpenAPI
//!   metadata a [`Schema`](crate::schema::Schema) cursor reads.
//!
//! Where it sits: the API server's PATCH handler decodes the body, calls one of these on the
//! stored object's JSON, then decodes, defaults and validates the result like an update (see
//! `docs/data-path.md`, "patch"). Every failure is a [`PatchError`] with upstream's message;
//! [`PatchError::status_code`] tells the handler which HTTP status kube-apiserver uses for it.
//! Nothing here panics on any input.

use serde_json::Value;

mod gofmt;
mod order;
mod strategic;

pub use strategic::strategic_merge_patch;

/// Upstream's cap on the number of operations in one JSON patch (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Why a patch could not be applied. Messages match kube-apiserver's (which come from
/// apimachinery's `mergepatch` errors and evanphx/json-patch).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The object or the strategic merge patch is not a JSON object (upstream `ErrBadJSONDoc`).
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A list item lacks the key its list is merged by (upstream `ErrNoMergeKey`).
    #[error("map: {item} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The item, printed as Go prints a map.
        item: String,
        /// The declared merge key.
        key: String,
    },
    /// A value has the wrong JSON type where it appears (upstream `ErrBadArgType`).
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// The Go type upstream expected (`map[string]interface {}`, `[]interface {}`).
        expected: &'static str,
        /// The Go type it got.
        actual: &'static str,
    },
    /// `$patch` holds something other than `replace` or `delete` (upstream `ErrBadPatchType`).
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective {
        /// The directive's value.
        directive: String,
        /// The map holding it.
        map: String,
    },
    /// `$patch: merge` inside a list, which upstream has never supported.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A merged list holds lists (upstream `ErrNoListOfLists`).
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// The items of a merged list (original and patch together) are of different JSON types.
    #[error("list element types are not identical: {lists}")]
    MixedElementTypes {
        /// The lists, printed as Go prints them.
        lists: String,
    },
    /// `$setElementOrder` names a list that is present but empty on both sides.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A list of objects is declared `merge` but has no merge key.
    #[error("cannot merge lists without merge key for {type_name}")]
    NoMergeKeyDeclared {
        /// The item type.
        type_name: String,
    },
    /// The schema declares a strategy combination upstream rejects.
    #[error("unexpected patch strategy: {strategies}")]
    UnexpectedPatchStrategy {
        /// The declared strategies, printed as a Go slice.
        strategies: String,
    },
    /// `$retainKeys` is not a list, or the patch sets a key it does not list.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A `$deleteFromPrimitiveList` key without `/<field>`.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A `$setElementOrder` key without `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// The patch list names items `$setElementOrder` lacks, or in another order.
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    SetElementOrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
    /// A merged list of objects also holds a non-object.
    #[error("value for key {index} is not a map")]
    NotAMap {
        /// The offending index.
        index: usize,
    },
    /// A JSON patch that is not an array of operation objects.
    #[error("{message}")]
    InvalidJsonPatch {
        /// What is wrong with it.
        message: String,
    },
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// The number sent.
        got: usize,
    },
    /// A JSON patch operation that is malformed (missing `path`, `value`, `from`).
    #[error("invalid JSON patch operation {index}: {source}")]
    InvalidJsonPatchOperation {
        /// The operation's index.
        index: usize,
        /// The decoding failure.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON patch operation of an unknown kind (upstream: `Unexpected kind: <op>`).
    #[error("Unexpected kind: {op}")]
    UnknownJsonPatchOperation {
        /// The `op`, or `unknown` when absent.
        op: String,
    },
    /// A JSON patch operation failed: a `test` did not match or a path does not exist.
    #[error("{message}")]
    JsonPatchFailed {
        /// Upstream-shaped description.
        message: String,
        /// The json-patch crate's error.
        #[source]
        source: json_patch::PatchError,
    },
    /// A merge patch that is not a JSON object (upstream `ErrBadJSONPatch`).
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with for this error: 400 for malformed patches
    /// (`BadRequest`), 422 for JSON patch operations that fail and for lists of lists, 413 for
    /// too many operations, and 500 (a `Status` with an empty reason and the message) for the
    /// remaining strategic merge patch failures, which upstream does not classify.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadJsonDoc
            | PatchError::BadRetainKeys
            | PatchError::BadPrimitiveList
            | PatchError::BadSetElementOrder
            | PatchError::InvalidJsonPatch { .. }
            | PatchError::InvalidMergePatch => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::ListOfLists
            | PatchError::InvalidJsonPatchOperation { .. }
            | PatchError::UnknownJsonPatchOperation { .. }
            | PatchError::JsonPatchFailed { .. } => 422,
            PatchError::MissingMergeKey { .. }
            | PatchError::BadArgType { .. }
            | PatchError::UnknownDirective { .. }
            | PatchError::MergeDirectiveInList
            | PatchError::MixedElementTypes { .. }
            | PatchError::NoElements
            | PatchError::NoMergeKeyDeclared { .. }
            | PatchError::UnexpectedPatchStrategy { .. }
            | PatchError::SetElementOrderMismatch { .. }
            | PatchError::NotAMap { .. } => 500,
        }
    }
}

/// Applies an RFC 6902 JSON patch. `patch` must be an array of operation objects; operations are
/// applied in order, and on failure the result is an error (never a half-patched object).
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = match patch {
        Value::Array(ops) => ops,
        // Go decodes `null` into an empty operation list.
        Value::Null => return Ok(original.clone()),
        _ => {
            return Err(PatchError::InvalidJsonPatch {
                message: format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                    json_type_name(patch)
                ),
            });
        }
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations { max: MAX_JSON_PATCH_OPERATIONS, got: ops.len() });
    }
    let mut parsed = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        // Go decodes a `null` operation into an empty one, whose kind is "unknown".
        if !op.is_object() && !op.is_null() {
            return Err(PatchError::InvalidJsonPatch {
                message: format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_type_name(op)
                ),
            });
        }
        // Checked before decoding so an unknown `op` gets upstream's message, not serde's.
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        if !matches!(kind, "add" | "remove" | "replace" | "move" | "copy" | "test") {
            return Err(PatchError::UnknownJsonPatchOperation { op: kind.to_string() });
        }
        let op: json_patch::PatchOperation = serde_json::from_value(op.clone())
            .map_err(|source| PatchError::InvalidJsonPatchOperation { index, source })?;
        parsed.push(op);
    }
    // Applied to a scratch copy that is dropped on failure. `json_patch::patch` would instead
    // undo in place, and its undo panics when it cannot reverse an operation (a `move` to the
    // root followed by a failing operation), so the non-undoing variant is used.
    let mut doc = original.clone();
    json_patch::patch_unsafe(&mut doc, &parsed).map_err(|source| {
        let message = parsed
            .get(source.operation)
            .map(|op| describe_json_patch_failure(op, &source))
            .unwrap_or_else(|| source.to_string());
        PatchError::JsonPatchFailed { message, source }
    })?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch; `patch` must be an object.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::InvalidMergePatch);
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// Words a json-patch failure the way evanphx/json-patch (used by kube-apiserver) does.
fn describe_json_patch_failure(op: &json_patch::PatchOperation, err: &json_patch::PatchError) -> String {
    use json_patch::{PatchErrorKind, PatchOperation};
    let path = &err.path;
    match (op, &err.kind) {
        (PatchOperation::Test(_), PatchErrorKind::TestFailed) => {
            format!("testing value {path} failed: test failed")
        }
        (PatchOperation::Test(_), _) => {
            format!("test operation does not apply: is missing path: {path}: missing value")
        }
        (PatchOperation::Add(_), _) => {
            format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
        }
        (PatchOperation::Remove(_), _) => {
            format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
        }
        (PatchOperation::Replace(_), _) => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        (PatchOperation::Move(m), PatchErrorKind::InvalidFromPointer) => {
            format!("move operation does not apply: doc is missing from path: {}: missing value", m.from)
        }
        (PatchOperation::Move(m), PatchErrorKind::CannotMoveInsideItself) => {
            format!("invalid move operation: cannot move {} into its own child {path}", m.from)
        }
        (PatchOperation::Move(_), _) => {
            format!("move operation does not apply: doc is missing destination path: {path}: missing value")
        }
        (PatchOperation::Copy(c), PatchErrorKind::InvalidFromPointer) => {
            format!("copy operation does not apply: doc is missing from path: {}: missing value", c.from)
        }
        (PatchOperation::Copy(_), _) => {
            format!("copy operation does not apply: doc is missing destination path: {path}: missing value")
        }
    }
}

/// How Go's `encoding/json` names a JSON value's type in unmarshal errors.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
