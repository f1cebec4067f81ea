//! A JSON object read only as deep as a change needs. A storage-level update (the binding)
//! touches four fields of a pod that is mostly other things (containers, managed fields):
//! parsing it whole into a [`Value`], and dropping that tree after, cost more than everything
//! else the binding does. A [`Shallow`] object keeps each field's JSON text, borrowed from the
//! stored bytes, until a field is asked for; untouched fields are written back byte for byte.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// An object's fields in their order, each as text, an object read one level deeper, or a
/// parsed value.
#[derive(Debug, Default)]
pub(crate) struct Shallow<'a> {
    fields: Vec<(String, Slot<'a>)>,
}

#[derive(Debug)]
enum Slot<'a> {
    Raw(&'a RawValue),
    Object(Shallow<'a>),
    Value(Value),
}

impl<'a> Shallow<'a> {
    /// Reads the top level of `json`, which must hold an object.
    pub(crate) fn parse(json: &'a [u8]) -> serde_json::Result<Shallow<'a>> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let fields = de.deserialize_map(FieldsVisitor)?;
        de.end()?;
        Ok(fields)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|(k, _)| k == key)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        self.position(key).map(|at| self.fields.remove(at)).is_some()
    }

    /// The object under `key`, read one level deep; `None` if absent or not an object.
    pub(crate) fn object(&mut self, key: &str) -> serde_json::Result<Option<&mut Shallow<'a>>> {
        let Some(at) = self.position(key) else { return Ok(None) };
        let slot = &mut self.fields[at].1;
        match slot {
            Slot::Raw(raw) => {
                let raw: &'a RawValue = raw;
                if raw.get().starts_with('{') {
                    *slot = Slot::Object(Shallow::parse(raw.get().as_bytes())?);
                }
            }
            Slot::Value(Value::Object(m)) => {
                let fields = std::mem::take(m).into_iter().map(|(k, v)| (k, Slot::Value(v))).collect();
                *slot = Slot::Object(Shallow { fields });
            }
            Slot::Value(_) | Slot::Object(_) => {}
        }
        Ok(match slot {
            Slot::Object(o) => Some(o),
            _ => None,
        })
    }

    /// The object under `key`, made an empty one (in sorted position) if it is absent or not
    /// an object.
    pub(crate) fn object_or_insert(&mut self, key: &str) -> serde_json::Result<&mut Shallow<'a>> {
        if self.object(key)?.is_none() {
            self.insert_slot_sorted(key, Slot::Object(Shallow::default()));
        }
        Ok(self.object(key)?.expect("the object was just inserted"))
    }

    /// The value under `key`, parsed.
    pub(crate) fn value(&mut self, key: &str) -> serde_json::Result<Option<&mut Value>> {
        let Some(at) = self.position(key) else { return Ok(None) };
        let slot = &mut self.fields[at].1;
        match slot {
            Slot::Raw(raw) => *slot = Slot::Value(serde_json::from_str(raw.get())?),
            Slot::Object(o) => *slot = Slot::Value(serde_json::to_value(&*o)?),
            Slot::Value(_) => {}
        }
        Ok(match slot {
            Slot::Value(v) => Some(v),
            _ => None,
        })
    }

    /// The object under `key`, parsed whole, made an empty one (in sorted position) if it is
    /// absent or not an object.
    pub(crate) fn map_or_insert(&mut self, key: &str) -> serde_json::Result<&mut Map<String, Value>> {
        if !self.value(key)?.is_some_and(|v| v.is_object()) {
            self.insert_sorted(key, Value::Object(Map::new()));
        }
        Ok(self.value(key)?.and_then(Value::as_object_mut).expect("the object was just inserted"))
    }

    /// Sets `key` to `value`: in place if it is there, else before the first key that sorts
    /// after it (where the typed encoding puts struct fields and map keys, as
    /// [`skiff_api::strategy::insert_sorted`] does).
    pub(crate) fn insert_sorted(&mut self, key: &str, value: Value) {
        self.insert_slot_sorted(key, Slot::Value(value));
    }

    fn insert_slot_sorted(&mut self, key: &str, slot: Slot<'a>) {
        if let Some(at) = self.position(key) {
            self.fields[at].1 = slot;
            return;
        }
        let at = self.fields.iter().position(|(k, _)| k.as_str() > key).unwrap_or(self.fields.len());
        self.fields.insert(at, (key.to_string(), slot));
    }

    /// Moves the fields named in `keys`, those present, to the front in that order.
    pub(crate) fn move_to_front(&mut self, keys: &[&str]) {
        let mut n = 0;
        for key in keys {
            if let Some(at) = self.position(key) {
                let field = self.fields.remove(at);
                self.fields.insert(n, field);
                n += 1;
            }
        }
    }
}

impl serde::Serialize for Shallow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.fields.len()))?;
        for (k, slot) in &self.fields {
            match slot {
                Slot::Raw(raw) => out.serialize_entry(k, raw)?,
                Slot::Object(o) => out.serialize_entry(k, o)?,
                Slot::Value(v) => out.serialize_entry(k, v)?,
            }
        }
        out.end()
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Shallow<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shallow<'de>, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let raw: &'de RawValue = map.next_value()?;
            // A repeated key: the last value counts, in the first one's place, as when
            // parsing into a map.
            match fields.iter_mut().find(|(k, _): &&mut (String, Slot<'de>)| *k == key) {
                Some((_, slot)) => *slot = Slot::Raw(raw),
                None => fields.push((key, Slot::Raw(raw))),
            }
        }
        Ok(Shallow { fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","resourceVersion":"7","annotations":{"a":"1"},"managedFields":[{"manager":"m","fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{}}}}}}]},"spec":{"containers":[{"image":"busybox","name":"c","resources":{"requests":{"cpu":"100m"}}}],"schedulerName":"default-scheduler","terminationGracePeriodSeconds":30},"status":{"phase":"Pending","qosClass":"Burstable"}}"#;

    #[test]
    fn untouched_fields_are_written_back_as_they_were() {
        let shallow = Shallow::parse(POD.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&shallow).unwrap(), POD);
        // Read one level deeper and written back: the same bytes.
        let mut shallow = Shallow::parse(POD.as_bytes()).unwrap();
        shallow.object("metadata").unwrap().unwrap();
        shallow.object("spec").unwrap().unwrap();
        shallow.value("status").unwrap().unwrap();
        assert_eq!(serde_json::to_string(&shallow).unwrap(), POD);
    }

    #[test]
    fn edits_land_where_a_parsed_tree_would_put_them() {
        // The same edits on a whole parsed tree, for comparison, key order included.
        let mut tree: Value = serde_json::from_str(POD).unwrap();
        let root = tree.as_object_mut().unwrap();
        root["metadata"].as_object_mut().unwrap().shift_remove("resourceVersion");
        skiff_api::strategy::insert_sorted(root["spec"].as_object_mut().unwrap(), "nodeName", json!("n1"));
        skiff_api::strategy::insert_sorted(root["metadata"]["annotations"].as_object_mut().unwrap(), "b", json!("2"));
        skiff_api::strategy::insert_sorted(
            root["status"].as_object_mut().unwrap(),
            "conditions",
            json!([{"status": "True", "type": "PodScheduled"}]),
        );

        let mut shallow = Shallow::parse(POD.as_bytes()).unwrap();
        let meta = shallow.object("metadata").unwrap().unwrap();
        assert!(meta.remove("resourceVersion"));
        assert!(!meta.remove("resourceVersion"));
        assert!(meta.contains_key("managedFields") && !meta.contains_key("deletionTimestamp"));
        skiff_api::strategy::insert_sorted(meta.map_or_insert("annotations").unwrap(), "b", json!("2"));
        let spec = shallow.object_or_insert("spec").unwrap();
        assert_eq!(spec.value("nodeName").unwrap(), None);
        spec.insert_sorted("nodeName", json!("n1"));
        let status = shallow.map_or_insert("status").unwrap();
        skiff_api::strategy::insert_sorted(status, "conditions", json!([{"status": "True", "type": "PodScheduled"}]));
        assert_eq!(serde_json::to_string(&shallow).unwrap(), serde_json::to_string(&tree).unwrap());
    }

    #[test]
    fn missing_and_mistyped_objects_are_made() {
        let json = br#"{"kind":"Pod","spec":"oops","apiVersion":"v1"}"#;
        let mut shallow = Shallow::parse(json).unwrap();
        assert!(shallow.object("spec").unwrap().is_none());
        assert!(shallow.object("metadata").unwrap().is_none());
        shallow.object_or_insert("spec").unwrap().insert_sorted("nodeName", json!("n"));
        shallow.object_or_insert("metadata").unwrap();
        shallow.map_or_insert("status").unwrap().insert("phase".into(), json!("Pending"));
        shallow.move_to_front(&["apiVersion", "kind", "metadata"]);
        assert_eq!(
            serde_json::to_string(&shallow).unwrap(),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"nodeName":"n"},"status":{"phase":"Pending"}}"#
        );
        // A parsed object can be read as a shallow one again.
        let mut shallow = Shallow::parse(br#"{"a":{"x":1,"y":[2]}}"#).unwrap();
        shallow.value("a").unwrap();
        shallow.object("a").unwrap().unwrap().remove("x");
        assert_eq!(serde_json::to_string(&shallow).unwrap(), r#"{"a":{"y":[2]}}"#);
        // And a shallow one (its fields still text) as a parsed value.
        let mut shallow = Shallow::parse(br#"{"a":{"x":{"z":true},"y":[2]}}"#).unwrap();
        shallow.object("a").unwrap().unwrap().insert_sorted("w", json!(0));
        assert_eq!(shallow.value("a").unwrap().cloned(), Some(json!({"w": 0, "x": {"z": true}, "y": [2]})));
        assert_eq!(serde_json::to_string(&shallow).unwrap(), r#"{"a":{"w":0,"x":{"z":true},"y":[2]}}"#);
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(Shallow::parse(b"[1]").is_err());
        assert!(Shallow::parse(b"{\"a\":").is_err());
        assert!(Shallow::parse(b"{} x").is_err());
        // A repeated key keeps the last value, as a map would.
        let shallow = Shallow::parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&shallow).unwrap(), r#"{"a":3,"b":2}"#);
    }
}
