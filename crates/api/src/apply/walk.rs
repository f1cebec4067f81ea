//! The walks over typed values that server-side apply is built from, each following its
//! structured-merge-diff counterpart in `typed/`:
//!
//! - [`to_set`] (`ToFieldSet`): the fields a value sets;
//! - [`Comparer`] (`Compare`): fields added, modified and removed between two values;
//! - [`merge`] (`Merge`): an applied configuration merged into a live object;
//! - [`remove`] (`RemoveItems`): a value without the given fields;
//! - [`ensure_named_fields`] (`EnsureNamedFieldsAreMembers`): a set that also owns the struct
//!   fields on the way to its members;
//! - [`validate`]: the checks upstream's typed conversion makes on an applied configuration
//!   (list keys present, no duplicate items).
//!
//! None of them panics on any JSON: values whose shape contradicts the schema are leaves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::types::{Implicit, Shape, Ty};
use crate::fieldpath::{FieldSet, Path, PathElement, values_equal};

/// The fields `v` sets: leaves, plus every list item and every map entry that is not a declared
/// struct field (upstream's `"."` entries).
pub(super) fn to_set(v: &Value, ty: Ty<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    to_set_at(v, ty, &mut path, &mut out);
    out
}

fn to_set_at(v: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, out: &mut FieldSet) {
    match ty.shape(v) {
        Shape::Leaf => out.insert(path),
        Shape::Map => {
            if let Value::Object(m) = v {
                for (k, c) in m {
                    path.push(PathElement::Field(k.clone()));
                    to_set_at(c, ty.child(k), path, out);
                    if !ty.declares(k) {
                        out.insert(path);
                    }
                    path.pop();
                }
            }
        }
        Shape::List { keys, items } => {
            if let Value::Array(list) = v {
                for item in list {
                    // Items without a usable key are rejected by `validate` for applied
                    // configurations; elsewhere they own nothing.
                    let Ok(pe) = items.item_element(keys.as_deref(), item) else { continue };
                    path.push(pe);
                    to_set_at(item, items, path, out);
                    out.insert(path);
                    path.pop();
                }
            }
        }
    }
}

/// Fields that differ between two values (upstream `typed.Comparison`).
#[derive(Debug, Default)]
pub(super) struct Comparison {
    /// Present only on the right.
    pub(super) added: FieldSet,
    /// Leaves present on both sides with different values.
    pub(super) modified: FieldSet,
    /// Present only on the left.
    pub(super) removed: FieldSet,
}

impl Comparison {
    /// Drops `fields` and everything below them from all three sets (upstream `ExcludeFields`).
    pub(super) fn exclude(mut self, fields: &FieldSet) -> Self {
        if !fields.is_empty() {
            self.added.recursive_subtract(fields);
            self.modified.recursive_subtract(fields);
            self.removed.recursive_subtract(fields);
        }
        self
    }

    /// Added or modified fields (what a writer takes from other managers), and removed ones.
    pub(super) fn into_changed_and_removed(self) -> (FieldSet, FieldSet) {
        let mut changed = self.modified;
        changed.union_owned(self.added);
        (changed, self.removed)
    }
}

/// Compares two values. `implicit_fields` makes fields upstream's Go types always carry (value
/// structs, lists without `omitempty`) count as present when omitted, as they are in the typed
/// objects upstream compares; it only matters for built-in kinds.
pub(super) fn compare(lhs: &Value, rhs: &Value, ty: Ty<'_>, implicit_fields: bool) -> Comparison {
    Comparer { implicit_fields, skip_managed_fields: false, node_by_node: true, out: Comparison::default() }
        .run(lhs, rhs, ty)
}

/// [`compare`], leaving `metadata.managedFields` out on both sides (as if removed first, but
/// without copying either object).
pub(super) fn compare_without_managed_fields(
    lhs: &Value,
    rhs: &Value,
    ty: Ty<'_>,
    implicit_fields: bool,
) -> Comparison {
    Comparer { implicit_fields, skip_managed_fields: true, node_by_node: true, out: Comparison::default() }
        .run(lhs, rhs, ty)
}

/// [`compare`] recording every path from the root, as it did before values on one side were
/// recorded node by node: the reference the property tests hold that shortcut to.
#[cfg(test)]
pub(super) fn compare_path_by_path(
    lhs: &Value,
    rhs: &Value,
    ty: Ty<'_>,
    implicit_fields: bool,
    skip_managed_fields: bool,
) -> Comparison {
    Comparer { implicit_fields, skip_managed_fields, node_by_node: false, out: Comparison::default() }.run(lhs, rhs, ty)
}

struct Comparer {
    implicit_fields: bool,
    /// Whether `metadata.managedFields` is left out.
    skip_managed_fields: bool,
    /// Whether a value on one side only is recorded node by node ([`one_sided`]); off only in
    /// tests, as the reference.
    node_by_node: bool,
    out: Comparison,
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn as_list(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array)
}

fn map_empty(m: Option<&Map<String, Value>>) -> bool {
    m.is_none_or(Map::is_empty)
}

fn list_empty(l: Option<&Vec<Value>>) -> bool {
    l.is_none_or(Vec::is_empty)
}

impl Comparer {
    fn run(mut self, lhs: &Value, rhs: &Value, ty: Ty<'_>) -> Comparison {
        self.compare(Some(lhs), Some(rhs), ty, &mut Vec::new());
        self.out
    }

    fn compare(&mut self, l: Option<&Value>, r: Option<&Value>, ty: Ty<'_>, path: &mut Vec<PathElement>) {
        // Equal values differ nowhere below (the stand-ins for implicit fields apply only where
        // one side lacks a field), so most of an updated object is skipped at its root: an
        // update usually changes a few fields of a large object.
        if let (Some(a), Some(b)) = (l, r)
            && crate::strategy::json_eq(a, b)
        {
            return;
        }
        let shape = match (l.map(|v| ty.shape(v)), r.map(|v| ty.shape(v))) {
            (Some(a), Some(b)) if a.class() != b.class() => {
                // A value changed shape (possible only for untyped or invalid data): the old
                // contents are gone, the new are there, and the field itself changed.
                self.out.modified.insert(path);
                self.children(&a, l, None, ty, path);
                self.children(&b, None, r, ty, path);
                return;
            }
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => return,
        };
        let granular = match &shape {
            Shape::Leaf => false,
            Shape::Map => !(map_empty(as_map(l)) && map_empty(as_map(r))),
            Shape::List { .. } => !(list_empty(as_list(l)) && list_empty(as_list(r))),
        };
        if !granular {
            // Atomic, or empty on both sides (which keeps `{}` and `null` apart).
            match (l, r) {
                (None, Some(_)) => self.out.added.insert(path),
                (Some(_), None) => self.out.removed.insert(path),
                (Some(a), Some(b)) if !values_equal(a, b) => self.out.modified.insert(path),
                _ => {}
            }
            return;
        }
        // A value on one side only: all of it is added (or removed). Its trie is built node by
        // node from where it hangs, not path by path from the root (a create is all this).
        if self.node_by_node
            && let ([parent @ .., last], Some(v), None) | ([parent @ .., last], None, Some(v)) = (path.as_slice(), l, r)
        {
            let skip =
                self.skip_managed_fields && matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
            let set = if l.is_some() { &mut self.out.removed } else { &mut self.out.added };
            one_sided(set.node_mut(parent), last.clone(), v, &shape, ty, skip);
            return;
        }
        self.children(&shape, l, r, ty, path);
        match (l, r) {
            (None, _) => self.out.added.insert(path),
            (_, None) => self.out.removed.insert(path),
            _ => {}
        }
    }

    fn children(
        &mut self,
        shape: &Shape<'_>,
        l: Option<&Value>,
        r: Option<&Value>,
        ty: Ty<'_>,
        path: &mut Vec<PathElement>,
    ) {
        match shape {
            Shape::Leaf => {}
            Shape::Map => {
                let (lm, rm) = (as_map(l), as_map(r));
                let root = path.is_empty();
                let in_metadata =
                    self.skip_managed_fields && matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
                let sides = (lm.is_some(), rm.is_some());
                // The two sides usually hold the same keys in the same order (an object and its
                // update): they are paired by position, and a key is looked up by hash only
                // once the orders part.
                let no_map = Map::new();
                let (lmap, rmap) = (lm.unwrap_or(&no_map), rm.unwrap_or(&no_map));
                let skipped = |k: &str| in_metadata && k == "managedFields";
                let mut in_step = lmap.len() == rmap.len();
                let mut right = rmap.iter();
                for (k, lv) in lmap {
                    let rv = match in_step.then(|| right.next()).flatten() {
                        Some((rk, rv)) if rk == k => Some(rv),
                        _ => {
                            in_step = false;
                            rmap.get(k)
                        }
                    };
                    if !skipped(k) {
                        self.map_entry(k, Some(lv), rv, sides, root, ty, path);
                    }
                }
                if !in_step {
                    for (k, rv) in rmap {
                        if !lmap.contains_key(k) && !skipped(k) {
                            self.map_entry(k, None, Some(rv), sides, root, ty, path);
                        }
                    }
                }
            }
            Shape::List { keys, items } => {
                let keys = keys.as_deref();
                let lhs = index_items(as_list(l), keys, *items);
                let rhs = index_items(as_list(r), keys, *items);
                let lmap: BTreeMap<&PathElement, &Value> = lhs.iter().map(|(pe, v)| (pe, *v)).collect();
                let rset: BTreeSet<&PathElement> = rhs.iter().map(|(pe, _)| pe).collect();
                for (pe, rv) in &rhs {
                    path.push(pe.clone());
                    self.compare(lmap.get(pe).copied(), Some(rv), *items, path);
                    path.pop();
                }
                for (pe, lv) in &lhs {
                    if !rset.contains(pe) {
                        path.push(pe.clone());
                        self.compare(Some(lv), None, *items, path);
                        path.pop();
                    }
                }
            }
        }
    }

    /// One key of a map compared (see [`Comparer::children`]); `sides`: whether each side holds
    /// the map, `root`: the map is the whole object.
    #[allow(clippy::too_many_arguments)] // the walk's state, spelled out
    fn map_entry(
        &mut self,
        k: &str,
        lc: Option<&Value>,
        rc: Option<&Value>,
        sides: (bool, bool),
        root: bool,
        ty: Ty<'_>,
        path: &mut Vec<PathElement>,
    ) {
        // Stand in for what upstream's typed objects hold where the JSON omits a field.
        let empty = Value::Object(Map::new());
        let null = Value::Null;
        let (mut lc, mut rc) = (lc, rc);
        // Only inside an object present on that side: a Go struct that is itself absent (nil)
        // has no fields at all.
        if self.implicit_fields {
            let stand_in = match ty.implicit(k, root) {
                Some(Implicit::EmptyObject) => Some((&empty, Value::is_object as fn(&Value) -> bool)),
                Some(Implicit::Null) => Some((&null, Value::is_array as fn(&Value) -> bool)),
                None => None,
            };
            if let Some((stand_in, fits)) = stand_in {
                if lc.is_none() && sides.0 && rc.is_some_and(fits) {
                    lc = Some(stand_in);
                }
                if rc.is_none() && sides.1 && lc.is_some_and(fits) {
                    rc = Some(stand_in);
                }
            }
        }
        path.push(PathElement::Field(k.to_string()));
        self.compare(lc, rc, ty.child(k), path);
        path.pop();
    }
}

/// The items of a list with their path elements, first occurrence of each key only; items
/// without a usable key are skipped.
fn index_items<'v>(
    list: Option<&'v Vec<Value>>,
    keys: Option<&[&str]>,
    items: Ty<'_>,
) -> Vec<(PathElement, &'v Value)> {
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for item in list.into_iter().flatten() {
        if let Ok(pe) = items.item_element(keys, item)
            && seen.insert(pe.clone())
        {
            order.push((pe, item));
        }
    }
    order
}

/// Records `v`, present on one side of a comparison only, as the member `pe` of `node`, with
/// everything below it: what [`Comparer::compare`] records for such a value, path by path.
/// There are no stand-ins for implicit fields below it (they apply only where both sides hold
/// the parent). `skip_managed_fields`: `v` is the root's `metadata`, whose `managedFields` the
/// comparison leaves out.
fn one_sided(
    node: &mut FieldSet,
    pe: PathElement,
    v: &Value,
    shape: &Shape<'_>,
    ty: Ty<'_>,
    skip_managed_fields: bool,
) {
    let add = |node: &mut FieldSet, child_pe: PathElement, c: &Value, cty: Ty<'_>| {
        let cshape = cty.shape(c);
        let granular = match &cshape {
            Shape::Leaf => false,
            Shape::Map => !map_empty(c.as_object()),
            Shape::List { .. } => !list_empty(c.as_array()),
        };
        if granular {
            one_sided(node, child_pe, c, &cshape, cty, false);
        } else {
            node.insert_member(child_pe);
        }
    };
    {
        let below = node.node_mut(std::slice::from_ref(&pe));
        match shape {
            Shape::Leaf => {}
            Shape::Map => {
                for (k, c) in v.as_object().into_iter().flatten() {
                    if skip_managed_fields && k == "managedFields" {
                        continue;
                    }
                    add(below, PathElement::Field(k.clone()), c, ty.child(k));
                }
            }
            Shape::List { keys, items } => {
                for (item_pe, item) in index_items(v.as_array(), keys.as_deref(), *items) {
                    add(below, item_pe, item, *items);
                }
            }
        }
    }
    node.prune_child(&pe);
    node.insert_member(pe);
}

/// Merges `rhs` (an applied configuration) into `lhs` (the live object): maps key by key, list
/// maps and sets item by item (live order kept, new items placed as upstream places them),
/// everything atomic replaced by `rhs`.
pub(super) fn merge(lhs: Option<&Value>, rhs: Option<&Value>, ty: Ty<'_>) -> Option<Value> {
    let shape = match (lhs.map(|v| ty.shape(v)), rhs.map(|v| ty.shape(v))) {
        (Some(a), Some(b)) if a.class() != b.class() => return rhs.cloned(),
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => return None,
    };
    match shape {
        Shape::Leaf => rhs.or(lhs).cloned(),
        Shape::Map => {
            let (lm, rm) = (as_map(lhs), as_map(rhs));
            if map_empty(lm) && map_empty(rm) {
                return rhs.or(lhs).cloned();
            }
            let mut out = Map::new();
            for (k, lv) in lm.into_iter().flatten() {
                if let Some(v) = merge(Some(lv), rm.and_then(|m| m.get(k)), ty.child(k)) {
                    out.insert(k.clone(), v);
                }
            }
            for (k, rv) in rm.into_iter().flatten() {
                if !lm.is_some_and(|m| m.contains_key(k))
                    && let Some(v) = merge(None, Some(rv), ty.child(k))
                {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        Shape::List { keys, items } => {
            let (ll, rl) = (as_list(lhs), as_list(rhs));
            if list_empty(ll) && list_empty(rl) {
                return rhs.or(lhs).cloned();
            }
            Some(Value::Array(merge_list(ll, rl, keys.as_deref(), items)))
        }
    }
}

/// One live item during a list merge.
struct LiveItem<'v> {
    pe: Option<PathElement>,
    value: &'v Value,
    /// The first live item with a key the configuration also has.
    shared: bool,
    /// A later duplicate of such an item: replaced by the merged one.
    dropped: bool,
}

/// Upstream's list merge order: walk both lists; an item in both is merged where the
/// configuration next wants a shared item, live-only items stay where they are, and
/// configuration-only items come in configuration order at the point they are reached.
fn merge_list(lhs: Option<&Vec<Value>>, rhs: Option<&Vec<Value>>, keys: Option<&[&str]>, items: Ty<'_>) -> Vec<Value> {
    let mut rhs_items: Vec<(PathElement, &Value)> = Vec::new();
    let mut rhs_map: BTreeMap<PathElement, &Value> = BTreeMap::new();
    for item in rhs.into_iter().flatten() {
        if let Ok(pe) = items.item_element(keys, item)
            && !rhs_map.contains_key(&pe)
        {
            rhs_map.insert(pe.clone(), item);
            rhs_items.push((pe, item));
        }
    }
    let mut first: BTreeMap<PathElement, usize> = BTreeMap::new();
    let mut live: Vec<LiveItem<'_>> = Vec::new();
    for (i, item) in lhs.into_iter().flatten().enumerate() {
        let pe = items.item_element(keys, item).ok();
        let (mut shared, mut dropped) = (false, false);
        if let Some(pe) = &pe
            && rhs_map.contains_key(pe)
        {
            if first.contains_key(pe) {
                dropped = true;
            } else {
                first.insert(pe.clone(), i);
                shared = true;
            }
        }
        live.push(LiveItem { pe, value: item, shared, dropped });
    }
    let mut shared_order: VecDeque<&PathElement> =
        rhs_items.iter().map(|(pe, _)| pe).filter(|pe| first.contains_key(*pe)).collect();
    let mut next_shared = shared_order.pop_front();

    let mut out = Vec::with_capacity(live.len().max(rhs_items.len()));
    let (mut li, mut ri) = (0, 0);
    while li < live.len() || ri < rhs_items.len() {
        if li < live.len() && live[li].dropped {
            li += 1;
            continue;
        }
        if li < live.len() && ri < rhs_items.len() && live[li].shared {
            let pe = live[li].pe.as_ref();
            if pe == Some(&rhs_items[ri].0) {
                out.extend(merge(Some(live[li].value), Some(rhs_items[ri].1), items));
                li += 1;
                ri += 1;
                next_shared = shared_order.pop_front();
                continue;
            }
            if next_shared.is_some() && next_shared != pe {
                // A shared item the configuration wants later: it is placed then.
                li += 1;
                continue;
            }
        }
        if li < live.len() && !live[li].shared {
            out.push(live[li].value.clone());
            li += 1;
            continue;
        }
        if ri < rhs_items.len() {
            let (pe, rv) = &rhs_items[ri];
            let lv = first.get(pe).map(|&i| live[i].value);
            out.extend(merge(lv, Some(rv), items));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared_order.pop_front();
            }
        } else {
            // Unreachable with unique keys; guarantees progress regardless.
            li += 1;
        }
    }
    out
}

/// `v` without the members of `to_remove` (each removed with everything below it). A map or
/// list emptied by the removal is dropped, as upstream's typed objects drop it.
///
/// `config` is the applied configuration at the same position: where it still mentions a
/// removed field (as an empty list or map, or `null`, owning nothing), the field takes the
/// configuration's value instead of disappearing — upstream drops it and puts it back on the
/// next apply; keeping it makes re-applying a no-op at once.
pub(super) fn remove(v: &Value, to_remove: &FieldSet, ty: Ty<'_>, config: Option<&Value>) -> Value {
    match (ty.shape(v), v) {
        (Shape::Map, Value::Object(m)) if !m.is_empty() => {
            let cfg = config.and_then(Value::as_object);
            let mut out = Map::new();
            for (k, c) in m {
                let pe = PathElement::Field(k.clone());
                let cfg_c = cfg.and_then(|m| m.get(k));
                if let Some(kept) = removed_or_kept(c, &pe, to_remove, ty.child(k), cfg_c) {
                    out.insert(k.clone(), kept);
                }
            }
            Value::Object(out)
        }
        (Shape::List { keys, items }, Value::Array(list)) if !list.is_empty() => {
            let cfg_items = index_items(config.and_then(Value::as_array), keys.as_deref(), items);
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let Ok(pe) = items.item_element(keys.as_deref(), item) else {
                    out.push(item.clone());
                    continue;
                };
                let cfg_item = cfg_items.iter().find(|(p, _)| *p == pe).map(|(_, v)| *v);
                out.extend(removed_or_kept(item, &pe, to_remove, items, cfg_item));
            }
            Value::Array(out)
        }
        _ => v.clone(),
    }
}

/// What becomes of the child `c` at `pe` while removing `to_remove`.
fn removed_or_kept(
    c: &Value,
    pe: &PathElement,
    to_remove: &FieldSet,
    ty: Ty<'_>,
    config: Option<&Value>,
) -> Option<Value> {
    if to_remove.has_member(pe) {
        return config.cloned();
    }
    let Some(sub) = to_remove.child(pe) else {
        return Some(c.clone());
    };
    let nc = remove(c, sub, ty, config);
    if emptied(c, &nc) { config.cloned() } else { Some(nc) }
}

fn emptied(before: &Value, after: &Value) -> bool {
    let size = |v: &Value| match v {
        Value::Object(m) => Some(m.len()),
        Value::Array(a) => Some(a.len()),
        _ => None,
    };
    matches!((size(before), size(after)), (Some(b), Some(0)) if b > 0)
}

/// `set` plus, as members, the declared struct fields on the way to its members ("a.b.c" also
/// owns "a" when "a" is a struct field, but not a map entry or list item).
pub(super) fn ensure_named_fields(set: &FieldSet, ty: Ty<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, child) in set.children() {
        let child_ty = match pe {
            PathElement::Field(name) => {
                if ty.declares(name) {
                    out.insert_member(pe.clone());
                }
                ty.child(name)
            }
            PathElement::Key(_) => ty.items(),
            _ => Ty::Untyped,
        };
        out.set_child(pe.clone(), ensure_named_fields(child, child_ty));
    }
    out
}

/// One problem in an applied configuration, at a path (upstream `ValidationError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    pub(super) path: Path,
    pub(super) message: String,
}

/// The errors upstream's typed conversion reports for an applied configuration: list items
/// without their keys (and no default), set items that are not scalars, duplicate items.
pub(super) fn validate(v: &Value, ty: Ty<'_>) -> Vec<Invalid> {
    let mut errs = Vec::new();
    validate_at(v, ty, &mut Vec::new(), &mut errs);
    errs
}

fn validate_at(v: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, errs: &mut Vec<Invalid>) {
    match (ty.shape(v), v) {
        (Shape::Map, Value::Object(m)) => {
            for (k, c) in m {
                path.push(PathElement::Field(k.clone()));
                validate_at(c, ty.child(k), path, errs);
                path.pop();
            }
        }
        (Shape::List { keys, items }, Value::Array(list)) => {
            let mut seen = BTreeSet::new();
            for (i, item) in list.iter().enumerate() {
                match items.item_element(keys.as_deref(), item) {
                    Err(reason) => {
                        errs.push(Invalid { path: Path(path.clone()), message: format!("element {i}: {reason}") })
                    }
                    Ok(pe) => {
                        if !seen.insert(pe.clone()) {
                            errs.push(Invalid {
                                path: Path(path.clone()),
                                message: format!("duplicate entries for key {pe}"),
                            });
                        }
                        path.push(pe);
                        validate_at(item, items, path, errs);
                        path.pop();
                    }
                }
            }
        }
        _ => {}
    }
}
