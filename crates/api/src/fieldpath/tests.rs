use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn f(name: &str) -> PathElement {
    PathElement::Field(name.to_string())
}

fn key(pairs: &[(&str, Value)]) -> PathElement {
    PathElement::key(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

fn set(paths: &[Vec<PathElement>]) -> FieldSet {
    let mut s = FieldSet::new();
    for p in paths {
        s.insert(p);
    }
    s
}

/// Upstream's example from `ManagedFieldsEntry` docs and real Deployments.
const DEPLOYMENT_FIELDS: &str = r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;

#[test]
fn fields_v1_round_trips_byte_for_byte() {
    let set = FieldSet::from_fields_v1_str(DEPLOYMENT_FIELDS).expect("parses");
    assert_eq!(set.to_fields_v1_string(), DEPLOYMENT_FIELDS);
    let web = key(&[("name", json!("web"))]);
    let containers = [f("spec"), f("template"), f("spec"), f("containers")];
    assert!(set.has(&[&containers[..], std::slice::from_ref(&web)].concat()));
    assert!(set.has(&[&containers[..], &[web.clone(), f("image")]].concat()));
    assert!(!set.has(&containers));
    assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
    assert!(!set.has(&[f("metadata"), f("labels")]));
    assert_eq!(set.len(), 7);
}

#[test]
fn serialization_sorts_members_and_children_and_puts_dot_first() {
    let mut s = FieldSet::new();
    s.insert(&[f("spec"), f("z")]);
    s.insert(&[f("spec"), f("a"), f("b")]);
    s.insert(&[f("spec"), f("a")]);
    s.insert(&[f("spec"), key(&[("port", json!(80)), ("protocol", json!("TCP"))])]);
    s.insert(&[f("spec"), PathElement::Value(json!("x"))]);
    s.insert(&[f("spec"), PathElement::Value(json!(2))]);
    s.insert(&[f("apiVersion")]);
    assert_eq!(
        s.to_fields_v1_string(),
        r#"{"f:apiVersion":{},"f:spec":{"f:a":{".":{},"f:b":{}},"f:z":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{},"v:2":{},"v:\"x\"":{}}}"#
    );
}

#[test]
fn key_values_are_written_as_go_json() {
    let pe = key(&[("b", json!("<&>")), ("a", json!({"y": 1, "x": [1.5, null]}))]);
    assert_eq!(pe.to_fields_v1_key(), r#"k:{"a":{"x":[1.5,null],"y":1},"b":"\u003c\u0026\u003e"}"#);
    assert_eq!(PathElement::Index(3).to_fields_v1_key(), "i:3");
    assert_eq!(PathElement::Value(json!(80.0)).to_fields_v1_key(), "v:80");
}

#[test]
fn reading_ignores_unknown_kinds_and_orders_anything() {
    let s = FieldSet::from_fields_v1(&json!({"f:b": {}, "x:future": {}, "f:a": {"f:c": {}, ".": {}}})).expect("parses");
    assert_eq!(s.to_fields_v1_string(), r#"{"f:a":{".":{},"f:c":{}},"f:b":{}}"#);
    // A node holding only unknown elements is a member, as upstream reads it.
    let s = FieldSet::from_fields_v1(&json!({"f:a": {"x:y": {}}})).expect("parses");
    assert!(s.has(&[f("a")]));
}

#[test]
fn malformed_documents_are_errors() {
    for bad in [
        json!([]),
        json!({"f:a": 1}),
        json!({"f:a": {"f:b": "x"}}),
        json!({"f": {}}),
        json!({"": {}}),
        json!({"fa": {}}),
        json!({"k:[1]": {}}),
        json!({"k:{": {}}),
        json!({"v:{nope": {}}),
        json!({"i:-1": {}}),
        json!({"i:x": {}}),
    ] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad} should not parse");
    }
    assert!(FieldSet::from_fields_v1_str("{").is_err());
    let err = FieldSet::from_fields_v1(&json!({"f:a": {"f:b": 3}})).expect_err("not an object");
    assert_eq!(err.to_string(), "expected a JSON object at f:a/f:b, got number");
}

#[test]
fn numbers_read_back_as_floats_but_match_integers() {
    let s = FieldSet::from_fields_v1(&json!({"k:{\"port\":80}": {}})).expect("parses");
    assert!(s.has(&[key(&[("port", json!(80))])]));
    assert_eq!(s.to_fields_v1_string(), r#"{"k:{\"port\":80}":{}}"#);
}

#[test]
fn paths_display_like_upstream() {
    let p = Path(vec![
        f("spec"),
        f("containers"),
        key(&[("name", json!("nginx"))]),
        f("ports"),
        key(&[("protocol", json!("TCP")), ("containerPort", json!(80))]),
    ]);
    assert_eq!(p.to_string(), r#".spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"]"#);
    assert_eq!(Path(vec![f("finalizers"), PathElement::Value(json!("a"))]).to_string(), r#".finalizers[="a"]"#);
    assert_eq!(Path(vec![f("args"), PathElement::Index(2)]).to_string(), ".args[2]");
    assert_eq!(Path::fields(["spec", "replicas"]).to_string(), ".spec.replicas");
}

#[test]
fn set_operations_follow_upstream_semantics() {
    let a = set(&[vec![f("a")], vec![f("b"), f("c")], vec![f("b"), f("d")], vec![f("e")]]);
    let b = set(&[vec![f("a")], vec![f("b"), f("c")], vec![f("x")]]);
    assert_eq!(a.intersection(&b), set(&[vec![f("a")], vec![f("b"), f("c")]]));
    assert_eq!(a.difference(&b), set(&[vec![f("b"), f("d")], vec![f("e")]]));
    assert_eq!(a.union(&b).len(), 5);
    // A member of the other set does not remove paths below it, except recursively.
    let parent = set(&[vec![f("b")]]);
    assert_eq!(a.difference(&parent), a);
    assert_eq!(a.recursive_difference(&parent), set(&[vec![f("a")], vec![f("e")]]));
    // Leaves drop members that have members below them.
    let with_dot = set(&[vec![f("b")], vec![f("b"), f("c")], vec![f("a")]]);
    assert_eq!(with_dot.leaves(), set(&[vec![f("b"), f("c")], vec![f("a")]]));
    assert!(FieldSet::new().is_empty());
    assert!(a.difference(&a).is_empty());
    assert_eq!(a.difference(&a), FieldSet::new());
    let order: Vec<String> = a.paths().iter().map(Path::to_string).collect();
    assert_eq!(order, [".a", ".e", ".b.c", ".b.d"]);
}

#[test]
fn the_root_path_is_never_a_member() {
    let mut s = FieldSet::new();
    s.insert(&[]);
    assert!(s.is_empty());
    assert!(!s.has(&[]));
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        (-1000i64..1000).prop_map(|i| json!(i as f64 / 4.0)),
        "[a-z<>&\"\\\\ ]{0,6}".prop_map(Value::from),
    ]
}

fn arb_element() -> impl Strategy<Value = PathElement> {
    prop_oneof![
        "[a-zA-Z.:{}\" ]{0,5}".prop_map(PathElement::Field),
        proptest::collection::vec(("[a-z]{1,3}", arb_scalar()), 1..3).prop_map(PathElement::key),
        arb_scalar().prop_map(PathElement::Value),
        (0usize..5).prop_map(PathElement::Index),
    ]
}

fn arb_set() -> impl Strategy<Value = FieldSet> {
    proptest::collection::vec(proptest::collection::vec(arb_element(), 1..4), 0..8).prop_map(|paths| set(&paths))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fields_v1_round_trips(s in arb_set()) {
        let text = s.to_fields_v1_string();
        let back = FieldSet::from_fields_v1_str(&text).expect("own output parses");
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_fields_v1_string(), text);
    }

    #[test]
    fn set_algebra_holds(a in arb_set(), b in arb_set()) {
        let u = a.union(&b);
        let i = a.intersection(&b);
        for p in a.paths().iter().chain(b.paths().iter()) {
            prop_assert!(u.has(&p.0));
            prop_assert_eq!(i.has(&p.0), a.has(&p.0) && b.has(&p.0));
            prop_assert_eq!(a.difference(&b).has(&p.0), a.has(&p.0) && !b.has(&p.0));
        }
        prop_assert_eq!(u.len(), a.len() + b.len() - i.len());
        prop_assert_eq!(a.union(&b), b.union(&a));
        prop_assert!(a.difference(&b).intersection(&b).is_empty());
        prop_assert_eq!(a.is_subset_of(&b), a.difference(&b).is_empty());
        prop_assert!(i.is_subset_of(&a) && a.is_subset_of(&u));
    }

    #[test]
    fn in_place_operations_match_the_paths_model(a in arb_set(), b in arb_set()) {
        let (pa, pb) = (a.paths(), b.paths());
        // Built from the expected paths, so `==` also checks that no empty node is left behind.
        let model = |keep: &dyn Fn(&Path) -> bool, extra: &[Path]| {
            FieldSet::from_paths(pa.iter().filter(|p| keep(p)).chain(extra.iter()))
        };
        let mut u = a.clone();
        u.union_owned(b.clone());
        prop_assert_eq!(&u, &model(&|_| true, &pb));
        let mut u2 = a.clone();
        u2.union_with(&b);
        prop_assert_eq!(&u2, &u);
        let mut d = a.clone();
        d.subtract(&b);
        prop_assert_eq!(&d, &model(&|p| !pb.contains(p), &[]));
        let below = |p: &Path| pb.iter().any(|q| q.0.len() <= p.0.len() && p.0[..q.0.len()] == q.0[..]);
        let mut r = a.clone();
        r.recursive_subtract(&b);
        prop_assert_eq!(&r, &model(&|p| !below(p), &[]));
        prop_assert_eq!(a.intersects(&b), pa.iter().any(|p| pb.contains(p)));
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json(3)) {
        let _ = FieldSet::from_fields_v1(&doc);
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = arb_scalar();
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::vec(("(f|k|v|i|x|\\.)?:?[a-z{}\"\\[\\]0-9]{0,4}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
