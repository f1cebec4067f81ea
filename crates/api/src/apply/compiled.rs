//! The built-in definitions as the walks read them, resolved once per schema position.
//!
//! A [`Schema`] cursor answers each question (`property("spec")`, `items()`, "is this a
//! reference?", `x-kubernetes-list-type`) by hashed lookups in the definition's JSON, and a
//! walk asks a dozen of them for every value of every object it compares. The built-in
//! definitions never change and are never freed, so each of their positions is read once into a
//! [`Node`]: its facts, and its declared properties sorted by name with their own nodes. After
//! that, a walk moves from a field to its child by a binary search over a few names and a
//! pointer, with no hashing.
//!
//! Nodes are made on first use, one per schema node (interned by its address), and live for the
//! process, like the definitions they describe. Custom resources' schemas are dropped with their
//! definitions and keep using the cursor directly.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::types::{Facts, Implicit, implicit_in};
use crate::schema::Schema;

/// One position of the built-in definitions, read once.
pub(super) struct Node {
    pub(super) schema: Schema<'static>,
    pub(super) facts: Facts,
    /// `x-kubernetes-preserve-unknown-fields` here (inherited by inline children).
    pub(super) preserves: bool,
    /// Whether the position is a reference to a definition (children reached through it start
    /// a new definition, which does not inherit `preserves`).
    pub(super) named: bool,
    children: OnceLock<Children>,
    /// The keys of a list map here, or `None` for any other list (see `Ty::list_shape`).
    list_keys: OnceLock<Option<Box<[&'static str]>>>,
}

/// What is below a position.
struct Children {
    /// Declared properties, sorted by name, each with what upstream's Go type holds when the
    /// JSON omits it (not at the root, whose rule is different).
    props: Box<[(&'static str, &'static Node, Option<Implicit>)]>,
    additional: Option<&'static Node>,
    items: Option<&'static Node>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("schema", &self.schema.name()).finish_non_exhaustive()
    }
}

impl Node {
    fn new(schema: Schema<'static>) -> Node {
        Node {
            schema,
            facts: Facts::read(schema),
            preserves: schema.preserves_unknown_fields(),
            named: schema.name().is_some(),
            children: OnceLock::new(),
            list_keys: OnceLock::new(),
        }
    }

    fn children(&self) -> &Children {
        self.children.get_or_init(|| {
            let mut props: Vec<_> =
                self.schema.properties().map(|(k, s)| (k, intern(s), implicit_in(self.schema, k))).collect();
            props.sort_unstable_by(|a, b| a.0.cmp(b.0));
            Children {
                props: props.into_boxed_slice(),
                additional: self.schema.additional_properties().map(intern),
                items: self.schema.items().map(intern),
            }
        })
    }

    fn prop(&self, name: &str) -> Option<&(&'static str, &'static Node, Option<Implicit>)> {
        let props = &self.children().props;
        props.binary_search_by(|p| p.0.cmp(name)).ok().map(|i| &props[i])
    }

    /// The node of declared property `name`.
    pub(super) fn property(&self, name: &str) -> Option<&'static Node> {
        self.prop(name).map(|p| p.1)
    }

    /// The node of a map's values (`additionalProperties`).
    pub(super) fn additional(&self) -> Option<&'static Node> {
        self.children().additional
    }

    /// The node of a list's items.
    pub(super) fn items(&self) -> Option<&'static Node> {
        self.children().items
    }

    /// See `Ty::implicit`, for a position that is not the root; `None` for an undeclared name
    /// (the tables name declared properties only).
    pub(super) fn implicit(&self, name: &str) -> Option<Implicit> {
        self.prop(name).and_then(|p| p.2)
    }

    /// The keys of a list map at this position, read once.
    pub(super) fn list_keys(
        &self,
        read: impl FnOnce(Schema<'static>) -> Option<Box<[&'static str]>>,
    ) -> Option<&[&'static str]> {
        self.list_keys.get_or_init(|| read(self.schema)).as_deref()
    }
}

/// Nodes by the address of their schema node: made once each, never freed.
fn nodes() -> &'static Mutex<HashMap<usize, &'static Node, foldhash::fast::RandomState>> {
    static NODES: OnceLock<Mutex<HashMap<usize, &'static Node, foldhash::fast::RandomState>>> = OnceLock::new();
    NODES.get_or_init(Mutex::default)
}

/// The node of a built-in schema position.
fn intern(schema: Schema<'static>) -> &'static Node {
    let id = std::ptr::from_ref(schema.node()) as usize;
    let mut nodes = nodes().lock().unwrap_or_else(|e| e.into_inner());
    nodes.entry(id).or_insert_with(|| Box::leak(Box::new(Node::new(schema))))
}

/// The node of `schema` when it is a whole built-in definition (a field manager's root), found
/// by the address of its schema node: a root cursor is all a caller has, and its lifetime is
/// not `'static` even though the definitions are.
pub(super) fn root(schema: Schema<'_>) -> Option<&'static Node> {
    let id = schema.builtin_id()?;
    static ROOTS: OnceLock<Mutex<HashMap<usize, Option<&'static Node>, foldhash::fast::RandomState>>> = OnceLock::new();
    let roots = ROOTS.get_or_init(Mutex::default);
    if let Some(found) = roots.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return *found;
    }
    let defs = crate::openapi::definitions();
    let found = defs
        .iter()
        .find(|(_, v)| std::ptr::eq(*v as *const Value, std::ptr::from_ref(schema.node())))
        .and_then(|(name, _)| Schema::root(defs, name))
        .map(intern);
    roots.lock().unwrap_or_else(|e| e.into_inner()).insert(id, found);
    found
}
