//! The data dir: what skiff keeps there besides the store and certificates, and opening the
//! store.
//!
//! Layout: `db/` (store), `tls/` (PKI), `token` (cluster secret), `kubeconfig.yaml` (admin),
//! `server.lock` (held while a server runs), `state.json` (what skiff changed outside the data
//! dir, so `skiff reset` can undo it).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use skiff_store::Store;

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state.json")
}

fn read_state(data_dir: &Path) -> Value {
    fs::read(state_path(data_dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_else(|| json!({}))
}

/// Record that skiff's entries were merged into `kubeconfig`.
pub(crate) fn remember_merge(data_dir: &Path, kubeconfig: &Path) -> Result<()> {
    let mut st = read_state(data_dir);
    st["mergedKubeconfig"] = json!(kubeconfig.display().to_string());
    fs::write(state_path(data_dir), serde_json::to_vec_pretty(&st)?)
        .with_context(|| format!("writing {}", state_path(data_dir).display()))
}

/// The kubeconfig skiff merged into, if any.
pub(crate) fn merged_kubeconfig(data_dir: &Path) -> Option<PathBuf> {
    read_state(data_dir).get("mergedKubeconfig").and_then(Value::as_str).map(PathBuf::from)
}

/// Open the store of a data dir (`<data-dir>/db/state.db`).
pub(crate) async fn open_store(data_dir: &Path) -> Result<Arc<dyn Store>> {
    let dir = data_dir.join("db");
    let store =
        tokio::task::spawn_blocking(move || skiff_store::SqliteStore::open(skiff_store::SqliteOptions::new(dir)))
            .await
            .context("opening the store")?
            .with_context(|| format!("opening the store in {}", data_dir.join("db").display()))?;
    Ok(Arc::new(store))
}
