//! Strategic merge patch, applied the way kube-apiserver applies it
//! (`k8s.io/apimachinery/pkg/util/strategicpatch`, `StrategicMergeMapPatch` with the server-side
//! options `MergeParallelList` and `IgnoreUnmatchedNulls`).
//!
//! Semantics, driven by the [`Schema`] metadata of each field:
//! - objects merge key by key; `null` deletes a key;
//! - lists with `x-kubernetes-patch-strategy: merge` merge: lists of objects by their
//!   `x-kubernetes-patch-merge-key`, lists of scalars as a de-duplicated union; other lists, and
//!   fields with `replace`, are replaced;
//! - directives: `$patch: replace|delete` on objects, `$patch: delete|replace` items in merge
//!   lists, `$retainKeys` (clear keys not listed), `$deleteFromPrimitiveList/<field>`,
//!   `$setElementOrder/<field>` (final order of a merged list);
//! - a field without schema has no metadata: objects still merge, lists are replaced.
//!
//! The code follows upstream's algorithm step by step, including its quirks (which directives
//! survive into newly added subtrees, how unnamed items are ordered), because kubectl's
//! client-side apply computes patches expecting exactly that behaviour. Where upstream depends on
//! Go's random map iteration (a field and its `$deleteFromPrimitiveList/` twin in one patch,
//! without `$setElementOrder`), keys are processed in patch order.

use serde_json::{Map, Value};

use super::PatchError;
use super::gofmt::{GO_MAP, GO_SLICE, go_list, go_lists, go_string_verb, go_type, go_value};
use super::order::{DELETE, DIRECTIVE, JsonKind, normalize_element_order, split_deletions};
use crate::schema::Schema;

/// `$patch: replace`, and the `replace` patch strategy.
const REPLACE: &str = "replace";
/// `$patch: merge`, and the `merge` patch strategy.
const MERGE: &str = "merge";
/// The strategy that makes clients send `$retainKeys`.
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
/// The directive listing the keys of an object to keep.
const RETAIN_KEYS: &str = "$retainKeys";
/// Prefix of the parallel list of scalars to remove from a list.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
/// Prefix of the parallel list giving the final order of a merged list.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies a strategic merge patch to `original`, whose type `schema` describes.
///
/// `original` must be a JSON object; `patch` must be an object (or `null`, which changes
/// nothing). Errors carry upstream's messages; [`PatchError::status_code`] gives the HTTP status
/// kube-apiserver answers with.
pub fn strategic_merge_patch(original: &Value, patch: &Value, schema: Schema<'_>) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::BadJsonDoc);
    };
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        // Go decodes `null` into a nil map: an empty patch.
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    merge_map(original.clone(), patch, Some(schema)).map(Value::Object)
}

/// What the schema says about one key of an object: the patch strategy (without `retainKeys`,
/// which only tells clients to send `$retainKeys`), the merge key, and the schema to recurse
/// with (the field's own for objects, its items' for lists).
struct FieldMeta<'a> {
    strategy: &'a str,
    merge_key: &'a str,
    schema: Option<Schema<'a>>,
}

/// Upstream `LookupPatchMetadataForStruct` / `...ForSlice` plus `extractRetainKeysPatchStrategy`.
fn lookup<'a>(schema: Option<Schema<'a>>, key: &str, list: bool) -> Result<FieldMeta<'a>, PatchError> {
    let field = schema.and_then(|s| s.field(key));
    let strategies: Vec<&'a str> = field.map(|f| f.patch_strategies().collect()).unwrap_or_default();
    let strategy = match strategies.as_slice() {
        [] => "",
        [one] if *one == RETAIN_KEYS_STRATEGY => "",
        [one] => one,
        [first, second] if *first == RETAIN_KEYS_STRATEGY => second,
        [first, second] if *second == RETAIN_KEYS_STRATEGY => first,
        _ => {
            return Err(PatchError::UnexpectedPatchStrategy { strategies: format!("[{}]", strategies.join(" ")) });
        }
    };
    Ok(FieldMeta {
        strategy,
        merge_key: field.and_then(|f| f.patch_merge_key()).unwrap_or(""),
        schema: if list { field.and_then(|f| f.items()) } else { field },
    })
}

/// Merges `patch` into `original` (upstream `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Option<Schema<'_>>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.shift_remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(unknown_directive(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (field_of(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };

        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }

        let same_kind = original.get(&key).map(|current| JsonKind::of(current) == JsonKind::of(&patch_value));
        if same_kind != Some(true) {
            // Absent, or of another type: the patch value is taken as is (a deletion list then
            // has nothing to delete from).
            if !is_delete_list {
                take_patch_value(&mut original, key, patch_value);
            }
            continue;
        }
        let Some(current) = original.get_mut(&key) else {
            continue;
        };
        match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_value)) => {
                let meta = lookup(schema, &key, false)?;
                let taken = std::mem::take(current);
                *current =
                    if meta.strategy == REPLACE { patch_value } else { merge_map(taken, patch_value, meta.schema)? };
            }
            (Value::Array(current), Value::Array(patch_value)) => {
                let meta = lookup(schema, &key, true)?;
                let taken = std::mem::take(current);
                *current = merge_list_field(taken, patch_value, &meta, is_delete_list)?;
            }
            (current, scalar) => *current = scalar,
        }
    }
    Ok(original)
}

/// Stores a patch value for a key the original lacks (or holds with another type): nulls inside
/// it are dropped and any object carrying `$patch` is removed (upstream
/// `discardNullValuesFromPatch` + `removeDirectives`). Other directive keys are kept, as upstream
/// keeps them; typed decoding drops them later.
fn take_patch_value(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(value) => {
            original.insert(key, value);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops every object holding `$patch`; `None` when `value` itself is one.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(map.into_iter().filter_map(|(k, v)| remove_directives(v).map(|v| (k, v))).collect()))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(remove_directives).collect())),
        other => Some(other),
    }
}

/// `$retainKeys`: clears the keys of `original` not listed; every non-null key of the patch must
/// be listed (upstream `applyRetainKeysDirective`).
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeys);
    };
    let listed = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        let exempt =
            value.is_null() || key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER);
        if !exempt && !listed(key) {
            return Err(PatchError::BadRetainKeys);
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// Processes every `$setElementOrder/<field>` together with its `<field>` list: merges the list,
/// then orders the result (upstream `mergePatchIntoOriginal`). Both keys are removed from the
/// patch.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Option<Schema<'_>>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::BadArgType { expected: GO_SLICE, actual: go_type(&order) });
        };
        let field = field_of(&key, SET_ELEMENT_ORDER)?;
        let current = list_at(original, &field)?;
        let patch_list = list_at(patch, &field)?;
        let meta = lookup(schema, &field, true)?;
        check_order(patch_list.as_deref().unwrap_or_default(), &order, meta.merge_key)?;

        let (merged, live_order) = match (&current, &patch_list) {
            (Some(current), None) => (current.clone(), current.clone()),
            (None, Some(added)) => (added.iter().cloned().filter_map(remove_directives).collect(), Vec::new()),
            (Some(current), Some(patch_list)) => {
                let merged = merge_list_field(current.clone(), patch_list.clone(), &meta, false)?;
                let keyed = meta.strategy == MERGE
                    && !meta.merge_key.is_empty()
                    && current.iter().chain(patch_list).all(Value::is_object);
                let live_order =
                    if keyed { live_order_after_merge(current, patch_list, meta.merge_key) } else { current.clone() };
                (merged, live_order)
            }
            (None, None) => continue,
        };

        let (named, server_only) = partition(merged, &order, meta.merge_key)?;
        let kind = element_kind(&[current.as_deref().unwrap_or_default(), patch_list.as_deref().unwrap_or_default()])?;
        let ordered = normalize_element_order(named, server_only, &order, &live_order, meta.merge_key, kind)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// The live list as upstream sees it when it orders a merged `$setElementOrder` list.
///
/// Upstream merges the list in place: deleting items shifts the live list's backing array left
/// (leaving the old tail behind) and appending new items writes into the freed slots. The slice
/// it later ranks server-only items against still spans the original length, so it sees
/// `[kept items.., appended items.., stale tail..]`. The order of kubectl apply results (e.g.
/// where a server-only item lands when one item is replaced by another) depends on this, so it
/// is reproduced here; only merge-key identities matter.
fn live_order_after_merge(current: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let mut backing = current.to_vec();
    let mut len = backing.len();
    let position = |backing: &[Value], len: usize, key: Option<&Value>| {
        backing[..len].iter().position(|item| item.get(merge_key).is_some() && item.get(merge_key) == key)
    };
    let mut replace = false;
    let mut plain = Vec::new();
    for item in patch {
        match item.get(DIRECTIVE).map(Value::as_str) {
            None => plain.push(item),
            Some(Some(DELETE)) => {
                let key = item.get(merge_key);
                while let Some(k) = position(&backing, len, key) {
                    for i in k..len - 1 {
                        backing[i] = backing[i + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some(Some(REPLACE)) => replace = true,
            Some(_) => {}
        }
    }
    if !replace {
        for item in plain {
            if len >= backing.len() {
                break;
            }
            if position(&backing, len, item.get(merge_key)).is_none() {
                backing[len] = item.clone();
                len += 1;
            }
        }
    }
    backing
}

/// The list stored under `field`, if any; anything else there is an error.
fn list_at(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(PatchError::BadArgType { expected: GO_SLICE, actual: go_type(other) }),
    }
}

/// The relative order of the (non-deleting) patch items must agree with `$setElementOrder`, and
/// every patch item must appear there (upstream `validatePatchWithSetOrderList`).
fn check_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> =
        if merge_key.is_empty() { patch.iter().collect() } else { split_deletions(patch.iter().collect())?.0 };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].as_object().is_some_and(|m| m.contains_key(DIRECTIVE)) {
            p += 1;
            continue;
        }
        if merge_key_equal(items[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(PatchError::SetElementOrderMismatch { patch: go_list(patch), order: go_list(order) });
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    Ok(key_value(left, merge_key)? == key_value(right, merge_key)?)
}

/// The merge-key value of a list item, which must be an object holding the key.
fn key_value<'v>(item: &'v Value, merge_key: &str) -> Result<&'v Value, PatchError> {
    let Value::Object(map) = item else {
        return Err(PatchError::BadArgType { expected: GO_MAP, actual: go_type(item) });
    };
    map.get(merge_key).ok_or_else(|| PatchError::MissingMergeKey { item: go_value(item), key: merge_key.to_string() })
}

/// A list field: merged under the `merge` strategy or when it is a deletion list, replaced
/// otherwise (upstream `mergeSliceHandler`).
fn merge_list_field(
    current: Vec<Value>,
    patch: Vec<Value>,
    meta: &FieldMeta<'_>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if meta.strategy == MERGE || is_delete_list { merge_list(current, patch, meta, is_delete_list) } else { Ok(patch) }
}

/// Merges two lists (upstream `mergeSlice`): scalars as a de-duplicated union (or a deletion),
/// objects by merge key after applying `$patch` items; then restores upstream's order.
fn merge_list(
    current: Vec<Value>,
    patch: Vec<Value>,
    meta: &FieldMeta<'_>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let kind = element_kind(&[&current, &patch])?;
    let merge_key = meta.merge_key;

    let (merged, server_order, patch_order) = if kind != JsonKind::Object {
        if is_delete_list {
            return Ok(current.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut both = current.clone();
        both.extend(patch.iter().cloned());
        (dedup_scalars(both), current, patch)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::NoMergeKeyDeclared {
                type_name: meta.schema.and_then(|s| s.name()).unwrap_or("struct").to_string(),
            });
        }
        let (current, patch) = apply_item_directives(current, patch, merge_key)?;
        let merged = merge_by_key(current.clone(), &patch, merge_key, meta.schema)?;
        (merged, current, patch)
    };

    let (named, server_only) = partition(merged, &patch_order, merge_key)?;
    normalize_element_order(named, server_only, &patch_order, &server_order, merge_key, kind)
}

/// Applies `$patch: delete` items (removing every item with that key) and `$patch: replace`
/// (the remaining patch items become the list); returns the new base list and the plain patch
/// items (upstream `mergeSliceWithSpecialElements`).
fn apply_item_directives(
    mut current: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(key) = item.get(merge_key) else {
                    return Err(PatchError::MissingMergeKey { item: go_value(&item), key: merge_key.to_string() });
                };
                ensure_objects(&current)?;
                current.retain(|existing| existing.get(merge_key) != Some(key));
            }
            // Keep scanning: later `$patch` items are dropped too.
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(PatchError::MergeDirectiveInList),
            _ => {
                let Value::Object(map) = &item else {
                    return Err(PatchError::BadArgType { expected: GO_MAP, actual: go_type(&item) });
                };
                return Err(unknown_directive(directive, map));
            }
        }
    }
    if replace { Ok((plain, Vec::new())) } else { Ok((current, plain)) }
}

/// Merges each patch item into the first item with the same merge-key value, or appends it
/// (upstream `mergeSliceWithoutSpecialElements`).
fn merge_by_key(
    mut current: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Option<Schema<'_>>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let key = key_value(item, merge_key)?;
        let Value::Object(item_map) = item else {
            continue;
        };
        match find_by_key(&current, merge_key, key)? {
            Some(i) => {
                let existing = match std::mem::take(&mut current[i]) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                current[i] = Value::Object(merge_map(existing, item_map.clone(), schema)?);
            }
            None => current.push(item.clone()),
        }
    }
    Ok(current)
}

/// The index of the first object whose `merge_key` equals `value`; every item must be an object
/// (upstream `findMapInSliceBasedOnKeyValue`).
fn find_by_key(list: &[Value], merge_key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(PatchError::NotAMap { index });
        };
        if map.get(merge_key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn ensure_objects(list: &[Value]) -> Result<(), PatchError> {
    match list.iter().position(|item| !item.is_object()) {
        Some(index) => Err(PatchError::NotAMap { index }),
        None => Ok(()),
    }
}

/// Splits `merged` into items named by `by` and the rest (upstream
/// `partitionPrimitivesByPresentInList` / `partitionMapsByPresentInList`).
fn partition(merged: Vec<Value>, by: &[Value], merge_key: &str) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = Vec::with_capacity(merged.len());
    let mut rest = Vec::with_capacity(merged.len());
    for item in merged {
        let in_by = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let key = key_value(&item, merge_key)?;
            find_by_key(by, merge_key, key)?.is_some()
        };
        if in_by {
            named.push(item);
        } else {
            rest.push(item);
        }
    }
    Ok((named, rest))
}

/// The common kind of all items of the given lists (upstream `sliceElementType`).
fn element_kind(lists: &[&[Value]]) -> Result<JsonKind, PatchError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let this = JsonKind::of(item);
        match kind {
            None if this == JsonKind::Array => return Err(PatchError::ListOfLists),
            None => kind = Some(this),
            Some(previous) if previous != this => {
                return Err(PatchError::MixedElementTypes { lists: go_lists(lists) });
            }
            Some(_) => {}
        }
    }
    kind.ok_or(PatchError::NoElements)
}

/// Removes duplicates the way upstream's `deduplicateScalars` does: a duplicate is overwritten by
/// the current last item, so the union's order is upstream's, not first-seen order.
fn dedup_scalars(mut items: Vec<Value>) -> Vec<Value> {
    if items.is_empty() {
        return items;
    }
    let mut last = items.len() - 1;
    let mut i = 0;
    while i < last {
        let mut j = i + 1;
        while j <= last {
            if items[i] == items[j] {
                items.swap(j, last);
                items.truncate(last);
                last -= 1;
                // Re-examine position j, which now holds the former last item.
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    items
}

/// The field a `$deleteFromPrimitiveList/<field>` or `$setElementOrder/<field>` key names.
fn field_of(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadPrimitiveList),
        _ => Err(PatchError::BadSetElementOrder),
    }
}

fn unknown_directive(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::UnknownDirective { directive: go_string_verb(directive), map: go_value(&Value::Object(map.clone())) }
}
