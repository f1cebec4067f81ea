//! End-to-end tests: the CronTab CRD of the Kubernetes documentation through every function of
//! the module, invalid CRDs with upstream's messages, custom resource pruning, defaulting,
//! validation and CEL rules through the strategy, and random input that must never panic.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::strategy::{ObjectStrategy, Operation, StrategyError};

/// The CronTab CRD from the Kubernetes documentation (with status and scale subresources,
/// printer columns, short name `ct` and category `all`).
fn crontab_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                            "image": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                        }},
                        "status": {"type": "object", "properties": {
                            "replicas": {"type": "integer"},
                            "labelSelector": {"type": "string"},
                        }},
                    },
                }},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.labelSelector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "description": "The cron spec defining the interval a CronJob is run",
                     "jsonPath": ".spec.cronSpec"},
                    {"name": "Replicas", "type": "integer", "description": "The number of jobs launched by the CronJob",
                     "jsonPath": ".spec.replicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"],
                      "categories": ["all"]},
        },
    })
}

fn admit_crd(crd: Value) -> Result<Value, StrategyError> {
    let mut unknown = Vec::new();
    CustomResourceDefinitionStrategy.admit(crd, Operation::Create, &mut unknown).map(|a| a.object)
}

fn messages(errs: &crate::ErrorList) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn invalid(r: Result<crate::Admitted, StrategyError>) -> Vec<String> {
    match r {
        Err(StrategyError::Invalid(errs)) => messages(&errs),
        Err(StrategyError::Decode(e)) => panic!("decode error {e}"),
        Ok(a) => panic!("admitted {}", a.object),
    }
}

fn crontab(spec: Value) -> Value {
    json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
           "metadata": {"name": "my-new-cron-object", "namespace": "default",
                        "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": spec})
}

#[test]
fn crontab_end_to_end() {
    // The CRD is admitted, defaulted and prepared like upstream.
    let mut crd = admit_crd(crontab_crd()).expect("valid CRD");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]["maximum"],
        json!(10)
    );
    assert!(!is_established(&crd));

    // Naming and establishing.
    let now: Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
    assert!(reconcile_status(&mut crd, &[], now));
    assert!(is_established(&crd));
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["ct"]));
    let conds = crd["status"]["conditions"].as_array().unwrap();
    assert!(conds.iter().any(|c| c["type"] == "NamesAccepted" && c["reason"] == "NoConflicts"));
    assert!(conds.iter().any(|c| c["type"] == "Established"
        && c["reason"] == "InitialNamesAccepted"
        && c["message"] == "the initial names have been accepted"));
    // The status update path accepts the controller's write.
    let mut unknown = Vec::new();
    let stored = admit_crd(crontab_crd()).unwrap();
    let updated = CustomResourceDefinitionStrategy
        .admit(crd.clone(), Operation::UpdateStatus { old: &stored }, &mut unknown)
        .expect("status update");
    assert_eq!(updated.object["status"]["acceptedNames"]["kind"], "CronTab");

    // Discovery information.
    let info = resource_info(&crd, "v1");
    assert_eq!(
        (info.group, info.version, info.kind, info.list_kind),
        ("stable.example.com", "v1", "CronTab", "CronTabList")
    );
    assert_eq!((info.plural, info.singular), ("crontabs", "crontab"));
    assert!(info.namespaced);
    assert_eq!(info.short_names, ["ct"]);
    assert_eq!(info.categories, ["all"]);
    assert!(info.tracks_generation);
    assert_eq!(info.storage, "stable.example.com/crontabs");
    assert_eq!(info.subresource("status").map(|s| s.kind), Some("CronTab"));
    assert_eq!(info.subresource("scale").map(|s| s.kind), Some("Scale"));
    assert_eq!(info.api_version(), "stable.example.com/v1");
    let all = resources(&crd).unwrap();
    assert_eq!(all.len(), 1);

    // A custom resource: unknown fields pruned and reported, status dropped on create.
    let strategy = CustomResourceStrategy::new(&crd, "v1").unwrap();
    let mut unknown = Vec::new();
    let mut obj =
        crontab(json!({"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 1, "foo": 1}));
    obj["status"] = json!({"replicas": 5});
    obj["metadata"]["bogus"] = json!(true);
    let admitted = strategy.admit(obj, Operation::Create, &mut unknown).expect("valid crontab");
    unknown.sort();
    assert_eq!(unknown, ["metadata.bogus", "spec.foo"]);
    assert_eq!(admitted.object["spec"].get("foo"), None);
    assert_eq!(admitted.object.get("status"), None);
    let stored_cr = admitted.object;

    // Validation with upstream's messages.
    let bad = crontab(json!({"cronSpec": "every minute", "replicas": "3"}));
    assert_eq!(
        invalid(strategy.admit(bad, Operation::Create, &mut unknown)),
        [
            "spec.cronSpec: Invalid value: \"every minute\": spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: 3 is of the type string, expected int64",
        ]
    );
    let bad = crontab(json!({"replicas": 11}));
    assert_eq!(
        invalid(strategy.admit(bad, Operation::Create, &mut unknown)),
        ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"]
    );
    let mut wrong_kind = crontab(json!({}));
    wrong_kind["kind"] = json!("CronJob");
    assert_eq!(
        invalid(strategy.admit(wrong_kind, Operation::Create, &mut unknown)),
        ["kind: Invalid value: \"CronJob\": must be CronTab"]
    );

    // Status goes through /status only.
    let mut update = stored_cr.clone();
    update["status"] = json!({"replicas": 3});
    update["spec"]["replicas"] = json!(2);
    let a = strategy.admit(update.clone(), Operation::Update { old: &stored_cr }, &mut unknown).unwrap();
    assert_eq!(a.object.get("status"), None);
    assert_eq!(a.object["spec"]["replicas"], 2);
    let a = strategy.admit(update, Operation::UpdateStatus { old: &stored_cr }, &mut unknown).unwrap();
    assert_eq!(a.object["status"]["replicas"], 3);
    assert_eq!(a.object["spec"]["replicas"], 1, "spec comes from the stored object");
    let with_status = a.object;

    // Printer columns.
    let cols = columns(&crd, "v1");
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Name", "Spec", "Replicas", "Age"]);
    assert_eq!(cols[1].description, "The cron spec defining the interval a CronJob is run");
    let now: Timestamp = "2024-01-03T00:00:00Z".parse().unwrap();
    assert_eq!(
        cells(&crd, "v1", &with_status, now),
        [json!("my-new-cron-object"), json!("* * * * */5"), json!(1), json!("2d")]
    );

    // OpenAPI.
    let schema = openapi_schema(&crd, "v1");
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    assert_eq!(schema["properties"]["spec"]["properties"]["replicas"]["maximum"], 10);
    assert!(openapi_components(&crd, "v1").contains_key("com.example.stable.v1.CronTabList"));

    // Scale.
    let paths = scale_paths(&crd, "v1").unwrap();
    let mut scaled_obj = with_status.clone();
    scaled_obj["status"]["labelSelector"] = json!("app=cron");
    let scale = scale_of(&scaled_obj, &paths).unwrap();
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"], json!({"replicas": 3, "selector": "app=cron"}));
    apply_scale(&mut scaled_obj, &paths, &json!({"spec": {"replicas": 4}})).unwrap();
    assert_eq!(scaled_obj["spec"]["replicas"], 4);
}

#[test]
fn invalid_crds_give_upstream_errors() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "wrong name",
            Box::new(|c| c["metadata"]["name"] = json!("crontab.stable.example.com")),
            "metadata.name: Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group",
        ),
        (
            "group without dot",
            Box::new(|c| {
                c["spec"]["group"] = json!("example");
                c["metadata"]["name"] = json!("crontabs.example");
            }),
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
        ),
        (
            "bad scope",
            Box::new(|c| c["spec"]["scope"] = json!("Global")),
            "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
        ),
        (
            "no storage version",
            Box::new(|c| c["spec"]["versions"][0]["storage"] = json!(false)),
            "must have exactly one version marked as storage version",
        ),
        (
            "bad plural",
            Box::new(|c| {
                c["spec"]["names"]["plural"] = json!("CronTabs");
                c["metadata"]["name"] = json!("CronTabs.stable.example.com");
            }),
            "spec.names.plural: Invalid value: \"CronTabs\": a DNS-1035 label must consist of lower case alphanumeric characters",
        ),
        (
            "kind equals listKind",
            Box::new(|c| c["spec"]["names"]["listKind"] = json!("CronTab")),
            "spec.names.listKind: Invalid value: \"CronTab\": kind and listKind may not be the same",
        ),
        (
            "bad short name",
            Box::new(|c| c["spec"]["names"]["shortNames"] = json!(["c_t"])),
            "spec.names.shortNames[0]: Invalid value: \"c_t\"",
        ),
        (
            "no schema",
            Box::new(|c| c["spec"]["versions"][0].as_object_mut().unwrap().remove("schema").map(|_| ()).unwrap_or(())),
            "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        ),
        (
            "untyped field",
            Box::new(|c| {
                c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] =
                    json!({"description": "x"})
            }),
            "spec.validation.openAPIV3Schema.properties[spec].properties[image].type: Required value: must not be empty for specified object fields",
        ),
        (
            "bad column type",
            Box::new(|c| c["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = json!("text")),
            "spec.additionalPrinterColumns[0].type: Invalid value: \"text\": must be one of boolean,date,integer,number,string",
        ),
        (
            "column path",
            Box::new(|c| c["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"] = json!("spec.cronSpec")),
            "spec.additionalPrinterColumns[0].JSONPath: Invalid value: \"spec.cronSpec\": must be a simple json path starting with .",
        ),
        (
            "scale path",
            Box::new(|c| {
                c["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = json!(".status.replicas")
            }),
            "spec.subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
        ),
        (
            "webhook conversion",
            Box::new(
                |c| c["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://x"}}}),
            ),
            "spec.conversion.strategy: Invalid value: \"Webhook\": conversion webhooks are not supported by Skiff",
        ),
        (
            "status root keywords",
            Box::new(|c| c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["minProperties"] = json!(1)),
            "fields are allowed at the root of the schema if the status subresource is enabled",
        ),
        (
            "selectable field type",
            Box::new(|c| c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec"}])),
            "spec.selectableFields[0].jsonPath: Invalid value: \".spec\": must point to a field of type string, boolean or integer.",
        ),
        (
            "selectable field in metadata",
            Box::new(|c| c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".metadata.name"}])),
            "spec.selectableFields[0].jsonPath: Invalid value: \".metadata.name\": is an invalid path",
        ),
        (
            "protected group",
            Box::new(|c| {
                c["spec"]["group"] = json!("stable.k8s.io");
                c["metadata"]["name"] = json!("crontabs.stable.k8s.io");
            }),
            "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation",
        ),
        (
            "cel rule",
            Box::new(|c| {
                c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
                    json!([{"rule": "self.replica > 0"}])
            }),
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replica > 0\"",
        ),
    ];
    for (name, mutate, want) in cases {
        let mut crd = crontab_crd();
        mutate(&mut crd);
        let msgs = invalid(CustomResourceDefinitionStrategy.admit(crd, Operation::Create, &mut Vec::new()));
        assert!(msgs.iter().any(|m| m.contains(want)), "{name}: want {want:?} in {msgs:#?}");
    }
}

#[test]
fn multi_version_crds_report_per_version_paths() {
    let mut crd = crontab_crd();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = json!({});
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    let msgs = invalid(CustomResourceDefinitionStrategy.admit(crd.clone(), Operation::Create, &mut Vec::new()));
    assert_eq!(
        msgs,
        [
            "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[image].type: Required value: must not be empty for specified object fields"
        ]
    );
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] =
        json!({"type": "string"});
    let admitted = admit_crd(crd).unwrap();
    assert_eq!(served_versions(&admitted), ["v1", "v2"]);
    assert_eq!(storage_version(&admitted).as_deref(), Some("v1"));
    assert_eq!(resource_info(&admitted, "v2").storage, "stable.example.com/crontabs");
}

#[test]
fn crd_updates_keep_names_and_status() {
    let mut old = admit_crd(crontab_crd()).unwrap();
    reconcile_status(&mut old, &[], "2024-01-01T00:00:00Z".parse().unwrap());
    let mut new = old.clone();
    new["spec"]["names"]["plural"] = json!("crontabz");
    new["spec"]["scope"] = json!("Cluster");
    new["status"] = json!({});
    let msgs = invalid(CustomResourceDefinitionStrategy.admit(new, Operation::Update { old: &old }, &mut Vec::new()));
    assert!(msgs.contains(&"spec.scope: Invalid value: \"Cluster\": field is immutable".to_string()), "{msgs:#?}");
    assert!(
        msgs.contains(&"spec.names.plural: Invalid value: \"crontabz\": field is immutable".to_string()),
        "{msgs:#?}"
    );
    // A spec change bumps generation and keeps the status.
    let mut new = old.clone();
    new["spec"]["names"]["shortNames"] = json!(["ct", "cron"]);
    let a = CustomResourceDefinitionStrategy.admit(new, Operation::Update { old: &old }, &mut Vec::new()).unwrap();
    assert_eq!(a.object["metadata"]["generation"], 2);
    assert_eq!(a.object["status"]["conditions"], old["status"]["conditions"]);
}

/// A CRD exercising defaults, nested pruning, list types, embedded resources and CEL.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
                 "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "required": ["size"],
                "x-kubernetes-validations": [
                    {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                    {"rule": "self.size == oldSelf.size", "message": "size is immutable", "reason": "FieldValueForbidden",
                     "fieldPath": ".size"},
                ],
                "properties": {
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "minReplicas": {"type": "integer", "default": 1},
                    "maxReplicas": {"type": "integer", "default": 3},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                              "items": {"type": "object", "required": ["port"], "properties": {
                                  "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "x-kubernetes-preserve-unknown-fields": true},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                },
            }},
        }}}]},
    })
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

fn widget_strategy() -> CustomResourceStrategy {
    let crd = admit_crd(widget_crd()).expect("valid widget CRD");
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    CustomResourceStrategy::new(&crd, "v1alpha1").unwrap()
}

#[test]
fn pruning_and_defaulting() {
    let s = widget_strategy();
    let mut unknown = Vec::new();
    let obj = widget(json!({"size": "small", "ports": [{"port": 80, "extra": 1}], "config": {"free": {"form": 1}},
                            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}},
                            "minReplicas": null}));
    let a = s.admit(obj, Operation::Create, &mut unknown).expect("valid widget");
    unknown.sort();
    assert_eq!(unknown, ["spec.ports[0].extra", "spec.template.metadata.junk"]);
    let spec = &a.object["spec"];
    assert_eq!(spec["minReplicas"], 1, "a null with a default is defaulted");
    assert_eq!(spec["maxReplicas"], 3);
    assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP"}));
    assert_eq!(spec["config"]["free"], json!({"form": 1}));
}

#[test]
fn validation_and_cel() {
    let s = widget_strategy();
    let mut unknown = Vec::new();
    let msgs = invalid(s.admit(widget(json!({"size": "medium"})), Operation::Create, &mut unknown));
    assert_eq!(
        msgs,
        [
            "spec.size: Unsupported value: \"medium\": supported values: \"small\", \"large\"",
            "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct \
             the existing errors to complete validation",
        ]
    );
    let msgs = invalid(s.admit(widget(json!({})), Operation::Create, &mut unknown));
    assert_eq!(msgs[0], "spec.size: Required value");
    let msgs = invalid(s.admit(
        widget(json!({"size": "small", "minReplicas": 5, "ports": [{"port": 1}, {"port": 1}], "tags": ["a", "a"],
                      "template": {"apiVersion": "v1", "kind": "Pod"}})),
        Operation::Create,
        &mut unknown,
    ));
    // Duplicates do not block CEL rules; a missing embedded apiVersion (a required value) does.
    assert_eq!(
        msgs,
        [
            "spec.ports[1]: Duplicate value: {\"port\":1}",
            "spec.tags[1]: Duplicate value: \"a\"",
            "spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
        ]
    );
    let msgs = invalid(s.admit(
        widget(json!({"size": "small", "template": {"kind": "Pod"}})),
        Operation::Create,
        &mut unknown,
    ));
    assert_eq!(msgs[0], "spec.template.apiVersion: Required value: must not be empty");
    // Transition rule: runs only on update, reported at its fieldPath with its reason.
    let old = s.admit(widget(json!({"size": "small"})), Operation::Create, &mut unknown).unwrap().object;
    let msgs = invalid(s.admit(widget(json!({"size": "large"})), Operation::Update { old: &old }, &mut unknown));
    assert_eq!(msgs, ["spec.size: Forbidden: size is immutable"]);
    assert!(
        s.admit(widget(json!({"size": "small", "maxReplicas": 9})), Operation::Update { old: &old }, &mut unknown)
            .is_ok()
    );
}

#[test]
fn ratcheting_keeps_old_invalid_values_editable() {
    let s = widget_strategy();
    // An object stored under a laxer schema (min above max) can still be edited elsewhere...
    let old = widget(json!({"size": "small", "minReplicas": 5, "maxReplicas": 3, "tags": ["x"]}));
    let mut new = old.clone();
    new["spec"]["tags"] = json!(["x", "y"]);
    let mut unknown = Vec::new();
    // ...but a rule over the changed `spec` object runs again, as upstream (spec itself changed).
    let msgs = invalid(s.admit(new, Operation::Update { old: &old }, &mut unknown));
    assert_eq!(msgs, ["spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas"]);
    // An unchanged spec is not re-validated.
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    assert!(s.admit(new, Operation::Update { old: &old }, &mut unknown).is_ok());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[&str] = &[
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "name",
        "size",
        "ports",
        "port",
        "tags",
        "template",
        "replicas",
        "cronSpec",
        "image",
        "type",
        "properties",
        "items",
        "x-kubernetes-list-type",
        "default",
        "foo",
    ];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(-0.0)),
            prop::sample::select(vec!["", "a", "small", "object", "map", "* * * * *", "2024-01-01T00:00:00Z"])
                .prop_map(Value::from),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                    .prop_map(|e| Value::Object(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary custom resources through every operation never panic.
        #[test]
        fn custom_resources_never_panic(obj in any_json(), old in any_json()) {
            for s in [widget_strategy(), CustomResourceStrategy::new(&crontab_crd(), "v1").unwrap()] {
                let mut unknown = Vec::new();
                let _ = s.admit(obj.clone(), Operation::Create, &mut unknown);
                let _ = s.admit(obj.clone(), Operation::Update { old: &old }, &mut unknown);
                let _ = s.admit(obj.clone(), Operation::UpdateStatus { old: &old }, &mut unknown);
            }
            let crd = crontab_crd();
            let _ = cells(&crd, "v1", &obj, Timestamp::UNIX_EPOCH);
            if let Some(paths) = scale_paths(&crd, "v1") {
                let _ = scale_of(&obj, &paths);
            }
        }

        /// Arbitrary CRDs (and arbitrary schemas inside a valid one) never panic anywhere.
        #[test]
        fn crds_never_panic(junk in any_json(), schema in any_json()) {
            let _ = validate_crd(&junk);
            let _ = validate_crd_update(&junk, &junk);
            let _ = names_accepted(&junk, std::slice::from_ref(&junk));
            let _ = openapi_schema(&junk, "v1");
            let _ = CustomResourceDefinitionStrategy.admit(junk.clone(), Operation::Create, &mut Vec::new());
            let mut crd = crontab_crd();
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = schema;
            let _ = validate_crd(&crd);
            let _ = openapi_schema(&crd, "v1");
            if let Ok(s) = CustomResourceStrategy::new(&crd, "v1") {
                let _ = s.admit(junk.clone(), Operation::Create, &mut Vec::new());
            }
        }

        /// Arbitrary JSONPath text parses or fails, never panics.
        #[test]
        fn jsonpaths_never_panic(src in "[.\\[\\]?@()'\"=<>!a-z0-9:*é -]{0,24}", obj in any_json()) {
            if let Ok(p) = super::jsonpath::JsonPath::parse(&src) {
                let _ = p.find(&obj);
            }
        }

        /// Arbitrary rule text compiles or fails, and compiled rules evaluate without panicking.
        #[test]
        fn rules_never_panic(
            rule in "(self|oldSelf|size|has|\\.|\\(|\\)|\\[|\\]|spec|size|ports|all|exists|x|,|==|>|\\+|1|'a'|\\|\\||!|-| |é){0,16}",
            obj in any_json(),
        ) {
            let mut crd = widget_crd();
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] =
                json!([{"rule": rule, "messageExpression": "string(self)"}]);
            let _ = validate_crd(&crd);
            let s = CustomResourceStrategy::new(&crd, "v1alpha1").unwrap();
            let _ = s.admit(obj.clone(), Operation::Create, &mut Vec::new());
            let _ = s.admit(obj, Operation::Update { old: &widget(json!({"size": "small"})) }, &mut Vec::new());
        }
    }
}
