//! OpenAPI v3 documents (interim: none are served until the generator lands).

use serde_json::{Map, Value};

use crate::Resource;

pub fn group_versions(_resources: &[Resource]) -> Vec<String> {
    Vec::new()
}

pub fn document(_resources: &[Resource], _group_version_path: &str) -> Option<Vec<u8>> {
    None
}

pub fn definitions() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}
