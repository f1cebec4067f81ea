//! Server-side apply and field ownership (`metadata.managedFields`), as a pure library: what
//! kube-apiserver's field manager does on every write (`k8s.io/apimachinery/pkg/util/
//! managedfields`, on top of `sigs.k8s.io/structured-merge-diff`).
//!
//! - [`record_update`]: after a create, update, JSON/merge/strategic patch or subresource write,
//!   the writer owns every field it changed, taken from whoever owned it before;
//! - [`apply`]: an applied configuration merged into the live object for one manager — conflicts
//!   with other owners unless forced, fields the manager stopped applying removed unless someone
//!   else still owns them;
//! - [`decode_managed_fields`] / [`encode_managed_fields`] / [`set_managed_fields`]: the wire
//!   form; [`managers_for_update`]: which entries an update starts from;
//! - [`upgrade_client_side_apply`]: kubectl's client-side → server-side apply migration.
//!
//! Field types (list maps, sets, atomic lists and maps) come from a [`Schema`] cursor: the
//! built-in definitions of [`crate::openapi::definitions`], or a custom resource's own schema.
//! [`FieldManager`] holds the per-resource context (apiVersion, subresource, reset fields) when
//! more than the defaults is needed.
//!
//! Where it sits: the API server calls these on every write path, after admission has produced
//! the object to store, and stores the entries in `metadata.managedFields` (see
//! `docs/data-path.md`, "server-side apply"). Nothing here does I/O or panics on any JSON.
//!
//! Deviations from upstream: no conversion between apiVersions (entries of other versions are
//! compared as they are), no schema-change reconciliation of existing entries, no union
//! normalization; Go's typed objects are imitated by small tables (value-typed structs and
//! non-`omitempty` lists that count as present when omitted, list-map key defaults such as a
//! port's `protocol: TCP`) where k8s-openapi's schemas lack upstream's `default`s; and a field
//! a configuration still mentions as empty (`[]`, `{}`, `null`) keeps that value when pruned
//! instead of vanishing for one apply, so re-applying is always a no-op.

mod compiled;
mod conflict;
mod lastapplied;
mod managers;
mod types;
mod walk;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use conflict::{CAUSE_FIELD_MANAGER_CONFLICT, Conflict, conflict_message, conflict_status_parts};
pub use lastapplied::LAST_APPLIED_ANNOTATION;

use self::managers::{Managers, identifier};
use self::types::Ty;
use crate::fieldpath::{FieldSet, FieldsV1Error, Path, values_equal};
use crate::schema::Schema;

/// The manager upstream records the fields of an object with no managed fields under, the first
/// time it is applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager name kubectl uses for client-side apply.
pub const CLIENT_SIDE_APPLY_MANAGER: &str = "kubectl-client-side-apply";

/// How a manager wrote its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ManagedFieldsOperation {
    /// Server-side apply: the entry is the manager's intent.
    Apply,
    /// Any other write: the entry records what the manager last changed.
    Update,
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`?fieldManager=`, or derived from the user agent).
    pub manager: String,
    /// Apply or Update.
    pub operation: ManagedFieldsOperation,
    /// The apiVersion the fields are expressed in (`apps/v1`).
    pub api_version: String,
    /// When the entry last changed the object (RFC 3339, seconds); absent for an applier whose
    /// applies never changed anything.
    pub time: Option<String>,
    /// The fields owned.
    pub fields: FieldSet,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<String>,
}

/// Why `metadata.managedFields` could not be read (upstream's messages).
#[derive(Debug, thiserror::Error)]
pub enum ManagedFieldsError {
    /// `metadata.managedFields` is not a list.
    #[error("metadata.managedFields must be a list")]
    NotAList,
    /// An entry is not a JSON object.
    #[error("managed fields entry {index} is not an object")]
    NotAnEntry {
        /// Position of the entry.
        index: usize,
    },
    /// A string field of an entry holds something else.
    #[error("managed fields entry {index}: {field} must be a string")]
    BadField {
        /// Position of the entry.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// `operation` is neither `Apply` nor `Update`.
    #[error("operation must be `Apply` or `Update`")]
    Operation,
    /// `apiVersion` is empty.
    #[error("apiVersion must not be empty")]
    EmptyApiVersion,
    /// `fieldsType` is missing.
    #[error("missing fieldsType in managed fields entry {index}")]
    MissingFieldsType {
        /// Position of the entry.
        index: usize,
    },
    /// `fieldsType` is not `FieldsV1`.
    #[error("invalid fieldsType {fields_type:?} in managed fields entry {index}")]
    InvalidFieldsType {
        /// Position of the entry.
        index: usize,
        /// The type given.
        fields_type: String,
    },
    /// `fieldsV1` does not parse.
    #[error("error decoding set of managed fields entry {index}: {source}")]
    Fields {
        /// Position of the entry.
        index: usize,
        /// Why.
        #[source]
        source: FieldsV1Error,
    },
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields the applier would change are owned by other managers; see
    /// [`conflict_status_parts`] for the 409 Status.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration sets `metadata.managedFields`.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The configuration is not a JSON object.
    #[error("the applied configuration must be a JSON object")]
    NotAnObject,
    /// The configuration cannot be typed: list items without their keys, duplicate items,
    /// non-scalar set items. The message is upstream's
    /// (`failed to create typed patch object (ns/name; apps/v1, Kind=Deployment): ...`).
    #[error("{0}")]
    InvalidConfig(String),
}

impl ApplyError {
    /// The HTTP status kube-apiserver answers with: 409 (reason `Conflict`) for conflicts, 400
    /// (`BadRequest`) for managed fields or a non-object, 500 (reason unset) for untypable
    /// configurations, which upstream does not turn into a Status itself.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::ManagedFieldsInConfig | ApplyError::NotAnObject => 400,
            ApplyError::InvalidConfig(_) => 500,
        }
    }
}

/// Reads `metadata.managedFields` of an object (no entries when absent).
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    managers::decode(obj)
}

/// The entries as the JSON list stored in `metadata.managedFields`, in upstream's order
/// (appliers first, then oldest first).
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    // Serializing maps of string keys cannot fail.
    serde_json::to_value(managed_fields_json(entries)).unwrap_or_else(|_| Value::Array(Vec::new()))
}

/// `entries` as `metadata.managedFields` serializes, written straight out without building
/// [`encode_managed_fields`]'s tree (a writer that serializes the object anyway need not make a
/// map of every field path first).
pub fn managed_fields_json(entries: &[ManagedFieldsEntry]) -> impl serde::Serialize + '_ {
    let mut sorted: Vec<&ManagedFieldsEntry> = entries.iter().collect();
    managers::sort_entries(&mut sorted);
    ManagedFieldsJson(sorted)
}

struct ManagedFieldsJson<'a>(Vec<&'a ManagedFieldsEntry>);

impl serde::Serialize for ManagedFieldsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|e| e.serialized()))
    }
}

/// Stores `entries` in `obj`'s `metadata.managedFields`, removing the field when there are none
/// (as upstream does). A new field goes where the typed encoding of `ObjectMeta` puts it
/// (fields in sorted order), and no other key moves: the stored form of an object must not
/// depend on whether it went through the typed encoding after its managed fields were set, or
/// writing back what was read would not be a no-op.
pub fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Value::Object(root) = obj else { return };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.shift_remove("managedFields");
        }
        return;
    }
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        crate::strategy::insert_sorted(meta, "managedFields", encode_managed_fields(entries));
    }
}

/// The entries an update starts from (upstream `decodeLiveOrNew`): for a subresource write the
/// stored object's; otherwise the request's own when it carries readable, non-empty entries
/// (how clients edit them), none when it asks for a reset (`[]` or `[{}]`), else the stored
/// object's. Unreadable entries count as none.
pub fn managers_for_update(old: Option<&Value>, new: &Value, subresource: Option<&str>) -> Vec<ManagedFieldsEntry> {
    managers::for_update(old, new, subresource)
}

/// The fields `obj` sets: every leaf, every list-map or set item (`"."`), every entry of a map
/// that is not a declared struct field — upstream's `ToFieldSet`.
pub fn fields_of(obj: &Value, schema: Schema<'_>) -> FieldSet {
    walk::to_set(obj, Ty::root(schema))
}

/// Records an update-style write (create, update, patch, subresource write) by `manager`: the
/// fields that changed between `old` (`None` on create) and `new` are now its own (an Update
/// entry of this apiVersion and subresource, time `now`), and no one else's; removed fields
/// leave every entry; empty entries are dropped. An object written with no entries at all
/// (after a reset) stays untracked until it is applied, as upstream.
#[allow(clippy::too_many_arguments)] // the API server's call site reads best with them spelled out
pub fn record_update(
    old: Option<&Value>,
    new: &Value,
    managers: Vec<ManagedFieldsEntry>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
    schema: Schema<'_>,
) -> Vec<ManagedFieldsEntry> {
    let mut fm = FieldManager::new(schema, api_version);
    if let Some(sub) = subresource {
        fm = fm.with_subresource(sub);
    }
    fm.update(old, new, managers, manager, now)
}

/// Server-side apply of `config` by `manager` onto `live` (`None` to create). Returns the new
/// object, with `metadata.managedFields` set to the returned entries. Applying the same
/// configuration again returns the same object and entries (the applier's `time` only moves
/// when the object changes).
#[allow(clippy::too_many_arguments)] // the API server's call site reads best with them spelled out
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    managers: Vec<ManagedFieldsEntry>,
    manager: &str,
    api_version: &str,
    force: bool,
    now: &str,
    schema: Schema<'_>,
) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
    FieldManager::new(schema, api_version).apply(live, config, managers, manager, force, now)
}

/// kubectl's migration from client-side to server-side apply (`csaupgrade.UpgradeManagedFields`,
/// which kubectl ≥ 1.26 sends as a JSON patch of `metadata.managedFields` before applying): the
/// fields of `csa_manager`'s Update entry join `ssa_manager`'s Apply entry (which the first such
/// Update entry becomes when there is none), and `csa_manager`'s Update entries are dropped.
pub fn upgrade_client_side_apply(
    managers: Vec<ManagedFieldsEntry>,
    csa_manager: &str,
    ssa_manager: &str,
) -> Vec<ManagedFieldsEntry> {
    managers::upgrade(managers, csa_manager, ssa_manager)
}

/// The field manager of one resource: its schema, the apiVersion written, the subresource
/// written through, and the fields the resource's strategy resets on this path (upstream's
/// `GetResetFields`: `status` for a main resource, `spec` etc. for `/status`), which no
/// manager owns there.
#[derive(Clone, Debug)]
pub struct FieldManager<'a> {
    /// The object's schema.
    schema: Schema<'a>,
    /// The apiVersion of requests and of the entries written.
    api_version: String,
    /// The subresource written through.
    subresource: Option<String>,
    /// Fields excluded from ownership on this path.
    reset: FieldSet,
}

/// Fields no entry ever records (upstream `stripMetaManager`).
fn strip_set() -> &'static FieldSet {
    static SET: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
    SET.get_or_init(build_strip_set)
}

fn build_strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        s.insert(&Path::fields(p.iter().copied()).0);
    }
    s
}

/// `obj` without `metadata.managedFields`, which is never compared or merged.
fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.remove("managedFields");
    }
    obj
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// A conflict while applying, with its path kept for the client-side apply check.
type RawConflict = (Conflict, Path);

impl<'a> FieldManager<'a> {
    /// A field manager for objects described by `schema`, written in `api_version`.
    pub fn new(schema: Schema<'a>, api_version: &str) -> Self {
        FieldManager { schema, api_version: api_version.to_string(), subresource: None, reset: FieldSet::new() }
    }

    /// Writes go through `subresource` (`status`, `scale`): entries record it.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = (!subresource.is_empty()).then(|| subresource.to_string());
        self
    }

    /// Fields the strategy resets on this path; they and everything below them are never owned.
    pub fn with_reset_fields(mut self, reset: FieldSet) -> Self {
        self.reset = reset;
        self
    }

    fn ty(&self) -> Ty<'a> {
        Ty::root(self.schema)
    }

    /// See [`fields_of`].
    pub fn fields_of(&self, obj: &Value) -> FieldSet {
        walk::to_set(obj, self.ty())
    }

    /// See [`record_update`].
    pub fn update(
        &self,
        old: Option<&Value>,
        new: &Value,
        managers: Vec<ManagedFieldsEntry>,
        manager: &str,
        now: &str,
    ) -> Vec<ManagedFieldsEntry> {
        // Upstream's skip-non-applied: an existing object without entries is not tracked by
        // updates (only creates and applies start tracking).
        if managers.is_empty() && old.is_some() {
            return Vec::new();
        }
        // `metadata.managedFields` is left out of the comparison (see `take_changes`).
        let empty = empty_object();
        let mut map = managers::to_managers(managers);
        self.track_update(old.unwrap_or(&empty), new, &mut map, manager, now);
        managers::cap_update_managers(&mut map, managers::MAX_UPDATE_MANAGERS);
        managers::from_managers(map)
    }

    /// See [`apply`].
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        managers: Vec<ManagedFieldsEntry>,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
        if !config.is_object() {
            return Err(ApplyError::NotAnObject);
        }
        if config.get("metadata").and_then(|m| m.get("managedFields")).is_some_and(|mf| !mf.is_null()) {
            return Err(ApplyError::ManagedFieldsInConfig);
        }
        let invalid = walk::validate(config, self.ty());
        if !invalid.is_empty() {
            return Err(ApplyError::InvalidConfig(invalid_config_message(config, &invalid)));
        }
        let live_obj = live.map_or_else(empty_object, without_managed_fields);
        let mut map = managers::to_managers(managers);
        if map.is_empty() && live.is_some() {
            // Whatever exists was set by someone: record it before the first apply, so that
            // the apply conflicts with it instead of silently taking it over.
            self.track_update(&empty_object(), &live_obj, &mut map, BEFORE_FIRST_APPLY, now);
            managers::cap_update_managers(&mut map, managers::MAX_UPDATE_MANAGERS);
        }
        let name = if manager.is_empty() { "unknown" } else { manager };
        // Only kubectl's applies may be retried (below), and only they need a copy.
        let retry = (manager == lastapplied::KUBECTL).then(|| map.clone());
        let attempt = match (self.apply_once(&live_obj, config, map, name, force, now), retry) {
            (Err(conflicts), Some(map)) => {
                match lastapplied::allowed_conflicts(&live_obj, &self.api_version, self.ty()) {
                    Some(allowed) => {
                        let remaining: Vec<RawConflict> =
                            conflicts.into_iter().filter(|(_, path)| !allowed.has(&path.0)).collect();
                        if remaining.is_empty() {
                            self.apply_once(&live_obj, config, map, name, true, now)
                        } else {
                            Err(remaining)
                        }
                    }
                    None => Err(conflicts),
                }
            }
            (other, _) => other,
        };
        let (mut obj, map) =
            attempt.map_err(|c| ApplyError::Conflicts(c.into_iter().map(|(conflict, _)| conflict).collect()))?;
        if manager == lastapplied::KUBECTL {
            lastapplied::update_annotation(&mut obj, config);
        }
        let entries = managers::from_managers(map);
        set_managed_fields(&mut obj, &entries);
        Ok((obj, entries))
    }

    /// Upstream's Update path for one write: the changed fields move to `manager`'s Update
    /// entry (time `now`), removed fields leave every entry.
    fn track_update(&self, old: &Value, new: &Value, map: &mut Managers, manager: &str, now: &str) {
        let manager = if manager.is_empty() { "unknown" } else { manager };
        let Ok((mut written, removed)) = self.take_changes(old, new, map, None, true) else { return };
        written.subtract(&removed);
        written.recursive_subtract(&self.reset);
        written.subtract(strip_set());
        if written.is_empty() {
            // Nothing changed: the entry and its time stay as they were.
            return;
        }
        let id = identifier(manager, ManagedFieldsOperation::Update, &self.api_version, self.subresource.as_deref());
        let entry = map.entry(id).or_insert_with(|| ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: ManagedFieldsOperation::Update,
            api_version: self.api_version.clone(),
            time: None,
            fields: FieldSet::new(),
            subresource: self.subresource.clone(),
        });
        entry.fields.union_owned(written);
        entry.time = Some(now.to_string());
    }

    /// Upstream's `Updater.update`: compares `old` and `new`; every manager but `workflow` loses
    /// removed fields, and the changed fields it owns — which are conflicts unless `force`.
    fn take_changes(
        &self,
        old: &Value,
        new: &Value,
        map: &mut Managers,
        workflow: Option<&str>,
        force: bool,
    ) -> Result<(FieldSet, FieldSet), Vec<RawConflict>> {
        let (changed, removed) = walk::compare_without_managed_fields(old, new, self.ty(), true)
            .exclude(&self.reset)
            .into_changed_and_removed();
        let conflicts: Vec<(String, FieldSet)> = map
            .iter()
            .filter(|(id, e)| Some(id.as_str()) != workflow && e.fields.intersects(&changed))
            .map(|(id, e)| (id.clone(), e.fields.intersection(&changed)))
            .collect();
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (id, set) in &conflicts {
                let Some(e) = map.get(id) else { continue };
                for path in set.paths() {
                    let conflict = Conflict {
                        manager: e.manager.clone(),
                        operation: e.operation,
                        api_version: e.api_version.clone(),
                        subresource: e.subresource.clone(),
                        field: path.to_string(),
                    };
                    out.push((conflict, path));
                }
            }
            return Err(out);
        }
        for (id, set) in &conflicts {
            if let Some(e) = map.get_mut(id) {
                e.fields.subtract(set);
            }
        }
        if !removed.is_empty() {
            for (id, e) in map.iter_mut() {
                if Some(id.as_str()) != workflow {
                    e.fields.subtract(&removed);
                }
            }
        }
        map.retain(|_, e| !e.fields.is_empty());
        Ok((changed, removed))
    }

    /// One attempt at upstream's `Updater.Apply` (plus the time and meta-stripping wrappers).
    fn apply_once(
        &self,
        live: &Value,
        config: &Value,
        mut map: Managers,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Managers), Vec<RawConflict>> {
        let ty = self.ty();
        let id = identifier(manager, ManagedFieldsOperation::Apply, &self.api_version, self.subresource.as_deref());
        let merged = walk::merge(Some(live), Some(config), ty).unwrap_or_else(|| config.clone());
        let entry = map.entry(id.clone()).or_insert_with(|| ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: ManagedFieldsOperation::Apply,
            api_version: self.api_version.clone(),
            time: None,
            fields: FieldSet::new(),
            subresource: self.subresource.clone(),
        });
        // What this manager applied last time (its entry is replaced just below).
        let last = std::mem::replace(&mut entry.fields, walk::to_set(config, ty));
        entry.fields.recursive_subtract(&self.reset);
        entry.api_version = self.api_version.clone();
        // Applying what it applied last time (values aside) prunes nothing: the applier still
        // owns all of it (see `prune`).
        let reapplied = last.is_subset_of(&entry.fields);
        let merged = if reapplied { merged } else { self.prune(merged, config, &map, &last) };
        self.take_changes(live, &merged, &mut map, Some(&id), force)?;
        let changed = !values_equal(live, &merged);
        if let Some(e) = map.get_mut(&id) {
            e.fields.subtract(strip_set());
            if changed {
                e.time = Some(now.to_string());
            }
        }
        map.retain(|_, e| !e.fields.is_empty());
        Ok((if changed { merged } else { live.clone() }, map))
    }

    /// Upstream's `prune`: removes from `merged` what the applier applied last time (`last`)
    /// and no manager — the applier's new configuration included — owns now. Struct fields on
    /// the way count as owned (upstream's `EnsureNamedFieldsAreMembers`), so a struct nobody
    /// owns anything in any more goes away whole.
    fn prune(&self, merged: Value, config: &Value, map: &Managers, last: &FieldSet) -> Value {
        let ty = self.ty();
        let owned = map.values().fold(FieldSet::new(), |mut acc, e| {
            acc.union_with(&e.fields);
            acc
        });
        // The usual re-apply: everything applied last time still has an owner. Adding the
        // named fields on the way is done path by path, so `last ⊆ owned` keeps holding after
        // it, and nothing is doomed: no need to build the sets below.
        if last.is_subset_of(&owned) {
            return merged;
        }
        let last = walk::ensure_named_fields(last, ty);
        let present = walk::ensure_named_fields(&walk::to_set(&merged, ty), ty);
        let owned = walk::ensure_named_fields(&owned, ty);
        let doomed = present.intersection(&last).difference(&owned);
        if doomed.is_empty() { merged } else { walk::remove(&merged, &doomed, ty, Some(config)) }
    }
}

/// Upstream's error for a configuration its typed conversion rejects.
fn invalid_config_message(config: &Value, errs: &[walk::Invalid]) -> String {
    let meta = |k: &str| config.get("metadata").and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("");
    let api_version = config.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let one = |e: &walk::Invalid| {
        if e.path.0.is_empty() { e.message.clone() } else { format!("{}: {}", e.path, e.message) }
    };
    let detail = match errs {
        [only] => one(only),
        _ => std::iter::once("errors:".to_string())
            .chain(errs.iter().map(|e| format!("  {}", one(e))))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    format!(
        "failed to create typed patch object ({}/{}; {group}/{version}, Kind={kind}): {detail}",
        meta("namespace"),
        meta("name")
    )
}
