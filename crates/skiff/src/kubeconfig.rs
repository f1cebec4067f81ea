//! Writing kubeconfig files: a standalone one for `--write-kubeconfig` and the data dir, and a
//! merge into the user's kubeconfig (`$KUBECONFIG` or `~/.kube/config`) that replaces only the
//! `skiff` cluster, context and user entries and leaves every other entry alone.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{Value, json};

/// The name of the cluster, context and user skiff writes.
pub(crate) const NAME: &str = "skiff";

/// What goes into a kubeconfig.
pub(crate) struct Credentials<'a> {
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn entries(c: &Credentials<'_>) -> (Value, Value, Value) {
    (
        json!({"name": NAME, "cluster": {"server": c.server, "certificate-authority-data": b64(c.ca_pem)}}),
        json!({"name": NAME, "context": {"cluster": NAME, "user": NAME}}),
        json!({"name": NAME, "user": {"client-certificate-data": b64(c.cert_pem), "client-key-data": b64(c.key_pem)}}),
    )
}

/// A complete kubeconfig with only skiff's entries.
pub(crate) fn standalone(c: &Credentials<'_>) -> Value {
    let (cluster, context, user) = entries(c);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "contexts": [context],
        "current-context": NAME,
        "users": [user],
        "preferences": {},
    })
}

/// Replace (or add) skiff's entries in `existing` and make it the current context.
pub(crate) fn merge(existing: Value, c: &Credentials<'_>) -> Value {
    let (cluster, context, user) = entries(c);
    let mut cfg = match existing {
        Value::Object(_) => existing,
        _ => json!({"apiVersion": "v1", "kind": "Config", "preferences": {}}),
    };
    for (list, entry) in [("clusters", cluster), ("contexts", context), ("users", user)] {
        let mut items: Vec<Value> = cfg.get(list).and_then(Value::as_array).cloned().unwrap_or_default();
        items.retain(|e| e.get("name").and_then(Value::as_str) != Some(NAME));
        items.push(entry);
        cfg[list] = Value::Array(items);
    }
    cfg["current-context"] = json!(NAME);
    cfg
}

/// Remove skiff's entries from `existing` (used by `skiff reset`).
pub(crate) fn unmerge(mut cfg: Value) -> Value {
    for list in ["clusters", "contexts", "users"] {
        if let Some(Value::Array(items)) = cfg.get_mut(list) {
            items.retain(|e| e.get("name").and_then(Value::as_str) != Some(NAME));
        }
    }
    if cfg.get("current-context").and_then(Value::as_str) == Some(NAME) {
        cfg["current-context"] = json!("");
    }
    cfg
}

pub(crate) fn read(path: &Path) -> Result<Option<Value>> {
    match fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => serde_saphyr::from_str::<Value>(&s)
            .map(Some)
            .with_context(|| format!("{} is not a valid kubeconfig", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Write a kubeconfig atomically with mode 0600 (it holds a private key).
pub(crate) fn write(path: &Path, cfg: &Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_saphyr::to_string(cfg).context("encoding kubeconfig")?;
    let tmp = path.with_extension("skiff-tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The file a merge goes to: the first entry of `$KUBECONFIG`, else `~/.kube/config`.
pub(crate) fn user_kubeconfig_path() -> Option<PathBuf> {
    if let Ok(k) = std::env::var("KUBECONFIG")
        && let Some(first) = k.split(':').find(|p| !p.is_empty())
    {
        return Some(PathBuf::from(first));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials<'static> {
        Credentials { server: "https://127.0.0.1:6443", ca_pem: "CA", cert_pem: "CERT", key_pem: "KEY" }
    }

    #[test]
    fn merge_keeps_other_contexts() {
        let existing = json!({"apiVersion": "v1", "kind": "Config", "current-context": "prod",
            "clusters": [{"name": "prod", "cluster": {"server": "https://prod"}}, {"name": "skiff", "cluster": {"server": "old"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
            "users": [{"name": "prod", "user": {"token": "t"}}]});
        let merged = merge(existing, &creds());
        assert_eq!(merged["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(merged["clusters"][0]["name"], "prod");
        assert_eq!(merged["clusters"][1]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(merged["users"][0]["user"]["token"], "t");
        assert_eq!(merged["current-context"], "skiff");
        let back = unmerge(merged);
        assert_eq!(back["clusters"].as_array().unwrap().len(), 1);
        assert_eq!(back["current-context"], "");
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("config");
        write(&p, &standalone(&creds())).unwrap();
        let back = read(&p).unwrap().unwrap();
        assert_eq!(back["contexts"][0]["context"]["user"], "skiff");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        fs::write(&p, "clusters: [").unwrap();
        assert!(read(&p).is_err());
    }
}
