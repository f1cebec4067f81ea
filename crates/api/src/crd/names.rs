//! The CRD status conditions upstream's naming and establishing controllers maintain
//! (`pkg/controller/status/naming_controller.go`, `establish/establishing_controller.go`):
//! which of the requested names are accepted given the other CRDs of the group, and whether the
//! resource is established (served).

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::structural::str_of;

/// What the naming controller computes for one CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct NamingOutcome {
    /// The new `status.acceptedNames`.
    pub accepted_names: Value,
    /// The `NamesAccepted` condition (`type`, `status`, `reason`, `message`; no time).
    pub names_accepted: Value,
    /// The `Established` condition as the naming controller leaves it.
    pub established: Value,
}

/// Decides which names of `crd` are accepted given `others` (every other CRD, any group; only
/// the same group's *accepted* names count, as upstream), and the resulting conditions.
///
/// Reasons: `NoConflicts` (status True), or the last conflict found among `PluralConflict`,
/// `SingularConflict`, `ShortNamesConflict`, `KindConflict`, `ListKindConflict` (status False)
/// with a message such as `"crontabs" is already in use`.
pub fn names_accepted(crd: &Value, others: &[Value]) -> NamingOutcome {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let me = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut resources: HashSet<String> = HashSet::new();
    let mut kinds: HashSet<String> = HashSet::new();
    for other in others {
        if other.pointer("/spec/group").and_then(Value::as_str) != Some(group)
            || other.pointer("/metadata/name").and_then(Value::as_str) == Some(me)
        {
            continue;
        }
        let accepted = other.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
        resources.insert(str_of(accepted, "plural").to_string());
        resources.insert(str_of(accepted, "singular").to_string());
        resources.extend(strings(accepted.get("shortNames")));
        kinds.insert(str_of(accepted, "kind").to_string());
        kinds.insert(str_of(accepted, "listKind").to_string());
    }
    // An empty accepted name never blocks anything.
    resources.remove("");
    kinds.remove("");

    let requested = crd.pointer("/spec/names").unwrap_or(&Value::Null);
    let accepted = crd.pointer("/status/acceptedNames").cloned().unwrap_or_else(|| json!({}));
    let mut new_names = if accepted.is_object() { accepted.clone() } else { json!({}) };
    let mut conflict: Option<(&str, String)> = None;

    for (key, reason, used) in [("plural", "PluralConflict", &resources), ("singular", "SingularConflict", &resources)]
    {
        match fresh(str_of(requested, key), str_of(&accepted, key), used) {
            Ok(()) => new_names[key] = json!(str_of(requested, key)),
            Err(e) => conflict = Some((reason, e)),
        }
    }
    let req_short = strings(requested.get("shortNames"));
    let acc_short = strings(accepted.get("shortNames"));
    if req_short != acc_short {
        let errs: Vec<String> = req_short
            .iter()
            .filter(|s| !acc_short.contains(s))
            .filter_map(|s| fresh(s, "", &resources).err())
            .collect();
        if errs.is_empty() {
            new_names["shortNames"] = json!(req_short);
        } else {
            let msg = if errs.len() == 1 { errs[0].clone() } else { format!("[{}]", errs.join(", ")) };
            conflict = Some(("ShortNamesConflict", msg));
        }
    }
    for (key, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match fresh(str_of(requested, key), str_of(&accepted, key), &kinds) {
            Ok(()) => new_names[key] = json!(str_of(requested, key)),
            Err(e) => conflict = Some((reason, e)),
        }
    }
    match requested.get("categories") {
        Some(c) if !c.is_null() => new_names["categories"] = c.clone(),
        _ => {
            if let Some(o) = new_names.as_object_mut() {
                o.remove("categories");
            }
        }
    }
    let names_accepted = match &conflict {
        None => {
            json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"})
        }
        Some((reason, msg)) => json!({"type": "NamesAccepted", "status": "False", "reason": reason, "message": msg}),
    };
    let mut established = find_condition(crd, "Established").cloned().unwrap_or_else(|| {
        json!({"type": "Established", "status": "False", "reason": "NotAccepted", "message": "not all names are accepted"})
    });
    if str_of(&established, "status") != "True" && conflict.is_none() {
        established = json!({"type": "Established", "status": "False", "reason": "Installing",
                             "message": "the initial names have been accepted"});
    }
    strip_time(&mut established);
    NamingOutcome { accepted_names: new_names, names_accepted, established }
}

/// Upstream's `equalToAcceptedOrFresh`.
fn fresh(requested: &str, accepted: &str, used: &HashSet<String>) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        return Ok(());
    }
    Err(format!("{requested:?} is already in use"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn find_condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")?.as_array()?.iter().find(|c| str_of(c, "type") == type_)
}

fn strip_time(c: &mut Value) {
    if let Some(o) = c.as_object_mut() {
        o.remove("lastTransitionTime");
    }
}

/// The `Established` condition the establishing controller sets once names are accepted.
pub fn established_condition() -> Value {
    json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
           "message": "the initial names have been accepted"})
}

/// Sets (or replaces) a condition in `status.conditions`, keeping `lastTransitionTime` when the
/// status did not change (upstream's `SetCRDCondition`).
pub fn set_condition(crd: &mut Value, mut condition: Value, now: Timestamp) {
    let Some(obj) = crd.as_object_mut() else { return };
    let status = obj.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let conditions = status.as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(conditions) = conditions else { return };
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else { return };
    let type_ = str_of(&condition, "type").to_string();
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    match list.iter_mut().find(|c| str_of(c, "type") == type_) {
        Some(existing) => {
            let time = if str_of(existing, "status") == str_of(&condition, "status") {
                existing.get("lastTransitionTime").cloned().unwrap_or_else(|| json!(stamp))
            } else {
                json!(stamp)
            };
            condition["lastTransitionTime"] = time;
            *existing = condition;
        }
        None => {
            condition["lastTransitionTime"] = json!(stamp);
            list.push(condition);
        }
    }
}

/// One pass of naming + establishing for Skiff, which serves a CRD as soon as its names are
/// accepted (there is no informer race to wait out): updates `status.acceptedNames` and the
/// `NamesAccepted` and `Established` conditions of `crd` in place. Returns whether the CRD is
/// established (its resource should be served).
pub fn reconcile_status(crd: &mut Value, others: &[Value], now: Timestamp) -> bool {
    let outcome = names_accepted(crd, others);
    let accepted_ok = str_of(&outcome.names_accepted, "status") == "True";
    if let Some(obj) = crd.as_object_mut() {
        let status = obj.entry("status").or_insert_with(|| json!({}));
        if !status.is_object() {
            *status = json!({});
        }
        status["acceptedNames"] = outcome.accepted_names;
    }
    set_condition(crd, outcome.names_accepted, now);
    let terminating = crd.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
    if accepted_ok && !terminating {
        set_condition(crd, established_condition(), now);
        true
    } else {
        let already = find_condition(crd, "Established").is_some_and(|c| str_of(c, "status") == "True");
        if !already {
            set_condition(crd, outcome.established, now);
        }
        already
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> Value {
        json!({
            "metadata": {"name": format!("{plural}.example.com"), "uid": name},
            "spec": {"group": "example.com", "names": {"plural": plural, "singular": kind.to_lowercase(),
                     "kind": kind, "listKind": format!("{kind}List"), "shortNames": short}},
        })
    }

    fn accepted(mut c: Value) -> Value {
        c["status"] = json!({"acceptedNames": c["spec"]["names"].clone()});
        c
    }

    #[test]
    fn no_conflicts() {
        let c = crd("a", "crontabs", "CronTab", &["ct"]);
        let out = names_accepted(&c, &[accepted(crd("b", "widgets", "Widget", &["w"]))]);
        assert_eq!(out.names_accepted["reason"], "NoConflicts");
        assert_eq!(out.names_accepted["message"], "no conflicts found");
        assert_eq!(out.accepted_names["plural"], "crontabs");
        assert_eq!(out.accepted_names["shortNames"], json!(["ct"]));
        assert_eq!(out.established["reason"], "Installing");
        assert_eq!(out.established["message"], "the initial names have been accepted");
    }

    #[test]
    fn conflicts() {
        let c = crd("a", "crontabs", "CronTab", &["w"]);
        let other = accepted(crd("b", "widgets", "CronTab", &["w"]));
        let out = names_accepted(&c, std::slice::from_ref(&other));
        assert_eq!(out.names_accepted["status"], "False");
        assert_eq!(out.names_accepted["reason"], "ListKindConflict");
        assert_eq!(out.names_accepted["message"], "\"CronTabList\" is already in use");
        assert_eq!(out.accepted_names.get("kind"), None);
        assert_eq!(out.accepted_names.get("shortNames"), None);
        assert_eq!(out.accepted_names["plural"], "crontabs");
        assert_eq!(out.established["reason"], "NotAccepted");
        // Another group's names never conflict.
        let mut elsewhere = other;
        elsewhere["spec"]["group"] = json!("other.io");
        assert_eq!(names_accepted(&c, &[elsewhere]).names_accepted["status"], "True");
    }

    #[test]
    fn reconcile_sets_times_once() {
        let mut c = crd("a", "crontabs", "CronTab", &[]);
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2024-01-01T01:00:00Z".parse().unwrap();
        assert!(reconcile_status(&mut c, &[], t0));
        assert!(reconcile_status(&mut c, &[], t1));
        let conds = c["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 2);
        let est = conds.iter().find(|c| c["type"] == "Established").unwrap();
        assert_eq!(est["reason"], "InitialNamesAccepted");
        assert_eq!(est["lastTransitionTime"], "2024-01-01T00:00:00Z");
        assert_eq!(c["status"]["acceptedNames"]["kind"], "CronTab");
    }
}
