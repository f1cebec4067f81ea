//! Property tests: random objects of the hand-written kind, random sequences of applies and
//! updates by several managers, and arbitrary JSON everywhere.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::super::types::Ty;
use super::super::*;
use super::{V, schema};
use crate::fieldpath::PathElement;

/// An optional field: present with probability ~2/3.
fn opt<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)].boxed()
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-c]", "v[1-3]", 0..3)
}

fn container() -> impl Strategy<Value = (String, Value)> {
    (
        "[a-c]",
        opt("i[1-2]"),
        opt(proptest::collection::btree_map(
            (80i64..82, opt(prop_oneof![Just("TCP"), Just("UDP")])),
            opt("p[1-2]"),
            0..3,
        )),
        opt(proptest::collection::btree_map("[xy]", opt("[01]"), 0..3)),
        opt(proptest::collection::vec("[ab]", 0..3)),
    )
        .prop_map(|(name, image, ports, env, args)| {
            let mut c = Map::new();
            c.insert("name".into(), json!(name));
            if let Some(image) = image {
                c.insert("image".into(), json!(image));
            }
            if let Some(ports) = ports {
                // Unique by (containerPort, protocol defaulting to TCP).
                let mut seen = BTreeSet::new();
                let mut list = Vec::new();
                for ((port, proto), pname) in ports {
                    if !seen.insert((port, proto.unwrap_or("TCP"))) {
                        continue;
                    }
                    let mut p = Map::new();
                    p.insert("containerPort".into(), json!(port));
                    if let Some(proto) = proto {
                        p.insert("protocol".into(), json!(proto));
                    }
                    if let Some(pname) = pname {
                        p.insert("name".into(), json!(pname));
                    }
                    list.push(Value::Object(p));
                }
                c.insert("ports".into(), Value::Array(list));
            }
            if let Some(env) = env {
                let list: Vec<Value> = env
                    .into_iter()
                    .map(|(n, v)| match v {
                        Some(v) => json!({"name": n, "value": v}),
                        None => json!({"name": n}),
                    })
                    .collect();
                c.insert("env".into(), Value::Array(list));
            }
            if let Some(args) = args {
                c.insert("args".into(), json!(args));
            }
            (name, Value::Object(c))
        })
}

/// A valid object (or applied configuration) of the hand-written kind.
fn object() -> impl Strategy<Value = Value> {
    (
        opt(labels()),
        opt(proptest::collection::btree_set("f[1-3]", 0..3)),
        opt(0i64..3),
        opt(any::<bool>()),
        opt(labels()),
        opt(proptest::collection::vec("[ab]", 0..3)),
        opt((
            opt(prop_oneof![Just("Recreate"), Just("Rolling")]),
            opt((opt(0i64..2), opt(prop_oneof![Just("25%"), Just("1")]))),
        )),
        opt((opt(labels()), opt(proptest::collection::vec(container(), 0..3)))),
    )
        .prop_map(|(labels, finalizers, replicas, paused, selector, args, strategy, template)| {
            let mut meta = Map::new();
            meta.insert("name".into(), json!("d"));
            if let Some(l) = labels {
                meta.insert("labels".into(), json!(l));
            }
            if let Some(f) = finalizers {
                meta.insert("finalizers".into(), json!(f));
            }
            let mut spec = Map::new();
            if let Some(r) = replicas {
                spec.insert("replicas".into(), json!(r));
            }
            if let Some(p) = paused {
                spec.insert("paused".into(), json!(p));
            }
            if let Some(s) = selector {
                spec.insert("selector".into(), json!({"matchLabels": s}));
            }
            if let Some(a) = args {
                spec.insert("args".into(), json!(a));
            }
            if let Some((ty, ru)) = strategy {
                let mut s = Map::new();
                if let Some(ty) = ty {
                    s.insert("type".into(), json!(ty));
                }
                if let Some((surge, unavailable)) = ru {
                    let mut r = Map::new();
                    if let Some(x) = surge {
                        r.insert("maxSurge".into(), json!(x));
                    }
                    if let Some(x) = unavailable {
                        r.insert("maxUnavailable".into(), json!(x));
                    }
                    s.insert("rollingUpdate".into(), Value::Object(r));
                }
                spec.insert("strategy".into(), Value::Object(s));
            }
            if let Some((tlabels, containers)) = template {
                let mut t = Map::new();
                if let Some(l) = tlabels {
                    t.insert("metadata".into(), json!({"labels": l}));
                }
                if let Some(cs) = containers {
                    let unique: BTreeMap<String, Value> = cs.into_iter().collect();
                    t.insert("spec".into(), json!({"containers": unique.into_values().collect::<Vec<_>>()}));
                }
                spec.insert("template".into(), Value::Object(t));
            }
            json!({"apiVersion": V, "kind": "Deploy", "metadata": meta, "spec": spec})
        })
}

#[derive(Clone, Debug)]
enum Op {
    Apply { manager: usize, config: Value, force: bool },
    Update { manager: usize, new: Value },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, object(), any::<bool>()).prop_map(|(manager, config, force)| Op::Apply { manager, config, force }),
        (0usize..2, object()).prop_map(|(manager, new)| Op::Update { manager, new }),
    ]
}

const APPLIERS: [&str; 3] = ["alice", "bob", "kubectl"];
const UPDATERS: [&str; 2] = ["editor", "controller"];

/// Whether the member path `path` names something present in `obj`.
fn exists(obj: &Value, path: &[PathElement], ty: Ty<'_>) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    match (first, obj) {
        (PathElement::Field(name), Value::Object(m)) => m.get(name).is_some_and(|c| exists(c, rest, ty.child(name))),
        (PathElement::Key(_) | PathElement::Value(_), Value::Array(items)) => {
            let keys = match ty.shape(obj) {
                super::super::types::Shape::List { keys, .. } => keys,
                _ => return false,
            };
            let item_ty = ty.items();
            items.iter().any(|item| {
                item_ty.item_element(keys.as_deref(), item).is_ok_and(|pe| pe == *first) && exists(item, rest, item_ty)
            })
        }
        _ => false,
    }
}

fn identity(e: &ManagedFieldsEntry) -> (String, ManagedFieldsOperation, String, Option<String>) {
    let version = if e.operation == ManagedFieldsOperation::Update { e.api_version.clone() } else { String::new() };
    (e.manager.clone(), e.operation, version, e.subresource.clone())
}

/// The invariants every state reached through these functions keeps.
fn check(obj: &Value, entries: &[ManagedFieldsEntry]) -> Result<(), TestCaseError> {
    let ty = Ty::root(schema());
    // One entry per manager identity, none empty, and the object carries exactly them.
    let ids: BTreeSet<_> = entries.iter().map(identity).collect();
    prop_assert_eq!(ids.len(), entries.len(), "duplicate entries: {:#?}", entries);
    prop_assert!(entries.iter().all(|e| !e.fields.is_empty()));
    prop_assert_eq!(decode_managed_fields(obj).expect("own encoding decodes"), entries.to_vec());
    // Nobody owns anything that is not there.
    for e in entries {
        for p in e.fields.paths() {
            prop_assert!(exists(obj, &p.0, ty), "{} owns {} which {} lacks", e.manager, p, obj);
        }
    }
    // Everything set is owned by someone (but the identity fields no one records) — unless
    // there are no entries at all: then, as upstream, updates are not tracked until an apply.
    if entries.is_empty() {
        return Ok(());
    }
    let owned = entries.iter().fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    let set = fields_of(obj, schema()).difference(super::super::strip_set());
    for p in set.leaves().paths() {
        prop_assert!(owned.has(&p.0), "{} is set but owned by no one in {:#?}", p, entries);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ownership_stays_consistent_across_random_writes(
        first in object(),
        creator in prop_oneof![Just(true), Just(false)],
        ops in proptest::collection::vec(op(), 1..8),
    ) {
        let (mut obj, mut entries) = if creator {
            let entries = record_update(None, &first, vec![], "creator", V, None, "2024-01-01T00:00:00Z", schema());
            let mut obj = first.clone();
            set_managed_fields(&mut obj, &entries);
            (obj, entries)
        } else {
            apply(None, &first, vec![], "alice", V, false, "2024-01-01T00:00:00Z", schema()).expect("a valid config applies")
        };
        check(&obj, &entries)?;
        for (i, op) in ops.into_iter().enumerate() {
            let now = format!("2024-01-01T00:{:02}:00Z", i + 1);
            match op {
                Op::Apply { manager, config, force } => {
                    match apply(Some(&obj), &config, entries.clone(), APPLIERS[manager], V, force, &now, schema()) {
                        Ok((new_obj, new_entries)) => {
                            // Applying the same configuration again is a no-op, whatever the time —
                            // unless the object was left with no entries at all (the configuration
                            // owned nothing), when the next apply starts tracking, as upstream's.
                            let later = format!("2024-01-02T00:{:02}:00Z", i + 1);
                            let (again, again_entries) =
                                apply(Some(&new_obj), &config, new_entries.clone(), APPLIERS[manager], V, force, &later, schema())
                                    .expect("re-applying succeeds");
                            if !new_entries.is_empty() {
                                prop_assert_eq!(&again, &new_obj);
                                prop_assert_eq!(&again_entries, &new_entries);
                            }
                            // Everything the configuration sets is in the result.
                            let applied = fields_of(&config, schema()).leaves();
                            let result = fields_of(&new_obj, schema());
                            prop_assert!(applied.difference(&result).is_empty(), "config fields missing from {}", new_obj);
                            obj = new_obj;
                            entries = new_entries;
                        }
                        Err(ApplyError::Conflicts(c)) => {
                            prop_assert!(!force, "forced applies never conflict");
                            prop_assert!(!c.is_empty());
                        }
                        Err(other) => return Err(TestCaseError::fail(format!("unexpected {other}"))),
                    }
                }
                Op::Update { manager, mut new } => {
                    // Updates keep the server-set identity fields.
                    new["metadata"]["name"] = json!("d");
                    entries = record_update(Some(&obj), &new, entries, UPDATERS[manager], V, None, &now, schema());
                    obj = new;
                    set_managed_fields(&mut obj, &entries);
                }
            }
            check(&obj, &entries)?;
        }
    }

    #[test]
    fn fields_of_round_trips_through_fields_v1(obj in object()) {
        let set = fields_of(&obj, schema());
        let back = FieldSet::from_fields_v1_str(&set.to_fields_v1_string()).expect("parses");
        prop_assert_eq!(back, set);
    }

    /// Values on one side only are recorded node by node: the same sets as path by path from
    /// the root, for typed objects, their updates, and arbitrary JSON.
    #[test]
    fn comparisons_record_one_sided_values_as_path_by_path(
        a in object(),
        b in object(),
        x in arb_json(),
        y in arb_json(),
    ) {
        let deployment = Schema::root(crate::openapi::definitions(), "io.k8s.api.apps.v1.Deployment").expect("schema");
        let empty = json!({});
        let pairs = [(&empty, &a), (&a, &b), (&b, &empty), (&x, &y), (&empty, &x), (&a, &x)];
        for s in [schema(), deployment] {
            for (l, r) in pairs {
                for (implicit, skip) in [(true, true), (false, false), (true, false)] {
                    let ty = Ty::root(s);
                    let fast = if skip {
                        super::super::walk::compare_without_managed_fields(l, r, ty, implicit)
                    } else {
                        super::super::walk::compare(l, r, ty, implicit)
                    };
                    let reference = super::super::walk::compare_path_by_path(l, r, ty, implicit, skip);
                    prop_assert_eq!(&fast.added, &reference.added, "added, {} → {}", l, r);
                    prop_assert_eq!(&fast.modified, &reference.modified, "modified, {} → {}", l, r);
                    prop_assert_eq!(&fast.removed, &reference.removed, "removed, {} → {}", l, r);
                }
            }
        }
    }

    /// Adding the named fields on the way is done path by path, so it keeps subsets subsets:
    /// what lets `prune` skip its sets when everything applied last still has an owner.
    #[test]
    fn named_fields_keep_subsets(a in object(), b in object(), x in arb_json()) {
        for s in [schema(), Schema::root(crate::openapi::definitions(), "io.k8s.api.apps.v1.Deployment").expect("schema")] {
            let ty = Ty::root(s);
            let (sa, sb, sx) = (fields_of(&a, s), fields_of(&b, s), fields_of(&x, s));
            let ensure = |set: &FieldSet| super::super::walk::ensure_named_fields(set, ty);
            for (small, big) in [(sa.intersection(&sb), sa.clone()), (sa.clone(), sa.union(&sb)), (sx.clone(), sx.union(&sa))] {
                prop_assert!(small.is_subset_of(&big));
                prop_assert!(ensure(&small).is_subset_of(&ensure(&big)), "{:?} ⊄ {:?}", ensure(&small), ensure(&big));
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(
        a in arb_json(),
        b in arb_json(),
        force in any::<bool>(),
    ) {
        let deployment = Schema::root(crate::openapi::definitions(), "io.k8s.api.apps.v1.Deployment").expect("schema");
        for s in [schema(), deployment] {
            let _ = fields_of(&a, s);
            let entries = record_update(None, &a, vec![], "u", V, None, "2024-01-01T00:00:00Z", s);
            let _ = record_update(Some(&a), &b, entries.clone(), "v", V, Some("status"), "2024-01-01T00:00:00Z", s);
            if let Ok((obj, entries)) = apply(Some(&a), &b, entries.clone(), "kubectl", V, force, "2024-01-01T00:00:00Z", s) {
                let _ = apply(Some(&obj), &a, entries, "w", V, force, "2024-01-01T00:00:00Z", s);
            }
            let _ = apply(None, &a, vec![], "x", V, force, "2024-01-01T00:00:00Z", s);
            let _ = managers_for_update(Some(&a), &b, None);
            let _ = decode_managed_fields(&a);
        }
    }
}

/// Arbitrary JSON biased towards the hand-written kind's field names, so walks go deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        Just(json!(1.5)),
        "[a-c]{0,2}".prop_map(Value::from),
    ];
    let names = prop_oneof![
        Just("spec"),
        Just("metadata"),
        Just("template"),
        Just("containers"),
        Just("name"),
        Just("ports"),
        Just("containerPort"),
        Just("protocol"),
        Just("finalizers"),
        Just("labels"),
        Just("replicas"),
        Just("selector"),
        Just("strategy"),
        Just("rollingUpdate"),
        Just("env"),
        Just("args"),
        Just("managedFields"),
        Just("x"),
        Just("annotations"),
        Just(LAST_APPLIED_ANNOTATION),
        Just("apiVersion"),
        Just("status"),
    ];
    leaf.prop_recursive(6, 64, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((names.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}
