//! ConfigMaps, Secrets, ServiceAccounts and Namespaces: small kinds with visible defaults
//! (`type: Opaque`, `stringData` folded into `data`, the namespace finalizer, phase and name
//! label) and their `immutable` rules.

use serde_json::Value;
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, NamespaceSpec, NamespaceStatus, Secret, ServiceAccount};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::{KindStrategy, NameRule};
use crate::validation;

/// Upstream's `MaxSecretSize` (also the ConfigMap limit).
const MAX_SIZE: usize = 1024 * 1024;

fn immutable_forbidden(field: &str) -> FieldError {
    FieldError::forbidden(&Path::new(field), "field is immutable when `immutable` is set")
}

impl KindStrategy for ConfigMap {
    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let mut total = 0;
        let binary = self.binary_data.as_ref();
        for (k, v) in self.data.iter().flatten() {
            let p = Path::new("data").key(k);
            errs.extend(validation::invalid_each(&p, k, validation::config_map_key(k)));
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(&p, k, "duplicate of key present in binaryData"));
            }
            total += v.len();
        }
        for (k, v) in binary.into_iter().flatten() {
            errs.extend(validation::invalid_each(&Path::new("binaryData").key(k), k, validation::config_map_key(k)));
            total += v.0.len();
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long(&Path::root(), MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(immutable_forbidden("immutable"));
            }
            if self.data != old.data {
                errs.push(immutable_forbidden("data"));
            }
            if self.binary_data != old.binary_data {
                errs.push(immutable_forbidden("binaryData"));
            }
        }
        errs
    }
}

impl KindStrategy for Secret {
    fn default(&mut self) {
        if self.type_.as_deref().is_none_or(str::is_empty) {
            self.type_ = Some("Opaque".to_string());
        }
        // Upstream folds write-only `stringData` into `data` when converting to its internal form.
        if let Some(sd) = self.string_data.take()
            && !sd.is_empty()
        {
            let data = self.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let data_path = Path::new("data");
        let empty = BTreeMap::new();
        let data = self.data.as_ref().unwrap_or(&empty);
        let mut total = 0;
        for (k, v) in data {
            errs.extend(validation::invalid_each(&data_path.key(k), k, validation::config_map_key(k)));
            total += v.0.len();
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long(&data_path, MAX_SIZE));
        }
        let required = |key: &str, errs: &mut ErrorList| {
            if !data.contains_key(key) {
                errs.push(FieldError::required(&data_path.key(key), ""));
            }
        };
        let docker = |key: &str, errs: &mut ErrorList| match data.get(key) {
            None => errs.push(FieldError::required(&data_path.key(key), "")),
            Some(v) => errs.extend(json_object(&v.0, &data_path.key(key))),
        };
        match self.type_.as_deref().unwrap_or_default() {
            "kubernetes.io/service-account-token" => {
                let name = self.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/service-account.name"));
                if name.is_none_or(String::is_empty) {
                    errs.push(FieldError::required(
                        &Path::new("metadata").child("annotations").key("kubernetes.io/service-account.name"),
                        "",
                    ));
                }
            }
            "kubernetes.io/dockercfg" => docker(".dockercfg", &mut errs),
            "kubernetes.io/dockerconfigjson" => docker(".dockerconfigjson", &mut errs),
            "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
                errs.push(FieldError::required(&data_path.key("username"), ""));
                errs.push(FieldError::required(&data_path.key("password"), ""));
            }
            "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
                errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
            }
            "kubernetes.io/tls" => {
                required("tls.crt", &mut errs);
                required("tls.key", &mut errs);
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        if self.type_ != old.type_ {
            errs.push(FieldError::invalid(
                &Path::new("type"),
                self.type_.clone().unwrap_or_default(),
                validation::IMMUTABLE_MSG,
            ));
        }
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(immutable_forbidden("immutable"));
            }
            if self.data != old.data {
                errs.push(immutable_forbidden("data"));
            }
        }
        errs
    }
}

/// The content of docker config secrets must be a JSON object; the error text is Go's.
fn json_object(bytes: &[u8], path: &Path) -> ErrorList {
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) {
        Ok(_) => Vec::new(),
        Err(e) => vec![FieldError::invalid(path, "<secret contents redacted>", e.to_string())],
    }
}

impl KindStrategy for ServiceAccount {}

impl KindStrategy for Namespace {
    fn name_rule() -> NameRule {
        NameRule::Label
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(NamespaceStatus { phase: Some("Active".to_string()), conditions: None });
        let finalizers = self.spec.get_or_insert_with(NamespaceSpec::default).finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push("kubernetes".to_string());
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        // Finalizers change only through the `finalize` subresource.
        let old_finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        self.spec.get_or_insert_with(NamespaceSpec::default).finalizers = old_finalizers;
    }

    fn default(&mut self) {
        let status = self.status.get_or_insert_with(NamespaceStatus::default);
        if status.phase.as_deref().is_none_or(str::is_empty) {
            status.phase = Some("Active".to_string());
        }
        if let Some(name) = self.metadata.name.clone().filter(|n| !n.is_empty()) {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert("kubernetes.io/metadata.name".to_string(), name);
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let p = Path::new("spec").child("finalizers");
        for f in self.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
            errs.extend(validation::invalid_each(&p, f, validation::qualified_name(f)));
            if !f.contains('/') && f != "kubernetes" {
                errs.push(FieldError::invalid(
                    &p,
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
        errs
    }

    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        let phase = self.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let p = Path::new("status").child("Phase");
        if self.metadata.deletion_timestamp.is_none() {
            if phase != "Active" {
                return vec![FieldError::invalid(&p, phase, "may only be 'Active' if `deletionTimestamp` is empty")];
            }
        } else if phase != "Terminating" {
            return vec![FieldError::invalid(
                &p,
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            )];
        }
        Vec::new()
    }
}
