//! `metadata.managedFields` entries: their JSON form, upstream's manager identity and ordering,
//! the cap on update entries, which entries an update starts from, and kubectl's client-side →
//! server-side apply migration (`k8s.io/apimachinery/pkg/util/managedfields/internal` and
//! `k8s.io/client-go/util/csaupgrade`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{ManagedFieldsEntry, ManagedFieldsError, ManagedFieldsOperation};
use crate::fieldpath::{FieldSet, write_go_string};

/// Upstream's `DefaultMaxUpdateManagers`: beyond this many update entries, the oldest are merged.
pub(super) const MAX_UPDATE_MANAGERS: usize = 10;
/// The entry the oldest update entries are merged into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Working form of a list of entries: keyed by upstream's manager identifier, which is what
/// makes two entries "the same manager".
pub(super) type Managers = BTreeMap<String, ManagedFieldsEntry>;

impl ManagedFieldsOperation {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedFieldsOperation::Apply => "Apply",
            ManagedFieldsOperation::Update => "Update",
        }
    }
}

/// Upstream's `BuildManagerIdentifier`: the entry's JSON without fields and time, and without
/// the apiVersion for appliers (an applier stays one entry across versions).
pub(super) fn identifier(
    manager: &str,
    operation: ManagedFieldsOperation,
    api_version: &str,
    subresource: Option<&str>,
) -> String {
    let mut out = String::from("{");
    let mut sep = "";
    let mut field = |name: &str, value: &str, out: &mut String| {
        if !value.is_empty() {
            out.push_str(sep);
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            write_go_string(value, out);
            sep = ",";
        }
    };
    field("manager", manager, &mut out);
    field("operation", operation.as_str(), &mut out);
    if operation == ManagedFieldsOperation::Update {
        field("apiVersion", api_version, &mut out);
    }
    field("subresource", subresource.unwrap_or(""), &mut out);
    out.push('}');
    out
}

impl ManagedFieldsEntry {
    /// Upstream's manager identifier of this entry.
    pub(super) fn identifier(&self) -> String {
        identifier(&self.manager, self.operation, &self.api_version, self.subresource.as_deref())
    }

    /// The entry as it serializes in `metadata.managedFields`, written straight out without
    /// building a JSON tree ([`ManagedFieldsEntry::to_json`] is its tree).
    pub(super) fn serialized(&self) -> impl serde::Serialize + '_ {
        Serialized(self)
    }

    /// The entry as it appears in `metadata.managedFields` (keys in upstream's order).
    pub fn to_json(&self) -> Value {
        // Serializing maps of string keys cannot fail.
        serde_json::to_value(self.serialized()).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Reads one entry; `index` is its position, for upstream's messages.
    pub fn from_json(entry: &Value, index: usize) -> Result<ManagedFieldsEntry, ManagedFieldsError> {
        let Value::Object(m) = entry else {
            return Err(ManagedFieldsError::NotAnEntry { index });
        };
        let string = |key: &'static str| -> Result<Option<String>, ManagedFieldsError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ManagedFieldsError::BadField { index, field: key }),
            }
        };
        let operation = match string("operation")?.as_deref() {
            Some("Apply") => ManagedFieldsOperation::Apply,
            Some("Update") => ManagedFieldsOperation::Update,
            _ => return Err(ManagedFieldsError::Operation),
        };
        let api_version = string("apiVersion")?.unwrap_or_default();
        if api_version.is_empty() {
            return Err(ManagedFieldsError::EmptyApiVersion);
        }
        match string("fieldsType")?.as_deref() {
            Some("FieldsV1") => {}
            None | Some("") => return Err(ManagedFieldsError::MissingFieldsType { index }),
            Some(other) => return Err(ManagedFieldsError::InvalidFieldsType { index, fields_type: other.to_string() }),
        }
        let fields = match m.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(doc) => {
                FieldSet::from_fields_v1(doc).map_err(|source| ManagedFieldsError::Fields { index, source })?
            }
        };
        Ok(ManagedFieldsEntry {
            manager: string("manager")?.unwrap_or_default(),
            operation,
            api_version,
            time: string("time")?,
            fields,
            subresource: string("subresource")?.filter(|s| !s.is_empty()),
        })
    }
}

/// The entries keyed by identity; of two entries with one identity the later wins, as in
/// upstream's map.
pub(super) fn to_managers(entries: Vec<ManagedFieldsEntry>) -> Managers {
    entries.into_iter().map(|e| (e.identifier(), e)).collect()
}

/// Seconds since the epoch of an RFC 3339 time; 0 when absent or unreadable (as upstream's nil).
fn unix_seconds(time: Option<&str>) -> i64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(0, |t| t.as_second())
}

/// Upstream's `sortEncodedManagedFields`: by operation, time, manager, apiVersion, subresource.
pub(super) fn sort_entries<E: std::borrow::Borrow<ManagedFieldsEntry>>(entries: &mut [E]) {
    entries.sort_by_cached_key(|e| {
        let e = e.borrow();
        (
            e.operation.as_str(),
            unix_seconds(e.time.as_deref()),
            e.manager.clone(),
            e.api_version.clone(),
            e.subresource.clone().unwrap_or_default(),
        )
    });
}

/// The managers as a sorted list of entries, dropping empty ones.
pub(super) fn from_managers(managers: Managers) -> Vec<ManagedFieldsEntry> {
    let mut out: Vec<ManagedFieldsEntry> = managers.into_values().filter(|e| !e.fields.is_empty()).collect();
    sort_entries(&mut out);
    out
}

/// Upstream's `capManagersManager`: while there are more than `max` update entries, the oldest
/// are merged, per apiVersion, into an `ancient-changes` entry.
pub(super) fn cap_update_managers(managers: &mut Managers, max: usize) {
    let mut updaters: Vec<String> = managers
        .iter()
        .filter(|(_, e)| e.operation == ManagedFieldsOperation::Update)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        let (ta, tb) = (managers[a].time.as_deref(), managers[b].time.as_deref());
        unix_seconds(ta).cmp(&unix_seconds(tb)).then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(entry) = managers.get(&id).cloned() else { continue };
        let version = entry.api_version.clone();
        let bucket = identifier(ANCIENT_CHANGES, ManagedFieldsOperation::Update, &version, None);
        match first_of_version.get(&version) {
            Some(first) => {
                if !managers.contains_key(&bucket)
                    && let Some(mut moved) = managers.remove(first)
                {
                    moved.manager = ANCIENT_CHANGES.to_string();
                    moved.subresource = None;
                    managers.insert(bucket.clone(), moved);
                }
                let merged = match managers.get(&bucket) {
                    Some(b) => entry.fields.union(&b.fields),
                    None => entry.fields.clone(),
                };
                managers.remove(&id);
                managers.insert(
                    bucket,
                    ManagedFieldsEntry {
                        manager: ANCIENT_CHANGES.to_string(),
                        operation: ManagedFieldsOperation::Update,
                        api_version: version,
                        // The merged-in entry's time: it is the more recent one.
                        time: entry.time,
                        fields: merged,
                        subresource: None,
                    },
                );
                length -= 1;
            }
            None => {
                first_of_version.insert(version, id);
            }
        }
    }
}

/// Reads `metadata.managedFields` of `obj`; no entries when absent.
pub(super) fn decode(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    match obj.get("metadata").and_then(|m| m.get("managedFields")) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, e)| ManagedFieldsEntry::from_json(e, i)).collect()
        }
        Some(_) => Err(ManagedFieldsError::NotAList),
    }
}

/// Upstream's `isResetManagedFields`: an empty list, or a list of one empty entry, asks to drop
/// all managed fields.
fn is_reset(obj: &Value) -> bool {
    match obj.get("metadata").and_then(|m| m.get("managedFields")) {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(Map::is_empty),
            _ => false,
        },
        _ => false,
    }
}

/// Upstream's `decodeLiveOrNew`: the entries an update starts from. A subresource write uses
/// the stored object's; otherwise the request's own entries when it sends readable, non-empty
/// ones (that is how clients edit managedFields, e.g. kubectl's CSA → SSA migration patch), an
/// explicit reset gives none, and anything else falls back to the stored object's.
pub(super) fn for_update(old: Option<&Value>, new: &Value, subresource: Option<&str>) -> Vec<ManagedFieldsEntry> {
    let stored = || old.map(|o| decode(o).unwrap_or_default()).unwrap_or_default();
    if subresource.is_some() {
        return stored();
    }
    if is_reset(new) {
        return Vec::new();
    }
    match decode(new) {
        Ok(entries) if !entries.is_empty() => entries,
        _ => stored(),
    }
}

/// kubectl's `csaupgrade.UpgradeManagedFields` for one client-side manager name.
pub(super) fn upgrade(entries: Vec<ManagedFieldsEntry>, csa: &str, ssa: &str) -> Vec<ManagedFieldsEntry> {
    let mut entries = entries;
    let is_ssa = |e: &ManagedFieldsEntry| {
        e.manager == ssa && e.operation == ManagedFieldsOperation::Apply && e.subresource.is_none()
    };
    let is_csa = |e: &ManagedFieldsEntry| {
        e.manager == csa && e.operation == ManagedFieldsOperation::Update && e.subresource.is_none()
    };
    let target = match entries.iter().position(is_ssa) {
        Some(i) => i,
        None => {
            // No applier yet: the first client-side entry becomes it.
            let Some(i) = entries.iter().position(is_csa) else {
                return entries;
            };
            entries[i].operation = ManagedFieldsOperation::Apply;
            entries[i].manager = ssa.to_string();
            i
        }
    };
    // Union in the client-side entry of the applier's apiVersion (if any)...
    let version = entries[target].api_version.clone();
    if let Some(csa_fields) = entries.iter().find(|e| is_csa(e) && e.api_version == version).map(|e| e.fields.clone()) {
        entries[target].fields = entries[target].fields.union(&csa_fields);
    }
    // ...and drop every client-side entry of that name.
    entries.retain(|e| !is_csa(e));
    entries
}

/// See [`ManagedFieldsEntry::serialized`]: upstream's keys, in its order.
struct Serialized<'a>(&'a ManagedFieldsEntry);

impl serde::Serialize for Serialized<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        if !e.manager.is_empty() {
            m.serialize_entry("manager", &e.manager)?;
        }
        m.serialize_entry("operation", e.operation.as_str())?;
        if !e.api_version.is_empty() {
            m.serialize_entry("apiVersion", &e.api_version)?;
        }
        if let Some(t) = &e.time {
            m.serialize_entry("time", t)?;
        }
        m.serialize_entry("fieldsType", "FieldsV1")?;
        m.serialize_entry("fieldsV1", &e.fields.fields_v1())?;
        if let Some(sub) = e.subresource.as_deref().filter(|s| !s.is_empty()) {
            m.serialize_entry("subresource", sub)?;
        }
        m.end()
    }
}
