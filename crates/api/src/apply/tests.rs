//! Unit tests over a small hand-written schema shaped like a Deployment; `builtin` runs the
//! upstream examples against the real built-in schemas, `props` the property tests.

mod builtin;
mod props;

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::*;

const NOW: &str = "2024-05-01T10:00:00Z";
const LATER: &str = "2024-05-01T11:00:00Z";
const V: &str = "test/v1";

/// A Deployment-like kind: replicas, an atomic selector, a template with containers keyed by
/// name (through the merge strategy), ports keyed by [containerPort, protocol] (protocol
/// defaulting to TCP), env keyed by name, finalizers as a set, granular labels, atomic args.
fn defs() -> &'static Map<String, Value> {
    static DEFS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let defs = json!({
            "test.Deploy": {
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "test", "version": "v1", "kind": "Deploy"}],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/test.Meta"}]},
                    "spec": {"allOf": [{"$ref": "#/components/schemas/test.Spec"}]},
                    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
                }
            },
            "test.Meta": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "uid": {"type": "string"},
                    "resourceVersion": {"type": "string"},
                    "generation": {"type": "integer"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "managedFields": {"type": "array", "items": {"type": "object"}}
                }
            },
            "test.Spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "paused": {"type": "boolean"},
                    "selector": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                    "strategy": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string"},
                            "rollingUpdate": {
                                "type": "object",
                                "properties": {
                                    "maxSurge": {"x-kubernetes-int-or-string": true},
                                    "maxUnavailable": {"x-kubernetes-int-or-string": true}
                                }
                            }
                        }
                    },
                    "template": {"$ref": "#/components/schemas/test.Template"}
                }
            },
            "test.Template": {
                "type": "object",
                "properties": {
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/test.Meta"}]},
                    "spec": {
                        "type": "object",
                        "properties": {
                            "containers": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/test.Container"},
                                "x-kubernetes-patch-strategy": "merge",
                                "x-kubernetes-patch-merge-key": "name"
                            }
                        }
                    }
                }
            },
            "test.Container": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "image": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "containerPort": {"type": "integer"},
                                "protocol": {"type": "string", "default": "TCP"},
                                "name": {"type": "string"}
                            }
                        },
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["containerPort", "protocol"]
                    },
                    "env": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name"
                    }
                }
            }
        });
        match defs {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    })
}

fn schema() -> Schema<'static> {
    Schema::root(defs(), "test.Deploy").expect("test schema")
}

fn fm() -> FieldManager<'static> {
    FieldManager::new(schema(), V)
}

/// A small object of the test kind.
fn deploy(spec: Value) -> Value {
    json!({"apiVersion": V, "kind": "Deploy", "metadata": {"name": "d", "namespace": "ns"}, "spec": spec})
}

fn web(image: &str) -> Value {
    json!({"template": {"spec": {"containers": [{"name": "web", "image": image}]}}})
}

fn fields(e: &ManagedFieldsEntry) -> String {
    e.fields.to_fields_v1_string()
}

fn entry<'e>(entries: &'e [ManagedFieldsEntry], manager: &str) -> &'e ManagedFieldsEntry {
    entries.iter().find(|e| e.manager == manager).unwrap_or_else(|| panic!("no entry for {manager} in {entries:#?}"))
}

fn has_entry(entries: &[ManagedFieldsEntry], manager: &str) -> bool {
    entries.iter().any(|e| e.manager == manager)
}

fn apply_ok(
    live: Option<&Value>,
    config: &Value,
    entries: Vec<ManagedFieldsEntry>,
    manager: &str,
    force: bool,
    now: &str,
) -> (Value, Vec<ManagedFieldsEntry>) {
    apply(live, config, entries, manager, V, force, now, schema()).unwrap_or_else(|e| panic!("apply failed: {e}"))
}

fn conflicts(result: Result<(Value, Vec<ManagedFieldsEntry>), ApplyError>) -> Vec<Conflict> {
    match result {
        Err(ApplyError::Conflicts(c)) => c,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

fn strip(mut obj: Value) -> Value {
    set_managed_fields(&mut obj, &[]);
    obj
}

#[test]
fn fields_of_matches_upstream_to_field_set() {
    let obj = deploy(json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": "x"}},
        "args": ["a", "b"],
        "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]}
        }
    }));
    let set = fields_of(&obj, schema());
    assert_eq!(
        set.to_fields_v1_string(),
        concat!(
            r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:name":{},"f:namespace":{}},"#,
            r#""f:spec":{"f:args":{},"f:replicas":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{"f:maxSurge":{}}},"#,
            r#""f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"#,
            r#""f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        )
    );
    // A set list owns its values; empty and null granular fields own nothing.
    let obj =
        json!({"metadata": {"finalizers": ["b", "a"], "labels": {}}, "spec": {"template": null, "replicas": null}});
    assert_eq!(
        fields_of(&obj, schema()).to_fields_v1_string(),
        r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}}},"f:spec":{"f:replicas":{}}}"#
    );
}

#[test]
fn apply_creates_and_owns_what_it_sets() {
    let config =
        deploy(json!({"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}));
    let (obj, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    assert_eq!(strip(obj.clone()), config);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e.manager.as_str(), e.operation, e.api_version.as_str(), e.time.as_deref()),
        ("a", ManagedFieldsOperation::Apply, V, Some(NOW))
    );
    assert_eq!(e.subresource, None);
    // apiVersion, kind, metadata.name/namespace are never recorded.
    assert_eq!(
        fields(e),
        r#"{"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );
    assert_eq!(obj["metadata"]["managedFields"], encode_managed_fields(&entries));
    assert_eq!(decode_managed_fields(&obj).expect("decodes"), entries);
}

#[test]
fn applying_the_same_config_twice_changes_nothing_not_even_the_time() {
    let config = deploy(json!({"replicas": 3, "paused": false}));
    let (obj, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    let (again, entries_again) = apply_ok(Some(&obj), &config, entries.clone(), "a", false, LATER);
    assert_eq!(again, obj);
    assert_eq!(entries_again, entries);
    // A change moves the time.
    let changed = deploy(json!({"replicas": 4, "paused": false}));
    let (obj2, entries2) = apply_ok(Some(&obj), &changed, entries, "a", false, LATER);
    assert_eq!(obj2["spec"]["replicas"], 4);
    assert_eq!(entry(&entries2, "a").time.as_deref(), Some(LATER));
}

#[test]
fn a_first_apply_that_changes_nothing_has_no_time() {
    let config = deploy(json!({"replicas": 1}));
    let (obj, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    let (obj2, entries2) = apply_ok(Some(&obj), &config, entries, "b", false, LATER);
    assert_eq!(obj2, {
        let mut o = obj.clone();
        set_managed_fields(&mut o, &entries2);
        o
    });
    let b = entry(&entries2, "b");
    assert_eq!(b.time, None);
    assert_eq!(fields(b), r#"{"f:spec":{"f:replicas":{}}}"#);
    assert_eq!(fields(entry(&entries2, "a")), r#"{"f:spec":{"f:replicas":{}}}"#);
}

#[test]
fn a_second_applier_conflicts_and_force_takes_ownership() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"replicas": 3, "paused": true})), vec![], "a", false, NOW);
    let other = deploy(json!({"replicas": 5}));
    let c = conflicts(apply(Some(&obj), &other, entries.clone(), "b", V, false, LATER, schema()));
    assert_eq!(
        c,
        [Conflict {
            manager: "a".into(),
            operation: ManagedFieldsOperation::Apply,
            api_version: V.into(),
            subresource: None,
            field: ".spec.replicas".into()
        }]
    );
    assert_eq!(conflict_message(&c), r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#);
    let err = ApplyError::Conflicts(c.clone());
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.to_string(), conflict_message(&c));
    let (message, causes) = conflict_status_parts(&c);
    assert_eq!(message, conflict_message(&c));
    assert_eq!(
        causes,
        [json!({"type": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".spec.replicas"})]
    );

    let (forced, entries) = apply_ok(Some(&obj), &other, entries, "b", true, LATER);
    assert_eq!(forced["spec"], json!({"replicas": 5, "paused": true}));
    assert_eq!(fields(entry(&entries, "a")), r#"{"f:spec":{"f:paused":{}}}"#);
    assert_eq!(fields(entry(&entries, "b")), r#"{"f:spec":{"f:replicas":{}}}"#);
}

#[test]
fn the_same_value_is_shared_not_a_conflict() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"replicas": 3})), vec![], "a", false, NOW);
    let (obj2, entries) = apply_ok(Some(&obj), &deploy(json!({"replicas": 3})), entries, "b", false, LATER);
    assert_eq!(obj2["spec"]["replicas"], 3);
    assert_eq!(fields(entry(&entries, "a")), fields(entry(&entries, "b")));
    // When one stops applying it, the other keeps it alive.
    let (obj3, entries) = apply_ok(Some(&obj2), &deploy(json!({})), entries, "a", false, LATER);
    assert_eq!(obj3["spec"]["replicas"], 3);
    assert!(!has_entry(&entries, "a"));
    assert_eq!(fields(entry(&entries, "b")), r#"{"f:spec":{"f:replicas":{}}}"#);
}

#[test]
fn fields_no_longer_applied_are_removed() {
    let config = deploy(json!({
        "replicas": 3,
        "paused": true,
        "strategy": {"type": "Rolling", "rollingUpdate": {"maxSurge": 1}},
        "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx", "args": ["-v"]},
            {"name": "side", "image": "busybox"}
        ]}}
    }));
    let (obj, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    let smaller = deploy(json!({
        "replicas": 3,
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
    }));
    let (obj2, entries2) = apply_ok(Some(&obj), &smaller, entries, "a", false, LATER);
    assert_eq!(strip(obj2), smaller);
    assert_eq!(
        fields(entry(&entries2, "a")),
        fields_of(&smaller, schema()).difference(super::strip_set()).to_fields_v1_string()
    );
}

#[test]
fn fields_someone_else_owns_are_kept_when_an_applier_lets_go() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"paused": true, "args": ["x"]})), vec![], "a", false, NOW);
    // An updater changes args: it owns them now.
    let mut edited = obj.clone();
    edited["spec"]["args"] = json!(["y"]);
    let entries = record_update(Some(&obj), &edited, entries, "editor", V, None, LATER, schema());
    assert_eq!(fields(entry(&entries, "editor")), r#"{"f:spec":{"f:args":{}}}"#);
    assert_eq!(entry(&entries, "editor").time.as_deref(), Some(LATER));
    assert_eq!(fields(entry(&entries, "a")), r#"{"f:spec":{"f:paused":{}}}"#);
    // The applier stops applying args and paused: paused goes, args (the editor's) stays.
    let (obj2, entries2) = apply_ok(Some(&edited), &deploy(json!({})), entries, "a", false, LATER);
    assert_eq!(obj2["spec"], json!({"args": ["y"]}));
    assert!(!has_entry(&entries2, "a"));
}

#[test]
fn an_update_takes_fields_from_the_applier_who_then_conflicts_with_it() {
    let config = deploy(web("nginx:1"));
    let (obj, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    let mut edited = obj.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    edited["spec"]["replicas"] = json!(7);
    let entries = record_update(Some(&obj), &edited, entries, "other", "apps/v1", None, LATER, schema());
    let other = entry(&entries, "other");
    assert_eq!((other.operation, other.api_version.as_str()), (ManagedFieldsOperation::Update, "apps/v1"));
    assert_eq!(
        fields(other),
        r#"{"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{"f:image":{}}}}}}}"#
    );
    let mut reapply = config.clone();
    reapply["spec"]["replicas"] = json!(3);
    let c = conflicts(apply(Some(&edited), &reapply, entries, "a", V, false, LATER, schema()));
    assert_eq!(
        conflict_message(&c),
        "Apply failed with 2 conflicts: conflicts with \"other\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    let (_, causes) = conflict_status_parts(&c);
    assert_eq!(causes[1]["message"], "conflict with \"other\" using apps/v1");
    assert_eq!(causes[1]["field"], ".spec.template.spec.containers[name=\"web\"].image");
}

#[test]
fn conflicts_group_by_manager_in_identifier_order() {
    let c = |manager: &str, op, field: &str| Conflict {
        manager: manager.into(),
        operation: op,
        api_version: "v1".into(),
        subresource: (manager == "kubelet").then(|| "status".to_string()),
        field: field.into(),
    };
    let list = [
        c("zed", ManagedFieldsOperation::Apply, ".a"),
        c("kubelet", ManagedFieldsOperation::Update, ".b"),
        c("zed", ManagedFieldsOperation::Apply, ".c"),
    ];
    assert_eq!(
        conflict_message(&list),
        "Apply failed with 3 conflicts: conflicts with \"kubelet\" with subresource \"status\" using v1:\n- .b\nconflicts with \"zed\":\n- .a\n- .c"
    );
}

#[test]
fn list_maps_merge_by_key_keeping_live_order() {
    let (obj, entries) = apply_ok(
        None,
        &deploy(json!({"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}})),
        vec![],
        "one",
        false,
        NOW,
    );
    // Another applier adds c after a: appended.
    let (obj2, entries2) = apply_ok(
        Some(&obj),
        &deploy(json!({"template": {"spec": {"containers": [{"name": "a"}, {"name": "c", "image": "x"}]}}})),
        entries.clone(),
        "two",
        false,
        LATER,
    );
    let names = |o: &Value| -> Vec<String> {
        o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names(&obj2), ["a", "b", "c"]);
    // An item the configuration puts before a shared one is placed there, as upstream does.
    let (obj3, _) = apply_ok(
        Some(&obj),
        &deploy(json!({"template": {"spec": {"containers": [{"name": "c"}, {"name": "a", "image": "i"}]}}})),
        entries,
        "two",
        false,
        LATER,
    );
    assert_eq!(names(&obj3), ["c", "a", "b"]);
    assert_eq!(obj3["spec"]["template"]["spec"]["containers"][1], json!({"name": "a", "image": "i"}));
    // The second applier owns only its own items.
    assert_eq!(
        fields(entry(&entries2, "two")),
        r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:name":{}},"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );
}

#[test]
fn atomic_lists_and_maps_are_replaced_sets_are_merged() {
    let (obj, entries) = apply_ok(
        None,
        &json!({"metadata": {"name": "d", "finalizers": ["x"], "labels": {"a": "1"}}, "spec": {"args": ["1", "2"], "selector": {"matchLabels": {"a": "1", "b": "2"}}}}),
        vec![],
        "one",
        false,
        NOW,
    );
    let (obj2, entries2) = apply_ok(
        Some(&obj),
        &json!({"metadata": {"name": "d", "finalizers": ["y"], "labels": {"b": "2"}}, "spec": {"args": ["3"], "selector": {"matchLabels": {"c": "3"}}}}),
        entries,
        "two",
        true,
        LATER,
    );
    assert_eq!(obj2["metadata"]["finalizers"], json!(["x", "y"]));
    assert_eq!(obj2["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert_eq!(obj2["spec"]["args"], json!(["3"]));
    assert_eq!(obj2["spec"]["selector"], json!({"matchLabels": {"c": "3"}}));
    assert_eq!(
        fields(entry(&entries2, "one")),
        r#"{"f:metadata":{"f:finalizers":{"v:\"x\"":{}},"f:labels":{"f:a":{}}}}"#
    );
}

#[test]
fn list_map_keys_take_their_defaults() {
    let config = deploy(
        json!({"template": {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]}]}}}),
    );
    let (_, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    let text = fields(&entries[0]);
    assert!(text.contains(r#"k:{\"containerPort\":80,\"protocol\":\"TCP\"}"#), "{text}");
    assert!(text.contains(r#"k:{\"containerPort\":80,\"protocol\":\"UDP\"}"#), "{text}");
    // Applying the defaulted value explicitly is the same item.
    let explicit = deploy(
        json!({"template": {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}),
    );
    let dup = deploy(
        json!({"template": {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}]}}}),
    );
    assert!(apply(None, &explicit, vec![], "a", V, false, NOW, schema()).is_ok());
    assert!(matches!(apply(None, &dup, vec![], "a", V, false, NOW, schema()), Err(ApplyError::InvalidConfig(_))));
}

#[test]
fn untypable_configurations_are_rejected_with_upstream_messages() {
    let dup = deploy(json!({"template": {"spec": {"containers": [{"name": "web"}, {"name": "web"}]}}}));
    let err = apply(None, &dup, vec![], "a", V, false, NOW, schema()).expect_err("duplicate");
    assert_eq!(err.status_code(), 500);
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (ns/d; test/v1, Kind=Deploy): .spec.template.spec.containers: duplicate entries for key [name=\"web\"]"
    );
    let nameless = json!({"apiVersion": "v1", "kind": "Deploy", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}, 3]}}, "args": []}});
    let err = apply(None, &nameless, vec![], "a", V, false, NOW, schema()).expect_err("keyless");
    assert_eq!(
        err.to_string(),
        concat!(
            "failed to create typed patch object (/d; /v1, Kind=Deploy): errors:\n",
            "  .spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)\n",
            "  .spec.template.spec.containers: element 1: associative list with keys may not have non-map elements"
        )
    );
    let bad_set = json!({"metadata": {"finalizers": ["a", {"b": 1}, null, ["c"], "a"]}});
    let err = apply(None, &bad_set, vec![], "a", V, false, NOW, schema()).expect_err("bad set");
    let text = err.to_string();
    for want in [
        "element 1: associative list without keys has an element that's a map type",
        "element 2: associative list without keys has an element that's an explicit null",
        "element 3: not supported: associative list with lists as elements",
        "duplicate entries for key [=\"a\"]",
    ] {
        assert!(text.contains(want), "{text} lacks {want}");
    }
}

#[test]
fn managed_fields_in_a_configuration_are_refused() {
    let mut config = deploy(json!({}));
    config["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &config, vec![], "a", V, false, NOW, schema()).expect_err("refused");
    assert!(matches!(err, ApplyError::ManagedFieldsInConfig));
    assert_eq!((err.to_string().as_str(), err.status_code()), ("metadata.managedFields must be nil", 400));
    config["metadata"]["managedFields"] = Value::Null;
    assert!(apply(None, &config, vec![], "a", V, false, NOW, schema()).is_ok());
    let err = apply(None, &json!([1]), vec![], "a", V, false, NOW, schema()).expect_err("not an object");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn server_managed_metadata_in_a_configuration_is_never_owned() {
    let mut config = deploy(json!({"replicas": 1}));
    config["metadata"]["resourceVersion"] = json!("12");
    config["metadata"]["uid"] = json!("u");
    config["metadata"]["generation"] = json!(3);
    let (_, entries) = apply_ok(None, &config, vec![], "a", false, NOW);
    assert_eq!(fields(&entries[0]), r#"{"f:spec":{"f:replicas":{}}}"#);
}

#[test]
fn record_update_on_create_owns_everything_set() {
    let obj = deploy(json!({"replicas": 1, "strategy": {"rollingUpdate": {"maxSurge": 1}}}));
    let entries = record_update(None, &obj, vec![], "creator", V, None, NOW, schema());
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.operation, e.time.as_deref()), (ManagedFieldsOperation::Update, Some(NOW)));
    // Structs absent before are owned themselves ("."), except the root's metadata/spec/status.
    assert_eq!(
        fields(e),
        r#"{"f:spec":{"f:replicas":{},"f:strategy":{".":{},"f:rollingUpdate":{".":{},"f:maxSurge":{}}}}}"#
    );
}

#[test]
fn record_update_without_changes_keeps_entries_and_times() {
    let obj = deploy(json!({"replicas": 1}));
    let entries = record_update(None, &obj, vec![], "creator", V, None, NOW, schema());
    let mut with_mf = obj.clone();
    set_managed_fields(&mut with_mf, &entries);
    let again = record_update(Some(&with_mf), &obj, entries.clone(), "other", V, None, LATER, schema());
    assert_eq!(again, entries);
    // The same manager writing again merges into its entry and moves its time.
    let mut changed = obj.clone();
    changed["spec"]["paused"] = json!(true);
    let merged = record_update(Some(&obj), &changed, entries, "creator", V, None, LATER, schema());
    assert_eq!(merged.len(), 1);
    assert_eq!(fields(&merged[0]), r#"{"f:spec":{"f:paused":{},"f:replicas":{}}}"#);
    assert_eq!(merged[0].time.as_deref(), Some(LATER));
}

#[test]
fn removed_fields_leave_every_entry() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"replicas": 1, "paused": true})), vec![], "a", false, NOW);
    let mut removed = obj.clone();
    if let Some(spec) = removed["spec"].as_object_mut() {
        spec.remove("paused");
    }
    let entries = record_update(Some(&obj), &removed, entries, "remover", V, None, LATER, schema());
    assert_eq!(fields(entry(&entries, "a")), r#"{"f:spec":{"f:replicas":{}}}"#);
    assert!(!has_entry(&entries, "remover"), "removing fields owns nothing");
}

#[test]
fn objects_without_entries_are_not_tracked_by_updates_but_are_by_applies() {
    let obj = deploy(json!({"replicas": 1, "paused": false}));
    let mut changed = obj.clone();
    changed["spec"]["replicas"] = json!(2);
    assert!(record_update(Some(&obj), &changed, vec![], "u", V, None, NOW, schema()).is_empty());
    // The first apply records what was there as before-first-apply, and conflicts with it.
    let c = conflicts(apply(Some(&obj), &deploy(json!({"replicas": 5})), vec![], "a", V, false, NOW, schema()));
    assert_eq!(
        conflict_message(&c),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using test/v1: .spec.replicas"
    );
    let (_, entries) = apply_ok(Some(&obj), &deploy(json!({"paused": false})), vec![], "a", false, NOW);
    let before = entry(&entries, BEFORE_FIRST_APPLY);
    assert_eq!((before.operation, before.time.as_deref()), (ManagedFieldsOperation::Update, Some(NOW)));
    assert_eq!(fields(before), r#"{"f:spec":{"f:paused":{},"f:replicas":{}}}"#);
    assert_eq!(fields(entry(&entries, "a")), r#"{"f:spec":{"f:paused":{}}}"#);
}

#[test]
fn subresource_writes_keep_their_own_entries() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"replicas": 1})), vec![], "a", false, NOW);
    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(4);
    let entries = record_update(Some(&obj), &scaled, entries, "hpa", V, Some("scale"), LATER, schema());
    let hpa = entry(&entries, "hpa");
    assert_eq!((hpa.subresource.as_deref(), fields(hpa).as_str()), (Some("scale"), r#"{"f:spec":{"f:replicas":{}}}"#));
    assert_eq!(hpa.to_json()["subresource"], "scale");
    let c = conflicts(apply(Some(&scaled), &deploy(json!({"replicas": 2})), entries, "a", V, false, LATER, schema()));
    assert_eq!(c[0].manager_description(), "\"hpa\" with subresource \"scale\" using test/v1");
}

#[test]
fn reset_fields_are_never_owned() {
    let status_reset = FieldSet::from_paths(&[Path::fields(["status"])]);
    let fm = fm().with_reset_fields(status_reset);
    let config = json!({"spec": {"replicas": 1}, "status": {"replicas": 9}});
    let (_, entries) = fm.apply(None, &config, vec![], "a", false, NOW).expect("applies");
    assert_eq!(fields(&entries[0]), r#"{"f:spec":{"f:replicas":{}}}"#);
    let entries = fm.update(None, &config, vec![], "u", NOW);
    assert_eq!(fields(&entries[0]), r#"{"f:spec":{"f:replicas":{}}}"#);
    // And the status subresource, resetting spec, owns only status.
    let status_fm = FieldManager::new(schema(), V)
        .with_subresource("status")
        .with_reset_fields(FieldSet::from_paths(&[Path::fields(["spec"])]));
    let mut new = config.clone();
    new["status"]["replicas"] = json!(10);
    new["spec"]["replicas"] = json!(2);
    let entries = status_fm.update(Some(&config), &new, entries, "kubelet", LATER);
    assert_eq!(fields(entry(&entries, "kubelet")), r#"{"f:status":{"f:replicas":{}}}"#);
    assert_eq!(fields(entry(&entries, "u")), r#"{"f:spec":{"f:replicas":{}}}"#);
}

#[test]
fn many_updaters_are_capped_into_ancient_changes() {
    let mut obj = json!({"spec": {}});
    let mut entries = Vec::new();
    for i in 0..12 {
        let mut next = obj.clone();
        next["metadata"] = json!({"labels": {format!("l{i}"): "x"}});
        if let Some(prev) = obj.get("metadata").cloned() {
            for (k, v) in prev["labels"].as_object().into_iter().flatten() {
                next["metadata"]["labels"][k] = v.clone();
            }
        }
        let now = format!("2024-05-01T10:00:{i:02}Z");
        entries = record_update(
            if i == 0 { None } else { Some(&obj) },
            &next,
            entries,
            &format!("m{i:02}"),
            V,
            None,
            &now,
            schema(),
        );
        obj = next;
    }
    assert_eq!(entries.len(), 10);
    let ancient = entry(&entries, "ancient-changes");
    // The first updater created the labels map, so it (and now the bucket) owns it too.
    assert_eq!(fields(ancient), r#"{"f:metadata":{"f:labels":{".":{},"f:l0":{},"f:l1":{},"f:l2":{}}}}"#);
    assert_eq!(ancient.time.as_deref(), Some("2024-05-01T10:00:02Z"));
    assert!(!has_entry(&entries, "m00") && !has_entry(&entries, "m02") && has_entry(&entries, "m03"));
}

#[test]
fn entries_encode_in_upstream_order_and_shape() {
    let e = |manager: &str, op, time: Option<&str>| ManagedFieldsEntry {
        manager: manager.into(),
        operation: op,
        api_version: "v1".into(),
        time: time.map(str::to_string),
        fields: FieldSet::from_paths(&[Path::fields(["spec", "x"])]),
        subresource: None,
    };
    let list = vec![
        e("b", ManagedFieldsOperation::Update, Some("2024-01-01T00:00:02Z")),
        e("z", ManagedFieldsOperation::Update, Some("2024-01-01T00:00:01Z")),
        e("a", ManagedFieldsOperation::Update, None),
        e("y", ManagedFieldsOperation::Apply, Some("2024-01-01T00:00:09Z")),
    ];
    let encoded = encode_managed_fields(&list);
    let order: Vec<&str> = encoded.as_array().into_iter().flatten().filter_map(|v| v["manager"].as_str()).collect();
    assert_eq!(order, ["y", "a", "z", "b"]);
    assert_eq!(
        serde_json::to_string(&encoded[0]).expect("serializes"),
        r#"{"manager":"y","operation":"Apply","apiVersion":"v1","time":"2024-01-01T00:00:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:x":{}}}}"#
    );
    let mut obj = json!({"metadata": {"name": "x"}});
    set_managed_fields(&mut obj, &list);
    assert_eq!(decode_managed_fields(&obj).expect("decodes").len(), 4);
    set_managed_fields(&mut obj, &[]);
    assert_eq!(obj, json!({"metadata": {"name": "x"}}));
}

#[test]
fn undecodable_entries_are_errors_with_upstream_messages() {
    let with = |mf: Value| json!({"metadata": {"managedFields": mf}});
    let cases = [
        (json!({}), "metadata.managedFields must be a list"),
        (json!([3]), "managed fields entry 0 is not an object"),
        (
            json!([{"operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            "operation must be `Apply` or `Update`",
        ),
        (json!([{"operation": "Apply", "fieldsType": "FieldsV1"}]), "apiVersion must not be empty"),
        (json!([{"operation": "Apply", "apiVersion": "v1"}]), "missing fieldsType in managed fields entry 0"),
        (
            json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
            "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
        ),
        (
            json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": 1}]),
            "managed fields entry 0: manager must be a string",
        ),
    ];
    for (mf, want) in cases {
        let err = decode_managed_fields(&with(mf)).expect_err(want);
        assert_eq!(err.to_string(), want);
    }
    let err = decode_managed_fields(&with(
        json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": 1}}]),
    ))
    .expect_err("bad fields");
    assert!(matches!(err, ManagedFieldsError::Fields { index: 0, .. }));
    assert!(decode_managed_fields(&json!({})).expect("no metadata").is_empty());
    let minimal =
        decode_managed_fields(&with(json!([{"operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1"}])))
            .expect("decodes");
    assert_eq!((minimal[0].manager.as_str(), minimal[0].fields.is_empty()), ("", true));
}

#[test]
fn updates_start_from_the_request_entries_the_stored_ones_or_none() {
    let stored_entry = json!([{"manager": "s", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": {}}}]);
    let sent_entry = json!([{"manager": "n", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:b": {}}}]);
    let old = json!({"metadata": {"managedFields": stored_entry}});
    let names = |v: Vec<ManagedFieldsEntry>| v.into_iter().map(|e| e.manager).collect::<Vec<_>>();
    assert_eq!(
        names(managers_for_update(Some(&old), &json!({"metadata": {"managedFields": sent_entry}}), None)),
        ["n"]
    );
    assert_eq!(
        names(managers_for_update(Some(&old), &json!({"metadata": {"managedFields": sent_entry}}), Some("status"))),
        ["s"]
    );
    assert_eq!(names(managers_for_update(Some(&old), &json!({"metadata": {}}), None)), ["s"]);
    assert_eq!(names(managers_for_update(Some(&old), &json!({"metadata": {"managedFields": "junk"}}), None)), ["s"]);
    assert!(managers_for_update(Some(&old), &json!({"metadata": {"managedFields": []}}), None).is_empty());
    assert!(managers_for_update(Some(&old), &json!({"metadata": {"managedFields": [{}]}}), None).is_empty());
    assert!(managers_for_update(Some(&json!({"metadata": {"managedFields": 1}})), &json!({}), None).is_empty());
}

#[test]
fn client_side_apply_upgrades_to_server_side() {
    let e = |manager: &str, op, version: &str, path: &str| ManagedFieldsEntry {
        manager: manager.into(),
        operation: op,
        api_version: version.into(),
        time: Some(NOW.into()),
        fields: FieldSet::from_paths(&[Path::fields(["spec", path])]),
        subresource: None,
    };
    // No applier yet: the client-side entry becomes it.
    let up = upgrade_client_side_apply(
        vec![
            e(CLIENT_SIDE_APPLY_MANAGER, ManagedFieldsOperation::Update, "v1", "a"),
            e("other", ManagedFieldsOperation::Update, "v1", "o"),
        ],
        CLIENT_SIDE_APPLY_MANAGER,
        "kubectl",
    );
    assert_eq!(up.len(), 2);
    assert_eq!((up[0].manager.as_str(), up[0].operation), ("kubectl", ManagedFieldsOperation::Apply));
    assert_eq!(fields(&up[0]), r#"{"f:spec":{"f:a":{}}}"#);
    // With an applier: the same-version client-side fields join it; all client-side entries go.
    let up = upgrade_client_side_apply(
        vec![
            e("kubectl", ManagedFieldsOperation::Apply, "v1", "s"),
            e(CLIENT_SIDE_APPLY_MANAGER, ManagedFieldsOperation::Update, "v1beta1", "old"),
            e(CLIENT_SIDE_APPLY_MANAGER, ManagedFieldsOperation::Update, "v1", "a"),
        ],
        CLIENT_SIDE_APPLY_MANAGER,
        "kubectl",
    );
    assert_eq!(up.len(), 1);
    assert_eq!(fields(&up[0]), r#"{"f:spec":{"f:a":{},"f:s":{}}}"#);
    // Nothing to do without a client-side entry.
    let none = vec![e("x", ManagedFieldsOperation::Update, "v1", "a")];
    assert_eq!(upgrade_client_side_apply(none.clone(), CLIENT_SIDE_APPLY_MANAGER, "kubectl"), none);
}

#[test]
fn kubectl_takes_over_client_side_applied_fields_without_conflicts() {
    // `kubectl apply` (client-side) created the object: annotation plus an Update entry.
    let csa_config = deploy(json!({"replicas": 2, "paused": false}));
    let mut obj = csa_config.clone();
    obj["metadata"]["annotations"] =
        json!({LAST_APPLIED_ANNOTATION: format!("{}\n", crate::fieldpath::go_json(&csa_config))});
    let entries = record_update(None, &obj, vec![], CLIENT_SIDE_APPLY_MANAGER, V, None, NOW, schema());
    // Someone else changed paused since.
    let mut live = obj.clone();
    live["spec"]["paused"] = json!(true);
    let entries = record_update(Some(&obj), &live, entries, "editor", V, None, NOW, schema());

    // kubectl --server-side changing replicas: the CSA manager's replicas is excused.
    let ssa = deploy(json!({"replicas": 3}));
    let (obj2, entries2) = apply_ok(Some(&live), &ssa, entries.clone(), "kubectl", false, LATER);
    assert_eq!(obj2["spec"]["replicas"], 3);
    assert_eq!(fields(entry(&entries2, "kubectl")), r#"{"f:spec":{"f:replicas":{}}}"#);
    // The annotation now records the server-side configuration.
    let annotation = obj2["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].as_str().unwrap_or("");
    assert_eq!(annotation, format!("{}\n", crate::fieldpath::go_json(&ssa)));
    // But a field changed by someone else since the client-side apply still conflicts.
    let ssa = deploy(json!({"replicas": 3, "paused": false}));
    let c = conflicts(apply(Some(&live), &ssa, entries.clone(), "kubectl", V, false, LATER, schema()));
    assert_eq!(c.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), [".spec.paused"]);
    // Another manager name gets no such help.
    let c = conflicts(apply(Some(&live), &deploy(json!({"replicas": 3})), entries, "helm", V, false, LATER, schema()));
    assert_eq!(c.len(), 1);
}

#[test]
fn custom_resources_with_preserved_unknown_fields_deduce_types() {
    let crd_schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}
            },
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}}
        }
    });
    let empty = Map::new();
    let schema = Schema::new(&empty, &crd_schema);
    let obj = json!({
        "spec": {"free": {"nested": {"x": 1}, "list": [1, 2]}, "known": {"a": "1", "extra": {"y": 2}}},
        "closed": {"a": "1", "unknown": {"z": [1]}}
    });
    assert_eq!(
        fields_of(&obj, schema).to_fields_v1_string(),
        concat!(
            r#"{"f:closed":{"f:a":{},"f:unknown":{}},"#,
            r#""f:spec":{"f:free":{".":{},"f:list":{},"f:nested":{".":{},"f:x":{}}},"f:known":{"f:a":{},"f:extra":{".":{},"f:y":{}}}}}"#
        )
    );
    // Creating a custom resource by update owns spec itself, unlike built-in kinds.
    let entries = record_update(None, &json!({"spec": {"known": {"a": "1"}}}), vec![], "c", "x/v1", None, NOW, schema);
    assert_eq!(fields(&entries[0]), r#"{"f:spec":{".":{},"f:known":{".":{},"f:a":{}}}}"#);
}

#[test]
fn values_of_the_wrong_shape_are_leaves_and_never_panic() {
    let weird =
        json!({"spec": {"template": "nope", "replicas": {"a": 1}, "args": {"x": 1}}, "metadata": {"finalizers": "x"}});
    let set = fields_of(&weird, schema());
    assert_eq!(
        set.to_fields_v1_string(),
        r#"{"f:metadata":{"f:finalizers":{}},"f:spec":{"f:args":{},"f:replicas":{},"f:template":{}}}"#
    );
    let (obj, entries) = apply_ok(None, &weird, vec![], "a", false, NOW);
    let fixed = deploy(json!({"template": web("x")["template"].clone()}));
    let (obj2, _) = apply_ok(Some(&obj), &fixed, entries, "a", true, LATER);
    assert_eq!(obj2["spec"]["template"], fixed["spec"]["template"]);
}

#[test]
fn reordered_and_interleaved_list_items_follow_upstreams_merge_order() {
    let containers = |names: &[&str]| {
        deploy(
            json!({"template": {"spec": {"containers": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}}}),
        )
    };
    let names = |o: &Value| -> Vec<String> {
        o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    for (live, config, want) in [
        (&["a", "b"][..], &["b", "a"][..], &["b", "a"][..]),
        (&["a", "b", "c"], &["c", "a"], &["b", "c", "a"]),
        (&["a", "b"], &["x", "b", "y"], &["a", "x", "b", "y"]),
        (&["a"], &[], &["a"]),
        (&[], &["a", "b"], &["a", "b"]),
    ] {
        let (obj, entries) = apply_ok(None, &containers(live), vec![], "one", false, NOW);
        let (merged, _) = apply_ok(Some(&obj), &containers(config), entries, "two", false, LATER);
        assert_eq!(names(&merged), want, "live {live:?} + config {config:?}");
    }
}

#[test]
fn applies_through_a_subresource_are_their_own_appliers() {
    let (obj, entries) = apply_ok(None, &deploy(json!({"replicas": 1})), vec![], "a", false, NOW);
    let status = fm().with_subresource("status");
    let (obj, entries) = status
        .apply(
            Some(&obj),
            &json!({"apiVersion": V, "kind": "Deploy", "metadata": {"name": "d"}, "status": {"replicas": 1}}),
            entries,
            "a",
            false,
            LATER,
        )
        .expect("applies");
    assert_eq!(obj["status"]["replicas"], 1);
    assert_eq!(entries.len(), 2);
    let sub = entries.iter().find(|e| e.subresource.is_some()).expect("status entry");
    assert_eq!((sub.manager.as_str(), sub.operation), ("a", ManagedFieldsOperation::Apply));
    assert_eq!(fields(sub), r#"{"f:status":{"f:replicas":{}}}"#);
    assert!(status.fields_of(&obj).has(&Path::fields(["status", "replicas"]).0));
}

#[test]
fn an_empty_manager_name_is_unknown() {
    let (_, entries) = apply_ok(None, &deploy(json!({"replicas": 1})), vec![], "", false, NOW);
    assert_eq!(entries[0].manager, "unknown");
    let entries = record_update(None, &deploy(json!({"paused": true})), vec![], "", V, None, NOW, schema());
    assert_eq!(entries[0].manager, "unknown");
}

#[test]
fn a_configuration_that_empties_a_field_keeps_its_empty_value() {
    let (obj, entries) = apply_ok(
        None,
        &json!({"metadata": {"name": "d", "finalizers": ["f"]}, "spec": {"paused": true, "template": {"spec": {"containers": [{"name": "c"}]}}}}),
        vec![],
        "a",
        false,
        NOW,
    );
    let empty = json!({"metadata": {"name": "d", "finalizers": []}, "spec": {"paused": true, "template": null}});
    let (obj2, entries2) = apply_ok(Some(&obj), &empty, entries, "a", false, LATER);
    assert_eq!(obj2["metadata"]["finalizers"], json!([]));
    assert_eq!(obj2["spec"], json!({"paused": true, "template": null}));
    // A null struct owns nothing, as upstream types it.
    assert_eq!(fields(&entries2[0]), r#"{"f:spec":{"f:paused":{}}}"#);
    // Re-applying changes nothing.
    let (obj3, entries3) = apply_ok(Some(&obj2), &empty, entries2.clone(), "a", false, "2024-05-02T00:00:00Z");
    assert_eq!((obj3, entries3), (obj2, entries2));
}
