//! `x-kubernetes-list-type: set|map` invariants on custom resources (upstream's
//! `schema/listtype`): set items are unique, map items are objects with unique keys.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::structural::Structural;
use crate::field::{ErrorList, FieldError, Path};

/// Checks every set and map list in `v`.
pub(crate) fn validate(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    match v {
        Value::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in first_repeats(items.iter().map(|x| Some(x.to_string()))) {
                        errs.push(FieldError::duplicate(&path.index(i), &items[i]));
                    }
                }
                Some("map") => validate_map_list(items, s, path, errs),
                _ => {}
            }
            if let Some(is) = s.items.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    validate(item, is, &path.index(i), errs);
                }
            }
        }
        Value::Object(map) => {
            for (k, child) in map {
                if let Some(cs) = s.field(k) {
                    validate(child, cs, &path.child(k), errs);
                }
            }
        }
        _ => {}
    }
}

fn validate_map_list(items: &[Value], s: &Structural, path: &Path, errs: &mut ErrorList) {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        errs.push(FieldError::invalid(&path.index(i), &items[i], "must be an object for an array of list-type map"));
        return;
    }
    let item_schema = s.items.as_deref();
    // A missing key takes the key property's default, as upstream (so `{}` and `{port: 80}` with
    // a default of 80 collide).
    let key_of = |x: &Value| -> Option<Map<String, Value>> {
        let obj = x.as_object()?;
        let mut key = Map::new();
        for k in &s.list_map_keys {
            let v = obj
                .get(k)
                .cloned()
                .or_else(|| item_schema.and_then(|is| is.properties.get(k)).and_then(|p| p.default.clone()));
            if let Some(v) = v {
                key.insert(k.clone(), v);
            }
        }
        Some(key)
    };
    let keys: Vec<Option<Map<String, Value>>> = items.iter().map(key_of).collect();
    for i in first_repeats(keys.iter().map(|k| k.as_ref().map(|k| Value::Object(k.clone()).to_string()))) {
        if let Some(k) = &keys[i] {
            errs.push(FieldError::duplicate(&path.index(i), &Value::Object(k.clone())));
        }
    }
}

/// Indices of the second appearance of each repeated value (`None`s are skipped).
fn first_repeats(values: impl Iterator<Item = Option<String>>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, v) in values.enumerate() {
        let Some(v) = v else { continue };
        let n = seen.entry(v).or_insert(0);
        *n += 1;
        if *n == 2 {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_in_sets_and_maps() {
        let s = Structural::from_value(&json!({"type": "object", "properties": {
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                      "items": {"type": "object", "properties": {"port": {"type": "integer"},
                                "protocol": {"type": "string", "default": "TCP"}}}},
            "routes": {"type": "array", "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["port", "protocol"],
                       "items": {"type": "object", "properties": {"port": {"type": "integer"},
                                 "protocol": {"type": "string", "default": "TCP"}}}},
        }}));
        let v = json!({
            "tags": ["a", "b", "a", "a"],
            "ports": [{"port": 80}, {"port": 443}, {"port": 80, "protocol": "UDP"}],
            "routes": [{"port": 80}, {"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}],
        });
        let mut errs = ErrorList::new();
        validate(&v, &s, &Path::new("spec"), &mut errs);
        let mut msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        msgs.sort();
        assert_eq!(
            msgs,
            [
                "spec.ports[2]: Duplicate value: {\"port\":80}",
                "spec.routes[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
                "spec.tags[2]: Duplicate value: \"a\"",
            ]
        );
        let mut errs = ErrorList::new();
        validate(&json!({"ports": [1]}), &s, &Path::new("spec"), &mut errs);
        assert_eq!(
            errs[0].to_string(),
            "spec.ports[0]: Invalid value: 1: must be an object for an array of list-type map"
        );
    }
}
