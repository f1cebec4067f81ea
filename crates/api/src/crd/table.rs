//! Server-side `Table` printing of custom resources (upstream's
//! `registry/customresource/tableconvertor`): `Name`, then the version's
//! `additionalPrinterColumns` — or `Age` when it declares none — each evaluated with a kubectl
//! JSONPath and formatted by its declared type.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::jsonpath::JsonPath;
use super::structural::str_of;
use super::values::go_float;
use crate::table::{DEFAULT_COLUMNS, translate_timestamp_since};

/// One column of a custom resource table.
#[derive(Clone, Debug, PartialEq)]
pub struct CrdColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    /// 0 normally, higher for `-o wide`.
    pub priority: i32,
    /// The JSONPath evaluated for the cell (empty for `Name`).
    pub json_path: String,
}

impl CrdColumn {
    /// The column as a `TableColumnDefinition`.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The columns of `version` of `crd`: `Name` first.
pub fn columns(crd: &Value, version: &str) -> Vec<CrdColumn> {
    let name = &DEFAULT_COLUMNS[0];
    let mut out = vec![CrdColumn {
        name: name.name.into(),
        type_: name.type_.into(),
        format: name.format.into(),
        description: name.description.into(),
        priority: 0,
        json_path: String::new(),
    }];
    let declared = super::version_of(crd, version)
        .and_then(|v| v.get("additionalPrinterColumns"))
        .and_then(Value::as_array)
        .filter(|cols| !cols.is_empty());
    match declared {
        Some(cols) => out.extend(cols.iter().map(|c| {
            let jp = str_of(c, "jsonPath");
            let description = match str_of(c, "description") {
                "" => format!("Custom resource definition column (in JSONPath format): {jp}"),
                d => d.to_string(),
            };
            CrdColumn {
                name: str_of(c, "name").into(),
                type_: str_of(c, "type").into(),
                format: str_of(c, "format").into(),
                description,
                priority: c
                    .get("priority")
                    .and_then(Value::as_i64)
                    .map_or(0, |p| p.clamp(0, i64::from(i32::MAX)) as i32),
                json_path: jp.into(),
            }
        })),
        // Upstream's logical default when a version declares no columns.
        None => out.push(CrdColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: DEFAULT_COLUMNS[1].description.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }),
    }
    out
}

/// A table printer for one CRD version: columns and their parsed paths, built once.
#[derive(Clone, Debug)]
pub struct Printer {
    columns: Vec<CrdColumn>,
    /// One per column after `Name`; `None` when the path does not parse (such cells are empty).
    paths: Vec<Option<JsonPath>>,
}

impl crate::table::TablePrinter for Printer {
    fn column_definitions(&self) -> Vec<Value> {
        self.columns.iter().map(CrdColumn::definition).collect()
    }

    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        Printer::cells(self, obj, now)
    }
}

impl Printer {
    pub fn new(crd: &Value, version: &str) -> Printer {
        let columns = columns(crd, version);
        let paths = columns.iter().skip(1).map(|c| JsonPath::parse(&c.json_path).ok()).collect();
        Printer { columns, paths }
    }

    pub fn columns(&self) -> &[CrdColumn] {
        &self.columns
    }

    /// One row's cells, `Name` first; a missing value is `null` (kubectl prints `<none>`).
    pub fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let mut out = vec![json!(obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default())];
        for (col, path) in self.columns.iter().skip(1).zip(&self.paths) {
            let first = path.as_ref().and_then(|p| p.find(obj).into_iter().next());
            out.push(match first {
                None | Some(Value::Null) => Value::Null,
                Some(v) => cell(&col.type_, v, now),
            });
        }
        out
    }
}

/// The cells of one row of `obj` for `version` of `crd` (see [`Printer::cells`]).
pub fn cells(crd: &Value, version: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    Printer::new(crd, version).cells(obj, now)
}

/// Upstream's `cellForJSONValue`, plus jsonpath's text printing for `string` columns.
fn cell(type_: &str, v: &Value, now: Timestamp) -> Value {
    match type_ {
        "string" => Value::String(match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::Number(n) => go_float(n.as_f64().unwrap_or_default()),
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        }),
        "integer" => match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => json!(i),
                // Go's int64(float64) truncates toward zero.
                None => n.as_f64().map_or(Value::Null, |f| json!(f as i64)),
            },
            _ => Value::Null,
        },
        "number" => v.as_f64().filter(|_| v.is_number()).map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, Value::Bool),
        "date" => match v {
            Value::String(s) => json!(translate_timestamp_since(Some(s), now)),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(cols: Value) -> Value {
        json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": cols}]}})
    }

    #[test]
    fn default_columns_are_name_and_age() {
        let c = crd(json!([]));
        let cols = columns(&c, "v1");
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Name", "Age"]);
        assert_eq!(cols[0].format, "name");
        assert_eq!(cols[1].type_, "date");
        let now: Timestamp = "2024-01-01T01:00:00Z".parse().unwrap();
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2024-01-01T00:55:00Z"}});
        assert_eq!(cells(&c, "v1", &obj, now), [json!("a"), json!("5m")]);
        assert_eq!(cells(&c, "v1", &json!({"metadata": {"name": "b"}}), now), [json!("b"), Value::Null]);
    }

    #[test]
    fn typed_cells() {
        let c = crd(json!([
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
            {"name": "On", "type": "boolean", "jsonPath": ".spec.on", "priority": 1},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Big", "type": "string", "jsonPath": ".spec.big"},
            {"name": "Bad", "type": "integer", "jsonPath": ".spec.cronSpec"},
            {"name": "When", "type": "date", "jsonPath": ".spec.when"},
        ]));
        let cols = columns(&c, "v1");
        assert_eq!(cols[4].priority, 1);
        assert_eq!(cols[1].description, "Custom resource definition column (in JSONPath format): .spec.cronSpec");
        let obj = json!({"metadata": {"name": "x"}, "spec": {"cronSpec": "*/5", "replicas": 2.7, "ratio": 1,
            "on": true, "big": 1000000.0, "when": "garbage"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            cells(&c, "v1", &obj, now),
            [
                json!("x"),
                json!("*/5"),
                json!(2),
                json!(1.0),
                json!(true),
                json!("True"),
                json!("1e+06"),
                Value::Null,
                json!("<invalid>")
            ]
        );
        assert_eq!(cols[1].definition()["type"], "string");
    }
}
