//! Server-side table printing (interim: the default Name / Created At table; per-kind printers
//! land with the tables work).

use serde_json::Value;

/// One column of a `Table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

const DEFAULT: &[Column] = &[
    Column { name: "Name", type_: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
    Column { name: "Created At", type_: "date", format: "", description: "CreationTimestamp is a timestamp representing the server time when this object was created.", priority: 0 },
];

pub fn columns(_group: &str, _kind: &str) -> &'static [Column] {
    DEFAULT
}

pub fn cells(_group: &str, _kind: &str, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
    vec![
        obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
    ]
}
