//! Sets of field paths: what a field manager owns, in structured-merge-diff's model
//! (`sigs.k8s.io/structured-merge-diff/fieldpath`).
//!
//! A path walks from the object's root through [`PathElement`]s: a field of an object
//! (`.spec`), an item of a list map by its key fields (`[name="web"]`), an item of a set by its
//! value (`[="a"]`), or (rarely) a list index. A [`FieldSet`] is a trie of such paths; a path is a
//! *member* when it is owned itself (a leaf, a list item, a map entry), and a *child* node when
//! only paths below it are members. Both can hold at once — that is the `"."` of the wire form.
//!
//! The wire form is upstream's `FieldsV1` JSON (`{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":
//! {".":{},"f:image":{}}}}}`), read and written by [`FieldSet::from_fields_v1`] and
//! [`FieldSet::to_fields_v1`] byte-compatibly with upstream (same ordering, same key JSON).
//!
//! Where it sits: [`crate::apply`] computes these sets on every write and stores them in
//! `metadata.managedFields` (see `docs/data-path.md`, "server-side apply").

mod serialize;
mod value;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

pub use serialize::{FieldsV1, FieldsV1Error};

pub(crate) use value::{equal as values_equal, go_json, go_quote, write_go_string};

/// One step of a [`Path`].
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of an object (a struct field or a map key): `f:<name>`.
    Field(String),
    /// An item of a list map, selected by its key fields sorted by name: `k:{...}`.
    Key(Vec<(String, Value)>),
    /// An item of a set, selected by its value: `v:<json>`.
    Value(Value),
    /// An item of a list by position: `i:<n>` (only ever read; atomic lists are not walked).
    Index(usize),
}

impl PathElement {
    /// A list-map key element; the fields are sorted by name as upstream requires (a repeated
    /// name keeps its last value, as reading JSON does).
    pub fn key(fields: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
        fields.reverse();
        // Stable: of equal names, the last given comes first now and survives `dedup_by`.
        fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        fields.dedup_by(|later, earlier| later.0 == earlier.0);
        PathElement::Key(fields)
    }

    fn kind_rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

/// Upstream's `PathElement.Compare`: fields, then keys, then values, then indexes.
impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    match ka.as_bytes().cmp(kb.as_bytes()).then_with(|| value::compare(va, vb)) {
                        Ordering::Equal => {}
                        other => return other,
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.kind_rank().cmp(&other.kind_rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Upstream's `PathElement.String`: `.name`, `[k=v,k2=v2]`, `[=v]`, `[i]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", value::to_display(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_display(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root; displays as upstream prints it
/// (`.spec.template.spec.containers[name="nginx"].image`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names only, e.g. `Path::fields(["spec", "replicas"])`.
    pub fn fields<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Path(names.into_iter().map(|n| PathElement::Field(n.into())).collect())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

/// A set of field paths, stored as a trie. Empty child nodes are never kept, so structural
/// equality is set equality.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Paths (relative to this node) of length one that are in the set.
    members: BTreeSet<PathElement>,
    /// Subtrees holding longer paths; being a child says nothing about membership.
    children: BTreeMap<PathElement, FieldSet>,
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.paths().iter().map(|p| p.to_string())).finish()
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of the given paths.
    pub fn from_paths<'p>(paths: impl IntoIterator<Item = &'p Path>) -> Self {
        let mut set = Self::new();
        for p in paths {
            set.insert(&p.0);
        }
        set
    }

    /// Whether no path is a member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// The number of member paths.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// Adds `path` (parents are *not* added). The empty path (the whole object) is never owned.
    pub fn insert(&mut self, path: &[PathElement]) {
        // Elements are cloned only where the trie grows: this runs for every field of every
        // object written, and most steps follow nodes that exist.
        match path {
            [] => {}
            [last] => {
                if !self.members.contains(last) {
                    self.members.insert(last.clone());
                }
            }
            [first, rest @ ..] => match self.children.get_mut(first) {
                Some(child) => child.insert(rest),
                None => {
                    let mut child = FieldSet::new();
                    child.insert(rest);
                    self.children.insert(first.clone(), child);
                }
            },
        }
    }

    /// The node holding the paths below `path` (relative to it), created where missing.
    pub(crate) fn node_mut(&mut self, path: &[PathElement]) -> &mut FieldSet {
        match path {
            [] => self,
            [first, rest @ ..] => {
                if !self.children.contains_key(first) {
                    self.children.insert(first.clone(), FieldSet::new());
                }
                self.children.get_mut(first).expect("inserted above").node_mut(rest)
            }
        }
    }

    /// Drops the child node at `pe` if it holds no path (a trie keeps no empty nodes).
    pub(crate) fn prune_child(&mut self, pe: &PathElement) {
        if self.children.get(pe).is_some_and(FieldSet::is_empty) {
            self.children.remove(pe);
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether `pe` (a path of length one) is a member.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The members of this node (paths of length one), in order.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// The child nodes, in order.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// The paths below `pe`, relative to it (upstream `WithPrefix`); `None` when there are none.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Adds the paths of `other` (in place: only what `self` lacks is copied).
    pub fn union_with(&mut self, other: &FieldSet) {
        for pe in &other.members {
            if !self.members.contains(pe) {
                self.members.insert(pe.clone());
            }
        }
        for (pe, set) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(set),
                None => {
                    if !set.is_empty() {
                        self.children.insert(pe.clone(), set.clone());
                    }
                }
            }
        }
    }

    /// Adds the paths of `other`, taking its nodes instead of copying them.
    pub fn union_owned(&mut self, other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let mut members = other.members;
        self.members.append(&mut members);
        for (pe, set) in other.children {
            match self.children.get_mut(&pe) {
                Some(mine) => mine.union_owned(set),
                None => {
                    if !set.is_empty() {
                        self.children.insert(pe, set);
                    }
                }
            }
        }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, set)| {
                let theirs = other.children.get(pe)?;
                let both = set.intersection(theirs);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Whether some path is in both sets (an [`FieldSet::intersection`] that is not empty).
    pub fn intersects(&self, other: &FieldSet) -> bool {
        self.members.iter().any(|pe| other.members.contains(pe))
            || self.children.iter().any(|(pe, set)| other.children.get(pe).is_some_and(|theirs| set.intersects(theirs)))
    }

    /// Whether every path of `self` is a path of `other` (an empty [`FieldSet::difference`]).
    pub fn is_subset_of(&self, other: &FieldSet) -> bool {
        self.members.iter().all(|pe| other.members.contains(pe))
            && self.children.iter().all(|(pe, set)| match other.children.get(pe) {
                Some(theirs) => set.is_subset_of(theirs),
                None => set.is_empty(),
            })
    }

    /// Paths of `self` that are not paths of `other`. As upstream, a member of `other` does not
    /// remove paths below it (use [`FieldSet::recursive_difference`] for that).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.subtract(other);
        out
    }

    /// Removes the paths of `other` (in place [`FieldSet::difference`]).
    pub fn subtract(&mut self, other: &FieldSet) {
        for pe in &other.members {
            self.members.remove(pe);
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.subtract(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// Paths of `self` that are neither paths of `other` nor below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.recursive_subtract(other);
        out
    }

    /// Removes the paths of `other` and everything below its members (in place
    /// [`FieldSet::recursive_difference`]).
    pub fn recursive_subtract(&mut self, other: &FieldSet) {
        for pe in &other.members {
            self.members.remove(pe);
            self.children.remove(pe);
        }
        for (pe, theirs) in &other.children {
            if other.members.contains(pe) {
                continue;
            }
            if let Some(mine) = self.children.get_mut(pe) {
                mine.recursive_subtract(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// Only the leaves: members that have no member paths below them.
    pub fn leaves(&self) -> FieldSet {
        let members = self.members.iter().filter(|pe| !self.children.contains_key(pe)).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, set)| (pe.clone(), set.leaves()))
            .filter(|(_, set)| !set.is_empty())
            .collect();
        FieldSet { members, children }
    }

    /// All member paths in upstream's iteration order: a node's members first, then its child
    /// nodes depth-first, each in path-element order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(Path(p));
        }
        for (pe, set) in &self.children {
            prefix.push(pe.clone());
            set.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Adds `pe` as a member of this node (used when walking a schema alongside the set).
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Replaces the child node `pe` (dropping it when `set` is empty).
    pub(crate) fn set_child(&mut self, pe: PathElement, set: FieldSet) {
        if set.is_empty() {
            self.children.remove(&pe);
        } else {
            self.children.insert(pe, set);
        }
    }
}

#[cfg(test)]
mod tests;
