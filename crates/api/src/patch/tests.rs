use serde_json::{Map, Value, json};

use super::fixtures::{k8s_defs, merge_item_defs};
use super::{PatchError, json_patch, merge_patch, strategic_merge_patch};
use crate::schema::Schema;

/// Applies `patch` to `original` with the `mergeItem` schema (upstream's test type).
fn apply_merge_item(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let defs = merge_item_defs();
    let schema = Schema::root(&defs, "mergeItem").expect("fixture root");
    strategic_merge_patch(original, patch, schema)
}

fn apply_k8s(root: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let defs = k8s_defs();
    let schema = Schema::root(&defs, root).expect("fixture root");
    strategic_merge_patch(original, patch, schema)
}

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

/// One example from upstream's strategicpatch tests: applying `patch` to `original` gives
/// `expected` (exact JSON equality, list order included).
struct Case {
    name: &'static str,
    original: Value,
    patch: Value,
    expected: Value,
}

fn case(name: &'static str, original: Value, patch: Value, expected: Value) -> Case {
    Case { name, original, patch, expected }
}

fn run_cases(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        match apply_merge_item(&c.original, &c.patch) {
            Ok(got) if got == c.expected && same_order(&got, &c.expected) => {}
            Ok(got) => failures.push(format!("{}: expected {}\n   got {}", c.name, c.expected, got)),
            Err(e) => failures.push(format!("{}: unexpected error {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `Value`'s equality ignores object key order but not list order; compare list order
/// explicitly through the serialized form of sorted-key values.
fn same_order(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Cases from upstream's `customStrategicMergePatchTestCaseData`: patches that the diff code
/// would not generate but the server must accept (old clients, hand-written patches).
#[test]
fn upstream_custom_cases() {
    run_cases(vec![
        case(
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        case(
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        case(
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        case(
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        case("delete all keys from map", json!({"name": 1, "value": 1}), json!({"$patch": "replace"}), json!({})),
        case(
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        case(
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [
                {"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}
            ]}),
            json!({"mergingList": [
                {"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}
            ]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        case(
            "retainKeys map can add a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"value": "bar"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        ),
        case(
            "retainKeys map can delete a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        ),
        case(
            "retainKeys map merge an empty map",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {}}),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        ),
        case(
            "retainKeys list can delete a field when no retainKeys directive present",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        ),
        case(
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [
                {"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}
            ]}),
            json!({"mergingList": [
                {"name": 3, "value": "c"},
                {"name": 1, "value": "a"},
                {"name": 2, "value": "b", "other": "x"}
            ]}),
        ),
        case(
            "server-only items keep their place between patch items",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [
                {"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}
            ]}),
        ),
        case(
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        ),
        case(
            "preserve the order from the patch in a merging int list, with a server-only item",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        case(
            "$setElementOrder names an item missing from the list",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        case(
            "$setElementOrder names an item missing from the int list",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        case(
            "$deleteFromPrimitiveList of a missing item changes nothing",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        ),
        case(
            "$deleteFromPrimitiveList on a null list does not add it",
            json!({"mergingIntList": null}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": null}),
        ),
        case(
            "$deleteFromPrimitiveList on a missing list does not add it",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        ),
        case(
            "$deleteFromPrimitiveList deletes from a merge list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
            json!({"mergingIntList": [1, 3]}),
        ),
        case(
            "$deleteFromPrimitiveList deletes from a list without merge strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
    ]);
}

/// Cases from upstream's `strategicMergePatchRawTestCases`: the three-way patch kubectl apply
/// computes, applied to the live ("current") object.
#[test]
fn upstream_apply_cases() {
    run_cases(vec![
        case(
            "nested patch merge with empty list",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]
            }),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        case(
            "directives are dropped from a list added to a new field",
            json!({"name": "hi"}),
            json!({"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}]}),
        ),
        case(
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        case(
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        case(
            "merge lists of maps",
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
            }),
            json!({"mergingList": [
                {"name": 4, "value": 4},
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3}
            ]}),
        ),
        case(
            "add field to map in merging list with conflict",
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 3, "value": 2, "other": "b"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]
            }),
            json!({"mergingList": [
                {"name": 1, "value": 1, "other": "a"},
                {"name": 2, "value": 2},
                {"name": 3, "value": 2, "other": "b"}
            ]}),
        ),
        case(
            "delete missing map from merging list with conflict",
            json!({"mergingList": [{"name": 3, "other": "a"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}],
                "mergingList": [{"name": 2}, {"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 2}, {"name": 3, "other": "a"}]}),
        ),
        case(
            "add map and delete map from merging list",
            json!({"mergingList": [
                {"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [
                {"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}
            ]}),
        ),
        case(
            "add map and delete map from merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]}),
        ),
        case(
            "delete field from map in merging list",
            json!({"mergingList": [
                {"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": null}]
            }),
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}
            ]}),
        ),
        case(
            "replace non merging list nested in merging list",
            json!({"mergingList": [
                {"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                {"name": 2, "other": "b"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]
            }),
            json!({"mergingList": [
                {"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
                {"name": 2, "other": "b"}
            ]}),
        ),
        case(
            "reorder nested merging list through a nested $setElementOrder",
            json!({"mergingList": [
                {"name": 1, "other": "a", "mergingList": [{"name": 2, "value": 2, "other": "d"}]},
                {"name": 2, "other": "b"}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                    "name": 1,
                    "mergingList": [{"name": 1, "value": 1}]
                }]
            }),
            json!({"mergingList": [
                {"name": 1, "other": "a", "mergingList": [
                    {"name": 2, "value": 2, "other": "d"}, {"name": 1, "value": 1}
                ]},
                {"name": 2, "other": "b"}
            ]}),
        ),
        case(
            "add map to merging list by pointer",
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 3}]}),
            json!({
                "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
                "mergeItemPtr": [{"name": 2}]
            }),
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 3}]}),
        ),
        case(
            "merge lists of scalars",
            json!({"mergingIntList": [1, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 3, 4]}),
        ),
        case(
            "add an item in a list of primitives and preserve order",
            json!({"mergingIntList": [1, 4, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 4, 2]}),
        ),
        case(
            "delete an item in a list of primitives and preserve order",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({
                "$setElementOrder/mergingIntList": [2, 1],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [2, 1]}),
        ),
        case(
            "delete an item in a list and preserve order",
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "$patch": "delete"}]
            }),
            json!({"mergingList": [
                {"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}
            ]}),
        ),
        case(
            "add and delete an item in a list and preserve order",
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
            ]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}]
            }),
            json!({"mergingList": [
                {"name": 4, "value": 4}, {"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}
            ]}),
        ),
        case(
            "set elements order in a list with server-only items 2",
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 9},
                {"name": 3, "value": 3}, {"name": 4, "value": 4}
            ]}),
            json!({"$setElementOrder/mergingList": [
                {"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}
            ]}),
            json!({"mergingList": [
                {"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 9},
                {"name": 4, "value": 4}, {"name": 3, "value": 3}
            ]}),
        ),
        case(
            "set elements order in a int list with server-only items 3",
            json!({"mergingIntList": [1, 2, 7, 9, 8, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]}),
            json!({"mergingIntList": [2, 1, 7, 9, 8, 4, 3]}),
        ),
        case(
            "set element order for a merging list with duplicate",
            json!({"mergingList": [
                {"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3},
                {"name": 2, "value": "dup2"}, {"name": 4}
            ]}),
            json!({"$setElementOrder/mergingList": [
                {"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}
            ]}),
            json!({"mergingList": [
                {"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"},
                {"name": 1}, {"name": 4}, {"name": 3}
            ]}),
        ),
        case(
            "set element order for a merging int list with duplicate",
            json!({"mergingIntList": [1, 2, 3, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]}),
            json!({"mergingIntList": [2, 2, 1, 4, 3]}),
        ),
        case(
            "delete and reorder in one list, reorder in another",
            json!({
                "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": "b"}],
                "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
                "mergingList": [{"$patch": "delete", "name": "a"}]
            }),
            json!({
                "mergingList": [{"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]
            }),
        ),
    ]);
}

/// Upstream's retainKeys cases (`retainKeysMap` has strategy `retainKeys`,
/// `retainKeysMergingList` has `merge,retainKeys`).
#[test]
fn upstream_retain_keys_cases() {
    run_cases(vec![
        case(
            "retainKeys map should clear defaulted field (discriminated union)",
            json!({"retainKeysMap": {"name": "type1", "value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}}),
            json!({"retainKeysMap": {"name": "type2", "other": "bar"}}),
        ),
        case(
            "retainKeys map adds a field and clears a field",
            json!({"retainKeysMap": {"name": "foo", "other": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        ),
        case(
            "retainKeys map deletes a field and clears a field",
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        ),
        case(
            "retainKeys map adds a field in a nested map",
            json!({"retainKeysMap": {
                "name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key3": "c"}
            }}),
            json!({"retainKeysMap": {
                "$retainKeys": ["name", "simpleMap", "value"], "simpleMap": {"key2": "b"}
            }}),
            json!({"retainKeysMap": {
                "name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key2": "b", "key3": "c"}
            }}),
        ),
        case(
            "retainKeys map deletes nested non-merging list",
            json!({"retainKeysMap": {"name": "foo", "nonMergingList": [{"name": "a"}, {"name": "b"}]}}),
            json!({"retainKeysMap": {
                "$retainKeys": ["name", "value"], "value": "bar", "nonMergingList": null
            }}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        ),
        case(
            "retainKeys map nested merging int list with no change",
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
            json!({"retainKeysMap": {
                "$retainKeys": ["mergingIntList", "name", "value"],
                "$setElementOrder/mergingIntList": [1, 2],
                "value": "bar"
            }}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "mergingIntList": [1, 2, 3]}}),
        ),
        case(
            "retainKeys map adds an item in nested merging int list",
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
            json!({"retainKeysMap": {
                "$setElementOrder/mergingIntList": [1, 2, 4],
                "$retainKeys": ["mergingIntList", "name"],
                "mergingIntList": [4]
            }}),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 4, 3]}}),
        ),
        case(
            "retainKeys map adds an item and deletes an item in nested merging int list",
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}}),
            json!({"retainKeysMap": {
                "$retainKeys": ["mergingIntList", "name"],
                "mergingIntList": [5],
                "$deleteFromPrimitiveList/mergingIntList": [2],
                "$setElementOrder/mergingIntList": [1, 3, 5]
            }}),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 5, 4]}}),
        ),
        case(
            "retainKeys map deletes an item in nested merging list",
            json!({"retainKeysMap": {
                "name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]
            }}),
            json!({"retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}],
                "mergingList": [{"name": "b", "$patch": "delete"}]
            }}),
            json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "x"}]}}),
        ),
        case(
            "retainKeys list of maps clears a field",
            json!({"retainKeysMergingList": [
                {"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}
            ]}),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        ),
        case(
            "retainKeys list of maps changes a field and clears a field",
            json!({"retainKeysMergingList": [
                {"name": "bar"}, {"name": "foo", "value": "old", "other": "x"}
            ]}),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [
                    {"$retainKeys": ["name", "value"], "name": "foo", "value": "new"}
                ]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "new"}]}),
        ),
    ]);
}

/// Upstream's `TestUnknownField` and `replacingItem` cases: fields without metadata.
#[test]
fn upstream_unknown_field_and_replace_cases() {
    run_cases(vec![
        case(
            "null in a new nested object is discarded",
            json!({"name": "foo"}),
            json!({"complex_nullable": {"key": {"keynotnull": "value", "keynull": null}}}),
            json!({"name": "foo", "complex_nullable": {"key": {"keynotnull": "value"}}}),
        ),
        case(
            "a new object of nulls becomes empty",
            json!({}),
            json!({"complex": {"nested": null}}),
            json!({"complex": {}}),
        ),
        case(
            "nulls are filtered from objects inside a new list",
            json!({}),
            json!({"complex_nullable": [{"inner_one": {"key_one": "foo", "key_two": null}}]}),
            json!({"complex_nullable": [{"inner_one": {"key_one": "foo"}}]}),
        ),
        case(
            "nulls in a list of scalars are kept",
            json!({}),
            json!({"complex_nullable": ["key1", null, "key2"]}),
            json!({"complex_nullable": ["key1", null, "key2"]}),
        ),
        case(
            "null values in the original are preserved",
            json!({"complex": {"key": null}, "thing": null}),
            json!({"nested": {"value": 5}}),
            json!({"complex": {"key": null}, "nested": {"value": 5}, "thing": null}),
        ),
        case(
            "removed only",
            json!({"name": "foo", "scalar": true, "complex": {"nested": true}, "array": [1, 2, 3]}),
            json!({"complex": null, "scalar": null}),
            json!({"name": "foo", "array": [1, 2, 3]}),
        ),
        case(
            "unknown nested objects merge, unknown lists are replaced",
            json!({"array": [1, 2, 3], "complex": {"nested": true, "keep": 1}}),
            json!({"array": [4], "complex": {"nested": false}}),
            json!({"array": [4], "complex": {"nested": false, "keep": 1}}),
        ),
        case(
            "replace RawExtension field, rest unchanged",
            json!({
                "name": "my-object",
                "mergingList": [{"name": 1}, {"name": 3}],
                "replacingItem": {"Some": "Generic", "Yaml": "Inside", "The": "RawExtension", "Field": "Period"}
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 2}],
                "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"}
            }),
            json!({
                "name": "my-object",
                "mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"}
            }),
        ),
    ]);
}

/// Directive behaviour upstream has but does not spell out in its tables.
#[test]
fn directive_edge_cases() {
    run_cases(vec![
        case(
            "$patch: replace keeps nested directives verbatim (as upstream does)",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "replace", "b": "2", "c": {"$patch": "delete"}}}),
            json!({"simpleMap": {"b": "2", "c": {"$patch": "delete"}}}),
        ),
        case(
            "a new field holding only a $patch map is not added",
            json!({"name": "x"}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"name": "x"}),
        ),
        case(
            "$patch: replace on a merge list replaces it with the remaining items",
            json!({"mergingList": [{"name": 1, "value": "a"}, {"name": 2}]}),
            json!({"mergingList": [{"name": 3}, {"$patch": "replace"}, {"name": 1}]}),
            json!({"mergingList": [{"name": 3}, {"name": 1}]}),
        ),
        case(
            "a replace-strategy field is replaced wholesale",
            json!({"replacingItem": {"a": 1, "b": 2}}),
            json!({"replacingItem": {"b": 3}}),
            json!({"replacingItem": {"b": 3}}),
        ),
        case(
            "a type change replaces the value",
            json!({"simpleMap": {"a": "1"}, "value": "x"}),
            json!({"simpleMap": "now-a-string", "value": {"now": "a map", "gone": null}}),
            json!({"simpleMap": "now-a-string", "value": {"now": "a map"}}),
        ),
        case(
            "$deleteFromPrimitiveList with null deletes the whole field (upstream quirk)",
            json!({"mergingIntList": [1, 2], "name": "n"}),
            json!({"$deleteFromPrimitiveList/mergingIntList": null}),
            json!({"name": "n"}),
        ),
        case(
            "null patch value for a missing key is ignored",
            json!({"name": "n"}),
            json!({"value": null}),
            json!({"name": "n"}),
        ),
        case(
            "merging an empty list into a merge list keeps it",
            json!({"mergingIntList": [2, 1]}),
            json!({"mergingIntList": []}),
            json!({"mergingIntList": [2, 1]}),
        ),
    ]);
}

/// Upstream ranks items missing from the order list with a comparator that calls them "less"
/// than anything; Go's insertion sort then moves each one to the front, reversing them. An
/// empty `$setElementOrder` (which kubectl never sends) shows it.
#[test]
fn unordered_items_are_ranked_like_go_sort_slice_stable() {
    let got =
        apply_merge_item(&json!({}), &json!({"$setElementOrder/mergingIntList": [], "mergingIntList": [1, 2, 3]}))
            .expect("patch");
    assert_eq!(got, json!({"mergingIntList": [3, 2, 1]}));
}

/// Long lists go through the merge phase of Go's stable sort (blocks of 20): a kubectl apply
/// that adds an env var in the middle of 30 keeps every item in `$setElementOrder`'s order.
#[test]
fn long_lists_follow_set_element_order() {
    let names: Vec<String> = (0..30).map(|i| format!("VAR_{i:02}")).collect();
    let env: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": "x"})).collect();
    let mut live = live_deployment();
    live["spec"]["template"]["spec"]["containers"][0]["env"] = Value::Array(env.clone());

    let mut order: Vec<Value> = names.iter().rev().map(|n| json!({"name": n})).collect();
    order.insert(15, json!({"name": "NEW"}));
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{
            "name": "app",
            "$setElementOrder/env": order,
            "env": [{"name": "NEW", "value": "y"}]
        }]
    }}}});
    let got = apply_k8s(DEPLOYMENT, &live, &patch).expect("apply");
    let got_names: Vec<&str> = at(&got, &["spec", "template", "spec", "containers", "0", "env"])
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    let want: Vec<&str> = order.iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(got_names, want);
}

#[test]
fn empty_and_null_patches_are_identity() {
    let original = json!({"name": "a", "mergingList": [{"name": 1}], "simpleMap": {"k": "v"}});
    assert_eq!(apply_merge_item(&original, &json!({})).expect("empty"), original);
    assert_eq!(apply_merge_item(&original, &json!(null)).expect("null"), original);
}

#[test]
fn delete_directive_at_the_root_empties_the_object() {
    let got = apply_merge_item(&json!({"name": "a"}), &json!({"$patch": "delete"})).expect("delete");
    assert_eq!(got, json!({}));
}

/// Errors, with upstream's messages and the status the API server must use.
#[test]
fn errors_carry_upstream_messages_and_statuses() {
    let cases: Vec<(&str, Value, Value, &str, u16)> = vec![
        (
            "missing merge key",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            "map: map[value:b] does not contain declared merge key: name",
            500,
        ),
        (
            "delete item without merge key",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "delete", "value": "b"}]}),
            "map: map[$patch:delete value:b] does not contain declared merge key: name",
            500,
        ),
        (
            "unknown directive on a map",
            json!({"simpleMap": {"a": "b"}}),
            json!({"simpleMap": {"$patch": "merge"}}),
            "unknown patch type: merge in map: map[$patch:merge]",
            500,
        ),
        (
            "non-string directive on a map",
            json!({}),
            json!({"$patch": true}),
            "unknown patch type: %!s(bool=true) in map: map[$patch:true]",
            500,
        ),
        (
            "unknown directive in a list",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "frobnicate"}]}),
            "unknown patch type: frobnicate in map: map[$patch:frobnicate name:1]",
            500,
        ),
        (
            "merge directive in a list",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "merge"}]}),
            "merging lists cannot yet be specified in the patch",
            500,
        ),
        (
            "$setElementOrder disagrees with the patch list",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
            "the order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match \
             $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]",
            500,
        ),
        (
            "$setElementOrder disagrees with the int patch list",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            "doesn't match",
            500,
        ),
        (
            "$setElementOrder is not a list",
            json!({"mergingIntList": [1]}),
            json!({"$setElementOrder/mergingIntList": "x"}),
            "expected a []interface {}, but received a string",
            500,
        ),
        (
            "$setElementOrder without a field",
            json!({}),
            json!({"$setElementOrder": [1]}),
            "invalid patch format of setElementOrder list",
            400,
        ),
        (
            "$deleteFromPrimitiveList without a field",
            json!({}),
            json!({"$deleteFromPrimitiveList": [1]}),
            "invalid patch format of primitive list",
            400,
        ),
        (
            "$retainKeys is not a list",
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": "name"}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "$retainKeys does not list a patched key",
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "list of lists",
            json!({"mergingIntList": [[1]]}),
            json!({"mergingIntList": [[2]]}),
            "lists of lists are not supported",
            422,
        ),
        (
            "mixed element types",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": ["a"]}),
            "list element types are not identical: [[1 2] [a]]",
            500,
        ),
        (
            "integers and floats are different kinds",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2.5]}),
            "list element types are not identical: [[1 2] [2.5]]",
            500,
        ),
        (
            "objects in a primitive merge list without merge key",
            json!({"keylessMergeList": [{"name": "a"}]}),
            json!({"keylessMergeList": [{"name": "b"}]}),
            "cannot merge lists without merge key for mergeItem",
            500,
        ),
        (
            "scalars in a list merged by key",
            json!({"mergingList": ["a"]}),
            json!({"mergingList": ["b"]}),
            "expected a map[string]interface {}, but received a string",
            500,
        ),
        (
            "empty list ordered by $setElementOrder",
            json!({"mergingIntList": []}),
            json!({"$setElementOrder/mergingIntList": [1]}),
            "no elements in any of the given slices",
            500,
        ),
        (
            "conflicting strategies in the schema",
            json!({"badStrategy": {"a": "b"}}),
            json!({"badStrategy": {"a": "c"}}),
            "unexpected patch strategy: [merge replace]",
            500,
        ),
        ("patch is not an object", json!({}), json!([1]), "invalid JSON document", 400),
        ("original is not an object", json!([]), json!({}), "invalid JSON document", 400),
    ];
    for (name, original, patch, message, status) in cases {
        let err = match apply_merge_item(&original, &patch) {
            Err(e) => e,
            Ok(v) => panic!("{name}: expected an error, got {v}"),
        };
        assert!(
            err.to_string().contains(message),
            "{name}: message {:?} does not contain {message:?}",
            err.to_string()
        );
        assert_eq!(err.status_code(), status, "{name}");
    }
}

/// A live Deployment as the API server stores it after defaulting.
fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "6b1a",
            "resourceVersion": "41",
            "generation": 1,
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"
            },
            "finalizers": ["example.com/a", "example.com/b"]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {"name": "C", "value": "3"}
                            ],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        },
                        {
                            "name": "sidecar",
                            "image": "busybox:1.36",
                            "command": ["sleep", "infinity"],
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    })
}

/// Navigates `v` by object keys and list indices.
fn at<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, step| match step.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[*step],
    })
}

/// `kubectl apply` run a second time after the user bumped the image, dropped env var `B` and
/// added a port: the client-side three-way patch kubectl 1.32 sends.
#[test]
fn kubectl_apply_second_run() {
    let patch = json!({
        "metadata": {
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"
            }
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                        "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "image": "nginx:1.28",
                        "name": "app",
                        "ports": [{"containerPort": 443, "protocol": "TCP"}]
                    }]
                }
            }
        }
    });
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("apply");

    let mut expected = live_deployment();
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{\"new\":true}");
    let app = &mut expected["spec"]["template"]["spec"]["containers"][0];
    app["image"] = json!("nginx:1.28");
    app["env"] = json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]);
    app["ports"] = json!([
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 443, "protocol": "TCP"}
    ]);
    assert_eq!(got, expected);
    assert!(same_order(&got, &expected));
}

/// `kubectl apply` switching the rollout strategy: `retainKeys` clears `rollingUpdate`.
#[test]
fn kubectl_apply_strategy_switch_uses_retain_keys() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("apply");
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

/// `kubectl apply` turning an emptyDir volume into a configMap one (`merge,retainKeys`).
#[test]
fn kubectl_apply_volume_source_switch() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]
    }}}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("apply");
    assert_eq!(
        at(&got, &["spec", "template", "spec", "volumes"]),
        &json!([{"name": "data", "configMap": {"name": "cfg"}}])
    );
}

/// `kubectl set image deployment/web app=nginx:1.29`.
#[test]
fn kubectl_set_image() {
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"image": "nginx:1.29", "name": "app"}]
    }}}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("set image");
    let mut expected = live_deployment();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.29");
    assert_eq!(got, expected);
    assert!(same_order(&got, &expected));
}

/// `kubectl rollout restart deployment/web`.
#[test]
fn kubectl_rollout_restart() {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }}}}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("restart");
    let mut expected = live_deployment();
    expected["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"});
    assert_eq!(got, expected);
}

/// `kubectl edit`: the two-way patch between the fetched and the edited object — scale up,
/// drop a label, reorder containers, remove a finalizer, delete the sidecar's command.
#[test]
fn kubectl_edit() {
    let patch = json!({
        "metadata": {
            "labels": {"tier": null},
            "$setElementOrder/finalizers": ["example.com/b"],
            "$deleteFromPrimitiveList/finalizers": ["example.com/a"]
        },
        "spec": {
            "replicas": 5,
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"command": null, "name": "sidecar"}]
            }}
        }
    });
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("edit");
    assert_eq!(got["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(got["metadata"]["finalizers"], json!(["example.com/b"]));
    assert_eq!(got["spec"]["replicas"], json!(5));
    let containers = at(&got, &["spec", "template", "spec", "containers"]);
    assert_eq!(containers[0]["name"], json!("sidecar"));
    assert!(containers[0].get("command").is_none());
    assert_eq!(containers[1]["name"], json!("app"));
    assert_eq!(containers[1]["image"], json!("nginx:1.27"));
    // Untouched parts survive, including status and defaults.
    assert_eq!(got["status"], live_deployment()["status"]);
    assert_eq!(got["spec"]["strategy"], live_deployment()["spec"]["strategy"]);
}

/// A finalizer added by a controller's strategic patch is merged as a set.
#[test]
fn finalizers_merge_as_a_set() {
    let patch = json!({"metadata": {"finalizers": ["example.com/b", "example.com/c"]}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("finalizers");
    assert_eq!(got["metadata"]["finalizers"], json!(["example.com/a", "example.com/b", "example.com/c"]));
}

/// The selector is a plain (`atomic` map-type) struct: SMP still merges it key by key, as
/// upstream does; map-type only matters to server-side apply.
#[test]
fn atomic_map_type_is_ignored_by_strategic_merge() {
    let patch = json!({"spec": {"selector": {"matchLabels": {"extra": "x"}}}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("selector");
    assert_eq!(got["spec"]["selector"]["matchLabels"], json!({"app": "web", "extra": "x"}));
}

/// Status conditions (merge key `type`) as a kubelet-style status patch sends them.
#[test]
fn status_conditions_merge_by_type() {
    let patch = json!({"status": {"conditions": [
        {"type": "Progressing", "status": "True"},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
    ]}});
    let got = apply_k8s(DEPLOYMENT, &live_deployment(), &patch).expect("status");
    assert_eq!(
        got["status"]["conditions"],
        json!([
            {"type": "Progressing", "status": "True"},
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
        ])
    );
}

#[test]
fn json_patch_applies_operations_in_order() {
    let doc = json!({"metadata": {"name": "a", "finalizers": ["x"]}, "spec": {"replicas": 1}});
    let patch = json!([
        {"op": "test", "path": "/metadata/name", "value": "a"},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "y"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
        {"op": "move", "from": "/metadata/generateName", "path": "/metadata/alias"}
    ]);
    let got = json_patch(&doc, &patch).expect("json patch");
    assert_eq!(got, json!({"metadata": {"name": "a", "finalizers": ["y"], "alias": "a"}, "spec": {"replicas": 3}}));
    assert_eq!(json_patch(&doc, &json!([])).expect("empty"), doc);
    assert_eq!(json_patch(&doc, &json!(null)).expect("null"), doc);
}

#[test]
fn json_patch_errors() {
    let doc = json!({"metadata": {"name": "a", "resourceVersion": "5"}});
    let cases: Vec<(Value, &str, u16)> = vec![
        (
            json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}]),
            "testing value /metadata/resourceVersion failed: test failed",
            422,
        ),
        (
            json!([{"op": "test", "path": "/metadata/uid", "value": "4"}]),
            "test operation does not apply: is missing path: /metadata/uid: missing value",
            422,
        ),
        (
            json!([{"op": "remove", "path": "/spec"}]),
            "remove operation does not apply: doc is missing path: \"/spec\": missing value",
            422,
        ),
        (
            json!([{"op": "replace", "path": "/spec/x", "value": 1}]),
            "replace operation does not apply: doc is missing key: /spec/x: missing value",
            422,
        ),
        (
            json!([{"op": "add", "path": "/spec/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/spec/x\": missing value",
            422,
        ),
        (
            json!([{"op": "move", "from": "/nope", "path": "/x"}]),
            "move operation does not apply: doc is missing from path: /nope: missing value",
            422,
        ),
        (
            json!([{"op": "copy", "from": "/nope", "path": "/x"}]),
            "copy operation does not apply: doc is missing from path: /nope: missing value",
            422,
        ),
        (json!([{"op": "frobnicate", "path": "/x"}]), "Unexpected kind: frobnicate", 422),
        (json!([{"path": "/x"}]), "Unexpected kind: unknown", 422),
        (json!([null]), "Unexpected kind: unknown", 422),
        (json!([{"op": "add"}]), "invalid JSON patch operation 0", 422),
        (json!({"op": "add"}), "json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400),
        (json!(["add"]), "json: cannot unmarshal string into Go value of type jsonpatch.Operation", 400),
    ];
    for (patch, message, status) in cases {
        let err = match json_patch(&doc, &patch) {
            Err(e) => e,
            Ok(v) => panic!("{patch}: expected an error, got {v}"),
        };
        assert!(err.to_string().contains(message), "{patch}: {:?} does not contain {message:?}", err.to_string());
        assert_eq!(err.status_code(), status, "{patch}");
    }

    // A failed operation leaves nothing half-applied.
    let patch = json!([
        {"op": "replace", "path": "/metadata/name", "value": "b"},
        {"op": "test", "path": "/metadata/name", "value": "a"}
    ]);
    assert!(json_patch(&doc, &patch).is_err());

    // A move to the root followed by a failure: the json-patch crate's own undo would panic.
    let patch = json!([
        {"op": "move", "from": "/metadata", "path": ""},
        {"op": "test", "path": "/nope", "value": 1}
    ]);
    let err = json_patch(&doc, &patch).expect_err("second op fails");
    assert_eq!(err.status_code(), 422);
    let moved = json_patch(&doc, &json!([{"op": "move", "from": "/metadata", "path": ""}])).expect("move to root");
    assert_eq!(moved, json!({"name": "a", "resourceVersion": "5"}));

    let too_many =
        Value::Array(vec![json!({"op": "test", "path": "", "value": null}); super::MAX_JSON_PATCH_OPERATIONS + 1]);
    let err = json_patch(&doc, &too_many).expect_err("too many");
    assert_eq!(err.status_code(), 413);
}

#[test]
fn merge_patch_is_rfc_7386() {
    let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"list": [1, 2]}});
    let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"list": [3]}});
    assert_eq!(
        merge_patch(&doc, &patch).expect("merge"),
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"list": [3]}})
    );
    for bad in [json!(null), json!([1]), json!("x"), json!(3)] {
        let err = merge_patch(&doc, &bad).expect_err("not an object");
        assert_eq!(err.to_string(), "Invalid JSON Patch");
        assert_eq!(err.status_code(), 400);
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Field names the `mergeItem` schema knows, plus unknown ones and directive keys, so
    /// random documents hit every code path.
    const KEYS: &[&str] = &[
        "name",
        "value",
        "other",
        "mergingList",
        "nonMergingList",
        "mergingIntList",
        "nonMergingIntList",
        "mergeItemPtr",
        "simpleMap",
        "replacingItem",
        "retainKeysMap",
        "retainKeysMergingList",
        "keylessMergeList",
        "unknown",
        "$patch",
        "$retainKeys",
        "$setElementOrder/mergingList",
        "$setElementOrder/mergingIntList",
        "$setElementOrder/unknown",
        "$deleteFromPrimitiveList/mergingIntList",
        "$deleteFromPrimitiveList/mergingList",
        "$deleteFromPrimitiveList",
    ];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(Value::from),
            Just(json!(1.5)),
            prop::sample::select(vec!["a", "b", "delete", "replace", "merge", "name"]).prop_map(Value::from),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                    Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    fn any_object() -> impl Strategy<Value = Value> {
        prop::collection::vec((prop::sample::select(KEYS), any_json()), 0..6)
            .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    /// JSON without directive keys, nulls only as object values, lists of scalars only: the
    /// documents on which strategic merge without metadata and RFC 7386 agree.
    fn plain_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(Value::from),
            prop::sample::select(vec!["a", "b"]).prop_map(Value::from),
            prop::collection::vec((0i64..3).prop_map(Value::from), 0..3).prop_map(Value::Array),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop::collection::vec(
                (prop::sample::select(vec!["p", "q", "r"]), prop_oneof![3 => inner, 1 => Just(Value::Null)]),
                0..4,
            )
            .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        })
    }

    fn plain_object() -> impl Strategy<Value = Value> {
        plain_json().prop_map(|v| match v {
            Value::Object(_) => v,
            other => json!({ "p": other }),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random patches against random originals never panic, with or without metadata.
        #[test]
        fn never_panics(original in any_object(), patch in any_json()) {
            let _ = apply_merge_item(&original, &patch);
            let _ = apply_k8s(DEPLOYMENT, &original, &patch);
            let _ = json_patch(&original, &patch);
            let _ = merge_patch(&original, &patch);
        }

        /// Patches shaped like real ones (objects at the top, lists of keyed objects).
        #[test]
        fn never_panics_on_keyed_lists(
            original in prop::collection::vec((0i64..4, any_json()), 0..6),
            patch in prop::collection::vec((0i64..5, any_json(), any::<u8>()), 0..6),
            order in prop::collection::vec(0i64..5, 0..5),
        ) {
            let original: Vec<Value> =
                original.into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            let patch_items: Vec<Value> = patch
                .into_iter()
                .map(|(k, v, d)| match d % 4 {
                    0 => json!({"name": k, "$patch": "delete"}),
                    1 => json!({"name": k, "mergingList": v}),
                    _ => json!({"name": k, "other": v}),
                })
                .collect();
            let order: Vec<Value> = order.into_iter().map(|k| json!({"name": k})).collect();
            let original = json!({"mergingList": original, "retainKeysMergingList": []});
            let patch = json!({"mergingList": patch_items, "$setElementOrder/mergingList": order});
            let _ = apply_merge_item(&original, &patch);
        }

        #[test]
        fn empty_patch_is_identity(original in any_object()) {
            let got = apply_merge_item(&original, &json!({}));
            prop_assert_eq!(got.ok(), Some(original));
        }

        /// Without metadata, strategic merge behaves like RFC 7386 merge patch.
        #[test]
        fn no_metadata_agrees_with_rfc_7386(original in plain_object(), patch in plain_object()) {
            let defs = Map::new();
            let none = Schema::new(&defs, &Value::Null);
            let smp = strategic_merge_patch(&original, &patch, none);
            let rfc = merge_patch(&original, &patch);
            prop_assert_eq!(smp.ok(), rfc.ok());
        }

        /// `$patch: replace` in a merge list yields exactly the other patch items.
        #[test]
        fn replace_directive_replaces_the_list(
            original in prop::collection::btree_map(0i64..8, "[a-c]{0,2}", 0..6),
            replacement in prop::collection::btree_map(0i64..8, "[a-c]{0,2}", 0..6),
        ) {
            let original: Vec<Value> =
                original.into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            let items: Vec<Value> =
                replacement.into_iter().rev().map(|(k, v)| json!({"name": k, "other": v})).collect();
            let mut patch_list = vec![json!({"$patch": "replace"})];
            patch_list.extend(items.iter().cloned());
            let got = apply_merge_item(
                &json!({"mergingList": original}),
                &json!({"mergingList": patch_list}),
            );
            prop_assert_eq!(got.ok(), Some(json!({"mergingList": items})));
        }

        /// A primitive merge list becomes the union of both lists, without duplicates.
        #[test]
        fn primitive_merge_list_is_a_union(
            original in prop::collection::btree_set(0i64..10, 0..6),
            patch in prop::collection::vec(0i64..10, 0..6),
        ) {
            let original: Vec<i64> = original.into_iter().collect();
            let got = apply_merge_item(
                &json!({"mergingIntList": original}),
                &json!({"mergingIntList": patch}),
            ).expect("merge");
            let mut got: Vec<i64> = got["mergingIntList"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            got.sort_unstable();
            let mut expected: Vec<i64> = original.iter().chain(patch.iter()).copied().collect();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(got, expected);
        }

        /// Merging a keyed list keeps every item once per key, patch values winning.
        #[test]
        fn keyed_merge_list_merges_by_key(
            original in prop::collection::btree_map(0i64..8, "[a-c]", 0..6),
            patch in prop::collection::btree_map(0i64..8, "[x-z]", 0..6),
        ) {
            let original_list: Vec<Value> =
                original.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            let patch_list: Vec<Value> =
                patch.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            let got = apply_merge_item(
                &json!({"mergingList": original_list}),
                &json!({"mergingList": patch_list}),
            ).expect("merge");
            let mut expected = original.clone();
            expected.extend(patch.clone());
            let mut seen: Vec<(i64, String)> = got["mergingList"]
                .as_array()
                .map(|a| a.iter().map(|i| (
                    i["name"].as_i64().unwrap_or(-1),
                    i["value"].as_str().unwrap_or_default().to_string(),
                )).collect())
                .unwrap_or_default();
            seen.sort();
            prop_assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());
        }
    }
}
